//! Baselines: a saved run that later runs of the same scenario are compared against.
//!
//! Latency can only be compared between runs of the same workload, so a baseline records the
//! scenario name, digest and seed and [`Baseline::check_identity`] refuses any other run. A
//! regression must clear both the relative tolerance and an absolute noise floor: at 300 µs a
//! 15% swing is scheduler noise, not a regression, and gating on it would make CI flap.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::outcome::{CriterionOutcome, Group, Limit, Observed, Op, Unit};
use super::threshold::{parse_entry, Stat};
use crate::report::results::{rfc3339, CommandStats, SCHEMA_VERSION};
use crate::report::Results;

pub const BASELINE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub baseline_version: u32,
    pub scenario: String,
    pub scenario_digest: String,
    pub seed: u64,
    pub mailswarm_version: String,
    /// RFC 3339, UTC.
    pub recorded_at: String,
    pub results: Results,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a mailswarm baseline: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "baseline {path} has format version {found}, this mailswarm reads {BASELINE_VERSION}; \
         refresh it with `mailswarm gate RESULTS --update-baseline --baseline {path}`"
    )]
    Version { path: String, found: u64 },
    #[error("cannot write baseline {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The baseline belongs to another workload; comparing would be meaningless.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the baseline was recorded for a different workload ({differences}); latency of different \
     workloads cannot be compared. If the change is intended, record a new baseline from a \
     good run: `mailswarm gate RESULTS --update-baseline` (add `--baseline FILE` if you keep \
     it elsewhere)"
)]
pub struct IdentityMismatch {
    /// `scenario "a" now "b", seed 1 now 2`.
    pub differences: String,
}

impl Baseline {
    pub fn from_results(results: &Results) -> Baseline {
        Baseline {
            baseline_version: BASELINE_VERSION,
            scenario: results.scenario.name.clone(),
            scenario_digest: results.scenario.digest.clone(),
            seed: results.scenario.seed,
            mailswarm_version: results.mailswarm_version.clone(),
            recorded_at: rfc3339(std::time::SystemTime::now()),
            results: results.clone(),
        }
    }

    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| BaselineError::Io {
            path: shown.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| BaselineError::Parse {
                path: shown.clone(),
                source,
            })?;
        let version = value.get("baseline_version").and_then(|v| v.as_u64());
        let results_version = value
            .pointer("/results/schema_version")
            .and_then(|v| v.as_u64());
        match (version, results_version) {
            (Some(v), _) if v != u64::from(BASELINE_VERSION) => {
                return Err(BaselineError::Version {
                    path: shown,
                    found: v,
                })
            }
            (Some(_), Some(r)) if r != u64::from(SCHEMA_VERSION) => {
                return Err(BaselineError::Version {
                    path: shown,
                    found: r,
                })
            }
            _ => {}
        }
        serde_json::from_value(value).map_err(|source| BaselineError::Parse {
            path: shown,
            source,
        })
    }

    /// Writes atomically (temp file + rename), creating the parent directory.
    pub fn write(&self, path: &Path) -> Result<(), BaselineError> {
        let err = |source| BaselineError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Ok with warnings (a different mailswarm version) or the reason the run is not
    /// comparable.
    pub fn check_identity(&self, results: &Results) -> Result<Vec<String>, IdentityMismatch> {
        let now = &results.scenario;
        let mut differences = Vec::new();
        if self.scenario != now.name {
            differences.push(format!(
                "scenario \"{}\", this run \"{}\"",
                self.scenario, now.name
            ));
        }
        if self.scenario_digest != now.digest {
            differences.push(format!(
                "scenario digest {}, this run {}",
                short(&self.scenario_digest),
                short(&now.digest)
            ));
        }
        if self.seed != now.seed {
            differences.push(format!("seed {}, this run {}", self.seed, now.seed));
        }
        if !differences.is_empty() {
            return Err(IdentityMismatch {
                differences: differences.join("; "),
            });
        }
        let mut warnings = Vec::new();
        if self.mailswarm_version != results.mailswarm_version {
            warnings.push(format!(
                "the baseline was recorded by mailswarm {}, this run by {}; numbers may shift \
                 with the tool itself",
                self.mailswarm_version, results.mailswarm_version
            ));
        }
        Ok(warnings)
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// How much worse than the baseline a run may be.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// Allowed relative growth per latency statistic (0.15 = 15%); the compared list.
    pub latency: BTreeMap<Stat, f64>,
    /// Allowed rise of an error rate, in absolute terms (0.001 = 0.1 percentage points).
    pub error_rate: f64,
    /// A latency regression also needs an absolute growth above this, in microseconds.
    pub noise_floor_us: f64,
}

impl Default for Tolerances {
    fn default() -> Tolerances {
        Tolerances {
            latency: BTreeMap::from([(Stat::P50, 0.25), (Stat::P99, 0.15)]),
            error_rate: 0.001,
            noise_floor_us: 200.0,
        }
    }
}

impl Tolerances {
    /// Applies one `--tolerance` value: `p99=15%`, `p50=off`, `errors=0.5%`, or several
    /// separated by commas.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        for item in spec.split(',').map(str::trim) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!(
                    "`{item}`: expected STAT=PERCENT, such as `p99=15%` or `errors=0.5%`"
                ));
            };
            let (name, value) = (name.trim(), value.trim());
            let stat = match name {
                "errors" | "error_rate" => None,
                _ => match Stat::from_name(name) {
                    Some(s) if s.is_latency() => Some(s),
                    _ => {
                        return Err(format!(
                            "`{item}`: unknown statistic `{name}`; use p50, p90, p99, p999, max, \
                             mean or errors"
                        ))
                    }
                },
            };
            if value == "off" {
                match stat {
                    Some(s) => {
                        self.latency.remove(&s);
                    }
                    None => self.error_rate = f64::INFINITY,
                }
                continue;
            }
            let pct = value
                .strip_suffix('%')
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!("`{item}`: expected a percentage such as `15%`, or `off`")
                })?;
            match stat {
                Some(s) => {
                    self.latency.insert(s, pct / 100.0);
                }
                None => self.error_rate = pct / 100.0,
            }
        }
        Ok(())
    }

    /// Parses a `--noise-floor` duration (`200us`, `0.5ms`, `0`) into microseconds.
    pub fn parse_noise_floor(text: &str) -> Result<f64, String> {
        if text.trim() == "0" {
            return Ok(0.0);
        }
        // Reuse the threshold grammar so units are spelled the same everywhere.
        let parsed = parse_entry("imap.noise", &format!("p50 < {text}")).map_err(|_| {
            format!("`{text}`: expected a duration such as `200us`, `0.5ms` or `0`")
        })?;
        Ok(parsed[0].limit)
    }
}

/// Compares `current` with the baseline's results: latency per command and statistic, error
/// rates per command and overall, and every baseline command must still be there.
pub fn compare(baseline: &Results, current: &Results, tol: &Tolerances) -> Vec<CriterionOutcome> {
    let mut out = Vec::new();
    for base in &baseline.commands {
        let Some(now) = current.command(&base.metric) else {
            out.push(CriterionOutcome {
                baseline: Some(base.count as f64),
                unit: Some(Unit::Count),
                ..CriterionOutcome::unmeasured(
                    Group::Baseline,
                    format!("{} present", base.metric),
                    format!(
                        "{} ran {} times in the baseline but not in this run",
                        base.metric, base.count
                    ),
                )
            });
            continue;
        };
        for (&stat, &allowed) in &tol.latency {
            if let Some(o) = compare_latency(base, now, stat, allowed, tol.noise_floor_us) {
                out.push(o);
            }
        }
        out.push(compare_rate(
            format!("{} error rate", base.metric),
            rate(base.errors, base.count),
            rate(now.errors, now.count),
            tol.error_rate,
        ));
    }
    let totals = (&baseline.totals, &current.totals);
    out.push(compare_rate(
        "total error rate".to_string(),
        rate(totals.0.errors, totals.0.commands),
        rate(totals.1.errors, totals.1.commands),
        tol.error_rate,
    ));
    out
}

fn rate(errors: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        errors as f64 / count as f64
    }
}

fn stat_value(c: &CommandStats, stat: Stat) -> Option<f64> {
    let us = match stat {
        Stat::P50 => c.p50_us,
        Stat::P90 => c.p90_us,
        Stat::P99 => c.p99_us,
        Stat::P999 => c.p999_us,
        Stat::Max => c.max_us,
        Stat::Mean => return c.mean_us,
        _ => None,
    };
    us.map(|v| v as f64)
}

/// Successful operations a statistic needs before a baseline comparison means anything: ten
/// samples beyond a percentile (so 1,000 for p99). Max and mean are compared as asked.
pub fn min_samples(stat: Stat) -> u64 {
    match stat {
        Stat::P50 => 20,
        Stat::P90 => 100,
        Stat::P99 => 1_000,
        Stat::P999 => 10_000,
        _ => 1,
    }
}

fn compare_latency(
    base: &CommandStats,
    now: &CommandStats,
    stat: Stat,
    allowed: f64,
    noise_floor_us: f64,
) -> Option<CriterionOutcome> {
    let criterion = format!("{} {} vs baseline", base.metric, stat.name());
    // Nothing to hold the run to when the baseline had no successful operation.
    let b = stat_value(base, stat)?;
    let Some(n) = stat_value(now, stat) else {
        return Some(CriterionOutcome {
            baseline: Some(b),
            unit: Some(Unit::Micros),
            ..CriterionOutcome::unmeasured(
                Group::Baseline,
                criterion,
                format!(
                    "no successful {} operations in this run, so no {} (baseline {})",
                    base.metric,
                    stat.name(),
                    Unit::Micros.format(b)
                ),
            )
        });
    };
    // A percentile resting on a handful of samples is one slow operation, not a regression:
    // compare it only when both runs have enough samples beyond it.
    let needed = min_samples(stat);
    let samples = |c: &CommandStats| c.count.saturating_sub(c.errors);
    let fewest = samples(base).min(samples(now));
    if fewest < needed {
        return Some(CriterionOutcome {
            group: Group::Baseline,
            criterion,
            passed: true,
            skipped: true,
            unit: Some(Unit::Micros),
            observed: None,
            limit: None,
            baseline: Some(b),
            reason: format!(
                "not compared: {fewest} successful operations, a stable {} needs {needed} \
                 (run longer, or gate on p50)",
                stat.name()
            ),
        });
    }
    // Regressed only when above both the relative and the absolute allowance.
    let limit = (b * (1.0 + allowed)).max(b + noise_floor_us);
    let passed = n <= limit;
    let change = if b > 0.0 {
        format!("{:+.1}%", (n - b) / b * 100.0)
    } else {
        format!("+{}", Unit::Micros.format(n - b))
    };
    let fmt = |v| Unit::Micros.format(v);
    let reason = format!(
        "{} {} vs baseline {} ({change}); allowed +{}% and more than {} noise floor, up to {}",
        stat.name(),
        fmt(n),
        fmt(b),
        super::outcome::trim_float(allowed * 100.0, 1),
        fmt(noise_floor_us),
        fmt(limit)
    );
    Some(CriterionOutcome {
        group: Group::Baseline,
        criterion,
        passed,
        skipped: false,
        unit: Some(Unit::Micros),
        observed: Some(Observed::Number(n)),
        limit: Some(Limit {
            op: Op::Le,
            value: limit,
        }),
        baseline: Some(b),
        reason,
    })
}

fn compare_rate(criterion: String, base: f64, now: f64, allowed: f64) -> CriterionOutcome {
    let limit = base + allowed;
    let passed = now <= limit;
    let fmt = |v| Unit::Ratio.format(v);
    let reason = if allowed.is_infinite() {
        format!("{} (not compared: tolerance off)", fmt(now))
    } else {
        format!(
            "{} vs baseline {}; allowed up to {}",
            fmt(now),
            fmt(base),
            fmt(limit)
        )
    };
    CriterionOutcome {
        group: Group::Baseline,
        criterion,
        passed,
        skipped: false,
        unit: Some(Unit::Ratio),
        observed: Some(Observed::Number(now)),
        limit: allowed.is_finite().then_some(Limit {
            op: Op::Le,
            value: limit,
        }),
        baseline: Some(base),
        reason,
    }
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
