//! Realistic, reproducible test messages, and the audit digest that proves a message arrived
//! unchanged.
//!
//! Servers behave differently with a 2 KB plain text note, a multipart/alternative newsletter
//! and a 5 MB mail with an attachment (parsing, indexing, quota, fetch cost), so the generator
//! mixes those shapes, with non-ASCII names and subjects (RFC 2047) and reply threads. The
//! same generator state and parameters always give the same bytes: Message-ID, Date and MIME
//! boundaries are derived from the inputs, never from the clock or the host name.
//!
//! # Audit headers
//!
//! Every message carries `X-Mailswarm-Id: <run>-<n>` and
//! `X-Mailswarm-Digest: sha256=<64 lowercase hex digits>`. The digest covers the *body in
//! canonical form*: every octet after the first empty line (the first CRLF CRLF) of the
//! message, with each bare LF counted as CRLF. Headers are excluded because servers prepend
//! Return-Path, Delivered-To and Received; the LF rule lets a message read from a maildir file
//! (stored with LF) verify like one fetched over IMAP (`BODY[]`, CRLF). Generated bodies
//! already use CRLF only and end with CRLF, so the canonical form is exactly the bytes sent.

use std::borrow::Cow;

use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;
use rand::{Rng, RngExt};
use rand_pcg::Pcg32;
use sha2::{Digest, Sha256};

use filler::{filler_text, person, words_line, ATTACHMENTS, NON_ASCII_SUBJECTS};

mod filler;

pub const ID_HEADER: &str = "X-Mailswarm-Id";
pub const DIGEST_HEADER: &str = "X-Mailswarm-Digest";

/// The mix of message shapes; sizes are drawn by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageSpec {
    /// Share of messages with non-ASCII display names, subject and some body words.
    pub non_ascii_ratio: f64,
    /// Share of messages below `attachment_threshold` sent as text + HTML alternative.
    pub alternative_ratio: f64,
    /// From this target size on, messages are multipart/mixed with a base64 attachment that
    /// carries most of the bytes (as large real mail does).
    pub attachment_threshold: usize,
    /// Share of messages that reply to an earlier message of the run (In-Reply-To/References).
    pub reply_ratio: f64,
}

impl Default for MessageSpec {
    fn default() -> Self {
        MessageSpec {
            non_ascii_ratio: 0.2,
            alternative_ratio: 0.3,
            attachment_threshold: 64 * 1024,
            reply_ratio: 0.3,
        }
    }
}

/// Inputs for one message.
#[derive(Debug, Clone)]
pub struct MessageParams<'a> {
    pub spec: &'a MessageSpec,
    /// Identifies the run in `X-Mailswarm-Id` and Message-ID; characters other than ASCII
    /// letters, digits, `.`, `_` and `-` are replaced by `_`.
    pub run_id: &'a str,
    /// Message number within the run (`n` in `<run>-<n>`).
    pub sequence: u64,
    /// Size of the whole message in bytes; met within about 5% from 2 KiB up. Below the
    /// header overhead (~0.7 KiB) the message is as small as it can be.
    pub target_size: usize,
    pub from: &'a str,
    pub to: &'a [String],
    /// Right-hand side of Message-IDs.
    pub domain: &'a str,
    /// Date header, Unix seconds.
    pub date: i64,
}

/// The structure chosen for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Plain,
    Alternative,
    Attachment { with_html: bool },
}

/// Everything drawn from the caller's generator; rendering is a pure function of this, so the
/// size can be adjusted by re-rendering without disturbing the caller's random stream.
struct Draft {
    shape: Shape,
    non_ascii: bool,
    from_name: String,
    to_names: Vec<String>,
    subject: String,
    thread: Vec<u64>,
    attachment: (&'static str, &'static str),
    filler_seed: u64,
}

/// Builds one message (CRLF line endings, audit headers included).
pub fn build_message(rng: &mut Pcg32, params: &MessageParams<'_>) -> Vec<u8> {
    let draft = draw(rng, params);
    // Fixed cost first (headers, MIME structure), then scale the content to the target using
    // the encoding expansion observed on the previous rendering.
    let overhead = render(&draft, params, 0).len();
    let want = params.target_size.saturating_sub(overhead);
    let mut content = want;
    let mut message = render(&draft, params, content);
    for _ in 0..3 {
        let got = message.len().saturating_sub(overhead);
        if want == 0 || got.abs_diff(want) * 100 <= params.target_size {
            break;
        }
        content = (content as f64 * want as f64 / got.max(1) as f64).round() as usize;
        message = render(&draft, params, content);
    }
    message
}

fn draw(rng: &mut Pcg32, params: &MessageParams<'_>) -> Draft {
    let spec = params.spec;
    let non_ascii = rng.random_bool(spec.non_ascii_ratio.clamp(0.0, 1.0));
    let shape = if params.target_size >= spec.attachment_threshold {
        Shape::Attachment {
            with_html: rng.random_bool(0.3),
        }
    } else if rng.random_bool(spec.alternative_ratio.clamp(0.0, 1.0)) {
        Shape::Alternative
    } else {
        Shape::Plain
    };
    let from_name = person(rng, non_ascii).to_owned();
    let to_names = params
        .to
        .iter()
        .map(|_| person(rng, non_ascii).to_owned())
        .collect();
    let mut thread = Vec::new();
    if params.sequence > 0 && rng.random_bool(spec.reply_ratio.clamp(0.0, 1.0)) {
        // Earlier messages of the run, oldest first, ending with the parent.
        let depth = rng.random_range(1..=3u64).min(params.sequence);
        let mut id = params.sequence;
        for _ in 0..depth {
            id = rng.random_range(id.saturating_sub(20)..id);
            thread.push(id);
            if id == 0 {
                break;
            }
        }
        thread.reverse();
    }
    let subject_words = rng.random_range(3..8);
    let mut subject = words_line(rng, subject_words, non_ascii);
    if non_ascii {
        subject = format!(
            "{} {subject}",
            NON_ASCII_SUBJECTS[rng.random_range(0..NON_ASCII_SUBJECTS.len())]
        );
    }
    if !thread.is_empty() {
        subject = format!("Re: {subject}");
    }
    Draft {
        shape,
        non_ascii,
        from_name,
        to_names,
        subject,
        thread,
        attachment: ATTACHMENTS[rng.random_range(0..ATTACHMENTS.len())],
        filler_seed: rng.next_u64(),
    }
}

fn sanitize(id: &str) -> Cow<'_, str> {
    if id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !id.is_empty()
    {
        return Cow::Borrowed(id);
    }
    let mut clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        clean.push('_');
    }
    Cow::Owned(clean)
}

fn message_id(run: &str, n: u64, domain: &str) -> String {
    format!("{run}.{n}@{domain}")
}

/// Renders the draft with `content` raw bytes of text/HTML/attachment in total.
fn render(draft: &Draft, params: &MessageParams<'_>, content: usize) -> Vec<u8> {
    let run = sanitize(params.run_id);
    let n = params.sequence;
    let mut filler = Pcg32::new(draft.filler_seed, 0xda7a);
    let boundary = |level: u32| format!("=_mailswarm_{run}_{n}_{level}");
    let body = match draft.shape {
        Shape::Plain => text_part(&filler_text(&mut filler, content, draft.non_ascii)),
        Shape::Alternative => {
            let text = filler_text(&mut filler, content * 4 / 10, draft.non_ascii);
            alternative(&text, boundary(1))
        }
        Shape::Attachment { with_html } => {
            let text_len = (content / 20).clamp(300, 4000).min(content);
            let text = filler_text(&mut filler, text_len, draft.non_ascii);
            let first = if with_html {
                alternative(&text, boundary(2))
            } else {
                text_part(&text)
            };
            let mut bytes = vec![0u8; (content - text_len) * 3 / 4];
            filler.fill_bytes(&mut bytes);
            let (mime, stem) = draft.attachment;
            let extension = mime.rsplit(['/', '.']).next().unwrap_or("bin");
            let attachment =
                MimePart::new(mime, bytes).attachment(format!("{stem}-{n}.{extension}"));
            MimePart::new(
                ContentType::new("multipart/mixed").attribute("boundary", boundary(1)),
                vec![first, attachment],
            )
        }
    };
    let to: Vec<Address<'_>> = params
        .to
        .iter()
        .zip(&draft.to_names)
        .map(|(addr, name)| Address::new_address(Some(name.as_str()), addr.as_str()))
        .collect();
    let mut builder = MessageBuilder::new()
        .from(Address::new_address(
            Some(draft.from_name.as_str()),
            params.from,
        ))
        .to(Address::new_list(to))
        .subject(draft.subject.as_str())
        .message_id(message_id(&run, n, params.domain))
        .date(params.date);
    if let Some(&parent) = draft.thread.last() {
        let ids: Vec<String> = draft
            .thread
            .iter()
            .map(|&k| message_id(&run, k, params.domain))
            .collect();
        builder = builder
            .in_reply_to(message_id(&run, parent, params.domain))
            .references(ids);
    }
    builder = builder
        .header(ID_HEADER, Raw::new(format!("{run}-{n}")))
        .body(body);
    let mut message = builder.write_to_vec().unwrap_or_default();
    if !message.ends_with(b"\r\n") {
        message.extend_from_slice(b"\r\n");
    }
    insert_digest(&mut message);
    message
}

fn text_part(text: &str) -> MimePart<'static> {
    MimePart::new("text/plain", text.to_owned())
}

fn alternative(text: &str, boundary: String) -> MimePart<'static> {
    let mut html = String::with_capacity(text.len() + text.len() / 4 + 64);
    html.push_str("<html><body>\r\n");
    for paragraph in text.split("\r\n\r\n").filter(|p| !p.is_empty()) {
        html.push_str("<p>");
        html.push_str(paragraph.trim_end());
        html.push_str("</p>\r\n");
    }
    html.push_str("</body></html>\r\n");
    MimePart::new(
        ContentType::new("multipart/alternative").attribute("boundary", boundary),
        vec![text_part(text), MimePart::new("text/html", html)],
    )
}

/// Puts the digest header at the end of the header block.
fn insert_digest(message: &mut Vec<u8>) {
    let Some(split) = find(message, b"\r\n\r\n") else {
        return;
    };
    let header = format!(
        "{DIGEST_HEADER}: sha256={}\r\n",
        body_digest(&message[split + 4..])
    );
    message.splice(split + 2..split + 2, header.into_bytes());
}

/// SHA-256 (hex) of a body in canonical form: bare LF counted as CRLF.
fn body_digest(body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' && (i == 0 || body[i - 1] != b'\r') {
            hasher.update(&body[start..i]);
            hasher.update(b"\r\n");
            start = i + 1;
        }
    }
    hasher.update(&body[start..]);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Result of checking a received message's audit digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestCheck {
    /// No `X-Mailswarm-Id` or `X-Mailswarm-Digest` header: not one of ours.
    Missing,
    Ok {
        id: String,
    },
    Mismatch {
        id: String,
    },
}

/// Checks a message as stored or fetched (`BODY[]`), server-added headers included.
pub fn verify_digest(raw: &[u8]) -> DigestCheck {
    let (header_end, body_start) = match (find(raw, b"\r\n\r\n"), find(raw, b"\n\n")) {
        (Some(crlf), Some(lf)) if lf + 1 < crlf => (lf, lf + 2),
        (Some(crlf), _) => (crlf, crlf + 4),
        (None, Some(lf)) => (lf, lf + 2),
        (None, None) => return DigestCheck::Missing,
    };
    let headers = String::from_utf8_lossy(&raw[..header_end]);
    let (Some(id), Some(digest)) = (
        header_value(&headers, ID_HEADER),
        header_value(&headers, DIGEST_HEADER),
    ) else {
        return DigestCheck::Missing;
    };
    let expected = digest
        .strip_prefix("sha256=")
        .unwrap_or("")
        .to_ascii_lowercase();
    if expected == body_digest(&raw[body_start..]) {
        DigestCheck::Ok { id }
    } else {
        DigestCheck::Mismatch { id }
    }
}

/// First value of header `name` (case-insensitive), unfolded and trimmed.
fn header_value(headers: &str, name: &str) -> Option<String> {
    let mut lines = headers
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .peekable();
    while let Some(line) = lines.next() {
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        if !field.eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = value.trim().to_owned();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
        }
        return Some(value);
    }
    None
}

#[cfg(test)]
mod tests;
