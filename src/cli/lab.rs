//! `mailswarm lab up|down|status`: thin wrapper over [`crate::lab`].

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::lab::{self, LabConfig, LabPorts};

use super::{EXIT_FAILED, EXIT_OK};

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab: private Dovecot (IMAP, IMAPS, LMTP) and Postfix (SMTP submission) on
    /// loopback. Harmless when it is already running. Needs root and Debian's packages.
    Up(UpArgs),
    /// Stop exactly what `up` started (never a system-wide Dovecot/Postfix).
    Down(DownArgs),
    /// Show what is running; exit 0 when the whole lab answers, 1 otherwise.
    Status(DirArg),
}

#[derive(Debug, Args)]
pub struct DirArg {
    /// Lab directory [default: $MAILSWARM_LAB_DIR, else /tmp/mailswarm-lab].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl DirArg {
    fn resolve(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(lab::default_dir)
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Address every server listens on; must be in 127.0.0.0/8.
    #[arg(long, value_name = "IP", default_value_t = Ipv4Addr::LOCALHOST)]
    pub listen: Ipv4Addr,
    /// IMAP port (STARTTLS offered).
    #[arg(long, value_name = "PORT", default_value_t = LabPorts::default().imap)]
    pub imap_port: u16,
    /// IMAPS port (implicit TLS).
    #[arg(long, value_name = "PORT", default_value_t = LabPorts::default().imaps)]
    pub imaps_port: u16,
    /// Dovecot LMTP port.
    #[arg(long, value_name = "PORT", default_value_t = LabPorts::default().lmtp)]
    pub lmtp_port: u16,
    /// Postfix submission port (SMTP AUTH, STARTTLS).
    #[arg(long, value_name = "PORT", default_value_t = LabPorts::default().smtp)]
    pub smtp_port: u16,
    /// Number of users: user1..userN, all with the lab password (`lab-Pw-2026`, also in lab.json).
    #[arg(long, value_name = "N", default_value_t = lab::DEFAULT_USERS)]
    pub users: u32,
    /// Backend name clients see in `ID` ("x-backend") and the greeting; give each lab of a
    /// director/proxy setup its own (b1, b2, ...).
    #[arg(long, value_name = "NAME", default_value = lab::DEFAULT_BACKEND)]
    pub backend: String,
    /// Seconds to wait for every server to greet.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Also delete the lab directory (maildirs, logs, CA) after stopping.
    #[arg(long)]
    pub purge: bool,
}

pub fn run(cmd: LabCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LabCommand::Up(args) => up(args),
        LabCommand::Down(args) => down(args),
        LabCommand::Status(args) => status(args),
    }
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let cfg = LabConfig {
        dir: args.dir.resolve(),
        listen: args.listen,
        ports: LabPorts {
            imap: args.imap_port,
            imaps: args.imaps_port,
            lmtp: args.lmtp_port,
            smtp: args.smtp_port,
        },
        users: args.users,
        backend: args.backend,
        start_timeout: Duration::from_secs(args.timeout),
    };
    let report = lab::start(&cfg).context("lab up")?;
    let mut out = std::io::stdout().lock();
    for warning in &report.warnings {
        eprintln!("mailswarm: warning: {warning}");
    }
    if report.already_running {
        writeln!(out, "lab already running in {}", report.info.dir.display())?;
    } else {
        writeln!(
            out,
            "lab running in {} (started in {:.2} s)",
            report.info.dir.display(),
            report.elapsed.as_secs_f64()
        )?;
    }
    writeln!(out, "{}", report.info)?;
    Ok(ExitCode::from(EXIT_OK))
}

fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.resolve();
    let report = lab::down(&dir).context("lab down")?;
    let mut out = std::io::stdout().lock();
    let what: Vec<String> = [("postfix", report.postfix), ("dovecot", report.dovecot)]
        .into_iter()
        .filter_map(|(name, pid)| Some(format!("{name} (pid {})", pid?)))
        .collect();
    if what.is_empty() {
        writeln!(out, "no lab was running in {}", dir.display())?;
    } else {
        let how = if report.killed {
            " (SIGKILL was needed)"
        } else {
            ""
        };
        writeln!(out, "stopped {}{how}", what.join(", "))?;
    }
    if args.purge && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        writeln!(out, "removed {}", dir.display())?;
    }
    Ok(ExitCode::from(EXIT_OK))
}

fn status(args: DirArg) -> anyhow::Result<ExitCode> {
    let status = lab::status(args.resolve()).context("lab status")?;
    write!(std::io::stdout().lock(), "{status}")?;
    Ok(ExitCode::from(if status.is_running() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    fn parse(args: &[&str]) -> LabCommand {
        let cli = Cli::try_parse_from(args).unwrap();
        match cli.command {
            Command::Lab(cmd) => cmd,
            #[allow(unreachable_patterns)]
            _ => panic!("not a lab command"),
        }
    }

    #[test]
    fn up_flags_default_to_the_documented_ports() {
        let LabCommand::Up(args) = parse(&["mailswarm", "lab", "up"]) else {
            panic!("not up");
        };
        assert_eq!(
            (
                args.imap_port,
                args.imaps_port,
                args.lmtp_port,
                args.smtp_port
            ),
            (10143, 10993, 10024, 10025)
        );
        assert_eq!(args.users, 1000);
        assert_eq!(args.backend, "b1");
        assert_eq!(args.timeout, 30);
        assert_eq!(args.listen, Ipv4Addr::LOCALHOST);
        assert!(args.dir.dir.is_none());
    }

    #[test]
    fn up_flags_parse() {
        let LabCommand::Up(args) = parse(&[
            "mailswarm",
            "lab",
            "up",
            "--dir",
            "/tmp/x",
            "--listen",
            "127.0.0.2",
            "--users",
            "5",
            "--imap-port",
            "1",
            "--lmtp-port",
            "2",
            "--imaps-port",
            "3",
            "--smtp-port",
            "4",
            "--backend",
            "b2",
            "--timeout",
            "7",
        ]) else {
            panic!("not up");
        };
        assert_eq!(args.dir.resolve(), PathBuf::from("/tmp/x"));
        assert_eq!(args.listen, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(
            (
                args.users,
                args.imap_port,
                args.lmtp_port,
                args.imaps_port,
                args.smtp_port
            ),
            (5, 1, 2, 3, 4)
        );
        assert_eq!((args.backend.as_str(), args.timeout), ("b2", 7));
    }

    #[test]
    fn bad_listen_is_a_usage_error() {
        let err = Cli::try_parse_from(["mailswarm", "lab", "up", "--listen", "nope"]).unwrap_err();
        assert!(err.use_stderr());
    }

    #[test]
    fn down_purge_and_status_dir_parse() {
        let LabCommand::Down(args) = parse(&["mailswarm", "lab", "down", "--purge"]) else {
            panic!("not down");
        };
        assert!(args.purge);
        let LabCommand::Status(args) = parse(&["mailswarm", "lab", "status", "--dir", "d"]) else {
            panic!("not status");
        };
        assert_eq!(args.dir, Some(PathBuf::from("d")));
    }
}
