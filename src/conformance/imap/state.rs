//! SELECT/EXAMINE responses, STATUS against SELECT, and how the server treats commands that
//! are malformed, unknown or sent in the wrong state.

use imap_types::response::{Code, Data, StatusKind};

use super::support::{codes, completion, completion_code, data, is};
use crate::conform_check as check;
use crate::conformance::context::uid_map;
use crate::conformance::context::{expect_ok, simple_message};
use crate::conformance::{ensure, ensure_eq, fail, Check, CheckResult, Ctx};
use crate::proto::imap::{Flag, SearchQuery, StatusDataItemName};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.select.flags-permanentflags",
        "SELECT sends FLAGS, EXISTS and an OK [PERMANENTFLAGS] response",
        "RFC 9051 6.3.2",
        Must,
        Imap,
        flags_and_permanentflags,
        destructive
    ),
    check!(
        "imap.select.examine-read-only",
        "The tagged OK to EXAMINE begins with [READ-ONLY]",
        "RFC 9051 6.3.3",
        Must,
        Imap,
        examine_read_only,
        destructive
    ),
    check!(
        "imap.select.nonexistent-no",
        "SELECT of a mailbox that does not exist is answered NO",
        "RFC 9051 6.3.2",
        Must,
        Imap,
        select_nonexistent
    ),
    check!(
        "imap.select.failed-deselects",
        "A failed SELECT leaves no mailbox selected",
        "RFC 3501 6.3.1",
        Must,
        Imap,
        failed_select_deselects,
        destructive
    ),
    check!(
        "imap.select.exists-count",
        "EXISTS equals the number of messages in the mailbox",
        "RFC 9051 7.4.1",
        Must,
        Imap,
        exists_count,
        destructive
    ),
    check!(
        "imap.select.exists-after-append",
        "A NOOP in a selected session reports the EXISTS of a message appended elsewhere",
        "RFC 9051 7.4.1",
        Must,
        Imap,
        super::search::exists_after_append,
        destructive
    ),
    check!(
        "imap.select.uids-ascending",
        "UIDs strictly ascend with sequence numbers",
        "RFC 9051 2.3.1.1",
        Must,
        Imap,
        uids_ascending,
        destructive
    ),
    check!(
        "imap.select.uidnext-not-reused",
        "UIDNEXT stays above an expunged UID, which is never assigned again",
        "RFC 9051 2.3.1.1",
        Must,
        Imap,
        uidnext_not_reused,
        destructive
    ),
    check!(
        "imap.status.matches-select",
        "STATUS MESSAGES/RECENT/UIDNEXT/UIDVALIDITY/UNSEEN agree with SELECT",
        "RFC 3501 6.3.10",
        Must,
        Imap,
        status_matches_select,
        destructive
    ),
    check!(
        "imap.state.bad-syntax",
        "A command with bad syntax gets BAD and the connection stays usable",
        "RFC 9051 7.1.5",
        Must,
        Imap,
        bad_syntax
    ),
    check!(
        "imap.state.fetch-without-select",
        "FETCH in the authenticated state is refused with BAD or NO",
        "RFC 9051 3.2",
        Must,
        Imap,
        fetch_without_select
    ),
    check!(
        "imap.state.unknown-command",
        "An unknown command gets BAD",
        "RFC 9051 7.1.5",
        Must,
        Imap,
        unknown_command
    ),
];

fn three(ctx: &Ctx, what: &str) -> Vec<Vec<u8>> {
    (1..=3)
        .map(|n| simple_message(&ctx.unique(what), &format!("{what} {n}"), "body"))
        .collect()
}

pub async fn flags_and_permanentflags(ctx: &Ctx) -> CheckResult {
    let (mut s, name, _) = ctx.mailbox_with("flags", &three(ctx, "flags")).await?;
    let x = expect_ok(&mut s, &format!("SELECT {name}")).await?;
    let flags = data(&x).any(|d| matches!(d, Data::Flags(_)));
    let exists = data(&x).any(|d| matches!(d, Data::Exists(3)));
    let permanent = codes(&x).any(|c| matches!(c, Code::PermanentFlags(_)));
    ensure(
        flags && exists && permanent,
        "* FLAGS (...), * 3 EXISTS and * OK [PERMANENTFLAGS (...)]",
        format!("FLAGS {flags}, 3 EXISTS {exists}, PERMANENTFLAGS {permanent}"),
    )
}

pub async fn examine_read_only(ctx: &Ctx) -> CheckResult {
    let (mut s, name, _) = ctx.mailbox_with("examine", &three(ctx, "examine")).await?;
    let x = s.execute_raw(format!("EXAMINE {name}").as_bytes()).await?;
    ensure(
        is(&x, StatusKind::Ok) && matches!(completion_code(&x), Some(Code::ReadOnly)),
        "tagged OK [READ-ONLY]",
        completion(&x),
    )
}

pub async fn select_nonexistent(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.unique("missing");
    let x = s.execute_raw(format!("SELECT {name}").as_bytes()).await?;
    ensure(is(&x, StatusKind::No), "tagged NO", completion(&x))
}

pub async fn failed_select_deselects(ctx: &Ctx) -> CheckResult {
    let (mut s, _, _) = ctx
        .mailbox_with("deselect", &three(ctx, "deselect"))
        .await?;
    let missing = ctx.unique("missing");
    let x = s
        .execute_raw(format!("SELECT {missing}").as_bytes())
        .await?;
    ensure(is(&x, StatusKind::No), "NO to SELECT", completion(&x))?;
    let x = s.execute_raw(b"FETCH 1 (FLAGS)").await?;
    ensure(
        !is(&x, StatusKind::Ok),
        "BAD or NO to FETCH once no mailbox is selected",
        completion(&x),
    )
}

pub async fn exists_count(ctx: &Ctx) -> CheckResult {
    let messages: Vec<Vec<u8>> = (1..=4)
        .map(|n| simple_message(&ctx.unique("exists"), &format!("exists {n}"), "x"))
        .collect();
    // mailbox_with already compares EXISTS with the number appended.
    let (mut s, name, uids) = ctx.mailbox_with("exists", &messages).await?;
    ensure_eq("UIDs listed by UID FETCH 1:*", uids.len(), 4)?;
    let info = s.examine(&name).await?;
    ensure_eq("EXISTS on EXAMINE", info.exists, 4)
}

pub async fn uids_ascending(ctx: &Ctx) -> CheckResult {
    let messages: Vec<Vec<u8>> = (1..=5)
        .map(|n| simple_message(&ctx.unique("asc"), &format!("asc {n}"), "x"))
        .collect();
    let (mut s, _, _) = ctx.mailbox_with("ascending", &messages).await?;
    // Expunge the middle one so the check also covers a gap.
    expect_ok(&mut s, "STORE 3 +FLAGS.SILENT (\\Deleted)").await?;
    s.expunge().await?;
    let map = uid_map(&mut s).await?;
    let seqs: Vec<u32> = map.iter().map(|(seq, _)| *seq).collect();
    ensure_eq("sequence numbers", seqs, vec![1, 2, 3, 4])?;
    ensure(
        map.windows(2).all(|w| w[0].1 < w[1].1),
        "UIDs strictly ascending by sequence number",
        format!("{map:?}"),
    )
}

pub async fn uidnext_not_reused(ctx: &Ctx) -> CheckResult {
    let messages = three(ctx, "reuse");
    let (mut s, name, uids) = ctx.mailbox_with("reuse", &messages).await?;
    let last = *uids.last().unwrap_or(&0);
    expect_ok(&mut s, "STORE 3 +FLAGS.SILENT (\\Deleted)").await?;
    s.expunge().await?;
    let next = s.select(&name).await?.uid_next.unwrap_or(0);
    ensure(
        next > last,
        format!("UIDNEXT above the expunged UID {last}"),
        format!("UIDNEXT {next}"),
    )?;
    let extra = simple_message(&ctx.unique("reuse"), "reuse 4", "x");
    s.append(&name, &[], None, &extra).await?;
    s.noop().await?;
    let map = uid_map(&mut s).await?;
    let newest = map.last().map(|(_, u)| *u).unwrap_or(0);
    ensure(
        newest > last,
        format!("the new message's UID above the expunged UID {last}"),
        format!("{map:?}"),
    )
}

pub async fn status_matches_select(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "status").await?;
    for (n, message) in three(ctx, "status").iter().enumerate() {
        let flags = if n == 1 { vec![Flag::Seen] } else { vec![] };
        s.append(&name, &flags, None, message).await?;
    }
    let rev1 = s.capabilities().has_named("IMAP4rev1");
    let mut items = vec![
        StatusDataItemName::Messages,
        StatusDataItemName::UidNext,
        StatusDataItemName::UidValidity,
        StatusDataItemName::Unseen,
    ];
    if rev1 {
        items.push(StatusDataItemName::Recent);
    }
    let status = s.status(&name, &items).await?;
    let info = s.select(&name).await?;
    ensure_eq(
        "STATUS MESSAGES (SELECT EXISTS)",
        status.messages,
        Some(info.exists),
    )?;
    ensure_eq(
        "STATUS UIDNEXT (SELECT UIDNEXT)",
        status.uid_next,
        info.uid_next,
    )?;
    ensure_eq(
        "STATUS UIDVALIDITY (SELECT UIDVALIDITY)",
        status.uid_validity,
        info.uid_validity,
    )?;
    if rev1 {
        ensure_eq(
            "STATUS RECENT (SELECT RECENT)",
            status.recent,
            Some(info.recent),
        )?;
    }
    let unseen = s.search(&SearchQuery::parse("UNSEEN")?).await?;
    ensure_eq(
        "STATUS UNSEEN (messages without \\Seen)",
        status.unseen,
        Some(2),
    )?;
    ensure_eq("SEARCH UNSEEN count", unseen.len(), 2)?;
    if let Some(first) = info.unseen {
        ensure_eq("[UNSEEN n] (first unseen sequence number)", first, 1)?;
    }
    Ok(())
}

pub async fn bad_syntax(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    s.examine("INBOX").await?;
    let x = s.execute_raw(b"FETCH 1 (FLAGS").await?;
    ensure(
        is(&x, StatusKind::Bad),
        "tagged BAD to `FETCH 1 (FLAGS`",
        completion(&x),
    )?;
    let x = s.execute_raw(b"NOOP").await?;
    ensure(
        is(&x, StatusKind::Ok),
        "OK to NOOP after the BAD",
        completion(&x),
    )
}

pub async fn fetch_without_select(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let x = s.execute_raw(b"FETCH 1 (FLAGS)").await?;
    ensure(
        matches!(x.status(), Some(StatusKind::Bad | StatusKind::No)),
        "tagged BAD or NO",
        completion(&x),
    )?;
    expect_ok(&mut s, "NOOP").await.map(drop)
}

pub async fn unknown_command(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let x = s.execute_raw(b"XMSWNOSUCHCOMMAND arg").await?;
    match x.status() {
        Some(StatusKind::Bad) => Ok(()),
        _ => Err(fail("tagged BAD", completion(&x))),
    }
}
