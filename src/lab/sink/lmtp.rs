//! The sink's LMTP side (RFC 2033): LHLO, MAIL, RCPT, DATA with one reply per accepted
//! recipient, RSET, NOOP, QUIT. Message data is scanned for the end marker and thrown away,
//! so a delivery of any size costs no memory.

use super::conn::{Flow, Protocol};

/// Recipients accepted per transaction; more get a temporary failure, like a real server.
const MAX_RECIPIENTS: u32 = 1000;

/// Where the DATA scanner is relative to the `CRLF . CRLF` that ends the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataScan {
    /// At the start of a line (the DATA command's own CRLF counts).
    LineStart,
    /// A `.` at the start of a line.
    Dot,
    /// `.` then CR at the start of a line.
    DotCr,
    /// Inside a line.
    Middle,
    /// Inside a line, just after a CR.
    Cr,
}

#[derive(Debug, Default)]
pub(super) struct LmtpSession {
    greeted: bool,
    in_transaction: bool,
    recipients: u32,
    data: Option<DataScan>,
}

impl LmtpSession {
    pub(super) fn new() -> LmtpSession {
        LmtpSession::default()
    }

    fn command(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        let verb_end = line.iter().position(|&b| b == b' ' || b == b':');
        let verb = &line[..verb_end.unwrap_or(line.len())];
        let is = |name: &str| verb.eq_ignore_ascii_case(name.as_bytes());
        let reply: &[u8] = if is("LHLO") {
            self.greeted = true;
            self.reset();
            b"250-sink.mailswarm.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
        } else if is("HELO") || is("EHLO") {
            b"500 5.5.1 this is LMTP: use LHLO\r\n"
        } else if is("MAIL") {
            if !self.greeted {
                b"503 5.5.1 send LHLO first\r\n"
            } else if self.in_transaction {
                b"503 5.5.1 nested MAIL command\r\n"
            } else {
                self.in_transaction = true;
                b"250 2.1.0 Ok\r\n"
            }
        } else if is("RCPT") {
            if !self.in_transaction {
                b"503 5.5.1 need MAIL first\r\n"
            } else if self.recipients >= MAX_RECIPIENTS {
                b"452 4.5.3 too many recipients\r\n"
            } else {
                self.recipients += 1;
                b"250 2.1.5 Ok\r\n"
            }
        } else if is("DATA") {
            if self.recipients == 0 {
                b"503 5.5.1 no valid recipients\r\n"
            } else {
                self.data = Some(DataScan::LineStart);
                b"354 2.0.0 end data with <CR><LF>.<CR><LF>\r\n"
            }
        } else if is("RSET") {
            self.reset();
            b"250 2.0.0 Ok\r\n"
        } else if is("NOOP") {
            b"250 2.0.0 Ok\r\n"
        } else if is("QUIT") {
            out.extend_from_slice(b"221 2.0.0 Bye\r\n");
            return Flow::Close;
        } else {
            b"500 5.5.2 unknown command\r\n"
        };
        out.extend_from_slice(reply);
        Flow::Continue
    }

    fn reset(&mut self) {
        self.in_transaction = false;
        self.recipients = 0;
    }

    /// Scans message data from `input`; returns the bytes used and whether the end was found.
    fn scan_data(&mut self, input: &[u8]) -> (usize, bool) {
        let mut state = self.data.unwrap_or(DataScan::LineStart);
        for (i, &b) in input.iter().enumerate() {
            state = match (state, b) {
                (DataScan::DotCr, b'\n') => {
                    self.data = None;
                    return (i + 1, true);
                }
                (DataScan::LineStart, b'.') => DataScan::Dot,
                (DataScan::Dot, b'\r') => DataScan::DotCr,
                (DataScan::Cr, b'\n') => DataScan::LineStart,
                (_, b'\r') => DataScan::Cr,
                _ => DataScan::Middle,
            };
        }
        self.data = Some(state);
        (input.len(), false)
    }
}

impl Protocol for LmtpSession {
    fn greeting(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"220 sink.mailswarm.test LMTP mailswarm sink (benchmark fixture)\r\n",
        );
    }

    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Flow) {
        let mut pos = 0;
        loop {
            if self.data.is_some() {
                let (used, done) = self.scan_data(&input[pos..]);
                pos += used;
                if !done {
                    return (pos, Flow::Continue);
                }
                for _ in 0..self.recipients {
                    out.extend_from_slice(b"250 2.0.0 Ok: saved (discarded by the sink)\r\n");
                }
                self.reset();
            }
            let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
                return (pos, Flow::Continue);
            };
            let line = &input[pos..pos + nl];
            pos += nl + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if self.command(line, out) == Flow::Close {
                return (pos, Flow::Close);
            }
        }
    }

    fn overflow_reply(&self) -> &'static [u8] {
        b"500 5.5.2 line too long\r\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` after whatever an earlier call left unused, as the connection loop does.
    fn run(session: &mut LmtpSession, pending: &mut Vec<u8>, input: &[u8]) -> String {
        pending.extend_from_slice(input);
        let mut out = Vec::new();
        let (used, _) = session.feed(pending, &mut out);
        pending.drain(..used);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn data_ends_only_at_crlf_dot_crlf_even_split_at_every_byte() {
        let message = b"Subject: x\r\n\r\n..stuffed\r\n.x\r\nend.\r\n.\r\nNOOP\r\n";
        for split in 0..message.len() {
            let (mut s, mut p) = (LmtpSession::new(), Vec::new());
            run(
                &mut s,
                &mut p,
                b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\n",
            );
            assert_eq!(
                run(&mut s, &mut p, b"DATA\r\n"),
                "354 2.0.0 end data with <CR><LF>.<CR><LF>\r\n"
            );
            let mut got = run(&mut s, &mut p, &message[..split]);
            got += &run(&mut s, &mut p, &message[split..]);
            let saved = "250 2.0.0 Ok: saved (discarded by the sink)\r\n";
            assert_eq!(
                got,
                format!("{saved}{saved}250 2.0.0 Ok\r\n"),
                "split at {split}"
            );
            assert!(p.is_empty());
        }
    }

    #[test]
    fn a_bare_dot_line_right_after_data_ends_an_empty_message() {
        let (mut s, mut p) = (LmtpSession::new(), Vec::new());
        let got = run(
            &mut s,
            &mut p,
            b"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<u@v>\r\nDATA\r\n.\r\n",
        );
        assert!(got.ends_with("354 2.0.0 end data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: saved (discarded by the sink)\r\n"), "{got}");
    }
}
