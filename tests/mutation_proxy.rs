//! A loopback proxy that rewrites what a real server says, line by line, to give the
//! conformance suite a server with one specific fault. Client→server bytes pass unchanged;
//! server→client lines (CRLF-terminated, IMAP literal data passed through untouched) go
//! through the mutation, which returns what to send instead: the line itself, a changed line,
//! several lines, or nothing. After a STARTTLS go-ahead the rest is relayed untouched (TLS).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// Rewrites one server line (with its CRLF); one per connection, so it may keep state.
pub type LineRewriter = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// The last complete line the client sent on this connection (for mutations that depend on
/// the command being answered).
pub type LastCommand = Arc<Mutex<String>>;

/// Makes the rewriter for each new connection.
pub type Mutation = fn(LastCommand) -> LineRewriter;

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
                    let last = LastCommand::default();
                    let _ = relay(client, upstream, mutation(last.clone()), last).await;
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
    last: LastCommand,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut line = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                line.push(b);
                if line.ends_with(b"\r\n") {
                    *last.lock().unwrap() = String::from_utf8_lossy(&line).trim_end().to_string();
                    line.clear();
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
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

/// Applies `f` to the number right after each occurrence of `key` in a line.
pub fn map_number_after(line: &[u8], key: &str, f: fn(u64) -> u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let mut out = String::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find(key) {
        let (head, tail) = rest.split_at(at + key.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        match tail[..digits].parse::<u64>() {
            Ok(n) => out.push_str(&f(n).to_string()),
            Err(_) => out.push_str(&tail[..digits]),
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out.into_bytes()
}
