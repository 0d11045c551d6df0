//! Literals: LOGIN with literal arguments, the `+` of a synchronizing literal, LITERAL+/-
//! non-synchronizing literals, and message data that looks like IMAP commands.

use imap_types::response::{Response, StatusKind};

use super::support::{completion, fetch_uid, is, line, saw_bye, PEEK_ALL};
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, simple_message, Session};
use crate::conformance::{ensure, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::SearchQuery;

pub const CHECKS: &[Check] = &[
    check!(
        "imap.literal.login",
        "LOGIN with user name and password sent as literals succeeds",
        "RFC 9051 4.3",
        Must,
        Imap,
        login_literals
    ),
    check!(
        "imap.literal.sync-continuation",
        "A synchronizing literal in APPEND gets a `+` continuation before the data",
        "RFC 9051 4.3",
        Must,
        Imap,
        sync_continuation,
        destructive
    ),
    check!(
        "imap.literal.non-sync-append",
        "APPEND with a non-synchronizing literal {N+} stores the message",
        "RFC 7888 3",
        Must,
        Imap,
        non_sync_append,
        needs: ["LITERAL+|LITERAL-"],
        destructive
    ),
    check!(
        "imap.literal.command-lookalike",
        "Command-like lines inside a literal are stored verbatim, never executed",
        "RFC 9051 4.3",
        Must,
        Imap,
        command_lookalike,
        destructive
    ),
];

pub async fn login_literals(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.connect_imap().await?;
    if s.capabilities().has_named("LOGINDISABLED") {
        return Err(CheckError::Skip(
            "LOGINDISABLED announced on this connection".into(),
        ));
    }
    let account = ctx.account(0);
    let password = account.password.expose();
    let command = format!(
        "LOGIN {{{}}}\r\n{} {{{}}}\r\n{}",
        account.user.len(),
        account.user,
        password.len(),
        password
    );
    let x = s.execute_raw(command.as_bytes()).await?;
    ensure(is(&x, StatusKind::Ok), "tagged OK to LOGIN", completion(&x))?;
    s.examine("INBOX").await?;
    Ok(())
}

/// `APPEND mailbox {N}` (or `{N+}`) with `message`, raw.
fn append_command(mailbox: &str, message: &[u8], non_sync: bool) -> Vec<u8> {
    let plus = if non_sync { "+" } else { "" };
    let mut command = format!("APPEND {mailbox} {{{}{plus}}}\r\n", message.len()).into_bytes();
    command.extend_from_slice(message);
    command
}

/// Finds the message by Message-ID in the (selected) mailbox and compares its bytes.
async fn stored_verbatim(
    s: &mut Session<'_>,
    mailbox: &str,
    id: &str,
    message: &[u8],
) -> CheckResult {
    s.select(mailbox).await?;
    let query = SearchQuery::parse(&format!("HEADER Message-ID \"{id}\""))?;
    let uids = s.uid_search(&query).await?;
    let [uid] = uids[..] else {
        return Err(fail(
            "one message with our Message-ID",
            format!("UIDs {uids:?}"),
        ));
    };
    let m = fetch_uid(s, uid, &[PEEK_ALL]).await?;
    let body = m.body().map(|b| b.to_vec()).unwrap_or_default();
    ensure(
        body == message,
        format!("BODY[] equal to the {} appended octets", message.len()),
        String::from_utf8_lossy(&body)
            .chars()
            .take(300)
            .collect::<String>(),
    )
}

pub async fn sync_continuation(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "synclit").await?;
    let id = ctx.unique("synclit");
    let message = simple_message(&id, "sync literal", "x");
    let x = s
        .execute_raw(&append_command(&name, &message, false))
        .await?;
    let continued = x
        .responses
        .iter()
        .any(|r| matches!(r.decoded, Response::CommandContinuationRequest(_)));
    ensure(
        continued,
        "`+ ...` before the literal data",
        "no continuation request",
    )?;
    ensure(
        is(&x, StatusKind::Ok),
        "tagged OK to APPEND",
        completion(&x),
    )?;
    stored_verbatim(&mut s, &name, &id, &message).await
}

pub async fn non_sync_append(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "nonsync").await?;
    let id = ctx.unique("nonsync");
    // Well under the 4096 octets LITERAL- allows.
    let message = simple_message(&id, "non-synchronizing literal", "x");
    let x = s
        .execute_raw(&append_command(&name, &message, true))
        .await?;
    ensure(
        is(&x, StatusKind::Ok),
        "tagged OK to APPEND {N+}",
        completion(&x),
    )?;
    if let Some(plus) = x
        .responses
        .iter()
        .find(|r| matches!(r.decoded, Response::CommandContinuationRequest(_)))
    {
        return Err(fail("no `+` for a non-synchronizing literal", line(plus)));
    }
    stored_verbatim(&mut s, &name, &id, &message).await
}

pub async fn command_lookalike(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "lookalike").await?;
    let id = ctx.unique("lookalike");
    let body = "A1 LOGOUT\n\
                * BYE mswpretend server going away\n\
                A2 OK mswpretend done\n\
                A3 DELETE INBOX\n\
                {5}\n\
                DONE\n\
                + mswpretend continue\n\
                A4 NOOP";
    let message = simple_message(&id, "lookalike", body);
    let x = s
        .execute_raw(&append_command(&name, &message, false))
        .await?;
    ensure(
        is(&x, StatusKind::Ok),
        "tagged OK to APPEND",
        completion(&x),
    )?;
    ensure(!saw_bye(&x), "no BYE", "an untagged BYE")?;
    if let Some(echo) = x
        .responses
        .iter()
        .find(|r| String::from_utf8_lossy(&r.raw).contains("mswpretend"))
    {
        return Err(fail("no response echoing the literal's lines", line(echo)));
    }
    // The session is still in step: our next tag gets the next answer.
    expect_ok(&mut s, "NOOP").await?;
    stored_verbatim(&mut s, &name, &id, &message).await
}
