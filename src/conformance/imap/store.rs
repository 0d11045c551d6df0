//! STORE: adding, removing and replacing flags, .SILENT, keywords, \Recent; and the implicit
//! \Seen of a non-peek BODY[] fetch.

use imap_types::fetch::MessageDataItem;
use imap_types::flag::FlagPerm;
use imap_types::response::Data;

use super::support::{completion, data, fetch_uid, flag_names, has_flag, PEEK_ALL};
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, simple_message, uid_set};
use crate::conformance::{ensure, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{BodyPart, FetchItem, FetchedMessage, Flag, StoreType};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.store.add-flags",
        "STORE +FLAGS adds the flag and keeps the others",
        "RFC 9051 6.4.6",
        Must,
        Imap,
        add_flags,
        destructive
    ),
    check!(
        "imap.store.remove-flags",
        "STORE -FLAGS removes only the named flag",
        "RFC 9051 6.4.6",
        Must,
        Imap,
        remove_flags,
        destructive
    ),
    check!(
        "imap.store.replace-flags",
        "STORE FLAGS replaces the flag list",
        "RFC 9051 6.4.6",
        Must,
        Imap,
        replace_flags,
        destructive
    ),
    check!(
        "imap.store.returns-fetch",
        "STORE without .SILENT returns the new flags in an untagged FETCH",
        "RFC 9051 6.4.6",
        Should,
        Imap,
        store_returns_fetch,
        destructive
    ),
    check!(
        "imap.store.silent",
        "STORE +FLAGS.SILENT sends no FETCH FLAGS for the changed message",
        "RFC 9051 6.4.6",
        Must,
        Imap,
        store_silent,
        destructive
    ),
    check!(
        "imap.store.keyword",
        "A keyword is stored and kept when PERMANENTFLAGS contains \\*",
        "RFC 9051 7.1",
        Must,
        Imap,
        store_keyword,
        destructive
    ),
    check!(
        "imap.store.recent-not-storable",
        "\\Recent cannot be set by STORE",
        "RFC 3501 2.3.2",
        Must,
        Imap,
        recent_not_storable,
        needs: ["IMAP4rev1"],
        destructive
    ),
    check!(
        "imap.fetch.body-sets-seen",
        "FETCH BODY[] sets \\Seen",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        body_sets_seen,
        destructive
    ),
    check!(
        "imap.fetch.peek-keeps-unseen",
        "FETCH BODY.PEEK[] does not set \\Seen",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        peek_keeps_unseen,
        destructive
    ),
];

/// One message appended with `flags` in a selected scratch mailbox; returns its UID.
async fn one_with<'c>(
    ctx: &'c Ctx,
    what: &str,
    flags: &[Flag<'_>],
) -> Result<(crate::conformance::context::Session<'c>, String, u32), CheckError> {
    let (mut s, name, _) = ctx.mailbox_with(what, &[]).await?;
    let message = simple_message(&ctx.unique(what), what, "flag test");
    s.append(&name, flags, None, &message).await?;
    s.select(&name).await?;
    let uid = crate::conformance::context::all_uids(&mut s)
        .await?
        .first()
        .copied()
        .ok_or_else(|| fail("the appended message", "an empty mailbox"))?;
    Ok((s, name, uid))
}

/// The flags after a STORE: from its FETCH answer if it sent one, else from a new FETCH.
async fn flags_after(
    s: &mut crate::conformance::context::Session<'_>,
    uid: u32,
    answers: Vec<FetchedMessage>,
) -> Result<Vec<String>, CheckError> {
    if let Some(m) = answers
        .iter()
        .rev()
        .find(|m| m.seq == 1 && m.flags.is_some())
    {
        return Ok(flag_names(m));
    }
    Ok(flag_names(&fetch_uid(s, uid, &[FetchItem::Flags]).await?))
}

fn has(flags: &[String], name: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(name))
}

pub async fn add_flags(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = one_with(ctx, "addflags", &[Flag::Seen]).await?;
    let answers = s
        .store(&uid_set(&[1]), StoreType::Add, &[Flag::Flagged], false)
        .await?;
    let flags = flags_after(&mut s, uid, answers).await?;
    ensure(
        has(&flags, "\\Flagged") && has(&flags, "\\Seen"),
        "FLAGS with \\Flagged and \\Seen",
        format!("{flags:?}"),
    )
}

pub async fn remove_flags(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = one_with(ctx, "rmflags", &[Flag::Seen, Flag::Flagged]).await?;
    let answers = s
        .store(&uid_set(&[1]), StoreType::Remove, &[Flag::Flagged], false)
        .await?;
    let flags = flags_after(&mut s, uid, answers).await?;
    ensure(
        !has(&flags, "\\Flagged") && has(&flags, "\\Seen"),
        "FLAGS with \\Seen and without \\Flagged",
        format!("{flags:?}"),
    )
}

pub async fn replace_flags(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = one_with(ctx, "setflags", &[Flag::Seen, Flag::Flagged]).await?;
    let answers = s
        .store(&uid_set(&[1]), StoreType::Replace, &[Flag::Answered], false)
        .await?;
    let flags = flags_after(&mut s, uid, answers).await?;
    let mut rest: Vec<&String> = flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    rest.sort();
    ensure(
        rest.len() == 1 && rest[0].eq_ignore_ascii_case("\\Answered"),
        "FLAGS (\\Answered) (plus \\Recent at most)",
        format!("{flags:?}"),
    )
}

pub async fn store_returns_fetch(ctx: &Ctx) -> CheckResult {
    let (mut s, _, _) = one_with(ctx, "storefetch", &[]).await?;
    let x = expect_ok(&mut s, "STORE 1 +FLAGS (\\Flagged)").await?;
    let sent = data(&x).any(|d| match d {
        Data::Fetch { seq, items } => {
            seq.get() == 1
                && items.as_ref().iter().any(|i| match i {
                    MessageDataItem::Flags(flags) => flags
                        .iter()
                        .any(|f| matches!(f, imap_types::flag::FlagFetch::Flag(Flag::Flagged))),
                    _ => false,
                })
        }
        _ => false,
    });
    ensure(
        sent,
        "* 1 FETCH (FLAGS (... \\Flagged ...))",
        "no such FETCH",
    )
}

pub async fn store_silent(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = one_with(ctx, "silent", &[]).await?;
    let x = expect_ok(&mut s, "STORE 1 +FLAGS.SILENT (\\Flagged)").await?;
    // FETCH responses without FLAGS (MODSEQ, say) are allowed.
    for response in &x.responses {
        if let imap_types::response::Response::Data(Data::Fetch { seq, items }) = &response.decoded
        {
            let flags = items
                .as_ref()
                .iter()
                .any(|i| matches!(i, MessageDataItem::Flags(_)));
            if seq.get() == 1 && flags {
                return Err(fail(
                    "no FETCH FLAGS after .SILENT",
                    super::support::line(response),
                ));
            }
        }
    }
    let m = fetch_uid(&mut s, uid, &[FetchItem::Flags]).await?;
    ensure(
        has_flag(&m, "\\Flagged"),
        "\\Flagged set by the silent STORE",
        format!("{:?}", flag_names(&m)),
    )
}

pub async fn store_keyword(ctx: &Ctx) -> CheckResult {
    let (mut s, name, uid) = one_with(ctx, "keyword", &[]).await?;
    let info = s.select(&name).await?;
    if !info.permanent_flags.contains(&FlagPerm::Asterisk) {
        return Err(CheckError::Skip(
            "PERMANENTFLAGS has no \\* (new keywords not allowed)".into(),
        ));
    }
    let keyword = "MswConformKw";
    expect_ok(&mut s, &format!("UID STORE {uid} +FLAGS ({keyword})")).await?;
    let m = fetch_uid(&mut s, uid, &[FetchItem::Flags]).await?;
    ensure(
        has_flag(&m, keyword),
        format!("FLAGS with {keyword}"),
        format!("{:?}", flag_names(&m)),
    )?;
    // Permanent: another session sees it.
    let mut other = ctx.login(0).await?;
    other.examine(&name).await?;
    let m = fetch_uid(&mut other, uid, &[FetchItem::Flags]).await?;
    ensure(
        has_flag(&m, keyword),
        format!("{keyword} seen from another session"),
        format!("{:?}", flag_names(&m)),
    )
}

pub async fn recent_not_storable(ctx: &Ctx) -> CheckResult {
    let (_first, name, uid) = one_with(ctx, "recent", &[]).await?;
    // The first session holds \Recent; a second one does not see it and must not gain it.
    let mut s = ctx.login(0).await?;
    s.select(&name).await?;
    let before = fetch_uid(&mut s, uid, &[FetchItem::Flags]).await?;
    if has_flag(&before, "\\Recent") {
        return Err(CheckError::Skip(
            "the message is \\Recent in the second session too".into(),
        ));
    }
    let x = s.execute_raw(b"STORE 1 +FLAGS (\\Recent)").await?;
    for response in &x.responses {
        if let imap_types::response::Response::Data(Data::Fetch { items, .. }) = &response.decoded {
            let recent = items.as_ref().iter().any(|i| {
                matches!(i, MessageDataItem::Flags(f)
                    if f.contains(&imap_types::flag::FlagFetch::Recent))
            });
            if recent {
                return Err(fail(
                    "no \\Recent after STORE",
                    super::support::line(response),
                ));
            }
        }
    }
    let after = fetch_uid(&mut s, uid, &[FetchItem::Flags]).await?;
    ensure(
        !has_flag(&after, "\\Recent"),
        format!("\\Recent still unset (STORE answered `{}`)", completion(&x)),
        format!("{:?}", flag_names(&after)),
    )
}

pub async fn body_sets_seen(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = one_with(ctx, "seen", &[]).await?;
    let item = FetchItem::Body {
        part: BodyPart::Full,
        peek: false,
        partial: None,
    };
    fetch_uid(&mut s, uid, &[item]).await?;
    let m = fetch_uid(&mut s, uid, &[FetchItem::Flags]).await?;
    ensure(
        has_flag(&m, "\\Seen"),
        "\\Seen after FETCH BODY[]",
        format!("{:?}", flag_names(&m)),
    )
}

pub async fn peek_keeps_unseen(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = one_with(ctx, "peek", &[]).await?;
    let header = FetchItem::Body {
        part: BodyPart::Header,
        peek: true,
        partial: None,
    };
    fetch_uid(&mut s, uid, &[PEEK_ALL, header]).await?;
    let m = fetch_uid(&mut s, uid, &[FetchItem::Flags]).await?;
    ensure(
        !has_flag(&m, "\\Seen"),
        "no \\Seen after FETCH BODY.PEEK[] and BODY.PEEK[HEADER]",
        format!("{:?}", flag_names(&m)),
    )
}
