//! `lab status`: what runs in a lab directory, read-only.

use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::layout::Layout;
use super::{absolute, dovecot, postfix, probe, HostLimits, LabError, LabInfo, IMAP_PROCESS_LIMIT};

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
