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
mod error;
mod info;
mod layout;
mod postfix;
mod probe;
mod process;
pub mod sink;
mod status;
mod system;
mod tls;

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use info::write_info;
use layout::Layout;
use probe::{Probe, ProbeFailure};

pub use dovecot::{
    IMAP_PROCESS_LIMIT, LMTP_PROCESS_LIMIT, LOGIN_CLIENT_LIMIT, LOGIN_PROCESS_LIMIT,
    MAIL_MAX_USERIP_CONNECTIONS, SERVICE_CLIENT_LIMIT, VSZ_LIMIT,
};
pub use error::LabError;
pub use info::{LabInfo, LabPorts, LabUsers, ServerInfo};
pub use postfix::SMTPD_PROCESS_LIMIT;
pub use status::{status, LabStatus, ListenerStatus};
pub use system::{HostLimits, INOTIFY_INSTANCES, INOTIFY_WATCHES, MAIL_USER};

/// Where the lab lives unless `--dir` or `$MAILSWARM_LAB_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/tmp/mailswarm-lab";
/// Environment variable naming the lab directory.
pub const DIR_ENV: &str = "MAILSWARM_LAB_DIR";
/// Mail domain of the lab users: `user7@lab.test` (bare `user7` works too).
pub const DOMAIN: &str = "lab.test";
/// The one password of every lab user. Public on purpose: the lab only listens on loopback.
pub const PASSWORD: &str = "lab-Pw-2026";
/// Users are `user1` .. `user{count}`.
pub const USER_PATTERN: &str = "user{n}";
/// Backend name shown by `ID` (`"x-backend" "b1"`) and in the greeting.
pub const DEFAULT_BACKEND: &str = "b1";
pub const DEFAULT_USERS: u32 = 1000;
pub const MAX_USERS: u32 = 1_000_000;
/// Version of the `lab.json` format.
pub const INFO_VERSION: u32 = 1;

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

pub(crate) fn absolute(dir: &Path) -> Result<PathBuf, LabError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
