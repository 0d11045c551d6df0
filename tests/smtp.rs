//! SMTP/LMTP client against a real Dovecot 2.3 LMTP server; delivered bytes are read back
//! over IMAP.
//!
//! Until the lab fixture (`common::lab()`) lands, `dev_dovecot()` starts a private Dovecot for
//! this test binary. Every scenario is a function taking a [`Target`], so switching to the
//! fixture only changes where the `Target` comes from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailswarm::proto::net::ConnectOptions;
use mailswarm::proto::smtp::{
    Delivery, Envelope, Flavor, SendOptions, SmtpClient, SmtpError, Transfer,
};
use mailswarm::proto::tls::TlsSettings;
use mailswarm::proto::ErrorKind;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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

// --- IMAP read-back: just enough IMAP4rev1 to fetch one message by subject. ---

async fn imap_fetch_by_subject(target: &Target, user: &str, subject: &str) -> Vec<Vec<u8>> {
    let stream = TcpStream::connect(target.imap).await.expect("IMAP connect");
    let mut imap = BufReader::new(stream);
    let mut line = String::new();
    imap.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    imap_command(&mut imap, &format!("a LOGIN {user} {}", target.password)).await;
    imap_command(&mut imap, "b SELECT INBOX").await;
    let search = imap_command(&mut imap, &format!("c UID SEARCH HEADER Subject {subject}")).await;
    let uids: Vec<String> = search
        .iter()
        .filter_map(|l| l.strip_prefix(b"* SEARCH"))
        .flat_map(|rest| {
            String::from_utf8_lossy(rest)
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut messages = Vec::new();
    for uid in uids {
        imap.get_mut()
            .write_all(format!("d UID FETCH {uid} BODY.PEEK[]\r\n").as_bytes())
            .await
            .unwrap();
        let mut body = None;
        loop {
            let mut line = Vec::new();
            imap.read_until(b'\n', &mut line).await.unwrap();
            assert!(!line.is_empty(), "IMAP server closed");
            if line.starts_with(b"d ") {
                assert!(
                    line.starts_with(b"d OK"),
                    "{}",
                    String::from_utf8_lossy(&line)
                );
                break;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(len) = text
                .trim_end()
                .strip_suffix('}')
                .and_then(|t| t.rsplit_once('{'))
            {
                let mut literal = vec![0; len.1.parse().unwrap()];
                imap.read_exact(&mut literal).await.unwrap();
                body = Some(literal);
            }
        }
        messages.push(body.expect("FETCH returned a literal"));
    }
    imap_command(&mut imap, "e LOGOUT").await;
    messages
}

/// Sends a tagged command and returns the response lines; asserts OK.
async fn imap_command(imap: &mut BufReader<TcpStream>, command: &str) -> Vec<Vec<u8>> {
    let tag = command.split(' ').next().unwrap().to_owned();
    imap.get_mut()
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        imap.read_until(b'\n', &mut line).await.unwrap();
        assert!(!line.is_empty(), "IMAP server closed during {command}");
        if line.starts_with(format!("{tag} ").as_bytes()) {
            let status = String::from_utf8_lossy(&line);
            assert!(
                status.starts_with(&format!("{tag} OK")),
                "{command}: {status}"
            );
            return lines;
        }
        lines.push(line);
    }
}

// --- A private Dovecot until the lab fixture exists. ---

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `dovecot -F` once per test binary. The master runs as a child of a thread that lives
/// until the process exits and gets SIGTERM then (PR_SET_PDEATHSIG), so no server outlives the
/// tests.
fn dev_dovecot() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mailswarm-smtp-dovecot-")
            .tempdir()
            .unwrap()
            .keep();
        remove_at_exit(&dir);
        let (lmtp_port, imap_port) = (free_port(), free_port());
        let users: Vec<String> = (1..=4).map(|i| format!("user{i}@lab.test")).collect();
        write_lab_certificates(&dir);
        write_dovecot_config(&dir, lmtp_port, imap_port, &users);
        let config = dir.join("dovecot.conf");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut command = Command::new("dovecot");
            command.arg("-F").arg("-c").arg(&config);
            command.stdout(Stdio::null()).stderr(Stdio::inherit());
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let mut child = command
                .spawn()
                .expect("start dovecot (is dovecot-core installed?)");
            ready_tx.send(()).unwrap();
            let _ = child.wait();
        });
        ready_rx.recv().unwrap();
        let lmtp: SocketAddr = format!("127.0.0.1:{lmtp_port}").parse().unwrap();
        wait_for_greeting(lmtp, &dir);
        Target {
            lmtp,
            imap: format!("127.0.0.1:{imap_port}").parse().unwrap(),
            users,
            password: "secret".into(),
            domain: "lab.test".into(),
            ca_file: dir.join("ca.pem"),
        }
    })
}

/// Deletes the server's directory when the test binary exits (`atexit` runs on the harness's
/// `exit`); Dovecot gets SIGTERM at the same moment and writes nothing of value after that.
fn remove_at_exit(dir: &Path) {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    extern "C" fn remove() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if DIR.set(dir.to_owned()).is_ok() {
        // SAFETY: registers a plain function with no captured state.
        unsafe { libc::atexit(remove) };
    }
}

fn wait_for_greeting(addr: SocketAddr, dir: &Path) {
    use std::io::Read;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if let Ok(mut tcp) = std::net::TcpStream::connect(addr) {
            let mut greeting = [0u8; 3];
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if tcp.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default();
    panic!("Dovecot did not greet on {addr} within 15 s; log:\n{log}");
}

/// A CA (`ca.pem`) and a certificate for localhost/127.0.0.1 (`cert.pem`, `key.pem`).
fn write_lab_certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mailswarm smtp test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

fn write_dovecot_config(dir: &Path, lmtp_port: u16, imap_port: u16, users: &[String]) {
    use std::os::unix::fs::PermissionsExt;
    let d = dir.display();
    // tempfile makes the directory 0700; Dovecot's unprivileged processes must enter it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["base", "state", "mail"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Mail is written as `nobody`; the test process is root in CI.
    let mail = std::ffi::CString::new(format!("{d}/mail")).unwrap();
    // SAFETY: plain libc call on a valid C string.
    assert_eq!(
        unsafe { libc::chown(mail.as_ptr(), 65534, 65534) },
        0,
        "chown mail dir"
    );
    let passwd: String = users
        .iter()
        .map(|u| format!("{u}:{{PLAIN}}secret::::::\n"))
        .collect();
    std::fs::write(dir.join("users"), passwd).unwrap();
    let config = format!(
        r#"base_dir = {d}/base
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = mailswarm-smtp-test-{lmtp_port}
listen = 127.0.0.1
protocols = imap lmtp
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u/Maildir
mail_uid = 65534
mail_gid = 65534
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
protocol lmtp {{
  auth_username_format = %u
}}
"#
    );
    std::fs::write(dir.join("dovecot.conf"), config).unwrap();
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
