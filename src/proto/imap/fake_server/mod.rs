//! The client against an in-process fake server on 127.0.0.1:0: `hostile` feeds malformed or
//! hostile responses and asserts the exact error (and its kind) and that nothing panics;
//! `flows` checks exact wire bytes of flows Dovecot cannot show (AUTHENTICATE without SASL-IR,
//! synchronizing literals, IDLE keep-alives). The well-behaved paths are covered against real
//! Dovecot in `tests/imap.rs`.

mod flows;
mod hostile;

use std::future::Future;
use std::net::SocketAddr;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;
use crate::proto::net::ConnectOptions;
use crate::proto::{ErrorKind, Secret};

pub(super) const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] fake ready\r\n";

/// Starts a one-connection fake server running `script`; its result comes back through the
/// handle.
pub(super) async fn serve<F, Fut, T>(script: F) -> (SocketAddr, JoinHandle<T>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        script(stream).await
    });
    (addr, handle)
}

/// Reads one command line from the client (without CRLF).
pub(super) async fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        line.push(byte[0]);
    }
    line.truncate(line.len().saturating_sub(2));
    String::from_utf8(line).unwrap()
}

pub(super) async fn client(addr: SocketAddr, limits: ImapLimits) -> ImapClient<TcpStream> {
    ImapClient::connect(addr, &ConnectOptions::default(), limits)
        .await
        .expect("greeting")
}

/// A server that greets, reads one command and answers with `reply`, then closes.
pub(super) async fn one_reply(reply: &'static [u8]) -> (SocketAddr, JoinHandle<String>) {
    serve(move |mut s| async move {
        s.write_all(GREETING).await.unwrap();
        let line = read_line(&mut s).await;
        s.write_all(reply).await.unwrap();
        line
    })
    .await
}

pub(super) fn assert_protocol(err: &ImapError, raw_part: &str) {
    match err {
        ImapError::Protocol { raw, .. } => assert!(raw.contains(raw_part), "raw {raw:?}"),
        other => panic!("expected Protocol error, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Protocol);
}
