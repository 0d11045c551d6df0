//! AUTH (RFC 4954) as the first account. Not gated on the EHLO keyword of the preflight,
//! since many servers offer AUTH only after STARTTLS: [`submission`] upgrades when needed and
//! a check skips when AUTH (or its mechanism) is not offered even then. Credentials never go
//! into the transcript.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{expect_code, send, show, submission, Io, Submission};
use crate::conformance::{ensure, fail, CheckError, CheckResult, Ctx};
use crate::proto::smtp::{AuthMechanism, SmtpClient, SmtpError};

/// Runs `$body(ctx, &mut client)` on a session where AUTH is offered (not yet logged in).
macro_rules! offering_auth {
    ($ctx:expr, $body:path) => {
        match submission($ctx, false).await? {
            Submission::Plain(mut c) => $body($ctx, &mut *c).await,
            Submission::Tls(mut c) => $body($ctx, &mut *c).await,
        }
    };
}

/// Skips unless the server offers `mechanism`.
fn offered<S: Io>(client: &SmtpClient<S>, mechanism: &str) -> CheckResult {
    let caps = client.capabilities().cloned().unwrap_or_default();
    if caps.has_auth(mechanism) {
        Ok(())
    } else {
        Err(CheckError::Skip(format!(
            "AUTH {mechanism} not offered (AUTH: {})",
            caps.auth.join(" ")
        )))
    }
}

/// A mechanism the client can run: PLAIN, else LOGIN.
fn any_mechanism<S: Io>(client: &SmtpClient<S>) -> Result<AuthMechanism, CheckError> {
    offered(client, "PLAIN")
        .map(|_| AuthMechanism::Plain)
        .or_else(|_| offered(client, "LOGIN").map(|_| AuthMechanism::Login))
        .map_err(|_| CheckError::Skip("the server offers neither AUTH PLAIN nor LOGIN".into()))
}

fn plain_response(ctx: &Ctx, password: &str) -> String {
    BASE64.encode(format!("\0{}\0{password}", ctx.account(0).user))
}

/// Logs in with the real credentials; a refusal fails with the server's reply.
async fn log_in<S: Io>(
    ctx: &Ctx,
    client: &mut SmtpClient<S>,
    mechanism: AuthMechanism,
    initial_response: bool,
) -> CheckResult {
    let account = ctx.account(0);
    let how = if initial_response {
        "with initial response"
    } else {
        "without initial response"
    };
    ctx.note(format!(
        "C: AUTH {} {how} (as {})",
        mechanism.as_str(),
        account.user
    ));
    match client
        .auth(
            mechanism,
            &account.user,
            account.password.expose(),
            initial_response,
        )
        .await
    {
        Ok(()) => {
            ctx.note("S: 235");
            Ok(())
        }
        Err(SmtpError::Auth { code, text, .. }) => Err(fail(
            format!("235 to AUTH {} {how}", mechanism.as_str()),
            format!("{code} {text}"),
        )),
        Err(other) => Err(other.into()),
    }
}

pub async fn plain_initial_response(ctx: &Ctx) -> CheckResult {
    offering_auth!(ctx, plain_initial_on)
}

async fn plain_initial_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    offered(client, "PLAIN")?;
    log_in(ctx, client, AuthMechanism::Plain, true).await
}

pub async fn plain_empty_challenge(ctx: &Ctx) -> CheckResult {
    offering_auth!(ctx, plain_empty_on)
}

async fn plain_empty_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    offered(client, "PLAIN")?;
    let reply = send(ctx, client, "AUTH PLAIN").await?;
    expect_code("AUTH PLAIN without initial response", &reply, &[334])?;
    // PLAIN starts with the client: the server's first challenge is empty, sent as "334 ".
    ensure(
        reply.text.trim().is_empty(),
        "an empty challenge (\"334 \")",
        show(&reply),
    )?;
    ctx.note("C: <credentials>");
    let line = format!(
        "{}\r\n",
        plain_response(ctx, ctx.account(0).password.expose())
    );
    let reply = client.raw_command(line.as_bytes()).await?;
    ctx.note(format!("S: {}", show(&reply)));
    expect_code("the PLAIN response", &reply, &[235])
}

pub async fn login(ctx: &Ctx) -> CheckResult {
    offering_auth!(ctx, login_on)
}

async fn login_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    offered(client, "LOGIN")?;
    log_in(ctx, client, AuthMechanism::Login, false).await
}

pub async fn wrong_password(ctx: &Ctx) -> CheckResult {
    offering_auth!(ctx, wrong_password_on)
}

async fn wrong_password_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let mechanism = any_mechanism(client)?;
    let user = ctx.account(0).user.clone();
    let wrong = ctx.unique("wrong-password");
    ctx.note(format!(
        "C: AUTH {} (as {user}, wrong password)",
        mechanism.as_str()
    ));
    match client.auth(mechanism, &user, &wrong, true).await {
        Ok(()) => Err(fail("535 to a wrong password", "235 (logged in)")),
        Err(SmtpError::Auth { code, text, .. }) => {
            ctx.note(format!("S: {code} {text}"));
            ensure(
                code == 535,
                "535 to a wrong password",
                format!("{code} {text}"),
            )
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn cancel(ctx: &Ctx) -> CheckResult {
    offering_auth!(ctx, cancel_on)
}

async fn cancel_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let mechanism = any_mechanism(client)?;
    let reply = send(ctx, client, &format!("AUTH {}", mechanism.as_str())).await?;
    expect_code("AUTH without initial response", &reply, &[334])?;
    let reply = send(ctx, client, "*").await?;
    expect_code("`*` (cancel)", &reply, &[501])?;
    let reply = send(ctx, client, "NOOP").await?;
    expect_code("NOOP after the cancelled exchange", &reply, &[250])
}

pub async fn second_auth(ctx: &Ctx) -> CheckResult {
    offering_auth!(ctx, second_auth_on)
}

async fn second_auth_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let mechanism = any_mechanism(client)?;
    log_in(ctx, client, mechanism, true).await?;
    ctx.note(format!("C: AUTH {} <credentials>", mechanism.as_str()));
    let response = match mechanism {
        AuthMechanism::Plain => plain_response(ctx, ctx.account(0).password.expose()),
        AuthMechanism::Login => BASE64.encode(&ctx.account(0).user),
    };
    let line = format!("AUTH {} {response}\r\n", mechanism.as_str());
    let reply = client.raw_command(line.as_bytes()).await?;
    ctx.note(format!("S: {}", show(&reply)));
    if reply.code == 334 {
        let _ = send(ctx, client, "*").await;
    }
    expect_code("a second AUTH after 235", &reply, &[503])
}

pub async fn in_transaction(ctx: &Ctx) -> CheckResult {
    offering_auth!(ctx, in_transaction_on)
}

async fn in_transaction_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    offered(client, "PLAIN")?;
    let from = ctx.account(0).address(&ctx.target.domain);
    let reply = send(ctx, client, &format!("MAIL FROM:<{from}>")).await?;
    if reply.code != 250 {
        return Err(CheckError::Skip(format!(
            "MAIL before AUTH is refused ({}), so no transaction can be open",
            show(&reply)
        )));
    }
    ctx.note("C: AUTH PLAIN <credentials>");
    let line = format!(
        "AUTH PLAIN {}\r\n",
        plain_response(ctx, ctx.account(0).password.expose())
    );
    let reply = client.raw_command(line.as_bytes()).await?;
    ctx.note(format!("S: {}", show(&reply)));
    if reply.code == 334 {
        let _ = send(ctx, client, "*").await;
    }
    expect_code("AUTH inside a mail transaction", &reply, &[503])
}
