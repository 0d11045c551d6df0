//! Splits the server's byte stream into complete IMAP response messages before anything parses
//! them.
//!
//! A response is one line, or several lines joined by literals (`{N}\r\n` followed by N raw
//! bytes). The framer finds CRLFs, follows literal announcements and hands out a message only
//! once it is complete, so the strict decoder always sees whole messages and its verdict is
//! final. Every dimension is bounded by [`ImapLimits`]; a server that exceeds one gets a
//! [`ImapError::LimitExceeded`], never an unbounded buffer.
//!
//! We do not use imap-codec's `Fragmentizer`: its buffer never shrinks, so every connection
//! would keep about twice its largest response for its whole life. Here the read buffer is
//! dropped whenever it is empty, and a read that starts a new message goes through a stack
//! buffer first, so a connection waiting in IDLE holds no read buffer at all.

use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use imap_codec::decode::{Decoder, ResponseDecodeError};
use imap_codec::ResponseCodec;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::error::ImapError;

/// Size of one read when no literal is pending; also the stack buffer used while idle.
const READ_CHUNK: usize = 4096;

/// Largest single reservation while reading a literal: a hostile server announcing a 60 MiB
/// literal and then trickling bytes should not get 60 MiB allocated up front.
const MAX_RESERVE_STEP: usize = 256 * 1024;

/// Bounds on what a server may send and how long it may take. Exceeding a size limit ends the
/// connection with [`ImapError::LimitExceeded`], the deadline with [`ImapError::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapLimits {
    /// Longest line (up to and including CRLF), not counting literal data.
    pub max_line: usize,
    /// Largest single literal a server may announce.
    pub max_literal: usize,
    /// Largest complete response message (all its lines and literals).
    pub max_message: usize,
    /// Largest number of unsolicited events queued for the caller; older ones are dropped
    /// (and counted) beyond it.
    pub max_queued_events: usize,
    /// Deadline for each command (and for the greeting).
    pub command_timeout: Duration,
}

impl Default for ImapLimits {
    fn default() -> Self {
        ImapLimits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_message: 64 * 1024 * 1024,
            max_queued_events: 4096,
            command_timeout: Duration::from_secs(30),
        }
    }
}

/// Which grammar the next message follows: the greeting never contains literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageKind {
    Greeting,
    Response,
}

/// Read buffer plus the scan state of the message being assembled.
///
/// Invariant: `buf[..scanned]` belongs to the current message and contains no complete message;
/// `line_start` is where the current line begins; `literal_left` bytes of literal data are
/// still to come before scanning for CRLF resumes.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    buf: BytesMut,
    scanned: usize,
    line_start: usize,
    literal_left: usize,
    pub(crate) limits: ImapLimits,
}

impl Framer {
    pub(crate) fn new(limits: ImapLimits) -> Framer {
        Framer {
            limits,
            ..Framer::default()
        }
    }

    /// Heap bytes the read buffer holds now.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes received but not yet handed out as a message.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Appends bytes as if received.
    #[cfg(test)]
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Looks for the end of the current message. `Ok(Some(len))` means `buf[..len]` is one
    /// complete message; `Ok(None)` means more bytes are needed.
    pub(crate) fn scan(&mut self, kind: MessageKind) -> Result<Option<usize>, ImapError> {
        loop {
            if self.literal_left > 0 {
                let available = self.buf.len() - self.scanned;
                if available < self.literal_left {
                    self.scanned += available;
                    self.literal_left -= available;
                    return Ok(None);
                }
                self.scanned += self.literal_left;
                self.literal_left = 0;
                self.line_start = self.scanned;
            }
            let Some(offset) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                let line_len = self.buf.len() - self.line_start;
                if line_len > self.limits.max_line {
                    return Err(limit("line", "max_line", self.limits.max_line, line_len));
                }
                return Ok(None);
            };
            let lf = self.scanned + offset;
            let line = &self.buf[self.line_start..=lf];
            if line.len() > self.limits.max_line {
                return Err(limit("line", "max_line", self.limits.max_line, line.len()));
            }
            if lf + 1 > self.limits.max_message {
                return Err(limit(
                    "message",
                    "max_message",
                    self.limits.max_message,
                    lf + 1,
                ));
            }
            if line.len() < 2 || line[line.len() - 2] != b'\r' {
                return Err(ImapError::protocol(
                    &self.buf[..=lf],
                    "line ends in a bare LF (IMAP requires CRLF)",
                ));
            }
            let announced = match kind {
                MessageKind::Greeting => None,
                MessageKind::Response => literal_announcement(&line[..line.len() - 2]),
            };
            let Some((length, _)) = announced else {
                return Ok(Some(lf + 1));
            };
            if length > self.limits.max_literal as u64 {
                return Err(ImapError::LimitExceeded {
                    what: "literal",
                    field: "max_literal",
                    limit: self.limits.max_literal,
                    actual: length,
                });
            }
            let length = length as usize; // fits: at most max_literal

            let total = (lf + 1).saturating_add(length);
            if total > self.limits.max_message {
                return Err(limit(
                    "message",
                    "max_message",
                    self.limits.max_message,
                    total,
                ));
            }
            // `{N}` at the end of a first line may be plain text (`* OK see {5}`); only the
            // grammar can tell, so ask the decoder once per message. Later lines sit inside
            // data responses, where free text cannot occur.
            if self.line_start == 0 {
                match ResponseCodec::default().decode(&self.buf[..=lf]) {
                    Ok(_) | Err(ResponseDecodeError::Failed) => return Ok(Some(lf + 1)),
                    Err(ResponseDecodeError::LiteralFound { .. })
                    | Err(ResponseDecodeError::Incomplete) => {}
                }
            }
            self.scanned = lf + 1;
            self.literal_left = length;
            if length == 0 {
                self.line_start = self.scanned;
            }
        }
    }

    /// Hands out the first `len` bytes as one message and resets the scan state.
    pub(crate) fn take(&mut self, len: usize) -> Bytes {
        let message = self.buf.split_to(len).freeze();
        self.scanned = 0;
        self.line_start = 0;
        self.literal_left = 0;
        if self.buf.is_empty() {
            // The empty remainder still pins the allocation shared with `message`.
            self.buf = BytesMut::new();
        }
        message
    }

    /// Gives memory back while the connection waits: an empty buffer is dropped, a small
    /// leftover is copied into a right-sized one so it no longer pins a large allocation.
    pub(crate) fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        } else if self.buf.capacity() > 2 * READ_CHUNK && self.buf.len() <= READ_CHUNK {
            self.buf = BytesMut::from(&self.buf[..]);
        }
    }

    /// Describes where the stream ended, for [`ImapError::Closed`].
    fn eof_context(&self) -> &'static str {
        if self.buf.is_empty() {
            "while an answer was due"
        } else if self.literal_left > 0 {
            "in the middle of a literal"
        } else {
            "in the middle of a line"
        }
    }

    /// Reads until one complete message is buffered and returns it. Cancel-safe: received
    /// bytes and scan state live in `self`, so dropping the future loses nothing.
    pub(crate) async fn read_message<S>(
        &mut self,
        stream: &mut S,
        kind: MessageKind,
    ) -> Result<Bytes, ImapError>
    where
        S: AsyncRead + Unpin,
    {
        loop {
            if let Some(len) = self.scan(kind)? {
                return Ok(self.take(len));
            }
            let read = if self.buf.is_empty() {
                // Start of a new message: the wait may be long (IDLE), so wait on a stack
                // buffer and allocate only for bytes that arrived.
                poll_fn(|cx| self.poll_read_into_stack(cx, stream)).await?
            } else {
                let want = self.literal_left.clamp(READ_CHUNK, MAX_RESERVE_STEP);
                self.buf.reserve(want);
                stream.read_buf(&mut self.buf).await?
            };
            if read == 0 {
                return Err(ImapError::Closed {
                    during: self.eof_context(),
                });
            }
        }
    }

    fn poll_read_into_stack<S>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
    ) -> Poll<std::io::Result<usize>>
    where
        S: AsyncRead + Unpin,
    {
        let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut read_buf = ReadBuf::uninit(&mut stack);
        ready!(Pin::new(stream).poll_read(cx, &mut read_buf))?;
        let filled = read_buf.filled();
        self.buf.extend_from_slice(filled);
        Poll::Ready(Ok(filled.len()))
    }
}

fn limit(what: &'static str, field: &'static str, limit: usize, actual: usize) -> ImapError {
    ImapError::LimitExceeded {
        what,
        field,
        limit,
        actual: actual as u64,
    }
}

/// The literal announced at the end of `line` (CRLF removed): `{N}`, `{N+}` (non-synchronizing,
/// the `bool`), or `~{N}` for literal8. Lengths past `u32` are returned as is for the limit
/// check to reject.
pub(crate) fn literal_announcement(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let (digits, non_sync) = match digits.strip_suffix(b"+") {
        Some(digits) => (digits, true),
        None => (digits, false),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturating: an absurd length must still hit the literal limit, not slip through.
    let length = digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some((length, non_sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one after another and collects every complete message.
    fn frame_all(chunks: &[&[u8]], limits: ImapLimits) -> Result<Vec<Vec<u8>>, ImapError> {
        let mut framer = Framer::new(limits);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(len) = framer.scan(MessageKind::Response)? {
                out.push(framer.take(len).to_vec());
            }
        }
        Ok(out)
    }

    const STREAM: &[u8] = b"* 1 FETCH (UID 7 BODY[] {11}\r\nhello\r\nworld FLAGS (\\Seen))\r\n\
* 2 FETCH (BODY[HEADER] {0}\r\n BODY[TEXT] {3+}\r\nabc)\r\n\
* OK see {5}\r\n\
a1 OK done\r\n";

    fn expected() -> Vec<Vec<u8>> {
        vec![
            b"* 1 FETCH (UID 7 BODY[] {11}\r\nhello\r\nworld FLAGS (\\Seen))\r\n".to_vec(),
            b"* 2 FETCH (BODY[HEADER] {0}\r\n BODY[TEXT] {3+}\r\nabc)\r\n".to_vec(),
            b"* OK see {5}\r\n".to_vec(),
            b"a1 OK done\r\n".to_vec(),
        ]
    }

    #[test]
    fn frames_literals_and_text_that_looks_like_one() {
        let got = frame_all(&[STREAM], ImapLimits::default()).unwrap();
        assert_eq!(got, expected());
    }

    #[test]
    fn split_at_every_byte_gives_same_messages() {
        for split in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(split);
            let got = frame_all(&[a, b], ImapLimits::default()).unwrap();
            assert_eq!(got, expected(), "split at {split}");
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(
            frame_all(&bytes, ImapLimits::default()).unwrap(),
            expected()
        );
    }

    #[test]
    fn trailing_junk_stays_buffered() {
        let mut framer = Framer::new(ImapLimits::default());
        framer.push(b"* 3 EXISTS\r\n* 4 EXI");
        let len = framer.scan(MessageKind::Response).unwrap().unwrap();
        assert_eq!(&framer.take(len)[..], b"* 3 EXISTS\r\n");
        assert_eq!(framer.scan(MessageKind::Response).unwrap(), None);
        assert_eq!(framer.pending(), b"* 4 EXI");
        framer.push(b"STS\r\n???");
        let len = framer.scan(MessageKind::Response).unwrap().unwrap();
        assert_eq!(&framer.take(len)[..], b"* 4 EXISTS\r\n");
        assert_eq!(framer.pending(), b"???");
    }

    #[test]
    fn bare_lf_is_a_protocol_error_with_the_line() {
        let err = frame_all(&[b"* 1 EXISTS\n"], ImapLimits::default()).unwrap_err();
        match err {
            ImapError::Protocol { raw, reason } => {
                assert_eq!(raw, "* 1 EXISTS\\n");
                assert!(reason.contains("bare LF"), "{reason}");
            }
            other => panic!("expected Protocol, got {other:?}"),
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = ImapLimits {
            max_line: 32,
            max_literal: 100,
            max_message: 200,
            ..ImapLimits::default()
        };
        // A line that never ends is cut off as soon as it passes the limit.
        let err = frame_all(&[&[b'x'; 40]], limits).unwrap_err();
        assert!(
            matches!(err, ImapError::LimitExceeded { what: "line", .. }),
            "{err:?}"
        );
        let err = frame_all(&[b"* 1 FETCH (BODY[] {101}\r\n"], limits).unwrap_err();
        assert!(
            matches!(
                err,
                ImapError::LimitExceeded {
                    what: "literal",
                    actual: 101,
                    ..
                }
            ),
            "{err:?}"
        );
        let huge = ImapLimits {
            max_line: 100,
            ..limits
        };
        let err = frame_all(&[b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n"], huge);
        assert!(
            matches!(
                err,
                Err(ImapError::LimitExceeded {
                    what: "literal",
                    actual: u64::MAX,
                    ..
                })
            ),
            "{err:?}"
        );
        let mut many = b"* 1 FETCH (BODY[] {90}\r\n".to_vec();
        many.extend_from_slice(&[b'a'; 90]);
        many.extend_from_slice(b" BODY[TEXT] {90}\r\n");
        let err = frame_all(&[&many], limits).unwrap_err();
        assert!(
            matches!(
                err,
                ImapError::LimitExceeded {
                    what: "message",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn announcement_parsing() {
        assert_eq!(
            literal_announcement(b"* 1 FETCH (BODY[] {42}"),
            Some((42, false))
        );
        assert_eq!(literal_announcement(b"x {42+}"), Some((42, true)));
        assert_eq!(literal_announcement(b"x ~{7}"), Some((7, false)));
        assert_eq!(literal_announcement(b"x {}"), None);
        assert_eq!(literal_announcement(b"x {4a}"), None);
        assert_eq!(literal_announcement(b"x {42} "), None);
        assert_eq!(literal_announcement(b"x {+}"), None);
    }

    #[test]
    fn buffer_is_dropped_when_empty() {
        let mut framer = Framer::new(ImapLimits {
            max_line: 200_000,
            ..ImapLimits::default()
        });
        framer.push(&vec![b'a'; 100_000]);
        framer.push(b"\r\n");
        let len = framer.scan(MessageKind::Response).unwrap().unwrap();
        let message = framer.take(len);
        assert_eq!(message.len(), 100_002);
        assert_eq!(framer.capacity(), 0);
    }
}
