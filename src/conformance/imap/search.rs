//! SEARCH and UID SEARCH in mailboxes where sequence numbers and UIDs differ; new messages
//! announced with EXISTS; EXPUNGE renumbering.

use imap_types::response::{Code, Data, StatusKind};

use super::support::{codes, completion, data, is};
use crate::conform_check as check;
use crate::conformance::context::uid_map;
use crate::conformance::context::{expect_ok, join_uids, simple_message, uid_set, Session};
use crate::conformance::{ensure, ensure_eq, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{Flag, SearchQuery};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.search.sequence-numbers",
        "SEARCH returns sequence numbers, not UIDs",
        "RFC 9051 6.4.4",
        Must,
        Imap,
        search_sequence_numbers,
        destructive
    ),
    check!(
        "imap.search.uid-returns-uids",
        "UID SEARCH returns UIDs, not sequence numbers",
        "RFC 9051 6.4.9",
        Must,
        Imap,
        uid_search_uids,
        destructive
    ),
    check!(
        "imap.search.header",
        "SEARCH HEADER finds exactly the message with that header value",
        "RFC 9051 6.4.4",
        Must,
        Imap,
        search_header,
        destructive
    ),
    check!(
        "imap.search.subject",
        "SEARCH SUBJECT finds exactly the messages whose subject contains the string",
        "RFC 9051 6.4.4",
        Must,
        Imap,
        search_subject,
        destructive
    ),
    check!(
        "imap.search.unseen-flagged",
        "SEARCH UNSEEN and SEARCH FLAGGED find exactly the messages with those flags",
        "RFC 9051 6.4.4",
        Must,
        Imap,
        search_flags,
        destructive
    ),
    check!(
        "imap.search.charset-utf8",
        "SEARCH CHARSET UTF-8 matches a non-ASCII subject, or is refused with [BADCHARSET]",
        "RFC 3501 6.4.4",
        Must,
        Imap,
        search_utf8,
        destructive
    ),
    check!(
        "imap.expunge.renumbering",
        "EXPUNGE responses account for renumbering; the other UIDs stay",
        "RFC 9051 7.5.1",
        Must,
        Imap,
        expunge_renumbering,
        destructive
    ),
    check!(
        "imap.expunge.uid-expunge",
        "UID EXPUNGE removes only the listed \\Deleted messages",
        "RFC 4315 2.1",
        Must,
        Imap,
        uid_expunge_only_listed,
        needs: ["UIDPLUS"],
        destructive
    ),
];

/// Four messages, the first expunged: sequence numbers 1..3 are the UIDs returned.
async fn shifted<'c>(ctx: &'c Ctx) -> Result<(Session<'c>, Vec<u32>), CheckError> {
    let (mut s, _, uids) = ctx
        .mailbox_with("shifted", &ctx.messages("shifted", 4))
        .await?;
    expect_ok(&mut s, "STORE 1 +FLAGS.SILENT (\\Deleted)").await?;
    s.expunge().await?;
    Ok((s, uids[1..].to_vec()))
}

pub async fn search_sequence_numbers(ctx: &Ctx) -> CheckResult {
    let (mut s, _) = shifted(ctx).await?;
    let mut found = s.search(&SearchQuery::all()).await?;
    found.sort_unstable();
    ensure_eq("SEARCH ALL", found, vec![1, 2, 3])
}

pub async fn uid_search_uids(ctx: &Ctx) -> CheckResult {
    let (mut s, remaining) = shifted(ctx).await?;
    let mut found = s.uid_search(&SearchQuery::all()).await?;
    found.sort_unstable();
    ensure_eq("UID SEARCH ALL", found, remaining.clone())?;
    let mut found = s.uid_search(&SearchQuery::parse("2")?).await?;
    found.sort_unstable();
    ensure_eq("UID SEARCH 2 (message 2)", found, vec![remaining[1]])
}

pub async fn search_header(ctx: &Ctx) -> CheckResult {
    let token = ctx.unique("hdr");
    let mut list = ctx.messages("header", 3);
    let marked = format!(
        "X-Conform-Token: {token}\r\n{}",
        String::from_utf8_lossy(&list[1])
    );
    list[1] = marked.into_bytes();
    let (mut s, _, _) = ctx.mailbox_with("header", &list).await?;
    let query = SearchQuery::parse(&format!("HEADER X-Conform-Token \"{token}\""))?;
    ensure_eq(
        "SEARCH HEADER X-Conform-Token",
        s.search(&query).await?,
        vec![2],
    )
}

pub async fn search_subject(ctx: &Ctx) -> CheckResult {
    let list = vec![
        simple_message(&ctx.unique("subj"), "alpha report", "x"),
        simple_message(&ctx.unique("subj"), "beta Zebrafish notes", "x"),
        simple_message(&ctx.unique("subj"), "gamma", "zebrafish in the body only"),
        simple_message(&ctx.unique("subj"), "more ZEBRAFISH", "x"),
    ];
    let (mut s, _, _) = ctx.mailbox_with("subject", &list).await?;
    let mut found = s.search(&SearchQuery::parse("SUBJECT zebrafish")?).await?;
    found.sort_unstable();
    ensure_eq(
        "SEARCH SUBJECT zebrafish (case-insensitive)",
        found,
        vec![2, 4],
    )
}

pub async fn search_flags(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "sflags").await?;
    let flag_sets: [&[Flag]; 4] = [
        &[Flag::Seen],
        &[],
        &[Flag::Flagged, Flag::Seen],
        &[Flag::Flagged],
    ];
    for flags in flag_sets {
        let message = simple_message(&ctx.unique("sflags"), "flags", "x");
        s.append(&name, flags, None, &message).await?;
    }
    s.select(&name).await?;
    let mut unseen = s.search(&SearchQuery::parse("UNSEEN")?).await?;
    unseen.sort_unstable();
    ensure_eq("SEARCH UNSEEN", unseen, vec![2, 4])?;
    let mut flagged = s.search(&SearchQuery::parse("FLAGGED")?).await?;
    flagged.sort_unstable();
    ensure_eq("SEARCH FLAGGED", flagged, vec![3, 4])?;
    let mut both = s.search(&SearchQuery::parse("FLAGGED SEEN")?).await?;
    both.sort_unstable();
    ensure_eq("SEARCH FLAGGED SEEN", both, vec![3])
}

pub async fn search_utf8(ctx: &Ctx) -> CheckResult {
    // "Grüße aus Köln" as an RFC 2047 encoded word.
    let list = vec![
        simple_message(&ctx.unique("utf8"), "plain ascii", "x"),
        simple_message(
            &ctx.unique("utf8"),
            "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=",
            "x",
        ),
    ];
    let (mut s, _, _) = ctx.mailbox_with("utf8", &list).await?;
    let needle = "Köln".as_bytes();
    let mut command = format!("SEARCH CHARSET UTF-8 SUBJECT {{{}}}\r\n", needle.len()).into_bytes();
    command.extend_from_slice(needle);
    let x = s.execute_raw(&command).await?;
    if is(&x, StatusKind::No) && codes(&x).any(|c| matches!(c, Code::BadCharset { .. })) {
        ctx.note("server refused CHARSET UTF-8 with [BADCHARSET], which is allowed");
        return Ok(());
    }
    ensure(
        is(&x, StatusKind::Ok),
        "OK, or NO [BADCHARSET]",
        completion(&x),
    )?;
    let mut found: Vec<u32> = data(&x)
        .filter_map(|d| match d {
            Data::Search(ids, _) => Some(ids.iter().map(|n| n.get()).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    found.sort_unstable();
    ensure_eq("SEARCH CHARSET UTF-8 SUBJECT \"Köln\"", found, vec![2])
}

pub async fn exists_after_append(ctx: &Ctx) -> CheckResult {
    let (mut a, name, _) = ctx
        .mailbox_with("exists-append", &ctx.messages("exists-append", 2))
        .await?;
    let mut b = ctx.login(0).await?;
    let extra = simple_message(&ctx.unique("exists-append"), "third", "x");
    b.append(&name, &[], None, &extra).await?;
    a.noop().await?;
    ensure_eq(
        "message count after NOOP (* 3 EXISTS)",
        a.mailbox().exists(),
        3,
    )
}

pub async fn expunge_renumbering(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uids) = ctx
        .mailbox_with("renumber", &ctx.messages("renumber", 5))
        .await?;
    expect_ok(&mut s, "STORE 2,4 +FLAGS.SILENT (\\Deleted)").await?;
    let reported = s.expunge().await?;
    // Replay the EXPUNGE responses on the list of UIDs: each removes the message that has
    // that sequence number at that moment.
    let mut left = uids.clone();
    for &seq in &reported {
        let index = seq as usize;
        if index == 0 || index > left.len() {
            return Err(fail(
                "EXPUNGE sequence numbers within the mailbox",
                format!("{reported:?} for 5 messages"),
            ));
        }
        left.remove(index - 1);
    }
    let expected = vec![uids[0], uids[2], uids[4]];
    ensure(
        left == expected,
        format!(
            "EXPUNGE responses removing UIDs {} and {} (e.g. `2` then `3`)",
            uids[1], uids[3]
        ),
        format!("{reported:?}, which leaves UIDs {left:?}"),
    )?;
    let map = uid_map(&mut s).await?;
    let after: Vec<u32> = map.iter().map(|(_, u)| *u).collect();
    ensure_eq("UIDs after EXPUNGE", after, expected)?;
    ensure_eq("message count", s.mailbox().exists(), 3)
}

pub async fn uid_expunge_only_listed(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uids) = ctx
        .mailbox_with("uidexpunge", &ctx.messages("uidexpunge", 3))
        .await?;
    expect_ok(
        &mut s,
        &format!(
            "UID STORE {} +FLAGS.SILENT (\\Deleted)",
            join_uids(&uids[..2])
        ),
    )
    .await?;
    s.uid_expunge(&uid_set(&uids[..1])).await?;
    let map = uid_map(&mut s).await?;
    let after: Vec<u32> = map.iter().map(|(_, u)| *u).collect();
    ensure_eq(
        "UIDs after UID EXPUNGE of the first",
        after,
        uids[1..].to_vec(),
    )
}
