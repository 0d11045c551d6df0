//! Where `mailswarm conform` connects and as whom: from the lab (`--lab`), a YAML file
//! (`--config`) or flags, in that order of precedence (flags win).
//!
//! ```yaml
//! imap: 127.0.0.1:10143
//! smtp: 127.0.0.1:10025        # optional: SMTP submission (AUTH with the first account)
//! lmtp: 127.0.0.1:10024        # optional
//! domain: lab.test             # recipients are user@domain
//! tls: {ca_file: ca.pem}       # or {insecure: true}; used by STARTTLS checks
//! allow_remote: false          # targets outside 127.0.0.0/8 are refused unless true
//! accounts:
//!   - {user: user1, password: secret}
//!   - {user: user2, password: secret}
//! ```

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::lab::LabInfo;
use crate::proto::tls::TlsSettings;
use crate::proto::Secret;

/// One login.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub password: Secret<String>,
}

impl Account {
    /// The address LMTP/SMTP deliver to: the user as is when it has an `@`, else `user@domain`.
    pub fn address(&self, domain: &str) -> String {
        if self.user.contains('@') {
            self.user.clone()
        } else {
            format!("{}@{domain}", self.user)
        }
    }
}

/// Everything a conformance run needs to reach the server.
#[derive(Debug, Clone)]
pub struct Target {
    pub imap: SocketAddr,
    pub smtp: Option<SocketAddr>,
    pub lmtp: Option<SocketAddr>,
    pub domain: String,
    pub tls: TlsSettings,
    /// At least one; cross-session checks log in as the first two (or twice as the first).
    pub accounts: Vec<Account>,
}

impl Target {
    /// `host:port` of the IMAP endpoint, for reports.
    pub fn describe(&self) -> String {
        let mut text = format!("imap {}", self.imap);
        if let Some(smtp) = self.smtp {
            text.push_str(&format!(", smtp {smtp}"));
        }
        if let Some(lmtp) = self.lmtp {
            text.push_str(&format!(", lmtp {lmtp}"));
        }
        text
    }

    /// The second account, or the first again when only one was given.
    pub fn other_account(&self) -> &Account {
        self.accounts.get(1).unwrap_or(&self.accounts[0])
    }
}

/// The YAML form (and what flags fill in).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    pub imap: Option<String>,
    pub smtp: Option<String>,
    pub lmtp: Option<String>,
    pub domain: Option<String>,
    #[serde(default)]
    pub tls: TlsFile,
    #[serde(default)]
    pub allow_remote: bool,
    #[serde(default)]
    pub accounts: Vec<AccountFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure: bool,
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFile {
    pub user: String,
    pub password: String,
}

impl TargetFile {
    pub fn load(path: &Path) -> Result<TargetFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let options = serde_saphyr::options! { strict_booleans: true };
        serde_saphyr::from_str_with_options(&text, options).map_err(|e| {
            format!(
                "{}: {e} (hint: keys are imap, smtp, lmtp, domain, tls, allow_remote, accounts)",
                path.display()
            )
        })
    }

    /// Fills what is unset from a running lab: its addresses, CA, domain and the first two
    /// lab users.
    pub fn fill_from_lab(&mut self, lab: &LabInfo) {
        self.imap.get_or_insert_with(|| lab.imap_addr().to_string());
        self.smtp.get_or_insert_with(|| lab.smtp_addr().to_string());
        self.lmtp.get_or_insert_with(|| lab.lmtp_addr().to_string());
        self.domain.get_or_insert_with(|| lab.domain.clone());
        if self.tls.ca_file.is_none() && !self.tls.insecure {
            self.tls.ca_file = Some(lab.ca_file.clone());
        }
        if self.accounts.is_empty() {
            let first = *lab.users.range().start();
            for n in first..first + lab.users.count.min(2) {
                self.accounts.push(AccountFile {
                    user: lab.users.name(n),
                    password: lab.users.password.clone(),
                });
            }
        }
    }

    /// Resolves addresses and checks that every target is on loopback unless allowed.
    pub fn resolve(self) -> Result<Target, String> {
        let allow_remote = self.allow_remote;
        let resolve = |what: &str, value: &str| -> Result<SocketAddr, String> {
            let addr = value
                .to_socket_addrs()
                .map_err(|e| format!("{what} `{value}`: {e} (give host:port, e.g. 127.0.0.1:143)"))?
                .next()
                .ok_or_else(|| format!("{what} `{value}` resolves to no address"))?;
            if !allow_remote && !addr.ip().is_loopback() {
                return Err(format!(
                    "{what} `{value}` is not a loopback address; set `allow_remote: true` in the \
                     target file (or --allow-remote) to test a server elsewhere"
                ));
            }
            Ok(addr)
        };
        let imap = self
            .imap
            .as_deref()
            .ok_or("no IMAP target: use --lab, --imap HOST:PORT or `imap:` in --config")?;
        let imap = resolve("imap", imap)?;
        let smtp = self
            .smtp
            .as_deref()
            .map(|v| resolve("smtp", v))
            .transpose()?;
        let lmtp = self
            .lmtp
            .as_deref()
            .map(|v| resolve("lmtp", v))
            .transpose()?;
        if self.accounts.is_empty() {
            return Err(
                "no test account: use --lab, --user NAME:PASSWORD (twice for cross-session \
                 checks) or `accounts:` in --config"
                    .into(),
            );
        }
        let accounts = self
            .accounts
            .into_iter()
            .map(|a| Account {
                user: a.user,
                password: Secret::new(a.password),
            })
            .collect();
        Ok(Target {
            imap,
            smtp,
            lmtp,
            domain: self.domain.unwrap_or_else(|| "localhost".into()),
            tls: TlsSettings {
                ca_file: self.tls.ca_file,
                insecure: self.tls.insecure,
                server_name: self.tls.server_name,
            },
            accounts,
        })
    }
}

/// Parses `--user NAME:PASSWORD`.
pub fn parse_account(text: &str) -> Result<AccountFile, String> {
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok(AccountFile {
            user: user.to_string(),
            password: password.to_string(),
        }),
        _ => Err(format!("`{text}`: expected NAME:PASSWORD")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_targets_are_refused_unless_allowed() {
        let file = TargetFile {
            imap: Some("192.0.2.1:143".into()),
            accounts: vec![parse_account("u:p").unwrap()],
            ..TargetFile::default()
        };
        let err = file.resolve().unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
    }

    #[test]
    fn accounts_and_addresses_resolve() {
        let file = TargetFile {
            imap: Some("127.0.0.1:10143".into()),
            lmtp: Some("127.0.0.1:10024".into()),
            domain: Some("lab.test".into()),
            accounts: vec![parse_account("user1:pw:with:colons").unwrap()],
            ..TargetFile::default()
        };
        let target = file.resolve().unwrap();
        assert_eq!(target.imap.port(), 10143);
        assert_eq!(target.lmtp.unwrap().port(), 10024);
        assert_eq!(target.accounts[0].password.expose(), "pw:with:colons");
        assert_eq!(target.accounts[0].address("lab.test"), "user1@lab.test");
        assert_eq!(target.other_account().user, "user1");
    }

    #[test]
    fn a_target_needs_imap_and_an_account() {
        let err = TargetFile::default().resolve().unwrap_err();
        assert!(err.contains("no IMAP target"), "{err}");
        let err = TargetFile {
            imap: Some("127.0.0.1:143".into()),
            ..TargetFile::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.contains("no test account"), "{err}");
        assert!(parse_account("nopassword").is_err());
    }
}
