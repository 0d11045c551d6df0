//! The client against a scripted in-process server that misbehaves: broken grammar, replies cut
//! at every byte, STARTTLS injection, missing or reordered LMTP replies. Well-behaved servers
//! are tested against the real Dovecot in `tests/smtp.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;
use crate::proto::net::ConnectOptions;
use crate::proto::ErrorKind;

enum Step {
    /// Write these bytes in one go.
    Send(&'static [u8]),
    /// Write these bytes one at a time, flushing and pausing in between.
    Trickle(&'static [u8]),
    /// Read one command line and check that it starts with this text.
    Expect(&'static str),
    /// Read a DATA body up to its terminating `.` line.
    Body,
    /// Stop without closing, so the client waits.
    Hang,
}
use Step::*;

/// Runs `steps` for one connection; returns every line the client sent, for assertions.
async fn fake(steps: Vec<Step>) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = BufReader::new(socket);
        let mut seen = Vec::new();
        for step in steps {
            match step {
                Send(bytes) => socket.get_mut().write_all(bytes).await.unwrap(),
                Trickle(bytes) => {
                    for byte in bytes {
                        socket.get_mut().write_all(&[*byte]).await.unwrap();
                        socket.get_mut().flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                Expect(prefix) => {
                    let mut line = String::new();
                    socket.read_line(&mut line).await.unwrap();
                    assert!(
                        line.starts_with(prefix),
                        "expected {prefix:?}, got {line:?}"
                    );
                    seen.push(line);
                }
                Body => loop {
                    let mut line = String::new();
                    if socket.read_line(&mut line).await.unwrap() == 0 || line == ".\r\n" {
                        break;
                    }
                    seen.push(line);
                },
                Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
            }
        }
        seen
    });
    (addr, task)
}

fn quick() -> SmtpSettings {
    SmtpSettings {
        command_timeout: Duration::from_millis(300),
        ..SmtpSettings::default()
    }
}

async fn client(
    addr: SocketAddr,
    flavor: Flavor,
) -> Result<SmtpClient<tokio::net::TcpStream>, SmtpError> {
    SmtpClient::connect_with(addr, &ConnectOptions::default(), flavor, quick()).await
}

fn assert_protocol(err: &SmtpError, reason_part: &str) {
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    match err {
        SmtpError::Protocol { reason, raw, .. } => {
            assert!(reason.contains(reason_part), "reason {reason:?}");
            assert!(!raw.is_empty(), "raw text is kept");
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
}

const GREETING: &[u8] = b"220 fake ESMTP\r\n";
const LHLO_PLAIN: &[u8] = b"250-fake\r\n250 ENHANCEDSTATUSCODES\r\n";

#[tokio::test]
async fn bare_lf_in_greeting() {
    let (addr, _server) = fake(vec![Send(b"220 fake\n"), Hang]).await;
    let err = client(addr, Flavor::Smtp).await.unwrap_err();
    assert_protocol(&err, "bare LF");
}

#[tokio::test]
async fn mismatched_codes_in_multi_line_reply() {
    let (addr, _server) = fake(vec![
        Send(GREETING),
        Expect("EHLO"),
        Send(b"250-fake\r\n251 PIPELINING\r\n"),
        Hang,
    ])
    .await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    let err = smtp.ehlo("client.lab.test").await.unwrap_err();
    assert_protocol(&err, "changes code from 250 to 251");
}

#[tokio::test]
async fn garbage_code() {
    let (addr, _server) = fake(vec![Send(b"2x0 hello\r\n"), Hang]).await;
    let err = client(addr, Flavor::Smtp).await.unwrap_err();
    assert_protocol(&err, "3-digit code");
}

#[tokio::test]
async fn greeting_554_is_a_rejection() {
    let (addr, _server) = fake(vec![Send(b"554 5.7.1 no service for you\r\n"), Hang]).await;
    let err = client(addr, Flavor::Smtp).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(matches!(
        err,
        SmtpError::Rejected {
            code: 554,
            enhanced: Some([5, 7, 1]),
            ..
        }
    ));
}

#[tokio::test]
async fn silent_server_times_out() {
    let (addr, _server) = fake(vec![Hang]).await;
    let err = client(addr, Flavor::Smtp).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(matches!(
        err,
        SmtpError::Timeout {
            command: "greeting",
            ..
        }
    ));
}

#[tokio::test]
async fn replies_split_at_every_byte() {
    let (addr, _server) = fake(vec![
        Trickle(GREETING),
        Expect("EHLO client.lab.test"),
        Trickle(b"250-fake\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 AUTH PLAIN LOGIN\r\n"),
        Hang,
    ])
    .await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    assert_eq!(smtp.greeting().text, "fake ESMTP");
    let caps = smtp.ehlo("client.lab.test").await.unwrap();
    assert!(caps.pipelining);
    assert_eq!(caps.size, Some(1000));
    assert_eq!(caps.auth, ["PLAIN", "LOGIN"]);
}

#[tokio::test]
async fn server_closes_mid_reply() {
    let (addr, server) = fake(vec![
        Send(GREETING),
        Expect("EHLO"),
        Send(b"250-fake\r\n250-PIPE"),
    ])
    .await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    let err = smtp.ehlo("c").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Reset);
    match err {
        SmtpError::Closed { command, partial } => {
            assert_eq!(command, "EHLO");
            assert_eq!(partial, "250-fake\r\n250-PIPE");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    server.await.unwrap();
}

#[tokio::test]
async fn unsolicited_reply_is_detected_before_the_next_command() {
    let (addr, _server) = fake(vec![
        Send(GREETING),
        Expect("EHLO"),
        Send(b"250 fake\r\n250 extra\r\n"),
        Hang,
    ])
    .await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    smtp.ehlo("c").await.unwrap();
    let err = smtp.noop().await.unwrap_err();
    assert_protocol(&err, "unsolicited");
}

#[tokio::test]
async fn bytes_after_starttls_220_are_an_injection() {
    let (addr, _server) = fake(vec![
        Send(GREETING),
        Expect("EHLO"),
        Send(b"250-fake\r\n250 STARTTLS\r\n"),
        Expect("STARTTLS"),
        Send(b"220 2.0.0 go ahead\r\n250 injected\r\n"),
        Hang,
    ])
    .await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    assert!(smtp.ehlo("c").await.unwrap().starttls);
    let connector = crate::proto::tls::TlsSettings::default()
        .connector()
        .unwrap();
    let name = crate::proto::tls::parse_server_name("localhost").unwrap();
    let err = smtp.starttls(&connector, name).await.unwrap_err();
    assert_protocol(&err, "STARTTLS injection");
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        from: "sender@lab.test".into(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
    }
}

/// LHLO without PIPELINING, MAIL, two accepted RCPTs, DATA, body.
fn lmtp_until_body() -> Vec<Step> {
    vec![
        Send(GREETING),
        Expect("LHLO"),
        Send(LHLO_PLAIN),
        Expect("MAIL FROM:<sender@lab.test>"),
        Send(b"250 2.1.0 OK\r\n"),
        Expect("RCPT TO:<a@lab.test>"),
        Send(b"250 2.1.5 OK\r\n"),
        Expect("RCPT TO:<b@lab.test>"),
        Send(b"250 2.1.5 OK\r\n"),
        Expect("DATA"),
        Send(b"354 OK\r\n"),
        Body,
    ]
}

#[tokio::test]
async fn lmtp_fewer_replies_then_close() {
    let mut steps = lmtp_until_body();
    steps.push(Send(b"250 2.0.0 <a@lab.test> Saved\r\n"));
    let (addr, _server) = fake(steps).await;
    let mut lmtp = client(addr, Flavor::Lmtp).await.unwrap();
    lmtp.lhlo("c").await.unwrap();
    let err = lmtp
        .send(
            &envelope(&["a@lab.test", "b@lab.test"]),
            b"Subject: x\r\n\r\nhi\r\n",
            &SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Reset, "{err}");
    assert!(matches!(
        err,
        SmtpError::Closed {
            command: "DATA",
            ..
        }
    ));
}

#[tokio::test]
async fn lmtp_fewer_replies_then_silence() {
    let mut steps = lmtp_until_body();
    steps.push(Send(b"250 2.0.0 <a@lab.test> Saved\r\n"));
    steps.push(Hang);
    let (addr, _server) = fake(steps).await;
    let mut lmtp = client(addr, Flavor::Lmtp).await.unwrap();
    lmtp.lhlo("c").await.unwrap();
    let err = lmtp
        .send(
            &envelope(&["a@lab.test", "b@lab.test"]),
            b"x\r\n",
            &SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn lmtp_replies_in_the_wrong_order() {
    let mut steps = lmtp_until_body();
    steps.push(Send(
        b"250 2.0.0 <b@lab.test> Saved\r\n250 2.0.0 <a@lab.test> Saved\r\n",
    ));
    steps.push(Hang);
    let (addr, _server) = fake(steps).await;
    let mut lmtp = client(addr, Flavor::Lmtp).await.unwrap();
    lmtp.lhlo("c").await.unwrap();
    let err = lmtp
        .send(
            &envelope(&["a@lab.test", "b@lab.test"]),
            b"x\r\n",
            &SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert_protocol(&err, "where the reply for <a@lab.test> was due");
}

#[tokio::test]
async fn lmtp_per_recipient_replies_skip_rejected_recipients() {
    let (addr, server) = fake(vec![
        Send(GREETING),
        Expect("LHLO"),
        Send(b"250-fake\r\n250 PIPELINING\r\n"),
        // Pipelined: all three lines arrive before any reply is sent.
        Expect("MAIL FROM:<sender@lab.test>"),
        Expect("RCPT TO:<a@lab.test>"),
        Expect("RCPT TO:<x@lab.test>"),
        Expect("RCPT TO:<b@lab.test>"),
        Send(b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <x@lab.test> unknown\r\n250 2.1.5 OK\r\n"),
        Expect("DATA"),
        Send(b"354 OK\r\n"),
        Body,
        Send(b"250 2.0.0 <a@lab.test> Saved\r\n452 4.2.2 <b@lab.test> Quota exceeded\r\n"),
        Expect("QUIT"),
        Send(b"221 bye\r\n"),
    ])
    .await;
    let mut lmtp = client(addr, Flavor::Lmtp).await.unwrap();
    lmtp.lhlo("c").await.unwrap();
    let outcome = lmtp
        .send(
            &envelope(&["a@lab.test", "x@lab.test", "b@lab.test"]),
            b"..\r\n",
            &SendOptions::default(),
        )
        .await
        .unwrap();
    assert!(outcome.pipelined && !outcome.chunked);
    assert_eq!((outcome.accepted(), outcome.delivered()), (2, 1));
    assert_eq!(outcome.timings.rcpt.len(), 3);
    let Delivery::PerRecipient(finals) = &outcome.delivery else {
        panic!("LMTP")
    };
    let got: Vec<_> = finals.iter().map(|f| (f.recipient, f.reply.code)).collect();
    assert_eq!(got, [(0, 250), (2, 452)]);
    lmtp.quit().await.unwrap();
    let seen = server.await.unwrap();
    // No SIZE= without the SIZE extension; the body's lone dot was stuffed.
    assert_eq!(seen[1], "MAIL FROM:<sender@lab.test>\r\n");
    assert!(seen.contains(&"...\r\n".to_string()), "{seen:?}");
}

#[tokio::test]
async fn all_recipients_rejected_resets_the_transaction() {
    let (addr, server) = fake(vec![
        Send(GREETING),
        Expect("EHLO"),
        Send(b"250 fake\r\n"),
        Expect("MAIL"),
        Send(b"250 OK\r\n"),
        Expect("RCPT"),
        Send(b"550 5.1.1 no such user\r\n"),
        Expect("RSET"),
        Send(b"250 OK\r\n"),
    ])
    .await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    smtp.ehlo("c").await.unwrap();
    let err = smtp
        .send(
            &envelope(&["nobody@lab.test"]),
            b"x",
            &SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Rejected {
                command: "RCPT",
                code: 550,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(server.await.unwrap().last().unwrap(), "RSET\r\n");
}

#[tokio::test]
async fn bdat_without_chunking_is_refused_locally() {
    let (addr, _server) = fake(vec![
        Send(GREETING),
        Expect("EHLO"),
        Send(b"250 fake\r\n"),
        Hang,
    ])
    .await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    smtp.ehlo("c").await.unwrap();
    let opts = SendOptions {
        transfer: Transfer::Bdat { chunk_size: 10 },
        ..SendOptions::default()
    };
    let err = smtp
        .send(&envelope(&["a@lab.test"]), b"x", &opts)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SmtpError::NotAdvertised {
            extension: "CHUNKING"
        }
    ));
}

async fn auth_exchange(
    mechanism: AuthMechanism,
    initial: bool,
    steps: Vec<Step>,
) -> (Result<(), SmtpError>, Vec<String>) {
    let mut all = vec![
        Send(GREETING),
        Expect("EHLO"),
        Send(b"250-fake\r\n250 AUTH PLAIN LOGIN\r\n"),
    ];
    all.extend(steps);
    let (addr, server) = fake(all).await;
    let mut smtp = client(addr, Flavor::Smtp).await.unwrap();
    smtp.ehlo("c").await.unwrap();
    let result = smtp.auth(mechanism, "user1", "s3cret!", initial).await;
    drop(smtp);
    (result, server.await.unwrap())
}

// base64("\0user1\0s3cret!"), base64("user1"), base64("s3cret!")
const PLAIN_B64: &str = "AHVzZXIxAHMzY3JldCE=";
const USER_B64: &str = "dXNlcjE=";
const PASS_B64: &str = "czNjcmV0IQ==";

#[tokio::test]
async fn auth_plain_with_and_without_initial_response() {
    let (ok, seen) = auth_exchange(
        AuthMechanism::Plain,
        true,
        vec![Expect("AUTH PLAIN "), Send(b"235 2.7.0 ok\r\n")],
    )
    .await;
    ok.unwrap();
    assert_eq!(seen[1], format!("AUTH PLAIN {PLAIN_B64}\r\n"));

    let (ok, seen) = auth_exchange(
        AuthMechanism::Plain,
        false,
        vec![
            Expect("AUTH PLAIN"),
            Send(b"334 \r\n"),
            Expect(""),
            Send(b"235 ok\r\n"),
        ],
    )
    .await;
    ok.unwrap();
    assert_eq!(
        seen[1..],
        ["AUTH PLAIN\r\n".to_string(), format!("{PLAIN_B64}\r\n")]
    );
}

#[tokio::test]
async fn auth_login_with_and_without_initial_response() {
    let (ok, seen) = auth_exchange(
        AuthMechanism::Login,
        false,
        vec![
            Expect("AUTH LOGIN"),
            Send(b"334 VXNlcm5hbWU6\r\n"),
            Expect(USER_B64),
            Send(b"334 UGFzc3dvcmQ6\r\n"),
            Expect(PASS_B64),
            Send(b"235 ok\r\n"),
        ],
    )
    .await;
    ok.unwrap();
    assert_eq!(seen[1], "AUTH LOGIN\r\n");

    let (ok, seen) = auth_exchange(
        AuthMechanism::Login,
        true,
        vec![
            Expect("AUTH LOGIN "),
            Send(b"334 UGFzc3dvcmQ6\r\n"),
            Expect(PASS_B64),
            Send(b"235 ok\r\n"),
        ],
    )
    .await;
    ok.unwrap();
    assert_eq!(seen[1], format!("AUTH LOGIN {USER_B64}\r\n"));
}

#[tokio::test]
async fn failed_auth_is_an_auth_error_without_the_password() {
    let (result, _) = auth_exchange(
        AuthMechanism::Plain,
        true,
        vec![
            Expect("AUTH PLAIN"),
            Send(b"535 5.7.8 authentication failed\r\n"),
        ],
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("535 5.7.8"), "{shown}");
    assert!(!shown.contains("s3cret") && !shown.contains(PLAIN_B64) && !shown.contains(PASS_B64));
}

#[tokio::test]
async fn auth_challenge_that_is_not_base64() {
    let (result, seen) = auth_exchange(
        AuthMechanism::Login,
        false,
        vec![
            Expect("AUTH LOGIN"),
            Send(b"334 not*base64!\r\n"),
            Expect("*"),
            Send(b"501 cancelled\r\n"),
        ],
    )
    .await;
    assert_protocol(&result.unwrap_err(), "not base64");
    assert_eq!(seen.last().unwrap(), "*\r\n");
}
