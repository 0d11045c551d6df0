//! `mailswarm sweep`'s summary: one scenario run at increasing load levels, reduced to what a
//! capacity planner reads. Per level: steady-state latency per command, error rate, server
//! memory and connected users; across levels: the knee (the first level where the scenario's
//! thresholds stop holding) and what one more connected user costs the server (a least-squares
//! line through the levels). `sweep.json` holds it; [`write_sweep`] also draws the two
//! capacity charts and `sweep.html` from it.
//!
//! Everything here is computed from data already on disk (each level's `results.json` and
//! server samples), so the functions are pure and testable on synthetic levels.

mod charts;
mod page;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plots::{fit_line, render, PlotError};
use super::results::{CommandStats, Results, ScenarioInfo};
use crate::metrics::ServerSample;

pub use charts::{slope_sentence, LatencyVsLoad, MemoryVsUsers};
pub use page::{knee_sentence, render_sweep_html};

/// Bumped on any change to `sweep.json` that is not a pure addition.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole of `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub schema_version: u32,
    pub mailswarm_version: String,
    pub scenario: ScenarioInfo,
    /// The scenario's load model: `closed`, `open` or `population`.
    pub model: String,
    /// What a level sets in that model.
    pub level_unit: LevelUnit,
    /// Length of each level's run, warm-up included.
    pub duration_s: f64,
    /// Start of each run tagged `ramp_up` and left out of every number here.
    pub warmup_s: f64,
    /// Tail of each run tagged `ramp_down` (the scenario's), also left out.
    #[serde(default)]
    pub ramp_down_s: f64,
    /// The scenario's `thresholds:` as written; the knee is where they stop holding.
    #[serde(default)]
    pub thresholds: BTreeMap<String, String>,
    /// True when Ctrl-C cut the sweep short: `levels` holds what ran.
    pub interrupted: bool,
    /// In the order they ran (increasing).
    pub levels: Vec<SweepLevel>,
    pub knee: Option<Knee>,
    pub memory_fit: Option<MemoryFit>,
}

/// What the numbers in `--levels` mean for the scenario's load model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelUnit {
    /// Closed model: `load.sessions`, concurrent sessions.
    Sessions,
    /// Open model: `load.arrival_rate`, sessions started per second.
    ArrivalRate,
    /// Population model: `load.max_sessions`, the cap on concurrent sessions.
    MaxSessions,
}

impl LevelUnit {
    /// The x-axis description of the latency chart.
    pub fn axis_label(self) -> &'static str {
        match self {
            LevelUnit::Sessions => "concurrent sessions (level)",
            LevelUnit::ArrivalRate => "session arrivals per second (level)",
            LevelUnit::MaxSessions => "max concurrent sessions (level)",
        }
    }

    /// `500 sessions`, `20 sessions/s`, `max 500 sessions`.
    pub fn describe(self, level: u64) -> String {
        match self {
            LevelUnit::Sessions => format!("{level} sessions"),
            LevelUnit::ArrivalRate => format!("{level} sessions/s"),
            LevelUnit::MaxSessions => format!("max {level} sessions"),
        }
    }
}

/// One level's steady-state numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepLevel {
    pub level: u64,
    /// The level's run folder (its `results.json`, `report.html`), relative to `sweep.json`.
    pub dir: String,
    /// Ctrl-C hit during this level: its numbers are partial, so the knee and the memory fit
    /// leave it out.
    #[serde(default)]
    pub interrupted: bool,
    /// Mean of connections open, over the steady phase's seconds; absent when the steady phase
    /// had no second (an interrupted level).
    pub connected_mean: Option<f64>,
    pub commands: Vec<LevelCommand>,
    /// Failed / completed operations in the steady phase (0 when none completed).
    pub error_rate: f64,
    /// Mean server memory over the steady phase's samples; absent without server sampling.
    pub server_pss_mean_bytes: Option<f64>,
    /// How many server samples that mean covers.
    #[serde(default)]
    pub server_samples: usize,
    /// Every scenario threshold held (also true when there are none).
    pub thresholds_passed: bool,
    pub failed_criteria: Vec<FailedCriterion>,
}

/// One command at one level, steady phase only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelCommand {
    /// `imap.fetch`, as thresholds name it.
    pub metric: String,
    pub count: u64,
    pub errors: u64,
    /// Latency of successful operations; absent when none succeeded.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// A threshold that did not hold, with the numbers: `p99 is 61.2ms, needs < 50ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedCriterion {
    /// `imap.fetch: p99 < 50ms`.
    pub criterion: String,
    pub reason: String,
}

/// The first level where the scenario stopped meeting its thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    pub level: u64,
    pub reason: String,
}

/// Server memory against connected users, one point per level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryFit {
    /// What one more connected user costs the server, in bytes.
    pub slope_bytes_per_user: f64,
    /// Bytes with nobody connected, as the line extrapolates it.
    pub intercept: f64,
    pub r_squared: f64,
    /// Levels the line was fitted over.
    pub levels: usize,
}

/// The part of a run that counts: from the end of the warm-up to the start of the ramp-down,
/// in seconds since the run started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SteadyWindow {
    pub start_s: f64,
    pub end_s: f64,
}

impl SteadyWindow {
    /// Instants at the warm-up's end count; the one at the ramp-down's start does not, since
    /// sessions are already being asked to leave then.
    pub fn contains(&self, t_s: f64) -> bool {
        t_s >= self.start_s && t_s < self.end_s
    }
}

/// Mean of the connection counts inside `window`.
pub fn mean_connected(points: &[(f64, u64)], window: SteadyWindow) -> Option<f64> {
    mean(
        points
            .iter()
            .filter(|(t, _)| window.contains(*t))
            .map(|(_, n)| *n as f64),
    )
    .map(|(m, _)| m)
}

/// Mean server memory inside `window`, and how many samples it covers.
pub fn mean_server_memory(samples: &[ServerSample], window: SteadyWindow) -> Option<(f64, usize)> {
    mean(
        samples
            .iter()
            .filter(|s| window.contains(s.t_s))
            .map(|s| s.pss_bytes as f64),
    )
}

fn mean(values: impl Iterator<Item = f64>) -> Option<(f64, usize)> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| (sum / n as f64, n))
}

/// (completed, failed, failed / completed) over a command table.
pub fn error_totals(commands: &[CommandStats]) -> (u64, u64, f64) {
    let count: u64 = commands.iter().map(|c| c.count).sum();
    let errors: u64 = commands.iter().map(|c| c.errors).sum();
    let rate = if count == 0 {
        0.0
    } else {
        errors as f64 / count as f64
    };
    (count, errors, rate)
}

/// What one finished level contributes to the sweep.
pub struct LevelRun<'a> {
    pub level: u64,
    pub dir: String,
    /// `commands` must be the steady phase's (what `results.json` holds when the run has ramps).
    pub results: &'a Results,
    pub failed_criteria: Vec<FailedCriterion>,
    pub connected: &'a [(f64, u64)],
    pub server: &'a [ServerSample],
    pub window: SteadyWindow,
}

impl SweepLevel {
    pub fn from_run(run: LevelRun<'_>) -> SweepLevel {
        let (_, _, error_rate) = error_totals(&run.results.commands);
        let memory = mean_server_memory(run.server, run.window);
        SweepLevel {
            level: run.level,
            dir: run.dir,
            interrupted: run.results.run.interrupted,
            connected_mean: mean_connected(run.connected, run.window).map(round1),
            commands: run
                .results
                .commands
                .iter()
                .map(|c| LevelCommand {
                    metric: c.metric.clone(),
                    count: c.count,
                    errors: c.errors,
                    p50_us: c.p50_us,
                    p99_us: c.p99_us,
                })
                .collect(),
            error_rate,
            server_pss_mean_bytes: memory.map(|(m, _)| m.round()),
            server_samples: memory.map_or(0, |(_, n)| n),
            thresholds_passed: run.failed_criteria.is_empty(),
            failed_criteria: run.failed_criteria,
        }
    }

    pub fn command(&self, metric: &str) -> Option<&LevelCommand> {
        self.commands.iter().find(|c| c.metric == metric)
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The first complete level with a failed threshold. Levels run in increasing order, so this
/// is the lowest load at which the scenario's promises break.
pub fn find_knee(levels: &[SweepLevel]) -> Option<Knee> {
    let level = levels
        .iter()
        .filter(|l| !l.interrupted)
        .find(|l| !l.failed_criteria.is_empty())?;
    let reason = level
        .failed_criteria
        .iter()
        .map(|c| format!("{} ({})", c.criterion, c.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Some(Knee {
        level: level.level,
        reason,
    })
}

/// Least squares through (connected users, server memory) of the complete levels that have
/// both. `None` below two distinct user counts.
pub fn fit_memory(levels: &[SweepLevel]) -> Option<MemoryFit> {
    let points: Vec<(f64, f64)> = memory_points(levels).map(|(_, x, y)| (x, y)).collect();
    let fit = fit_line(&points)?;
    Some(MemoryFit {
        slope_bytes_per_user: fit.slope.round(),
        intercept: fit.intercept.round(),
        r_squared: (fit.r_squared * 10_000.0).round() / 10_000.0,
        levels: fit.samples,
    })
}

/// (level, connected users, server bytes) of every complete level with both numbers.
pub(crate) fn memory_points(levels: &[SweepLevel]) -> impl Iterator<Item = (u64, f64, f64)> + '_ {
    levels
        .iter()
        .filter(|l| !l.interrupted)
        .filter_map(|l| Some((l.level, l.connected_mean?, l.server_pss_mean_bytes?)))
}

impl SweepReport {
    /// Recomputes the knee and the memory fit from `levels`.
    pub fn analyse(&mut self) {
        self.knee = find_knee(&self.levels);
        self.memory_fit = fit_memory(&self.levels);
    }

    /// Writes atomically (temp file + rename): after each level the file is rewritten, and a
    /// reader must never see half of it.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    pub fn read(path: &Path) -> Result<SweepReport, SweepError> {
        let io = |source| SweepError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let parse = |source| SweepError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(parse)?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(SCHEMA_VERSION)) {
            return Err(SweepError::Version {
                path: path.to_path_buf(),
                found: version,
            });
        }
        serde_json::from_value(value).map_err(parse)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("cannot write or read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a mailswarm sweep file: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{} has schema_version {found:?}; this mailswarm reads version {SCHEMA_VERSION}", path.display())]
    Version { path: PathBuf, found: Option<u64> },
}

/// What [`write_sweep`] wrote.
#[derive(Debug, Clone, Default)]
pub struct SweepFiles {
    pub json: PathBuf,
    pub html: Option<PathBuf>,
    /// PNG and SVG of each chart drawn.
    pub plots: Vec<PathBuf>,
    /// Charts or the page that could not be drawn: the JSON is still there.
    pub warnings: Vec<String>,
}

/// File stems of the two charts.
pub const LATENCY_CHART: &str = "sweep-latency";
pub const MEMORY_CHART: &str = "sweep-memory";

/// Writes `sweep.json`, then the charts (PNG + SVG) and `sweep.html` into `dir`. The JSON
/// goes first and alone decides success: a chart that fails to draw is a warning.
pub fn write_sweep(dir: &Path, report: &SweepReport) -> Result<SweepFiles, SweepError> {
    std::fs::create_dir_all(dir).map_err(|source| SweepError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = dir.join("sweep.json");
    report.write(&json).map_err(|source| SweepError::Io {
        path: json.clone(),
        source,
    })?;
    let mut files = SweepFiles {
        json,
        ..SweepFiles::default()
    };
    let mut drawn = |result: Result<Option<super::plots::Plot>, PlotError>| match result {
        Ok(Some(plot)) => {
            files.plots.push(plot.png_path.clone());
            files.plots.push(plot.svg_path.clone());
            Some(plot.svg)
        }
        Ok(None) => None,
        Err(err) => {
            files.warnings.push(format!("chart missing: {err}"));
            None
        }
    };
    let latency = LatencyVsLoad::new(report);
    let latency_svg = drawn(
        (!latency.is_empty())
            .then(|| {
                render(
                    &latency,
                    dir,
                    LATENCY_CHART,
                    "Latency per command against load",
                    latency.size(),
                )
            })
            .transpose(),
    );
    let memory = MemoryVsUsers::new(report);
    let memory_svg = drawn(
        (!memory.is_empty())
            .then(|| {
                render(
                    &memory,
                    dir,
                    MEMORY_CHART,
                    "Server memory against connected users",
                    memory.size(),
                )
            })
            .transpose(),
    );
    let html = dir.join("sweep.html");
    let page = render_sweep_html(report, latency_svg.as_deref(), memory_svg.as_deref());
    match std::fs::write(&html, page) {
        Ok(()) => files.html = Some(html),
        Err(err) => files
            .warnings
            .push(format!("cannot write {}: {err}", html.display())),
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
