//! Shared fixture for the integration tests: one real lab (Dovecot + Postfix on loopback) for
//! the whole test binary, plus helpers to run the built binary and to talk raw protocol lines.
//!
//! Lifetime: [`lab()`] starts the lab on first use, in `/tmp/mswt-<pid>-shared` on free ports
//! (so it never collides with the default lab or with another developer's test run), and a
//! libc `atexit` handler stops it and removes its directory when the test process exits
//! normally (all tests passed or not). A test binary killed by a signal cannot run `atexit`;
//! the next run reaps such leftovers: every `/tmp/mswt-<pid>-*` whose `<pid>` is dead is
//! stopped with `lab::down` and deleted.
//!
//! Tests run in parallel threads against the same lab. Give each test its own mailbox with
//! [`fresh_user`] when it counts messages. Tests that start and stop labs use [`TempLab`],
//! which has its own directory and ports.

#![allow(dead_code)] // each test module uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use mailswarm::lab::{self, LabConfig, LabInfo, LabPorts};
use mailswarm::proto::net::{connect_tcp, ConnectOptions};

const DIR_PREFIX: &str = "mswt-";

/// The lab shared by all tests of this binary, started on first call.
pub fn lab() -> &'static LabInfo {
    static LAB: OnceLock<LabInfo> = OnceLock::new();
    LAB.get_or_init(|| {
        reap_stale_labs();
        let cfg = lab_config("shared");
        stop_at_exit(&cfg.dir);
        lab::up(&cfg).unwrap_or_else(|err| panic!("starting the shared test lab: {err}"))
    })
}

/// A user of the shared lab that no other test of this process gets from `fresh_user`, so a
/// test can count the messages in its INBOX. Starts at 101: `user1`..`user100` stay for tests
/// that do not care about sharing.
pub fn fresh_user() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(101);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(
        n <= lab().users.count,
        "fresh_user: the shared lab has only {} users",
        lab().users.count
    );
    n
}

/// A config for a private lab of this test process: `/tmp/mswt-<pid>-<name>` on free ports,
/// 1000 users. `name` must be unique within the binary.
pub fn lab_config(name: &str) -> LabConfig {
    LabConfig {
        dir: PathBuf::from(format!("/tmp/{DIR_PREFIX}{}-{name}", std::process::id())),
        ports: free_ports(),
        start_timeout: Duration::from_secs(30),
        ..LabConfig::default()
    }
}

/// A lab directory owned by one test: stopped and deleted on drop (and at exit, should the
/// test thread be torn down without unwinding).
pub struct TempLab {
    pub config: LabConfig,
}

impl TempLab {
    pub fn new(name: &str) -> TempLab {
        let config = lab_config(name);
        let _ = std::fs::remove_dir_all(&config.dir);
        stop_at_exit(&config.dir);
        TempLab { config }
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// `--dir D --imap-port .. --imaps-port .. --lmtp-port .. --smtp-port ..` for the CLI.
    pub fn cli_args(&self) -> Vec<String> {
        let p = self.config.ports;
        [
            "--dir".to_string(),
            self.config.dir.display().to_string(),
            "--imap-port".into(),
            p.imap.to_string(),
            "--imaps-port".into(),
            p.imaps.to_string(),
            "--lmtp-port".into(),
            p.lmtp.to_string(),
            "--smtp-port".into(),
            p.smtp.to_string(),
        ]
        .into()
    }
}

impl Drop for TempLab {
    fn drop(&mut self) {
        remove_lab(&self.config.dir);
    }
}

/// Four distinct ports that are free on 127.0.0.1 right now, below the ephemeral range
/// (32768-60999) so outgoing connections never take them before the servers bind them.
/// Distinct across calls within this process; other processes are skipped by trying to bind.
pub fn free_ports() -> LabPorts {
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread concurrent test processes over the range by pid.
    let _ = NEXT.compare_exchange(
        0,
        LOW + (std::process::id() % u32::from(HIGH - LOW)) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let pick = || loop {
        let port = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = if port >= HIGH {
            NEXT.store(LOW + 1, Ordering::Relaxed);
            LOW
        } else {
            port
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    };
    LabPorts {
        imap: pick(),
        imaps: pick(),
        lmtp: pick(),
        smtp: pick(),
    }
}

/// The built `mailswarm` binary, ready for arguments.
pub fn mailswarm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailswarm"))
}

fn stop_list() -> &'static Mutex<Vec<PathBuf>> {
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    &DIRS
}

/// Registers `dir` to be stopped and removed by the `atexit` handler.
fn stop_at_exit(dir: &Path) {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registering a plain `extern "C" fn` with no captured state.
        unsafe {
            libc::atexit(stop_labs_at_exit);
        }
    });
    stop_list().lock().unwrap().push(dir.to_path_buf());
}

extern "C" fn stop_labs_at_exit() {
    // Never panic across the FFI boundary: a poisoned lock still holds the list.
    let dirs = match stop_list().lock() {
        Ok(dirs) => dirs.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for dir in dirs {
        remove_lab(&dir);
    }
}

fn remove_lab(dir: &Path) {
    if let Err(err) = lab::down(dir) {
        eprintln!("test fixture: stopping the lab in {}: {err}", dir.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Stops and deletes labs left behind by test processes that died without `atexit`.
fn reap_stale_labs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_lab(&entry.path());
        }
    }
}

/// A line-oriented raw connection (IMAP, SMTP, LMTP) for tests that check exact replies.
pub struct LineConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl LineConn {
    pub fn connect(addr: SocketAddr) -> LineConn {
        Self::connect_from(addr, None)
    }

    /// Connects from a chosen loopback source address (Dovecot's auth penalty is per IP, so
    /// tests of failed logins use their own address and slow nobody else down).
    pub fn connect_from(addr: SocketAddr, source: Option<Ipv4Addr>) -> LineConn {
        let socket = match source {
            Some(ip) => connect_bound(addr, ip),
            None => TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("connect {addr}: {e}")),
        };
        socket.set_nodelay(true).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        LineConn {
            reader: BufReader::new(socket.try_clone().unwrap()),
            writer: socket,
        }
    }

    /// Next line without CRLF; panics on EOF or timeout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("reading a line");
        assert!(n > 0, "server closed the connection");
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("sending a line");
    }

    /// Sends `tag command` and returns all lines up to and including the tagged reply.
    pub fn imap(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(&format!("{tag} {command}"));
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Sends an SMTP/LMTP command and returns the reply lines (through the `NNN ` line).
    pub fn smtp(&mut self, command: &str) -> Vec<String> {
        self.send(command);
        self.smtp_reply()
    }

    /// Reads one (possibly multi-line) SMTP/LMTP reply.
    pub fn smtp_reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let last = line.len() < 4 || line.as_bytes()[3] == b' ';
            lines.push(line);
            if last {
                return lines;
            }
        }
    }

    /// The underlying socket (e.g. to start TLS on it).
    pub fn into_stream(self) -> TcpStream {
        self.writer
    }
}

/// Connects from `source` with the crate's own client socket set-up (bind before connect,
/// which std lacks), then hands back a blocking std stream.
fn connect_bound(addr: SocketAddr, source: Ipv4Addr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = ConnectOptions {
        source: Some(source.into()),
        ..ConnectOptions::default()
    };
    let stream = runtime.block_on(async {
        let stream = connect_tcp(addr, &opts)
            .await
            .unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"));
        stream.into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}
