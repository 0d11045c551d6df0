//! The IMAP client against real Dovecot 2.3 on loopback.
//!
//! Every test takes a [`Target`] (address and password) and a user of its own (`userN`, one N
//! per test), so the tests do not interfere and can move to the shared `common::lab()` fixture
//! by changing only [`target`].

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailswarm::proto::imap::imap_types::fetch::Section;
use mailswarm::proto::imap::imap_types::flag::FlagPerm;
use mailswarm::proto::imap::{
    BodyPart, Cap, Direction, FetchItem, Flag, ImapClient, ImapError, ImapLimits, LoginMethod,
    MailboxEvent, SearchQuery, SequenceSet, SessionState, StatusDataItemName, StoreType,
};
use mailswarm::proto::net::ConnectOptions;
use mailswarm::proto::{ErrorKind, Secret};
use tokio::net::TcpStream;

/// Where the tests connect.
struct Target {
    addr: SocketAddr,
    password: Secret<String>,
}

/// TEMPORARY until `common::lab()` lands: a private Dovecot for this test binary.
fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(private_dovecot::start)
}

fn user(n: u32) -> String {
    format!("user{n}")
}

async fn connect(target: &Target) -> ImapClient<TcpStream> {
    ImapClient::connect(
        target.addr,
        &ConnectOptions::default(),
        ImapLimits::default(),
    )
    .await
    .expect("connect and greeting")
}

async fn login(target: &Target, user: &str) -> ImapClient<TcpStream> {
    let mut imap = connect(target).await;
    imap.login(user, &target.password).await.expect("login");
    imap
}

/// A small RFC 5322 message with a recognisable subject.
fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
Message-ID: <{subject}@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn set(text: &str) -> SequenceSet {
    SequenceSet::try_from(text).unwrap()
}

/// Status word and text of a tagged line such as `A7 OK [CODE] done\r\n`.
fn tagged_text(raw: &[u8]) -> (String, String) {
    let line = String::from_utf8_lossy(raw);
    let mut parts = line.trim_end().splitn(3, ' ');
    let tag = parts.next().unwrap_or_default();
    assert!(tag.starts_with('A'), "{line:?}");
    let status = parts.next().unwrap_or_default().to_owned();
    (status, parts.next().unwrap_or_default().to_owned())
}

fn sent_lines(imap: &ImapClient<TcpStream>) -> Vec<String> {
    imap.transcript()
        .iter()
        .filter(|e| e.direction == Direction::Sent)
        .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
        .collect()
}

#[tokio::test]
async fn login_with_authenticate_plain_and_with_login() {
    let target = target();
    let mut imap = connect(target).await;
    // A fresh imap-login process may greet with "Waiting for authentication process" and no
    // capabilities; then they come in a second untagged OK, so ask explicitly.
    if !imap.capabilities().has(Cap::AuthPlain) {
        imap.capability().await.unwrap();
    }
    assert!(imap.capabilities().has(Cap::AuthPlain));
    assert!(imap.capabilities().has(Cap::SaslIr));
    imap.enable_transcript(8);
    imap.login(&user(1), &target.password).await.unwrap();
    assert_eq!(imap.state(), SessionState::Authenticated);
    // The tagged OK carried the post-login capabilities.
    assert!(imap.capabilities().has(Cap::UidPlus));
    let sent = sent_lines(&imap);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].ends_with(" AUTHENTICATE PLAIN <redacted>\r\n"),
        "{sent:?}"
    );
    imap.logout().await.unwrap();

    let mut imap = connect(target).await;
    imap.enable_transcript(8);
    imap.login_with(&user(1), &target.password, LoginMethod::Login)
        .await
        .unwrap();
    assert_eq!(imap.state(), SessionState::Authenticated);
    assert_eq!(
        sent_lines(&imap),
        vec!["A1 LOGIN <redacted>\r\n".to_owned()]
    );
    let received = imap.transcript();
    let password = target.password.expose().as_bytes();
    assert!(received
        .iter()
        .all(|e| !e.bytes.windows(password.len()).any(|w| w == password)));
    imap.logout().await.unwrap();

    // Dovecot delays repeated failures from one address, so each attempt gets its own source.
    for (method, source) in [(LoginMethod::Plain, 2), (LoginMethod::Login, 3)] {
        let options = ConnectOptions {
            source: Some([127, 0, 0, source].into()),
            ..ConnectOptions::default()
        };
        let mut imap = ImapClient::connect(target.addr, &options, ImapLimits::default())
            .await
            .unwrap();
        let wrong = Secret::from("not-the-password");
        let err = imap.login_with(&user(1), &wrong, method).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
        assert!(!format!("{err:?}").contains("not-the-password"));
        assert_eq!(imap.state(), SessionState::NotAuthenticated);
    }
}

#[tokio::test]
async fn select_append_and_fetch_every_item_kind() {
    let target = target();
    let mut imap = login(target, &user(2)).await;
    let status = imap
        .status(
            "INBOX",
            &[StatusDataItemName::Messages, StatusDataItemName::UidNext],
        )
        .await
        .unwrap();
    assert_eq!((status.messages, status.uid_next), (Some(0), Some(1)));
    let boxes = imap.list("", "*").await.unwrap();
    assert!(boxes.iter().any(|b| b.name == "INBOX"), "{boxes:?}");

    let info = imap.select("INBOX").await.unwrap();
    assert_eq!((info.exists, info.recent, info.uid_next), (0, 0, Some(1)));
    assert!(info.uid_validity.is_some());
    assert!(!info.read_only);
    assert!(info.flags.contains(&Flag::Seen));
    assert!(info.permanent_flags.contains(&FlagPerm::Asterisk));
    assert_eq!(imap.state(), SessionState::Selected);

    // LITERAL+ (the default when announced), then a synchronizing literal.
    imap.enable_transcript(32);
    let first = message("first", "Hello from the first message.");
    let uid1 = imap
        .append("INBOX", &[], None, &first)
        .await
        .unwrap()
        .unwrap();
    imap.set_use_literal_plus(false);
    let second = message("second", &"x".repeat(5000));
    let uid2 = imap
        .append("INBOX", &[Flag::Flagged], None, &second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((uid1.uid, uid2.uid), (1, 2));
    assert_eq!(Some(uid1.uid_validity), info.uid_validity);
    let sent = sent_lines(&imap);
    // One write for the non-synchronizing literal; the synchronizing one stops after `{N}`.
    assert!(
        sent[0].contains(&format!("{{{}+}}\r\nFrom: Alice", first.len())),
        "{sent:?}"
    );
    assert!(
        sent[1].ends_with(&format!("{{{}}}\r\n", second.len())),
        "{sent:?}"
    );
    assert!(sent[2].starts_with("From: Alice"), "{sent:?}");
    // Dovecot reports the new messages to the selected session.
    assert_eq!(imap.mailbox().exists(), 2);

    let items = [
        FetchItem::Flags,
        FetchItem::Uid,
        FetchItem::Rfc822Size,
        FetchItem::Envelope,
        FetchItem::BodyStructure,
        FetchItem::InternalDate,
        FetchItem::Body {
            part: BodyPart::HeaderFields(&["Subject", "From"]),
            peek: true,
            partial: None,
        },
        FetchItem::Body {
            part: BodyPart::Full,
            peek: true,
            partial: None,
        },
    ];
    let messages = imap.fetch(&set("1:2"), &items).await.unwrap();
    assert_eq!(messages.len(), 2);
    for (fetched, (sent, subject)) in messages
        .iter()
        .zip([(&first, "first"), (&second, "second")])
    {
        assert_eq!(fetched.body().unwrap().as_ref(), &sent[..]);
        assert_eq!(fetched.rfc822_size, Some(sent.len() as u32));
        let envelope = fetched.envelope.as_ref().unwrap();
        let got_subject = envelope.subject.0.as_ref().map(|s| s.as_ref().to_vec());
        assert_eq!(got_subject, Some(subject.as_bytes().to_vec()));
        let headers = String::from_utf8_lossy(fetched.header_fields().unwrap()).into_owned();
        assert!(
            headers.contains(&format!("Subject: {subject}\r\n")),
            "{headers:?}"
        );
        assert!(
            headers.contains("From: Alice <alice@example.org>\r\n"),
            "{headers:?}"
        );
        assert!(!headers.contains("To:"), "{headers:?}");
        assert!(fetched.body_structure.is_some());
        assert!(fetched.internal_date.is_some());
        assert!(!fetched.has_flag(&Flag::Seen), "PEEK must not set \\Seen");
    }
    assert!(messages[1].has_flag(&Flag::Flagged));
    assert_eq!((messages[0].uid, messages[1].uid), (Some(1), Some(2)));

    // Partial body, by UID, without PEEK: sets \Seen.
    let partial = FetchItem::Body {
        part: BodyPart::Full,
        peek: false,
        partial: Some((6, 5)),
    };
    let fetched = imap.uid_fetch(&set("2"), &[partial]).await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].seq, 2);
    let section = fetched[0].section(None).unwrap();
    assert_eq!(section.origin, Some(6));
    assert_eq!(section.data.as_deref(), Some(&second[6..11]));
    let flags = imap.fetch(&set("2"), &[FetchItem::Flags]).await.unwrap();
    assert!(flags[0].has_flag(&Flag::Seen));

    let text = FetchItem::Body {
        part: BodyPart::Text,
        peek: true,
        partial: None,
    };
    let fetched = imap.fetch(&set("1"), &[text]).await.unwrap();
    let section = fetched[0].section(Some(&Section::Text(None))).unwrap();
    assert_eq!(
        section.data.as_deref(),
        Some(&b"Hello from the first message.\r\n"[..])
    );

    let info = imap.examine("INBOX").await.unwrap();
    assert!(info.read_only);
    assert_eq!(info.exists, 2);
    imap.logout().await.unwrap();
}

#[tokio::test]
async fn store_search_and_expunge() {
    let target = target();
    let mut imap = login(target, &user(3)).await;
    for subject in ["one", "two", "three", "four"] {
        imap.append("INBOX", &[], None, &message(subject, subject))
            .await
            .unwrap();
    }
    imap.select("INBOX").await.unwrap();
    assert_eq!(imap.mailbox().exists(), 4);

    let answered = imap
        .store(&set("2"), StoreType::Add, &[Flag::Deleted], false)
        .await
        .unwrap();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].seq, 2);
    assert!(answered[0].has_flag(&Flag::Deleted));
    let silent = imap
        .uid_store(&set("3"), StoreType::Add, &[Flag::Flagged], true)
        .await
        .unwrap();
    assert!(silent.is_empty());

    let deleted = SearchQuery::parse("DELETED").unwrap();
    assert_eq!(imap.search(&deleted).await.unwrap(), vec![2]);
    assert_eq!(imap.uid_search(&deleted).await.unwrap(), vec![2]);
    let subject = SearchQuery::parse("SUBJECT \"three\"").unwrap();
    assert_eq!(imap.search(&subject).await.unwrap(), vec![3]);
    assert_eq!(
        imap.search(&SearchQuery::all()).await.unwrap(),
        vec![1, 2, 3, 4]
    );

    imap.store(&set("3"), StoreType::Remove, &[Flag::Flagged], true)
        .await
        .unwrap();
    imap.store(&set("4"), StoreType::Replace, &[Flag::Answered], true)
        .await
        .unwrap();
    let flagged = SearchQuery::parse("FLAGGED").unwrap();
    assert!(imap.search(&flagged).await.unwrap().is_empty());
    let answered = SearchQuery::parse("ANSWERED").unwrap();
    assert_eq!(imap.search(&answered).await.unwrap(), vec![4]);

    assert_eq!(imap.expunge().await.unwrap(), vec![2]);
    assert_eq!(imap.mailbox().exists(), 3);
    // After the expunge sequence numbers moved, UIDs did not: message "three" is seq 2, UID 3.
    assert_eq!(imap.search(&subject).await.unwrap(), vec![2]);
    assert_eq!(imap.uid_search(&subject).await.unwrap(), vec![3]);

    // UID EXPUNGE removes only the listed UIDs among the \Deleted ones.
    imap.store(&set("1:2"), StoreType::Add, &[Flag::Deleted], true)
        .await
        .unwrap();
    assert_eq!(imap.uid_expunge(&set("3")).await.unwrap(), vec![2]);
    assert_eq!(imap.mailbox().exists(), 2);
    assert_eq!(imap.uid_search(&deleted).await.unwrap(), vec![1]);
    imap.logout().await.unwrap();
}

#[tokio::test]
async fn idle_sees_exists_when_another_session_appends() {
    let target = target();
    let mut idler = login(target, &user(4)).await;
    idler.select("INBOX").await.unwrap();
    idler.idle().await.unwrap();
    assert_eq!(idler.state(), SessionState::Idle);
    assert_eq!(idler.buffer_capacity(), 0);
    println!(
        "idle client: size_of {} B, heap {} B",
        std::mem::size_of::<ImapClient<TcpStream>>(),
        idler.heap_bytes()
    );

    let mut other = login(target, &user(4)).await;
    other
        .append("INBOX", &[], None, &message("pushed", "new mail"))
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        match idler
            .wait_for_event(deadline - Instant::now())
            .await
            .unwrap()
        {
            Some(MailboxEvent::Exists(n)) => seen = Some(n),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(seen, Some(1), "no EXISTS within 10 s");
    idler.done().await.unwrap();
    assert_eq!(idler.state(), SessionState::Selected);
    let fetched = idler.fetch(&set("1"), &[FetchItem::Uid]).await.unwrap();
    assert_eq!(fetched[0].uid, Some(1));
    other.logout().await.unwrap();
    idler.logout().await.unwrap();
}

#[tokio::test]
async fn id_enable_capability_noop_and_logout() {
    let target = target();
    let mut imap = login(target, &user(5)).await;
    let fields = imap.id(Some(&[("name", Some("mailswarm"))])).await.unwrap();
    assert!(
        fields.contains(&("name".to_owned(), Some("Dovecot".to_owned()))),
        "{fields:?}"
    );
    assert_eq!(
        imap.enable(&["CONDSTORE"]).await.unwrap(),
        vec!["CONDSTORE"]
    );
    let info = imap.select("INBOX").await.unwrap();
    assert!(info.highest_modseq.is_some(), "{info:?}");
    let caps = imap.capability().await.unwrap();
    assert!(caps.has(Cap::Imap4Rev1) && caps.has(Cap::Idle) && caps.has_named("SORT"));
    imap.noop().await.unwrap();
    let err = imap.select("NoSuchMailbox").await.unwrap_err();
    assert!(
        matches!(
            err,
            ImapError::No {
                command: "SELECT",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(imap.state(), SessionState::Authenticated);
    imap.logout().await.unwrap();
    assert_eq!(imap.state(), SessionState::LoggedOut);
}

#[tokio::test]
async fn raw_exchanges_keep_exact_bytes() {
    let target = target();
    let mut imap = login(target, &user(6)).await;
    let exchange = imap.execute_raw(b"CAPABILITY").await.unwrap();
    assert_eq!(exchange.responses.len(), 1);
    assert!(exchange.responses[0]
        .raw
        .starts_with(b"* CAPABILITY IMAP4rev1 "));
    assert_eq!(tagged_text(&exchange.completion.raw).0, "OK");

    let exchange = imap
        .execute_raw(b"APPEND INBOX {5}\r\nhello")
        .await
        .unwrap();
    let (status, text) = tagged_text(&exchange.completion.raw);
    assert_eq!(status, "OK");
    assert!(text.starts_with("[APPENDUID "), "{text}");
    assert_eq!(&exchange.responses[0].raw[..4], b"+ OK");

    let exchange = imap.execute_raw(b"SELECT INBOX").await.unwrap();
    assert_eq!(imap.state(), SessionState::Selected);
    assert!(exchange
        .responses
        .iter()
        .any(|r| &r.raw[..] == b"* 1 EXISTS\r\n"));
    let exchange = imap.execute_raw(b"FETCH 1 (BODY.PEEK[])").await.unwrap();
    assert_eq!(
        &exchange.responses[0].raw[..],
        b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n"
    );

    let exchange = imap.execute_raw(b"BOGUS").await.unwrap();
    assert_eq!(
        exchange.status(),
        Some(mailswarm::proto::imap::imap_types::response::StatusKind::Bad)
    );
    imap.noop().await.unwrap();
    imap.logout().await.unwrap();
}

#[tokio::test]
async fn large_message_round_trip_leaves_no_big_buffer() {
    let target = target();
    let mut imap = login(target, &user(7)).await;
    let line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef\r\n";
    let big = message("big", &line.repeat((1 << 20) / line.len()));
    assert!(big.len() > 1 << 20);
    imap.append("INBOX", &[], None, &big).await.unwrap();
    imap.select("INBOX").await.unwrap();
    let full = FetchItem::Body {
        part: BodyPart::Full,
        peek: true,
        partial: None,
    };
    let fetched = imap.fetch(&set("1"), &[full]).await.unwrap();
    assert_eq!(fetched[0].body().map(|b| b.len()), Some(big.len()));
    assert!(fetched[0].body().unwrap().as_ref() == &big[..]);
    drop(fetched);
    assert_eq!(imap.buffer_capacity(), 0);
    imap.idle().await.unwrap();
    assert_eq!(imap.buffer_capacity(), 0);
    // Only the capability list (a few hundred bytes with Dovecot) stays on the heap.
    assert!(imap.heap_bytes() < 1024, "{} bytes", imap.heap_bytes());
    imap.done().await.unwrap();
    imap.logout().await.unwrap();
}

/// Dovecot's BODYSTRUCTURE and ENVELOPE for a multipart message with an attachment, address
/// groups and encoded words must pass the strict decoder.
#[tokio::test]
async fn multipart_structure_and_odd_addresses_decode() {
    let target = target();
    let mut imap = login(target, &user(8)).await;
    let mime = "From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\r\n\
To: undisclosed-recipients:;\r\nCc: \"Doe, Jane\" <jane@example.org>, plain@example.org\r\n\
Subject: =?UTF-8?B?w6TDtsO8?=\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Gr=C3=BC=C3=9Fe\r\n--b1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAECAwQFBgcICQ==\r\n--b1--\r\n";
    imap.append("INBOX", &[], None, mime.as_bytes())
        .await
        .unwrap();
    imap.select("INBOX").await.unwrap();
    let part2 = FetchItem::Body {
        part: BodyPart::Part(&[2]),
        peek: true,
        partial: None,
    };
    let items = [FetchItem::BodyStructure, FetchItem::Envelope, part2];
    let fetched = imap.fetch(&set("1"), &items).await.unwrap();
    assert!(fetched[0].body_structure.is_some());
    let envelope = fetched[0].envelope.as_ref().unwrap();
    assert_eq!(envelope.cc.len(), 2);
    let section = &fetched[0].sections[0];
    assert_eq!(section.data.as_deref(), Some(&b"AAECAwQFBgcICQ=="[..]));
    imap.logout().await.unwrap();
}

/// TEMPORARY private Dovecot, replaced by the shared lab fixture once it exists. It runs on a
/// free loopback port with its own base_dir under a temp dir, a static passdb (any user,
/// one password) and Maildirs owned by an unprivileged user; it stops when this test process
/// exits (the wrapper shell waits on our stdin pipe, then removes the temp dir).
mod private_dovecot {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::Target;
    use mailswarm::proto::Secret;

    const PASSWORD: &str = "imap-test-secret";

    pub fn start() -> Target {
        let dir = tempfile::Builder::new()
            .prefix("mailswarm-imap-dovecot-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let root = effective_uid() == 0;
        let (uid, gid) = if root { (65534, 65534) } else { own_ids() };
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        set_mode(&dir, 0o755);
        if root {
            chown(&dir.join("mail"), uid, gid);
        }
        let users = if root {
            String::new()
        } else {
            let me = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
            format!("default_internal_user = {me}\ndefault_login_user = {me}\n")
        };
        let d = dir.display();
        let config = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
listen = 127.0.0.1\nprotocols = imap\nssl = no\ndisable_plaintext_auth = no\n\
auth_mechanisms = plain login\nmail_location = maildir:{d}/mail/%u\n\
mail_max_userip_connections = 100\nmailbox_idle_check_interval = 1 secs\nfirst_valid_uid = 1\nauth_failure_delay = 0\n\
{users}passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n\
userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/mail/%u\n}}\n\
service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n"
        );
        let config_path = dir.join("dovecot.conf");
        std::fs::write(&config_path, config).unwrap();
        let dovecot = ["/usr/sbin/dovecot", "dovecot"]
            .into_iter()
            .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
            .unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg("\"$0\" -F -c \"$1\" & pid=$!; read _; kill -TERM $pid; wait $pid; rm -rf \"$2\"")
            .arg(dovecot)
            .arg(&config_path)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        // Never dropped: the stdin pipe closes when the test process exits, which stops it.
        std::mem::forget(child);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_ready(addr, &dir.join("dovecot.log"));
        Target {
            addr,
            password: Secret::from(PASSWORD),
        }
    }

    /// Waits until the greeting says "ready" (before that Dovecot answers "Waiting for
    /// authentication process").
    fn wait_ready(addr: SocketAddr, log: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(addr) {
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut greeting = [0u8; 512];
                let n = stream.read(&mut greeting).unwrap_or(0);
                if String::from_utf8_lossy(&greeting[..n]).contains("ready") {
                    let _ = stream.write_all(b"x LOGOUT\r\n");
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("private dovecot on {addr} did not become ready; log:\n{log}");
    }

    fn effective_uid() -> u32 {
        // /proc/self/status "Uid: real effective ...": no libc call needed.
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(2))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(u32::MAX)
    }

    fn own_ids() -> (u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata("/proc/self").unwrap();
        (meta.uid(), meta.gid())
    }

    fn set_mode(path: &std::path::Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn chown(path: &std::path::Path, uid: u32, gid: u32) {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}
