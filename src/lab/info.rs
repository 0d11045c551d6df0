//! `lab.json`: what a running lab is (addresses, users, pids, files), written by `up` and read
//! by every command and tool that needs the lab (`run`, `conform --lab`, the memory sampler).

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::{LabConfig, LabError};

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

    pub(crate) fn matches(&self, cfg: &LabConfig) -> bool {
        self.listen == cfg.listen
            && self.ports == cfg.ports
            && self.users.count == cfg.users
            && self.backend == cfg.backend
    }

    pub(crate) fn settings(&self) -> String {
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

/// Writes `lab.json` atomically (readers never see half a file).
pub(crate) fn write_info(layout: &Layout, info: &LabInfo) -> Result<(), LabError> {
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
    use super::super::{DOMAIN, INFO_VERSION, PASSWORD, USER_PATTERN};
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
