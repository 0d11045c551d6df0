//! One mail transaction: MAIL, RCPT for each recipient, then DATA or BDAT, with PIPELINING
//! (RFC 2920) when the server offers it and LMTP's per-recipient final replies.
//!
//! Result rule: `Err` when the transaction stopped before the message was handed over (MAIL
//! refused, no recipient accepted, DATA/BDAT refused, or a network/protocol failure); `Ok` when
//! the final reply or replies arrived, whatever their codes — a 5xx for one LMTP recipient is
//! an outcome to count, not a broken session.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::client::SmtpClient;
use super::dot::{DotStuffer, PIECE};
use super::reply::Reply;
use super::{Flavor, SmtpError};

/// Envelope sender and recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Reverse path; empty for the null sender `<>`.
    pub from: String,
    pub recipients: Vec<String>,
}

/// Parameters on MAIL FROM. Each is sent only when the server advertised its extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` (RFC 1870).
    pub size: Option<usize>,
    /// `BODY=8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
}

/// How the message content is transmitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// DATA with dot-stuffing.
    Data,
    /// BDAT chunks of at most `chunk_size` bytes, sent verbatim (RFC 3030); needs CHUNKING.
    Bdat { chunk_size: usize },
    /// BDAT when CHUNKING is advertised, else DATA.
    Auto { chunk_size: usize },
}

/// Choices for [`SmtpClient::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// Pipeline MAIL and RCPTs (and BDAT chunks) when the server advertises PIPELINING.
    pub pipelining: bool,
    pub transfer: Transfer,
    /// Declare `SIZE=<message length>` when SIZE is advertised.
    pub declare_size: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            pipelining: true,
            transfer: Transfer::Data,
            declare_size: true,
            eight_bit_mime: false,
            smtputf8: false,
        }
    }
}

/// Time from sending a step to its reply, for the per-command histograms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepTimings {
    pub mail: Duration,
    /// One per envelope recipient. When pipelined, measured from the group's write.
    pub rcpt: Vec<Duration>,
    /// DATA to its 354; `None` with BDAT.
    pub data_command: Option<Duration>,
    /// First content byte written to the last final reply.
    pub message: Duration,
}

/// LMTP's reply for one accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReply {
    /// Index into [`Envelope::recipients`].
    pub recipient: usize,
    pub reply: Reply,
}

/// The final verdict on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// SMTP: one reply for all accepted recipients.
    Message(Reply),
    /// LMTP: one reply per accepted recipient, in RCPT order.
    PerRecipient(Vec<RecipientReply>),
}

/// What happened to a transaction that ran to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionOutcome {
    pub mail: Reply,
    /// RCPT replies, one per envelope recipient.
    pub rcpt: Vec<Reply>,
    pub delivery: Delivery,
    pub timings: StepTimings,
    /// Whether MAIL and RCPT went in one write.
    pub pipelined: bool,
    /// Whether BDAT (rather than DATA) carried the message.
    pub chunked: bool,
}

impl TransactionOutcome {
    /// Recipients accepted at RCPT.
    pub fn accepted(&self) -> usize {
        self.rcpt.iter().filter(|r| r.is_positive()).count()
    }

    /// Recipients the server took the message for.
    pub fn delivered(&self) -> usize {
        match &self.delivery {
            Delivery::Message(reply) if reply.is_positive() => self.accepted(),
            Delivery::Message(_) => 0,
            Delivery::PerRecipient(replies) => {
                replies.iter().filter(|r| r.reply.is_positive()).count()
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> SmtpClient<S> {
    /// Runs one transaction; see the module doc for when it returns `Err`. When no recipient
    /// is accepted the transaction is reset (RSET) so the session stays usable.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        opts: &SendOptions,
    ) -> Result<TransactionOutcome, SmtpError> {
        if envelope.recipients.is_empty() {
            return Err(SmtpError::InvalidInput {
                what: "envelope",
                reason: "no recipients".into(),
            });
        }
        let (offers_pipelining, offers_chunking) = self
            .capabilities
            .as_ref()
            .map_or((false, false), |c| (c.pipelining, c.chunking));
        let chunk_size = match opts.transfer {
            Transfer::Data => None,
            Transfer::Bdat { chunk_size } if offers_chunking => Some(chunk_size.max(1)),
            Transfer::Bdat { .. } => {
                return Err(SmtpError::NotAdvertised {
                    extension: "CHUNKING",
                })
            }
            Transfer::Auto { chunk_size } => offers_chunking.then_some(chunk_size.max(1)),
        };
        let params = MailParams {
            size: opts.declare_size.then_some(message.len()),
            eight_bit_mime: opts.eight_bit_mime,
            smtputf8: opts.smtputf8,
        };
        let mail_line = self.mail_line(&envelope.from, &params)?;
        let mut rcpt_lines = Vec::with_capacity(envelope.recipients.len());
        for to in &envelope.recipients {
            rcpt_lines.push(rcpt_line(to)?);
        }
        let pipelined = opts.pipelining && offers_pipelining;
        let mut timings = StepTimings::default();
        let mut rcpt = Vec::with_capacity(rcpt_lines.len());

        let mail = if pipelined {
            let mut group = mail_line;
            rcpt_lines.iter().for_each(|l| group.extend_from_slice(l));
            let sent = Instant::now();
            self.send_bytes("MAIL", &group).await?;
            let mail = self.read_reply("MAIL").await?;
            timings.mail = sent.elapsed();
            // Read every RCPT reply even after a refused MAIL, to stay in step.
            for _ in &rcpt_lines {
                rcpt.push(self.read_reply("RCPT").await?);
                timings.rcpt.push(sent.elapsed());
            }
            if !mail.is_positive() {
                return Err(self.refusal("MAIL", mail, "250"));
            }
            mail
        } else {
            let sent = Instant::now();
            let mail = self.command("MAIL", &mail_line).await?;
            timings.mail = sent.elapsed();
            if !mail.is_positive() {
                return Err(self.refusal("MAIL", mail, "250"));
            }
            for line in &rcpt_lines {
                let sent = Instant::now();
                rcpt.push(self.command("RCPT", line).await?);
                timings.rcpt.push(sent.elapsed());
            }
            mail
        };

        let accepted: Vec<usize> = (0..rcpt.len()).filter(|&i| rcpt[i].is_positive()).collect();
        if accepted.is_empty() {
            let refusal = self.refusal("RCPT", rcpt[0].clone(), "250");
            self.rset().await?;
            return Err(refusal);
        }

        let delivery = match chunk_size {
            None => {
                let sent = Instant::now();
                let go_ahead = self.command("DATA", b"DATA\r\n").await?;
                timings.data_command = Some(sent.elapsed());
                if go_ahead.code != 354 {
                    return Err(self.refusal("DATA", go_ahead, "354"));
                }
                let started = Instant::now();
                self.write_data_body(message).await?;
                let delivery = self.read_final_replies("DATA", envelope, &accepted).await?;
                timings.message = started.elapsed();
                delivery
            }
            Some(chunk_size) => {
                let started = Instant::now();
                self.write_bdat(message, chunk_size, pipelined).await?;
                let delivery = self.read_final_replies("BDAT", envelope, &accepted).await?;
                timings.message = started.elapsed();
                delivery
            }
        };
        Ok(TransactionOutcome {
            mail,
            rcpt,
            delivery,
            timings,
            pipelined,
            chunked: chunk_size.is_some(),
        })
    }

    /// MAIL FROM as a single command; a refusal is an error.
    pub async fn mail(&mut self, from: &str, params: &MailParams) -> Result<Reply, SmtpError> {
        let line = self.mail_line(from, params)?;
        let reply = self.command("MAIL", &line).await?;
        if !reply.is_positive() {
            return Err(self.refusal("MAIL", reply, "250"));
        }
        Ok(reply)
    }

    /// RCPT TO as a single command; the reply is returned whatever its code, since refusing a
    /// recipient is an ordinary answer.
    pub async fn rcpt(&mut self, to: &str) -> Result<Reply, SmtpError> {
        let line = rcpt_line(to)?;
        self.command("RCPT", &line).await
    }

    fn mail_line(&self, from: &str, params: &MailParams) -> Result<Vec<u8>, SmtpError> {
        check_address("MAIL FROM address", from, true)?;
        let caps = self.capabilities.as_ref();
        let offered = |f: fn(&super::Capabilities) -> bool| caps.is_some_and(f);
        let mut line = format!("MAIL FROM:<{from}>");
        if let Some(size) = params.size.filter(|_| offered(|c| c.size.is_some())) {
            line.push_str(&format!(" SIZE={size}"));
        }
        if params.eight_bit_mime && offered(|c| c.eight_bit_mime) {
            line.push_str(" BODY=8BITMIME");
        }
        if params.smtputf8 && offered(|c| c.smtputf8) {
            line.push_str(" SMTPUTF8");
        }
        line.push_str("\r\n");
        Ok(line.into_bytes())
    }

    /// Writes the dot-stuffed body in pieces of [`PIECE`] input bytes; the terminator goes out
    /// with the last piece.
    async fn write_data_body(&mut self, message: &[u8]) -> Result<(), SmtpError> {
        let mut stuffer = DotStuffer::default();
        let mut out = Vec::with_capacity(message.len().min(PIECE) * 2 + 5);
        let mut pieces = message.chunks(PIECE).peekable();
        if pieces.peek().is_none() {
            stuffer.finish(&mut out);
            return self.write_raw("DATA", &out).await;
        }
        while let Some(piece) = pieces.next() {
            out.clear();
            stuffer.encode(piece, &mut out);
            if pieces.peek().is_none() {
                stuffer.clone().finish(&mut out);
            }
            self.write_raw("DATA", &out).await?;
        }
        Ok(())
    }

    /// Sends the BDAT chunks. Without pipelining each chunk but the last waits for its 250.
    async fn write_bdat(
        &mut self,
        message: &[u8],
        chunk_size: usize,
        pipelined: bool,
    ) -> Result<(), SmtpError> {
        let count = message.len().div_ceil(chunk_size).max(1);
        let mut out = Vec::with_capacity(message.len().min(chunk_size) + 32);
        for index in 0..count {
            let chunk = message
                .get(index * chunk_size..((index + 1) * chunk_size).min(message.len()))
                .unwrap_or_default();
            let last = index + 1 == count;
            out.clear();
            out.extend_from_slice(format!("BDAT {}", chunk.len()).as_bytes());
            out.extend_from_slice(if last { b" LAST\r\n" } else { b"\r\n" });
            out.extend_from_slice(chunk);
            if index == 0 {
                self.send_bytes("BDAT", &out).await?;
            } else {
                self.write_raw("BDAT", &out).await?;
            }
            if !last && !pipelined {
                self.expect_chunk_reply().await?;
            }
        }
        if pipelined {
            for _ in 1..count {
                self.expect_chunk_reply().await?;
            }
        }
        Ok(())
    }

    async fn expect_chunk_reply(&mut self) -> Result<(), SmtpError> {
        let reply = self.read_reply("BDAT").await?;
        if !reply.is_positive() {
            return Err(self.refusal("BDAT", reply, "250"));
        }
        Ok(())
    }

    /// SMTP: one reply. LMTP: exactly one per accepted recipient, in RCPT order. A reply that
    /// names another envelope recipient (`<addr>` in its text, as Dovecot and Postfix write)
    /// proves the order is broken.
    async fn read_final_replies(
        &mut self,
        verb: &'static str,
        envelope: &Envelope,
        accepted: &[usize],
    ) -> Result<Delivery, SmtpError> {
        if self.flavor == Flavor::Smtp {
            return Ok(Delivery::Message(self.read_reply(verb).await?));
        }
        let mut finals = Vec::with_capacity(accepted.len());
        for &index in accepted {
            let reply = self.read_reply(verb).await?;
            if let Some(named) = named_recipient(&reply.text) {
                let expected = &envelope.recipients[index];
                let other = envelope
                    .recipients
                    .iter()
                    .position(|r| r.eq_ignore_ascii_case(named));
                if !named.eq_ignore_ascii_case(expected) && other.is_some() {
                    return Err(SmtpError::protocol(
                        verb,
                        format!(
                            "LMTP reply for <{named}> where the reply for <{expected}> was due \
                             (replies must follow the order of accepted RCPTs)"
                        ),
                        reply.text,
                    ));
                }
            }
            finals.push(RecipientReply {
                recipient: index,
                reply,
            });
        }
        Ok(Delivery::PerRecipient(finals))
    }
}

/// The first `<...>` in a reply text.
fn named_recipient(text: &str) -> Option<&str> {
    let open = text.find('<')?;
    let close = text[open..].find('>')? + open;
    Some(&text[open + 1..close])
}

fn rcpt_line(to: &str) -> Result<Vec<u8>, SmtpError> {
    check_address("RCPT TO address", to, false)?;
    Ok(format!("RCPT TO:<{to}>\r\n").into_bytes())
}

fn check_address(what: &'static str, address: &str, may_be_empty: bool) -> Result<(), SmtpError> {
    let bad = address
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'<' || b == b'>');
    if bad || (address.is_empty() && !may_be_empty) {
        return Err(SmtpError::InvalidInput {
            what,
            reason: format!("{address:?} is empty or contains control characters or <>"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_recipient_finds_the_first_address() {
        assert_eq!(
            named_recipient("<user1@lab.test> yrvc Saved"),
            Some("user1@lab.test")
        );
        assert_eq!(named_recipient("OK"), None);
        assert_eq!(named_recipient("half <open"), None);
    }

    #[test]
    fn addresses_that_would_split_the_line_are_refused() {
        assert!(check_address("x", "a@b\r\nRSET", false).is_err());
        assert!(check_address("x", "a>b", false).is_err());
        assert!(check_address("x", "", false).is_err());
        assert!(check_address("x", "", true).is_ok());
        assert!(check_address("x", "user1@lab.test", false).is_ok());
    }
}
