//! Wire clients. Each protocol has its own typed error; all of them map onto [`ErrorKind`],
//! the small closed set that metrics count and reports show.

pub mod imap;
pub mod lmtp;
pub mod net;
pub mod smtp;
pub mod tls;

use serde::Serialize;

/// A credential that must never be printed: `Debug` and `Display` show `<redacted>`, so a
/// password cannot leak through an error message, a log line or a `{:?}` of a config.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value; call only where it goes on the wire.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

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
