//! Malformed and hostile responses.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::*;

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

/// A server that renumbers behind the client's back: EXISTS shrinking without EXPUNGE, an
/// EXPUNGE beyond the last message, an EXPUNGE in the middle of a FETCH answer. Each is
/// counted once, the session stays usable, and taking the counts resets them.
#[tokio::test]
async fn sequence_rule_breaches_are_counted() {
    let (addr, server) = serve(|mut s| async move {
        s.write_all(GREETING).await.unwrap();
        let select = read_line(&mut s).await;
        s.write_all(
            b"* 5 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 9] ok\r\nA1 OK [READ-WRITE] done\r\n",
        )
        .await
        .unwrap();
        let noop = read_line(&mut s).await;
        s.write_all(b"* 3 EXISTS\r\n* 9 EXPUNGE\r\nA2 OK done\r\n")
            .await
            .unwrap();
        let fetch = read_line(&mut s).await;
        s.write_all(b"* 1 FETCH (FLAGS ())\r\n* 2 EXPUNGE\r\nA3 OK done\r\n")
            .await
            .unwrap();
        let uid_fetch = read_line(&mut s).await;
        s.write_all(b"* 1 EXPUNGE\r\nA4 OK done\r\n").await.unwrap();
        (select, noop, fetch, uid_fetch)
    })
    .await;
    let mut imap = client(addr, ImapLimits::default()).await;
    imap.select("INBOX").await.unwrap();
    assert!(imap.take_sequence_violations().is_empty());
    imap.noop().await.unwrap();
    let seen = imap.take_sequence_violations();
    assert_eq!(seen.exists_decreased, 1);
    assert_eq!(seen.expunge_out_of_range, 1);
    assert_eq!(seen.expunge_during_fetch_store_search, 0);
    let one = SequenceSet::try_from(1u32).unwrap();
    imap.fetch(&one, &[FetchItem::Flags]).await.unwrap();
    let seen = imap.take_sequence_violations();
    assert_eq!(seen.expunge_during_fetch_store_search, 1);
    assert_eq!(seen.exists_decreased + seen.expunge_out_of_range, 0);
    // UID FETCH may carry EXPUNGE (RFC 9051 7.5.1).
    imap.uid_fetch(&one, &[FetchItem::Flags]).await.unwrap();
    assert!(imap.take_sequence_violations().is_empty());
    let (select, noop, fetch, uid_fetch) = server.await.unwrap();
    assert!(select.starts_with("A1 SELECT"), "{select}");
    assert_eq!(noop, "A2 NOOP");
    assert!(fetch.starts_with("A3 FETCH 1"), "{fetch}");
    assert!(uid_fetch.starts_with("A4 UID FETCH 1"), "{uid_fetch}");
}
