//! Accepting connections and moving bytes between a socket and a protocol state machine.
//!
//! An idle connection must cost next to nothing: its task holds the socket, the protocol state
//! and two empty vectors. Reads go into a stack buffer inside a synchronous function (so the
//! buffer is not part of the task's future), and bytes are kept on the heap only while a
//! command is incomplete.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::SinkStats;

/// Size of one read. Large enough that a pipelined burst is handled in one go.
const READ_CHUNK: usize = 16 * 1024;

/// Most bytes of an incomplete command (or LMTP line) kept between reads; a client going past
/// it is answered with an error and disconnected.
pub(super) const MAX_PENDING: usize = 64 * 1024;

/// Whether the connection stays open after a batch of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Close,
}

/// A protocol's server side as a pure state machine: bytes in, replies out.
pub(super) trait Protocol: Send + 'static {
    fn greeting(&self, out: &mut Vec<u8>);

    /// Handles every complete unit (line, literal, DATA chunk) at the start of `input`,
    /// appending replies to `out`; returns how many bytes were used. Unused bytes are handed
    /// in again, with more after them, on the next call.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Flow);

    /// The reply sent before closing a connection whose incomplete command grew too long.
    fn overflow_reply(&self) -> &'static [u8];
}

/// Accepts until `shutdown` fires, starting one task per connection. At most `limit`
/// connections are open at once: the permit is taken before `accept` and lives in the task.
pub(super) async fn accept_loop<P: Protocol>(
    listener: TcpListener,
    new_session: impl Fn() -> P,
    limit: Arc<Semaphore>,
    stats: Arc<SinkStats>,
    shutdown: CancellationToken,
) {
    let mut pause = Duration::from_millis(1);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                pause = Duration::from_millis(1);
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(stream, new_session(), permit, stats.clone()));
            }
            Err(_) => {
                // Typically EMFILE: back off instead of spinning, the error clears when
                // connections close.
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn serve<P: Protocol>(
    mut stream: TcpStream,
    mut session: P,
    permit: OwnedSemaphorePermit,
    stats: Arc<SinkStats>,
) {
    // Counters are statistics only; nothing orders other memory by them, so Relaxed suffices.
    stats.open.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let mut pending = Vec::new();
    let mut out = Vec::new();
    session.greeting(&mut out);
    let mut flow = Flow::Continue;
    while flow == Flow::Continue {
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break;
            }
            // Dropped rather than cleared so an idle connection holds no write buffer.
            out = Vec::new();
        }
        if stream.readable().await.is_err() {
            break;
        }
        flow = match read_and_feed(&stream, &mut pending, &mut session, &mut out) {
            Ok(Some(flow)) => flow,
            Ok(None) => Flow::Continue,
            Err(_) => break,
        };
        if flow == Flow::Close && !out.is_empty() {
            let _ = stream.write_all(&out).await;
        }
    }
    let _ = stream.shutdown().await;
    stats.open.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
}

/// One non-blocking read handed to the session. `Ok(None)`: the readiness was spurious.
fn read_and_feed<P: Protocol>(
    stream: &TcpStream,
    pending: &mut Vec<u8>,
    session: &mut P,
    out: &mut Vec<u8>,
) -> io::Result<Option<Flow>> {
    let mut chunk = [0u8; READ_CHUNK];
    let n = match stream.try_read(&mut chunk) {
        Ok(0) => return Ok(Some(Flow::Close)),
        Ok(n) => n,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(err) => return Err(err),
    };
    let flow = if pending.is_empty() {
        let (used, flow) = session.feed(&chunk[..n], out);
        pending.extend_from_slice(&chunk[used..n]);
        flow
    } else {
        pending.extend_from_slice(&chunk[..n]);
        let (used, flow) = session.feed(pending, out);
        pending.drain(..used);
        if pending.is_empty() {
            *pending = Vec::new();
        }
        flow
    };
    if flow == Flow::Continue && pending.len() > MAX_PENDING {
        out.extend_from_slice(session.overflow_reply());
        return Ok(Some(Flow::Close));
    }
    Ok(Some(flow))
}
