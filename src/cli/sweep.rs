//! `mailswarm sweep SCENARIO --levels 100,500,1000`: the scenario once per load level, each
//! level a complete run folder (`OUT/level-<n>/`), then what capacity planners read across
//! them: latency per command against load, server memory per connected user, and the knee.
//!
//! Each level starts with a warm-up that the numbers leave out: an empty server answering its
//! first logins, or the last level's processes still exiting, says nothing about steady load.
//! `sweep.json` is rewritten after every level, so Ctrl-C (or a crash) leaves a summary of
//! what ran.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::execute::{execute, ExecuteOptions};
use super::run::{check_thresholds, raise_nofile_limit, sanitize};
use super::{EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use crate::engine::plan;
use crate::gate::threshold;
use crate::report::results::Results;
use crate::report::sweep::{
    error_totals, knee_sentence, write_sweep, FailedCriterion, LevelRun, LevelUnit, SteadyWindow,
    SweepLevel, SweepReport, SCHEMA_VERSION,
};
use crate::report::ScenarioInfo;
use crate::scenario::{self, Model};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Scenario file (YAML); see README.md's scenario reference.
    pub scenario: PathBuf,
    /// Load levels, increasing and comma-separated, e.g. `100,500,1000,2000`: concurrent
    /// sessions (closed model), sessions started per second (open model) or max_sessions
    /// (population model).
    #[arg(long, required = true, value_parser = parse_levels)]
    pub levels: Levels,
    /// Output folder; default `reports/<scenario name>-sweep`. Each level runs into
    /// `OUT/level-<n>/`.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Length of each level's run, e.g. `60s` (default: the scenario's duration).
    #[arg(long, value_parser = parse_duration_flag)]
    pub duration: Option<Duration>,
    /// Start of each level left out of the numbers (tagged ramp_up). Default: the scenario's
    /// load.ramp_up, or when it has none 10% of the duration, at least 2 s.
    #[arg(long, value_parser = parse_duration_flag)]
    pub warmup: Option<Duration>,
    /// Lab directory for `target: {lab: true}` (default $MAILSWARM_LAB_DIR or /tmp/mailswarm-lab).
    #[arg(long)]
    pub lab_dir: Option<PathBuf>,
    /// No progress while a level runs; still one line per level and the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--levels`, checked to be positive and increasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels(pub Vec<u64>);

fn parse_duration_flag(text: &str) -> Result<Duration, String> {
    scenario::units::parse_duration(text)
}

/// Levels must increase: the knee is "the first level that fails", which only means
/// something when load grows from one level to the next.
pub fn parse_levels(text: &str) -> Result<Levels, String> {
    let hint = "write increasing whole numbers separated by commas, e.g. `--levels 100,500,1000`";
    let mut levels: Vec<u64> = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("empty level in `{text}`; {hint}"));
        }
        let level: u64 = part
            .parse()
            .map_err(|_| format!("`{part}` is not a whole number; {hint}"))?;
        if level == 0 {
            return Err(format!("a level of 0 runs nothing; {hint}"));
        }
        if let Some(&last) = levels.last() {
            if level <= last {
                return Err(format!("{level} comes after {last}; {hint}"));
            }
        }
        levels.push(level);
    }
    Ok(Levels(levels))
}

/// What a level sets for the scenario's model, or why a level cannot run.
fn level_unit(s: &scenario::Scenario, levels: &[u64], file: &str) -> Result<LevelUnit, String> {
    let unit = match s.load.model {
        Model::Closed => LevelUnit::Sessions,
        Model::Open => LevelUnit::ArrivalRate,
        Model::Population => LevelUnit::MaxSessions,
    };
    // An arrival rate is not a number of users; session counts are, and each session is a
    // distinct user.
    if unit != LevelUnit::ArrivalRate {
        let users = s.users.count.value;
        if let Some(level) = levels.iter().find(|&&l| l > users) {
            return Err(format!(
                "--levels: {level} is more than users.count ({users}) in {file}: each session \
                 is a distinct user (hint: raise users.count or lower the level)"
            ));
        }
    }
    Ok(unit)
}

/// The warm-up each level gets, and whether it replaces the scenario's ramp_up.
fn warmup(
    args_warmup: Option<Duration>,
    scenario_ramp_up: Duration,
    duration: Duration,
) -> (Duration, Option<Duration>) {
    match args_warmup {
        Some(w) => (w, Some(w)),
        None if !scenario_ramp_up.is_zero() => (scenario_ramp_up, None),
        None => {
            let w = (duration / 10).max(Duration::from_secs(2));
            (w, Some(w))
        }
    }
}

pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
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
    let file = loaded.path.clone().unwrap_or_else(|| "<scenario>".into());
    let s = &loaded.scenario;
    let unit = match level_unit(s, &args.levels.0, &file) {
        Ok(unit) => unit,
        Err(message) => {
            eprintln!("mailswarm: error: {message}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let duration = args.duration.unwrap_or(s.duration.value.0);
    let (warmup, ramp_up) = warmup(args.warmup, s.load.ramp_up.0, duration);
    if warmup + s.load.ramp_down.0 >= duration {
        eprintln!(
            "mailswarm: error: a warm-up of {warmup:?} (plus load.ramp_down {:?}) leaves no \
             steady phase in a {duration:?} level (hint: shorten --warmup or lengthen --duration)",
            s.load.ramp_down.0
        );
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let (nofile_soft, nofile_hard) = raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let sweep = Sweep {
        out: args.out.clone().unwrap_or_else(|| {
            PathBuf::from("reports").join(format!("{}-sweep", sanitize(&s.name)))
        }),
        overrides: plan::Overrides {
            duration: args.duration,
            ramp_up,
            lab_dir: args.lab_dir.clone(),
            ..plan::Overrides::default()
        },
        report: SweepReport {
            schema_version: SCHEMA_VERSION,
            mailswarm_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: ScenarioInfo {
                name: s.name.clone(),
                file: loaded.path.clone(),
                seed: s.seed,
                digest: loaded.digest.clone(),
            },
            model: format!("{:?}", s.load.model).to_lowercase(),
            level_unit: unit,
            duration_s: duration.as_secs_f64(),
            warmup_s: warmup.as_secs_f64(),
            ramp_down_s: s.load.ramp_down.0.as_secs_f64(),
            thresholds: s
                .thresholds
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
            interrupted: false,
            levels: Vec::new(),
            knee: None,
            memory_fit: None,
        },
        options: ExecuteOptions {
            quiet: args.quiet,
            nofile: (nofile_soft, nofile_hard),
        },
    };
    runtime.block_on(sweep.run(loaded, &args.levels.0))
}

struct Sweep {
    out: PathBuf,
    /// Everything but the level itself, which each run sets.
    overrides: plan::Overrides,
    report: SweepReport,
    options: ExecuteOptions,
}

impl Sweep {
    async fn run(
        mut self,
        loaded: scenario::LoadedScenario,
        levels: &[u64],
    ) -> anyhow::Result<ExitCode> {
        let interrupt = CancellationToken::new();
        super::cancel_on_signal(&interrupt, "finishing this level and writing the sweep");
        let mut stdout = std::io::stdout().lock();
        for &level in levels {
            if interrupt.is_cancelled() {
                break;
            }
            let mut overrides = self.overrides.clone();
            match self.report.level_unit {
                LevelUnit::ArrivalRate => overrides.arrival_rate = Some(level as f64),
                LevelUnit::Sessions | LevelUnit::MaxSessions => overrides.sessions = Some(level),
            }
            let run_plan = match plan::build(loaded.clone(), &overrides).await {
                Ok(plan) => Arc::new(plan),
                Err(err) => {
                    eprintln!("mailswarm: error: level {level}: {err}");
                    return Ok(ExitCode::from(EXIT_ERROR));
                }
            };
            let window = SteadyWindow {
                start_s: run_plan.ramp_up.as_secs_f64(),
                end_s: (run_plan.duration - run_plan.ramp_down).as_secs_f64(),
            };
            let dir = format!("level-{level}");
            let done = execute(
                run_plan,
                &self.out.join(&dir),
                &self.options,
                interrupt.clone(),
            )
            .await?;
            let summary = SweepLevel::from_run(LevelRun {
                level,
                dir,
                results: &done.results,
                failed_criteria: steady_failures(&done.results, &self.report.thresholds),
                connected: &done.connected,
                server: &done.server,
                window,
            });
            super::tolerate_broken_pipe(writeln!(
                stdout,
                "{}",
                level_line(self.report.level_unit, &summary)
            ))?;
            self.report.levels.push(summary);
            self.report.interrupted = interrupt.is_cancelled();
            self.report.analyse();
            self.write()?;
        }
        self.report.interrupted = interrupt.is_cancelled();
        self.report.analyse();
        self.write()?;
        super::tolerate_broken_pipe(self.print_summary(&mut stdout))?;
        Ok(ExitCode::from(if self.report.interrupted {
            // A cut-short sweep never counts as a pass in a pipeline.
            EXIT_ERROR
        } else if self.report.knee.is_some() {
            EXIT_FAILED
        } else {
            EXIT_OK
        }))
    }

    fn write(&self) -> anyhow::Result<()> {
        let files = write_sweep(&self.out, &self.report)
            .with_context(|| format!("writing the sweep into {}", self.out.display()))?;
        for warning in &files.warnings {
            eprintln!("mailswarm: warning: {warning}");
        }
        Ok(())
    }

    fn print_summary(&self, out: &mut impl Write) -> std::io::Result<()> {
        let r = &self.report;
        writeln!(out, "{}", knee_sentence(r))?;
        match &r.memory_fit {
            Some(fit) => writeln!(
                out,
                "server memory per connected user: {:.1} KiB (fit over {} levels, R² = {:.3})",
                fit.slope_bytes_per_user / 1024.0,
                fit.levels,
                fit.r_squared
            )?,
            None => writeln!(
                out,
                "server memory per connected user: not measured (needs server samples at two \
                 levels with different user counts)"
            )?,
        }
        writeln!(out, "sweep:  {}", path_in(&self.out, "sweep.json"))?;
        writeln!(out, "report: {}", path_in(&self.out, "sweep.html"))
    }
}

fn path_in(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The scenario's thresholds held to the steady phase: `results.commands` already is (the
/// run has a warm-up), but `totals` covers the whole run, so the overall error rate
/// (`errors: "< 1%"`) is recomputed from the steady commands before evaluating. Failures in a
/// warm-up's first logins must not make a knee.
fn steady_failures(
    results: &Results,
    definitions: &BTreeMap<String, String>,
) -> Vec<FailedCriterion> {
    let thresholds = match threshold::parse_thresholds(definitions) {
        Ok(t) => t,
        // Checked when the scenario loaded; should it still fail, say so instead of passing.
        Err(err) => {
            return vec![FailedCriterion {
                criterion: err.key.clone(),
                reason: err.to_string(),
            }]
        }
    };
    let mut steady = results.clone();
    let (commands, errors, rate) = error_totals(&results.commands);
    steady.totals.commands = commands;
    steady.totals.errors = errors;
    steady.totals.error_rate = rate;
    threshold::evaluate(&thresholds, &steady)
        .into_iter()
        .filter(|o| !o.passed)
        .map(|o| FailedCriterion {
            criterion: o.criterion,
            reason: o.reason,
        })
        .collect()
}

/// One console line per finished level.
fn level_line(unit: LevelUnit, l: &SweepLevel) -> String {
    let operations: u64 = l.commands.iter().map(|c| c.count).sum();
    let connected = l
        .connected_mean
        .map_or("-".to_string(), |c| format!("{c:.1}"));
    let server = l
        .server_pss_mean_bytes
        .map_or("not sampled".to_string(), |b| {
            format!("{:.1} MiB", b / 1048576.0)
        });
    let verdict = if l.interrupted {
        "interrupted".to_string()
    } else if l.thresholds_passed {
        "thresholds pass".to_string()
    } else {
        let failed: Vec<&str> = l
            .failed_criteria
            .iter()
            .map(|c| c.criterion.as_str())
            .collect();
        format!("thresholds FAIL: {}", failed.join(", "))
    };
    format!(
        "level {}: {connected} connected, {operations} operations, {} errors, server {server}, \
         {verdict}",
        unit.describe(l.level),
        crate::report::html::percent(l.error_rate),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_explain_what_is_wrong() {
        assert_eq!(
            parse_levels("100,500, 1000,2000").unwrap(),
            Levels(vec![100, 500, 1000, 2000])
        );
        assert_eq!(parse_levels("7").unwrap(), Levels(vec![7]));
        let err = parse_levels("100,abc").unwrap_err();
        assert!(err.starts_with("`abc` is not a whole number"), "{err}");
        assert!(parse_levels("100,,200")
            .unwrap_err()
            .starts_with("empty level"));
        assert!(parse_levels("0,5").unwrap_err().contains("level of 0"));
        assert!(parse_levels("-5")
            .unwrap_err()
            .contains("`-5` is not a whole number"));
        let err = parse_levels("500,100").unwrap_err();
        assert!(err.starts_with("100 comes after 500"), "{err}");
        assert!(parse_levels("5,5").is_err());
    }

    #[test]
    fn warmup_defaults_to_a_tenth_of_the_run_and_at_least_two_seconds() {
        let s = Duration::from_secs;
        assert_eq!(warmup(None, Duration::ZERO, s(60)), (s(6), Some(s(6))));
        assert_eq!(warmup(None, Duration::ZERO, s(8)), (s(2), Some(s(2))));
        // The scenario's own ramp-up is kept, unless --warmup says otherwise.
        assert_eq!(warmup(None, s(5), s(60)), (s(5), None));
        assert_eq!(warmup(Some(s(1)), s(5), s(60)), (s(1), Some(s(1))));
    }

    fn scenario_with(model: &str) -> scenario::Scenario {
        let text = format!(
            "name: t\nduration: 10s\ntarget: {{imap: \"127.0.0.1:1\"}}\nusers: {{count: 50, password: x}}\n\
             load: {model}\nmix:\n  - idler: {{weight: 1}}\n"
        );
        scenario::load_str(&text, None).unwrap().scenario
    }

    #[test]
    fn levels_above_the_user_count_are_refused_for_session_counts_only() {
        let closed = scenario_with("{sessions: 5}");
        assert_eq!(level_unit(&closed, &[10, 50], "f"), Ok(LevelUnit::Sessions));
        let err = level_unit(&closed, &[10, 60], "f.yaml").unwrap_err();
        assert!(
            err.contains("60 is more than users.count (50) in f.yaml"),
            "{err}"
        );
        let open = scenario_with("{model: open, arrival_rate: 5/s, max_sessions: 50}");
        assert_eq!(
            level_unit(&open, &[100, 200], "f"),
            Ok(LevelUnit::ArrivalRate)
        );
    }

    #[test]
    fn thresholds_use_the_steady_error_rate() {
        use crate::report::results::{CommandStats, RunInfo, Totals};
        let stats = |count, errors| CommandStats {
            protocol: "imap".into(),
            command: "NOOP".into(),
            metric: "imap.noop".into(),
            count,
            errors,
            errors_by_kind: BTreeMap::new(),
            mean_us: Some(100.0),
            p50_us: Some(100),
            p90_us: Some(100),
            p99_us: Some(200),
            p999_us: Some(300),
            max_us: Some(400),
        };
        let results = |steady_errors| Results {
            schema_version: 1,
            mailswarm_version: "0".into(),
            scenario: ScenarioInfo {
                name: "t".into(),
                file: None,
                seed: 1,
                digest: "d".into(),
            },
            run: RunInfo {
                started_at: String::new(),
                ended_at: String::new(),
                duration_s: 10.0,
                interrupted: false,
                model: "closed".into(),
                peak_connected: 5,
                nofile_soft: 0,
                nofile_hard: 0,
            },
            commands: vec![stats(1000, steady_errors)],
            phases: BTreeMap::new(),
            // The whole run: the warm-up's 50 failed logins dilute or dominate the total.
            totals: Totals {
                commands: 1100,
                errors: 50 + steady_errors,
                error_rate: (50 + steady_errors) as f64 / 1100.0,
                errors_by_kind: BTreeMap::new(),
            },
            counters: BTreeMap::new(),
            extra: BTreeMap::new(),
        };
        let defs = BTreeMap::from([
            ("errors".to_string(), "< 1%".to_string()),
            ("imap.noop".to_string(), "p99 < 1ms".to_string()),
        ]);
        // 4.5% over the whole run, 0% in the steady phase: no failure.
        assert_eq!(steady_failures(&results(0), &defs), vec![]);
        // 2% in the steady phase fails, with the steady number in the reason.
        let failed = steady_failures(&results(20), &defs);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].criterion, "errors: < 1%");
        assert!(failed[0].reason.contains("2%"), "{}", failed[0].reason);
    }

    #[test]
    fn level_lines_say_what_failed() {
        let mut l = SweepLevel {
            level: 500,
            dir: "level-500".into(),
            interrupted: false,
            connected_mean: Some(498.25),
            commands: vec![],
            error_rate: 0.0125,
            server_pss_mean_bytes: Some(512.0 * 1048576.0),
            server_samples: 10,
            thresholds_passed: false,
            failed_criteria: vec![FailedCriterion {
                criterion: "imap.fetch: p99 < 50ms".into(),
                reason: "p99 is 61ms, needs < 50ms".into(),
            }],
        };
        assert_eq!(
            level_line(LevelUnit::Sessions, &l),
            "level 500 sessions: 498.2 connected, 0 operations, 1.25% errors, server 512.0 MiB, \
             thresholds FAIL: imap.fetch: p99 < 50ms"
        );
        l.server_pss_mean_bytes = None;
        l.interrupted = true;
        let line = level_line(LevelUnit::ArrivalRate, &l);
        assert!(line.starts_with("level 500 sessions/s:"), "{line}");
        assert!(line.ends_with("server not sampled, interrupted"), "{line}");
    }
}
