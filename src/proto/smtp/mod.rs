//! SMTP client (RFC 5321) that also speaks LMTP (RFC 2033): one code path for both, because an
//! LMTP session is an SMTP session with LHLO and one final reply per accepted recipient.
//!
//! Built for measuring servers, not for relaying mail: every reply is checked against the
//! grammar ([`reply`]), every step is timed, and failures come back as a typed [`SmtpError`]
//! whose [`SmtpError::kind`] is what metrics count.
//!
//! Layout: [`reply`] frames and parses replies, [`dot`] encodes DATA bodies, [`capabilities`]
//! reads EHLO/LHLO, `client` holds the connection and the single commands, `transaction` runs a
//! whole MAIL/RCPT/DATA (or BDAT) exchange with pipelining.

pub mod capabilities;
mod client;
pub mod dot;
pub mod reply;
mod transaction;

#[cfg(test)]
mod hostile_tests;

use std::io;
use std::time::Duration;

pub use capabilities::Capabilities;
pub use client::{AuthMechanism, SmtpClient};
pub use reply::Reply;
pub use transaction::{
    Delivery, Envelope, MailParams, RecipientReply, SendOptions, StepTimings, TransactionOutcome,
    Transfer,
};

use super::tls::TlsError;
use super::ErrorKind;

/// Which protocol the session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    Smtp,
    Lmtp,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Smtp => "smtp",
            Flavor::Lmtp => "lmtp",
        }
    }
}

/// Default deadline for each read or write of a command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Session settings beyond the TCP connection.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// Deadline for each network step (one write, or waiting for one reply). The greeting and
    /// the final reply after DATA get the same deadline.
    pub command_timeout: Duration,
    /// Deadline for the TLS handshake after STARTTLS.
    pub tls_handshake_timeout: Duration,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            tls_handshake_timeout: super::tls::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Why an SMTP/LMTP operation failed. `command` names the step ("MAIL", "greeting", ...).
/// No variant ever holds credentials: AUTH errors carry only the server's reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    #[error("I/O error during {command}: {source}")]
    Io {
        command: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no progress on {command} within {after:?}")]
    Timeout {
        command: &'static str,
        after: Duration,
    },
    /// The server broke the grammar or the sequencing; `raw` quotes what it sent. The
    /// connection is out of sync afterwards and must be dropped.
    #[error("protocol violation on {command}: {reason}; server sent {raw:?}")]
    Protocol {
        command: &'static str,
        reason: String,
        raw: String,
    },
    #[error("{command} rejected: {code}{} {text}", enhanced_suffix(.enhanced))]
    Rejected {
        command: &'static str,
        code: u16,
        enhanced: Option<[u8; 3]>,
        text: String,
    },
    #[error("authentication failed: {code}{} {text}", enhanced_suffix(.enhanced))]
    Auth {
        code: u16,
        enhanced: Option<[u8; 3]>,
        text: String,
    },
    #[error("STARTTLS: {0}")]
    Tls(#[from] TlsError),
    #[error("connection closed by the server during {command}{}", partial_suffix(.partial))]
    Closed {
        command: &'static str,
        /// Bytes of an unfinished reply, if the server closed in the middle of one.
        partial: String,
    },
    /// The caller asked for an extension the server did not advertise (e.g. BDAT without
    /// CHUNKING).
    #[error("{extension} is needed for this operation but the server did not advertise it")]
    NotAdvertised { extension: &'static str },
    /// A value we were asked to send would break the command line (CR, LF, angle brackets).
    #[error("cannot send {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },
}

fn enhanced_suffix(enhanced: &Option<[u8; 3]>) -> String {
    match enhanced {
        Some([c, s, d]) => format!(" {c}.{s}.{d}"),
        None => String::new(),
    }
}

fn partial_suffix(partial: &str) -> String {
    if partial.is_empty() {
        String::new()
    } else {
        format!(" (in the middle of a reply: {partial:?})")
    }
}

impl SmtpError {
    /// The category metrics count.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SmtpError::Io { source, .. } => ErrorKind::from_io(source),
            SmtpError::Timeout { .. } => ErrorKind::Timeout,
            SmtpError::Protocol { .. } => ErrorKind::Protocol,
            SmtpError::Rejected { .. } | SmtpError::NotAdvertised { .. } => ErrorKind::Rejected,
            SmtpError::Auth { .. } => ErrorKind::Auth,
            SmtpError::Tls(err) => err.kind(),
            SmtpError::Closed { .. } => ErrorKind::Reset,
            SmtpError::InvalidInput { .. } => ErrorKind::Io,
        }
    }

    pub(crate) fn rejected(command: &'static str, reply: Reply) -> SmtpError {
        SmtpError::Rejected {
            command,
            code: reply.code,
            enhanced: reply.enhanced,
            text: reply.text,
        }
    }

    pub(crate) fn protocol(command: &'static str, reason: impl Into<String>, raw: String) -> Self {
        SmtpError::Protocol {
            command,
            reason: reason.into(),
            raw,
        }
    }

    /// A reply with a code the command does not allow (e.g. 250 to DATA).
    pub(crate) fn unexpected(command: &'static str, expected: &str, reply: &Reply) -> Self {
        SmtpError::protocol(
            command,
            format!("expected {expected}, got {}", reply.code),
            reply.text.clone(),
        )
    }
}
