//! The IMAP client's error type. Every failure names what went wrong in words a load-test report
//! can show, carries the offending server line where there is one, and maps onto the shared
//! [`ErrorKind`] that metrics count.

use std::time::Duration;

use crate::proto::ErrorKind;

/// How much of a server line an error keeps: enough to see the fault, bounded so that a hostile
/// 64 MiB line does not become a 64 MiB error message.
const MAX_RAW_IN_ERROR: usize = 512;

/// Why an IMAP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The socket failed (refused, reset, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The server did not complete the command within the deadline. The connection is unusable
    /// afterwards: a late answer would be taken for the reply to the next command.
    #[error("{command} got no complete answer within {after:?}")]
    Timeout {
        command: &'static str,
        after: Duration,
    },

    /// The server broke the grammar or the command sequencing. `raw` is the offending line,
    /// escaped and truncated, with credentials removed.
    #[error("protocol violation: {reason}; server sent: {raw}")]
    Protocol { raw: String, reason: String },

    /// A response exceeded one of the configured [`ImapLimits`](super::ImapLimits).
    #[error("{what} exceeds the limit of {limit} bytes (announced or read: {actual}); raise ImapLimits::{field} if the server is right")]
    LimitExceeded {
        what: &'static str,
        field: &'static str,
        limit: usize,
        actual: u64,
    },

    /// The server answered `NO`.
    #[error("{command} rejected by the server: NO {text}")]
    No { command: &'static str, text: String },

    /// The server answered `BAD`.
    #[error("{command} refused as invalid by the server: BAD {text}")]
    Bad { command: &'static str, text: String },

    /// The server said `BYE` while we did not ask to log out.
    #[error("server closed the session: BYE {text}")]
    Bye { text: String },

    /// The server closed the connection where an answer was due.
    #[error("connection closed by the server {during}")]
    Closed { during: &'static str },

    /// The client cannot be used any more: an earlier error or an interrupted (cancelled)
    /// command left the session in an unknown state. Open a new connection.
    #[error("connection unusable: {reason}")]
    Unusable { reason: &'static str },

    /// The server lacks a capability the call needs.
    #[error("server does not advertise {capability}, which {command} needs")]
    Unsupported {
        command: &'static str,
        capability: &'static str,
    },

    /// A caller-supplied argument cannot be put on the wire (for example a NUL byte in a
    /// message or an invalid search string).
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },

    /// The call does not fit the session state (for example a command while IDLE runs).
    #[error("{0}")]
    WrongState(&'static str),
}

impl ImapError {
    /// The shared error class for metrics and reports.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImapError::Io(err) => ErrorKind::from_io(err),
            ImapError::Timeout { .. } => ErrorKind::Timeout,
            ImapError::Protocol { .. } | ImapError::LimitExceeded { .. } => ErrorKind::Protocol,
            ImapError::No { command, .. } | ImapError::Bad { command, .. }
                if is_auth_command(command) =>
            {
                ErrorKind::Auth
            }
            ImapError::No { .. } | ImapError::Bad { .. } | ImapError::Unsupported { .. } => {
                ErrorKind::Rejected
            }
            ImapError::Bye { .. } | ImapError::Closed { .. } => ErrorKind::Reset,
            // Local misuse: not the server's fault, counted with other local failures.
            ImapError::Unusable { .. }
            | ImapError::InvalidArgument { .. }
            | ImapError::WrongState(_) => ErrorKind::Io,
        }
    }

    /// A grammar violation: `raw` is the whole offending message as received.
    pub(crate) fn protocol(raw: &[u8], reason: impl Into<String>) -> ImapError {
        ImapError::Protocol {
            raw: escape_raw(raw),
            reason: reason.into(),
        }
    }

    /// Whether the connection must be dropped after this error. `NO`/`BAD` and argument errors
    /// leave the session usable; everything else leaves it in an unknown state.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            ImapError::No { .. }
                | ImapError::Bad { .. }
                | ImapError::Unsupported { .. }
                | ImapError::InvalidArgument { .. }
                | ImapError::WrongState(_)
        )
    }

    /// Replaces every occurrence of each secret in the texts this error carries.
    pub(crate) fn redact(mut self, secrets: &[&str]) -> ImapError {
        let scrub = |text: &mut String| {
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if text.contains(secret) {
                    *text = text.replace(secret, "<redacted>");
                }
            }
        };
        match &mut self {
            ImapError::Protocol { raw, reason } => {
                scrub(raw);
                scrub(reason);
            }
            ImapError::No { text, .. } | ImapError::Bad { text, .. } | ImapError::Bye { text } => {
                scrub(text)
            }
            _ => {}
        }
        self
    }
}

fn is_auth_command(command: &str) -> bool {
    command == "LOGIN" || command == "AUTHENTICATE"
}

/// Renders server bytes for an error message: printable ASCII as is, CR/LF/TAB as `\r` `\n`
/// `\t`, everything else as `\xNN`, cut after [`MAX_RAW_IN_ERROR`] bytes.
pub(crate) fn escape_raw(raw: &[u8]) -> String {
    let shown = &raw[..raw.len().min(MAX_RAW_IN_ERROR)];
    let mut out = String::with_capacity(shown.len() + 16);
    for &byte in shown {
        match byte {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    if raw.len() > shown.len() {
        out.push_str(&format!("... ({} bytes in all)", raw.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_shows_control_bytes_and_truncates() {
        assert_eq!(escape_raw(b"* OK hi \r\n"), "* OK hi \\r\\n");
        assert_eq!(escape_raw(b"a\x00\xff\n"), "a\\x00\\xff\\n");
        let long = vec![b'x'; 2000];
        let shown = escape_raw(&long);
        assert!(shown.ends_with("... (2000 bytes in all)"), "{shown}");
        assert!(shown.len() < 600);
    }

    #[test]
    fn failed_login_counts_as_auth() {
        let err = ImapError::No {
            command: "AUTHENTICATE",
            text: "[AUTHENTICATIONFAILED] Authentication failed.".into(),
        };
        assert_eq!(err.kind(), ErrorKind::Auth);
        let err = ImapError::No {
            command: "SELECT",
            text: "Mailbox doesn't exist".into(),
        };
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert!(!err.is_fatal());
    }

    #[test]
    fn redact_removes_secrets() {
        let err = ImapError::protocol(b"a1 BAD hunter2 x\r\n", "bad").redact(&["hunter2"]);
        let shown = err.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
