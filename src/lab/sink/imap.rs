//! The sink's IMAP side: just enough IMAP4rev1 for a client to log in, select, fetch, store,
//! search and IDLE, answered from a fixed mailbox without keeping any state between commands
//! (STORE answers with the flags it was asked to set, and forgets them).
//!
//! Every response is meant to pass imap-codec's strict decoder; the tests check that.

use std::fmt::Write as _;
use std::sync::Arc;

use super::conn::{Flow, Protocol};
use super::fetch::{is_storable_flag, parse_items, split_top_level, Buf, Fixture, Members};

/// What the greeting and CAPABILITY announce; each of them is implemented below.
pub const CAPABILITIES: &str = "IMAP4rev1 LITERAL+ SASL-IR IDLE AUTH=PLAIN";

/// Largest literal a client may send (APPEND data, LOGIN arguments); it is skipped, not kept.
const MAX_LITERAL: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    NotAuthenticated,
    Authenticated,
    Selected { read_only: bool },
}

/// A line that is not a command, expected after a continuation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Command,
    /// `DONE` ends IDLE.
    Done,
    /// The client's SASL PLAIN response (or `*` to cancel).
    SaslResponse,
}

pub(super) struct ImapSession {
    fixture: Arc<Fixture>,
    mode: Mode,
    awaiting: Awaiting,
    /// Tag of the command an `Awaiting` line completes.
    tag: Vec<u8>,
    /// Text of a command interrupted by a literal (without the literal data).
    partial: Vec<u8>,
    /// Literal bytes still to skip before the command goes on.
    literal_left: u64,
}

impl ImapSession {
    pub(super) fn new(fixture: Arc<Fixture>) -> ImapSession {
        ImapSession {
            fixture,
            mode: Mode::NotAuthenticated,
            awaiting: Awaiting::Command,
            tag: Vec::new(),
            partial: Vec::new(),
            literal_left: 0,
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        match self.awaiting {
            Awaiting::Command => {}
            Awaiting::Done => {
                self.awaiting = Awaiting::Command;
                let tag = std::mem::take(&mut self.tag);
                if line.eq_ignore_ascii_case(b"DONE") {
                    tagged(out, &tag, "OK IDLE terminated");
                } else {
                    tagged(out, &tag, "BAD expected DONE");
                }
                return Flow::Continue;
            }
            Awaiting::SaslResponse => {
                self.awaiting = Awaiting::Command;
                let tag = std::mem::take(&mut self.tag);
                if line == b"*" {
                    tagged(out, &tag, "BAD AUTHENTICATE cancelled");
                } else {
                    self.mode = Mode::Authenticated;
                    tagged(out, &tag, "OK AUTHENTICATE completed");
                }
                return Flow::Continue;
            }
        }
        if let Some((head, len, sync)) = literal_suffix(line) {
            if len > MAX_LITERAL {
                out.extend_from_slice(b"* BYE literal too large\r\n");
                return Flow::Close;
            }
            self.partial.extend_from_slice(head);
            self.literal_left = len;
            if sync {
                out.extend_from_slice(b"+ Ready for literal data\r\n");
            }
            return Flow::Continue;
        }
        if self.partial.is_empty() {
            self.command(line, out)
        } else {
            let mut whole = std::mem::take(&mut self.partial);
            whole.extend_from_slice(line);
            self.command(&whole, out)
        }
    }

    fn command(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        let Ok(line) = std::str::from_utf8(line) else {
            out.extend_from_slice(b"* BAD command is not UTF-8\r\n");
            return Flow::Continue;
        };
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        if !is_valid_tag(tag) {
            out.extend_from_slice(b"* BAD invalid tag\r\n");
            return Flow::Continue;
        }
        let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut verb_buf = [0u8; 16];
        let verb = upper(verb, &mut verb_buf);
        let tag = tag.as_bytes();
        let selected = matches!(self.mode, Mode::Selected { .. });
        let authenticated = self.mode != Mode::NotAuthenticated;
        match verb {
            "CAPABILITY" => {
                out.extend_from_slice(b"* CAPABILITY ");
                out.extend_from_slice(CAPABILITIES.as_bytes());
                out.extend_from_slice(b"\r\n");
                tagged(out, tag, "OK CAPABILITY completed");
            }
            "NOOP" => tagged(out, tag, "OK NOOP completed"),
            "LOGOUT" => {
                out.extend_from_slice(b"* BYE logging out\r\n");
                tagged(out, tag, "OK LOGOUT completed");
                return Flow::Close;
            }
            "LOGIN" | "AUTHENTICATE" if authenticated => tagged(out, tag, "BAD already logged in"),
            "LOGIN" if args.is_empty() => tagged(out, tag, "BAD LOGIN needs arguments"),
            "LOGIN" => {
                self.mode = Mode::Authenticated;
                tagged(out, tag, "OK LOGIN completed");
            }
            "AUTHENTICATE" => self.authenticate(tag, args, out),
            _ if !authenticated => tagged(out, tag, "BAD log in first"),
            "SELECT" | "EXAMINE" if args.is_empty() => tagged(out, tag, "BAD mailbox name missing"),
            "SELECT" | "EXAMINE" => self.select(tag, verb == "EXAMINE", out),
            "LIST" | "LSUB" => {
                if args.ends_with("\"\"") {
                    // `LIST "" ""` asks for the hierarchy delimiter only.
                    let _ = write!(Buf(out), "* {verb} (\\Noselect) \"/\" \"\"\r\n");
                } else {
                    let _ = write!(Buf(out), "* {verb} (\\HasNoChildren) \"/\" INBOX\r\n");
                }
                tagged(out, tag, "OK LIST completed");
            }
            "APPEND" => tagged(out, tag, "OK APPEND completed (message discarded)"),
            "IDLE" => {
                self.tag = tag.to_vec();
                self.awaiting = Awaiting::Done;
                out.extend_from_slice(b"+ idling\r\n");
            }
            _ if !selected => tagged(out, tag, "BAD select a mailbox first"),
            "CHECK" | "EXPUNGE" => tagged(out, tag, "OK completed"),
            "CLOSE" => {
                self.mode = Mode::Authenticated;
                tagged(out, tag, "OK CLOSE completed");
            }
            "FETCH" => self.fetch(tag, args, false, out),
            "STORE" => self.store(tag, args, false, out),
            "SEARCH" => self.search(tag, args, false, out),
            "UID" => {
                let (sub, args) = args.split_once(' ').unwrap_or((args, ""));
                let mut sub_buf = [0u8; 16];
                match upper(sub, &mut sub_buf) {
                    "FETCH" => self.fetch(tag, args, true, out),
                    "STORE" => self.store(tag, args, true, out),
                    "SEARCH" => self.search(tag, args, true, out),
                    _ => tagged(out, tag, "BAD unknown UID command"),
                }
            }
            _ => tagged(out, tag, "BAD unknown command"),
        }
        Flow::Continue
    }

    fn authenticate(&mut self, tag: &[u8], args: &str, out: &mut Vec<u8>) {
        let (mechanism, initial) = match args.split_once(' ') {
            Some((m, ir)) => (m, Some(ir)),
            None => (args, None),
        };
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            tagged(out, tag, "NO unsupported mechanism");
        } else if initial.is_some() {
            // SASL-IR: the credentials came with the command; any are accepted.
            self.mode = Mode::Authenticated;
            tagged(out, tag, "OK AUTHENTICATE completed");
        } else {
            self.tag = tag.to_vec();
            self.awaiting = Awaiting::SaslResponse;
            out.extend_from_slice(b"+ \r\n");
        }
    }

    fn select(&mut self, tag: &[u8], read_only: bool, out: &mut Vec<u8>) {
        let n = self.fixture.messages;
        let _ = write!(
            Buf(out),
            "* {n} EXISTS\r\n* 0 RECENT\r\n\
             * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
             * OK [UIDVALIDITY 1] UIDs valid\r\n\
             * OK [UIDNEXT {}] Predicted next UID\r\n",
            u64::from(n) + 1
        );
        self.mode = Mode::Selected { read_only };
        if read_only {
            tagged(out, tag, "OK [READ-ONLY] EXAMINE completed");
        } else {
            tagged(out, tag, "OK [READ-WRITE] SELECT completed");
        }
    }

    fn fetch(&self, tag: &[u8], args: &str, uid: bool, out: &mut Vec<u8>) {
        let result = args
            .split_once(' ')
            .ok_or("FETCH needs a sequence set and attributes")
            .and_then(|(set, items)| {
                Ok((
                    Members::parse(set, self.fixture.messages, uid)?,
                    parse_items(items)?,
                ))
            });
        match result {
            Ok((members, items)) => {
                for seq in members.iter() {
                    self.fixture.render(seq, &items, uid, out);
                }
                tagged(out, tag, "OK FETCH completed");
            }
            Err(reason) => tagged_bad(out, tag, reason),
        }
    }

    fn store(&self, tag: &[u8], args: &str, uid: bool, out: &mut Vec<u8>) {
        if self.mode == (Mode::Selected { read_only: true }) {
            return tagged(out, tag, "NO mailbox is read-only");
        }
        let mut parts = args.splitn(3, ' ');
        let (Some(set), Some(item), Some(flags)) = (parts.next(), parts.next(), parts.next())
        else {
            return tagged(out, tag, "BAD STORE needs a set, an item and flags");
        };
        let members = match Members::parse(set, self.fixture.messages, uid) {
            Ok(m) => m,
            Err(reason) => return tagged_bad(out, tag, reason),
        };
        let item = item.to_ascii_uppercase();
        let (kind, silent) = match item.strip_suffix(".SILENT") {
            Some(kind) => (kind, true),
            None => (item.as_str(), false),
        };
        if !matches!(kind, "FLAGS" | "+FLAGS" | "-FLAGS") {
            return tagged(out, tag, "BAD unknown STORE item");
        }
        let list = flags.strip_prefix('(').and_then(|f| f.strip_suffix(')'));
        let list = list.unwrap_or(flags);
        let flags: Vec<&str> = list.split(' ').filter(|f| !f.is_empty()).collect();
        if !flags.iter().all(|f| is_storable_flag(f)) {
            return tagged(out, tag, "BAD invalid flag");
        }
        if !silent {
            // Nothing is kept: the message has no flags, so FLAGS and +FLAGS leave exactly
            // the given ones and -FLAGS leaves none.
            let now = if kind == "-FLAGS" {
                String::new()
            } else {
                flags.join(" ")
            };
            for seq in members.iter() {
                let _ = if uid {
                    write!(Buf(out), "* {seq} FETCH (UID {seq} FLAGS ({now}))\r\n")
                } else {
                    write!(Buf(out), "* {seq} FETCH (FLAGS ({now}))\r\n")
                };
            }
        }
        tagged(out, tag, "OK STORE completed");
    }

    /// Every message matches, except that a criterion that is only a sequence set (or
    /// `UID set`) narrows the result to it.
    fn search(&self, tag: &[u8], args: &str, uid: bool, out: &mut Vec<u8>) {
        let n = self.fixture.messages;
        let keys = split_top_level(args);
        let narrowed = match keys.as_slice() {
            [set] => Members::parse(set, n, true).ok(),
            [key, set] if key.eq_ignore_ascii_case("UID") => Members::parse(set, n, true).ok(),
            _ => None,
        };
        let all = Members::parse("1:*", n, true).expect("1:* is a valid set");
        out.extend_from_slice(b"* SEARCH");
        for number in narrowed.as_ref().unwrap_or(&all).iter() {
            let _ = write!(Buf(out), " {number}");
        }
        out.extend_from_slice(b"\r\n");
        tagged(
            out,
            tag,
            if uid {
                "OK UID SEARCH completed"
            } else {
                "OK SEARCH completed"
            },
        );
    }
}

impl Protocol for ImapSession {
    fn greeting(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"* OK [CAPABILITY ");
        out.extend_from_slice(CAPABILITIES.as_bytes());
        out.extend_from_slice(b"] mailswarm sink ready (benchmark fixture)\r\n");
    }

    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Flow) {
        let mut pos = 0;
        loop {
            if self.literal_left > 0 {
                let take = self.literal_left.min((input.len() - pos) as u64);
                pos += take as usize;
                self.literal_left -= take;
                if self.literal_left > 0 {
                    return (pos, Flow::Continue);
                }
            }
            let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
                return (pos, Flow::Continue);
            };
            let line = &input[pos..pos + nl];
            pos += nl + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if self.line(line, out) == Flow::Close {
                return (pos, Flow::Close);
            }
        }
    }

    fn overflow_reply(&self) -> &'static [u8] {
        b"* BYE command line too long\r\n"
    }
}

/// `… {12}` or `… {12+}` at the end of a line: the text before it, the length, and whether the
/// literal is synchronizing.
fn literal_suffix(line: &[u8]) -> Option<(&[u8], u64, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let spec = &body[open + 1..];
    let (digits, sync) = match spec.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (spec, true),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((&line[..open], len, sync))
}

/// RFC 3501 `tag`: ASTRING-CHARs except `+`.
fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        })
}

/// `word` upper-cased into `buf`; words longer than the buffer (no command is) become "".
fn upper<'b>(word: &str, buf: &'b mut [u8; 16]) -> &'b str {
    if word.len() > buf.len() {
        return "";
    }
    let buf = &mut buf[..word.len()];
    buf.copy_from_slice(word.as_bytes());
    buf.make_ascii_uppercase();
    std::str::from_utf8(buf).unwrap_or("")
}

fn tagged(out: &mut Vec<u8>, tag: &[u8], text: &str) {
    out.extend_from_slice(tag);
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn tagged_bad(out: &mut Vec<u8>, tag: &[u8], reason: &str) {
    out.extend_from_slice(tag);
    out.extend_from_slice(b" BAD ");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_suffixes_are_recognized() {
        assert_eq!(
            literal_suffix(b"A1 LOGIN {5}"),
            Some((&b"A1 LOGIN "[..], 5, true))
        );
        assert_eq!(
            literal_suffix(b"A1 LOGIN {5+}"),
            Some((&b"A1 LOGIN "[..], 5, false))
        );
        assert_eq!(literal_suffix(b"A1 LOGIN {}"), None);
        assert_eq!(literal_suffix(b"A1 LOGIN {x}"), None);
        assert_eq!(literal_suffix(b"A1 NOOP"), None);
    }

    #[test]
    fn tags_follow_the_grammar() {
        assert!(is_valid_tag("A17"));
        assert!(is_valid_tag("x.1]"));
        assert!(!is_valid_tag("A+1"));
        assert!(!is_valid_tag("*"));
        assert!(!is_valid_tag(""));
    }
}
