//! `mailswarm conform`: the RFC conformance suite. Exit 0 when no check failed, 1 when one
//! did, 2 for usage errors and unreachable endpoints or accounts that cannot log in.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use crate::conformance::target::{parse_account, AccountFile, TargetFile};
use crate::conformance::waivers::Waivers;
use crate::conformance::{output, runner, RunOptions};
use crate::lab::LabInfo;

#[derive(Debug, Args)]
pub struct ConformArgs {
    /// Test the lab that `mailswarm lab up` started (addresses, CA, users user1 and user2).
    #[arg(long)]
    pub lab: bool,
    /// Lab directory [default: $MAILSWARM_LAB_DIR, else /tmp/mailswarm-lab].
    #[arg(long)]
    pub lab_dir: Option<PathBuf>,
    /// Target file (YAML: imap, smtp, lmtp, domain, tls, allow_remote, accounts).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// IMAP endpoint, HOST:PORT.
    #[arg(long)]
    pub imap: Option<String>,
    /// SMTP submission endpoint, HOST:PORT (SMTP checks are skipped without one).
    #[arg(long)]
    pub smtp: Option<String>,
    /// LMTP endpoint, HOST:PORT (LMTP checks are skipped without one).
    #[arg(long)]
    pub lmtp: Option<String>,
    /// Test account NAME:PASSWORD; give two for cross-session and multi-recipient checks.
    #[arg(long = "user", value_parser = parse_user)]
    pub users: Vec<AccountFile>,
    /// Mail domain of the accounts (recipients are NAME@DOMAIN).
    #[arg(long)]
    pub domain: Option<String>,
    /// CA certificate (PEM) to trust for STARTTLS checks.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate in STARTTLS checks.
    #[arg(long)]
    pub insecure: bool,
    /// Allow targets outside 127.0.0.0/8.
    #[arg(long)]
    pub allow_remote: bool,
    /// Run only these check ids or groups (comma-separated or repeated): `imap.select,smtp`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Leave out these check ids or groups.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Skip checks that append, flag, expunge, deliver or create mailboxes.
    #[arg(long)]
    pub no_destructive: bool,
    /// Waivers file (YAML): known failures reported as waived, each with a reason.
    #[arg(long)]
    pub waivers: Option<PathBuf>,
    /// Write JUnit XML here (one test case per check).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the results as JSON here (the file `mailswarm gate --conformance` reads).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// List the checks (id, level, reference, title) and exit.
    #[arg(long)]
    pub list: bool,
    /// Deadline for one check, in seconds.
    #[arg(long, default_value_t = 60)]
    pub check_timeout: u64,
    /// Print only failures and the totals.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_user(text: &str) -> Result<AccountFile, String> {
    parse_account(text)
}

pub fn run(args: ConformArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        return list(&args);
    }
    let (target, opts) = match prepare(&args) {
        Ok(ready) => ready,
        Err(message) => {
            eprintln!("mailswarm: error: {message}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let run = runtime.block_on(async {
        super::cancel_on_signal(
            &opts.stop,
            "removing scratch mailboxes and writing what ran",
        );
        runner::run(target, &opts).await
    });
    let run = match run {
        Ok(run) => run,
        Err(err) => {
            eprintln!("mailswarm: error: cannot start the conformance run: {err}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    // Every output is attempted, files first (a closed stdout must not lose them); one that
    // cannot be written does not stop the others.
    let mut write_errors = Vec::new();
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, output::json(&run)) {
            write_errors.push(format!("writing {}: {e}", path.display()));
        }
    }
    if let Some(path) = &args.junit {
        let written = output::junit(&run)
            .to_string()
            .map_err(|e| e.to_string())
            .and_then(|xml| std::fs::write(path, xml).map_err(|e| e.to_string()));
        if let Err(e) = written {
            write_errors.push(format!("writing {}: {e}", path.display()));
        }
    }
    let code = if !write_errors.is_empty() || run.interrupted {
        EXIT_ERROR
    } else if run.failed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    let mut stdout = std::io::stdout().lock();
    let printed = output::console(&run, args.quiet, &mut stdout).and_then(|()| stdout.flush());
    for e in &write_errors {
        eprintln!("mailswarm: error: {e}");
    }
    super::tolerate_broken_pipe(printed)?;
    Ok(ExitCode::from(code))
}

/// Flags over the target file over the lab.
fn prepare(args: &ConformArgs) -> Result<(crate::conformance::Target, RunOptions), String> {
    let mut file = match &args.config {
        Some(path) => TargetFile::load(path)?,
        None => TargetFile::default(),
    };
    let flags = [
        (&mut file.imap, &args.imap),
        (&mut file.smtp, &args.smtp),
        (&mut file.lmtp, &args.lmtp),
        (&mut file.domain, &args.domain),
    ];
    for (slot, flag) in flags {
        if flag.is_some() {
            slot.clone_from(flag);
        }
    }
    if !args.users.is_empty() {
        file.accounts.clone_from(&args.users);
    }
    if args.ca_file.is_some() {
        file.tls.ca_file.clone_from(&args.ca_file);
    }
    file.tls.insecure |= args.insecure;
    file.allow_remote |= args.allow_remote;
    if args.lab {
        let dir = args.lab_dir.clone().unwrap_or_else(crate::lab::default_dir);
        let lab = LabInfo::load(&dir).map_err(|e| {
            format!("{e} (start it with `mailswarm lab up`, or give --imap and --user instead of --lab)")
        })?;
        file.fill_from_lab(&lab);
    } else if args.lab_dir.is_some() {
        return Err("--lab-dir needs --lab".into());
    }
    let target = file.resolve()?;
    if target.tls.ca_file.is_some() {
        // A CA file that cannot be read is the caller's mistake, not a server failure.
        target.tls.connector().map_err(|e| e.to_string())?;
    }
    let waivers = match &args.waivers {
        Some(path) => Waivers::load(path)?,
        None => Waivers::default(),
    };
    let known: Vec<&str> = crate::conformance::all_checks()
        .iter()
        .map(|c| c.id)
        .collect();
    for id in waivers.unknown_ids(&known) {
        eprintln!("mailswarm: warning: waiver `{id}` matches no check");
    }
    let opts = RunOptions {
        only: args.only.clone(),
        skip: args.skip.clone(),
        no_destructive: args.no_destructive,
        waivers,
        check_timeout: Duration::from_secs(args.check_timeout.max(1)),
        ..RunOptions::default()
    };
    runner::select(&opts)?;
    Ok((target, opts))
}

fn list(args: &ConformArgs) -> anyhow::Result<ExitCode> {
    let opts = RunOptions {
        only: args.only.clone(),
        skip: args.skip.clone(),
        ..RunOptions::default()
    };
    let checks = match runner::select(&opts) {
        Ok(checks) => checks,
        Err(message) => {
            eprintln!("mailswarm: error: {message}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let mut out = std::io::stdout().lock();
    for c in &checks {
        let needs = if c.needs.is_empty() {
            String::new()
        } else {
            format!(" [needs {}]", c.needs.join(", "))
        };
        let destructive = if c.destructive { " [destructive]" } else { "" };
        writeln!(
            out,
            "{:<46} {:<6} {:<18} {}{needs}{destructive}",
            c.id,
            c.level.as_str(),
            c.reference,
            c.title
        )?;
    }
    writeln!(out, "{} checks", checks.len())?;
    Ok(ExitCode::from(EXIT_OK))
}
