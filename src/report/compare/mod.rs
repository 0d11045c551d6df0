//! `mailswarm compare`: several runs side by side, each command's p50, p99 and errors with the
//! change against the first run (the baseline). Changes inside the noise band print as `≈`,
//! so a reader sees at once which differences are worth a second look.

mod page;

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::results::{CommandStats, Results, ResultsError};
use super::server::{ServerSummary, EXTRA_KEY as SERVER_KEY};

pub use page::{render_compare_html, write_compare_html, WriteError};

/// A latency change smaller than this share of the baseline is noise.
pub const NOISE_RELATIVE: f64 = 0.05;
/// ... and so is one smaller than this, whatever the share: timer and scheduling jitter.
pub const NOISE_ABSOLUTE_US: f64 = 100.0;
/// An error-rate change smaller than this (0.1 percentage points) is noise.
pub const NOISE_ERROR_RATE: f64 = 0.001;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0} does not exist: give a run folder (holding results.json) or a results.json file")]
    Missing(PathBuf),
    #[error("{} is a folder without results.json: is it a mailswarm run folder?", .0.display())]
    NotARun(PathBuf),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("compare needs at least two runs, got {0}")]
    TooFew(usize),
}

/// One run as `compare` reads it.
#[derive(Debug, Clone)]
pub struct ComparedRun {
    /// Short name shown in tables: the run folder's name.
    pub label: String,
    pub path: PathBuf,
    pub results: Results,
}

/// Reads a run folder or a `results.json` path.
pub fn load_run(arg: &Path) -> Result<ComparedRun, CompareError> {
    if !arg.exists() {
        return Err(CompareError::Missing(arg.to_path_buf()));
    }
    let path = if arg.is_dir() {
        let file = arg.join("results.json");
        if !file.is_file() {
            return Err(CompareError::NotARun(arg.to_path_buf()));
        }
        file
    } else {
        arg.to_path_buf()
    };
    let results = Results::read(&path)?;
    let folder = if arg.is_dir() {
        Some(arg)
    } else {
        arg.parent()
    };
    let label = folder
        .and_then(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| arg.display().to_string());
    Ok(ComparedRun {
        label,
        path,
        results,
    })
}

/// Loads every argument; labels that collide get `#2`, `#3`.
pub fn load_runs(args: &[PathBuf]) -> Result<Vec<ComparedRun>, CompareError> {
    if args.len() < 2 {
        return Err(CompareError::TooFew(args.len()));
    }
    let mut runs: Vec<ComparedRun> = args.iter().map(|a| load_run(a)).collect::<Result<_, _>>()?;
    for i in 1..runs.len() {
        let taken = runs[..i]
            .iter()
            .filter(|r| r.label == runs[i].label)
            .count();
        if taken > 0 {
            runs[i].label = format!("{}#{}", runs[i].label, taken + 1);
        }
    }
    Ok(runs)
}

/// How a value moved against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the noise band.
    Same,
    Better,
    Worse,
}

impl Verdict {
    pub fn symbol(self) -> &'static str {
        match self {
            Verdict::Same => "≈",
            Verdict::Better => "▼",
            Verdict::Worse => "▲",
        }
    }

    pub fn css(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Better => "better",
            Verdict::Worse => "worse",
        }
    }
}

/// A change against the baseline; lower is better for everything compared here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delta {
    pub absolute: f64,
    /// Relative to the baseline; `None` when the baseline is 0.
    pub relative: Option<f64>,
    pub verdict: Verdict,
}

impl Delta {
    /// A latency change in µs: noise when within max(5%, 100 µs) of the baseline.
    pub fn latency(baseline_us: f64, value_us: f64) -> Delta {
        let band = (baseline_us * NOISE_RELATIVE).max(NOISE_ABSOLUTE_US);
        Delta::with_band(baseline_us, value_us, band)
    }

    /// An error-rate change: noise when within 0.1 percentage points.
    pub fn error_rate(baseline: f64, value: f64) -> Delta {
        Delta::with_band(baseline, value, NOISE_ERROR_RATE)
    }

    /// A change of a size such as bytes per user: noise within 5%.
    pub fn relative_only(baseline: f64, value: f64) -> Delta {
        Delta::with_band(baseline, value, baseline.abs() * NOISE_RELATIVE)
    }

    fn with_band(baseline: f64, value: f64, band: f64) -> Delta {
        let absolute = value - baseline;
        let verdict = if absolute.abs() <= band {
            Verdict::Same
        } else if absolute < 0.0 {
            Verdict::Better
        } else {
            Verdict::Worse
        };
        Delta {
            absolute,
            relative: (baseline != 0.0).then(|| absolute / baseline),
            verdict,
        }
    }
}

/// One command in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCell {
    pub count: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Against the baseline's cell; absent for the baseline itself or when either side lacks
    /// the value.
    pub p50_delta: Option<Delta>,
    pub p99_delta: Option<Delta>,
    pub error_delta: Option<Delta>,
}

/// One command across the runs; `None` where a run did not execute it.
#[derive(Debug, Clone)]
pub struct CommandRow {
    pub metric: String,
    pub runs: Vec<Option<RunCell>>,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub runs: Vec<ComparedRun>,
    pub commands: Vec<CommandRow>,
    /// Server memory per connected user per run, when the runs sampled the server.
    pub bytes_per_user: Vec<Option<f64>>,
}

fn cell(c: &CommandStats, baseline: Option<&CommandStats>) -> RunCell {
    let rate = |c: &CommandStats| {
        if c.count == 0 {
            0.0
        } else {
            c.errors as f64 / c.count as f64
        }
    };
    let latency = |b: Option<u64>, v: Option<u64>| match (b, v) {
        (Some(b), Some(v)) => Some(Delta::latency(b as f64, v as f64)),
        _ => None,
    };
    RunCell {
        count: c.count,
        errors: c.errors,
        error_rate: rate(c),
        p50_us: c.p50_us,
        p99_us: c.p99_us,
        p50_delta: baseline.and_then(|b| latency(b.p50_us, c.p50_us)),
        p99_delta: baseline.and_then(|b| latency(b.p99_us, c.p99_us)),
        error_delta: baseline.map(|b| Delta::error_rate(rate(b), rate(c))),
    }
}

/// Lines the runs up command by command (in the baseline's order, then commands only later
/// runs have).
pub fn compare(runs: Vec<ComparedRun>) -> Comparison {
    let mut metrics: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for run in &runs {
        for c in &run.results.commands {
            if seen.insert(c.metric.clone()) {
                metrics.push(c.metric.clone());
            }
        }
    }
    let commands = metrics
        .into_iter()
        .map(|metric| {
            let baseline = runs[0].results.command(&metric);
            let cells = runs
                .iter()
                .enumerate()
                .map(|(i, run)| {
                    let base = if i == 0 { None } else { baseline };
                    run.results.command(&metric).map(|c| cell(c, base))
                })
                .collect();
            CommandRow {
                metric,
                runs: cells,
            }
        })
        .collect();
    let bytes_per_user = runs
        .iter()
        .map(|r| {
            r.results
                .extra
                .get(SERVER_KEY)
                .and_then(|v| serde_json::from_value::<ServerSummary>(v.clone()).ok())
                .and_then(|s| s.bytes_per_user)
        })
        .collect();
    Comparison {
        runs,
        commands,
        bytes_per_user,
    }
}

pub(crate) fn ms_text(us: Option<u64>) -> String {
    us.map_or("-".to_string(), |us| super::html::ms_f(us as f64))
}

/// `+12.3%`, or the absolute change when the baseline is 0.
pub(crate) fn delta_text(delta: &Delta, absolute_unit: &str) -> String {
    let change = match delta.relative {
        Some(r) => format!("{:+.1}%", r * 100.0),
        None => format!("{:+}{absolute_unit}", delta.absolute),
    };
    format!("{} {change}", delta.verdict.symbol())
}

/// The console table: per command, one line per run.
pub fn print_comparison(out: &mut impl Write, cmp: &Comparison) -> io::Result<()> {
    writeln!(
        out,
        "baseline: {} ({})",
        cmp.runs[0].label,
        cmp.runs[0].path.display()
    )?;
    for run in &cmp.runs[1..] {
        writeln!(out, "compared: {} ({})", run.label, run.path.display())?;
    }
    writeln!(
        out,
        "≈ = within noise (latency: max(5%, 100 µs); error rate: 0.1 points), ▲ worse, ▼ better"
    )?;
    let width = cmp
        .runs
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<20} {:<width$} {:>9} {:>16} {:>9} {:>16} {:>8} {:>16}",
        "command", "run", "p50 ms", "", "p99 ms", "", "errors", ""
    )?;
    for row in &cmp.commands {
        for (run, cell) in cmp.runs.iter().zip(&row.runs) {
            let name = &row.metric;
            let Some(c) = cell else {
                writeln!(out, "{name:<20} {:<width$} {:>9}", run.label, "(not run)")?;
                continue;
            };
            let d = |d: &Option<Delta>, unit: &str| {
                d.as_ref().map_or(String::new(), |d| delta_text(d, unit))
            };
            let error_delta = c.error_delta.as_ref().map_or(String::new(), |d| {
                format!("{} {:+.2} pts", d.verdict.symbol(), d.absolute * 100.0)
            });
            writeln!(
                out,
                "{name:<20} {:<width$} {:>9} {:>16} {:>9} {:>16} {:>8} {:>16}",
                run.label,
                ms_text(c.p50_us),
                d(&c.p50_delta, "µs"),
                ms_text(c.p99_us),
                d(&c.p99_delta, "µs"),
                c.errors,
                error_delta
            )?;
        }
    }
    if cmp.bytes_per_user.iter().any(Option::is_some) {
        writeln!(out, "server memory per connected user:")?;
        let base = cmp.bytes_per_user[0];
        for (run, value) in cmp.runs.iter().zip(&cmp.bytes_per_user) {
            let text = value.map_or("-".to_string(), |b| format!("{b:.0} bytes"));
            let delta = match (base, value) {
                (Some(b), Some(v)) if !std::ptr::eq(run, &cmp.runs[0]) => {
                    delta_text(&Delta::relative_only(b, *v), " bytes")
                }
                _ => String::new(),
            };
            writeln!(out, "  {:<width$} {text:>16} {delta}", run.label)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
