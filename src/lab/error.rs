//! The lab's error type: every variant says what went wrong and how to fix it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::MAIL_USER;

/// Errors of the lab. Each message names the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    #[error("--listen {0} is not a loopback address: the lab only listens on 127.0.0.0/8")]
    NotLoopback(Ipv4Addr),
    #[error("invalid lab setting: {0}")]
    InvalidConfig(String),
    #[error(
        "the lab must run as root (Dovecot switches to the mail user `{MAIL_USER}`); \
         run it with sudo or in the CI container"
    )]
    NotRoot,
    #[error(
        "missing Debian packages: {packages}; install them with \
         `apt-get install -y --no-install-recommends {packages}` (or run ci/install-deps)",
        packages = .packages.join(" ")
    )]
    MissingPackages { packages: Vec<String> },
    #[error(
        "{what} port {addr} is already in use (another lab? see `mailswarm lab status`); \
         pick another with --{flag}"
    )]
    PortInUse {
        what: &'static str,
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error(
        "a lab already runs in {} with other settings ({running}); \
         stop it first with `mailswarm lab down --dir {}`",
        .dir.display(), .dir.display()
    )]
    AlreadyRunning { dir: PathBuf, running: String },
    #[error("no lab runs in {} (no lab.json); start one with `mailswarm lab up --dir {}`",
        .dir.display(), .dir.display())]
    NotRunning { dir: PathBuf },
    #[error("{} is not a valid lab.json ({source}); run `mailswarm lab down` and `up` again",
        .path.display())]
    BadInfo {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{server} did not start: {detail}{}", log_suffix(.log_tail))]
    StartFailed {
        server: &'static str,
        detail: String,
        log_tail: String,
    },
    #[error("{what} on {addr} {why} (last error: {last}){}", log_suffix(.log_tail))]
    NotReady {
        what: &'static str,
        addr: SocketAddr,
        why: String,
        last: String,
        log_tail: String,
    },
    #[error("{what} failed: {output}")]
    Command { what: String, output: String },
    #[error("making the lab certificates: {0}")]
    Tls(rcgen::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn log_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\nlast log lines:\n{tail}")
    }
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> LabError {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}
