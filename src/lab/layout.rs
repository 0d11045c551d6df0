//! Where every file of a lab lives. One place, so `up`, `down` and `status` agree even when
//! `lab.json` is missing (a crashed `up`, a deleted file) and `down` must still find the pids.

use std::path::{Path, PathBuf};

/// Unix socket paths are limited to 107 bytes; Dovecot's longest socket below `base_dir` is
/// about 25 bytes (`run/replication-notify-fifo`), so the lab directory must stay short.
pub(crate) const MAX_DIR_LEN: usize = 72;

/// Paths of one lab directory. All absolute.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn info_file(&self) -> PathBuf {
        self.dir.join("lab.json")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(".lock")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.join("mail")
    }

    // TLS material. The CA certificate sits at the top so users find it without a map.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.tls_dir().join("ca-key.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.tls_dir().join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.tls_dir().join("server-key.pem")
    }

    // Dovecot.
    pub fn dovecot_dir(&self) -> PathBuf {
        self.dir.join("dovecot")
    }
    pub fn dovecot_config(&self) -> PathBuf {
        self.dovecot_dir().join("dovecot.conf")
    }
    pub fn dovecot_users(&self) -> PathBuf {
        self.dovecot_dir().join("users")
    }
    /// Dovecot's `base_dir`: sockets and `master.pid`. Kept short (socket path limit).
    pub fn dovecot_base(&self) -> PathBuf {
        self.dir.join("run")
    }
    pub fn dovecot_state(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn dovecot_pid_file(&self) -> PathBuf {
        self.dovecot_base().join("master.pid")
    }
    pub fn dovecot_log(&self) -> PathBuf {
        self.log_dir().join("dovecot.log")
    }
    /// SASL socket Postfix's smtpd uses to authenticate against the lab Dovecot.
    pub fn sasl_socket(&self) -> PathBuf {
        self.dovecot_base().join("auth-postfix")
    }

    // Postfix.
    pub fn postfix_config_dir(&self) -> PathBuf {
        self.dir.join("postfix").join("etc")
    }
    pub fn postfix_queue(&self) -> PathBuf {
        self.dir.join("postfix").join("queue")
    }
    pub fn postfix_data(&self) -> PathBuf {
        self.dir.join("postfix").join("data")
    }
    pub fn postfix_pid_file(&self) -> PathBuf {
        self.postfix_queue().join("pid").join("master.pid")
    }
    pub fn postfix_log(&self) -> PathBuf {
        self.log_dir().join("postfix.log")
    }
    pub fn postfix_mailboxes(&self) -> PathBuf {
        self.postfix_config_dir().join("vmailbox")
    }
}
