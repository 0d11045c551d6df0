//! FETCH of message data compared byte for byte with what the check appended: size, the
//! whole message, partial ranges, header, text, header fields, INTERNALDATE, implicit UID.

use imap_types::fetch::Section;

use super::support::{fetch_uid, PEEK_ALL};
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, simple_message, Session};
use crate::conformance::{ensure, ensure_eq, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{BodyPart, FetchItem, SearchQuery};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.fetch.rfc822-size",
        "RFC822.SIZE equals the exact number of octets appended",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        rfc822_size,
        destructive
    ),
    check!(
        "imap.fetch.body-exact",
        "BODY[] returns exactly the appended octets",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        body_exact,
        destructive
    ),
    check!(
        "imap.fetch.partial-origin",
        "BODY[]<0.10> returns the first 10 octets with origin <0>",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        partial_origin,
        destructive
    ),
    check!(
        "imap.fetch.partial-past-end",
        "A partial FETCH past the end is shortened, beyond the end empty",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        partial_past_end,
        destructive
    ),
    check!(
        "imap.fetch.header-section",
        "BODY[HEADER] is the header including the blank line",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        header_section,
        destructive
    ),
    check!(
        "imap.fetch.text-section",
        "BODY[TEXT] is the body after the blank line",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        text_section,
        destructive
    ),
    check!(
        "imap.fetch.header-fields",
        "BODY[HEADER.FIELDS (Subject)] is that field and the blank line",
        "RFC 9051 6.4.5",
        Must,
        Imap,
        header_fields,
        destructive
    ),
    check!(
        "imap.fetch.internaldate",
        "INTERNALDATE is the date-time given at APPEND",
        "RFC 9051 6.3.12",
        Should,
        Imap,
        internal_date,
        destructive
    ),
    check!(
        "imap.fetch.uid-implicit",
        "UID FETCH answers include UID even when not asked for",
        "RFC 9051 6.4.9",
        Must,
        Imap,
        uid_implicit,
        destructive
    ),
];

/// A message with a multi-line body, trailing spaces and a long header line.
fn sample(ctx: &Ctx) -> Vec<u8> {
    simple_message(
        &ctx.unique("fetch"),
        "fetch sample with a somewhat longer subject line",
        "first line\nsecond line with trailing space \n\n  indented after a blank line\nlast",
    )
}

async fn with_sample(ctx: &Ctx) -> Result<(Session<'_>, Vec<u8>, u32), CheckError> {
    let message = sample(ctx);
    let (s, _, uids) = ctx
        .mailbox_with("fetch", std::slice::from_ref(&message))
        .await?;
    Ok((s, message, uids[0]))
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let clipped: String = text.chars().take(120).collect();
    format!("{clipped:?} ({} octets)", bytes.len())
}

fn split_at_blank_line(message: &[u8]) -> usize {
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(message.len())
}

pub async fn rfc822_size(ctx: &Ctx) -> CheckResult {
    let (mut s, message, uid) = with_sample(ctx).await?;
    let m = fetch_uid(&mut s, uid, &[FetchItem::Rfc822Size]).await?;
    ensure_eq("RFC822.SIZE", m.rfc822_size, Some(message.len() as u32))
}

pub async fn body_exact(ctx: &Ctx) -> CheckResult {
    let (mut s, message, uid) = with_sample(ctx).await?;
    let m = fetch_uid(&mut s, uid, &[PEEK_ALL]).await?;
    let body = m.body().map(|b| b.to_vec()).unwrap_or_default();
    ensure(body == message, show(&message), show(&body))
}

async fn partial(
    s: &mut Session<'_>,
    uid: u32,
    offset: u32,
    length: u32,
) -> Result<(Option<u32>, Option<Vec<u8>>), CheckError> {
    let item = FetchItem::Body {
        part: BodyPart::Full,
        peek: true,
        partial: Some((offset, length)),
    };
    let m = fetch_uid(s, uid, &[item]).await?;
    let section = m
        .section(None)
        .ok_or_else(|| fail(format!("BODY[]<{offset}> in the answer"), "none"))?;
    Ok((section.origin, section.data.as_ref().map(|d| d.to_vec())))
}

pub async fn partial_origin(ctx: &Ctx) -> CheckResult {
    let (mut s, message, uid) = with_sample(ctx).await?;
    let (origin, data) = partial(&mut s, uid, 0, 10).await?;
    ensure_eq("origin", origin, Some(0))?;
    let data = data.unwrap_or_default();
    ensure(data == message[..10], show(&message[..10]), show(&data))
}

pub async fn partial_past_end(ctx: &Ctx) -> CheckResult {
    let (mut s, message, uid) = with_sample(ctx).await?;
    let len = message.len() as u32;
    let (origin, data) = partial(&mut s, uid, len - 5, 100).await?;
    ensure_eq("origin", origin, Some(len - 5))?;
    let data = data.unwrap_or_default();
    ensure(
        data == message[message.len() - 5..],
        format!("the last 5 octets: {}", show(&message[message.len() - 5..])),
        show(&data),
    )?;
    let (_, data) = partial(&mut s, uid, len + 10, 5).await?;
    match data {
        Some(d) if d.is_empty() => Ok(()),
        other => Err(fail(
            format!("an empty string for BODY[]<{}.5>", len + 10),
            format!("{other:?}"),
        )),
    }
}

async fn section(s: &mut Session<'_>, uid: u32, part: BodyPart<'_>) -> Result<Vec<u8>, CheckError> {
    let item = FetchItem::Body {
        part,
        peek: true,
        partial: None,
    };
    let m = fetch_uid(s, uid, &[item]).await?;
    let found = match part {
        BodyPart::HeaderFields(_) => m.header_fields().cloned(),
        BodyPart::Header => m
            .section(Some(&Section::Header(None)))
            .and_then(|s| s.data.clone()),
        BodyPart::Text => m
            .section(Some(&Section::Text(None)))
            .and_then(|s| s.data.clone()),
        _ => m.body().cloned(),
    };
    found
        .map(|b| b.to_vec())
        .ok_or_else(|| fail(format!("the {part:?} section in the answer"), "none or NIL"))
}

pub async fn header_section(ctx: &Ctx) -> CheckResult {
    let (mut s, message, uid) = with_sample(ctx).await?;
    let header = section(&mut s, uid, BodyPart::Header).await?;
    let want = &message[..split_at_blank_line(&message)];
    ensure(header == want, show(want), show(&header))
}

pub async fn text_section(ctx: &Ctx) -> CheckResult {
    let (mut s, message, uid) = with_sample(ctx).await?;
    let text = section(&mut s, uid, BodyPart::Text).await?;
    let want = &message[split_at_blank_line(&message)..];
    ensure(text == want, show(want), show(&text))
}

pub async fn header_fields(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = with_sample(ctx).await?;
    let fields = section(&mut s, uid, BodyPart::HeaderFields(&["Subject"])).await?;
    let want = b"Subject: fetch sample with a somewhat longer subject line\r\n\r\n";
    ensure(fields == want, show(want), show(&fields))
}

pub async fn internal_date(ctx: &Ctx) -> CheckResult {
    let (mut s, name, _) = ctx.mailbox_with("idate", &[]).await?;
    let id = ctx.unique("idate");
    let message = simple_message(&id, "internaldate", "x");
    let mut command = format!(
        "APPEND {name} \"03-Dec-2026 12:34:56 +0100\" {{{}}}\r\n",
        message.len()
    )
    .into_bytes();
    command.extend_from_slice(&message);
    let command = String::from_utf8(command).map_err(|e| CheckError::Local(e.to_string()))?;
    expect_ok(&mut s, &command).await?;
    s.noop().await?;
    let query = SearchQuery::parse(&format!("HEADER Message-ID \"{id}\""))?;
    let uid = *s
        .uid_search(&query)
        .await?
        .first()
        .ok_or_else(|| fail("the appended message", "not found by UID SEARCH"))?;
    let m = fetch_uid(&mut s, uid, &[FetchItem::InternalDate]).await?;
    let got = m.internal_date.map(|d| d.as_ref().timestamp());
    // 03-Dec-2026 12:34:56 +0100 is 11:34:56 UTC.
    ensure_eq(
        "INTERNALDATE (seconds since the epoch)",
        got,
        Some(1_796_297_696),
    )
}

pub async fn uid_implicit(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uid) = with_sample(ctx).await?;
    let x = expect_ok(&mut s, &format!("UID FETCH {uid} (FLAGS)")).await?;
    let with_uid = x.responses.iter().any(|r| match &r.decoded {
        imap_types::response::Response::Data(imap_types::response::Data::Fetch {
            items, ..
        }) => items
            .as_ref()
            .iter()
            .any(|i| matches!(i, imap_types::fetch::MessageDataItem::Uid(u) if u.get() == uid)),
        _ => false,
    });
    ensure(
        with_uid,
        format!("* n FETCH (... UID {uid} ...)"),
        x.responses
            .iter()
            .map(super::support::line)
            .collect::<Vec<_>>()
            .join(" | "),
    )
}
