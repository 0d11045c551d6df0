//! Exact wire bytes of login, literal, IDLE, LOGOUT and raw flows.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::*;

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

#[tokio::test]
async fn login_asks_for_capabilities_when_the_greeting_has_none() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(b"* OK Waiting for authentication process to respond..\r\n")
            .await
            .unwrap();
        let first = read_line(&mut s).await;
        s.write_all(b"* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\nA1 OK done\r\n")
            .await
            .unwrap();
        let second = read_line(&mut s).await;
        s.write_all(b"A2 OK logged in\r\n").await.unwrap();
        (first, second)
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    assert!(imap.capabilities().is_empty());
    imap.login("carol", &Secret::from("pw")).await.unwrap();
    let (first, second) = server.await.unwrap();
    assert_eq!(first, "A1 CAPABILITY");
    let blob = base64::engine::general_purpose::STANDARD.encode(b"\0carol\0pw");
    assert_eq!(second, format!("A2 AUTHENTICATE PLAIN {blob}"));
}
