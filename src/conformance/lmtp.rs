//! LMTP checks (RFC 2033), against the `--lmtp` endpoint: LHLO instead of EHLO, and one final
//! reply per accepted recipient after the message, in RCPT order. Delivered messages are read
//! back over IMAP (the server adds Return-Path and Delivered-To on top: compared as a suffix).

use super::smtp::{
    bare, bdat_chunks, ends_with, expect_code, next, raw_message, read_back, send, send_bdat, show,
    DOTTY_BODY,
};
use super::{ensure, fail, Check, CheckResult, Ctx};
use crate::conform_check as check;
use crate::proto::smtp::dot::dot_stuff;
use crate::proto::smtp::{Flavor, Reply, SmtpClient};
use tokio::net::TcpStream;

pub const CHECKS: &[Check] = &[
    check!(
        "lmtp.lhlo.accepted",
        "LHLO is answered with 250",
        "RFC 2033 4.1",
        Must,
        Lmtp,
        lhlo_accepted
    ),
    check!(
        "lmtp.lhlo.ehlo-helo-refused",
        "EHLO and HELO get no positive reply over LMTP",
        "RFC 2033 4.1",
        Must,
        Lmtp,
        ehlo_helo_refused
    ),
    check!(
        "lmtp.data.per-recipient-replies",
        "After DATA, one reply per accepted recipient, in RCPT order",
        "RFC 2033 4.2",
        Must,
        Lmtp,
        per_recipient,
        accounts: 2,
        destructive
    ),
    check!(
        "lmtp.data.rejected-recipient-no-reply",
        "A recipient refused at RCPT gets no reply after DATA",
        "RFC 2033 4.2",
        Must,
        Lmtp,
        rejected_recipient,
        destructive
    ),
    check!(
        "lmtp.data.byte-exact",
        "A dot-stuffed message is stored byte-exact",
        "RFC 2033 4.2",
        Must,
        Lmtp,
        byte_exact,
        destructive
    ),
    check!(
        "lmtp.pipelining.reply-order",
        "MAIL, RCPTs and DATA in one write: one reply each, in order",
        "RFC 2920 3.2",
        Must,
        Lmtp,
        pipelining,
        needs: ["PIPELINING"],
        accounts: 2,
        destructive
    ),
    check!(
        "lmtp.chunking.bdat-replies",
        "BDAT: 250 per chunk, then one reply per accepted recipient after LAST",
        "RFC 2033 4.2",
        Should,
        Lmtp,
        bdat,
        needs: ["CHUNKING"],
        accounts: 2,
        destructive
    ),
];

type Lmtp = SmtpClient<TcpStream>;

fn address(ctx: &Ctx, index: usize) -> String {
    ctx.account(index).address(&ctx.target.domain)
}

async fn lhlo_accepted(ctx: &Ctx) -> CheckResult {
    let mut client = bare(ctx, Flavor::Lmtp).await?;
    let reply = send(ctx, &mut client, "LHLO conform.mailswarm.test").await?;
    expect_code("LHLO", &reply, &[250])
}

async fn ehlo_helo_refused(ctx: &Ctx) -> CheckResult {
    // A fresh connection for each: the RFC does not say whether the session goes on.
    for verb in ["EHLO", "HELO"] {
        let mut client = bare(ctx, Flavor::Lmtp).await?;
        let reply = send(ctx, &mut client, &format!("{verb} conform.mailswarm.test")).await?;
        ensure(
            !reply.is_positive(),
            format!("no 2xx to {verb} (500 recommended)"),
            show(&reply),
        )?;
    }
    Ok(())
}

/// Reads the final replies for `accepted` recipients, then checks that nothing else follows.
async fn final_replies(
    ctx: &Ctx,
    client: &mut Lmtp,
    accepted: &[String],
) -> Result<Vec<Reply>, super::CheckError> {
    let mut replies = Vec::new();
    for _ in accepted {
        replies.push(next(ctx, client).await?);
    }
    // One more reply than accepted recipients would be waiting here: NOOP refuses to run.
    let reply = send(ctx, client, "NOOP").await?;
    expect_code(
        &format!("NOOP after {} final replies (no extra)", accepted.len()),
        &reply,
        &[250],
    )?;
    // Servers often name the recipient in its reply; where they do, the order must match.
    for (reply, to) in replies.iter().zip(accepted) {
        let named: Vec<&String> = accepted
            .iter()
            .filter(|a| reply.text.contains(&format!("<{a}>")))
            .collect();
        if !named.is_empty() && !named.contains(&to) {
            return Err(fail(
                format!("the final replies in RCPT order ({})", accepted.join(", ")),
                format!("reply for <{to}> is {}", show(reply)),
            ));
        }
    }
    Ok(replies)
}

/// MAIL, RCPT for each of `to`, DATA with `message`; returns the recipients accepted and
/// their final replies.
async fn transaction(
    ctx: &Ctx,
    client: &mut Lmtp,
    to: &[String],
    message: &[u8],
) -> Result<(Vec<String>, Vec<Reply>), super::CheckError> {
    let from = address(ctx, 0);
    let reply = send(ctx, client, &format!("MAIL FROM:<{from}>")).await?;
    expect_code("MAIL", &reply, &[250])?;
    let mut accepted = Vec::new();
    for rcpt in to {
        let reply = send(ctx, client, &format!("RCPT TO:<{rcpt}>")).await?;
        if reply.is_positive() {
            accepted.push(rcpt.clone());
        }
    }
    let reply = send(ctx, client, "DATA").await?;
    expect_code("DATA", &reply, &[354])?;
    ctx.note(format!("C: <{} bytes of message>", message.len()));
    client.write_bytes(&dot_stuff(message)).await?;
    let replies = final_replies(ctx, client, &accepted).await?;
    Ok((accepted, replies))
}

async fn per_recipient(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.lmtp().await?;
    let id = ctx.unique("lmtp-two");
    let to = [address(ctx, 0), address(ctx, 1)];
    let message = raw_message(&id, "lmtp two recipients", "", b"two\r\n");
    let (accepted, replies) = transaction(ctx, &mut client, &to, &message).await?;
    ensure(
        accepted.len() == 2,
        "both recipients accepted at RCPT",
        accepted.join(", "),
    )?;
    for reply in &replies {
        expect_code("delivery to an existing user", reply, &[250])?;
    }
    read_back(ctx, 0, &id).await?;
    read_back(ctx, 1, &id).await?;
    Ok(())
}

async fn rejected_recipient(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.lmtp().await?;
    let id = ctx.unique("lmtp-reject");
    let nobody = format!("nosuchuser-{}@{}", ctx.unique("x"), ctx.target.domain);
    let to = [address(ctx, 0), nobody.clone()];
    let message = raw_message(&id, "lmtp rejected recipient", "", b"one of two\r\n");
    // The reply count after DATA is checked against what RCPT accepted, whatever that was.
    let (accepted, _) = transaction(ctx, &mut client, &to, &message).await?;
    ensure(
        accepted.first() == Some(&to[0]),
        "the existing user accepted",
        accepted.join(", "),
    )?;
    if accepted.contains(&nobody) {
        ctx.note("the unknown user was accepted at RCPT (allowed; fails later)");
    }
    read_back(ctx, 0, &id).await?;
    Ok(())
}

async fn byte_exact(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.lmtp().await?;
    let id = ctx.unique("lmtp-dots");
    let message = raw_message(&id, "lmtp dots", "", DOTTY_BODY);
    let (_, replies) = transaction(ctx, &mut client, &[address(ctx, 0)], &message).await?;
    for reply in &replies {
        expect_code("delivery", reply, &[250])?;
    }
    let stored = read_back(ctx, 0, &id).await?;
    ends_with("message", &stored, &[message.as_slice(), b"\r\n"].concat())
}

async fn pipelining(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.lmtp().await?;
    let id = ctx.unique("lmtp-pipe");
    let (a, b) = (address(ctx, 0), address(ctx, 1));
    let nobody = format!("nosuchuser-{}@{}", ctx.unique("x"), ctx.target.domain);
    let message = raw_message(&id, "lmtp pipelining", "", b"pipelined\r\n");
    let group = format!(
        "MAIL FROM:<{a}>\r\nRCPT TO:<{a}>\r\nRCPT TO:<{nobody}>\r\nRCPT TO:<{b}>\r\nDATA\r\n"
    );
    ctx.note(format!("C: (one write) {}", group.replace("\r\n", " | ")));
    client.write_bytes(group.as_bytes()).await?;
    let mut replies = Vec::new();
    for _ in 0..5 {
        replies.push(next(ctx, &mut client).await?);
    }
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    ensure(
        codes[0] == 250 && replies[1].is_positive() && replies[3].is_positive() && codes[4] == 354,
        "250 (MAIL), 2xx, any, 2xx (RCPTs), 354 (DATA), in that order",
        format!("{codes:?}"),
    )?;
    let mut accepted = vec![a];
    if replies[2].is_positive() {
        accepted.push(nobody);
    }
    accepted.push(b);
    ctx.note(format!("C: <{} bytes of message>", message.len()));
    client.write_bytes(&dot_stuff(&message)).await?;
    final_replies(ctx, &mut client, &accepted).await?;
    read_back(ctx, 0, &id).await?;
    read_back(ctx, 1, &id).await?;
    Ok(())
}

async fn bdat(ctx: &Ctx) -> CheckResult {
    let mut client = ctx.lmtp().await?;
    let id = ctx.unique("lmtp-bdat");
    let to = [address(ctx, 0), address(ctx, 1)];
    let body = b"first\r\n..stays two dots\r\n.\r\nlast\r\n";
    let message = raw_message(&id, "lmtp bdat", "", body);
    let reply = send(ctx, &mut client, &format!("MAIL FROM:<{}>", to[0])).await?;
    expect_code("MAIL", &reply, &[250])?;
    for rcpt in &to {
        let reply = send(ctx, &mut client, &format!("RCPT TO:<{rcpt}>")).await?;
        expect_code("RCPT of an existing user", &reply, &[250])?;
    }
    send_bdat(ctx, &mut client, &bdat_chunks(&message)).await?;
    let replies = final_replies(ctx, &mut client, &to).await?;
    for reply in &replies {
        expect_code("delivery", reply, &[250])?;
    }
    let stored = read_back(ctx, 0, &id).await?;
    ends_with("message sent with BDAT", &stored, &message)?;
    read_back(ctx, 1, &id).await?;
    Ok(())
}
