//! A loopback proxy that rewrites what a real server says, line by line, to give the
//! conformance suite a server with one specific fault. Client→server bytes pass unchanged;
//! server→client lines (CRLF-terminated, IMAP literal data passed through untouched) go
//! through the mutation, which returns what to send instead: the line itself, a changed line,
//! several lines, or nothing. After a STARTTLS go-ahead the rest is relayed untouched (TLS).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// Rewrites one server line (with its CRLF); one per connection, so it may keep state.
pub type LineRewriter = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// Makes the rewriter for each new connection.
pub type Mutation = fn() -> LineRewriter;

pub struct MutationProxy {
    pub addr: SocketAddr,
    _runtime: Runtime,
}

impl MutationProxy {
    pub fn start(upstream: SocketAddr, mutation: Mutation) -> MutationProxy {
        assert!(upstream.ip().is_loopback());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = relay(client, upstream, mutation()).await;
                });
            }
        });
        MutationProxy {
            addr,
            _runtime: runtime,
        }
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mut mutation: LineRewriter,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let mut pending: Vec<u8> = Vec::new();
        let mut literal_left = 0usize;
        let mut passthrough = false;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if passthrough {
                if client_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                continue;
            }
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            loop {
                if literal_left > 0 {
                    let take = literal_left.min(pending.len());
                    out.extend(pending.drain(..take));
                    literal_left -= take;
                    if literal_left > 0 {
                        break;
                    }
                }
                let Some(end) = pending.windows(2).position(|w| w == b"\r\n") else {
                    break;
                };
                let line: Vec<u8> = pending.drain(..end + 2).collect();
                literal_left = literal_length(&line);
                out.extend(mutation(&line));
                let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
                if text.contains("start tls") || text.contains("begin tls") {
                    passthrough = true;
                    out.append(&mut pending);
                    break;
                }
            }
            if client_write.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
    Ok(())
}

/// `{N}` at the end of a line announces N bytes of literal data.
fn literal_length(line: &[u8]) -> usize {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let Some(body) = line.strip_suffix(b"}") else {
        return 0;
    };
    let Some(open) = body.iter().rposition(|&b| b == b'{') else {
        return 0;
    };
    std::str::from_utf8(&body[open + 1..])
        .ok()
        .and_then(|n| n.trim_end_matches('+').parse().ok())
        .unwrap_or(0)
}

/// Replaces `from` with `to` in a line.
pub fn replace(line: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8_lossy(line).replace(from, to).into_bytes()
}
