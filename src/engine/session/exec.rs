//! Carrying out a session's [`Action`]s on one IMAP connection.

use std::time::Duration;

use tokio::time::Instant;

use super::script::{Action, FlagKind, SEARCHES};
use super::{seq_range, uid_set, Imap, SessionCtx};
use crate::engine::audit::message_id;
use crate::engine::message::{build_message, MessageParams, MessageSpec};
use crate::proto::imap::{
    BodyPart, FetchItem, Flag, ImapError, SearchQuery, SequenceSet, StoreType,
};

const HEADER_FIELDS: &[&str] = &["FROM", "TO", "SUBJECT", "DATE", "MESSAGE-ID"];

const HEADER_ITEMS: &[FetchItem<'static>] = &[
    FetchItem::Uid,
    FetchItem::Flags,
    FetchItem::Rfc822Size,
    FetchItem::InternalDate,
    FetchItem::Body {
        part: BodyPart::HeaderFields(HEADER_FIELDS),
        peek: true,
        partial: None,
    },
];

const ENVELOPE_ITEMS: &[FetchItem<'static>] = &[
    FetchItem::Uid,
    FetchItem::Flags,
    FetchItem::Rfc822Size,
    FetchItem::Envelope,
];

/// What an offline-capable client downloads when mail arrives: everything.
const NEW_MAIL_ITEMS: &[FetchItem<'static>] = &[
    FetchItem::Uid,
    FetchItem::Flags,
    FetchItem::Rfc822Size,
    FetchItem::Envelope,
    FetchItem::Body {
        part: BodyPart::Full,
        peek: true,
        partial: None,
    },
];

/// RFC 2177 asks clients to re-issue IDLE at least every 29 minutes.
const IDLE_REFRESH: Duration = Duration::from_secs(29 * 60);

/// What the session has learnt about its mailbox so far.
#[derive(Debug, Default)]
pub struct SessionState {
    /// UIDs of messages listed, oldest first.
    pub uids: Vec<u32>,
    pub exists: u32,
}

impl SessionState {
    fn pick(&self, pick: u32) -> Option<u32> {
        (!self.uids.is_empty()).then(|| self.uids[pick as usize % self.uids.len()])
    }
}

/// Runs `actions` in order; returns early (Ok) when the run wraps up.
pub async fn run_actions(
    ctx: &SessionCtx,
    imap: &mut Imap,
    mailbox: &str,
    actions: &[Action],
) -> Result<(), ImapError> {
    let mut state = SessionState::default();
    for action in actions {
        if ctx.wrapping_up() {
            break;
        }
        match *action {
            Action::Think { ms } => {
                if !ctx.think(Duration::from_millis(ms)).await {
                    break;
                }
            }
            Action::Select => {
                let info = imap
                    .timed("SELECT", async |c| c.select(mailbox).await)
                    .await?;
                if let Some(checks) = imap.checks() {
                    checks.selected(&imap.login, mailbox, info.uid_validity);
                }
                state.exists = info.exists;
            }
            Action::ListHeaders { count } => {
                list(imap, mailbox, &mut state, count, HEADER_ITEMS).await?
            }
            Action::ListEnvelopes { count } => {
                list(imap, mailbox, &mut state, count, ENVELOPE_ITEMS).await?
            }
            Action::Open { pick, peek } => {
                if let Some(uid) = state.pick(pick) {
                    let items = [
                        FetchItem::Uid,
                        FetchItem::Flags,
                        FetchItem::Body {
                            part: BodyPart::Full,
                            peek,
                            partial: None,
                        },
                    ];
                    let set = uid_set(uid);
                    imap.timed("UID FETCH", async |c| c.uid_fetch(&set, &items).await)
                        .await?;
                }
            }
            Action::Preview { pick, bytes } => {
                if let Some(uid) = state.pick(pick) {
                    let items = [
                        FetchItem::Uid,
                        FetchItem::BodyStructure,
                        FetchItem::Body {
                            part: BodyPart::Part(&[1]),
                            peek: true,
                            partial: Some((0, bytes)),
                        },
                    ];
                    let set = uid_set(uid);
                    imap.timed("UID FETCH", async |c| c.uid_fetch(&set, &items).await)
                        .await?;
                }
            }
            Action::Flag { pick, flag, add } => {
                if let Some(uid) = state.pick(pick) {
                    let flag = match flag {
                        FlagKind::Seen => Flag::Seen,
                        FlagKind::Flagged => Flag::Flagged,
                    };
                    let kind = if add {
                        StoreType::Add
                    } else {
                        StoreType::Remove
                    };
                    let set = uid_set(uid);
                    imap.timed("UID STORE", async |c| {
                        c.uid_store(&set, kind, std::slice::from_ref(&flag), false)
                            .await
                    })
                    .await?;
                }
            }
            Action::Search { query } => {
                let text = SEARCHES[usize::from(query) % SEARCHES.len()];
                let query = SearchQuery::parse(text).expect("built-in searches are valid");
                imap.timed("UID SEARCH", async |c| c.uid_search(&query).await)
                    .await?;
            }
            Action::Noop => imap.timed("NOOP", async |c| c.noop().await).await?,
            Action::Append {
                size,
                seed,
                to_sent,
            } => append(ctx, imap, mailbox, size, seed, to_sent).await?,
            Action::ExpungeOldest => {
                if state.exists > 0 {
                    let first = SequenceSet::try_from(1u32).expect("1 is a valid sequence number");
                    if let Some(audit) = &ctx.plan.audit {
                        // Tell the audit which message this client deletes on purpose.
                        let items = [FetchItem::Body {
                            part: BodyPart::Full,
                            peek: true,
                            partial: None,
                        }];
                        let oldest = imap
                            .timed("FETCH", async |c| c.fetch(&first, &items).await)
                            .await?;
                        for id in oldest
                            .iter()
                            .filter_map(|m| m.body())
                            .filter_map(|b| message_id(b))
                        {
                            audit.deleted(&id, ctx.user, mailbox);
                        }
                    }
                    imap.timed("STORE", async |c| {
                        c.store(&first, StoreType::Add, &[Flag::Deleted], true)
                            .await
                    })
                    .await?;
                    imap.timed("EXPUNGE", async |c| c.expunge().await).await?;
                    state.exists = imap.client.mailbox().exists();
                }
            }
            Action::Idle { ms, fetch_on_push } => {
                idle(ctx, imap, Duration::from_millis(ms), fetch_on_push).await?
            }
            // Submission runs on an SMTP session (see `submit`), never on an IMAP one.
            Action::Submit { .. } => {}
        }
    }
    Ok(())
}

async fn list(
    imap: &mut Imap,
    mailbox: &str,
    state: &mut SessionState,
    count: u32,
    items: &[FetchItem<'static>],
) -> Result<(), ImapError> {
    let exists = imap.client.mailbox().exists();
    state.exists = exists;
    if exists == 0 {
        return Ok(());
    }
    let first = exists.saturating_sub(count) + 1;
    let set = seq_range(first, exists);
    let listed = imap
        .timed("FETCH", async |c| c.fetch(&set, items).await)
        .await?;
    if let Some(checks) = imap.checks() {
        checks.fetch_answer(&imap.login, mailbox, &listed);
    }
    state.uids = listed.iter().filter_map(|m| m.uid).collect();
    Ok(())
}

async fn append(
    ctx: &SessionCtx,
    imap: &mut Imap,
    mailbox: &str,
    size: u64,
    seed: u64,
    to_sent: bool,
) -> Result<(), ImapError> {
    let plan = &ctx.plan;
    let domain = &plan.endpoints.domain;
    let mut rng = rand_pcg::Pcg32::new(seed, u64::from(ctx.user));
    let from = format!("{}@{domain}", ctx.login);
    let to = [from.clone()];
    let spec = MessageSpec::default();
    let params = MessageParams {
        spec: &spec,
        run_id: &plan.run_id,
        sequence: seed,
        target_size: size as usize,
        from: &from,
        to: &to,
        domain,
        date: plan.message_date(seed),
    };
    let message = build_message(&mut rng, &params);
    let target = if to_sent { "Sent" } else { mailbox };
    let mut appended = imap
        .timed("APPEND", async |c| {
            c.append(target, &[Flag::Seen], None, &message).await
        })
        .await;
    if matches!(&appended, Err(ImapError::No { text, .. }) if text.contains("TRYCREATE")) {
        // What mail clients do when Sent is missing: create it and file the message again.
        let create = format!("CREATE {target}");
        imap.timed("CREATE", async |c| c.execute_raw(create.as_bytes()).await)
            .await?;
        appended = imap
            .timed("APPEND", async |c| {
                c.append(target, &[Flag::Seen], None, &message).await
            })
            .await;
    }
    let appended = appended?;
    if let (Some(checks), Some(uid), false) = (imap.checks(), appended, to_sent) {
        let selected = imap.client.mailbox().uid_validity();
        checks.appended(&imap.login, target, selected, uid.uid_validity);
    }
    if let Some(audit) = &plan.audit {
        if let Some(id) = message_id(&message) {
            audit.accepted(&id, ctx.user, target);
        }
    }
    ctx.sink.count("imap.appended_bytes", message.len() as u64);
    Ok(())
}

/// IDLE for `length`; on a push that raises EXISTS, leave IDLE, download the new messages
/// and go back. Re-issues IDLE every 29 minutes as RFC 2177 asks.
pub async fn idle(
    ctx: &SessionCtx,
    imap: &mut Imap,
    length: Duration,
    fetch_on_push: bool,
) -> Result<(), ImapError> {
    let until = Instant::now() + length;
    let mut known = imap.client.mailbox().exists();
    while Instant::now() < until && !ctx.wrapping_up() {
        imap.timed("IDLE", async |c| c.idle().await).await?;
        let refresh = Instant::now() + IDLE_REFRESH;
        let mut new_mail = false;
        while !new_mail {
            let wait = until.min(refresh).saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            let event = tokio::select! {
                event = imap.client.wait_for_event(wait) => event?,
                _ = ctx.signals.wrap_up.cancelled() => break,
            };
            if event.is_none() {
                break;
            }
            // Only the count matters: the client's mailbox view has applied every EXISTS
            // and EXPUNGE in order.
            let now = imap.client.mailbox().exists();
            if now > known && fetch_on_push {
                new_mail = true;
            } else {
                known = now;
            }
        }
        imap.timed("DONE", async |c| c.done().await).await?;
        let now = imap.client.mailbox().exists();
        if new_mail && now > known {
            let set = seq_range(known + 1, now);
            let fetched = imap
                .timed("FETCH", async |c| c.fetch(&set, NEW_MAIL_ITEMS).await)
                .await?;
            if let Some(checks) = imap.checks() {
                checks.fetch_answer(&imap.login, "selected", &fetched);
            }
            if let Some(audit) = &ctx.plan.audit {
                for id in fetched
                    .iter()
                    .filter_map(|m| m.body())
                    .filter_map(|b| message_id(b))
                {
                    audit.seen(&id, ctx.user);
                }
            }
            ctx.sink
                .count("imap.pushed_messages_fetched", u64::from(now - known));
        }
        known = now;
    }
    Ok(())
}
