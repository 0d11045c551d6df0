//! STARTTLS on the plain IMAP port (RFC 9051 6.2.1): the handshake against the configured CA,
//! capabilities afterwards, command injection, and LOGINDISABLED before TLS.
//!
//! STARTTLS is announced before login (not after), so these checks read the pre-login
//! CAPABILITY themselves and skip when it lacks STARTTLS, instead of `needs:`.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::conform_check as check;
use crate::conformance::{ensure, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{ImapClient, ImapLimits};
use crate::proto::net::ConnectOptions;
use crate::proto::tls::handshake;

const HANDSHAKE: Duration = Duration::from_secs(10);

pub const CHECKS: &[Check] = &[
    check!(
        "imap.starttls.handshake",
        "STARTTLS succeeds against the configured CA and the session works over TLS",
        "RFC 9051 6.2.1",
        Must,
        Imap,
        starttls_handshake
    ),
    check!(
        "imap.starttls.capability-after",
        "CAPABILITY after STARTTLS no longer offers STARTTLS",
        "RFC 9051 6.2.1",
        Should,
        Imap,
        capability_after
    ),
    check!(
        "imap.starttls.no-injection",
        "a command sent in the same write as STARTTLS is not answered inside TLS",
        "RFC 9051 6.2.1",
        Must,
        Imap,
        no_injection
    ),
    check!(
        "imap.starttls.logindisabled",
        "with LOGINDISABLED announced, LOGIN before TLS is refused",
        "RFC 9051 6.2.3",
        Must,
        Imap,
        logindisabled
    ),
];

/// Per-command deadline of the plain sessions these checks open themselves.
fn limits() -> ImapLimits {
    ImapLimits {
        command_timeout: Duration::from_secs(20),
        ..ImapLimits::default()
    }
}

/// A plain connection with the pre-login CAPABILITY read.
async fn plain(ctx: &Ctx) -> Result<ImapClient<TcpStream>, CheckError> {
    let mut client =
        ImapClient::connect(ctx.target.imap, &ConnectOptions::default(), limits()).await?;
    let caps = client.capability().await?;
    ctx.note(format!(
        "pre-login CAPABILITY {}",
        caps.iter().collect::<Vec<_>>().join(" ")
    ));
    Ok(client)
}

/// Skips unless the server offers STARTTLS before login.
async fn plain_with_starttls(ctx: &Ctx) -> Result<ImapClient<TcpStream>, CheckError> {
    let client = plain(ctx).await?;
    if !client.capabilities().has_named("STARTTLS") {
        return Err(CheckError::Skip(
            "STARTTLS not in the pre-login CAPABILITY".into(),
        ));
    }
    Ok(client)
}

fn tls_setup(ctx: &Ctx) -> Result<(TlsConnector, ServerName<'static>), CheckError> {
    let settings = &ctx.target.tls;
    let connector = settings
        .connector()
        .map_err(|e| CheckError::Local(e.to_string()))?;
    let name = settings
        .server_name(&ctx.target.imap.ip().to_string())
        .map_err(|e| CheckError::Local(e.to_string()))?;
    Ok((connector, name))
}

pub async fn starttls_handshake(ctx: &Ctx) -> CheckResult {
    let client = plain_with_starttls(ctx).await?;
    let (connector, name) = tls_setup(ctx)?;
    let mut tls = client.starttls(&connector, name, HANDSHAKE).await?;
    tls.capability().await?;
    let account = ctx.account(0);
    tls.login(&account.user, &account.password).await?;
    tls.noop().await?;
    let _ = tls.logout().await;
    Ok(())
}

pub async fn capability_after(ctx: &Ctx) -> CheckResult {
    let client = plain_with_starttls(ctx).await?;
    let (connector, name) = tls_setup(ctx)?;
    let mut tls = client.starttls(&connector, name, HANDSHAKE).await?;
    let caps = tls.capability().await?.clone();
    let _ = tls.logout().await;
    ensure(
        !caps.has_named("STARTTLS"),
        "no STARTTLS in CAPABILITY over TLS",
        caps.iter().collect::<Vec<_>>().join(" "),
    )
}

/// Reads one line (up to LF) byte by byte, so nothing past it leaves the socket.
async fn read_line<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<String>, CheckError> {
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(HANDSHAKE, stream.read(&mut byte))
            .await
            .map_err(|_| {
                fail(
                    "an answer within 10 s",
                    format!("nothing after {:?}", String::from_utf8_lossy(&line)),
                )
            })?
            .map_err(|e| CheckError::Local(format!("read: {e}")))?;
        if read == 0 {
            return Ok(None);
        }
        line.push(byte[0]);
        if byte[0] == b'\n' || line.len() > 8192 {
            return Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()));
        }
    }
}

pub async fn no_injection(ctx: &Ctx) -> CheckResult {
    // Only to learn whether STARTTLS is offered; the test itself is a raw exchange.
    drop(plain_with_starttls(ctx).await?);
    let (connector, name) = tls_setup(ctx)?;
    let mut tcp = TcpStream::connect(ctx.target.imap)
        .await
        .map_err(|e| CheckError::Local(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let greeting = read_line(&mut tcp).await?.unwrap_or_default();
    ctx.note(format!("raw< {greeting}"));
    // One write: the NOOP sits in the server's plaintext buffer when STARTTLS completes.
    tcp.write_all(b"I1 STARTTLS\r\nI2 NOOP\r\n")
        .await
        .map_err(|e| CheckError::Local(format!("write: {e}")))?;
    ctx.note("raw> I1 STARTTLS\\r\\nI2 NOOP\\r\\n (one write)");
    loop {
        let Some(line) = read_line(&mut tcp).await? else {
            ctx.note("raw< (connection closed before the STARTTLS answer)");
            return Ok(());
        };
        ctx.note(format!("raw< {line}"));
        if line.starts_with("I1 ") {
            if !line.starts_with("I1 OK") {
                return Err(CheckError::Skip(format!(
                    "STARTTLS with a pipelined command was refused: {line}"
                )));
            }
            break;
        }
    }
    let mut tls = match handshake(tcp, name, &connector, HANDSHAKE).await {
        Ok(tls) => tls,
        Err(e) => {
            // A server that treats the pipelined bytes as a broken handshake injects nothing.
            ctx.note(format!(
                "TLS handshake after the pipelined NOOP failed: {e}"
            ));
            return Ok(());
        }
    };
    tls.write_all(b"I3 NOOP\r\n")
        .await
        .map_err(|e| CheckError::Local(format!("write over TLS: {e}")))?;
    loop {
        let Some(line) = read_line(&mut tls).await? else {
            return Ok(());
        };
        ctx.note(format!("tls< {line}"));
        ensure(
            !line.starts_with("I2 "),
            "no answer to the NOOP sent before the TLS handshake",
            line.clone(),
        )?;
        if line.starts_with("I3 ") {
            return Ok(());
        }
    }
}

pub async fn logindisabled(ctx: &Ctx) -> CheckResult {
    let mut client = plain(ctx).await?;
    if !client.capabilities().has_named("LOGINDISABLED") {
        return Err(CheckError::Skip(
            "LOGINDISABLED not announced before TLS (plaintext LOGIN is allowed)".into(),
        ));
    }
    if !ctx.target.imap.ip().is_loopback() {
        return Err(CheckError::Skip(
            "would send the password in plaintext to a non-loopback target".into(),
        ));
    }
    let account = ctx.account(0);
    let (user, pass) = (
        account.user.as_bytes(),
        account.password.expose().as_bytes(),
    );
    // Synchronizing literals: no quoting rules to get wrong, and the client redacts LOGIN.
    let mut command = format!("LOGIN {{{}}}\r\n", user.len()).into_bytes();
    command.extend_from_slice(user);
    command.extend_from_slice(format!(" {{{}}}\r\n", pass.len()).as_bytes());
    command.extend_from_slice(pass);
    let ex = client.execute_raw(&command).await?;
    ensure(
        ex.status() != Some(imap_types::response::StatusKind::Ok),
        "NO or BAD to LOGIN while LOGINDISABLED is announced",
        String::from_utf8_lossy(&ex.completion.raw)
            .trim_end()
            .to_string(),
    )
}
