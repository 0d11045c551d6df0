//! A private Dovecot (LMTP + IMAP, STARTTLS with a test CA) for this test binary, until the
//! lab fixture `common::lab()` exists.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Target;

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
pub fn dev_dovecot() -> &'static Target {
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
