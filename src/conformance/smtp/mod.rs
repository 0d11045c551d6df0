//! SMTP submission checks (RFC 5321 and its extensions), against the `--smtp` endpoint.
//!
//! The table is here; the bodies are in one submodule per area. Checks that send MAIL use
//! [`submission`]: authenticated with the first account when the server offers AUTH (after
//! STARTTLS when AUTH is only offered there), since a submission server may refuse mail from
//! anonymous clients. The LMTP checks share the helpers below.

mod auth;
mod message;
mod session;
mod starttls;
mod transfer;

pub(crate) use crate::conformance::context::raw_message;
pub(crate) use message::{body_of, ends_with, read_back, same_bytes};
pub(crate) use transfer::{bdat_chunks, send_bdat, DOTTY_BODY};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{fail, Check, CheckError, CheckResult, Ctx};
use crate::conform_check as check;
use crate::proto::net::ConnectOptions;
use crate::proto::smtp::{AuthMechanism, Flavor, Reply, SmtpClient};

pub const CHECKS: &[Check] = &[
    check!(
        "smtp.greeting.code-220",
        "The greeting is a 220 reply",
        "RFC 5321 4.2",
        Must,
        Smtp,
        session::greeting_220
    ),
    check!(
        "smtp.ehlo.reply-syntax",
        "EHLO is answered 250 with a well-formed multi-line reply and ehlo-keyword lines",
        "RFC 5321 4.1.1.1",
        Must,
        Smtp,
        session::ehlo_syntax
    ),
    check!(
        "smtp.helo.accepted",
        "HELO (the fallback for old clients) is answered 250",
        "RFC 5321 2.2.1",
        Must,
        Smtp,
        session::helo_accepted
    ),
    check!(
        "smtp.session.unknown-command",
        "An unknown command is answered 500 or 502 and the session goes on",
        "RFC 5321 4.2.4",
        Must,
        Smtp,
        session::unknown_command
    ),
    check!(
        "smtp.session.noop",
        "NOOP is answered 250",
        "RFC 5321 4.1.1.9",
        Must,
        Smtp,
        session::noop
    ),
    check!(
        "smtp.session.rset-clears-transaction",
        "RSET is answered 250, clears the transaction, and a new MAIL is accepted",
        "RFC 5321 4.1.1.5",
        Must,
        Smtp,
        session::rset
    ),
    check!(
        "smtp.session.quit",
        "QUIT is answered 221 and the server closes the connection",
        "RFC 5321 4.1.1.10",
        Must,
        Smtp,
        session::quit
    ),
    check!(
        "smtp.session.mail-syntax-error",
        "MAIL without FROM:<path> is answered 501 (or 500) and the state is kept",
        "RFC 5321 4.1.4",
        Must,
        Smtp,
        session::mail_syntax_error
    ),
    check!(
        "smtp.session.long-line",
        "A command line over 512 octets gets one reply (not a dropped or split line)",
        "RFC 5321 4.5.3.1.4",
        Should,
        Smtp,
        session::long_line
    ),
    check!(
        "smtp.session.rcpt-before-mail",
        "RCPT without a previous MAIL is answered 503",
        "RFC 5321 3.3",
        Must,
        Smtp,
        session::rcpt_before_mail
    ),
    check!(
        "smtp.session.data-before-rcpt",
        "DATA without an accepted recipient is refused with a 5xx (503 or 554)",
        "RFC 5321 3.3",
        Should,
        Smtp,
        session::data_before_rcpt
    ),
    check!(
        "smtp.auth.plain-initial-response",
        "AUTH PLAIN with an initial response is answered 235",
        "RFC 4954 4",
        Must,
        Smtp,
        auth::plain_initial_response
    ),
    check!(
        "smtp.auth.plain-empty-challenge",
        "AUTH PLAIN without initial response gets an empty 334 challenge, then 235",
        "RFC 4954 4",
        Must,
        Smtp,
        auth::plain_empty_challenge
    ),
    check!(
        "smtp.auth.login",
        "AUTH LOGIN (when offered) completes with 235",
        "RFC 4954 4",
        Must,
        Smtp,
        auth::login
    ),
    check!(
        "smtp.auth.wrong-password",
        "AUTH with a wrong password is answered 535",
        "RFC 4954 6",
        Should,
        Smtp,
        auth::wrong_password
    ),
    check!(
        "smtp.auth.cancel",
        "A `*` line cancels the exchange with 501",
        "RFC 4954 4",
        Must,
        Smtp,
        auth::cancel
    ),
    check!(
        "smtp.auth.second-auth-refused",
        "AUTH after a successful AUTH is answered 503",
        "RFC 4954 4",
        Must,
        Smtp,
        auth::second_auth
    ),
    check!(
        "smtp.auth.in-transaction-refused",
        "AUTH during a mail transaction is answered 503",
        "RFC 4954 4",
        Must,
        Smtp,
        auth::in_transaction
    ),
    check!(
        "smtp.pipelining.reply-order",
        "MAIL, RCPT, RCPT, DATA in one write: one reply each, in order",
        "RFC 2920 3.2",
        Must,
        Smtp,
        transfer::pipelining,
        needs: ["PIPELINING"],
        accounts: 2,
        destructive
    ),
    check!(
        "smtp.size.keyword-syntax",
        "The SIZE keyword carries nothing or one decimal number",
        "RFC 1870 4",
        Must,
        Smtp,
        transfer::size_syntax,
        needs: ["SIZE"]
    ),
    check!(
        "smtp.size.over-limit",
        "MAIL with SIZE= above the announced limit is answered 552 (or x.3.4)",
        "RFC 1870 6",
        Should,
        Smtp,
        transfer::size_over_limit,
        needs: ["SIZE"]
    ),
    check!(
        "smtp.8bitmime.round-trip",
        "BODY=8BITMIME is accepted and an 8-bit body arrives unchanged",
        "RFC 6152 3",
        Must,
        Smtp,
        transfer::eight_bit,
        needs: ["8BITMIME"],
        destructive
    ),
    check!(
        "smtp.data.dot-stuffing",
        "Leading dots are unstuffed and the body arrives byte-exact",
        "RFC 5321 4.5.2",
        Must,
        Smtp,
        transfer::dot_stuffing,
        destructive
    ),
    check!(
        "smtp.chunking.bdat-replies",
        "One 250 per BDAT chunk; chunks are taken verbatim",
        "RFC 3030 2",
        Must,
        Smtp,
        transfer::bdat,
        needs: ["CHUNKING"],
        destructive
    ),
    check!(
        "smtp.ehs.class-matches-code",
        "Replies carry x.y.z codes whose class is the reply's first digit",
        "RFC 2034 3",
        Must,
        Smtp,
        transfer::enhanced_codes,
        needs: ["ENHANCEDSTATUSCODES"]
    ),
    check!(
        "smtp.starttls.handshake",
        "STARTTLS is answered 220 and TLS comes up with the configured trust",
        "RFC 3207 4",
        Must,
        Smtp,
        starttls::handshake,
        needs: ["STARTTLS"]
    ),
    check!(
        "smtp.starttls.not-offered-again",
        "EHLO inside TLS does not offer STARTTLS",
        "RFC 3207 4.2",
        Must,
        Smtp,
        starttls::not_offered_again,
        needs: ["STARTTLS"]
    ),
    check!(
        "smtp.starttls.no-command-injection",
        "A command pipelined after STARTTLS is not answered inside TLS (CVE-2011-0411)",
        "RFC 3207 4.2",
        Must,
        Smtp,
        starttls::no_injection,
        needs: ["STARTTLS"]
    ),
];

/// Name we greet with.
pub(crate) const HELO_NAME: &str = "conform.mailswarm.test";

/// Any stream an SMTP client runs over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A session ready for mail: plain, or upgraded because AUTH needed TLS.
pub(crate) enum Submission {
    Plain(Box<SmtpClient<TcpStream>>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

/// Runs a generic check body `$body(ctx, &mut client)` on a [`submission`] session.
macro_rules! on_submission {
    ($ctx:expr, $auth:expr, $body:path) => {
        match $crate::conformance::smtp::submission($ctx, $auth).await? {
            $crate::conformance::smtp::Submission::Plain(mut c) => $body($ctx, &mut *c).await,
            $crate::conformance::smtp::Submission::Tls(mut c) => $body($ctx, &mut *c).await,
        }
    };
}
pub(crate) use on_submission;

/// An SMTP session after EHLO, upgraded with STARTTLS when AUTH is only offered inside TLS.
/// With `auth`, logged in as the first account when the server offers PLAIN or LOGIN.
pub(crate) async fn submission(ctx: &Ctx, auth: bool) -> Result<Submission, CheckError> {
    let mut client = ctx.smtp().await?;
    let caps = client.capabilities().cloned().unwrap_or_default();
    if caps.auth.is_empty() && caps.starttls {
        let mut tls = upgrade(ctx, client).await?;
        if auth {
            authenticate(ctx, &mut tls).await?;
        }
        return Ok(Submission::Tls(Box::new(tls)));
    }
    if auth {
        authenticate(ctx, &mut client).await?;
    }
    Ok(Submission::Plain(Box::new(client)))
}

/// AUTH PLAIN (or LOGIN) as the first account, when offered; nothing otherwise.
async fn authenticate<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let caps = client.capabilities().cloned().unwrap_or_default();
    let mechanism = if caps.has_auth("PLAIN") {
        AuthMechanism::Plain
    } else if caps.has_auth("LOGIN") {
        AuthMechanism::Login
    } else {
        return Ok(());
    };
    let account = ctx.account(0);
    ctx.note(format!(
        "C: AUTH {} (as {})",
        mechanism.as_str(),
        account.user
    ));
    client
        .auth(mechanism, &account.user, account.password.expose(), true)
        .await?;
    ctx.note("S: 235");
    Ok(())
}

/// STARTTLS with the target's trust settings, then EHLO again.
pub(crate) async fn upgrade(
    ctx: &Ctx,
    client: SmtpClient<TcpStream>,
) -> Result<SmtpClient<TlsStream<TcpStream>>, CheckError> {
    let (connector, name) = tls_parts(ctx)?;
    ctx.note("C: STARTTLS");
    let mut tls = client.starttls(&connector, name).await?;
    ctx.note("S: 220, TLS handshake done");
    ctx.note(format!("C: EHLO {HELO_NAME}"));
    tls.ehlo(HELO_NAME).await?;
    Ok(tls)
}

/// Connector and server name for the SMTP endpoint.
pub(crate) fn tls_parts(
    ctx: &Ctx,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
    CheckError,
> {
    let local = |e: crate::proto::tls::TlsError| CheckError::Local(e.to_string());
    let addr = ctx
        .target
        .smtp
        .ok_or_else(|| CheckError::Skip("no SMTP endpoint".into()))?;
    let connector = ctx.target.tls.connector().map_err(local)?;
    let name = ctx
        .target
        .tls
        .server_name(&addr.ip().to_string())
        .map_err(local)?;
    Ok((connector, name))
}

/// A session with the greeting read and nothing sent yet.
pub(crate) async fn bare(ctx: &Ctx, flavor: Flavor) -> Result<SmtpClient<TcpStream>, CheckError> {
    let addr = match flavor {
        Flavor::Smtp => ctx.target.smtp,
        Flavor::Lmtp => ctx.target.lmtp,
    }
    .ok_or_else(|| CheckError::Skip(format!("no {} endpoint", flavor.as_str())))?;
    let client = SmtpClient::connect_with(
        addr,
        &ConnectOptions::default(),
        flavor,
        ctx.smtp_settings(),
    )
    .await?;
    ctx.note(format!("S: {}", show(client.greeting())));
    Ok(client)
}

/// Sends one raw command line (CRLF added) and reads one reply, noting both.
pub(crate) async fn send<S: Io>(
    ctx: &Ctx,
    client: &mut SmtpClient<S>,
    line: &str,
) -> Result<Reply, CheckError> {
    ctx.note(format!("C: {line}"));
    let reply = client.raw_command(format!("{line}\r\n").as_bytes()).await?;
    ctx.note(format!("S: {}", show(&reply)));
    Ok(reply)
}

/// Reads the next reply, noting it.
pub(crate) async fn next<S: Io>(
    ctx: &Ctx,
    client: &mut SmtpClient<S>,
) -> Result<Reply, CheckError> {
    let reply = client.next_reply().await?;
    ctx.note(format!("S: {}", show(&reply)));
    Ok(reply)
}

/// `250 2.1.0 Ok` (lines of a multi-line reply joined with ` | `).
pub(crate) fn show(reply: &Reply) -> String {
    let mut text = reply.code.to_string();
    if let Some(esc) = reply.enhanced_string() {
        text.push(' ');
        text.push_str(&esc);
    }
    text.push(' ');
    text.push_str(&reply.lines().collect::<Vec<_>>().join(" | "));
    text
}

/// Passes when the reply's code is one of `codes`.
pub(crate) fn expect_code(what: &str, reply: &Reply, codes: &[u16]) -> CheckResult {
    if codes.contains(&reply.code) {
        return Ok(());
    }
    let list = codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    Err(fail(format!("{list} to {what}"), show(reply)))
}
