//! Command-line entry point. Exit codes are a contract:
//! 0 = success / gate passed, 1 = gate or check failed, 2 = usage or runtime error.
//! Errors are printed once, with their whole context chain.

mod bench;
mod compare;
mod conform;
mod execute;
mod gate;
mod lab;
mod run;
mod sink;
mod sweep;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mailswarm",
    version,
    about = "Load tests and conformance checks for IMAP, SMTP and LMTP servers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, stop or inspect the private Dovecot/Postfix lab on loopback.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Run a load scenario and write reports/<name>/results.json.
    Run(run::RunArgs),
    /// Pass/fail a finished run against its thresholds, a baseline and conformance results.
    Gate(gate::GateArgs),
    /// RFC conformance checks of an IMAP server (and its SMTP/LMTP endpoints); JUnit and JSON.
    Conform(conform::ConformArgs),
    /// Compare runs: p50, p99 and errors per command against the first run.
    Compare(compare::CompareArgs),
    Sink(sink::SinkArgs),
    #[command(subcommand, hide = true)]
    Bench(bench::BenchCommand),
    /// Run a scenario at increasing load levels: latency and server memory against users.
    Sweep(sweep::SweepArgs),
}

/// Process exit status shared by every subcommand.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Panics anywhere in the process (a session task included) since start-up. A panicking task
/// does not stop the run, so `run` checks this count to refuse a verdict on broken numbers.
static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn panics() -> u64 {
    PANICS.load(std::sync::atomic::Ordering::Relaxed)
}

fn count_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        report(info);
    }));
}

pub fn main() -> ExitCode {
    count_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0 and usage errors with exit 2.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_OK
            });
        }
    };
    let result = match cli.command {
        Command::Lab(cmd) => lab::run(cmd),
        Command::Run(args) => run::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Conform(args) => conform::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Sink(args) => sink::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Sweep(args) => sweep::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(EXIT_OK);
            }
            eprintln!("mailswarm: error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Cancels `token` on Ctrl-C or SIGTERM (what a CI runner sends when it cancels a job),
/// after printing `what` happens next. Must be called inside a tokio runtime.
pub(crate) fn cancel_on_signal(token: &tokio_util::sync::CancellationToken, what: &'static str) {
    let token = token.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(term) => term.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        eprintln!("mailswarm: interrupted; {what}");
        token.cancel();
    });
}

/// Output to a closed pipe (`| head`) is not an error: the verdict, decided apart from the
/// printing, still becomes the exit code.
pub(crate) fn tolerate_broken_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
