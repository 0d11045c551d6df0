//! A TCP proxy on 127.0.0.1 that holds back every server→client chunk for a fixed time.
//!
//! It exists to prove the gate works end to end: put it in front of a real lab server, run the
//! scenario through it, and a latency threshold or baseline that passed must now fail. Each
//! chunk is delayed from the moment it arrived (a link delay, not a queue of sleeps), so a
//! response split over several reads costs the delay once, not once per read.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use mailswarm::gate::latency_proxy::LatencyProxy;
//!
//! // The lab's IMAP port, slowed by 20 ms per response; point the scenario's
//! // `target.imap` at `proxy.local_addr()`.
//! let proxy = LatencyProxy::start("127.0.0.1:10143".parse().unwrap(), Duration::from_millis(20)).await?;
//! println!("imap via {}", proxy.local_addr());
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Chunks in flight per connection before the server side stops reading (backpressure).
const IN_FLIGHT: usize = 64;
const CHUNK: usize = 16 * 1024;

/// A running proxy. Dropping it closes the listener and every relayed connection.
#[derive(Debug)]
pub struct LatencyProxy {
    local_addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl LatencyProxy {
    /// Listens on `127.0.0.1:0` and relays each connection to `upstream`, which must be a
    /// loopback address: this tool never sends traffic anywhere else.
    pub async fn start(upstream: SocketAddr, delay: Duration) -> io::Result<LatencyProxy> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("latency proxy upstream {upstream} is not a loopback address"),
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let accept_task = tokio::spawn(accept_loop(listener, upstream, delay));
        Ok(LatencyProxy {
            local_addr,
            accept_task,
        })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        // The connection tasks live in the accept task's JoinSet and are aborted with it.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, delay: Duration) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(async move {
                        // A failed relay ends that connection only.
                        let _ = relay(client, upstream, delay).await;
                    });
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, delay: Duration) -> io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();

    let upward = async {
        tokio::io::copy(&mut client_read, &mut server_write).await?;
        server_write.shutdown().await
    };

    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let read_server = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = server_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    };
    let write_client = async {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            client_write.write_all(&chunk).await?;
        }
        client_write.shutdown().await
    };
    let (up, down_read, down_write) = tokio::join!(upward, read_server, write_client);
    up.and(down_read).and(down_write)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback that serves `connections` clients, then stops.
    async fn echo_server(connections: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..connections {
                let (mut sock, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = sock.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn echo_through_the_proxy_takes_at_least_the_delay() {
        let delay = Duration::from_millis(80);
        let proxy = LatencyProxy::start(echo_server(1).await, delay)
            .await
            .unwrap();
        let mut sock = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let started = Instant::now();
        sock.write_all(b"a1 NOOP\r\n").await.unwrap();
        let mut reply = [0u8; 9];
        tokio::time::timeout(Duration::from_secs(10), sock.read_exact(&mut reply))
            .await
            .expect("echo within 10 s")
            .unwrap();
        let took = started.elapsed();
        assert_eq!(&reply, b"a1 NOOP\r\n");
        assert!(took >= delay, "echo took {took:?}, delay is {delay:?}");
    }

    #[tokio::test]
    async fn large_transfers_arrive_intact_and_in_order() {
        let proxy = LatencyProxy::start(echo_server(1).await, Duration::from_millis(5))
            .await
            .unwrap();
        let sock = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let (mut r, mut w) = sock.into_split();
        let payload: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut got))
            .await
            .expect("transfer within 30 s")
            .unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), payload.len());
        assert!(got == payload, "bytes changed on the way");
    }

    #[tokio::test]
    async fn refuses_non_loopback_upstreams() {
        let err = LatencyProxy::start("192.0.2.1:143".parse().unwrap(), Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not a loopback"));
    }

    #[tokio::test]
    async fn dropping_the_proxy_stops_listening() {
        let proxy = LatencyProxy::start(echo_server(0).await, Duration::ZERO)
            .await
            .unwrap();
        let addr = proxy.local_addr();
        drop(proxy);
        // Abort is asynchronous; give the runtime a moment to drop the listener.
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "proxy still accepting after drop");
    }
}
