//! ENVELOPE of messages the checks append: header fields, defaults for Sender and Reply-To,
//! RFC 2047 encoded words.

use super::structure::{address, envelope, message, one, some};
use super::support::nstring;
use crate::conform_check as check;
use crate::conformance::{ensure, ensure_eq, Check, CheckResult, Ctx};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.envelope.basic-fields",
        "ENVELOPE gives the date, subject, from, to and message-id of the header",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        envelope_fields,
        destructive
    ),
    check!(
        "imap.envelope.sender-reply-to-default",
        "Without Sender and Reply-To, ENVELOPE repeats From in both",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        envelope_defaults,
        destructive
    ),
    check!(
        "imap.envelope.encoded-words",
        "ENVELOPE carries RFC 2047 encoded subject and display name unchanged",
        "RFC 9051 7.5.2",
        Must,
        Imap,
        envelope_encoded_words,
        destructive
    ),
];

pub async fn envelope_fields(ctx: &Ctx) -> CheckResult {
    let id = ctx.unique("env");
    let bytes = message(
        &id,
        "From: Alice Example <alice@mailswarm.test>\n\
         To: Bob <bob@mailswarm.test>, carol@mailswarm.test\n\
         Subject: envelope fields\n\
         Content-Type: text/plain",
        "x\n",
    );
    let (mut s, uid) = one(ctx, "env", &bytes).await?;
    let e = envelope(&mut s, uid).await?;
    ensure_eq(
        "date",
        nstring(&e.date).as_deref(),
        Some("Thu, 03 Dec 2026 12:00:00 +0000"),
    )?;
    ensure_eq(
        "subject",
        nstring(&e.subject).as_deref(),
        Some("envelope fields"),
    )?;
    ensure_eq(
        "from",
        address(&e.from),
        vec![some(Some("Alice Example"), "alice")],
    )?;
    ensure_eq(
        "to",
        address(&e.to),
        vec![some(Some("Bob"), "bob"), some(None, "carol")],
    )?;
    ensure_eq("cc", address(&e.cc), vec![])?;
    ensure_eq("in-reply-to", nstring(&e.in_reply_to), None)?;
    ensure_eq(
        "message-id",
        nstring(&e.message_id),
        Some(format!("<{id}@mailswarm.test>")),
    )
}

pub async fn envelope_defaults(ctx: &Ctx) -> CheckResult {
    let id = ctx.unique("envdef");
    let bytes = message(
        &id,
        "From: Alice Example <alice@mailswarm.test>\nSubject: defaults",
        "x\n",
    );
    let (mut s, uid) = one(ctx, "envdef", &bytes).await?;
    let e = envelope(&mut s, uid).await?;
    let from = address(&e.from);
    ensure_eq(
        "from",
        from.clone(),
        vec![some(Some("Alice Example"), "alice")],
    )?;
    ensure_eq("sender (= from)", address(&e.sender), from.clone())?;
    ensure_eq("reply-to (= from)", address(&e.reply_to), from)
}

pub async fn envelope_encoded_words(ctx: &Ctx) -> CheckResult {
    let id = ctx.unique("env2047");
    let subject = "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=";
    let name = "=?ISO-8859-1?Q?J=F6rg_M=FCller?=";
    let bytes = message(
        &id,
        &format!(
            "From: {name} <joerg@mailswarm.test>\nSubject: {subject}\nContent-Type: text/plain"
        ),
        "x\n",
    );
    let (mut s, uid) = one(ctx, "env2047", &bytes).await?;
    let e = envelope(&mut s, uid).await?;
    // The raw header text is what RFC 3501 servers send; a UTF-8 capable server may decode.
    let got = nstring(&e.subject).unwrap_or_default();
    ensure(
        got == subject || got == "Grüße aus Köln",
        format!("subject {subject:?} (or its decoded text)"),
        format!("{got:?}"),
    )?;
    let from = address(&e.from);
    let display = from.first().and_then(|a| a.0.clone()).unwrap_or_default();
    ensure(
        display == name || display == "Jörg Müller",
        format!("from name {name:?} (or its decoded text)"),
        format!("{from:?}"),
    )?;
    ensure_eq(
        "from mailbox and host",
        from.first().map(|a| (a.1.clone(), a.2.clone())),
        Some((Some("joerg".into()), Some("mailswarm.test".into()))),
    )
}
