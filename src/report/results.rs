//! `results.json`: the one machine-readable summary of a run. `compare`, `gate` and the HTML
//! report read it, so its field names are a contract; bump [`SCHEMA_VERSION`] on any change
//! that is not a pure addition.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::metrics::{OpKey, OpStats, Phase, RunMetrics};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema_version: u32,
    pub mailswarm_version: String,
    pub scenario: ScenarioInfo,
    pub run: RunInfo,
    /// Steady-state numbers when the scenario has ramps, else the whole run.
    pub commands: Vec<CommandStats>,
    /// The same per phase, for phases that saw any operation.
    #[serde(default)]
    pub phases: BTreeMap<String, Vec<CommandStats>>,
    pub totals: Totals,
    /// Named counters: `lmtp.delivered`, `sessions.started`, `connections.failed`, ...
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Sections added by later stages (audit, checks, server, thresholds) keep their own
    /// schema; they are optional so older readers still load the file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: Option<String>,
    pub seed: u64,
    /// SHA-256 of the scenario as parsed (canonical JSON), so baselines can refuse a changed one.
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    /// True when the run was cut short (Ctrl-C, fatal error): the numbers cover what ran.
    pub interrupted: bool,
    pub model: String,
    pub peak_connected: u64,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandStats {
    pub protocol: String,
    pub command: String,
    /// `imap.fetch`: the name thresholds use.
    pub metric: String,
    /// Completed operations, successful or failed.
    pub count: u64,
    pub errors: u64,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Latency percentiles over successful operations, in microseconds; absent when none
    /// succeeded.
    pub mean_us: Option<f64>,
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p999_us: Option<u64>,
    pub max_us: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub commands: u64,
    pub errors: u64,
    /// errors / commands, 0 when nothing ran.
    pub error_rate: f64,
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl CommandStats {
    pub fn from_stats(op: &OpKey, stats: &OpStats) -> CommandStats {
        let h = &stats.latency;
        let some = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        CommandStats {
            protocol: op.protocol.as_str().to_string(),
            command: op.command.to_string(),
            metric: op.metric_name(),
            count: stats.count(),
            errors: stats.error_count(),
            errors_by_kind: stats
                .errors
                .iter()
                .map(|(k, n)| (k.as_str().to_string(), *n))
                .collect(),
            mean_us: (!h.is_empty()).then(|| (h.mean() * 10.0).round() / 10.0),
            p50_us: some(0.50),
            p90_us: some(0.90),
            p99_us: some(0.99),
            p999_us: some(0.999),
            max_us: (!h.is_empty()).then(|| h.max()),
        }
    }
}

fn command_table(ops: &BTreeMap<OpKey, OpStats>) -> Vec<CommandStats> {
    ops.iter()
        .map(|(op, stats)| CommandStats::from_stats(op, stats))
        .collect()
}

/// What the engine knows about the run besides the metrics.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub scenario: ScenarioInfo,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub interrupted: bool,
    pub model: String,
    pub has_ramps: bool,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
}

/// Counters present in every `results.json`, at zero when nothing happened.
pub const SESSION_COUNTERS: [&str; 5] = [
    "sessions.started",
    "sessions.completed",
    "sessions.failed",
    "sessions.connect_failed",
    "sessions.login_failed",
];

impl Results {
    pub fn build(ctx: &RunContext, metrics: &RunMetrics) -> Results {
        let headline_phases: &[Phase] = if ctx.has_ramps {
            &[Phase::Steady]
        } else {
            &Phase::ALL
        };
        let all = metrics.totals(&Phase::ALL);
        let mut errors_by_kind: BTreeMap<String, u64> = BTreeMap::new();
        for stats in all.values() {
            for (kind, n) in &stats.errors {
                *errors_by_kind.entry(kind.as_str().to_string()).or_default() += n;
            }
        }
        let commands_total: u64 = all.values().map(OpStats::count).sum();
        let errors_total: u64 = errors_by_kind.values().sum();
        let mut phases = BTreeMap::new();
        if ctx.has_ramps {
            for phase in Phase::ALL {
                let ops = metrics.totals(&[phase]);
                if !ops.is_empty() {
                    phases.insert(phase.as_str().to_string(), command_table(&ops));
                }
            }
        }
        let duration_s = ctx
            .ended
            .duration_since(ctx.started)
            .unwrap_or_default()
            .as_secs_f64();
        Results {
            schema_version: SCHEMA_VERSION,
            mailswarm_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: ctx.scenario.clone(),
            run: RunInfo {
                started_at: rfc3339(ctx.started),
                ended_at: rfc3339(ctx.ended),
                duration_s: (duration_s * 1000.0).round() / 1000.0,
                interrupted: ctx.interrupted,
                model: ctx.model.clone(),
                peak_connected: metrics.peak_connected,
                nofile_soft: ctx.nofile_soft,
                nofile_hard: ctx.nofile_hard,
            },
            commands: command_table(&metrics.totals(headline_phases)),
            phases,
            totals: Totals {
                commands: commands_total,
                errors: errors_total,
                error_rate: if commands_total == 0 {
                    0.0
                } else {
                    errors_total as f64 / commands_total as f64
                },
                errors_by_kind,
            },
            // Session outcomes are always listed, zeros too: `sessions.failed == 0` must find
            // a value on a clean run.
            counters: SESSION_COUNTERS
                .iter()
                .map(|k| (k.to_string(), 0))
                .chain(metrics.counters.iter().map(|(k, v)| (k.to_string(), *v)))
                .collect(),
            extra: BTreeMap::new(),
        }
    }

    pub fn command(&self, metric: &str) -> Option<&CommandStats> {
        self.commands.iter().find(|c| c.metric == metric)
    }

    /// Writes atomically (temp file + rename) so a reader never sees half a file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    pub fn read(path: &Path) -> Result<Results, ResultsError> {
        let bytes = std::fs::read(path).map_err(|source| ResultsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| ResultsError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(SCHEMA_VERSION)) {
            return Err(ResultsError::Version {
                path: path.display().to_string(),
                found: version,
            });
        }
        serde_json::from_value(value).map_err(|source| ResultsError::Parse {
            path: path.display().to_string(),
            source,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a mailswarm results file: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} has schema_version {found:?}; this mailswarm reads version {SCHEMA_VERSION}")]
    Version { path: String, found: Option<u64> },
}

/// RFC 3339 in UTC with millisecond precision, without pulling in a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Protocol;
    use crate::proto::ErrorKind;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_357_350_123);
        assert_eq!(rfc3339(t), "2026-12-04T04:09:10.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn build_round_trips_through_json() {
        let mut metrics = RunMetrics::default();
        let op = OpKey::new(Protocol::Imap, "UID FETCH");
        let stats = metrics.by_phase.entry((Phase::Steady, op)).or_default();
        for us in 1..=1000 {
            stats.record(us, Ok(()));
        }
        stats.record(0, Err(ErrorKind::Timeout));
        metrics.counters.insert("lmtp.delivered", 7);
        let ctx = RunContext {
            scenario: ScenarioInfo {
                name: "t".into(),
                file: None,
                seed: 1,
                digest: "x".into(),
            },
            started: SystemTime::UNIX_EPOCH,
            ended: SystemTime::UNIX_EPOCH + Duration::from_secs(60),
            interrupted: false,
            model: "closed".into(),
            has_ramps: false,
            nofile_soft: 20_000,
            nofile_hard: 20_000,
        };
        let results = Results::build(&ctx, &metrics);
        let fetch = results.command("imap.uid_fetch").unwrap();
        assert_eq!(fetch.count, 1001);
        assert_eq!(fetch.errors, 1);
        assert_eq!(fetch.p50_us, Some(500));
        assert_eq!(fetch.p99_us, Some(990));
        assert_eq!(fetch.max_us, Some(1000));
        assert_eq!(results.totals.errors_by_kind["timeout"], 1);
        assert_eq!(results.counters["lmtp.delivered"], 7);
        assert_eq!(results.counters["sessions.failed"], 0, "zeros are listed");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        results.write(&path).unwrap();
        assert_eq!(Results::read(&path).unwrap(), results);
    }
}
