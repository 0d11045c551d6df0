//! SMTP/LMTP client against a real Dovecot 2.3 LMTP server; delivered bytes are read back
//! over IMAP.
//!
//! (A directory module so its helpers can live beside it; Cargo does not build
//! `tests/smtp/mod.rs` as a test binary of its own.)
//!
//! Until the lab fixture (`common::lab()`) lands, `dev_dovecot()` starts a private Dovecot for
//! this test binary. Every scenario is a function taking a [`Target`], so switching to the
//! fixture only changes where the `Target` comes from.

mod dev_dovecot;
mod imap_fetch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mailswarm::engine::message::{
    build_message, verify_digest, DigestCheck, MessageParams, MessageSpec,
};
use mailswarm::proto::net::ConnectOptions;
use mailswarm::proto::smtp::{
    Delivery, Envelope, Flavor, SendOptions, SmtpClient, SmtpError, Transfer,
};
use mailswarm::proto::tls::TlsSettings;
use mailswarm::proto::ErrorKind;
use rand_pcg::Pcg32;
use tokio::net::TcpStream;

use dev_dovecot::dev_dovecot;
use imap_fetch::{imap_fetch_by_header, imap_fetch_by_subject};

/// Where the servers are and who may receive mail.
struct Target {
    lmtp: SocketAddr,
    imap: SocketAddr,
    /// Full addresses, e.g. `user1@lab.test`; also the IMAP login names.
    users: Vec<String>,
    password: String,
    domain: String,
    /// PEM of the CA that signed the servers' certificate.
    ca_file: PathBuf,
}

async fn lmtp(target: &Target) -> SmtpClient<TcpStream> {
    let mut client = SmtpClient::connect(target.lmtp, &ConnectOptions::default(), Flavor::Lmtp)
        .await
        .expect("connect to LMTP");
    client.lhlo("client.lab.test").await.expect("LHLO");
    client
}

/// A token unique in this run, to find one test's message in a shared mailbox.
fn token(name: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!("From: sender@lab.test\r\nTo: rcpt@lab.test\r\nSubject: {subject}\r\n\r\n{body}")
        .into_bytes()
}

async fn three_recipients_one_unknown(target: &Target) {
    let mut client = lmtp(target).await;
    let subject = token("three");
    let unknown = format!("nosuchuser@{}", target.domain);
    let envelope = Envelope {
        from: format!("sender@{}", target.domain),
        recipients: vec![target.users[0].clone(), unknown, target.users[1].clone()],
    };
    let outcome = client
        .send(
            &envelope,
            &message(&subject, "hello\r\n"),
            &SendOptions::default(),
        )
        .await
        .expect("transaction");
    assert_eq!(outcome.rcpt[1].code, 550, "{:?}", outcome.rcpt[1]);
    assert_eq!(outcome.rcpt[1].enhanced, Some([5, 1, 1]));
    assert_eq!((outcome.accepted(), outcome.delivered()), (2, 2));
    let Delivery::PerRecipient(finals) = &outcome.delivery else {
        panic!("LMTP gives per-recipient replies: {:?}", outcome.delivery)
    };
    let recipients: Vec<usize> = finals.iter().map(|f| f.recipient).collect();
    assert_eq!(
        recipients,
        [0, 2],
        "exactly one reply per accepted recipient"
    );
    assert!(finals.iter().all(|f| f.reply.code == 250));
    client.quit().await.expect("QUIT");
    for user in [&target.users[0], &target.users[1]] {
        let fetched = imap_fetch_by_subject(target, user, &subject).await;
        assert_eq!(fetched.len(), 1, "{user} got the message once");
    }
}

async fn dot_stuffed_body_arrives_intact(target: &Target) {
    let mut client = lmtp(target).await;
    let subject = token("dots");
    // Leading dots, a lone dot line, a bare LF, a bare CR and no final line break.
    let body = ".hidden\r\n..two\r\n.\r\nbare\nlf\rcr\r\nlast";
    let envelope = Envelope {
        from: String::new(),
        recipients: vec![target.users[2].clone()],
    };
    let outcome = client
        .send(&envelope, &message(&subject, body), &SendOptions::default())
        .await
        .expect("transaction");
    assert_eq!(outcome.delivered(), 1);
    assert!(outcome.timings.data_command.is_some() && !outcome.chunked);
    client.quit().await.expect("QUIT");
    let fetched = imap_fetch_by_subject(target, &target.users[2], &subject).await;
    let expected = message(
        &subject,
        ".hidden\r\n..two\r\n.\r\nbare\r\nlf\r\ncr\r\nlast\r\n",
    );
    assert!(
        fetched[0].ends_with(&expected),
        "stored message differs:\n{}",
        String::from_utf8_lossy(&fetched[0])
    );
}

async fn pipelined_and_sequential_envelopes(target: &Target) {
    let mut client = lmtp(target).await;
    assert!(
        client.capabilities().unwrap().pipelining,
        "Dovecot LMTP pipelines"
    );
    let envelope = Envelope {
        from: format!("sender@{}", target.domain),
        recipients: target.users[..3].to_vec(),
    };
    for pipelining in [true, false] {
        let subject = token("pipe");
        let opts = SendOptions {
            pipelining,
            ..SendOptions::default()
        };
        let outcome = client
            .send(&envelope, &message(&subject, "x\r\n"), &opts)
            .await
            .expect("transaction");
        assert_eq!(outcome.pipelined, pipelining);
        assert_eq!((outcome.accepted(), outcome.delivered()), (3, 3));
        assert_eq!(outcome.timings.rcpt.len(), 3);
        assert!(outcome.timings.mail > Duration::ZERO);
        let fetched = imap_fetch_by_subject(target, &target.users[1], &subject).await;
        assert_eq!(fetched.len(), 1);
    }
    // The session is reusable after transactions and RSET.
    assert_eq!(client.rset().await.expect("RSET").code, 250);
    assert_eq!(client.noop().await.expect("NOOP").code, 250);
    client.quit().await.expect("QUIT");
}

async fn bdat_chunks(target: &Target) {
    let mut client = lmtp(target).await;
    assert!(
        client.capabilities().unwrap().chunking,
        "Dovecot LMTP offers CHUNKING"
    );
    let line = "0123456789 abcdefghijklmnopqrstuvwxyz .not-stuffed\r\n";
    for pipelining in [true, false] {
        let subject = token("bdat");
        let raw = message(&subject, &line.repeat(100));
        let opts = SendOptions {
            pipelining,
            transfer: Transfer::Bdat { chunk_size: 1000 },
            ..SendOptions::default()
        };
        let envelope = Envelope {
            from: format!("sender@{}", target.domain),
            recipients: vec![target.users[0].clone(), target.users[1].clone()],
        };
        let outcome = client.send(&envelope, &raw, &opts).await.expect("BDAT");
        assert!(outcome.chunked && outcome.timings.data_command.is_none());
        assert_eq!(outcome.delivered(), 2);
        let fetched = imap_fetch_by_subject(target, &target.users[1], &subject).await;
        assert!(
            fetched[0].ends_with(&raw),
            "BDAT content is stored verbatim"
        );
    }
    client.quit().await.expect("QUIT");
}

async fn rejected_mail_from_keeps_the_session(target: &Target) {
    let mut client = lmtp(target).await;
    let envelope = Envelope {
        from: "not an address@@".into(),
        recipients: vec![target.users[0].clone()],
    };
    let err = client
        .send(&envelope, b"x\r\n", &SendOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Rejected {
                command: "MAIL",
                code: 501,
                ..
            }
        ),
        "{err}"
    );
    // Pipelined RCPT replies were consumed: the next command is in step.
    assert_eq!(client.noop().await.expect("NOOP").code, 250);
}

async fn starttls_with_pinned_ca(target: &Target) {
    let client = lmtp(target).await;
    assert!(client.capabilities().unwrap().starttls);
    let settings = TlsSettings {
        ca_file: Some(target.ca_file.clone()),
        ..TlsSettings::default()
    };
    let connector = settings.connector().expect("connector");
    let name = settings.server_name("localhost").unwrap();
    let mut client = client.starttls(&connector, name).await.expect("STARTTLS");
    assert!(
        client.capabilities().is_none(),
        "capabilities are forgotten after STARTTLS"
    );
    let caps = client.lhlo("client.lab.test").await.expect("LHLO over TLS");
    assert!(!caps.starttls, "no STARTTLS offered inside TLS");
    let subject = token("tls");
    let envelope = Envelope {
        from: format!("sender@{}", target.domain),
        recipients: vec![target.users[3].clone()],
    };
    let outcome = client
        .send(
            &envelope,
            &message(&subject, "over TLS\r\n"),
            &SendOptions::default(),
        )
        .await
        .expect("transaction over TLS");
    assert_eq!(outcome.delivered(), 1);
    client.quit().await.expect("QUIT");
    let fetched = imap_fetch_by_subject(target, &target.users[3], &subject).await;
    assert_eq!(fetched.len(), 1);
}

async fn starttls_trust_settings(target: &Target) {
    // The webpki roots do not know the lab CA.
    let client = lmtp(target).await;
    let connector = TlsSettings::default().connector().unwrap();
    let name = TlsSettings::default().server_name("localhost").unwrap();
    let err = client.starttls(&connector, name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    // --insecure accepts it.
    let insecure = TlsSettings {
        insecure: true,
        ..TlsSettings::default()
    };
    let client = lmtp(target).await;
    let name = insecure.server_name("127.0.0.1").unwrap();
    let mut client = client
        .starttls(&insecure.connector().unwrap(), name)
        .await
        .expect("insecure STARTTLS");
    client.lhlo("client.lab.test").await.expect("LHLO over TLS");
    assert_eq!(client.noop().await.expect("NOOP").code, 250);
}

async fn generated_messages_verify_after_delivery(target: &Target) {
    let mut client = lmtp(target).await;
    let spec = MessageSpec {
        non_ascii_ratio: 1.0,
        ..MessageSpec::default()
    };
    let run = token("audit");
    let to = vec![target.users[0].clone()];
    let mut rng = Pcg32::new(7, 7);
    for (sequence, target_size) in [(1u64, 4_000usize), (2, 40_000), (3, 300_000)] {
        let params = MessageParams {
            spec: &spec,
            run_id: &run,
            sequence,
            target_size,
            from: "sender@lab.test",
            to: &to,
            domain: &target.domain,
            date: 1_796_000_000,
        };
        let raw = build_message(&mut rng, &params);
        let envelope = Envelope {
            from: params.from.into(),
            recipients: to.clone(),
        };
        let outcome = client
            .send(&envelope, &raw, &SendOptions::default())
            .await
            .expect("transaction");
        assert_eq!(outcome.delivered(), 1);
        let id = format!("{run}-{sequence}");
        let fetched = imap_fetch_by_header(target, &to[0], "X-Mailswarm-Id", &id).await;
        assert_eq!(fetched.len(), 1, "{id}");
        assert!(
            fetched[0].len() > raw.len(),
            "Dovecot prepends its trace headers"
        );
        assert_eq!(verify_digest(&fetched[0]), DigestCheck::Ok { id });
    }
    client.quit().await.expect("QUIT");
}

#[tokio::test]
async fn lmtp_three_recipients_one_unknown() {
    three_recipients_one_unknown(dev_dovecot()).await;
}

#[tokio::test]
async fn lmtp_dot_stuffed_body_arrives_intact() {
    dot_stuffed_body_arrives_intact(dev_dovecot()).await;
}

#[tokio::test]
async fn lmtp_pipelined_and_sequential_envelopes() {
    pipelined_and_sequential_envelopes(dev_dovecot()).await;
}

#[tokio::test]
async fn lmtp_bdat_chunks() {
    bdat_chunks(dev_dovecot()).await;
}

#[tokio::test]
async fn lmtp_rejected_mail_from_keeps_the_session() {
    rejected_mail_from_keeps_the_session(dev_dovecot()).await;
}

#[tokio::test]
async fn lmtp_starttls_with_pinned_ca() {
    starttls_with_pinned_ca(dev_dovecot()).await;
}

#[tokio::test]
async fn lmtp_starttls_trust_settings() {
    starttls_trust_settings(dev_dovecot()).await;
}

#[tokio::test]
async fn lmtp_generated_messages_verify_after_delivery() {
    generated_messages_verify_after_delivery(dev_dovecot()).await;
}
