//! What the lab needs from the host: root, Debian's packages, an unprivileged mail user and
//! kernel limits high enough for thousands of sessions.

use std::ffi::CString;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::LabError;

/// The system user that owns every maildir. Dovecot refuses to run mail processes as root,
/// and a dedicated user keeps the inotify budget (counted per uid) to the lab.
pub const MAIL_USER: &str = "mailswarm";

/// Each IDLE session holds one inotify instance, counted per uid (all lab mail runs as
/// [`MAIL_USER`]). At the kernel default of 128, Dovecot silently falls back to polling every
/// 30 s, so IDLE stops being push. Sized above the lab's IMAP process limit.
pub const INOTIFY_INSTANCES: u64 = 32_768;
/// Watches: a few per IDLE session (INBOX `new/`, `cur/`, index log).
pub const INOTIFY_WATCHES: u64 = 524_288;

const INOTIFY_INSTANCES_SYSCTL: &str = "/proc/sys/fs/inotify/max_user_instances";
const INOTIFY_WATCHES_SYSCTL: &str = "/proc/sys/fs/inotify/max_user_watches";

/// Files whose absence means a Debian package is missing, with that package.
const REQUIRED_FILES: &[(&str, &str)] = &[
    ("/usr/sbin/dovecot", "dovecot-core"),
    ("/usr/lib/dovecot/imap", "dovecot-imapd"),
    ("/usr/lib/dovecot/imap-login", "dovecot-imapd"),
    ("/usr/lib/dovecot/lmtp", "dovecot-lmtpd"),
    ("/usr/sbin/postfix", "postfix"),
    ("/usr/lib/postfix/sbin/master", "postfix"),
];

pub(crate) fn require_root() -> Result<(), LabError> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// Fails with the exact `apt-get` line when a package is missing.
pub(crate) fn check_packages() -> Result<(), LabError> {
    missing_packages(|path| Path::new(path).exists())
}

fn missing_packages(exists: impl Fn(&str) -> bool) -> Result<(), LabError> {
    let mut packages: Vec<String> = Vec::new();
    for &(path, package) in REQUIRED_FILES {
        if !exists(path) && !packages.iter().any(|p| p == package) {
            packages.push(package.to_string());
        }
    }
    if packages.is_empty() {
        Ok(())
    } else {
        Err(LabError::MissingPackages { packages })
    }
}

/// uid and gid of [`MAIL_USER`], creating it (a system user without home or shell) when
/// missing.
pub(crate) fn ensure_mail_user() -> Result<(u32, u32), LabError> {
    if let Some(ids) = lookup_user(MAIL_USER) {
        return Ok(ids);
    }
    let output = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            MAIL_USER,
        ])
        .output()
        .map_err(|source| LabError::io("running useradd", source))?;
    // A concurrent `up` may have created it first; only the lookup decides.
    lookup_user(MAIL_USER).ok_or_else(|| LabError::Command {
        what: format!("creating the mail user `{MAIL_USER}` with useradd"),
        output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

pub(crate) fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `buf` outlives it and its length is passed.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// Kernel limits that decide how many sessions the lab can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub inotify_instances: Option<u64>,
    pub inotify_watches: Option<u64>,
    pub pid_max: Option<u64>,
}

impl HostLimits {
    pub fn read() -> HostLimits {
        HostLimits {
            inotify_instances: read_u64(INOTIFY_INSTANCES_SYSCTL),
            inotify_watches: read_u64(INOTIFY_WATCHES_SYSCTL),
            pid_max: read_u64("/proc/sys/kernel/pid_max"),
        }
    }

    /// Human-readable problems, empty when the limits are fine for the lab.
    pub fn warnings(&self, imap_process_limit: u64) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(n) = self.inotify_instances.filter(|&n| n < INOTIFY_INSTANCES) {
            warnings.push(format!(
                "fs.inotify.max_user_instances is {n}: past that many IDLE sessions Dovecot \
                 polls every 30 s instead of pushing; raise it (as root: \
                 sysctl fs.inotify.max_user_instances={INOTIFY_INSTANCES})"
            ));
        }
        if let Some(n) = self.inotify_watches.filter(|&n| n < INOTIFY_WATCHES) {
            warnings.push(format!(
                "fs.inotify.max_user_watches is {n}; raise it (as root: \
                 sysctl fs.inotify.max_user_watches={INOTIFY_WATCHES})"
            ));
        }
        if let Some(n) = self.pid_max.filter(|&n| n < imap_process_limit + 4096) {
            warnings.push(format!(
                "kernel.pid_max is {n}: Dovecot runs one process per IMAP session \
                 (up to {imap_process_limit})"
            ));
        }
        warnings
    }
}

fn read_u64(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Raises (never lowers) the inotify sysctls. These are host-wide; failure (a read-only
/// `/proc/sys` in a container) is a warning, not an error: the lab still works, IDLE just
/// polls past the limit.
pub(crate) fn raise_inotify_limits() -> Vec<String> {
    let mut warnings = Vec::new();
    for (path, wanted) in [
        (INOTIFY_INSTANCES_SYSCTL, INOTIFY_INSTANCES),
        (INOTIFY_WATCHES_SYSCTL, INOTIFY_WATCHES),
    ] {
        match read_u64(path) {
            Some(current) if current >= wanted => {}
            _ => {
                if let Err(err) = fs::write(path, format!("{wanted}\n")) {
                    warnings.push(format!("could not raise {path} to {wanted}: {err}"));
                }
            }
        }
    }
    warnings
}

/// Raises the soft open-files limit of the current process to its hard limit. Called in the
/// forked child right before it execs a daemon, so Dovecot's master starts with the full
/// limit (20,000 here) and hands it to every service. (`runuser`/`su` would reset it.)
///
/// Async-signal-safe: only calls getrlimit/setrlimit.
pub(crate) fn raise_nofile_limit() -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `limit` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_packages_are_named_once_each_in_the_apt_line() {
        let err = missing_packages(|path| !path.contains("postfix") && !path.ends_with("lmtp"))
            .unwrap_err();
        let LabError::MissingPackages { packages } = &err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(packages, &["dovecot-lmtpd", "postfix"]);
        let message = err.to_string();
        assert!(
            message.contains("apt-get install -y --no-install-recommends dovecot-lmtpd postfix"),
            "{message}"
        );
    }

    #[test]
    fn nothing_missing_is_ok() {
        assert!(missing_packages(|_| true).is_ok());
    }

    #[test]
    fn low_limits_warn_and_high_ones_do_not() {
        let low = HostLimits {
            inotify_instances: Some(128),
            inotify_watches: Some(8192),
            pid_max: Some(20_000),
        };
        let warnings = low.warnings(18_000);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("max_user_instances is 128"));
        let high = HostLimits {
            inotify_instances: Some(INOTIFY_INSTANCES),
            inotify_watches: Some(INOTIFY_WATCHES),
            pid_max: Some(4_194_304),
        };
        assert!(high.warnings(18_000).is_empty());
    }

    #[test]
    fn root_user_is_found() {
        assert_eq!(lookup_user("root"), Some((0, 0)));
        assert_eq!(lookup_user("no-such-user-mailswarm"), None);
    }
}
