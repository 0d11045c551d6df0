//! Messages for delivery checks and reading them back: what was sent against what the
//! mailbox holds.

use std::time::Duration;

use crate::conformance::{fail, CheckError, CheckResult, Ctx};

/// How long a delivered message may take to show up in the INBOX.
pub(crate) const DELIVERY_WAIT: Duration = Duration::from_secs(15);

/// The one copy of message `id` in account `index`'s INBOX (removed from there).
pub(crate) async fn read_back(ctx: &Ctx, index: usize, id: &str) -> Result<Vec<u8>, CheckError> {
    match ctx.take_from_inbox(index, id, DELIVERY_WAIT).await? {
        Some(mut copies) if !copies.is_empty() => Ok(copies.swap_remove(0)),
        _ => Err(fail(
            format!(
                "message {id} in the INBOX of {} within {DELIVERY_WAIT:?}",
                ctx.account(index).user
            ),
            "not delivered",
        )),
    }
}

/// What follows the first empty line.
pub(crate) fn body_of(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => &message[at + 4..],
        None => &[],
    }
}

/// Fails unless `stored` equals `expected`, showing where they first differ.
pub(crate) fn same_bytes(what: &str, stored: &[u8], expected: &[u8]) -> CheckResult {
    if stored == expected {
        return Ok(());
    }
    let at = stored
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(stored.len().min(expected.len()));
    let around = |b: &[u8]| {
        let from = at.saturating_sub(20);
        b[from.min(b.len())..(at + 40).min(b.len())]
            .escape_ascii()
            .to_string()
    };
    Err(fail(
        format!(
            "{what} byte-exact ({} bytes); at offset {at}: \"{}\"",
            expected.len(),
            around(expected)
        ),
        format!(
            "{} bytes; at offset {at}: \"{}\"",
            stored.len(),
            around(stored)
        ),
    ))
}

/// Fails unless `stored` ends with `sent` (servers add trace headers on top).
pub(crate) fn ends_with(what: &str, stored: &[u8], sent: &[u8]) -> CheckResult {
    if stored.ends_with(sent) {
        return Ok(());
    }
    let tail = &stored[stored.len().saturating_sub(sent.len())..];
    same_bytes(what, tail, sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_starts_after_the_first_empty_line() {
        assert_eq!(
            body_of(b"A: b\r\n\r\nbody\r\n\r\nmore"),
            b"body\r\n\r\nmore"
        );
        assert_eq!(body_of(b"A: b\r\n"), b"");
    }

    #[test]
    fn byte_comparisons_point_at_the_difference() {
        assert!(same_bytes("x", b"abc", b"abc").is_ok());
        match same_bytes("x", b"abXd", b"abcd") {
            Err(CheckError::Fail { expected, seen }) => {
                assert!(expected.contains("offset 2"), "{expected}");
                assert!(seen.contains("abXd"), "{seen}");
            }
            other => panic!("{other:?}"),
        }
        assert!(ends_with("x", b"Received: x\r\nmsg", b"msg").is_ok());
        assert!(ends_with("x", b"msg2", b"msg").is_err());
        assert!(ends_with("x", b"g", b"msg").is_err());
    }
}
