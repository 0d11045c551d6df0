//! Finding, waiting for and stopping the lab's daemons through `/proc` and signals.
//!
//! Both Dovecot and Postfix daemonize: their master calls `setsid()` and writes a pid file, and
//! every helper process stays in the master's process group. A pid file alone proves nothing
//! (the pid may have been reused since), so every pid is checked against its owner before it is
//! signalled; see [`Identity`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long `down` waits after SIGTERM before it falls back to SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);

/// What a live process must look like to count as the lab's daemon.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// Dovecot's master keeps its argv: `/usr/sbin/dovecot -c <config>`.
    DovecotMaster { config: PathBuf },
    /// Postfix's master is `master -w` for every instance, but it runs with its queue
    /// directory as working directory, and ours is private.
    PostfixMaster { queue_dir: PathBuf },
}

impl Identity {
    pub fn matches(&self, pid: u32) -> bool {
        if !is_alive(pid) {
            return false;
        }
        match self {
            Identity::DovecotMaster { config } => {
                let Some(args) = cmdline(pid) else {
                    return false;
                };
                let program_ok = args
                    .first()
                    .is_some_and(|p| Path::new(p).file_name().is_some_and(|n| n == "dovecot"));
                program_ok && args.iter().any(|a| Path::new(a) == config.as_path())
            }
            Identity::PostfixMaster { queue_dir } => {
                let comm_ok = fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim_end() == "master");
                let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok();
                let queue = fs::canonicalize(queue_dir).unwrap_or_else(|_| queue_dir.clone());
                comm_ok && cwd.as_deref() == Some(queue.as_path())
            }
        }
    }
}

/// Reads a pid file as written by Dovecot (`1234\n`) or Postfix (`      1234\n`).
pub(crate) fn read_pid_file(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    text.trim().parse().ok().filter(|&pid| pid > 1)
}

/// The pid from `pid_file` if that process is alive and is `identity`; `None` otherwise
/// (no file, garbage, dead process, or a reused pid that belongs to someone else).
pub(crate) fn running_pid(pid_file: &Path, identity: &Identity) -> Option<u32> {
    read_pid_file(pid_file).filter(|&pid| identity.matches(pid))
}

/// Fields of `/proc/PID/stat` we use. `comm` may contain spaces and parentheses, so the
/// fields are read after the *last* `)`.
struct Stat {
    state: char,
    pgrp: u32,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat { state, pgrp })
}

/// Alive means it exists and is not a zombie: the VM's init does not always reap orphans
/// promptly, and a zombie holds no ports or files.
pub(crate) fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Live members of process group `pgrp`.
pub(crate) fn group_members(pgrp: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat(pid).is_some_and(|s| s.pgrp == pgrp && s.state != 'Z' && s.state != 'X')
        })
        .collect()
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; errors (ESRCH) are fine here.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn own_pgrp() -> u32 {
    // SAFETY: getpgrp(2) cannot fail and touches no memory.
    unsafe { libc::getpgrp() as u32 }
}

/// How a daemon went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// It exited after SIGTERM, with all of its process group.
    Clean,
    /// It or some of its children had to be SIGKILLed.
    Killed,
}

/// Stops the daemon master `pid` (already checked with [`Identity::matches`]) and waits until
/// it and every process in its group are gone: SIGTERM, `grace`, then SIGKILL to the group.
/// The group is only signalled when the master leads it, never our own group.
pub(crate) fn stop(pid: u32, grace: Duration) -> Stopped {
    let group = stat(pid)
        .map(|s| s.pgrp)
        .filter(|&g| g == pid && g != own_pgrp());
    signal(pid as i32, libc::SIGTERM);
    let gone = || is_gone(pid, group);
    if wait_until(grace, gone) {
        return Stopped::Clean;
    }
    match group {
        Some(g) => signal(-(g as i32), libc::SIGKILL),
        None => signal(pid as i32, libc::SIGKILL),
    }
    wait_until(Duration::from_secs(5), gone);
    Stopped::Killed
}

fn is_gone(pid: u32, group: Option<u32>) -> bool {
    !is_alive(pid) && group.is_none_or(|g| group_members(g).is_empty())
}

/// Polls `done` until it is true or `timeout` passes; returns whether it became true.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Last `lines` lines of a log file, for error messages. Empty when unreadable.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a command that daemonizes (`dovecot`, `postfix start`) and returns its exit status and
/// what it printed. Its output goes to `out_file`, not a pipe: the daemon it forks inherits
/// stdout/stderr and would keep a pipe open forever, so waiting for EOF would hang.
pub(crate) fn run_launcher(
    command: &mut Command,
    out_file: &Path,
) -> std::io::Result<(ExitStatus, String)> {
    let out = fs::File::create(out_file)?;
    let err = out.try_clone()?;
    let status = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()?;
    let printed = fs::read_to_string(out_file).unwrap_or_default();
    Ok((status, printed.trim().to_string()))
}

/// Like [`run_launcher`], but with stdout/stderr on a pseudo-terminal. Postfix commands
/// report errors on stderr only when it is a terminal (otherwise to syslog, which a
/// container may not have), so this is the only way to show why `postfix start` failed.
/// The output is read while the command runs (a full pty buffer would block it) and capped.
pub(crate) fn run_on_pty(command: &mut Command) -> std::io::Result<(ExitStatus, String)> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let (mut master, mut slave) = (-1, -1);
    // SAFETY: out-pointers are valid; name/termios/winsize may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty returned two fresh descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .spawn()?;
    // Our copies of the slave live in `command`; replace them so only the child holds it.
    command.stdout(Stdio::null()).stderr(Stdio::null());

    const MAX_OUTPUT: usize = 64 * 1024;
    let mut output = Vec::new();
    let drain = |output: &mut Vec<u8>| {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a live buffer of the given length.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return; // EAGAIN (nothing yet), EIO (all writers closed) or EOF
            }
            if output.len() < MAX_OUTPUT {
                output.extend_from_slice(&buf[..n as usize]);
            }
        }
    };
    let status = loop {
        drain(&mut output);
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let mut poll = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe {
            libc::poll(&mut poll, 1, 20);
        }
    };
    drain(&mut output);
    let text = String::from_utf8_lossy(&output).replace("\r\n", "\n");
    Ok((status, text.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_in_own_group() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(group_members(own_pgrp()).contains(&me));
    }

    #[test]
    fn reused_pid_does_not_match_a_dovecot_identity() {
        // Our own pid is alive but is not a Dovecot master: a stale pid file pointing at it
        // must not make us think the lab runs.
        let identity = Identity::DovecotMaster {
            config: PathBuf::from("/nonexistent/dovecot.conf"),
        };
        assert!(!identity.matches(std::process::id()));
    }

    #[test]
    fn pid_files_in_both_formats_parse_and_garbage_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pid");
        fs::write(&file, "1234\n").unwrap();
        assert_eq!(read_pid_file(&file), Some(1234));
        fs::write(&file, "       987\n").unwrap();
        assert_eq!(read_pid_file(&file), Some(987));
        fs::write(&file, "x\n").unwrap();
        assert_eq!(read_pid_file(&file), None);
        fs::write(&file, "1\n").unwrap();
        assert_eq!(read_pid_file(&file), None, "never treat init as ours");
    }

    #[test]
    fn pty_output_is_captured_with_the_exit_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "test -t 2 && echo 'on a tty' >&2; exit 3"]);
        let (status, text) = run_on_pty(&mut cmd).unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(text, "on a tty");
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        fs::write(&file, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&file, 2), "c\nd");
        assert_eq!(log_tail(&file, 10), "a\nb\nc\nd");
        assert_eq!(log_tail(&dir.path().join("none"), 3), "");
    }
}
