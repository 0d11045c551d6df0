//! BODYSTRUCTURE (and message/rfc822 envelopes) of unusual messages the checks append, compared with what the
//! messages really are: types, nesting, exact part sizes and line counts, envelope fields.

use imap_types::body::{BodyStructure, SpecificFields};
use imap_types::envelope::{Address, Envelope};
use imap_types::fetch::{MessageDataItem, Section};
use imap_types::response::Data;

use super::support::{fetch_uid, istring, nstring};
use crate::conform_check as check;
use crate::conformance::context::Session;
use crate::conformance::{ensure, ensure_eq, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{BodyPart, FetchItem, ImapError};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.fetch.mime-part",
        "BODY[1.1] and BODY[2.MIME] return exactly those parts of a nested message",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        mime_part,
        destructive
    ),
    check!(
        "imap.bodystructure.nested-multipart",
        "BODYSTRUCTURE of multipart/mixed holding multipart/alternative",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        nested_multipart,
        destructive
    ),
    check!(
        "imap.bodystructure.message-rfc822",
        "BODYSTRUCTURE of a message/rfc822 part gives its envelope and nested body",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        message_rfc822,
        destructive
    ),
    check!(
        "imap.bodystructure.empty-body",
        "A message with an empty body is text/plain of 0 octets and 0 lines",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        empty_body,
        destructive
    ),
    check!(
        "imap.bodystructure.eight-bit",
        "An 8-bit text body is stored verbatim and sized exactly (or APPEND is refused with NO)",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        eight_bit,
        destructive
    ),
    check!(
        "imap.bodystructure.parameters",
        "BODYSTRUCTURE gives Content-Type parameters, Content-ID, description and encoding",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        parameters,
        destructive
    ),
];

/// `<id@mailswarm.test>` headers and a body, CRLF line ends.
pub(super) fn message(id: &str, headers: &str, body: &str) -> Vec<u8> {
    let text = format!(
        "Date: Thu, 03 Dec 2026 12:00:00 +0000\n\
         Message-ID: <{id}@mailswarm.test>\n\
         MIME-Version: 1.0\n{headers}\n\n{body}"
    );
    crlf(&text).into_bytes()
}

/// Appends `bytes` to a new scratch mailbox; the session has it selected.
pub(super) async fn one<'c>(
    ctx: &'c Ctx,
    what: &str,
    bytes: &[u8],
) -> Result<(Session<'c>, u32), CheckError> {
    let (s, _, uids) = ctx.mailbox_with(what, &[bytes.to_vec()]).await?;
    Ok((s, uids[0]))
}

async fn structure(s: &mut Session<'_>, uid: u32) -> Result<BodyStructure<'static>, CheckError> {
    fetch_uid(s, uid, &[FetchItem::BodyStructure])
        .await?
        .body_structure
        .map(|b| *b)
        .ok_or_else(|| fail("BODYSTRUCTURE in the answer", "none"))
}

pub(super) async fn envelope(
    s: &mut Session<'_>,
    uid: u32,
) -> Result<Envelope<'static>, CheckError> {
    fetch_uid(s, uid, &[FetchItem::Envelope])
        .await?
        .envelope
        .map(|e| *e)
        .ok_or_else(|| fail("ENVELOPE in the answer", "none"))
}

/// A compact, lower-case outline: `mixed(text/plain[23,2],application/pdf[40])`.
/// Text parts show octets and lines, other leaves octets, message/rfc822 its inner outline.
fn outline(b: &BodyStructure<'_>) -> String {
    match b {
        BodyStructure::Multi {
            bodies, subtype, ..
        } => {
            let inner: Vec<String> = bodies.as_ref().iter().map(outline).collect();
            format!("{}({})", istring(subtype).to_lowercase(), inner.join(","))
        }
        BodyStructure::Single { body, .. } => {
            let size = body.basic.size;
            match &body.specific {
                SpecificFields::Basic { r#type, subtype } => format!(
                    "{}/{}[{size}]",
                    istring(r#type).to_lowercase(),
                    istring(subtype).to_lowercase()
                ),
                SpecificFields::Text {
                    subtype,
                    number_of_lines,
                } => format!(
                    "text/{}[{size},{number_of_lines}]",
                    istring(subtype).to_lowercase()
                ),
                SpecificFields::Message {
                    body_structure,
                    number_of_lines,
                    ..
                } => format!(
                    "message/rfc822[{size},{number_of_lines}]<{}>",
                    outline(body_structure)
                ),
            }
        }
    }
}

/// Octets and CRLF-terminated lines of a part body.
fn measure(body: &str) -> (usize, usize) {
    (body.len(), body.matches("\r\n").count())
}

/// CRLF line ends whether `text` has LF or CRLF ones.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

pub(super) fn address(
    list: &[Address<'_>],
) -> Vec<(Option<String>, Option<String>, Option<String>)> {
    list.iter()
        .map(|a| (nstring(&a.name), nstring(&a.mailbox), nstring(&a.host)))
        .collect()
}

pub(super) fn some(
    name: Option<&str>,
    mailbox: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    (
        name.map(str::to_string),
        Some(mailbox.to_string()),
        Some("mailswarm.test".to_string()),
    )
}

struct Nested {
    bytes: Vec<u8>,
    plain: String,
    html: String,
    attachment_headers: String,
    attachment: String,
}

fn nested(id: &str) -> Nested {
    let plain = crlf("plain text\ntwo lines\n");
    let html = crlf("<p>html</p>\n");
    let attachment_headers = crlf(
        "Content-Type: application/octet-stream; name=\"data.bin\"\n\
         Content-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"data.bin\"\n\n",
    );
    let attachment = crlf("AAECAwQFBgcICQ==\n");
    let body = format!(
        "preamble\r\n--outer-b\r\n\
         Content-Type: multipart/alternative; boundary=\"inner-b\"\r\n\r\n\
         --inner-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{plain}\r\n\
         --inner-b\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n{html}\r\n\
         --inner-b--\r\n\r\n\
         --outer-b\r\n{attachment_headers}{attachment}\r\n--outer-b--\r\n"
    );
    let head = message(
        id,
        "From: a@mailswarm.test\nSubject: nested\n\
         Content-Type: multipart/mixed; boundary=\"outer-b\"",
        "",
    );
    let mut bytes = head;
    bytes.extend_from_slice(body.as_bytes());
    Nested {
        bytes,
        plain,
        html,
        attachment_headers,
        attachment,
    }
}

pub async fn nested_multipart(ctx: &Ctx) -> CheckResult {
    let n = nested(&ctx.unique("nested"));
    let (mut s, uid) = one(ctx, "nested", &n.bytes).await?;
    let b = structure(&mut s, uid).await?;
    let (ps, pl) = measure(&n.plain);
    let (hs, hl) = measure(&n.html);
    let want = format!(
        "mixed(alternative(text/plain[{ps},{pl}],text/html[{hs},{hl}]),application/octet-stream[{}])",
        n.attachment.len()
    );
    ensure_eq("BODYSTRUCTURE outline", outline(&b), want)
}

pub async fn mime_part(ctx: &Ctx) -> CheckResult {
    let n = nested(&ctx.unique("part"));
    let (mut s, uid) = one(ctx, "part", &n.bytes).await?;
    let item = FetchItem::Body {
        part: BodyPart::Part(&[1, 1]),
        peek: true,
        partial: None,
    };
    let m = fetch_uid(&mut s, uid, &[item]).await?;
    let got = m
        .sections
        .first()
        .and_then(|s| s.data.as_ref())
        .map(|d| String::from_utf8_lossy(d).into_owned());
    ensure_eq("BODY[1.1]", got.as_deref(), Some(n.plain.as_str()))?;
    let x = crate::conformance::context::expect_ok(
        &mut s,
        &format!("UID FETCH {uid} (BODY.PEEK[2.MIME] BODY.PEEK[2])"),
    )
    .await?;
    let mut mime = None;
    let mut part = None;
    for d in super::support::data(&x) {
        let Data::Fetch { items, .. } = d else {
            continue;
        };
        for item in items.as_ref() {
            if let MessageDataItem::BodyExt { section, data, .. } = item {
                match section {
                    Some(Section::Mime(_)) => mime = nstring(data),
                    Some(Section::Part(_)) => part = nstring(data),
                    _ => {}
                }
            }
        }
    }
    ensure_eq(
        "BODY[2.MIME]",
        mime.as_deref(),
        Some(n.attachment_headers.as_str()),
    )?;
    ensure_eq("BODY[2]", part.as_deref(), Some(n.attachment.as_str()))?;
    Ok(())
}

pub async fn message_rfc822(ctx: &Ctx) -> CheckResult {
    let inner_id = ctx.unique("inner");
    let inner_body = crlf("inner body\nsecond\nthird\n");
    let inner = message(
        &inner_id,
        "From: Inner Sender <inner@mailswarm.test>\nSubject: the inner one\nContent-Type: text/plain",
        &inner_body,
    );
    let inner = String::from_utf8(inner).map_err(|e| CheckError::Local(e.to_string()))?;
    let intro = crlf("see attached\n");
    let body = format!(
        "--b1\r\nContent-Type: text/plain\r\n\r\n{intro}\r\n\
         --b1\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b1--\r\n"
    );
    let mut bytes = message(
        &ctx.unique("outer"),
        "From: a@mailswarm.test\nSubject: outer\nContent-Type: multipart/mixed; boundary=b1",
        "",
    );
    bytes.extend_from_slice(body.as_bytes());
    let (mut s, uid) = one(ctx, "rfc822", &bytes).await?;
    let b = structure(&mut s, uid).await?;
    let (is, il) = measure(&intro);
    let (ms, ml) = measure(&inner);
    let (bs, bl) = measure(&inner_body);
    let want =
        format!("mixed(text/plain[{is},{il}],message/rfc822[{ms},{ml}]<text/plain[{bs},{bl}]>)");
    ensure_eq("BODYSTRUCTURE outline", outline(&b), want)?;
    let BodyStructure::Multi { bodies, .. } = &b else {
        return Err(fail("multipart", outline(&b)));
    };
    let Some(BodyStructure::Single { body, .. }) = bodies.as_ref().get(1) else {
        return Err(fail("a second part", outline(&b)));
    };
    let SpecificFields::Message { envelope, .. } = &body.specific else {
        return Err(fail("message/rfc822 fields", outline(&b)));
    };
    ensure_eq(
        "inner envelope subject",
        nstring(&envelope.subject).as_deref(),
        Some("the inner one"),
    )?;
    ensure_eq(
        "inner envelope message-id",
        nstring(&envelope.message_id),
        Some(format!("<{inner_id}@mailswarm.test>")),
    )?;
    ensure_eq(
        "inner envelope from",
        address(&envelope.from),
        vec![some(Some("Inner Sender"), "inner")],
    )
}

pub async fn empty_body(ctx: &Ctx) -> CheckResult {
    let bytes = message(
        &ctx.unique("empty"),
        "From: a@mailswarm.test\nSubject: empty\nContent-Type: text/plain",
        "",
    );
    let (mut s, uid) = one(ctx, "empty", &bytes).await?;
    let b = structure(&mut s, uid).await?;
    ensure_eq(
        "BODYSTRUCTURE outline",
        outline(&b),
        "text/plain[0,0]".into(),
    )?;
    let m = fetch_uid(&mut s, uid, &[FetchItem::Rfc822Size]).await?;
    ensure_eq("RFC822.SIZE", m.rfc822_size, Some(bytes.len() as u32))
}

pub async fn eight_bit(ctx: &Ctx) -> CheckResult {
    let body = crlf("Grüße aus Köln\nÄpfel und Birnen\n");
    let bytes = message(
        &ctx.unique("8bit"),
        "From: a@mailswarm.test\nSubject: eight bit\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit",
        &body,
    );
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "8bit").await?;
    match s.append(&name, &[], None, &bytes).await {
        Ok(_) => {}
        Err(ImapError::No { text, .. }) => {
            ctx.note(format!(
                "APPEND of 8-bit data refused with NO ({text}), which is allowed"
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    s.select(&name).await?;
    let uid = *crate::conformance::context::all_uids(&mut s)
        .await?
        .first()
        .ok_or_else(|| fail("the appended message", "empty mailbox"))?;
    let m = fetch_uid(&mut s, uid, &[super::support::PEEK_ALL]).await?;
    ensure(
        m.body().map(|b| b.as_ref()) == Some(&bytes[..]),
        "BODY[] equal to the appended 8-bit octets",
        format!(
            "{:?}",
            m.body().map(|b| String::from_utf8_lossy(b).into_owned())
        ),
    )?;
    let b = structure(&mut s, uid).await?;
    let (size, lines) = measure(&body);
    ensure_eq(
        "BODYSTRUCTURE outline",
        outline(&b),
        format!("text/plain[{size},{lines}]"),
    )?;
    let BodyStructure::Single { body, .. } = &b else {
        return Err(fail("single part", outline(&b)));
    };
    ensure_eq(
        "encoding",
        istring(&body.basic.content_transfer_encoding).to_lowercase(),
        "8bit".into(),
    )
}

pub async fn parameters(ctx: &Ctx) -> CheckResult {
    let body = crlf("report\n");
    let bytes = message(
        &ctx.unique("params"),
        "From: a@mailswarm.test\nSubject: params\n\
         Content-Type: text/plain; charset=\"UTF-8\"; name=\"report.txt\"; format=flowed\n\
         Content-ID: <part1@mailswarm.test>\n\
         Content-Description: The quarterly report\n\
         Content-Transfer-Encoding: 7bit",
        &body,
    );
    let (mut s, uid) = one(ctx, "params", &bytes).await?;
    let b = structure(&mut s, uid).await?;
    let BodyStructure::Single { body: part, .. } = &b else {
        return Err(fail("single part", outline(&b)));
    };
    let params: Vec<(String, String)> = part
        .basic
        .parameter_list
        .iter()
        .map(|(k, v)| (istring(k).to_lowercase(), istring(v)))
        .collect();
    let value = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    ensure(
        value("charset").map(|v| v.to_lowercase()) == Some("utf-8".into())
            && value("name").as_deref() == Some("report.txt")
            && value("format").map(|v| v.to_lowercase()) == Some("flowed".into()),
        "parameters charset=UTF-8, name=report.txt, format=flowed",
        format!("{params:?}"),
    )?;
    ensure_eq(
        "body id",
        nstring(&part.basic.id).as_deref(),
        Some("<part1@mailswarm.test>"),
    )?;
    ensure_eq(
        "body description",
        nstring(&part.basic.description).as_deref(),
        Some("The quarterly report"),
    )?;
    ensure_eq(
        "encoding",
        istring(&part.basic.content_transfer_encoding).to_lowercase(),
        "7bit".into(),
    )?;
    let (size, lines) = measure(&body);
    ensure_eq(
        "outline",
        outline(&b),
        format!("text/plain[{size},{lines}]"),
    )
}
