//! The sink over real sockets: exact reply bytes, every IMAP response through imap-codec's
//! strict decoder (the same strictness as the client), mailswarm's own IMAP client against
//! it, and hundreds of concurrent connections in a bounded test.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use imap_codec::decode::{Decoder, GreetingDecodeError, ResponseDecodeError};
use imap_codec::{GreetingCodec, ResponseCodec};
use imap_types::response::{Response, Status, StatusKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::*;

const GREETING: &str =
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR IDLE AUTH=PLAIN] mailswarm sink ready (benchmark fixture)\r\n";

/// Starts a sink on ephemeral loopback ports; it stops when the token is dropped... or
/// cancelled, which the guard does.
struct Running {
    imap: SocketAddr,
    lmtp: SocketAddr,
    stats: Arc<SinkStats>,
    size: usize,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(messages: u32) -> Running {
    let config = SinkConfig {
        imap: Some("127.0.0.1:0".parse().unwrap()),
        lmtp: Some("127.0.0.1:0".parse().unwrap()),
        messages,
        body_bytes: 300,
        ..SinkConfig::default()
    };
    let sink = Sink::bind(&config).await.expect("bind");
    let stop = CancellationToken::new();
    let running = Running {
        imap: sink.imap_addr().unwrap(),
        lmtp: sink.lmtp_addr().unwrap(),
        stats: sink.stats(),
        size: sink.message_size(),
        stop: stop.clone(),
    };
    tokio::spawn(sink.serve(stop));
    running
}

/// A raw IMAP connection that frames and checks responses with the strict decoder.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> (Raw, String) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        loop {
            match GreetingCodec::default().decode(&raw.buf) {
                Ok((rest, _)) => {
                    let len = raw.buf.len() - rest.len();
                    let greeting = String::from_utf8(raw.buf.drain(..len).collect()).unwrap();
                    return (raw, greeting);
                }
                Err(GreetingDecodeError::Incomplete) => raw.read_more().await,
                Err(err) => panic!("greeting does not decode ({err:?}): {:?}", raw.text()),
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("the sink answers within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed; unread {:?}", self.text());
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Decodes the next response; returns its raw text and whether it is the tagged
    /// completion (or a continuation request, which also ends a client's wait).
    async fn next_response(&mut self) -> (String, Option<StatusKind>, bool) {
        loop {
            match ResponseCodec::default().decode(&self.buf) {
                Ok((rest, response)) => {
                    let (kind, cont) = match &response {
                        Response::Status(Status::Tagged(t)) => (Some(t.body.kind), false),
                        Response::CommandContinuationRequest(_) => (None, true),
                        _ => (None, false),
                    };
                    let len = self.buf.len() - rest.len();
                    let raw = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
                    return (raw, kind, cont);
                }
                Err(ResponseDecodeError::Incomplete | ResponseDecodeError::LiteralFound { .. }) => {
                    self.read_more().await
                }
                Err(ResponseDecodeError::Failed) => {
                    panic!("response does not decode strictly: {:?}", self.text())
                }
            }
        }
    }

    /// Sends `command` (CRLF added) and returns everything up to the tagged completion or a
    /// continuation request, with the completion's status.
    async fn exchange(&mut self, command: &str) -> (String, Option<StatusKind>) {
        self.send(command).await;
        let mut all = String::new();
        loop {
            let (raw, kind, cont) = self.next_response().await;
            all += &raw;
            if kind.is_some() || cont {
                return (all, kind);
            }
        }
    }

    async fn send(&mut self, command: &str) {
        self.stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn login_select_noop_logout_have_exact_replies() {
    let sink = start(3).await;
    let (mut c, greeting) = Raw::connect(sink.imap).await;
    assert_eq!(greeting, GREETING);
    let cases = [
        (
            "a CAPABILITY",
            "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR IDLE AUTH=PLAIN\r\na OK CAPABILITY completed\r\n",
        ),
        ("b NOOP", "b OK NOOP completed\r\n"),
        ("c SELECT INBOX", "c BAD log in first\r\n"),
        ("d LOGIN user1 secret", "d OK LOGIN completed\r\n"),
        (
            "e SELECT INBOX",
            "* 3 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
             * OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT 4] Predicted next UID\r\n\
             e OK [READ-WRITE] SELECT completed\r\n",
        ),
        (
            "f UID FETCH 2:* (FLAGS RFC822.SIZE)",
            &format!(
                "* 2 FETCH (UID 2 FLAGS () RFC822.SIZE {0})\r\n\
                 * 3 FETCH (UID 3 FLAGS () RFC822.SIZE {0})\r\nf OK FETCH completed\r\n",
                sink.size
            ),
        ),
        ("g SEARCH 2:3", "* SEARCH 2 3\r\ng OK SEARCH completed\r\n"),
        ("h STORE 1 +FLAGS.SILENT (\\Seen)", "h OK STORE completed\r\n"),
        ("i IDLE", "+ idling\r\n"),
        ("DONE", "i OK IDLE terminated\r\n"),
        ("j LOGOUT", "* BYE logging out\r\nj OK LOGOUT completed\r\n"),
    ];
    for (command, expected) in cases {
        let (got, _) = c.exchange(command).await;
        assert_eq!(got, expected, "reply to {command}");
    }
    let mut rest = Vec::new();
    c.stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "closed after LOGOUT");
}

#[tokio::test]
async fn every_supported_command_decodes_strictly_and_completes_ok() {
    let sink = start(5).await;
    let (mut c, _) = Raw::connect(sink.imap).await;
    let plain = base64::engine::general_purpose::STANDARD.encode(b"\0user\0pass");
    let commands = [
        format!("a1 AUTHENTICATE PLAIN {plain}"),
        "a2 LIST \"\" \"*\"".into(),
        "a3 LIST \"\" \"\"".into(),
        "a4 EXAMINE INBOX".into(),
        "a5 SELECT \"Other box\"".into(),
        "a6 FETCH 1:3 ALL".into(),
        "a7 FETCH 1 FULL".into(),
        "a8 UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE INTERNALDATE)".into(),
        "a9 FETCH 2 (BODY[] BODY.PEEK[HEADER] BODY[TEXT]<10.20> BODY[1])".into(),
        "b1 UID FETCH 4 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT Message-ID)])".into(),
        "b2 FETCH 5 (BODY[HEADER.FIELDS.NOT (FROM)] RFC822 RFC822.HEADER RFC822.TEXT)".into(),
        "b3 FETCH * BODY.PEEK[]<100000.10>".into(),
        "b4 STORE 1:2 +FLAGS (\\Seen $Label1)".into(),
        "b5 UID STORE 3 FLAGS (\\Flagged)".into(),
        "b6 STORE 4 -FLAGS \\Deleted".into(),
        "b7 SEARCH ALL".into(),
        "b8 UID SEARCH UID 4:*".into(),
        "b9 UID SEARCH UNSEEN".into(),
        "c1 NOOP".into(),
        "c2 CHECK".into(),
        "c3 EXPUNGE".into(),
        "c4 CLOSE".into(),
    ];
    for command in &commands {
        let (got, kind) = c.exchange(command).await;
        assert_eq!(kind, Some(StatusKind::Ok), "{command} -> {got}");
    }
    let (idle, _) = c.exchange("c5 IDLE").await;
    assert_eq!(idle, "+ idling\r\n");
    assert_eq!(c.exchange("done").await.1, Some(StatusKind::Ok));
    let (bye, kind) = c.exchange("c6 LOGOUT").await;
    assert_eq!(
        (bye.as_str(), kind),
        (
            "* BYE logging out\r\nc6 OK LOGOUT completed\r\n",
            Some(StatusKind::Ok)
        )
    );
}

#[tokio::test]
async fn sections_hold_the_requested_bytes() {
    let sink = start(1).await;
    let (mut c, _) = Raw::connect(sink.imap).await;
    c.exchange("a LOGIN u p").await;
    c.exchange("b SELECT INBOX").await;
    let (got, _) = c
        .exchange("c FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject)] BODY[]<0.9>)")
        .await;
    assert_eq!(
        got,
        "* 1 FETCH (BODY[HEADER.FIELDS (subject)] {43}\r\nSubject: mailswarm sink fixture message\r\n\r\n \
         BODY[]<0> {9}\r\nReturn-Pa)\r\nc OK FETCH completed\r\n"
    );
}

#[tokio::test]
async fn literals_and_sasl_continuations_work_both_ways() {
    let sink = start(1).await;
    let (mut c, _) = Raw::connect(sink.imap).await;
    // Synchronizing literal: the sink asks for it with `+`.
    let (cont, _) = c.exchange("a LOGIN {5}").await;
    assert_eq!(cont, "+ Ready for literal data\r\n");
    // ...then a non-synchronizing one, sent without waiting.
    assert_eq!(
        c.exchange("user1 {4+}\r\npass").await.0,
        "a OK LOGIN completed\r\n"
    );
    let (appended, _) = c
        .exchange("b APPEND INBOX (\\Seen) {12+}\r\nHello\r\nWorld")
        .await;
    assert_eq!(appended, "b OK APPEND completed (message discarded)\r\n");

    let (mut d, _) = Raw::connect(sink.imap).await;
    assert_eq!(d.exchange("x AUTHENTICATE PLAIN").await.0, "+ \r\n");
    assert_eq!(
        d.exchange("AHVAcA==").await.0,
        "x OK AUTHENTICATE completed\r\n"
    );
    let (mut e, _) = Raw::connect(sink.imap).await;
    e.exchange("y AUTHENTICATE PLAIN").await;
    assert_eq!(e.exchange("*").await.0, "y BAD AUTHENTICATE cancelled\r\n");
    assert_eq!(
        e.exchange("z SELECT INBOX").await.0,
        "z BAD log in first\r\n"
    );
}

#[tokio::test]
async fn bad_commands_get_bad_and_the_connection_goes_on() {
    let sink = start(2).await;
    let (mut c, _) = Raw::connect(sink.imap).await;
    c.exchange("a LOGIN u p").await;
    let cases = [
        ("b FETCH 1 FLAGS", "b BAD select a mailbox first\r\n"),
        ("c SELECT INBOX", ""),
        ("d FETCH 3 FLAGS", "d BAD no such message\r\n"),
        (
            "e FETCH 1 (FLAGS NONSENSE)",
            "e BAD unknown fetch attribute\r\n",
        ),
        ("f FROBNICATE", "f BAD unknown command\r\n"),
        ("g UID EXPUNGE 1", "g BAD unknown UID command\r\n"),
        ("h LOGIN u p", "h BAD already logged in\r\n"),
        ("i STORE 1 FLAGS (\\Recent)", "i BAD invalid flag\r\n"),
        ("j AUTHENTICATE GSSAPI", "j BAD already logged in\r\n"),
    ];
    for (command, expected) in cases {
        let (got, _) = c.exchange(command).await;
        if !expected.is_empty() {
            assert_eq!(got, expected, "reply to {command}");
        }
    }
    c.send("+bad NOOP").await;
    assert_eq!(c.next_response().await.0, "* BAD invalid tag\r\n");
    c.exchange("k EXAMINE INBOX").await;
    assert_eq!(
        c.exchange("l STORE 1 FLAGS (\\Seen)").await.0,
        "l NO mailbox is read-only\r\n"
    );
}

#[tokio::test]
async fn an_endless_line_is_cut_off() {
    let sink = start(1).await;
    let (mut c, _) = Raw::connect(sink.imap).await;
    let junk = vec![b'x'; conn::MAX_PENDING + 20_000];
    c.stream.write_all(&junk).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"* BYE command line too long\r\n");
}

#[tokio::test]
async fn lmtp_answers_once_per_recipient_even_pipelined() {
    let sink = start(1).await;
    let mut s = TcpStream::connect(sink.lmtp).await.unwrap();
    s.write_all(
        b"LHLO client\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n\
          Subject: hi\r\n\r\n..dot\r\n.\r\nRSET\r\nRCPT TO:<d@x>\r\nDATA\r\nNOOP\r\nQUIT\r\n",
    )
    .await
    .unwrap();
    let mut got = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut got))
        .await
        .unwrap()
        .unwrap();
    let saved = "250 2.0.0 Ok: saved (discarded by the sink)\r\n";
    assert_eq!(
        got,
        format!(
            "220 sink.mailswarm.test LMTP mailswarm sink (benchmark fixture)\r\n\
             250-sink.mailswarm.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n\
             250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
             354 2.0.0 end data with <CR><LF>.<CR><LF>\r\n{saved}{saved}\
             250 2.0.0 Ok\r\n503 5.5.1 need MAIL first\r\n503 5.5.1 no valid recipients\r\n\
             250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
        )
    );
}

#[tokio::test]
async fn mailswarms_imap_client_runs_a_whole_session() {
    use crate::proto::imap::{BodyPart, FetchItem, ImapClient, ImapLimits, SequenceSet};
    use crate::proto::net::ConnectOptions;
    use crate::proto::Secret;

    let sink = start(10).await;
    let mut client =
        ImapClient::connect(sink.imap, &ConnectOptions::default(), ImapLimits::default())
            .await
            .unwrap();
    client.login("user1", &Secret::from("pw")).await.unwrap();
    let info = client.select("INBOX").await.unwrap();
    assert_eq!(
        (info.exists, info.uid_validity, info.uid_next),
        (10, Some(1), Some(11))
    );
    let set = SequenceSet::try_from("9:*").unwrap();
    let items = [
        FetchItem::Uid,
        FetchItem::Flags,
        FetchItem::Rfc822Size,
        FetchItem::Envelope,
        FetchItem::Body {
            part: BodyPart::Full,
            peek: true,
            partial: None,
        },
    ];
    let fetched = client.uid_fetch(&set, &items).await.unwrap();
    assert_eq!(fetched.len(), 2);
    assert_eq!(fetched[1].uid, Some(10));
    assert_eq!(fetched[1].rfc822_size, Some(sink.size as u32));
    assert_eq!(fetched[1].body().map(|b| b.len()), Some(sink.size));
    client.noop().await.unwrap();
    client.idle().await.unwrap();
    let event = client
        .wait_for_event(Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(event, None, "the sink pushes nothing");
    client.done().await.unwrap();
    client.logout().await.unwrap();
}

/// Bounded: 500 connections, each logged in and idling at once, then all logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_connections_idle_at_once() {
    const CONNECTIONS: usize = 500;
    let _ = raise_open_files_limit();
    let sink = start(1).await;
    let addr = sink.imap;
    let ready = Arc::new(tokio::sync::Barrier::new(CONNECTIONS + 1));
    let release = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let (ready, release) = (ready.clone(), release.clone());
        tasks.spawn(async move {
            let (mut c, _) = Raw::connect(addr).await;
            assert_eq!(
                c.exchange(&format!("a LOGIN u{i} p")).await.1,
                Some(StatusKind::Ok)
            );
            assert_eq!(c.exchange("b SELECT INBOX").await.1, Some(StatusKind::Ok));
            assert_eq!(c.exchange("c IDLE").await.0, "+ idling\r\n");
            ready.wait().await;
            release.cancelled().await;
            assert_eq!(c.exchange("DONE").await.0, "c OK IDLE terminated\r\n");
            assert_eq!(c.exchange("d LOGOUT").await.1, Some(StatusKind::Ok));
        });
    }
    tokio::time::timeout(Duration::from_secs(60), ready.wait())
        .await
        .expect("500 connections idle within 60 s");
    assert_eq!(sink.stats.open.load(Ordering::Relaxed), CONNECTIONS as u64);
    release.cancel();
    let all_done = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(result) = tasks.join_next().await {
            result.expect("connection task");
        }
    });
    all_done.await.expect("all log out within 60 s");
    assert_eq!(
        sink.stats.accepted.load(Ordering::Relaxed),
        CONNECTIONS as u64
    );
}

#[tokio::test]
async fn only_loopback_addresses_are_accepted() {
    let config = SinkConfig {
        imap: Some("0.0.0.0:0".parse().unwrap()),
        ..SinkConfig::default()
    };
    let err = Sink::bind(&config).await.err().expect("refused");
    assert!(matches!(err, SinkError::NotLoopback { .. }), "{err}");
    let err = Sink::bind(&SinkConfig::default())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, SinkError::NoListener), "{err}");
    let config = SinkConfig {
        lmtp: Some("127.0.0.1:0".parse().unwrap()),
        messages: MAX_MESSAGES + 1,
        ..SinkConfig::default()
    };
    let err = Sink::bind(&config).await.err().expect("refused");
    assert!(
        matches!(
            err,
            SinkError::TooLarge {
                what: "messages",
                ..
            }
        ),
        "{err}"
    );
}
