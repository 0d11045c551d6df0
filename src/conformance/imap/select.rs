//! Greeting, CAPABILITY, SELECT/EXAMINE: the numbers every client builds its cache on.

use crate::conform_check as check;
use crate::conformance::context::simple_message;
use crate::conformance::{ensure, fail, Check, CheckResult, Ctx};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.greeting.capability-imap4rev1",
        "CAPABILITY lists IMAP4rev1 or IMAP4rev2",
        "RFC 9051 6.1.1",
        Must,
        Imap,
        capability_has_revision
    ),
    check!(
        "imap.select.uidvalidity-range",
        "SELECT reports a non-zero 32-bit UIDVALIDITY",
        "RFC 9051 2.3.1.1",
        Must,
        Imap,
        uidvalidity_range
    ),
    check!(
        "imap.select.uidvalidity-stable",
        "UIDVALIDITY is the same in two sessions and over time",
        "RFC 9051 2.3.1.1",
        Must,
        Imap,
        uidvalidity_stable
    ),
    check!(
        "imap.select.uidnext-present",
        "SELECT reports UIDNEXT, and it grows after APPEND",
        "RFC 9051 7.1",
        Must,
        Imap,
        uidnext_grows,
        destructive
    ),
];

pub async fn capability_has_revision(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.connect_imap().await?;
    let caps = s.capability().await?;
    ensure(
        caps.has_named("IMAP4rev1") || caps.has_named("IMAP4rev2"),
        "IMAP4rev1 or IMAP4rev2 in CAPABILITY",
        caps.iter().collect::<Vec<_>>().join(" "),
    )
}

pub async fn uidvalidity_range(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let info = s.select("INBOX").await?;
    match info.uid_validity {
        Some(v) if v > 0 => Ok(()),
        other => Err(fail(
            "* OK [UIDVALIDITY n] with 0 < n < 2^32",
            format!("{other:?}"),
        )),
    }
}

pub async fn uidvalidity_stable(ctx: &Ctx) -> CheckResult {
    let mut a = ctx.login(0).await?;
    let mut b = ctx.login(0).await?;
    let first = a.examine("INBOX").await?.uid_validity;
    let second = b.examine("INBOX").await?.uid_validity;
    let again = a.examine("INBOX").await?.uid_validity;
    ensure(
        first.is_some() && first == second && first == again,
        "one UIDVALIDITY for INBOX in every session",
        format!("{first:?}, {second:?}, then {again:?}"),
    )
}

pub async fn uidnext_grows(ctx: &Ctx) -> CheckResult {
    let id = ctx.unique("uidnext");
    let (mut s, name, uids) = ctx
        .mailbox_with("uidnext", &[simple_message(&id, "uidnext", "one")])
        .await?;
    let before = s.select(&name).await?.uid_next;
    let Some(before) = before else {
        return Err(fail("* OK [UIDNEXT n] in SELECT", "no UIDNEXT"));
    };
    ensure(
        uids.iter().all(|&u| u < before),
        "UIDNEXT above every existing UID",
        format!("UIDNEXT {before}, UIDs {uids:?}"),
    )?;
    s.append(
        &name,
        &[],
        None,
        &simple_message(&ctx.unique("uidnext"), "uidnext", "two"),
    )
    .await?;
    let after = s.select(&name).await?.uid_next.unwrap_or(0);
    ensure(
        after > before,
        format!("UIDNEXT above {before} after APPEND"),
        format!("UIDNEXT {after}"),
    )
}
