//! DATA body encoding: CRLF normalisation and dot-stuffing (RFC 5321 §4.5.2), done in a
//! streaming pass so a large message is sent in bounded pieces instead of being copied whole.

/// Bytes of the message encoded per write; the output of one piece is at most twice this.
pub const PIECE: usize = 16 * 1024;

/// Streaming encoder state, carried across pieces so a CRLF or a leading dot split between two
/// pieces is handled exactly as if the body came in one slice.
///
/// Rules: CRLF, bare LF and bare CR each become one CRLF; a `.` at the start of a line is
/// doubled; [`DotStuffer::finish`] ends an unterminated last line and adds `.` CRLF.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
    /// The previous byte was CR (already written as CRLF): an LF right after it is swallowed.
    after_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
            after_cr: false,
        }
    }
}

impl DotStuffer {
    /// Appends the encoding of `input` to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                i += 1;
                continue;
            }
            match byte {
                b'\r' | b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.after_cr = byte == b'\r';
                    self.at_line_start = true;
                    i += 1;
                }
                _ => {
                    if self.at_line_start && byte == b'.' {
                        out.push(b'.');
                    }
                    self.at_line_start = false;
                    let run_end = input[i..]
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n')
                        .map_or(input.len(), |p| i + p);
                    out.extend_from_slice(&input[i..run_end]);
                    i = run_end;
                }
            }
        }
    }

    /// Ends the body: CRLF if the last line had none, then the terminating `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Encodes a whole body at once (tests and small messages).
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 5);
    let mut stuffer = DotStuffer::default();
    stuffer.encode(body, &mut out);
    stuffer.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(body: &[u8]) -> String {
        String::from_utf8(dot_stuff(body)).unwrap()
    }

    #[test]
    fn leading_dots_are_doubled() {
        assert_eq!(
            stuffed(b".a\r\nb.\r\n..c\r\n"),
            "..a\r\nb.\r\n...c\r\n.\r\n"
        );
    }

    #[test]
    fn a_body_that_is_just_a_dot() {
        assert_eq!(stuffed(b"."), "..\r\n.\r\n");
        assert_eq!(stuffed(b".\r\n"), "..\r\n.\r\n");
    }

    #[test]
    fn empty_body_is_only_the_terminator() {
        assert_eq!(stuffed(b""), ".\r\n");
    }

    #[test]
    fn bare_lf_and_cr_become_crlf() {
        assert_eq!(stuffed(b"a\nb\rc\r\nd"), "a\r\nb\r\nc\r\nd\r\n.\r\n");
        assert_eq!(stuffed(b"a\r\r\nb"), "a\r\n\r\nb\r\n.\r\n");
        assert_eq!(stuffed(b"\n.x"), "\r\n..x\r\n.\r\n");
        assert_eq!(stuffed(b"\r.x\r"), "\r\n..x\r\n.\r\n");
    }

    #[test]
    fn body_without_final_crlf_is_terminated() {
        assert_eq!(
            stuffed(b"Subject: x\r\n\r\nbody"),
            "Subject: x\r\n\r\nbody\r\n.\r\n"
        );
    }

    #[test]
    fn the_terminator_sequence_inside_a_body_is_escaped() {
        assert_eq!(stuffed(b"a\r\n.\r\nb\r\n"), "a\r\n..\r\nb\r\n.\r\n");
    }

    #[test]
    fn split_anywhere_gives_the_same_bytes() {
        let body: &[u8] = b".x\r\n.\r\n\r\n..y\nz\r.\r\rq\r\n.";
        let whole = dot_stuff(body);
        for cut in 0..=body.len() {
            let mut out = Vec::new();
            let mut stuffer = DotStuffer::default();
            stuffer.encode(&body[..cut], &mut out);
            stuffer.encode(&body[cut..], &mut out);
            stuffer.finish(&mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
        // One byte at a time.
        let mut out = Vec::new();
        let mut stuffer = DotStuffer::default();
        for byte in body.chunks(1) {
            stuffer.encode(byte, &mut out);
        }
        stuffer.finish(&mut out);
        assert_eq!(out, whole);
    }

    #[test]
    fn unstuffing_gives_back_the_normalised_body() {
        let body = b"From: a\r\n\r\n.hidden\r\nplain\r\n..two\r\n";
        let wire = dot_stuff(body);
        // What a server does: drop the terminator, strip one leading dot per line.
        let text = std::str::from_utf8(&wire).unwrap();
        let text = text.strip_suffix(".\r\n").unwrap();
        let restored: String = text
            .split_inclusive("\r\n")
            .map(|line| line.strip_prefix('.').unwrap_or(line))
            .collect();
        assert_eq!(restored.as_bytes(), body);
    }
}
