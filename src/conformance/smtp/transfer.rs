//! Moving a message: PIPELINING, SIZE, 8BITMIME, dot-stuffing, CHUNKING, and the enhanced
//! status codes on the way. Delivered messages are read back over IMAP and compared
//! byte for byte (the body after the header block: MTAs add trace headers on top).

use super::{
    body_of, expect_code, next, on_submission, raw_message, read_back, same_bytes, send, show, Io,
    HELO_NAME,
};
use crate::conformance::{ensure, fail, CheckError, CheckResult, Ctx};
use crate::proto::smtp::dot::dot_stuff;
use crate::proto::smtp::{Delivery, Envelope, SendOptions, SmtpClient, Transfer};

fn address(ctx: &Ctx, index: usize) -> String {
    ctx.account(index).address(&ctx.target.domain)
}

pub async fn pipelining(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, pipelining_on)
}

async fn pipelining_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let (a, b) = (address(ctx, 0), address(ctx, 1));
    let id = ctx.unique("pipelining");
    let message = raw_message(&id, "pipelining", "", b"pipelined\r\n");
    let group = format!("MAIL FROM:<{a}>\r\nRCPT TO:<{a}>\r\nRCPT TO:<{b}>\r\nDATA\r\n");
    ctx.note(format!("C: (one write) {}", group.replace("\r\n", " | ")));
    client.write_bytes(group.as_bytes()).await?;
    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.push(next(ctx, client).await?);
    }
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    let in_order = replies[..3].iter().all(|r| r.is_positive()) && codes[3] == 354;
    ensure(
        in_order,
        "replies 250, 250, 250, 354 (MAIL, RCPT, RCPT, DATA in order)",
        format!("{codes:?}"),
    )?;
    ctx.note(format!("C: <{} bytes of message>", message.len()));
    client.write_bytes(&dot_stuff(&message)).await?;
    let done = next(ctx, client).await?;
    expect_code("the end of data", &done, &[250])?;
    // A server that sent an extra reply for any command fails here (unsolicited data).
    let reply = send(ctx, client, "NOOP").await?;
    expect_code("NOOP after the transaction", &reply, &[250])?;
    read_back(ctx, 0, &id).await?;
    read_back(ctx, 1, &id).await?;
    Ok(())
}

/// Lines of a fresh EHLO reply.
async fn ehlo_lines(ctx: &Ctx) -> Result<Vec<String>, CheckError> {
    let mut client = ctx.smtp().await?;
    let reply = send(ctx, &mut client, &format!("EHLO {HELO_NAME}")).await?;
    expect_code("EHLO", &reply, &[250])?;
    Ok(reply.lines().skip(1).map(str::to_string).collect())
}

pub async fn size_syntax(ctx: &Ctx) -> CheckResult {
    let lines = ehlo_lines(ctx).await?;
    let Some(line) = lines.iter().find(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("SIZE"))
    }) else {
        return Err(fail("a SIZE line in the EHLO reply", lines.join(" | ")));
    };
    let params: Vec<&str> = line.split_whitespace().skip(1).collect();
    let ok = match params.as_slice() {
        [] => true,
        [n] => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    };
    ensure(ok, "`SIZE` or `SIZE <digits>`", format!("250-{line}"))
}

pub async fn size_over_limit(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, size_over_limit_on)
}

async fn size_over_limit_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let limit = client.capabilities().and_then(|c| c.size).unwrap_or(0);
    if limit == 0 {
        return Err(CheckError::Skip("SIZE announces no fixed limit".into()));
    }
    let from = address(ctx, 0);
    let reply = send(
        ctx,
        client,
        &format!("MAIL FROM:<{from}> SIZE={}", limit + 1),
    )
    .await?;
    let _ = send(ctx, client, "RSET").await;
    let esc = reply.enhanced;
    let ok = reply.code == 552
        || (matches!(reply.code, 452 | 552) && matches!(esc, Some([4 | 5, 3, 4])));
    ensure(
        ok,
        format!(
            "552 (or 452/552 with x.3.4) to SIZE={} over {limit}",
            limit + 1
        ),
        show(&reply),
    )
}

/// Sends `message` to the first account with DATA, noting the outcome.
async fn deliver<S: Io>(
    ctx: &Ctx,
    client: &mut SmtpClient<S>,
    message: &[u8],
    opts: SendOptions,
) -> CheckResult {
    let from = address(ctx, 0);
    let envelope = Envelope {
        from: from.clone(),
        recipients: vec![from.clone()],
    };
    ctx.note(format!(
        "C: MAIL FROM:<{from}>{} / RCPT TO:<{from}> / DATA, {} bytes",
        if opts.eight_bit_mime {
            " BODY=8BITMIME"
        } else {
            ""
        },
        message.len()
    ));
    let outcome = client.send(&envelope, message, &opts).await?;
    ctx.note(format!("S: MAIL {}", show(&outcome.mail)));
    match &outcome.delivery {
        Delivery::Message(reply) => {
            ctx.note(format!("S: end of data {}", show(reply)));
            expect_code("the end of data", reply, &[250])
        }
        Delivery::PerRecipient(_) => Err(fail("one SMTP reply", "per-recipient replies")),
    }
}

fn plain_send() -> SendOptions {
    SendOptions {
        pipelining: false,
        transfer: Transfer::Data,
        declare_size: false,
        eight_bit_mime: false,
        smtputf8: false,
    }
}

pub async fn eight_bit(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, eight_bit_on)
}

async fn eight_bit_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let id = ctx.unique("8bitmime");
    let mut body = "Grüße aus Köln, naïve café, ☃ and ✓\r\n"
        .as_bytes()
        .to_vec();
    body.extend((0x80u8..=0xff).filter(|b| *b != 0xff).chain([b'\r', b'\n']));
    let message = raw_message(
        &id,
        "8bitmime",
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
        &body,
    );
    let opts = SendOptions {
        eight_bit_mime: true,
        ..plain_send()
    };
    deliver(ctx, client, &message, opts).await?;
    let stored = read_back(ctx, 0, &id).await?;
    if body_of(&stored) != body.as_slice() {
        // A relay may convert to 7 bit for a hop without 8BITMIME (RFC 6152 3), but must
        // then say so in Content-Transfer-Encoding; an unmarked change is a corruption.
        let head = String::from_utf8_lossy(&stored[..stored.len() - body_of(&stored).len()])
            .to_ascii_lowercase();
        if head.contains("content-transfer-encoding: quoted-printable")
            || head.contains("content-transfer-encoding: base64")
        {
            ctx.note("stored copy was converted to 7 bit (declared in its header)");
            return Ok(());
        }
    }
    same_bytes("8-bit body", body_of(&stored), &body)
}

pub async fn dot_stuffing(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, dot_stuffing_on)
}

/// Lines that start with dots, a line that is only a dot, a dot inside a line, and a last
/// line without CRLF (the client ends it).
pub(crate) const DOTTY_BODY: &[u8] =
    b".leading dot\r\n..two leading dots\r\n.\r\nin the . middle\r\n...\r\n. \r\nno CRLF at the end";

async fn dot_stuffing_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let id = ctx.unique("dots");
    let message = raw_message(&id, "dots", "", DOTTY_BODY);
    deliver(ctx, client, &message, plain_send()).await?;
    let stored = read_back(ctx, 0, &id).await?;
    let expected = [DOTTY_BODY, b"\r\n"].concat();
    same_bytes("body", body_of(&stored), &expected)
}

pub async fn bdat(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, bdat_on)
}

/// Splits a message in three: inside a line, and right before a line of a single dot.
pub(crate) fn bdat_chunks(message: &[u8]) -> Vec<&[u8]> {
    let dot = message
        .windows(3)
        .position(|w| w == b"\n.\r")
        .map_or(message.len() / 2, |p| p + 1);
    let first = dot / 2;
    vec![&message[..first], &message[first..dot], &message[dot..]]
}

/// Sends `chunks` as BDAT commands, each with its data in one write, returning the reply to
/// every non-final chunk (which must be 250) and leaving the last reply(s) to the caller.
pub(crate) async fn send_bdat<S: Io>(
    ctx: &Ctx,
    client: &mut SmtpClient<S>,
    chunks: &[&[u8]],
) -> CheckResult {
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let command = format!("BDAT {}{}", chunk.len(), if last { " LAST" } else { "" });
        ctx.note(format!("C: {command} <{} bytes>", chunk.len()));
        let mut bytes = format!("{command}\r\n").into_bytes();
        bytes.extend_from_slice(chunk);
        if last {
            client.write_bytes(&bytes).await?;
        } else {
            let reply = client.raw_command(&bytes).await?;
            ctx.note(format!("S: {}", show(&reply)));
            expect_code(&format!("BDAT chunk {}", i + 1), &reply, &[250])?;
        }
    }
    Ok(())
}

async fn bdat_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let id = ctx.unique("bdat");
    // BDAT data is not dot-stuffed: these lines must arrive exactly like this.
    let body = b"first line\r\n..two dots stay two\r\n.\r\nlast line\r\n";
    let message = raw_message(&id, "bdat", "", body);
    let from = address(ctx, 0);
    let reply = send(ctx, client, &format!("MAIL FROM:<{from}>")).await?;
    expect_code("MAIL", &reply, &[250])?;
    let reply = send(ctx, client, &format!("RCPT TO:<{from}>")).await?;
    expect_code("RCPT", &reply, &[250, 251])?;
    send_bdat(ctx, client, &bdat_chunks(&message)).await?;
    let reply = next(ctx, client).await?;
    expect_code("BDAT LAST", &reply, &[250])?;
    let reply = send(ctx, client, "NOOP").await?;
    expect_code("NOOP (one reply per BDAT, none extra)", &reply, &[250])?;
    let stored = read_back(ctx, 0, &id).await?;
    same_bytes("body sent with BDAT", body_of(&stored), body)
}

pub async fn enhanced_codes(ctx: &Ctx) -> CheckResult {
    on_submission!(ctx, true, enhanced_codes_on)
}

async fn enhanced_codes_on<S: Io>(ctx: &Ctx, client: &mut SmtpClient<S>) -> CheckResult {
    let from = address(ctx, 0);
    // Positive and negative replies of every kind; greeting and EHLO/HELO are exempt.
    let commands = [
        "NOOP".to_string(),
        "RSET".to_string(),
        format!("RCPT TO:<{from}>"),
        "XMSWUNKNOWN".to_string(),
        "MAIL".to_string(),
        format!("MAIL FROM:<{from}>"),
        format!("RCPT TO:<{from}>"),
        "RSET".to_string(),
    ];
    for command in &commands {
        let reply = send(ctx, client, command).await?;
        if reply.is_intermediate() {
            return Err(fail(format!("a final reply to {command}"), show(&reply)));
        }
        let class = (reply.code / 100) as u8;
        match reply.enhanced {
            Some([c, _, _]) if c == class => {}
            _ => {
                return Err(fail(
                    format!("{class}.x.y enhanced code in the reply to {command}"),
                    show(&reply),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdat_chunks_cover_the_message_and_split_before_a_dot_line() {
        let message = raw_message("id", "s", "", b"a\r\n..b\r\n.\r\nc\r\n");
        let chunks = bdat_chunks(&message);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), message);
        assert!(chunks[2].starts_with(b".\r\n"));
        assert!(chunks.iter().all(|c| !c.is_empty()));
    }

    #[test]
    fn dotty_body_needs_stuffing() {
        let stuffed = dot_stuff(DOTTY_BODY);
        assert!(stuffed.starts_with(b"..leading dot\r\n...two"));
        assert!(stuffed.ends_with(b"no CRLF at the end\r\n.\r\n"));
    }
}
