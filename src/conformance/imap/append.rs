//! APPEND, COPY and MOVE: APPENDUID/COPYUID (UIDPLUS), [TRYCREATE], flags kept, and MOVE's
//! EXPUNGE in the source.

use std::collections::HashMap;

use imap_types::response::{Code, Data, StatusKind};

use super::support::{codes, completion, data, expand, fetch_uid, has_flag, is};
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, join_uids, simple_message, uid_set, Session};
use crate::conformance::{ensure, ensure_eq, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{FetchItem, Flag, SearchQuery, StatusDataItemName};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.append.appenduid",
        "[APPENDUID] names the mailbox UIDVALIDITY and the UID the message got",
        "RFC 4315 3",
        Must,
        Imap,
        appenduid,
        needs: ["UIDPLUS"],
        destructive
    ),
    check!(
        "imap.append.trycreate",
        "APPEND to a mailbox that does not exist is NO [TRYCREATE] and creates nothing",
        "RFC 9051 6.3.12",
        Must,
        Imap,
        append_trycreate,
        destructive
    ),
    check!(
        "imap.append.flags",
        "Flags given at APPEND are set on the message",
        "RFC 9051 6.3.12",
        Should,
        Imap,
        append_flags,
        destructive
    ),
    check!(
        "imap.copy.copyuid",
        "[COPYUID] gives source and destination UIDs of equal length, pairwise in order",
        "RFC 4315 3",
        Must,
        Imap,
        copyuid,
        needs: ["UIDPLUS"],
        destructive
    ),
    check!(
        "imap.copy.keeps-flags",
        "COPY keeps the source and preserves flags in the copies",
        "RFC 9051 6.4.7",
        Should,
        Imap,
        copy_keeps_flags,
        destructive
    ),
    check!(
        "imap.move.expunge-copyuid",
        "MOVE expunges the source messages and reports [COPYUID] for the destination",
        "RFC 6851 3.3",
        Must,
        Imap,
        move_expunge_copyuid,
        needs: ["MOVE", "UIDPLUS"],
        destructive
    ),
];

/// UID -> Message-ID of the messages `uids` in the selected mailbox.
async fn message_ids(
    s: &mut Session<'_>,
    uids: &[u32],
) -> Result<HashMap<u32, String>, CheckError> {
    let answers = s.uid_fetch(&uid_set(uids), &[FetchItem::Envelope]).await?;
    Ok(answers
        .iter()
        .filter_map(|m| {
            let id = m.envelope.as_ref()?.message_id.0.as_ref()?;
            Some((m.uid?, String::from_utf8_lossy(id.as_ref()).into_owned()))
        })
        .collect())
}

pub async fn appenduid(ctx: &Ctx) -> CheckResult {
    let (mut s, name, _) = ctx
        .mailbox_with("appenduid", &ctx.messages("appenduid", 1))
        .await?;
    let id = ctx.unique("appenduid");
    let got = s
        .append(&name, &[], None, &simple_message(&id, "appenduid", "x"))
        .await?
        .ok_or_else(|| fail("OK [APPENDUID validity uid]", "no APPENDUID"))?;
    let info = s.select(&name).await?;
    ensure_eq(
        "APPENDUID uidvalidity (the mailbox UIDVALIDITY)",
        Some(got.uid_validity),
        info.uid_validity,
    )?;
    let query = SearchQuery::parse(&format!("HEADER Message-ID \"{id}\""))?;
    ensure_eq(
        "APPENDUID uid (found by UID SEARCH)",
        vec![got.uid],
        s.uid_search(&query).await?,
    )
}

pub async fn append_trycreate(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let missing = ctx.unique("nobox");
    let message = simple_message(&ctx.unique("nobox"), "trycreate", "x");
    let mut command = format!("APPEND {missing} {{{}}}\r\n", message.len()).into_bytes();
    command.extend_from_slice(&message);
    let x = s.execute_raw(&command).await?;
    ensure(
        is(&x, StatusKind::No) && codes(&x).any(|c| matches!(c, Code::TryCreate)),
        "tagged NO [TRYCREATE]",
        completion(&x),
    )?;
    let listed = s.list("", &missing).await?;
    ensure(
        listed.is_empty(),
        format!("no mailbox {missing} after the failed APPEND"),
        format!("{listed:?}"),
    )
}

pub async fn append_flags(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "appendflags").await?;
    let message = simple_message(&ctx.unique("appendflags"), "flags", "x");
    s.append(&name, &[Flag::Flagged, Flag::Draft], None, &message)
        .await?;
    s.select(&name).await?;
    let m = s.fetch(&uid_set(&[1]), &[FetchItem::Flags]).await?;
    let m = m
        .iter()
        .find(|m| m.seq == 1)
        .ok_or_else(|| fail("FETCH 1 answer", "none"))?;
    ensure(
        has_flag(m, "\\Flagged") && has_flag(m, "\\Draft") && !has_flag(m, "\\Seen"),
        "FLAGS with \\Flagged and \\Draft, without \\Seen",
        format!("{:?}", super::support::flag_names(m)),
    )
}

pub async fn copyuid(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uids) = ctx
        .mailbox_with("copysrc", &ctx.messages("copy", 4))
        .await?;
    let dest = ctx.scratch_mailbox(&mut s, 0, "copydst").await?;
    // Copy three of four, listed out of order, so the pairing matters.
    let picked = [uids[3], uids[0], uids[2]];
    let x = expect_ok(&mut s, &format!("UID COPY {} {dest}", join_uids(&picked))).await?;
    let Some((validity, source, target)) = codes(&x).find_map(|c| match c {
        Code::CopyUid {
            uid_validity,
            source,
            destination,
        } => Some((uid_validity.get(), expand(source), expand(destination))),
        _ => None,
    }) else {
        return Err(fail("OK [COPYUID ...]", completion(&x)));
    };
    ensure(
        source.len() == target.len() && source.len() == 3,
        "3 source and 3 destination UIDs",
        format!("source {source:?}, destination {target:?}"),
    )?;
    let mut sorted = source.clone();
    sorted.sort_unstable();
    let mut want = picked.to_vec();
    want.sort_unstable();
    ensure_eq("COPYUID source UIDs", sorted, want)?;
    let source_ids = message_ids(&mut s, &source).await?;
    let status = s.status(&dest, &[StatusDataItemName::UidValidity]).await?;
    ensure_eq(
        "COPYUID uidvalidity (destination UIDVALIDITY)",
        Some(validity),
        status.uid_validity,
    )?;
    s.select(&dest).await?;
    let target_ids = message_ids(&mut s, &target).await?;
    for (src, dst) in source.iter().zip(&target) {
        ensure(
            source_ids.contains_key(src) && source_ids.get(src) == target_ids.get(dst),
            format!("source UID {src} copied to destination UID {dst}"),
            format!(
                "Message-ID {:?} in the source, {:?} in the destination",
                source_ids.get(src),
                target_ids.get(dst)
            ),
        )?;
    }
    Ok(())
}

pub async fn copy_keeps_flags(ctx: &Ctx) -> CheckResult {
    let (mut s, src, uids) = ctx
        .mailbox_with("copyflags", &ctx.messages("copyflags", 2))
        .await?;
    let dest = ctx.scratch_mailbox(&mut s, 0, "copyflagsdst").await?;
    expect_ok(
        &mut s,
        &format!("UID STORE {} +FLAGS.SILENT (\\Flagged \\Answered)", uids[0]),
    )
    .await?;
    expect_ok(&mut s, &format!("UID COPY {} {dest}", join_uids(&uids))).await?;
    let info = s.select(&src).await?;
    ensure_eq("source EXISTS after COPY", info.exists, 2)?;
    let info = s.select(&dest).await?;
    ensure_eq("destination EXISTS after COPY", info.exists, 2)?;
    let copies = s.fetch(&uid_set(&[1, 2]), &[FetchItem::Flags]).await?;
    let flagged: Vec<u32> = copies
        .iter()
        .filter(|m| has_flag(m, "\\Flagged") && has_flag(m, "\\Answered"))
        .map(|m| m.seq)
        .collect();
    ensure_eq("copies with \\Flagged \\Answered", flagged.len(), 1)
}

pub async fn move_expunge_copyuid(ctx: &Ctx) -> CheckResult {
    let (mut s, src, uids) = ctx
        .mailbox_with("movesrc", &ctx.messages("move", 3))
        .await?;
    let dest = ctx.scratch_mailbox(&mut s, 0, "movedst").await?;
    let moved = [uids[0], uids[2]];
    let ids = message_ids(&mut s, &moved).await?;
    let x = expect_ok(&mut s, &format!("UID MOVE {} {dest}", join_uids(&moved))).await?;
    let expunges: Vec<u32> = data(&x)
        .filter_map(|d| match d {
            Data::Expunge(n) => Some(n.get()),
            _ => None,
        })
        .collect();
    ensure_eq("number of EXPUNGE responses", expunges.len(), 2)?;
    let Some((source, target)) = codes(&x).find_map(|c| match c {
        Code::CopyUid {
            source,
            destination,
            ..
        } => Some((expand(source), expand(destination))),
        _ => None,
    }) else {
        return Err(fail(
            "[COPYUID ...] in an untagged or the tagged OK",
            completion(&x),
        ));
    };
    ensure(
        source.len() == 2 && target.len() == 2,
        "2 source and 2 destination UIDs",
        format!("source {source:?}, destination {target:?}"),
    )?;
    let info = s.select(&src).await?;
    ensure_eq("source EXISTS after MOVE", info.exists, 1)?;
    let left = crate::conformance::context::all_uids(&mut s).await?;
    ensure_eq("source UIDs after MOVE", left, vec![uids[1]])?;
    s.select(&dest).await?;
    for (src_uid, dst_uid) in source.iter().zip(&target) {
        let m = fetch_uid(&mut s, *dst_uid, &[FetchItem::Envelope]).await?;
        let got = m
            .envelope
            .as_ref()
            .and_then(|e| e.message_id.0.as_ref())
            .map(|v| String::from_utf8_lossy(v.as_ref()).into_owned());
        ensure_eq(
            &format!("Message-ID of destination UID {dst_uid} (moved from {src_uid})"),
            got.as_ref(),
            ids.get(src_uid),
        )?;
    }
    Ok(())
}
