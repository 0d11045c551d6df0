//! Wire clients. Each protocol has its own typed error; all of them map onto [`ErrorKind`],
//! the small closed set that metrics count and reports show.

pub mod imap;
pub mod lmtp;
pub mod net;
pub mod smtp;
pub mod tls;

use serde::Serialize;

/// Why an operation failed, as counted in results. Stable names: they are part of the
/// `results.json` schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// TCP connection refused.
    Refused,
    /// Connection reset or closed by the peer unexpectedly.
    Reset,
    /// No answer within the deadline.
    Timeout,
    /// TLS handshake or certificate failure.
    Tls,
    /// The server broke the protocol grammar or sequencing.
    Protocol,
    /// The server answered NO / 4xx-5xx to a command that should have worked.
    Rejected,
    /// Authentication failed.
    Auth,
    /// Any other local I/O failure.
    Io,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Auth => "auth",
            ErrorKind::Io => "io",
        }
    }

    /// Classifies a socket error.
    pub fn from_io(err: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::ConnectionRefused => ErrorKind::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                ErrorKind::Reset
            }
            K::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        }
    }
}
