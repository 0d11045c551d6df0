//! IDLE (RFC 2177, RFC 9051 6.3.13): the continuation, pushes of changes made by another
//! session of the same account, and DONE.

use std::time::Duration;

use super::untagged::wait_for;
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, simple_message};
use crate::conformance::{ensure, fail, Check, CheckResult, Ctx};
use crate::proto::imap::{Flag, MailboxEvent};

/// How long a push may take (the lab raises inotify limits; polling servers are slower).
const PUSH_WITHIN: Duration = Duration::from_secs(10);

pub const CHECKS: &[Check] = &[
    check!(
        "imap.idle.continuation",
        "IDLE is answered with a `+` continuation request",
        "RFC 9051 6.3.13",
        Must,
        Imap,
        continuation,
        needs: ["IDLE"]
    ),
    check!(
        "imap.idle.done-ok",
        "DONE ends IDLE with the tagged OK, and the session takes commands again",
        "RFC 9051 6.3.13",
        Must,
        Imap,
        done_ok,
        needs: ["IDLE"]
    ),
    check!(
        "imap.idle.push-exists",
        "an APPEND by another session is pushed as `* N EXISTS` during IDLE",
        "RFC 9051 6.3.13",
        Should,
        Imap,
        push_exists,
        needs: ["IDLE"],
        destructive
    ),
    check!(
        "imap.idle.push-expunge",
        "an EXPUNGE by another session is pushed as `* N EXPUNGE` during IDLE",
        "RFC 9051 6.3.13",
        Should,
        Imap,
        push_expunge,
        needs: ["IDLE"],
        destructive
    ),
    check!(
        "imap.idle.flag-update",
        "a flag change by another session is reported as FETCH FLAGS (during IDLE or at the NOOP after DONE)",
        "RFC 9051 5.2",
        Should,
        Imap,
        flag_update,
        needs: ["IDLE"],
        destructive
    ),
];

pub async fn continuation(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    s.examine("INBOX").await?;
    // idle() fails unless the server answers with `+`.
    s.idle().await?;
    s.done().await?;
    Ok(())
}

pub async fn done_ok(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    s.examine("INBOX").await?;
    s.idle().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // done() fails unless the tagged completion of IDLE is OK.
    s.done().await?;
    // The session must still take commands after IDLE ends.
    expect_ok(&mut s, "NOOP").await?;
    Ok(())
}

pub async fn push_exists(ctx: &Ctx) -> CheckResult {
    let (mut a, name, _) = ctx.mailbox_with("idle-exists", &[]).await?;
    a.drain_events();
    a.idle().await?;
    let mut b = ctx.login(0).await?;
    let msg = simple_message(&ctx.unique("idle-exists"), "idle exists", "pushed");
    b.append(&name, &[], None, &msg).await?;
    let (got, others) = wait_for(
        &mut a,
        PUSH_WITHIN,
        |e| matches!(e, MailboxEvent::Exists(n) if *n >= 1),
    )
    .await?;
    a.done().await?;
    match got {
        Some(_) => Ok(()),
        None => Err(fail(
            format!("`* 1 EXISTS` within {PUSH_WITHIN:?} of another session's APPEND"),
            format!("events {others:?}"),
        )),
    }
}

pub async fn push_expunge(ctx: &Ctx) -> CheckResult {
    let msgs = [
        simple_message(&ctx.unique("idle-exp"), "idle expunge 1", "one"),
        simple_message(&ctx.unique("idle-exp"), "idle expunge 2", "two"),
    ];
    let (mut a, name, uids) = ctx.mailbox_with("idle-expunge", &msgs).await?;
    a.drain_events();
    a.idle().await?;
    ctx.expunge_elsewhere(&name, &uids[1..2]).await?;
    let (got, others) = wait_for(&mut a, PUSH_WITHIN, |e| {
        matches!(e, MailboxEvent::Expunge(_))
    })
    .await?;
    a.done().await?;
    match got {
        Some(MailboxEvent::Expunge(2)) => Ok(()),
        Some(other) => Err(fail(
            "`* 2 EXPUNGE` (the second message)",
            format!("{other:?}"),
        )),
        None => Err(fail(
            format!("`* 2 EXPUNGE` within {PUSH_WITHIN:?} of another session's EXPUNGE"),
            format!("events {others:?}"),
        )),
    }
}

pub async fn flag_update(ctx: &Ctx) -> CheckResult {
    let msgs = [simple_message(&ctx.unique("idle-flag"), "idle flag", "one")];
    let (mut a, name, uids) = ctx.mailbox_with("idle-flag", &msgs).await?;
    a.drain_events();
    a.idle().await?;
    let mut b = ctx.login(0).await?;
    b.select(&name).await?;
    expect_ok(
        &mut b,
        &format!("UID STORE {} +FLAGS.SILENT (\\Flagged)", uids[0]),
    )
    .await?;
    let flagged = |e: &MailboxEvent| matches!(e, MailboxEvent::Fetch(m) if m.seq == 1 && m.has_flag(&Flag::Flagged));
    // RFC 2177 lets the server push flag changes during IDLE; RFC 9051 5.2 says it SHOULD
    // send them unasked, so the NOOP after DONE is the last chance.
    let (got, mut seen) = wait_for(&mut a, PUSH_WITHIN, flagged).await?;
    a.done().await?;
    if got.is_some() {
        return Ok(());
    }
    seen.extend(a.drain_events());
    if seen.iter().any(flagged) {
        return Ok(());
    }
    a.noop().await?;
    let after = a.drain_events();
    ensure(
        after.iter().any(flagged),
        "`* 1 FETCH (FLAGS (... \\Flagged ...))` during IDLE or after DONE + NOOP",
        format!("during IDLE {seen:?}, after NOOP {after:?}"),
    )
}
