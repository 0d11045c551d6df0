//! `mailswarm lab up|down|status`.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab (harmless when it is already running).
    Up,
    /// Stop exactly what `up` started.
    Down,
    /// Show what is running.
    Status,
}

pub fn run(_cmd: LabCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lab: not built yet")
}
