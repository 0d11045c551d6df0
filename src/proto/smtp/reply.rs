//! Reply framing and parsing: check the raw lines strictly, then let smtp-proto's
//! `ResponseReceiver` parse the complete reply.
//!
//! smtp-proto is lenient (bare LF, mismatched codes on continuation lines), which is right for a
//! server but wrong for a conformance and load tool: a server that breaks the grammar must be
//! reported, with the bytes it sent. So each reply is framed here first, validated line by line
//! (RFC 5321 §4.2 and §4.5.3.1.5), and only a well-formed frame is handed to the parser.

use smtp_proto::response::parser::ResponseReceiver;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest reply line, CRLF included (RFC 5321 §4.5.3.1.5).
pub const MAX_LINE_LEN: usize = 512;
/// Most lines in one reply. EHLO replies of real servers have 5-20.
pub const MAX_REPLY_LINES: usize = 64;
/// Raw bytes quoted in a protocol error, so a flood does not end up in logs.
const MAX_QUOTED: usize = 600;
/// Capacity kept between replies; anything above `SHRINK_ABOVE` is released when the buffer
/// drains, so an idle connection holds about half a kilobyte however long its last reply was.
const KEEP_CAPACITY: usize = 512;
const SHRINK_ABOVE: usize = 4096;

/// One complete server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit code, 200..=559.
    pub code: u16,
    /// Enhanced status code (RFC 3463) when the text starts with one, e.g. `[2, 1, 5]`.
    pub enhanced: Option<[u8; 3]>,
    /// Text of every line without code and enhanced code, lines joined by `\n`.
    pub text: String,
}

impl Reply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// `2.1.5`-style rendering of the enhanced code, if any.
    pub fn enhanced_string(&self) -> Option<String> {
        self.enhanced.map(|[c, s, d]| format!("{c}.{s}.{d}"))
    }

    /// Text lines (for multi-line replies such as EHLO).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }
}

/// A reply that breaks the grammar, with the raw bytes that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub raw: String,
}

/// Checks the reply at the start of `buf`. `Ok(Some(n))`: the first `n` bytes are one complete,
/// well-formed reply. `Ok(None)`: no violation so far but the reply is not complete yet.
pub fn frame_reply(buf: &[u8]) -> Result<Option<usize>, Violation> {
    let mut start = 0;
    let mut code: Option<&[u8]> = None;
    let mut lines = 0;
    loop {
        let rest = &buf[start..];
        let window = &rest[..rest.len().min(MAX_LINE_LEN)];
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_LINE_LEN {
                return Err(violation(
                    buf,
                    format!("reply line longer than {MAX_LINE_LEN} bytes"),
                ));
            }
            return Ok(None);
        };
        let line = &rest[..=lf];
        let end = start + lf + 1;
        let bad = |reason: String| Err(violation(&buf[..end], reason));
        if lf == 0 || line[lf - 1] != b'\r' {
            return bad("bare LF: reply lines must end with CRLF".into());
        }
        let body = &line[..lf - 1];
        if body.contains(&b'\r') {
            return bad("bare CR inside a reply line".into());
        }
        if body.len() < 3 || !body[..3].iter().all(u8::is_ascii_digit) {
            return bad("reply line does not start with a 3-digit code".into());
        }
        if !(b'2'..=b'5').contains(&body[0]) || !(b'0'..=b'5').contains(&body[1]) {
            return bad(format!(
                "reply code {} is outside 2xx-5xx with second digit 0-5",
                String::from_utf8_lossy(&body[..3])
            ));
        }
        match code {
            None => code = Some(&body[..3]),
            Some(first) if first != &body[..3] => {
                return bad(format!(
                    "multi-line reply changes code from {} to {}",
                    String::from_utf8_lossy(first),
                    String::from_utf8_lossy(&body[..3])
                ));
            }
            Some(_) => {}
        }
        lines += 1;
        let last = match body.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(other) => {
                return bad(format!(
                    "separator after the code is {:?}, not space or '-'",
                    *other as char
                ));
            }
        };
        if last {
            return Ok(Some(end));
        }
        if lines >= MAX_REPLY_LINES {
            return bad(format!("reply has more than {MAX_REPLY_LINES} lines"));
        }
        start = end;
    }
}

/// Parses one frame accepted by [`frame_reply`] with smtp-proto.
pub fn parse_frame(frame: &[u8]) -> Result<Reply, Violation> {
    let mut iter = frame.iter();
    let parsed = ResponseReceiver::default()
        .parse(&mut iter)
        .map_err(|e| violation(frame, format!("unparsable reply: {e}")))?;
    if !iter.as_slice().is_empty() {
        // The framer and the parser disagree about where the reply ends: never guess.
        return Err(violation(frame, "reply framing mismatch".into()));
    }
    Ok(Reply {
        code: parsed.code,
        enhanced: (parsed.esc != [0, 0, 0]).then_some(parsed.esc),
        text: parsed.message,
    })
}

fn violation(raw: &[u8], reason: String) -> Violation {
    Violation {
        reason,
        raw: quote(raw),
    }
}

/// Lossy text of at most [`MAX_QUOTED`] bytes of server output.
pub fn quote(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(MAX_QUOTED)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if raw.len() > MAX_QUOTED {
        text.push_str("...");
    }
    text
}

/// Bytes received but not yet parsed. Bounded: a reply may not exceed
/// `MAX_REPLY_LINES * MAX_LINE_LEN` and more is only read while no complete reply is buffered.
#[derive(Debug, Default)]
pub struct ReplyBuffer {
    buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    start: usize,
}

impl ReplyBuffer {
    /// Bytes the server sent that no reply has consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Takes one complete reply off the front, if there is one.
    pub fn take_reply(&mut self) -> Result<Option<Reply>, Violation> {
        let Some(len) = frame_reply(self.pending())? else {
            return Ok(None);
        };
        let reply = parse_frame(&self.pending()[..len])?;
        self.start += len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > SHRINK_ABOVE {
                self.buf.shrink_to(KEEP_CAPACITY);
            }
        }
        Ok(Some(reply))
    }

    /// Reads what the socket has (at least one byte unless EOF, which returns 0).
    pub async fn fill<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> std::io::Result<usize> {
        if self.start > 0 {
            // Move the partial reply to the front instead of growing the buffer.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < 256 {
            self.buf.reserve(KEEP_CAPACITY);
        }
        io.read_buf(&mut self.buf).await
    }

    /// Allocated bytes (for memory accounting and the shrink test).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &[u8]) -> Result<Reply, Violation> {
        let len = frame_reply(raw)?.expect("complete");
        assert_eq!(len, raw.len(), "whole input is one reply");
        parse_frame(raw)
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let reply = one(b"250 2.1.5 OK\r\n").unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.enhanced, Some([2, 1, 5]));
        assert_eq!(reply.text, "OK");
        assert_eq!(reply.enhanced_string().as_deref(), Some("2.1.5"));
    }

    #[test]
    fn code_only_line_is_valid() {
        let reply = one(b"250\r\n").unwrap();
        assert_eq!((reply.code, reply.text.as_str()), (250, ""));
    }

    #[test]
    fn multi_line_joins_text() {
        let reply = one(b"250-mx.lab.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n").unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(
            reply.lines().collect::<Vec<_>>(),
            ["mx.lab.test", "PIPELINING", "SIZE 1000"]
        );
    }

    #[test]
    fn pipelined_replies_leave_the_rest() {
        let raw = b"250 2.1.0 OK\r\n550 5.1.1 <x@lab.test> unknown\r\n250 2.1.5 OK\r\n???";
        let first = frame_reply(raw).unwrap().unwrap();
        assert_eq!(&raw[..first], b"250 2.1.0 OK\r\n");
        let second = frame_reply(&raw[first..]).unwrap().unwrap();
        let reply = parse_frame(&raw[first..first + second]).unwrap();
        assert_eq!(
            (reply.code, reply.text.as_str()),
            (550, "<x@lab.test> unknown")
        );
        let third = frame_reply(&raw[first + second..]).unwrap().unwrap();
        assert_eq!(frame_reply(&raw[first + second + third..]).unwrap(), None);
    }

    #[test]
    fn split_at_every_byte_gives_the_same_replies() {
        let raw: &[u8] = b"250-vm\r\n250-8BITMIME\r\n250 PIPELINING\r\n354 OK\r\n";
        let mut buffer = ReplyBuffer::default();
        let mut replies = Vec::new();
        for &byte in raw {
            buffer.buf.push(byte);
            while let Some(reply) = buffer.take_reply().unwrap() {
                replies.push(reply);
            }
        }
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].text, "vm\n8BITMIME\nPIPELINING");
        assert_eq!((replies[1].code, replies[1].text.as_str()), (354, "OK"));
        assert!(buffer.pending().is_empty());
    }

    fn reason(raw: &[u8]) -> String {
        match frame_reply(raw) {
            Err(v) => {
                assert!(!v.raw.is_empty(), "violation quotes the raw bytes");
                v.reason
            }
            other => panic!("expected a violation for {raw:?}, got {other:?}"),
        }
    }

    #[test]
    fn grammar_violations_are_named() {
        assert!(reason(b"250 OK\n").contains("bare LF"));
        assert!(reason(b"250-a\r\n250 b\n").contains("bare LF"));
        assert!(reason(b"250 O\rK\r\n").contains("bare CR"));
        assert!(reason(b"250-a\r\n251 b\r\n").contains("changes code"));
        assert!(reason(b"abc OK\r\n").contains("3-digit"));
        assert!(reason(b"25\r\n").contains("3-digit"));
        assert!(reason(b"199 OK\r\n").contains("outside"));
        assert!(reason(b"600 OK\r\n").contains("outside"));
        assert!(reason(b"270 OK\r\n").contains("outside"));
        assert!(reason(b"250_OK\r\n").contains("separator"));
    }

    #[test]
    fn long_line_is_rejected_before_its_end_arrives() {
        let mut raw = b"250 ".to_vec();
        raw.resize(MAX_LINE_LEN, b'x');
        assert!(reason(&raw).contains("longer than"));
        // Exactly the limit with CRLF is fine.
        let mut ok = b"250 ".to_vec();
        ok.resize(MAX_LINE_LEN - 2, b'x');
        ok.extend_from_slice(b"\r\n");
        assert_eq!(frame_reply(&ok).unwrap(), Some(MAX_LINE_LEN));
    }

    #[test]
    fn too_many_lines_is_rejected() {
        let raw = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert!(reason(&raw).contains("more than"));
    }

    #[test]
    fn buffer_shrinks_after_a_big_reply() {
        let mut buffer = ReplyBuffer::default();
        let mut line = b"250-".to_vec();
        line.resize(400, b'x');
        line.extend_from_slice(b"\r\n");
        let mut raw = line.repeat(8);
        raw.extend_from_slice(b"250 end\r\n");
        buffer.buf.reserve(16 * 1024);
        buffer.buf.extend_from_slice(&raw);
        let reply = buffer.take_reply().unwrap().unwrap();
        assert!(reply.text.ends_with("end"));
        assert!(buffer.capacity() <= SHRINK_ABOVE, "{}", buffer.capacity());
    }

    /// Everything `ReplyBuffer` makes of `input`: replies until the first violation.
    fn outcomes(input: &[u8], piece: usize) -> Vec<Result<Reply, Violation>> {
        let mut buffer = ReplyBuffer::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            buffer.buf.extend_from_slice(chunk);
            loop {
                match buffer.take_reply() {
                    Ok(Some(reply)) => out.push(Ok(reply)),
                    Ok(None) => break,
                    Err(v) => {
                        out.push(Err(v));
                        return out;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn random_input_never_panics_and_splitting_changes_nothing() {
        use rand::{RngExt, SeedableRng};
        let alphabet = b"0123456789 -.\r\n\r\naZ\xff\x00";
        let mut rng = rand_pcg::Pcg32::seed_from_u64(5321);
        for _ in 0..3000 {
            let len = rng.random_range(0..120);
            let mut input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            // Bias towards plausible replies so the parser is reached, not only the framer.
            if rng.random_bool(0.5) {
                input.splice(0..0, b"250".iter().copied());
            }
            let whole = outcomes(&input, input.len().max(1));
            assert_eq!(
                whole,
                outcomes(&input, 1),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
            for reply in whole.iter().flatten() {
                assert!((200..=559).contains(&reply.code));
            }
        }
    }

    #[test]
    fn quote_is_bounded() {
        let quoted = quote(&[b'a'; 5000]);
        assert_eq!(quoted.len(), MAX_QUOTED + 3);
    }
}
