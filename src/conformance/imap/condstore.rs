//! CONDSTORE and QRESYNC (RFC 7162): mod-sequences, CHANGEDSINCE, UNCHANGEDSINCE, VANISHED.

use imap_types::response::{Code, Data};
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::untagged::{
    completion_code, data, expunges, fetches, has_flag, lines, modseq_of, raw, require_ok, uid_of,
    untagged_code,
};
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, Session};
use crate::conformance::{ensure, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{Flag, RawExchange};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.condstore.select-highestmodseq",
        "SELECT (CONDSTORE) reports [HIGHESTMODSEQ n] or [NOMODSEQ]",
        "RFC 7162 3.1.2.1",
        Must,
        Imap,
        select_highestmodseq,
        needs: ["CONDSTORE"],
        destructive
    ),
    check!(
        "imap.condstore.store-raises-modseq",
        "STORE raises the message's MODSEQ and HIGHESTMODSEQ strictly",
        "RFC 7162 3.1",
        Must,
        Imap,
        store_raises_modseq,
        needs: ["CONDSTORE"],
        destructive
    ),
    check!(
        "imap.condstore.fetch-changedsince",
        "FETCH (CHANGEDSINCE n) returns exactly the messages changed after n",
        "RFC 7162 3.1.4.1",
        Must,
        Imap,
        fetch_changedsince,
        needs: ["CONDSTORE"],
        destructive
    ),
    check!(
        "imap.condstore.unchangedsince-modified",
        "STORE (UNCHANGEDSINCE old) on a changed message fails it with [MODIFIED] and stores nothing",
        "RFC 7162 3.1.3",
        Must,
        Imap,
        unchangedsince_modified,
        needs: ["CONDSTORE"],
        destructive
    ),
    check!(
        "imap.qresync.vanished-not-expunge",
        "with QRESYNC enabled another session's expunge is reported as VANISHED, not EXPUNGE",
        "RFC 7162 3.2.10",
        Must,
        Imap,
        vanished_not_expunge,
        needs: ["QRESYNC", "ENABLE"],
        destructive
    ),
    check!(
        "imap.qresync.select-vanished-earlier",
        "SELECT (QRESYNC (uidvalidity modseq)) reports VANISHED (EARLIER) for messages expunged since",
        "RFC 7162 3.2.5.1",
        Must,
        Imap,
        select_vanished_earlier,
        needs: ["QRESYNC", "ENABLE"],
        destructive
    ),
];

fn highest(ex: &RawExchange) -> Option<u64> {
    untagged_code(ex, |c| match c {
        Code::HighestModSeq(n) => Some(n.get()),
        _ => None,
    })
}

fn uidvalidity(ex: &RawExchange) -> Option<u32> {
    untagged_code(ex, |c| match c {
        Code::UidValidity(n) => Some(n.get()),
        _ => None,
    })
}

/// Whether a UID set from the server contains `uid` (range by range: `*` is the largest UID,
/// so a range ending in `*` holds everything from its start).
fn contains(set: &SequenceSet, uid: u32) -> bool {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => u32::MAX,
    };
    set.0.as_ref().iter().any(|seq| match seq {
        Sequence::Single(v) => value(v) == uid,
        Sequence::Range(a, b) => {
            let (lo, hi) = (value(a).min(value(b)), value(a).max(value(b)));
            (lo..=hi).contains(&uid)
        }
    })
}

/// SELECT (CONDSTORE), returning HIGHESTMODSEQ; skips on NOMODSEQ.
async fn select_condstore(s: &mut Session<'_>, name: &str) -> Result<u64, CheckError> {
    let ex = raw(s, &format!("SELECT {name} (CONDSTORE)")).await?;
    require_ok(&ex, "SELECT (CONDSTORE)")?;
    if untagged_code(&ex, |c| matches!(c, Code::NoModSeq).then_some(())).is_some() {
        return Err(CheckError::Skip(
            "the mailbox has no mod-sequences (NOMODSEQ)".into(),
        ));
    }
    highest(&ex).ok_or_else(|| fail("* OK [HIGHESTMODSEQ n] in SELECT (CONDSTORE)", lines(&ex)))
}

/// MODSEQ of one message by UID.
async fn modseq(s: &mut Session<'_>, uid: u32) -> Result<u64, CheckError> {
    let ex = raw(s, &format!("UID FETCH {uid} (MODSEQ)")).await?;
    require_ok(&ex, "UID FETCH (MODSEQ)")?;
    fetches(&ex)
        .iter()
        .find(|(_, items)| uid_of(items) == Some(uid))
        .and_then(|(_, items)| modseq_of(items))
        .ok_or_else(|| fail(format!("`* n FETCH (UID {uid} MODSEQ (m))`"), lines(&ex)))
}

pub async fn select_highestmodseq(ctx: &Ctx) -> CheckResult {
    let (mut s, name, _) = ctx
        .mailbox_with("cs-select", &ctx.messages("cs-select", 1))
        .await?;
    let ex = raw(&mut s, &format!("SELECT {name} (CONDSTORE)")).await?;
    require_ok(&ex, "SELECT (CONDSTORE)")?;
    let nomodseq = untagged_code(&ex, |c| matches!(c, Code::NoModSeq).then_some(())).is_some();
    ensure(
        nomodseq || highest(&ex).is_some(),
        "* OK [HIGHESTMODSEQ n] or * OK [NOMODSEQ]",
        lines(&ex),
    )
}

pub async fn store_raises_modseq(ctx: &Ctx) -> CheckResult {
    let (mut s, name, uids) = ctx
        .mailbox_with("cs-store", &ctx.messages("cs-store", 1))
        .await?;
    let before = select_condstore(&mut s, &name).await?;
    let m0 = modseq(&mut s, uids[0]).await?;
    ensure(
        m0 <= before,
        format!("MODSEQ <= HIGHESTMODSEQ {before}"),
        format!("MODSEQ {m0}"),
    )?;
    expect_ok(
        &mut s,
        &format!("UID STORE {} +FLAGS.SILENT (\\Flagged)", uids[0]),
    )
    .await?;
    let m1 = modseq(&mut s, uids[0]).await?;
    ensure(
        m1 > m0,
        format!("MODSEQ above {m0} after STORE"),
        format!("MODSEQ {m1}"),
    )?;
    let after = select_condstore(&mut s, &name).await?;
    ensure(
        after > before && after >= m1,
        format!("HIGHESTMODSEQ above {before} and at least {m1} after STORE"),
        format!("HIGHESTMODSEQ {after}"),
    )
}

pub async fn fetch_changedsince(ctx: &Ctx) -> CheckResult {
    let (mut s, name, uids) = ctx
        .mailbox_with("cs-changed", &ctx.messages("cs-changed", 3))
        .await?;
    let since = select_condstore(&mut s, &name).await?;
    expect_ok(
        &mut s,
        &format!("UID STORE {} +FLAGS.SILENT (\\Flagged)", uids[1]),
    )
    .await?;
    let ex = raw(
        &mut s,
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})"),
    )
    .await?;
    require_ok(&ex, "UID FETCH (CHANGEDSINCE)")?;
    let got: Vec<Option<u32>> = fetches(&ex)
        .iter()
        .map(|(_, items)| uid_of(items))
        .collect();
    ensure(
        got == vec![Some(uids[1])],
        format!("one FETCH, for UID {} (the only one changed)", uids[1]),
        lines(&ex),
    )?;
    ensure(
        fetches(&ex)
            .iter()
            .all(|(_, items)| modseq_of(items).is_some_and(|m| m > since)),
        format!("MODSEQ above {since} in the answer"),
        lines(&ex),
    )
}

pub async fn unchangedsince_modified(ctx: &Ctx) -> CheckResult {
    let (mut s, name, uids) = ctx
        .mailbox_with("cs-unchanged", &ctx.messages("cs-unchanged", 1))
        .await?;
    select_condstore(&mut s, &name).await?;
    let uid = uids[0];
    let old = modseq(&mut s, uid).await?;
    expect_ok(&mut s, &format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)")).await?;
    let ex = raw(
        &mut s,
        &format!("UID STORE {uid} (UNCHANGEDSINCE {old}) +FLAGS (\\Flagged)"),
    )
    .await?;
    let modified = match completion_code(&ex) {
        Some(Code::Modified(set)) => contains(set, uid),
        _ => false,
    };
    ensure(modified, format!("tagged [MODIFIED {uid}]"), lines(&ex))?;
    let check = raw(&mut s, &format!("UID FETCH {uid} (FLAGS)")).await?;
    let flagged = fetches(&check)
        .iter()
        .any(|(_, items)| has_flag(items, &Flag::Flagged));
    ensure(!flagged, "\\Flagged not stored", lines(&check))
}

/// A fresh session with QRESYNC enabled (ENABLE is only valid before SELECT).
async fn qresync_session(ctx: &Ctx) -> Result<Session<'_>, CheckError> {
    let mut s = ctx.login(0).await?;
    let ex = raw(&mut s, "ENABLE QRESYNC").await?;
    require_ok(&ex, "ENABLE QRESYNC")?;
    Ok(s)
}

fn vanished(ex: &RawExchange, want_earlier: bool, uid: u32) -> bool {
    data(ex).any(|(_, d)| match d {
        Data::Vanished {
            earlier,
            known_uids,
        } => *earlier == want_earlier && contains(known_uids, uid),
        _ => false,
    })
}

pub async fn vanished_not_expunge(ctx: &Ctx) -> CheckResult {
    let (_, name, uids) = ctx
        .mailbox_with("qr-vanished", &ctx.messages("qr-vanished", 3))
        .await?;
    let mut a = qresync_session(ctx).await?;
    let sel = raw(&mut a, &format!("SELECT {name}")).await?;
    require_ok(&sel, "SELECT")?;
    ctx.expunge_elsewhere(&name, &uids[1..2]).await?;
    let ex = raw(&mut a, "NOOP").await?;
    ensure(
        expunges(&ex).is_empty() && vanished(&ex, false, uids[1]),
        format!("`* VANISHED {}` and no EXPUNGE", uids[1]),
        lines(&ex),
    )
}

pub async fn select_vanished_earlier(ctx: &Ctx) -> CheckResult {
    let (_, name, uids) = ctx
        .mailbox_with("qr-select", &ctx.messages("qr-select", 3))
        .await?;
    let (validity, since) = {
        let mut a = qresync_session(ctx).await?;
        let sel = raw(&mut a, &format!("SELECT {name}")).await?;
        require_ok(&sel, "SELECT")?;
        match (uidvalidity(&sel), highest(&sel)) {
            (Some(v), Some(h)) => (v, h),
            _ => {
                return Err(fail(
                    "[UIDVALIDITY] and [HIGHESTMODSEQ] in SELECT with QRESYNC enabled",
                    lines(&sel),
                ))
            }
        }
    };
    ctx.expunge_elsewhere(&name, &uids[1..2]).await?;
    let mut a = qresync_session(ctx).await?;
    let ex = raw(
        &mut a,
        &format!("SELECT {name} (QRESYNC ({validity} {since}))"),
    )
    .await?;
    require_ok(&ex, "SELECT (QRESYNC)")?;
    ensure(
        vanished(&ex, true, uids[1]),
        format!("`* VANISHED (EARLIER) {}`", uids[1]),
        lines(&ex),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_from_the_server_are_searched_without_expanding_star() {
        let set = SequenceSet::try_from("2,5:7,10:*").unwrap();
        assert!(contains(&set, 2) && contains(&set, 6) && contains(&set, 4_000_000_000));
        assert!(!contains(&set, 3) && !contains(&set, 9));
    }

    #[test]
    fn table_entries_keep_needs_and_destructive() {
        let by_id = |id: &str| *CHECKS.iter().find(|c| c.id == id).unwrap();
        let check = by_id("imap.qresync.vanished-not-expunge");
        assert_eq!(check.needs, ["QRESYNC", "ENABLE"]);
        assert!(check.destructive);
        let check = super::super::extensions::CHECKS[0];
        assert_eq!(check.needs, ["ENABLE", "CONDSTORE"]);
        assert!(!check.destructive);
    }
}
