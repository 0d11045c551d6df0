//! `mailswarm bench …` (hidden): measurements of mailswarm's own limits, driven by `ci/bench`
//! against `mailswarm sink` processes. Each measurement runs in its own process so that one
//! does not inherit another's heap, writes one JSON object, and `bench report` merges them
//! into `reports/bench/bench.json` with the targets and the machine.
//!
//! These are benchmarks: nothing here runs under `cargo test` except the report's logic.

mod commands;
mod idle;
mod report;
mod timers;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::EXIT_OK;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Client memory per idle IMAP connection (login, select, IDLE) against sinks.
    Idle(idle::IdleArgs),
    /// IMAP commands (NOOP / FETCH) per second of client CPU against sinks.
    Commands(commands::CommandsArgs),
    /// Bytes per scheduled offline user and timer events per second (no network).
    Timers(timers::TimersArgs),
    /// Merge the measurements into bench.json with targets, pass/miss and the machine.
    Report(report::ReportArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Idle(args) => idle::run(args),
        BenchCommand::Commands(args) => commands::run(args),
        BenchCommand::Timers(args) => timers::run(args),
        BenchCommand::Report(args) => report::run(args),
    }
}

/// Where the sinks listen and where the client binds: shared by the network benchmarks.
#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// Sink IMAP addresses (loopback), comma-separated; connections are spread over them.
    #[arg(long, value_delimiter = ',', required = true, value_name = "ADDR,...")]
    pub imap: Vec<SocketAddr>,
    /// Loopback source addresses to bind, comma-separated (each has its own ~28k ephemeral
    /// ports); default: let the kernel choose.
    #[arg(long, value_delimiter = ',', value_name = "IP,...")]
    pub sources: Vec<IpAddr>,
    /// Worker threads of the client runtime.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Write the JSON result here (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Targets {
    /// Refuses anything but loopback, before any connection is made.
    fn check(&self) -> anyhow::Result<()> {
        let bad_target = self
            .imap
            .iter()
            .map(|a| a.ip())
            .find(|ip| !ip.is_loopback());
        if let Some(ip) = bad_target.or(self.sources.iter().copied().find(|ip| !ip.is_loopback())) {
            anyhow::bail!("{ip} is not a loopback address: benchmarks only run on 127.0.0.0/8");
        }
        Ok(())
    }

    /// Sink and source address of connection `i`.
    fn pick(&self, i: usize) -> (SocketAddr, Option<IpAddr>) {
        let target = self.imap[i % self.imap.len()];
        let source = (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()]);
        (target, source)
    }

    fn runtime(&self) -> anyhow::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads.max(1))
            .enable_all()
            .build()
            .context("starting the async runtime")
    }
}

/// Resident set size of this process, from /proc/self/status (VmRSS).
fn rss_bytes() -> anyhow::Result<u64> {
    let status = procfs::process::Process::myself()
        .and_then(|p| p.status())
        .context("reading /proc/self/status")?;
    let kib = status.vmrss.context("/proc/self/status has no VmRSS")?;
    Ok(kib * 1024)
}

fn write_json<T: Serialize>(value: &T, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::from(EXIT_OK))
}
