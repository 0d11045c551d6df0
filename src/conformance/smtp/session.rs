//! The session commands of RFC 5321: greeting, EHLO/HELO, NOOP, RSET, QUIT, and how the
//! server answers commands that are unknown, malformed or out of sequence.

use std::time::Duration;

use super::{bare, expect_code, on_submission, send, show, Io, HELO_NAME};
use crate::conformance::{ensure, fail, CheckError, CheckResult, Ctx};
use crate::proto::smtp::{Flavor, SmtpClient, SmtpError};

pub async fn greeting_220(ctx: &Ctx) -> CheckResult {
    let client = bare(ctx, Flavor::Smtp).await?;
    let code = client.greeting().code;
    ensure(code == 220, "220 greeting", code.to_string())
}

/// ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); ehlo-param = 1*(%d33-126).
fn keyword_ok(keyword: &str) -> bool {
    let mut bytes = keyword.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub async fn ehlo_syntax(ctx: &Ctx) -> CheckResult {
    let mut client = bare(ctx, Flavor::Smtp).await?;
    // The client already refuses a badly framed reply (code changes, missing `250-`).
    let reply = send(ctx, &mut client, &format!("EHLO {HELO_NAME}")).await?;
    expect_code("EHLO", &reply, &[250])?;
    let mut lines = reply.lines();
    let first = lines.next().unwrap_or_default();
    ensure(
        first.split_whitespace().next().is_some(),
        "the server's domain on the first EHLO line",
        format!("{first:?}"),
    )?;
    for line in lines {
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap_or_default();
        // `AUTH=PLAIN LOGIN` is a deployed pre-RFC 4954 form; it is not an ehlo-keyword but
        // clients are expected to skip it, so it is tolerated here.
        if keyword.to_ascii_uppercase().starts_with("AUTH=") {
            continue;
        }
        let params_ok = words.all(|p| p.bytes().all(|b| (33..=126).contains(&b)));
        if !keyword_ok(keyword) || !params_ok {
            return Err(fail(
                "ehlo-line = ehlo-keyword *(SP ehlo-param)",
                format!("250-{line}"),
            ));
        }
    }
    Ok(())
}

pub async fn helo_accepted(ctx: &Ctx) -> CheckResult {
    let mut client = bare(ctx, Flavor::Smtp).await?;
    let reply = send(ctx, &mut client, &format!("HELO {HELO_NAME}")).await?;
    expect_code("HELO", &reply, &[250])
}

/// The session still answers: NOOP gets 250 and nothing unsolicited is waiting.
async fn still_alive<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let reply = send(ctx, client, "NOOP").await?;
    expect_code("NOOP afterwards (session goes on)", &reply, &[250])
}

pub async fn unknown_command(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.smtp().await?;
    let reply = send(ctx, &mut client, "XMSWUNKNOWN some argument").await?;
    expect_code("an unknown command", &reply, &[500, 502])?;
    still_alive(ctx, &mut client).await
}

pub async fn noop(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.smtp().await?;
    let reply = send(ctx, &mut client, "NOOP").await?;
    expect_code("NOOP", &reply, &[250])?;
    let reply = send(ctx, &mut client, "NOOP with an argument").await?;
    expect_code("NOOP with a string argument", &reply, &[250])
}

pub async fn rset(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, rset_on)
}

async fn rset_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let from = ctx.account(0).address(&ctx.target.domain);
    let reply = send(ctx, client, &format!("MAIL FROM:<{from}>")).await?;
    expect_code("MAIL", &reply, &[250])?;
    let reply = send(ctx, client, "RSET").await?;
    expect_code("RSET", &reply, &[250])?;
    // After RSET there is no transaction: RCPT is out of sequence, a new MAIL is fine.
    let reply = send(ctx, client, &format!("RCPT TO:<{from}>")).await?;
    expect_code("RCPT right after RSET (no MAIL any more)", &reply, &[503])?;
    let reply = send(ctx, client, &format!("MAIL FROM:<{from}>")).await?;
    expect_code("MAIL after RSET", &reply, &[250])?;
    let reply = send(ctx, client, "RSET").await?;
    expect_code("RSET", &reply, &[250])
}

pub async fn quit(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.smtp().await?;
    let reply = send(ctx, &mut client, "QUIT").await?;
    expect_code("QUIT", &reply, &[221])?;
    client.set_command_timeout(Duration::from_secs(5));
    match client.next_reply().await {
        Err(SmtpError::Closed { partial, .. }) if partial.is_empty() => Ok(()),
        Err(SmtpError::Io { .. }) => Ok(()),
        Err(SmtpError::Timeout { .. }) => Err(fail(
            "the server closes the connection after 221",
            "still open after 5 s",
        )),
        Ok(reply) => Err(fail("nothing after 221", show(&reply))),
        Err(other) => Err(CheckError::Smtp(other)),
    }
}

pub async fn mail_syntax_error(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, mail_syntax_on)
}

async fn mail_syntax_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let reply = send(ctx, client, "MAIL").await?;
    expect_code("MAIL without FROM:<reverse-path>", &reply, &[501, 500])?;
    // "...and the SMTP server MUST stay in the same state": no transaction was started.
    let from = ctx.account(0).address(&ctx.target.domain);
    let reply = send(ctx, client, &format!("RCPT TO:<{from}>")).await?;
    expect_code("RCPT (no transaction after the bad MAIL)", &reply, &[503])?;
    let reply = send(ctx, client, &format!("MAIL FROM:<{from}>")).await?;
    expect_code("a correct MAIL afterwards", &reply, &[250])?;
    let reply = send(ctx, client, "RSET").await?;
    expect_code("RSET", &reply, &[250])
}

pub async fn long_line(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.smtp().await?;
    // 1000 octets: twice the minimum every server must take, NOOP's string is free text.
    let line = format!("NOOP {}", "x".repeat(1000 - 7));
    let reply = send(ctx, &mut client, &line).await?;
    ensure(
        reply.code == 250 || (500..=501).contains(&reply.code),
        "250, or 500/501 (line too long), to a 1000-octet NOOP",
        show(&reply),
    )?;
    // A server that cut the line in two would answer twice: the NOOP below would find an
    // unsolicited reply waiting and fail.
    still_alive(ctx, &mut client).await
}

pub async fn rcpt_before_mail(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, rcpt_before_mail_on)
}

async fn rcpt_before_mail_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let to = ctx.account(0).address(&ctx.target.domain);
    let reply = send(ctx, client, &format!("RCPT TO:<{to}>")).await?;
    expect_code("RCPT without MAIL", &reply, &[503])?;
    still_alive(ctx, client).await
}

pub async fn data_before_rcpt(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, data_before_rcpt_on)
}

async fn data_before_rcpt_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let from = ctx.account(0).address(&ctx.target.domain);
    let reply = send(ctx, client, &format!("MAIL FROM:<{from}>")).await?;
    expect_code("MAIL", &reply, &[250])?;
    let reply = send(ctx, client, "DATA").await?;
    if reply.code == 354 {
        // End the data we never meant to send so the session stays in step.
        let _ = send(ctx, client, ".").await;
    }
    // RFC 5321 names 503 and 554 (MAY) and lets the client expect "any other 5yz"; what no
    // server may do is invite the data (354) for a transaction without recipients.
    ensure(
        (500..600).contains(&reply.code),
        "a 5xx (503 or 554) to DATA with no recipient",
        show(&reply),
    )?;
    let reply = send(ctx, client, "RSET").await?;
    expect_code("RSET", &reply, &[250])
}

#[cfg(test)]
mod tests {
    use super::keyword_ok;

    #[test]
    fn ehlo_keyword_grammar() {
        for good in ["PIPELINING", "8BITMIME", "X-EXPS", "SIZE"] {
            assert!(keyword_ok(good), "{good}");
        }
        for bad in ["", "-X", "AUTH=LOGIN", "SIZE:", "X_Y"] {
            assert!(!keyword_ok(bad), "{bad}");
        }
    }
}
