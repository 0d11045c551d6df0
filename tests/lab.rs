//! The lab against its real servers: logins, LMTP recipients, TLS against the lab CA,
//! submission through Postfix into an IMAP INBOX, and the up/down/status lifecycle.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailswarm::lab::{self, LabInfo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::TlsConnector;

use crate::common::{fresh_user, lab, mailswarm, LineConn, TempLab};

/// Dovecot's auth penalty slows every later login from an address that failed; tests with
/// wrong passwords connect from their own address.
const BAD_LOGIN_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 77);

fn imap_login(info: &LabInfo, user: &str, password: &str) -> (LineConn, Vec<String>) {
    let mut conn = LineConn::connect(info.imap_addr());
    let greeting = conn.line();
    assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
    let reply = conn.imap("a1", &format!("LOGIN {user} {password}"));
    (conn, reply)
}

fn last(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or("")
}

#[test]
fn imap_login_works_for_lab_users_and_shows_the_backend() {
    let info = lab();
    let (mut conn, reply) = imap_login(info, &info.user(1), &info.users.password);
    assert!(last(&reply).starts_with("a1 OK"), "{reply:?}");
    let id = conn.imap("a2", "ID NIL");
    assert!(
        id.iter()
            .any(|l| l.starts_with("* ID (") && l.contains("\"x-backend\" \"b1\"")),
        "{id:?}"
    );
    let last_user = info.user(info.users.count);
    let (_, reply) = imap_login(info, &format!("{last_user}@lab.test"), &info.users.password);
    assert!(
        last(&reply).starts_with("a1 OK"),
        "user@domain login: {reply:?}"
    );
}

#[test]
fn imap_login_rejects_bad_password_and_unknown_user() {
    let info = lab();
    let mut conn = LineConn::connect_from(info.imap_addr(), Some(BAD_LOGIN_SOURCE));
    assert!(conn.line().starts_with("* OK"));
    let reply = conn.imap("b1", &format!("LOGIN {} wrong-password", info.user(2)));
    assert!(last(&reply).starts_with("b1 NO"), "{reply:?}");
    let reply = conn.imap("b2", "LOGIN nosuchuser mailswarm");
    assert!(last(&reply).starts_with("b2 NO"), "{reply:?}");
}

#[test]
fn lmtp_accepts_lab_users_with_and_without_domain_and_rejects_unknown() {
    let info = lab();
    let n = fresh_user();
    let mut conn = LineConn::connect(info.lmtp_addr());
    assert!(conn.line().starts_with("220 "));
    let lhlo = conn.smtp("LHLO test.local");
    assert!(last(&lhlo).starts_with("250 "), "{lhlo:?}");
    assert!(conn.smtp("MAIL FROM:<sender@example.net>")[0].starts_with("250"));
    let rcpt = conn.smtp(&format!("RCPT TO:<{}>", info.address(n)));
    assert!(rcpt[0].starts_with("250"), "{rcpt:?}");
    let rcpt = conn.smtp("RCPT TO:<nosuchuser@lab.test>");
    assert!(rcpt[0].starts_with("550"), "{rcpt:?}");
    let bare = fresh_user();
    let rcpt = conn.smtp(&format!("RCPT TO:<{}>", info.user(bare)));
    assert!(rcpt[0].starts_with("250"), "bare user: {rcpt:?}");
    assert!(conn.smtp("DATA")[0].starts_with("354"));
    conn.send("Subject: lmtp fixture test\r\n\r\nhello\r\n.");
    // LMTP answers DATA once per accepted recipient.
    for _ in 0..2 {
        let reply = conn.smtp_reply();
        assert!(reply[0].starts_with("250"), "{reply:?}");
    }
    conn.smtp("QUIT");
    assert_eq!(inbox_messages(info, n), 1);
    assert_eq!(inbox_messages(info, bare), 1);
}

/// Number of messages in user `n`'s INBOX.
fn inbox_messages(info: &LabInfo, n: u32) -> u32 {
    let (mut conn, reply) = imap_login(info, &info.user(n), &info.users.password);
    assert!(last(&reply).starts_with("a1 OK"), "{reply:?}");
    let status = conn.imap("s1", "STATUS INBOX (MESSAGES)");
    let line = status
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .unwrap_or_else(|| panic!("no STATUS in {status:?}"));
    let count = line
        .rsplit("MESSAGES ")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("bad STATUS line {line}"));
    conn.imap("s2", "LOGOUT");
    count
}

fn tls_connector(ca_file: Option<&Path>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca_file {
        roots
            .add(CertificateDer::from_pem_file(ca).unwrap())
            .unwrap();
    } else {
        // The public web roots: a real trust store that must not trust the lab.
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

fn server_name(addr: SocketAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.ip().into())
}

#[tokio::test]
async fn imaps_verifies_against_the_lab_ca_and_not_without_it() {
    let info = lab();
    let addr = info.imaps_addr();

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tls_connector(Some(&info.ca_file))
        .connect(server_name(addr), tcp)
        .await
        .expect("TLS handshake with the lab CA");
    let mut lines = BufReader::new(tls).lines();
    let greeting = lines.next_line().await.unwrap().unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting}");

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let err = tls_connector(None)
        .connect(server_name(addr), tcp)
        .await
        .expect_err("the lab certificate must not verify against public roots");
    assert!(
        err.to_string().contains("UnknownIssuer") || err.to_string().contains("invalid peer"),
        "{err}"
    );
}

#[tokio::test]
async fn imap_starttls_upgrades_on_the_plain_port() {
    let info = lab();
    let addr = info.imap_addr();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut greeting = Vec::new();
    read_line_raw(&mut tcp, &mut greeting).await;
    assert!(greeting.starts_with(b"* OK") && contains(&greeting, b"STARTTLS"));
    tcp.write_all(b"t1 STARTTLS\r\n").await.unwrap();
    let mut reply = Vec::new();
    read_line_raw(&mut tcp, &mut reply).await;
    assert!(
        reply.starts_with(b"t1 OK"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let tls = tls_connector(Some(&info.ca_file))
        .connect(server_name(addr), tcp)
        .await
        .expect("STARTTLS handshake");
    let (read, mut write) = tokio::io::split(tls);
    write
        .write_all(format!("t2 LOGIN {} {}\r\n", info.user(3), info.users.password).as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(read).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    assert!(line.starts_with("t2 OK"), "{line}");
}

/// Reads up to LF one byte at a time so no TLS bytes are consumed before the handshake.
async fn read_line_raw(tcp: &mut tokio::net::TcpStream, out: &mut Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut byte))
            .await
            .expect("line timeout")
            .unwrap();
        assert!(n == 1, "closed mid-line");
        out.push(byte[0]);
        if byte[0] == b'\n' {
            return;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn smtp_submission_with_auth_lands_in_the_imap_inbox() {
    let info = lab();
    let sender = fresh_user();
    let rcpt = fresh_user();
    let mut conn = LineConn::connect(info.smtp_addr());
    assert!(conn.line().starts_with("220 "));
    let ehlo = conn.smtp("EHLO client.test");
    assert!(
        ehlo.iter()
            .any(|l| l.contains("AUTH") && l.contains("PLAIN")),
        "{ehlo:?}"
    );
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "\0{}\0{}",
        info.user(sender),
        info.users.password
    ));
    let auth = conn.smtp(&format!("AUTH PLAIN {token}"));
    assert!(auth[0].starts_with("235"), "{auth:?}");
    assert!(conn.smtp(&format!("MAIL FROM:<{}>", info.address(sender)))[0].starts_with("250"));
    let reply = conn.smtp(&format!("RCPT TO:<{}>", info.address(rcpt)));
    assert!(reply[0].starts_with("250"), "{reply:?}");
    let reply = conn.smtp("RCPT TO:<nosuchuser@lab.test>");
    assert!(reply[0].starts_with("550"), "{reply:?}");
    assert!(conn.smtp("DATA")[0].starts_with("354"));
    conn.send("Subject: through postfix\r\n\r\nsubmitted with AUTH PLAIN\r\n.");
    let queued = conn.smtp_reply();
    assert!(queued[0].starts_with("250"), "{queued:?}");
    conn.smtp("QUIT");

    // Delivery is asynchronous (queue manager, then LMTP); poll, bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if inbox_messages(info, rcpt) == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "message not delivered within 20 s; postfix log:\n{}",
            fs::read_to_string(&info.postfix.log_file).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (mut imap, _) = imap_login(info, &info.user(rcpt), &info.users.password);
    imap.imap("f1", "SELECT INBOX");
    let fetch = imap.imap("f2", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        fetch.iter().any(|l| l.contains("Subject: through postfix")),
        "{fetch:?}"
    );
}

#[test]
fn smtp_refuses_relaying_and_bad_passwords_but_takes_local_mail_unauthenticated() {
    let info = lab();
    let mut conn = LineConn::connect_from(info.smtp_addr(), Some(BAD_LOGIN_SOURCE));
    assert!(conn.line().starts_with("220 "));
    conn.smtp("EHLO client.test");
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0wrong", info.user(4)));
    let auth = conn.smtp(&format!("AUTH PLAIN {token}"));
    assert!(auth[0].starts_with("535"), "{auth:?}");
    assert!(conn.smtp("MAIL FROM:<someone@example.net>")[0].starts_with("250"));
    let relay = conn.smtp("RCPT TO:<victim@example.com>");
    assert!(
        relay[0].starts_with("554"),
        "relay must be refused: {relay:?}"
    );
    let local = conn.smtp(&format!("RCPT TO:<{}>", info.address(5)));
    assert!(local[0].starts_with("250"), "{local:?}");
    conn.smtp("QUIT");
}

fn run_cli(args: &[&str], extra: &[String]) -> (i32, String, String) {
    let output = mailswarm()
        .args(args)
        .args(extra)
        .output()
        .expect("running mailswarm");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie (state Z) holds nothing; the VM's init reaps it eventually.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z')),
    }
}

#[test]
fn cli_up_twice_is_harmless_and_down_stops_exactly_the_lab() {
    let temp = TempLab::new("twice");
    let args = temp.cli_args();
    let (code, out, err) = run_cli(&["lab", "up", "--users", "20"], &args);
    assert_eq!(code, 0, "first up failed:\n{out}\n{err}");
    assert!(out.contains("lab running in"), "{out}");
    let first = LabInfo::load(temp.dir()).unwrap();
    assert_eq!(first.users.count, 20);

    let (code, out, err) = run_cli(&["lab", "up", "--users", "20"], &args);
    assert_eq!(code, 0, "second up failed:\n{out}\n{err}");
    assert!(out.contains("already running"), "{out}");
    let second = LabInfo::load(temp.dir()).unwrap();
    assert_eq!(second.dovecot.pid, first.dovecot.pid);
    assert_eq!(second.postfix.pid, first.postfix.pid);

    let (code, _, err) = run_cli(&["lab", "up", "--users", "30"], &args);
    assert_eq!(code, 2, "changing a running lab must be refused");
    assert!(
        err.contains("other settings") && err.contains("lab down"),
        "{err}"
    );

    let dir = temp.dir().display().to_string();
    let (code, out, _) = run_cli(&["lab", "status", "--dir", &dir], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("pid {}", first.dovecot.pid)), "{out}");
    assert!(out.contains("user1..user20"), "{out}");

    let (code, out, err) = run_cli(&["lab", "down", "--dir", &dir], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("dovecot (pid {})", first.dovecot.pid)),
        "{out}"
    );
    assert!(gone(first.dovecot.pid), "dovecot master still runs");
    assert!(gone(first.postfix.pid), "postfix master still runs");
    assert!(std::net::TcpStream::connect(first.imap_addr()).is_err());
    assert!(std::net::TcpStream::connect(first.smtp_addr()).is_err());
    assert!(
        LabInfo::load(temp.dir()).is_err(),
        "lab.json must go with the lab"
    );

    let (code, out, _) = run_cli(&["lab", "status", "--dir", &dir], &[]);
    assert_eq!(code, 1, "status of a stopped lab: {out}");
    assert!(out.contains("not running"), "{out}");
    let (code, out, _) = run_cli(&["lab", "down", "--dir", &dir], &[]);
    assert_eq!(code, 0, "second down is harmless");
    assert!(out.contains("no lab was running"), "{out}");
}

#[test]
fn stale_pid_files_of_live_unrelated_processes_are_ignored() {
    let temp = TempLab::new("stale");
    let info = lab::up(&temp.config).unwrap();
    lab::down(temp.dir()).unwrap();
    assert!(gone(info.dovecot.pid));

    // Both pid files now name a live process that is not a mail server: this test itself.
    // Dovecot alone would refuse to start ("already running"); `down` must not signal it.
    let me = std::process::id().to_string();
    fs::write(&info.dovecot.pid_file, format!("{me}\n")).unwrap();
    fs::write(&info.postfix.pid_file, format!("{me:>10}\n")).unwrap();
    let report = lab::down(temp.dir()).unwrap();
    assert_eq!(
        report,
        lab::DownReport::default(),
        "down signalled a stranger"
    );

    let again = lab::up(&temp.config).expect("up over stale pid files");
    assert_ne!(again.dovecot.pid.to_string(), me);
    let (_, reply) = imap_login(&again, "user1", &again.users.password);
    assert!(last(&reply).starts_with("a1 OK"), "{reply:?}");
}

#[test]
fn up_restarts_a_part_that_died_and_keeps_the_rest() {
    let temp = TempLab::new("partial");
    let first = lab::up(&temp.config).unwrap();
    // Kill Postfix behind the lab's back.
    unsafe {
        libc::kill(first.postfix.pid as i32, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(first.postfix.pid) {
        assert!(Instant::now() < deadline, "postfix master survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = lab::status(temp.dir()).unwrap();
    assert!(!status.is_running());
    assert_eq!(status.dovecot, Some(first.dovecot.pid));
    assert_eq!(status.postfix, None);

    // Postfix's orphaned children may still hold the port for a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        match lab::start(&temp.config) {
            Ok(report) => break report,
            Err(lab::LabError::PortInUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(err) => panic!("restarting postfix: {err}"),
        }
    };
    assert!(!report.already_running);
    assert_eq!(
        report.info.dovecot.pid, first.dovecot.pid,
        "dovecot was restarted"
    );
    assert_ne!(report.info.postfix.pid, first.postfix.pid);
    assert!(lab::status(temp.dir()).unwrap().is_running());
}

#[test]
fn listen_outside_loopback_is_refused_with_exit_2() {
    let dir = format!("/tmp/mswt-{}-refused", std::process::id());
    let (code, out, err) = run_cli(&["lab", "up", "--listen", "10.0.0.1", "--dir", &dir], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(
        !Path::new(&dir).exists(),
        "nothing may be created for a refused lab"
    );
}

#[test]
fn a_port_taken_by_someone_else_is_named_with_its_flag() {
    let temp = TempLab::new("taken");
    let squatter = std::net::TcpListener::bind(("127.0.0.1", temp.config.ports.lmtp)).unwrap();
    let (code, out, err) = run_cli(&["lab", "up"], &temp.cli_args());
    drop(squatter);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!("LMTP port 127.0.0.1:{}", temp.config.ports.lmtp))
            && err.contains("--lmtp-port"),
        "{err}"
    );
    assert!(LabInfo::load(temp.dir()).is_err(), "nothing may run");
}

#[test]
fn status_of_an_empty_directory_says_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let status = lab::status(dir.path()).unwrap();
    assert!(!status.is_running());
    assert!(status.info.is_none() && status.dovecot.is_none() && status.postfix.is_none());
    assert!(status.to_string().contains("not running"));
    assert!(matches!(
        LabInfo::load(dir.path()),
        Err(lab::LabError::NotRunning { .. })
    ));
}

#[test]
fn shared_lab_info_is_on_disk_and_points_at_running_servers() {
    let info = lab();
    let loaded = LabInfo::load(&info.dir).unwrap();
    assert_eq!(&loaded, info);
    assert!(!gone(info.dovecot.pid) && !gone(info.postfix.pid));
    assert!(info.ca_file.exists() && info.dovecot.log_file.exists());
    assert_ne!(
        info.ports,
        lab::LabPorts::default(),
        "fixture must not use default ports"
    );
}
