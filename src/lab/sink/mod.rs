//! A benchmark fixture, not a mail server: a minimal, fast IMAP and LMTP responder that
//! answers from a fixed mailbox, so that `ci/bench` measures mailswarm's own ceiling (memory
//! per idle connection, commands per CPU-second) rather than a server's.
//!
//! Do not load-test it and do not test conformance against it: it accepts any credentials,
//! keeps no state between commands (STORE forgets, APPEND discards, every SEARCH matches) and
//! implements only what its capabilities announce (`IMAP4rev1 LITERAL+ SASL-IR IDLE
//! AUTH=PLAIN`; LMTP `PIPELINING ENHANCEDSTATUSCODES 8BITMIME`). Real servers are what the
//! lab is for.
//!
//! It is built to hold many connections cheaply: one small task per connection, no read or
//! write buffer while a connection is idle. One process holds as many connections as its
//! open-file limit allows; run several on different ports to go past it. Only loopback
//! addresses can be bound.

mod conn;
mod fetch;
mod imap;
mod lmtp;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use imap::CAPABILITIES as IMAP_CAPABILITIES;

/// What to listen on and what the mailbox looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub imap: Option<SocketAddr>,
    pub lmtp: Option<SocketAddr>,
    /// Messages in every mailbox (UIDs 1..=messages, UIDVALIDITY 1).
    pub messages: u32,
    /// Approximate body size of the fixed message.
    pub body_bytes: usize,
    /// Connections open at once, over both protocols; further clients wait in the backlog.
    pub max_connections: usize,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            imap: None,
            lmtp: None,
            messages: 100,
            body_bytes: 2048,
            max_connections: 19_500,
        }
    }
}

/// Largest `messages`: a `SEARCH` lists every message on one line, which must stay under the
/// client's 64 KiB line limit.
pub const MAX_MESSAGES: u32 = 10_000;
/// Largest `body_bytes`.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("{addr} is not a loopback address: the sink only listens on 127.0.0.0/8 or ::1")]
    NotLoopback { addr: SocketAddr },
    #[error("nothing to listen on: give --imap ADDR, --lmtp ADDR or both")]
    NoListener,
    #[error("{what} must be at most {max} (got {got})")]
    TooLarge {
        what: &'static str,
        max: u64,
        got: u64,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Counters, readable while the sink runs.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Failed `accept` calls (typically the open-file limit).
    pub accept_errors: AtomicU64,
}

/// Bound listeners, ready to serve.
pub struct Sink {
    imap: Option<TcpListener>,
    lmtp: Option<TcpListener>,
    fixture: Arc<fetch::Fixture>,
    max_connections: usize,
    stats: Arc<SinkStats>,
}

impl Sink {
    /// Checks the configuration and binds the listeners (port 0 picks a free port; see
    /// [`imap_addr`](Self::imap_addr)).
    pub async fn bind(config: &SinkConfig) -> Result<Sink, SinkError> {
        if config.imap.is_none() && config.lmtp.is_none() {
            return Err(SinkError::NoListener);
        }
        if config.messages > MAX_MESSAGES {
            return Err(SinkError::TooLarge {
                what: "messages",
                max: MAX_MESSAGES.into(),
                got: config.messages.into(),
            });
        }
        if config.body_bytes > MAX_BODY_BYTES {
            return Err(SinkError::TooLarge {
                what: "body bytes",
                max: MAX_BODY_BYTES as u64,
                got: config.body_bytes as u64,
            });
        }
        Ok(Sink {
            imap: bind_loopback(config.imap).await?,
            lmtp: bind_loopback(config.lmtp).await?,
            fixture: Arc::new(fetch::Fixture::new(config.messages, config.body_bytes)),
            max_connections: config.max_connections.max(1),
            stats: Arc::default(),
        })
    }

    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.imap.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn lmtp_addr(&self) -> Option<SocketAddr> {
        self.lmtp.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Size in bytes of the fixed message (its `RFC822.SIZE`).
    pub fn message_size(&self) -> usize {
        self.fixture.size()
    }

    /// Serves until `shutdown` fires. Connections still open then are dropped with the
    /// runtime (the sink owes its clients no orderly goodbye).
    pub async fn serve(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let mut loops = tokio::task::JoinSet::new();
        if let Some(listener) = self.imap {
            let fixture = self.fixture.clone();
            loops.spawn(conn::accept_loop(
                listener,
                move || imap::ImapSession::new(fixture.clone()),
                limit.clone(),
                self.stats.clone(),
                shutdown.clone(),
            ));
        }
        if let Some(listener) = self.lmtp {
            loops.spawn(conn::accept_loop(
                listener,
                lmtp::LmtpSession::new,
                limit.clone(),
                self.stats.clone(),
                shutdown.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
    }
}

async fn bind_loopback(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, SinkError> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    if !addr.ip().is_loopback() {
        return Err(SinkError::NotLoopback { addr });
    }
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    let bind = |socket: tokio::net::TcpSocket| {
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        // A deep backlog: benchmarks open thousands of connections in a burst.
        socket.listen(4096)
    };
    socket
        .and_then(bind)
        .map(Some)
        .map_err(|source| SinkError::Bind { addr, source })
}

/// Raises the soft open-file limit to the hard one (each connection is a file descriptor);
/// returns `(soft, hard)` as they are afterwards.
pub fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}
