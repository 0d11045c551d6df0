//! The lab: private, real Dovecot 2.3 and Postfix 3.7 servers on loopback, started from
//! Debian's packages, so tests, demos and `mailswarm run` hit real servers instead of mocks.
//!
//! Everything of one lab lives in one directory (default `/tmp/mailswarm-lab`): generated
//! configs, a TLS CA, maildirs, logs, pid files and `lab.json` (a [`LabInfo`]) that other
//! commands read to find the servers. Outside it the lab only creates the unprivileged mail
//! user [`MAIL_USER`] and raises (never lowers) the inotify sysctls. A system-wide Dovecot or
//! Postfix is never started, stopped or reconfigured: every pid is checked against the lab's
//! own config/queue directory before it is signalled.
//!
//! `up` is idempotent (a running lab with the same settings is left alone, missing parts are
//! restarted), `down` stops exactly what `up` started. Both hold a lock file in the directory,
//! so concurrent calls on one lab serialize.

mod dovecot;
mod layout;
mod postfix;
mod probe;
mod process;
mod system;
mod tls;

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use layout::Layout;
use probe::{Probe, ProbeFailure};

pub use dovecot::{
    IMAP_PROCESS_LIMIT, LMTP_PROCESS_LIMIT, LOGIN_CLIENT_LIMIT, LOGIN_PROCESS_LIMIT,
    MAIL_MAX_USERIP_CONNECTIONS, SERVICE_CLIENT_LIMIT, VSZ_LIMIT,
};
pub use postfix::SMTPD_PROCESS_LIMIT;
pub use system::{HostLimits, INOTIFY_INSTANCES, INOTIFY_WATCHES, MAIL_USER};

/// Where the lab lives unless `--dir` or `$MAILSWARM_LAB_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/tmp/mailswarm-lab";
/// Environment variable naming the lab directory.
pub const DIR_ENV: &str = "MAILSWARM_LAB_DIR";
/// Mail domain of the lab users: `user7@lab.test` (bare `user7` works too).
pub const DOMAIN: &str = "lab.test";
/// The one password of every lab user. Public on purpose: the lab only listens on loopback.
pub const PASSWORD: &str = "mailswarm";
/// Users are `user1` .. `user{count}`.
pub const USER_PATTERN: &str = "user{n}";
/// Backend name shown by `ID` (`"x-backend" "b1"`) and in the greeting.
pub const DEFAULT_BACKEND: &str = "b1";
pub const DEFAULT_USERS: u32 = 1000;
pub const MAX_USERS: u32 = 1_000_000;
/// Version of the `lab.json` format.
pub const INFO_VERSION: u32 = 1;

/// Listening ports of a lab, all on [`LabConfig::listen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPorts {
    /// IMAP with STARTTLS.
    pub imap: u16,
    /// IMAP over implicit TLS.
    pub imaps: u16,
    /// Dovecot LMTP (TCP).
    pub lmtp: u16,
    /// Postfix submission: SMTP AUTH and STARTTLS.
    pub smtp: u16,
}

impl Default for LabPorts {
    fn default() -> Self {
        LabPorts {
            imap: 10143,
            imaps: 10993,
            lmtp: 10024,
            smtp: 10025,
        }
    }
}

/// What `up` should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    pub dir: PathBuf,
    /// Must be in 127.0.0.0/8: the lab never listens beyond loopback.
    pub listen: Ipv4Addr,
    pub ports: LabPorts,
    /// Number of users: `user1` .. `user{users}`.
    pub users: u32,
    /// Backend name (letters, digits, `-`), see [`DEFAULT_BACKEND`].
    pub backend: String,
    /// How long `up` waits for every listener to greet.
    pub start_timeout: Duration,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            dir: default_dir(),
            listen: Ipv4Addr::LOCALHOST,
            ports: LabPorts::default(),
            users: DEFAULT_USERS,
            backend: DEFAULT_BACKEND.to_string(),
            start_timeout: Duration::from_secs(30),
        }
    }
}

/// `$MAILSWARM_LAB_DIR`, else [`DEFAULT_DIR`].
pub fn default_dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// The lab users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabUsers {
    /// [`USER_PATTERN`]: `{n}` runs from `first` to `first + count - 1`.
    pub pattern: String,
    pub first: u32,
    pub count: u32,
    pub password: String,
}

impl LabUsers {
    /// Login name of user `n` (`user7`).
    pub fn name(&self, n: u32) -> String {
        self.pattern.replace("{n}", &n.to_string())
    }
    /// All valid `n`.
    pub fn range(&self) -> std::ops::RangeInclusive<u32> {
        self.first..=self.first + self.count.saturating_sub(1)
    }
}

/// One running daemon of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Pid of the master process (its process group holds every helper process).
    pub pid: u32,
    pub pid_file: PathBuf,
    pub log_file: PathBuf,
    /// `dovecot.conf`, or Postfix's config directory.
    pub config: PathBuf,
}

/// A running lab, as written to `lab.json` by `up`. Read it with [`LabInfo::load`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabInfo {
    /// [`INFO_VERSION`].
    pub version: u32,
    pub dir: PathBuf,
    pub listen: Ipv4Addr,
    pub ports: LabPorts,
    pub users: LabUsers,
    /// [`DOMAIN`].
    pub domain: String,
    pub backend: String,
    /// The lab CA (PEM); pin it to verify IMAPS, STARTTLS and SMTP STARTTLS.
    pub ca_file: PathBuf,
    pub dovecot: ServerInfo,
    pub postfix: ServerInfo,
    /// Seconds since the Unix epoch when `up` started the servers.
    pub started_unix: u64,
}

impl LabInfo {
    /// Reads `DIR/lab.json`. Fails with [`LabError::NotRunning`] when there is none.
    pub fn load(dir: impl AsRef<Path>) -> Result<LabInfo, LabError> {
        let dir = dir.as_ref();
        let path = Layout::new(dir).info_file();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LabError::NotRunning {
                    dir: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(LabError::io(format!("reading {}", path.display()), e)),
        };
        let info: LabInfo =
            serde_json::from_str(&text).map_err(|source| LabError::BadInfo { path, source })?;
        Ok(info)
    }

    pub fn imap_addr(&self) -> SocketAddr {
        SocketAddr::from((self.listen, self.ports.imap))
    }
    pub fn imaps_addr(&self) -> SocketAddr {
        SocketAddr::from((self.listen, self.ports.imaps))
    }
    pub fn lmtp_addr(&self) -> SocketAddr {
        SocketAddr::from((self.listen, self.ports.lmtp))
    }
    pub fn smtp_addr(&self) -> SocketAddr {
        SocketAddr::from((self.listen, self.ports.smtp))
    }
    /// Login name of user `n`.
    pub fn user(&self, n: u32) -> String {
        self.users.name(n)
    }
    /// Mail address of user `n` (`user7@lab.test`).
    pub fn address(&self, n: u32) -> String {
        format!("{}@{}", self.users.name(n), self.domain)
    }

    fn matches(&self, cfg: &LabConfig) -> bool {
        self.listen == cfg.listen
            && self.ports == cfg.ports
            && self.users.count == cfg.users
            && self.backend == cfg.backend
    }

    fn settings(&self) -> String {
        format!(
            "listen {}, ports imap {} imaps {} lmtp {} smtp {}, {} users, backend {}",
            self.listen,
            self.ports.imap,
            self.ports.imaps,
            self.ports.lmtp,
            self.ports.smtp,
            self.users.count,
            self.backend
        )
    }
}

impl fmt::Display for LabInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self.users.range();
        writeln!(f, "  IMAP     {} (STARTTLS)", self.imap_addr())?;
        writeln!(f, "  IMAPS    {}", self.imaps_addr())?;
        writeln!(f, "  LMTP     {}", self.lmtp_addr())?;
        writeln!(f, "  SMTP     {} (AUTH, STARTTLS)", self.smtp_addr())?;
        writeln!(
            f,
            "  users    {}..{} @{}, password {:?}",
            self.users.name(*users.start()),
            self.users.name(*users.end()),
            self.domain,
            self.users.password
        )?;
        writeln!(f, "  backend  {}", self.backend)?;
        writeln!(f, "  CA       {}", self.ca_file.display())?;
        writeln!(
            f,
            "  dovecot  pid {}, log {}",
            self.dovecot.pid,
            self.dovecot.log_file.display()
        )?;
        writeln!(
            f,
            "  postfix  pid {}, log {}",
            self.postfix.pid,
            self.postfix.log_file.display()
        )?;
        write!(
            f,
            "  info     {}",
            Layout::new(&self.dir).info_file().display()
        )
    }
}

/// Errors of the lab. Each message names the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    #[error("--listen {0} is not a loopback address: the lab only listens on 127.0.0.0/8")]
    NotLoopback(Ipv4Addr),
    #[error("invalid lab setting: {0}")]
    InvalidConfig(String),
    #[error(
        "the lab must run as root (Dovecot switches to the mail user `{MAIL_USER}`); \
         run it with sudo or in the CI container"
    )]
    NotRoot,
    #[error(
        "missing Debian packages: {packages}; install them with \
         `apt-get install -y --no-install-recommends {packages}` (or run ci/install-deps)",
        packages = .packages.join(" ")
    )]
    MissingPackages { packages: Vec<String> },
    #[error(
        "{what} port {addr} is already in use (another lab? see `mailswarm lab status`); \
         pick another with --{flag}"
    )]
    PortInUse {
        what: &'static str,
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error(
        "a lab already runs in {} with other settings ({running}); \
         stop it first with `mailswarm lab down --dir {}`",
        .dir.display(), .dir.display()
    )]
    AlreadyRunning { dir: PathBuf, running: String },
    #[error("no lab runs in {} (no lab.json); start one with `mailswarm lab up --dir {}`",
        .dir.display(), .dir.display())]
    NotRunning { dir: PathBuf },
    #[error("{} is not a valid lab.json ({source}); run `mailswarm lab down` and `up` again",
        .path.display())]
    BadInfo {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{server} did not start: {detail}{}", log_suffix(.log_tail))]
    StartFailed {
        server: &'static str,
        detail: String,
        log_tail: String,
    },
    #[error("{what} on {addr} {why} (last error: {last}){}", log_suffix(.log_tail))]
    NotReady {
        what: &'static str,
        addr: SocketAddr,
        why: String,
        last: String,
        log_tail: String,
    },
    #[error("{what} failed: {output}")]
    Command { what: String, output: String },
    #[error("making the lab certificates: {0}")]
    Tls(rcgen::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn log_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\nlast log lines:\n{tail}")
    }
}

impl LabError {
    fn io(context: impl Into<String>, source: io::Error) -> LabError {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What `up` did.
#[derive(Debug, Clone)]
pub struct UpReport {
    pub info: LabInfo,
    /// True when the whole lab was already running and nothing was started.
    pub already_running: bool,
    /// Host problems that do not stop the lab (low inotify limits, ...).
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

/// Starts the lab (see [`start`]) and returns what `lab.json` holds.
pub fn up(cfg: &LabConfig) -> Result<LabInfo, LabError> {
    start(cfg).map(|report| report.info)
}

/// Starts the lab described by `cfg` and waits until IMAP, IMAPS, LMTP and SMTP greet.
/// Harmless when the same lab already runs; restarts a part that died; refuses to change the
/// settings of a running lab. On failure, whatever this call started is stopped again.
pub fn start(cfg: &LabConfig) -> Result<UpReport, LabError> {
    let started = Instant::now();
    validate(cfg)?;
    system::require_root()?;
    system::check_packages()?;
    let dir = absolute(&cfg.dir)?;
    create_dir(&dir, 0o755)?;
    let dir = fs::canonicalize(&dir)
        .map_err(|e| LabError::io(format!("resolving {}", dir.display()), e))?;
    validate_dir(&dir)?;
    let layout = Layout::new(&dir);
    let _lock = lock(&layout)?;

    let dovecot_pid = dovecot::running(&layout);
    let postfix_pid = postfix::running(&layout);
    let mut warnings = Vec::new();
    if dovecot_pid.is_some() || postfix_pid.is_some() {
        match LabInfo::load(&dir) {
            Ok(info) if info.matches(cfg) => {}
            Ok(info) => {
                return Err(LabError::AlreadyRunning {
                    dir,
                    running: info.settings(),
                })
            }
            Err(_) => {
                return Err(LabError::AlreadyRunning {
                    dir,
                    running: "servers from an earlier lab without a readable lab.json".into(),
                })
            }
        }
    } else {
        // Fresh start: everything is (re)generated.
        check_ports_free(cfg, true, true)?;
        tls::prepare(&layout, cfg.listen, &cfg.backend)?;
        warnings.extend(system::raise_inotify_limits());
    }

    let mut started_now = Vec::new();
    let result = start_missing(cfg, &layout, dovecot_pid, postfix_pid, &mut started_now);
    let (dovecot_pid, postfix_pid) = match result {
        Ok(pids) => pids,
        Err(err) => {
            for pid in started_now.into_iter().rev() {
                process::stop(pid, process::STOP_GRACE);
            }
            return Err(err);
        }
    };
    let already_running = started_now.is_empty();

    let info = LabInfo {
        version: INFO_VERSION,
        dir: dir.clone(),
        listen: cfg.listen,
        ports: cfg.ports,
        users: LabUsers {
            pattern: USER_PATTERN.to_string(),
            first: 1,
            count: cfg.users,
            password: PASSWORD.to_string(),
        },
        domain: DOMAIN.to_string(),
        backend: cfg.backend.clone(),
        ca_file: layout.ca_cert(),
        dovecot: ServerInfo {
            pid: dovecot_pid,
            pid_file: layout.dovecot_pid_file(),
            log_file: layout.dovecot_log(),
            config: layout.dovecot_config(),
        },
        postfix: ServerInfo {
            pid: postfix_pid,
            pid_file: layout.postfix_pid_file(),
            log_file: layout.postfix_log(),
            config: layout.postfix_config_dir(),
        },
        started_unix: match LabInfo::load(&dir) {
            Ok(old) if already_running => old.started_unix,
            _ => SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        },
    };
    write_info(&layout, &info)?;
    warnings.extend(HostLimits::read().warnings(u64::from(IMAP_PROCESS_LIMIT)));
    warnings.dedup();
    Ok(UpReport {
        info,
        already_running,
        warnings,
        elapsed: started.elapsed(),
    })
}

/// Starts Dovecot and/or Postfix when not running and waits until every listener greets.
/// Pids of what it started go to `started_now` so the caller can undo a failed start.
fn start_missing(
    cfg: &LabConfig,
    layout: &Layout,
    dovecot_pid: Option<u32>,
    postfix_pid: Option<u32>,
    started_now: &mut Vec<u32>,
) -> Result<(u32, u32), LabError> {
    let deadline = Instant::now() + cfg.start_timeout;
    let dovecot_pid = match dovecot_pid {
        Some(pid) => pid,
        None => {
            check_ports_free(cfg, true, false)?;
            let (uid, gid) = system::ensure_mail_user()?;
            prepare_dovecot(cfg, layout, uid, gid)?;
            let pid = dovecot::start(layout)?;
            started_now.push(pid);
            pid
        }
    };
    let ca = layout.ca_cert();
    let dovecot_alive = || process::is_alive(dovecot_pid);
    for probe in [
        Probe {
            what: "Dovecot IMAP",
            addr: SocketAddr::from((cfg.listen, cfg.ports.imap)),
            expect: "* OK",
            tls_ca: None,
        },
        Probe {
            what: "Dovecot IMAPS",
            addr: SocketAddr::from((cfg.listen, cfg.ports.imaps)),
            expect: "* OK",
            tls_ca: Some(&ca),
        },
        Probe {
            what: "Dovecot LMTP",
            addr: SocketAddr::from((cfg.listen, cfg.ports.lmtp)),
            expect: "220 ",
            tls_ca: None,
        },
    ] {
        probe::wait_ready(&probe, deadline, dovecot_alive)
            .map_err(|f| not_ready(f, cfg, &layout.dovecot_log()))?;
    }

    let postfix_pid = match postfix_pid {
        Some(pid) => pid,
        None => {
            check_ports_free(cfg, false, true)?;
            postfix::write_config(&postfix::PostfixSettings {
                layout,
                listen: cfg.listen,
                ports: cfg.ports,
                users: cfg.users,
            })?;
            let pid = postfix::start(layout)?;
            started_now.push(pid);
            pid
        }
    };
    let smtp = Probe {
        what: "Postfix SMTP",
        addr: SocketAddr::from((cfg.listen, cfg.ports.smtp)),
        expect: "220 ",
        tls_ca: None,
    };
    probe::wait_ready(&smtp, deadline, || process::is_alive(postfix_pid))
        .map_err(|f| not_ready(f, cfg, &layout.postfix_log()))?;
    Ok((dovecot_pid, postfix_pid))
}

fn prepare_dovecot(cfg: &LabConfig, layout: &Layout, uid: u32, gid: u32) -> Result<(), LabError> {
    create_dir(&layout.dovecot_dir(), 0o755)?;
    create_dir(&layout.log_dir(), 0o755)?;
    let mail = layout.mail_dir();
    create_dir(&mail, 0o700)?;
    chown(&mail, Some(uid), Some(gid))
        .map_err(|e| LabError::io(format!("chown {}", mail.display()), e))?;
    dovecot::write_users(layout, cfg.users)?;
    set_mode(&layout.dovecot_users(), 0o644)?;
    let login_processes = std::thread::available_parallelism()
        .map_or(2, |n| n.get() as u32)
        .clamp(2, 8);
    let conf = dovecot::render_config(&dovecot::DovecotSettings {
        layout,
        listen: cfg.listen,
        ports: cfg.ports,
        backend: &cfg.backend,
        mail_uid: uid,
        mail_gid: gid,
        login_processes,
    });
    let path = layout.dovecot_config();
    fs::write(&path, conf).map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    set_mode(&path, 0o644)
}

fn not_ready(failure: ProbeFailure, cfg: &LabConfig, log: &Path) -> LabError {
    let why = if failure.died {
        "stopped answering: the server exited".to_string()
    } else {
        format!(
            "did not greet within {} s",
            cfg.start_timeout.as_secs_f64().round()
        )
    };
    LabError::NotReady {
        what: failure.what,
        addr: failure.addr,
        why,
        last: failure.last,
        log_tail: process::log_tail(log, 20),
    }
}

fn check_ports_free(cfg: &LabConfig, dovecot: bool, postfix: bool) -> Result<(), LabError> {
    let mut wanted = Vec::new();
    if dovecot {
        wanted.extend([
            ("IMAP", cfg.ports.imap, "imap-port"),
            ("IMAPS", cfg.ports.imaps, "imaps-port"),
            ("LMTP", cfg.ports.lmtp, "lmtp-port"),
        ]);
    }
    if postfix {
        wanted.push(("SMTP", cfg.ports.smtp, "smtp-port"));
    }
    for (what, port, flag) in wanted {
        let addr = SocketAddr::from((cfg.listen, port));
        if !probe::port_free(addr) {
            return Err(LabError::PortInUse { what, addr, flag });
        }
    }
    Ok(())
}

/// What `down` stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    /// Pid of the Postfix master that was stopped, if one ran.
    pub postfix: Option<u32>,
    pub dovecot: Option<u32>,
    /// True when something had to be SIGKILLed after the grace period.
    pub killed: bool,
}

/// Stops the lab in `dir`: Postfix first (it uses Dovecot's auth and LMTP), then Dovecot, and
/// waits until every process of theirs is gone. Harmless when nothing runs. Keeps the
/// maildirs and logs; removes `lab.json`.
pub fn down(dir: impl AsRef<Path>) -> Result<DownReport, LabError> {
    let dir = absolute(dir.as_ref())?;
    if !dir.exists() {
        return Ok(DownReport::default());
    }
    let dir = fs::canonicalize(&dir)
        .map_err(|e| LabError::io(format!("resolving {}", dir.display()), e))?;
    let layout = Layout::new(&dir);
    let _lock = lock(&layout)?;
    let mut report = DownReport::default();
    if let Some(pid) = postfix::running(&layout) {
        report.killed |= process::stop(pid, process::STOP_GRACE) == process::Stopped::Killed;
        report.postfix = Some(pid);
    }
    if let Some(pid) = dovecot::running(&layout) {
        report.killed |= process::stop(pid, process::STOP_GRACE) == process::Stopped::Killed;
        report.dovecot = Some(pid);
    }
    match fs::remove_file(layout.info_file()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(LabError::io("removing lab.json", e)),
    }
    Ok(report)
}

/// One listener as seen by `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    pub what: &'static str,
    pub addr: SocketAddr,
    /// The first line it sent, or the error.
    pub greeting: Result<String, String>,
}

/// What runs in a lab directory.
#[derive(Debug, Clone)]
pub struct LabStatus {
    pub dir: PathBuf,
    /// `lab.json`, when present.
    pub info: Option<LabInfo>,
    pub dovecot: Option<u32>,
    pub postfix: Option<u32>,
    pub listeners: Vec<ListenerStatus>,
    pub limits: HostLimits,
    pub warnings: Vec<String>,
}

impl LabStatus {
    /// Both servers run and every listener greets.
    pub fn is_running(&self) -> bool {
        self.info.is_some()
            && self.dovecot.is_some()
            && self.postfix.is_some()
            && self.listeners.iter().all(|l| l.greeting.is_ok())
    }
}

/// Inspects the lab in `dir` without changing anything.
pub fn status(dir: impl AsRef<Path>) -> Result<LabStatus, LabError> {
    let mut dir = absolute(dir.as_ref())?;
    if let Ok(real) = fs::canonicalize(&dir) {
        dir = real;
    }
    let layout = Layout::new(&dir);
    let info = match LabInfo::load(&dir) {
        Ok(info) => Some(info),
        Err(LabError::NotRunning { .. }) => None,
        Err(err) => return Err(err),
    };
    let dovecot = dovecot::running(&layout);
    let postfix = postfix::running(&layout);
    let mut listeners = Vec::new();
    let mut warnings = Vec::new();
    if let Some(info) = &info {
        for (what, addr, tls) in [
            ("IMAP", info.imap_addr(), false),
            ("IMAPS", info.imaps_addr(), true),
            ("LMTP", info.lmtp_addr(), false),
            ("SMTP", info.smtp_addr(), false),
        ] {
            let greeting = if tls {
                probe::tls_greeting(addr, &info.ca_file)
            } else {
                probe::greeting(addr)
            };
            listeners.push(ListenerStatus {
                what,
                addr,
                greeting: greeting.map_err(|e| e.to_string()),
            });
        }
        if dovecot.is_some_and(|pid| pid != info.dovecot.pid)
            || postfix.is_some_and(|pid| pid != info.postfix.pid)
        {
            warnings
                .push("a server was restarted outside `lab up`; pids differ from lab.json".into());
        }
    } else if dovecot.is_some() || postfix.is_some() {
        warnings.push(format!(
            "servers run without lab.json; stop them with `mailswarm lab down --dir {}`",
            dir.display()
        ));
    }
    let limits = HostLimits::read();
    warnings.extend(limits.warnings(u64::from(IMAP_PROCESS_LIMIT)));
    Ok(LabStatus {
        dir,
        info,
        dovecot,
        postfix,
        listeners,
        limits,
        warnings,
    })
}

impl fmt::Display for LabStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_running() {
            "running"
        } else if self.dovecot.is_some() || self.postfix.is_some() {
            "partly running"
        } else {
            "not running"
        };
        writeln!(f, "lab in {}: {state}", self.dir.display())?;
        let pid = |p: Option<u32>| p.map_or("not running".to_string(), |p| format!("pid {p}"));
        writeln!(f, "  dovecot  {}", pid(self.dovecot))?;
        writeln!(f, "  postfix  {}", pid(self.postfix))?;
        for l in &self.listeners {
            match &l.greeting {
                Ok(line) => writeln!(f, "  {:<8} {} ok: {line}", l.what, l.addr)?,
                Err(err) => writeln!(f, "  {:<8} {} DOWN: {err}", l.what, l.addr)?,
            }
        }
        if let Some(info) = &self.info {
            let users = info.users.range();
            writeln!(
                f,
                "  users    {}..{} @{}, password {:?}",
                info.users.name(*users.start()),
                info.users.name(*users.end()),
                info.domain,
                info.users.password
            )?;
            writeln!(f, "  CA       {}", info.ca_file.display())?;
        }
        let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        writeln!(
            f,
            "  host     inotify instances {}, watches {}, pid_max {}",
            show(self.limits.inotify_instances),
            show(self.limits.inotify_watches),
            show(self.limits.pid_max)
        )?;
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

fn validate(cfg: &LabConfig) -> Result<(), LabError> {
    if !cfg.listen.is_loopback() {
        return Err(LabError::NotLoopback(cfg.listen));
    }
    let ports = [
        ("imap", cfg.ports.imap),
        ("imaps", cfg.ports.imaps),
        ("lmtp", cfg.ports.lmtp),
        ("smtp", cfg.ports.smtp),
    ];
    for (i, (name, port)) in ports.iter().enumerate() {
        if *port == 0 {
            return Err(LabError::InvalidConfig(format!(
                "--{name}-port must not be 0"
            )));
        }
        if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
            return Err(LabError::InvalidConfig(format!(
                "--{name}-port and --{other}-port are both {port}; give each its own port"
            )));
        }
    }
    if cfg.users == 0 || cfg.users > MAX_USERS {
        return Err(LabError::InvalidConfig(format!(
            "--users {} is out of range 1..={MAX_USERS}",
            cfg.users
        )));
    }
    let backend_ok = !cfg.backend.is_empty()
        && cfg.backend.len() <= 32
        && cfg
            .backend
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !backend_ok {
        return Err(LabError::InvalidConfig(format!(
            "backend name {:?} must be 1-32 letters, digits or `-`",
            cfg.backend
        )));
    }
    if cfg.start_timeout.is_zero() {
        return Err(LabError::InvalidConfig(
            "the start timeout must be > 0".into(),
        ));
    }
    Ok(())
}

/// The directory goes unquoted into Dovecot and Postfix configs (where `%` and `$` expand,
/// and spaces and commas separate values) and into unix socket paths (at most 107 bytes).
fn validate_dir(dir: &Path) -> Result<(), LabError> {
    let text = dir.to_string_lossy();
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._-+".contains(*c)))
    {
        return Err(LabError::InvalidConfig(format!(
            "lab directory {text} contains {bad:?}; use only letters, digits and / . _ - +"
        )));
    }
    if text.len() > layout::MAX_DIR_LEN {
        return Err(LabError::InvalidConfig(format!(
            "lab directory {text} is {} bytes long; unix socket paths inside it would pass the \
             107-byte limit: use one of at most {} bytes",
            text.len(),
            layout::MAX_DIR_LEN
        )));
    }
    Ok(())
}

fn absolute(dir: &Path) -> Result<PathBuf, LabError> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    let cwd =
        std::env::current_dir().map_err(|e| LabError::io("reading the current directory", e))?;
    Ok(cwd.join(dir))
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), LabError> {
    fs::create_dir_all(dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    set_mode(dir, mode)
}

/// Explicit modes: a restrictive umask (077 in some CI images) must not hide the config or
/// users file from Dovecot's unprivileged auth process.
fn set_mode(path: &Path, mode: u32) -> Result<(), LabError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io(format!("chmod {}", path.display()), e))
}

/// Exclusive lock on the lab directory, released when the file is dropped.
fn lock(layout: &Layout) -> Result<fs::File, LabError> {
    let path = layout.lock_file();
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LabError::io(format!("opening {}", path.display()), e))?;
    // SAFETY: flock(2) on a valid, open descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(LabError::io(
            format!("locking {}", path.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(file)
}

/// Writes `lab.json` atomically (readers never see half a file).
fn write_info(layout: &Layout, info: &LabInfo) -> Result<(), LabError> {
    let path = layout.info_file();
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_string_pretty(info).map_err(|source| LabError::BadInfo {
        path: path.clone(),
        source,
    })?;
    fs::write(&tmp, json + "\n")
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ports() {
        let ports = LabPorts::default();
        assert_eq!(
            (ports.imap, ports.imaps, ports.lmtp, ports.smtp),
            (10143, 10993, 10024, 10025)
        );
    }

    #[test]
    fn non_loopback_listen_is_refused() {
        let cfg = LabConfig {
            listen: Ipv4Addr::new(10, 0, 0, 1),
            ..LabConfig::default()
        };
        assert!(matches!(validate(&cfg), Err(LabError::NotLoopback(_))));
        let cfg = LabConfig {
            listen: Ipv4Addr::new(127, 3, 0, 1),
            ..LabConfig::default()
        };
        assert!(validate(&cfg).is_ok());
    }

    #[test]
    fn duplicate_ports_and_bad_counts_are_refused_with_the_flag_names() {
        let mut cfg = LabConfig::default();
        cfg.ports.smtp = cfg.ports.imap;
        let err = validate(&cfg).unwrap_err().to_string();
        assert!(err.contains("--smtp-port and --imap-port"), "{err}");
        let cfg = LabConfig {
            users: 0,
            ..LabConfig::default()
        };
        assert!(validate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("--users 0"));
        let cfg = LabConfig {
            backend: "b 1".into(),
            ..LabConfig::default()
        };
        assert!(validate(&cfg).is_err());
    }

    #[test]
    fn dirs_that_would_break_configs_or_sockets_are_refused() {
        assert!(validate_dir(Path::new("/tmp/mailswarm-lab")).is_ok());
        assert!(validate_dir(Path::new("/tmp/my lab")).is_err());
        assert!(validate_dir(Path::new("/tmp/lab%n")).is_err());
        assert!(validate_dir(Path::new("/tmp/lab$x")).is_err());
        let long = format!("/tmp/{}", "x".repeat(80));
        let err = validate_dir(Path::new(&long)).unwrap_err().to_string();
        assert!(err.contains("107-byte"), "{err}");
    }

    #[test]
    fn lab_json_round_trips_and_missing_file_says_how_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let err = LabInfo::load(dir.path()).unwrap_err();
        assert!(matches!(err, LabError::NotRunning { .. }));
        assert!(err.to_string().contains("mailswarm lab up --dir"));

        let layout = Layout::new(dir.path());
        let server = |name: &str| ServerInfo {
            pid: 42,
            pid_file: dir.path().join(name),
            log_file: dir.path().join("log"),
            config: dir.path().join("conf"),
        };
        let info = LabInfo {
            version: INFO_VERSION,
            dir: dir.path().to_path_buf(),
            listen: Ipv4Addr::LOCALHOST,
            ports: LabPorts::default(),
            users: LabUsers {
                pattern: USER_PATTERN.into(),
                first: 1,
                count: 3,
                password: PASSWORD.into(),
            },
            domain: DOMAIN.into(),
            backend: "b1".into(),
            ca_file: layout.ca_cert(),
            dovecot: server("d.pid"),
            postfix: server("p.pid"),
            started_unix: 1,
        };
        write_info(&layout, &info).unwrap();
        let loaded = LabInfo::load(dir.path()).unwrap();
        assert_eq!(loaded, info);
        assert_eq!(loaded.user(3), "user3");
        assert_eq!(loaded.address(2), "user2@lab.test");
        assert_eq!(loaded.users.range(), 1..=3);
        assert_eq!(loaded.imap_addr().to_string(), "127.0.0.1:10143");

        fs::write(layout.info_file(), "{ not json").unwrap();
        assert!(matches!(
            LabInfo::load(dir.path()),
            Err(LabError::BadInfo { .. })
        ));
    }
}
