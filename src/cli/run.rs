//! `mailswarm run SCENARIO`: load, plan, run, report. Results are written however the run
//! ends (duration reached, Ctrl-C, every session failing), because numbers already measured
//! are the point of the exercise.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::execute::{execute, ExecuteOptions};
use crate::engine::plan;
use crate::gate::threshold;
use crate::report;
use crate::scenario;

use super::{EXIT_ERROR, EXIT_FAILED, EXIT_OK};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (YAML); see README.md's scenario reference.
    pub scenario: PathBuf,
    /// Output folder; default `reports/<scenario name>`.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Override the scenario's duration, e.g. `30s`.
    #[arg(long, value_parser = parse_duration_flag)]
    pub duration: Option<std::time::Duration>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override load.sessions (closed model) or load.max_sessions (open model).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub sessions: Option<u64>,
    /// Lab directory for `target: {lab: true}` (default $MAILSWARM_LAB_DIR or /tmp/mailswarm-lab).
    #[arg(long)]
    pub lab_dir: Option<PathBuf>,
    /// Write every session's planned actions as JSON lines (for determinism checks).
    #[arg(long)]
    pub trace_actions: Option<PathBuf>,
    /// Worker threads of the async runtime (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Print only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_duration_flag(text: &str) -> Result<std::time::Duration, String> {
    scenario::units::parse_duration(text)
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let loaded = match scenario::load_file(&args.scenario) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("mailswarm: error: {err}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    if let Err(message) = check_thresholds(&loaded) {
        eprintln!("mailswarm: error: {message}");
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let (nofile_soft, nofile_hard) = raise_nofile_limit();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(usize::from(threads));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, loaded, nofile_soft, nofile_hard))
}

async fn run_async(
    args: RunArgs,
    loaded: scenario::LoadedScenario,
    nofile_soft: u64,
    nofile_hard: u64,
) -> anyhow::Result<ExitCode> {
    let overrides = plan::Overrides {
        duration: args.duration,
        seed: args.seed,
        sessions: args.sessions,
        lab_dir: args.lab_dir.clone(),
        trace_actions: args.trace_actions.clone(),
        ..plan::Overrides::default()
    };
    let scenario_name = loaded.scenario.name.clone();
    let run_plan = match plan::build(loaded, &overrides).await {
        Ok(plan) => Arc::new(plan),
        Err(err) => {
            eprintln!("mailswarm: error: {err}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(sanitize(&scenario_name)));
    let interrupt = CancellationToken::new();
    super::cancel_on_signal(&interrupt, "logging sessions out and writing results");
    let options = ExecuteOptions {
        quiet: args.quiet,
        nofile: (nofile_soft, nofile_hard),
    };
    let panics_before = super::panics();
    let done = execute(run_plan, &out, &options, interrupt).await?;
    let succeeded: u64 = done
        .results
        .commands
        .iter()
        .map(|c| c.count.saturating_sub(c.errors))
        .sum();
    let panicked = super::panics() - panics_before;
    // The verdict is decided before anything is printed: a closed stdout must not turn a
    // failed run into a pass.
    let code = if panicked > 0 {
        eprintln!(
            "mailswarm: error: {panicked} internal task(s) panicked; the results are incomplete \
             (please report this with the scenario)"
        );
        EXIT_ERROR
    } else if done.results.run.interrupted {
        // A cut-short run never counts as a pass in a pipeline.
        EXIT_ERROR
    } else if succeeded == 0 {
        eprintln!(
            "mailswarm: error: no operation succeeded: the target refused, timed out or \
             rejected every attempt (see errors by kind above)"
        );
        EXIT_ERROR
    } else if done.thresholds.iter().any(|o| !o.passed) {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    super::tolerate_broken_pipe(print_outcome(&done, &out))?;
    Ok(ExitCode::from(code))
}

fn print_outcome(done: &super::execute::Executed, out: &std::path::Path) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    report::console::print_summary(&mut stdout, &done.results)?;
    for outcome in &done.thresholds {
        let verdict = if outcome.passed { "pass" } else { "FAIL" };
        writeln!(
            stdout,
            "threshold {verdict}: {} ({})",
            outcome.criterion, outcome.reason
        )?;
    }
    if let Some(peak) = done.server.iter().map(|s| s.pss_bytes).max() {
        writeln!(
            stdout,
            "server memory: peak {:.1} MiB over {} samples",
            peak as f64 / (1024.0 * 1024.0),
            done.server.len()
        )?;
    }
    if let Some(bytes) = done.server_bytes_per_user() {
        writeln!(
            stdout,
            "server memory per connected user: {:.0} KiB",
            bytes / 1024.0
        )?;
    }
    if let Some(client) = done.results.extra.get("client") {
        let cpu = client["cpu_s"].as_f64().unwrap_or_default();
        match client["cpu_share_of_server"].as_f64() {
            Some(share) => writeln!(
                stdout,
                "mailswarm CPU: {cpu:.2} s, {:.1}% of the server's",
                share * 100.0
            )?,
            None => writeln!(stdout, "mailswarm CPU: {cpu:.2} s")?,
        }
    }
    writeln!(stdout, "results: {}", out.join("results.json").display())?;
    writeln!(stdout, "report:  {}", out.join("report.html").display())?;
    stdout.flush()
}

/// Threshold syntax is checked before any connection, with the scenario position of the bad
/// entry: finding a typo only after a 30-minute run would waste the run.
pub(super) fn check_thresholds(s: &scenario::LoadedScenario) -> Result<(), String> {
    let file = s.path.as_deref().unwrap_or("<scenario>");
    for (key, value) in &s.scenario.thresholds {
        if let Err(err) = threshold::parse_entry(key, &value.value) {
            let loc = &value.referenced;
            return Err(format!(
                "{file}:{}:{}: thresholds.{key}: {} in `{}` (hint: {})",
                loc.line(),
                loc.column(),
                err.problem,
                err.part,
                err.hint
            ));
        }
    }
    Ok(())
}

/// Report folder names come from scenario names; keep them to safe characters.
pub(super) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Raises the soft open-file limit to the hard one: every connection is a file descriptor and
/// the default soft limit (often 1,024) would cap a run long before the machine does.
pub fn raise_nofile_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}
