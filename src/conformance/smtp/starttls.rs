//! STARTTLS (RFC 3207) with the target's trust settings (the lab CA on a lab run).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{expect_code, show, tls_parts, upgrade, HELO_NAME};
use crate::conformance::{ensure, fail, CheckError, CheckResult, Ctx};
use crate::proto::smtp::reply::{quote, ReplyBuffer};
use crate::proto::smtp::Reply;
use crate::proto::tls;

/// How long the injection check listens for a reply nobody asked for.
const LISTEN: Duration = Duration::from_millis(1500);

pub async fn handshake(ctx: &Ctx) -> CheckResult {
    let client = ctx.smtp().await?;
    // `starttls` refuses bytes sent after the 220 and verifies the certificate chain.
    let mut tls = upgrade(ctx, client).await?;
    let reply = tls.noop().await?;
    ctx.note(format!("C: NOOP (inside TLS)\nS: {}", show(&reply)));
    Ok(())
}

pub async fn not_offered_again(ctx: &Ctx) -> CheckResult {
    let client = ctx.smtp().await?;
    let tls = upgrade(ctx, client).await?;
    let caps = tls.capabilities().cloned().unwrap_or_default();
    ctx.note(format!(
        "S: EHLO keywords inside TLS: {}",
        caps.keywords.join(" ")
    ));
    ensure(
        !caps.starttls,
        "no STARTTLS in the EHLO reply after the handshake",
        caps.keywords.join(" "),
    )
}

/// Reads one reply from a raw stream within `within`.
async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut ReplyBuffer,
    within: Duration,
) -> Result<Option<Reply>, CheckError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match buf.take_reply() {
            Ok(Some(reply)) => return Ok(Some(reply)),
            Ok(None) => {}
            Err(v) => {
                return Err(fail(
                    "a well-formed reply",
                    format!("{}: {}", v.reason, v.raw),
                ))
            }
        }
        match tokio::time::timeout_at(deadline, buf.fill(stream)).await {
            Err(_) => return Ok(None),
            Ok(Ok(0)) => {
                return Err(fail(
                    "a reply",
                    format!("connection closed (pending {:?})", quote(buf.pending())),
                ))
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(CheckError::Local(format!("read: {e}"))),
        }
    }
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> CheckResult {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| CheckError::Local(format!("write: {e}")))
}

async fn must_reply<S: AsyncRead + Unpin>(
    ctx: &Ctx,
    stream: &mut S,
    buf: &mut ReplyBuffer,
    what: &str,
) -> Result<Reply, CheckError> {
    let reply = read_reply(stream, buf, ctx.smtp_settings().command_timeout)
        .await?
        .ok_or_else(|| fail(format!("a reply to {what}"), "none before the timeout"))?;
    ctx.note(format!("S: {}", show(&reply)));
    Ok(reply)
}

pub async fn no_injection(ctx: &Ctx) -> CheckResult {
    let addr = ctx
        .target
        .smtp
        .ok_or_else(|| CheckError::Skip("no SMTP endpoint".into()))?;
    let (connector, name) = tls_parts(ctx)?;
    // A raw socket: the client refuses to go on with bytes buffered, which is the point here.
    let mut tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| CheckError::Local(format!("connect {addr}: {e}")))?;
    let mut buf = ReplyBuffer::default();
    let greeting = must_reply(ctx, &mut tcp, &mut buf, "the connection").await?;
    expect_code("the connection", &greeting, &[220])?;
    ctx.note(format!("C: EHLO {HELO_NAME}"));
    write(&mut tcp, format!("EHLO {HELO_NAME}\r\n").as_bytes()).await?;
    let reply = must_reply(ctx, &mut tcp, &mut buf, "EHLO").await?;
    expect_code("EHLO", &reply, &[250])?;
    ctx.note("C: STARTTLS\\r\\nRSET\\r\\n (one write)");
    write(&mut tcp, b"STARTTLS\r\nRSET\r\n").await?;
    let reply = must_reply(ctx, &mut tcp, &mut buf, "STARTTLS").await?;
    if reply.code != 220 {
        // Refusing STARTTLS when more commands follow it is a safe answer.
        ctx.note("STARTTLS refused with pipelined input: no TLS session to inject into");
        return Ok(());
    }
    ensure(
        buf.pending().is_empty(),
        "nothing in plaintext after the 220 to STARTTLS",
        quote(buf.pending()),
    )?;
    let deadline = ctx.smtp_settings().tls_handshake_timeout;
    let mut stream = tls::handshake(tcp, name, &connector, deadline)
        .await
        .map_err(|e| fail("a TLS handshake after 220", e.to_string()))?;
    ctx.note("TLS handshake done; listening for an answer to the injected RSET");
    let mut inside = ReplyBuffer::default();
    if let Some(reply) = read_reply(&mut stream, &mut inside, LISTEN).await? {
        return Err(fail(
            "no reply inside TLS before any command (injected RSET discarded)",
            show(&reply),
        ));
    }
    ctx.note(format!("C: EHLO {HELO_NAME} (inside TLS)"));
    write(&mut stream, format!("EHLO {HELO_NAME}\r\n").as_bytes()).await?;
    let reply = must_reply(ctx, &mut stream, &mut inside, "EHLO inside TLS").await?;
    expect_code("EHLO inside TLS", &reply, &[250])?;
    if let Some(extra) = read_reply(&mut stream, &mut inside, LISTEN).await? {
        return Err(fail(
            "exactly one reply to EHLO inside TLS",
            format!("another reply followed: {}", show(&extra)),
        ));
    }
    Ok(())
}
