//! The client against an in-process fake server on 127.0.0.1:0 that sends malformed or hostile
//! responses. Each test asserts the exact error (and its kind) and that nothing panics; the
//! well-behaved paths are covered against real Dovecot in `tests/imap.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;
use crate::proto::net::ConnectOptions;
use crate::proto::{ErrorKind, Secret};

const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] fake ready\r\n";

/// Starts a one-connection fake server running `script`; its result comes back through the
/// handle.
async fn serve<F, Fut, T>(script: F) -> (SocketAddr, JoinHandle<T>)
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
async fn read_line(stream: &mut TcpStream) -> String {
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

async fn client(addr: SocketAddr, limits: ImapLimits) -> ImapClient<TcpStream> {
    ImapClient::connect(addr, &ConnectOptions::default(), limits)
        .await
        .expect("greeting")
}

/// A server that greets, reads one command and answers with `reply`, then closes.
async fn one_reply(reply: &'static [u8]) -> (SocketAddr, JoinHandle<String>) {
    serve(move |mut s| async move {
        s.write_all(GREETING).await.unwrap();
        let line = read_line(&mut s).await;
        s.write_all(reply).await.unwrap();
        line
    })
    .await
}

fn assert_protocol(err: &ImapError, raw_part: &str) {
    match err {
        ImapError::Protocol { raw, .. } => assert!(raw.contains(raw_part), "raw {raw:?}"),
        other => panic!("expected Protocol error, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Protocol);
}

#[tokio::test]
async fn grammar_violations_are_protocol_errors_with_the_raw_line() {
    let cases: [(&'static [u8], &str); 5] = [
        (b"* 1 EXISTS\nA1 OK done\r\n", "* 1 EXISTS\\n"),
        (b"* 1 EXISTS \r\nA1 OK done\r\n", "* 1 EXISTS \\r\\n"),
        (b"* 0 FETCH (FLAGS ())\r\nA1 OK done\r\n", "* 0 FETCH"),
        (b"* 1 FETCH (UID 0)\r\nA1 OK done\r\n", "UID 0"),
        (b"A1 MAYBE done\r\n", "A1 MAYBE"),
    ];
    for (reply, raw) in cases {
        let (addr, server) = one_reply(reply).await;
        let mut imap = client(addr, ImapLimits::default()).await;
        let err = imap.noop().await.unwrap_err();
        assert_protocol(&err, raw);
        assert_eq!(imap.state(), SessionState::Broken);
        assert_eq!(server.await.unwrap(), "A1 NOOP");
        let again = imap.noop().await.unwrap_err();
        assert!(matches!(again, ImapError::Unusable { .. }), "{again:?}");
    }
}

#[tokio::test]
async fn unknown_tag_and_stray_continuation_are_protocol_errors() {
    let (addr, _server) = one_reply(b"B7 OK not yours\r\n").await;
    let err = client(addr, ImapLimits::default())
        .await
        .noop()
        .await
        .unwrap_err();
    assert_protocol(&err, "B7 OK");
    let (addr, _server) = one_reply(b"+ go ahead\r\n").await;
    let err = client(addr, ImapLimits::default())
        .await
        .noop()
        .await
        .unwrap_err();
    assert_protocol(&err, "+ go ahead");
}

#[tokio::test]
async fn greeting_bye_and_bad_greeting() {
    let (addr, _s) = serve(|mut s| async move {
        s.write_all(b"* BYE too busy\r\n").await.unwrap();
    })
    .await;
    let err = ImapClient::connect(addr, &ConnectOptions::default(), ImapLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ImapError::Bye { text } if text == "too busy"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Reset);

    let (addr, _s) = serve(|mut s| async move {
        s.write_all(b"* HELLO there\r\n").await.unwrap();
    })
    .await;
    let err = ImapClient::connect(addr, &ConnectOptions::default(), ImapLimits::default())
        .await
        .unwrap_err();
    assert_protocol(&err, "* HELLO there");
}

#[tokio::test]
async fn close_without_crlf_or_mid_literal_is_closed() {
    let (addr, _s) = one_reply(b"A1 OK done").await;
    let err = client(addr, ImapLimits::default())
        .await
        .noop()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImapError::Closed {
                during: "in the middle of a line"
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Reset);

    let (addr, _s) = one_reply(b"* 1 FETCH (BODY[] {100}\r\nabc").await;
    let err = client(addr, ImapLimits::default())
        .await
        .noop()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImapError::Closed {
                during: "in the middle of a literal"
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_literal_is_refused_before_reading_it() {
    let (addr, _s) = one_reply(b"* 1 FETCH (BODY[] {999999999}\r\n").await;
    let limits = ImapLimits {
        max_literal: 1 << 20,
        ..ImapLimits::default()
    };
    let mut imap = client(addr, limits).await;
    let set = SequenceSet::try_from("1").unwrap();
    let err = imap
        .fetch(&set, &[FetchItem::Rfc822Size])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImapError::LimitExceeded {
                what: "literal",
                limit: 1048576,
                actual: 999999999,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(imap.buffer_capacity() < 64 * 1024);
}

#[tokio::test]
async fn never_ending_line_stops_at_the_limit() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        read_line(&mut s).await;
        s.write_all(b"* OK ").await.unwrap();
        let chunk = [b'x'; 8192];
        let mut sent = 0usize;
        // Bounded: stop once the client hung up or after 16 MiB.
        while sent < 16 << 20 && s.write_all(&chunk).await.is_ok() {
            sent += chunk.len();
        }
        sent
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let err = imap.noop().await.unwrap_err();
    assert!(
        matches!(
            err,
            ImapError::LimitExceeded {
                what: "line",
                limit: 65536,
                ..
            }
        ),
        "{err:?}"
    );
    drop(imap);
    assert!(server.await.unwrap() < 16 << 20, "client kept reading");
}

#[tokio::test]
async fn literal_split_across_many_reads() {
    let body: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let expected = body.clone();
    let (addr, _s) = serve(move |mut s| async move {
        s.write_all(GREETING).await.unwrap();
        read_line(&mut s).await;
        let mut reply = format!("* 1 FETCH (UID 9 BODY[] {{{}}}\r\n", body.len()).into_bytes();
        reply.extend_from_slice(&body);
        reply.extend_from_slice(b")\r\nA1 OK done\r\n");
        for chunk in reply.chunks(7) {
            s.write_all(chunk).await.unwrap();
            s.flush().await.unwrap();
        }
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let set = SequenceSet::try_from("1").unwrap();
    let item = FetchItem::Body {
        part: BodyPart::Full,
        peek: true,
        partial: None,
    };
    let messages = imap.fetch(&set, &[item]).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].uid, Some(9));
    assert_eq!(messages[0].body().unwrap().as_ref(), &expected[..]);
}

/// The SELECT answer split at every byte boundary gives the same typed result.
#[tokio::test]
async fn response_split_at_every_byte() {
    const REPLY: &[u8] =
        b"* FLAGS (\\Answered \\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n\
* 3 EXISTS\r\n* 1 RECENT\r\n* OK [UIDVALIDITY 42] v\r\n* OK [UIDNEXT 7] n\r\n\
* 1 FETCH (FLAGS (\\Seen) BODY[HEADER.FIELDS (SUBJECT)] {9}\r\nSubj: x\r\n)\r\n\
A1 OK [READ-WRITE] done\r\n";
    for split in 1..REPLY.len() {
        let (addr, _s) = serve(move |mut s| async move {
            s.write_all(GREETING).await.unwrap();
            read_line(&mut s).await;
            s.write_all(&REPLY[..split]).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
            s.write_all(&REPLY[split..]).await.unwrap();
        })
        .await;
        let mut imap = client(addr, ImapLimits::default()).await;
        let info = imap.select("INBOX").await.unwrap();
        assert_eq!((info.exists, info.recent), (3, 1), "split {split}");
        assert_eq!((info.uid_validity, info.uid_next), (Some(42), Some(7)));
        assert_eq!(info.flags, vec![Flag::Answered, Flag::Seen]);
        assert!(!info.read_only);
        // The FETCH during SELECT was not asked for: it is an event.
        match imap.pop_event() {
            Some(MailboxEvent::Fetch(m)) => {
                assert_eq!(m.header_fields().unwrap().as_ref(), b"Subj: x\r\n");
                assert!(m.has_flag(&Flag::Seen));
            }
            other => panic!("split {split}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn bye_in_the_middle_of_a_command() {
    let (addr, _s) = one_reply(b"* 1 FETCH (UID 1)\r\n* BYE server shutting down\r\n").await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let set = SequenceSet::try_from("1:*").unwrap();
    let err = imap.fetch(&set, &[FetchItem::Uid]).await.unwrap_err();
    assert!(
        matches!(&err, ImapError::Bye { text } if text == "server shutting down"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Reset);
    assert_eq!(imap.state(), SessionState::LoggedOut);
}

#[tokio::test]
async fn command_deadline_then_unusable() {
    let (addr, _s) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        read_line(&mut s).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    imap.set_command_timeout(Duration::from_millis(200));
    let err = imap.noop().await.unwrap_err();
    assert!(
        matches!(
            err,
            ImapError::Timeout {
                command: "NOOP",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(matches!(imap.noop().await, Err(ImapError::Unusable { .. })));
}

#[tokio::test]
async fn cancelled_command_poisons_the_session() {
    let (addr, _s) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        read_line(&mut s).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let cancelled = tokio::time::timeout(Duration::from_millis(100), imap.noop()).await;
    assert!(cancelled.is_err());
    let err = imap.noop().await.unwrap_err();
    assert!(matches!(err, ImapError::Unusable { .. }), "{err:?}");
    assert_eq!(imap.state(), SessionState::Broken);
}

#[tokio::test]
async fn buffer_shrinks_after_a_large_fetch() {
    const SIZE: usize = 1 << 20;
    let (addr, _s) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        read_line(&mut s).await;
        let mut reply = format!("* 1 FETCH (BODY[] {{{SIZE}}}\r\n").into_bytes();
        reply.resize(reply.len() + SIZE, b'z');
        reply.extend_from_slice(b")\r\nA1 OK done\r\n");
        s.write_all(&reply).await.unwrap();
        read_line(&mut s).await;
        s.write_all(b"A2 OK done\r\n").await.unwrap();
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let set = SequenceSet::try_from("1").unwrap();
    let item = FetchItem::Body {
        part: BodyPart::Full,
        peek: false,
        partial: None,
    };
    let messages = imap.fetch(&set, &[item]).await.unwrap();
    assert_eq!(messages[0].body().unwrap().len(), SIZE);
    drop(messages);
    assert_eq!(imap.buffer_capacity(), 0);
    imap.noop().await.unwrap();
    assert_eq!(imap.buffer_capacity(), 0);
    assert!(imap.heap_bytes() < 1024, "{}", imap.heap_bytes());
}

#[tokio::test]
async fn authenticate_plain_without_sasl_ir_and_redaction() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n")
            .await
            .unwrap();
        let command = read_line(&mut s).await;
        s.write_all(b"+ \r\n").await.unwrap();
        let data = read_line(&mut s).await;
        s.write_all(b"A1 OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] in\r\n")
            .await
            .unwrap();
        (command, data)
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    imap.enable_transcript(16);
    imap.login("alice", &Secret::from("hunter2")).await.unwrap();
    assert_eq!(imap.state(), SessionState::Authenticated);
    assert!(imap.capabilities().has(Cap::Idle));
    assert!(imap.capabilities().has(Cap::LiteralPlus));
    let (command, data) = server.await.unwrap();
    assert_eq!(command, "A1 AUTHENTICATE PLAIN");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(decoded, b"\0alice\0hunter2");
    let transcript = imap.transcript();
    assert!(transcript
        .iter()
        .all(|e| !String::from_utf8_lossy(&e.bytes).contains("aHVudGVy")));
}

#[tokio::test]
async fn failed_login_is_auth_and_never_shows_the_password() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(b"* OK [CAPABILITY IMAP4rev1] hi\r\n")
            .await
            .unwrap();
        let line = read_line(&mut s).await;
        s.write_all(b"A1 NO [AUTHENTICATIONFAILED] wrong: hunter 2\"x\r\n")
            .await
            .unwrap();
        line
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let err = imap
        .login("bob smith", &Secret::from("hunter 2\"x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(!err.is_fatal());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter 2"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    // No AUTH=PLAIN announced: LOGIN, with both arguments quoted.
    assert_eq!(
        server.await.unwrap(),
        "A1 LOGIN \"bob smith\" \"hunter 2\\\"x\""
    );
}

#[tokio::test]
async fn append_waits_for_continuation_without_literal_plus() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        let line = read_line(&mut s).await;
        s.write_all(b"+ OK\r\n").await.unwrap();
        let mut data = [0u8; 7];
        s.read_exact(&mut data).await.unwrap();
        s.write_all(b"* 4 EXISTS\r\nA1 OK [APPENDUID 7 3] done\r\n")
            .await
            .unwrap();
        (line, data)
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let uid = imap
        .append("INBOX", &[Flag::Seen], None, b"hello")
        .await
        .unwrap();
    assert_eq!(
        uid,
        Some(AppendUid {
            uid_validity: 7,
            uid: 3
        })
    );
    let (line, data) = server.await.unwrap();
    assert_eq!(line, "A1 APPEND INBOX (\\Seen) {5}");
    assert_eq!(&data, b"hello\r\n");
    assert_eq!(imap.drain_events(), vec![MailboxEvent::Exists(4)]);
    assert_eq!(imap.mailbox().exists(), 4);
}

#[tokio::test]
async fn append_rejected_before_the_literal() {
    let (addr, _s) = one_reply(b"A1 NO [TRYCREATE] no such mailbox\r\n").await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let err = imap.append("Nope", &[], None, b"x").await.unwrap_err();
    assert!(
        matches!(&err, ImapError::No { command: "APPEND", text } if text.starts_with("[TRYCREATE]")),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(imap.state(), SessionState::NotAuthenticated);
}

#[tokio::test]
async fn unsolicited_responses_are_tracked() {
    let (addr, _s) = one_reply(
        b"* 5 EXISTS\r\n* 2 RECENT\r\n* 3 EXPUNGE\r\n* 1 FETCH (FLAGS (\\Deleted) UID 11)\r\n\
* OK see {5}\r\nA1 OK done\r\n",
    )
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    imap.noop().await.unwrap();
    assert_eq!(imap.mailbox().exists(), 4);
    assert_eq!(imap.mailbox().recent(), 2);
    let events = imap.drain_events();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[..3],
        [
            MailboxEvent::Exists(5),
            MailboxEvent::Recent(2),
            MailboxEvent::Expunge(3)
        ]
    );
    match &events[3] {
        MailboxEvent::Fetch(m) => {
            assert_eq!((m.seq, m.uid), (1, Some(11)));
            assert!(m.has_flag(&Flag::Deleted));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn idle_events_keepalives_and_done() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        let idle = read_line(&mut s).await;
        s.write_all(b"+ idling\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(b"* OK Still here\r\n* 2 EXISTS\r\n")
            .await
            .unwrap();
        let done = read_line(&mut s).await;
        s.write_all(b"* 1 EXPUNGE\r\nA1 OK Idle completed\r\n")
            .await
            .unwrap();
        (idle, done)
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    imap.idle().await.unwrap();
    assert_eq!(imap.state(), SessionState::Idle);
    assert!(matches!(imap.noop().await, Err(ImapError::WrongState(_))));
    // Nothing yet: the wait times out with None and holds no buffer meanwhile.
    let none = imap
        .wait_for_event(Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(imap.buffer_capacity(), 0);
    let event = imap.wait_for_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(event, Some(MailboxEvent::Exists(2)));
    imap.done().await.unwrap();
    assert_eq!(imap.state(), SessionState::NotAuthenticated);
    assert_eq!(imap.drain_events(), vec![MailboxEvent::Expunge(1)]);
    assert_eq!(imap.mailbox().exists(), 1);
    assert_eq!(
        server.await.unwrap(),
        ("A1 IDLE".to_owned(), "DONE".to_owned())
    );
}

#[tokio::test]
async fn logout_needs_bye_and_accepts_close_after_it() {
    let (addr, _s) = one_reply(b"* BYE bye\r\n").await;
    let mut imap = client(addr, ImapLimits::default()).await;
    imap.logout().await.unwrap();
    assert_eq!(imap.state(), SessionState::LoggedOut);
    assert!(matches!(imap.noop().await, Err(ImapError::Unusable { .. })));

    let (addr, _s) = one_reply(b"A1 OK bye\r\n").await;
    let err = client(addr, ImapLimits::default())
        .await
        .logout()
        .await
        .unwrap_err();
    assert_protocol(&err, "A1 OK bye");
}

#[tokio::test]
async fn execute_raw_returns_exact_bytes_and_no_is_a_result() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        let first = read_line(&mut s).await;
        s.write_all(b"+ go\r\n").await.unwrap();
        let mut data = [0u8; 5];
        s.read_exact(&mut data).await.unwrap();
        s.write_all(b"* 1 EXISTS\r\nA1 NO [OVERQUOTA] full\r\n")
            .await
            .unwrap();
        (first, data)
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    let exchange = imap.execute_raw(b"APPEND INBOX {3}\r\nabc").await.unwrap();
    assert_eq!(exchange.responses.len(), 2);
    assert_eq!(&exchange.responses[0].raw[..], b"+ go\r\n");
    assert_eq!(&exchange.responses[1].raw[..], b"* 1 EXISTS\r\n");
    assert_eq!(&exchange.completion.raw[..], b"A1 NO [OVERQUOTA] full\r\n");
    assert_eq!(
        exchange.status(),
        Some(imap_types::response::StatusKind::No)
    );
    assert_eq!(imap.mailbox().exists(), 1);
    assert!(imap.drain_events().is_empty());
    let (first, data) = server.await.unwrap();
    assert_eq!(first, "A1 APPEND INBOX {3}");
    assert_eq!(&data, b"abc\r\n");
}
