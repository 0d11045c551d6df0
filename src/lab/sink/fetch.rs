//! The one message every mailbox of the sink holds, and the FETCH/STORE/SEARCH arguments the
//! sink understands: sequence sets, fetch items, flag lists.
//!
//! Everything that does not depend on the request (the message bytes, its ENVELOPE and
//! BODYSTRUCTURE) is rendered once at start-up, so a FETCH costs little more than a copy.

use std::fmt::Write as _;

/// Date of the fixed message, as the `Date:` header and as ENVELOPE's date.
const DATE: &str = "Thu, 01 Jan 2026 00:00:00 +0000";
/// The same instant as an IMAP `date-time`.
const INTERNALDATE: &str = "\"01-Jan-2026 00:00:00 +0000\"";
const SUBJECT: &str = "mailswarm sink fixture message";
const MESSAGE_ID: &str = "<fixture@sink.mailswarm.test>";
/// Body filler, one line of it repeated; 7-bit ASCII so the body is valid `7BIT`.
const BODY_LINE: &str = "The quick brown fox jumps over the lazy dog; mailswarm measures itself.";

/// The mailbox contents: `messages` copies of one message whose UID equals its sequence
/// number.
#[derive(Debug)]
pub(super) struct Fixture {
    pub(super) messages: u32,
    message: Vec<u8>,
    /// Length of the header block including the empty line that ends it.
    header_len: usize,
    /// `(name, whole line with CRLF)` of every header field, in order.
    fields: Vec<(String, String)>,
    envelope: String,
    bodystructure: String,
}

impl Fixture {
    /// A fixture of `messages` messages whose body is about `body_bytes` long (whole lines).
    pub(super) fn new(messages: u32, body_bytes: usize) -> Fixture {
        let fields: Vec<(String, String)> = [
            ("Return-Path", "<sender@sink.mailswarm.test>"),
            ("Date", DATE),
            ("From", "Sink Sender <sender@sink.mailswarm.test>"),
            ("To", "Sink User <user@sink.mailswarm.test>"),
            ("Subject", SUBJECT),
            ("Message-ID", MESSAGE_ID),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=us-ascii"),
            ("Content-Transfer-Encoding", "7bit"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), format!("{name}: {value}\r\n")))
        .collect();
        let mut message: Vec<u8> = fields.iter().flat_map(|(_, l)| l.bytes()).collect();
        message.extend_from_slice(b"\r\n");
        let header_len = message.len();
        let mut lines = 0u32;
        while message.len() - header_len < body_bytes {
            message.extend_from_slice(BODY_LINE.as_bytes());
            message.extend_from_slice(b"\r\n");
            lines += 1;
        }
        let body_len = message.len() - header_len;
        let sender = "((\"Sink Sender\" NIL \"sender\" \"sink.mailswarm.test\"))";
        let envelope = format!(
            "(\"{DATE}\" \"{SUBJECT}\" {sender} {sender} {sender} \
             ((\"Sink User\" NIL \"user\" \"sink.mailswarm.test\")) NIL NIL NIL \"{MESSAGE_ID}\")"
        );
        let bodystructure = format!(
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" {body_len} {lines})"
        );
        Fixture {
            messages,
            message,
            header_len,
            fields,
            envelope,
            bodystructure,
        }
    }

    pub(super) fn size(&self) -> usize {
        self.message.len()
    }

    fn header(&self) -> &[u8] {
        &self.message[..self.header_len]
    }

    fn text(&self) -> &[u8] {
        &self.message[self.header_len..]
    }

    /// The header fields named (or, with `not`, not named) in `names`, then the empty line.
    fn header_fields(&self, names: &[String], not: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, line) in &self.fields {
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
            if listed != not {
                out.extend_from_slice(line.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Appends `* seq FETCH (...)` for one message.
    pub(super) fn render(&self, seq: u32, items: &[Item], with_uid: bool, out: &mut Vec<u8>) {
        let _ = write!(Buf(out), "* {seq} FETCH (");
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b' ');
            }
        };
        if with_uid && !items.contains(&Item::Uid) {
            sep(out);
            let _ = write!(Buf(out), "UID {seq}");
        }
        for item in items {
            sep(out);
            match item {
                Item::Flags => out.extend_from_slice(b"FLAGS ()"),
                Item::Uid => {
                    let _ = write!(Buf(out), "UID {seq}");
                }
                Item::Size => {
                    let _ = write!(Buf(out), "RFC822.SIZE {}", self.size());
                }
                Item::Envelope => {
                    out.extend_from_slice(b"ENVELOPE ");
                    out.extend_from_slice(self.envelope.as_bytes());
                }
                Item::InternalDate => {
                    out.extend_from_slice(b"INTERNALDATE ");
                    out.extend_from_slice(INTERNALDATE.as_bytes());
                }
                Item::BodyStructure(name) => {
                    out.extend_from_slice(name.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(self.bodystructure.as_bytes());
                }
                Item::Section(section) => self.render_section(section, out),
            }
        }
        out.extend_from_slice(b")\r\n");
    }

    fn render_section(&self, s: &SectionItem, out: &mut Vec<u8>) {
        let fields;
        let data: &[u8] = match &s.part {
            Part::Full => &self.message,
            Part::Header => self.header(),
            Part::Text => self.text(),
            Part::Fields { names, not } => {
                fields = self.header_fields(names, *not);
                &fields
            }
        };
        out.extend_from_slice(s.echo.as_bytes());
        let data = match s.partial {
            Some((offset, len)) => {
                let _ = write!(Buf(out), "<{offset}>");
                let start = (offset as usize).min(data.len());
                let end = start.saturating_add(len as usize).min(data.len());
                &data[start..end]
            }
            None => data,
        };
        let _ = write!(Buf(out), " {{{}}}\r\n", data.len());
        out.extend_from_slice(data);
    }
}

/// `fmt::Write` over a byte vector, so numbers are formatted without a temporary `String`.
pub(super) struct Buf<'a>(pub(super) &'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// One requested FETCH data item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    Flags,
    Uid,
    Size,
    Envelope,
    InternalDate,
    /// `BODY` or `BODYSTRUCTURE` (the same non-extensible structure answers both).
    BodyStructure(&'static str),
    Section(SectionItem),
}

/// A `BODY[...]`, `BODY.PEEK[...]` or `RFC822*` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SectionItem {
    part: Part,
    /// What the response calls the item, e.g. `BODY[HEADER.FIELDS (FROM)]` or `RFC822`.
    echo: String,
    /// `<offset.length>`.
    partial: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Full,
    Header,
    Text,
    Fields { names: Vec<String>, not: bool },
}

/// Parses the fetch attributes of a FETCH command: a macro, one item or a parenthesized list.
pub(super) fn parse_items(text: &str) -> Result<Vec<Item>, &'static str> {
    let text = text.trim_end();
    let inner = match text.strip_prefix('(') {
        Some(rest) => rest.strip_suffix(')').ok_or("unbalanced parentheses")?,
        None => text,
    };
    let mut items = Vec::new();
    for token in split_top_level(inner) {
        match token.to_ascii_uppercase().as_str() {
            "ALL" => items.extend([Item::Flags, Item::InternalDate, Item::Size, Item::Envelope]),
            "FAST" => items.extend([Item::Flags, Item::InternalDate, Item::Size]),
            "FULL" => items.extend([
                Item::Flags,
                Item::InternalDate,
                Item::Size,
                Item::Envelope,
                Item::BodyStructure("BODY"),
            ]),
            "FLAGS" => items.push(Item::Flags),
            "UID" => items.push(Item::Uid),
            "RFC822.SIZE" => items.push(Item::Size),
            "ENVELOPE" => items.push(Item::Envelope),
            "INTERNALDATE" => items.push(Item::InternalDate),
            "BODYSTRUCTURE" => items.push(Item::BodyStructure("BODYSTRUCTURE")),
            "BODY" => items.push(Item::BodyStructure("BODY")),
            "RFC822" => items.push(rfc822(Part::Full, "RFC822")),
            "RFC822.HEADER" => items.push(rfc822(Part::Header, "RFC822.HEADER")),
            "RFC822.TEXT" => items.push(rfc822(Part::Text, "RFC822.TEXT")),
            _ => items.push(Item::Section(parse_section(token)?)),
        }
    }
    if items.is_empty() {
        return Err("no fetch attributes");
    }
    Ok(items)
}

fn rfc822(part: Part, name: &str) -> Item {
    Item::Section(SectionItem {
        part,
        echo: name.to_string(),
        partial: None,
    })
}

/// `BODY[section]<partial>` or `BODY.PEEK[section]<partial>`.
fn parse_section(token: &str) -> Result<SectionItem, &'static str> {
    let upper = token.to_ascii_uppercase();
    let open = if upper.starts_with("BODY[") {
        5
    } else if upper.starts_with("BODY.PEEK[") {
        10
    } else {
        return Err("unknown fetch attribute");
    };
    let close = open + token[open..].find(']').ok_or("missing ] in section")?;
    let spec = &token[open..close];
    let spec_upper = &upper[open..close];
    let part = if spec.is_empty() {
        Part::Full
    } else if spec_upper == "HEADER" {
        Part::Header
    } else if spec_upper == "TEXT" || spec_upper == "1" {
        // A single-part message: part 1 is its text.
        Part::Text
    } else if let Some(list) = spec_upper.strip_prefix("HEADER.FIELDS.NOT ") {
        Part::Fields {
            names: header_names(&spec[spec.len() - list.len()..])?,
            not: true,
        }
    } else if let Some(list) = spec_upper.strip_prefix("HEADER.FIELDS ") {
        Part::Fields {
            names: header_names(&spec[spec.len() - list.len()..])?,
            not: false,
        }
    } else {
        return Err("unsupported section");
    };
    let partial = match &token[close + 1..] {
        "" => None,
        rest => Some(parse_partial(rest)?),
    };
    Ok(SectionItem {
        part,
        echo: format!("BODY[{spec}]"),
        partial,
    })
}

/// `(FROM "SUBJECT" ...)`: atoms or quoted strings.
fn header_names(list: &str) -> Result<Vec<String>, &'static str> {
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or("header list needs parentheses")?;
    let names: Vec<String> = inner
        .split(' ')
        .map(|n| n.trim_matches('"').to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err("empty header list");
    }
    Ok(names)
}

/// `<offset.length>`.
fn parse_partial(text: &str) -> Result<(u32, u32), &'static str> {
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .ok_or("bad partial")?;
    let (offset, len) = inner.split_once('.').ok_or("bad partial")?;
    let offset = offset.parse().map_err(|_| "bad partial offset")?;
    let len: u32 = len.parse().map_err(|_| "bad partial length")?;
    if len == 0 {
        return Err("partial length must be positive");
    }
    Ok((offset, len))
}

/// Splits at spaces that are not inside `[...]` or `(...)`.
pub(super) fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ' ' if depth == 0 => {
                if i > start {
                    out.push(&text[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A sequence set resolved against a mailbox of `messages` messages: sorted, merged ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Members(Vec<(u32, u32)>);

impl Members {
    /// Parses `1,3:5,7:*`. `*` is the largest number in use. With `clip`, numbers past the
    /// end are dropped (UID sets); without it they are an error (message sequence numbers).
    pub(super) fn parse(text: &str, messages: u32, clip: bool) -> Result<Members, &'static str> {
        let number = |t: &str| -> Result<u32, &'static str> {
            if t == "*" {
                return if messages == 0 && !clip {
                    Err("* in an empty mailbox")
                } else {
                    Ok(messages)
                };
            }
            match t.parse::<u32>() {
                Ok(0) | Err(_) => Err("invalid sequence set"),
                Ok(n) if n > messages && !clip => Err("no such message"),
                Ok(n) => Ok(n),
            }
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let (lo, hi) = match part.split_once(':') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(part)?, number(part)?),
            };
            let (lo, hi) = (lo.min(hi), lo.max(hi).min(messages));
            if lo <= hi {
                ranges.push((lo, hi));
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Ok(Members(merged))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }
}

/// Whether `token` is a flag a client may store: `\Seen`-style system flags or a keyword atom.
pub(super) fn is_storable_flag(token: &str) -> bool {
    let atom = token.strip_prefix('\\').unwrap_or(token);
    let system = token.starts_with('\\');
    !atom.is_empty()
        && atom.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
        && (!system
            || ["ANSWERED", "FLAGGED", "DELETED", "SEEN", "DRAFT"]
                .contains(&atom.to_ascii_uppercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets_merge_and_clip() {
        let m = Members::parse("5:3,1,2,*", 10, false).unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 10]);
        assert_eq!(Members::parse("11", 10, false), Err("no such message"));
        assert_eq!(Members::parse("0", 10, true), Err("invalid sequence set"));
        let uids = Members::parse("8:4294967295", 10, true).unwrap();
        assert_eq!(uids.iter().collect::<Vec<_>>(), vec![8, 9, 10]);
        assert_eq!(Members::parse("20:30", 10, true).unwrap().iter().count(), 0);
        assert_eq!(Members::parse("*", 0, false), Err("* in an empty mailbox"));
    }

    #[test]
    fn items_parse_macros_sections_and_partials() {
        let items = parse_items("(UID body.peek[HEADER.FIELDS (From \"Subject\")]<0.10>)").unwrap();
        assert_eq!(items[0], Item::Uid);
        let Item::Section(s) = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(s.echo, "BODY[HEADER.FIELDS (From \"Subject\")]");
        assert_eq!(s.partial, Some((0, 10)));
        assert_eq!(parse_items("FAST").unwrap().len(), 3);
        assert_eq!(parse_items("(FLAGS BOGUS)"), Err("unknown fetch attribute"));
        assert_eq!(parse_items("BODY[2.MIME]"), Err("unsupported section"));
        assert_eq!(parse_items("()"), Err("no fetch attributes"));
    }

    #[test]
    fn header_fields_pick_named_lines_in_message_order() {
        let f = Fixture::new(1, 100);
        let names = vec!["subject".to_string(), "FROM".to_string()];
        let got = String::from_utf8(f.header_fields(&names, false)).unwrap();
        assert_eq!(
            got,
            format!("From: Sink Sender <sender@sink.mailswarm.test>\r\nSubject: {SUBJECT}\r\n\r\n")
        );
        let rest = f.header_fields(&names, true);
        assert_eq!(rest.len() + got.len() - 2, f.header().len());
    }

    #[test]
    fn flags_are_checked() {
        assert!(is_storable_flag("\\Seen"));
        assert!(is_storable_flag("$Junk"));
        assert!(!is_storable_flag("\\Recent"));
        assert!(!is_storable_flag("a\"b"));
        assert!(!is_storable_flag("\\"));
    }
}
