//! Two sessions of one account on one scratch mailbox: when another session's EXPUNGE may be
//! reported, renumbering, flag visibility, UIDs of concurrent APPENDs, \Recent, EXISTS.

use super::untagged::{expunges, lines, raw};
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, simple_message, uid_set};
use crate::conformance::{ensure, fail, Check, CheckResult, Ctx};
use crate::proto::imap::imap_types::flag::{FlagFetch, FlagPerm};
use crate::proto::imap::{FetchItem, Flag, MailboxEvent, SearchQuery};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.concurrent.no-expunge-during-fetch",
        "another session's EXPUNGE is not reported while answering FETCH, but at the next NOOP",
        "RFC 9051 7.5.1",
        Must,
        Imap,
        no_expunge_during_fetch,
        destructive
    ),
    check!(
        "imap.concurrent.no-expunge-during-store",
        "another session's EXPUNGE is not reported while answering STORE, but at the next NOOP",
        "RFC 9051 7.5.1",
        Must,
        Imap,
        no_expunge_during_store,
        destructive
    ),
    check!(
        "imap.concurrent.no-expunge-during-search",
        "another session's EXPUNGE is not reported while answering SEARCH, but at the next NOOP",
        "RFC 9051 7.5.1",
        Must,
        Imap,
        no_expunge_during_search,
        destructive
    ),
    check!(
        "imap.concurrent.expunge-renumbers",
        "after NOOP another session's EXPUNGE is reported and later messages move down by one",
        "RFC 9051 7.5.1",
        Must,
        Imap,
        expunge_renumbers,
        destructive
    ),
    check!(
        "imap.concurrent.flags-visible",
        "a permanent flag set in one session shows in FETCH FLAGS of the other after NOOP",
        "RFC 9051 2.3.2",
        Must,
        Imap,
        flags_visible,
        destructive
    ),
    check!(
        "imap.concurrent.append-uids-ascending",
        "concurrent APPENDs from two sessions get distinct UIDs, ascending per session",
        "RFC 9051 2.3.1.1",
        Must,
        Imap,
        append_uids_ascending,
        needs: ["UIDPLUS"],
        destructive
    ),
    check!(
        "imap.concurrent.recent-one-session",
        "a new message is \\Recent in at most one of two read-write sessions",
        "RFC 3501 2.3.2",
        Should,
        Imap,
        recent_one_session,
        needs: ["IMAP4rev1"],
        destructive
    ),
    check!(
        "imap.concurrent.exists-never-decreases",
        "EXISTS never reports fewer messages without an EXPUNGE in between",
        "RFC 9051 5.2",
        Must,
        Imap,
        exists_never_decreases,
        destructive
    ),
];

/// Session A has a 3-message mailbox selected; session B expunges the second message. A then
/// runs `command` (by sequence number), whose answer must not contain EXPUNGE.
async fn no_expunge_during(ctx: &Ctx, what: &str, command: &str) -> CheckResult {
    let (mut a, name, uids) = ctx.mailbox_with(what, &ctx.messages(what, 3)).await?;
    ctx.expunge_elsewhere(&name, &uids[1..2]).await?;
    a.drain_events();
    let ex = raw(&mut a, command).await?;
    let bad = expunges(&ex);
    ensure(
        bad.is_empty(),
        format!("no untagged EXPUNGE in the answer to `{command}`"),
        lines(&ex),
    )?;
    // The expunge must still be reported later, at an allowed moment.
    let noop = raw(&mut a, "NOOP").await?;
    ensure(
        !expunges(&noop).is_empty(),
        "`* 2 EXPUNGE` at the NOOP that follows",
        lines(&noop),
    )
}

pub async fn no_expunge_during_fetch(ctx: &Ctx) -> CheckResult {
    no_expunge_during(ctx, "xs-fetch", "FETCH 1:3 (FLAGS)").await
}

pub async fn no_expunge_during_store(ctx: &Ctx) -> CheckResult {
    no_expunge_during(ctx, "xs-store", "STORE 1 +FLAGS (\\Flagged)").await
}

pub async fn no_expunge_during_search(ctx: &Ctx) -> CheckResult {
    no_expunge_during(ctx, "xs-search", "SEARCH ALL").await
}

pub async fn expunge_renumbers(ctx: &Ctx) -> CheckResult {
    let (mut a, name, uids) = ctx
        .mailbox_with("xs-renum", &ctx.messages("xs-renum", 3))
        .await?;
    ctx.expunge_elsewhere(&name, &uids[1..2]).await?;
    a.drain_events();
    a.noop().await?;
    let events = a.drain_events();
    let expunged: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            MailboxEvent::Expunge(n) => Some(*n),
            _ => None,
        })
        .collect();
    ensure(
        expunged == [2],
        "exactly `* 2 EXPUNGE` after NOOP",
        format!("events {events:?}"),
    )?;
    // The sequence numbers of UID FETCH answers show the renumbering.
    let all = a
        .uid_fetch(&"1:*".try_into().expect("valid set"), &[FetchItem::Uid])
        .await?;
    let mut map: Vec<(u32, Option<u32>)> = all.iter().map(|m| (m.seq, m.uid)).collect();
    map.sort();
    let want = vec![(1, Some(uids[0])), (2, Some(uids[2]))];
    ensure(
        map == want,
        format!("UID FETCH 1:* (UID) maps 1->{} and 2->{}", uids[0], uids[2]),
        format!("{map:?}"),
    )
}

pub async fn flags_visible(ctx: &Ctx) -> CheckResult {
    let (mut a, name, uids) = ctx
        .mailbox_with("xs-flags", &ctx.messages("xs-flags", 1))
        .await?;
    let info = a.select(&name).await?;
    let permanent = info.permanent_flags.is_empty()
        || info
            .permanent_flags
            .iter()
            .any(|f| matches!(f, FlagPerm::Asterisk) || matches!(f, FlagPerm::Flag(Flag::Flagged)));
    if !permanent {
        return Err(crate::conformance::CheckError::Skip(
            "\\Flagged is not a permanent flag here (PERMANENTFLAGS)".into(),
        ));
    }
    let mut b = ctx.login(0).await?;
    b.select(&name).await?;
    expect_ok(
        &mut b,
        &format!("UID STORE {} +FLAGS.SILENT (\\Flagged)", uids[0]),
    )
    .await?;
    a.noop().await?;
    a.drain_events();
    let got = a.uid_fetch(&uid_set(&uids), &[FetchItem::Flags]).await?;
    ensure(
        got.iter().any(|m| m.has_flag(&Flag::Flagged)),
        "FETCH FLAGS with \\Flagged set by the other session",
        format!("{:?}", got.iter().map(|m| &m.flags).collect::<Vec<_>>()),
    )
}

pub async fn append_uids_ascending(ctx: &Ctx) -> CheckResult {
    let mut a = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut a, 0, "xs-append").await?;
    let mut b = ctx.login(0).await?;
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for round in 0..4 {
        let ma = simple_message(&ctx.unique("xs-append"), &format!("a{round}"), "a");
        let mb = simple_message(&ctx.unique("xs-append"), &format!("b{round}"), "b");
        let (ra, rb) = tokio::join!(
            a.append(&name, &[], None, &ma),
            b.append(&name, &[], None, &mb)
        );
        from_a.push(ra?);
        from_b.push(rb?);
    }
    let mut all = Vec::new();
    let mut validity = None;
    for (who, list) in [("A", &from_a), ("B", &from_b)] {
        let mut last = 0;
        for got in list.iter() {
            let Some(got) = got else {
                return Err(fail(
                    "[APPENDUID v uid] in every APPEND OK (UIDPLUS)",
                    format!("session {who}: none"),
                ));
            };
            if *validity.get_or_insert(got.uid_validity) != got.uid_validity {
                return Err(fail(
                    "one UIDVALIDITY in every APPENDUID",
                    format!("{from_a:?} / {from_b:?}"),
                ));
            }
            ensure(
                got.uid > last,
                format!("session {who}'s UIDs strictly ascending"),
                format!("A {from_a:?}, B {from_b:?}"),
            )?;
            last = got.uid;
            all.push(got.uid);
        }
    }
    all.sort_unstable();
    let distinct = all.windows(2).all(|w| w[0] != w[1]);
    ensure(distinct, "8 distinct UIDs", format!("{all:?}"))?;
    a.select(&name).await?;
    let mut stored = a.uid_search(&SearchQuery::all()).await?;
    stored.sort_unstable();
    ensure(
        stored == all,
        format!("UID SEARCH ALL = the APPENDUIDs {all:?}"),
        format!("{stored:?}"),
    )
}

pub async fn recent_one_session(ctx: &Ctx) -> CheckResult {
    let (mut a, name, _) = ctx.mailbox_with("xs-recent", &[]).await?;
    let mut b = ctx.login(0).await?;
    b.select(&name).await?;
    let mut c = ctx.login(0).await?;
    let msg = simple_message(&ctx.unique("xs-recent"), "recent", "new");
    c.append(&name, &[], None, &msg).await?;
    drop(c);
    let mut recent_in = Vec::new();
    for (who, s) in [("A", &mut a), ("B", &mut b)] {
        s.noop().await?;
        s.drain_events();
        let got = s
            .fetch(&"1:*".try_into().expect("valid set"), &[FetchItem::Flags])
            .await?;
        if got.iter().any(|m| {
            m.flags
                .iter()
                .flatten()
                .any(|f| matches!(f, FlagFetch::Recent))
        }) {
            recent_in.push(who);
        }
    }
    ensure(
        recent_in.len() <= 1,
        "\\Recent in at most one session",
        format!("\\Recent in sessions {recent_in:?}"),
    )
}

pub async fn exists_never_decreases(ctx: &Ctx) -> CheckResult {
    let (mut a, name, _) = ctx.mailbox_with("xs-exists", &[]).await?;
    a.drain_events();
    let mut b = ctx.login(0).await?;
    let mut count = 0u32;
    let mut log = Vec::new();
    let step = |events: Vec<MailboxEvent>, count: &mut u32, log: &mut Vec<MailboxEvent>| {
        for e in events {
            log.push(e.clone());
            match e {
                MailboxEvent::Expunge(_) => *count = count.saturating_sub(1),
                MailboxEvent::Exists(n) if n < *count => {
                    return Err(fail(
                        format!("EXISTS >= {count} (no EXPUNGE since)", count = *count),
                        format!("events {log:?}"),
                    ))
                }
                MailboxEvent::Exists(n) => *count = n,
                _ => {}
            }
        }
        Ok(())
    };
    let m = ctx.messages("xs-exists", 4);
    b.append(&name, &[], None, &m[0]).await?;
    a.noop().await?;
    step(a.drain_events(), &mut count, &mut log)?;
    b.append(&name, &[], None, &m[1]).await?;
    b.append(&name, &[], None, &m[2]).await?;
    a.noop().await?;
    step(a.drain_events(), &mut count, &mut log)?;
    b.select(&name).await?;
    expect_ok(&mut b, "STORE 1 +FLAGS.SILENT (\\Deleted)").await?;
    expect_ok(&mut b, "EXPUNGE").await?;
    b.append(&name, &[], None, &m[3]).await?;
    a.noop().await?;
    step(a.drain_events(), &mut count, &mut log)?;
    ensure(
        count == 3,
        "3 messages after 4 APPENDs and 1 EXPUNGE",
        format!("{count}, events {log:?}"),
    )
}
