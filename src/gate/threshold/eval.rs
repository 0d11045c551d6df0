//! Holding a finished run's [`Results`] to parsed thresholds, and storing both the definitions
//! and the outcomes in `results.extra["thresholds"]` so `mailswarm gate` can re-check them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{parse_thresholds, Stat, Target, Threshold, ThresholdError};
use crate::gate::outcome::{CriterionOutcome, Group, Limit, Observed};
use crate::report::Results;

/// Key of the section in `results.extra`.
pub const EXTRA_KEY: &str = "thresholds";

/// `results.extra["thresholds"]`: the scenario's map as written, and how the run came out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdSection {
    #[serde(default)]
    pub definitions: BTreeMap<String, String>,
    #[serde(default)]
    pub outcomes: Vec<CriterionOutcome>,
}

/// Evaluates every threshold. A metric the results lack fails the threshold.
pub fn evaluate(thresholds: &[Threshold], results: &Results) -> Vec<CriterionOutcome> {
    thresholds
        .iter()
        .map(|t| evaluate_one(t, results))
        .collect()
}

fn evaluate_one(t: &Threshold, results: &Results) -> CriterionOutcome {
    let criterion = t.criterion();
    let what = match &t.target {
        Target::Command { stat, .. } => stat.name().to_string(),
        Target::TotalErrorRate => "error rate".to_string(),
        Target::Value { path } => path.clone(),
    };
    let observed = match observe(&t.target, results) {
        Ok(v) => v,
        Err(reason) => return CriterionOutcome::unmeasured(Group::Threshold, criterion, reason),
    };
    let passed = t.op.holds(observed, t.limit);
    let shown = t.unit.format(observed);
    let reason = if passed {
        format!("{what} is {shown}")
    } else {
        format!(
            "{what} is {shown}, needs {} {}",
            t.op.symbol(),
            t.unit.format(t.limit)
        )
    };
    CriterionOutcome {
        group: Group::Threshold,
        criterion,
        passed,
        skipped: false,
        unit: Some(t.unit),
        observed: Some(Observed::Number(observed)),
        limit: Some(Limit {
            op: t.op,
            value: t.limit,
        }),
        baseline: None,
        reason,
    }
}

/// The observed number, or why there is none.
fn observe(target: &Target, results: &Results) -> Result<f64, String> {
    match target {
        Target::Command { metric, stat } => {
            let Some(c) = results.command(metric) else {
                return Err(format!("no samples for {metric}"));
            };
            let latency = |v: Option<u64>| {
                v.map(|us| us as f64).ok_or_else(|| {
                    format!(
                        "no successful {metric} operations ({} ran, {} failed), so no {}",
                        c.count,
                        c.errors,
                        stat.name()
                    )
                })
            };
            match stat {
                Stat::P50 => latency(c.p50_us),
                Stat::P90 => latency(c.p90_us),
                Stat::P99 => latency(c.p99_us),
                Stat::P999 => latency(c.p999_us),
                Stat::Max => latency(c.max_us),
                Stat::Mean => c.mean_us.ok_or_else(|| {
                    format!("no successful {metric} operations, so no mean latency")
                }),
                Stat::Count => Ok(c.count as f64),
                Stat::Errors => Ok(c.errors as f64),
                Stat::ErrorRate if c.count == 0 => Err(format!("no samples for {metric}")),
                Stat::ErrorRate => Ok(c.errors as f64 / c.count as f64),
            }
        }
        Target::TotalErrorRate => {
            if results.totals.commands == 0 {
                Err("no samples for errors: no operation ran".to_string())
            } else {
                Ok(results.totals.error_rate)
            }
        }
        Target::Value { path } => lookup_value(path, results),
    }
}

fn lookup_value(path: &str, results: &Results) -> Result<f64, String> {
    if let Some(v) = results.counters.get(path) {
        return Ok(*v as f64);
    }
    let totals = &results.totals;
    match path {
        "totals.commands" => return Ok(totals.commands as f64),
        "totals.errors" => return Ok(totals.errors as f64),
        "totals.error_rate" => return Ok(totals.error_rate),
        _ => {}
    }
    let segments: Vec<&str> = path.split('.').collect();
    for split in (1..=segments.len()).rev() {
        let section = segments[..split].join(".");
        let Some(value) = results.extra.get(&section) else {
            continue;
        };
        match walk(value, &segments[split..]) {
            Some(Value::Number(n)) => return n.as_f64().ok_or_else(|| format!("{path} is NaN")),
            Some(Value::Bool(b)) => return Ok(if *b { 1.0 } else { 0.0 }),
            Some(other) => {
                return Err(format!(
                    "{path} is not a number (found {})",
                    truncate(&other.to_string(), 60)
                ))
            }
            None => {}
        }
    }
    if results.command(path).is_some() {
        return Err(format!(
            "{path} is a command: name a statistic, such as `p99 < 50ms` or `count > 0`"
        ));
    }
    Err(format!("no samples for {path}"))
}

/// Follows dotted segments through JSON objects, preferring the longest key at each level so
/// that keys containing dots (check ids) still resolve.
fn walk<'a>(value: &'a Value, segments: &[&str]) -> Option<&'a Value> {
    if segments.is_empty() {
        return Some(value);
    }
    let object = value.as_object()?;
    (1..=segments.len()).rev().find_map(|take| {
        let child = object.get(&segments[..take].join("."))?;
        walk(child, &segments[take..])
    })
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Parses `definitions`, evaluates them on `results` and stores both in
/// `results.extra["thresholds"]`. What the run calls at its end.
pub fn record(
    results: &mut Results,
    definitions: &BTreeMap<String, String>,
) -> Result<Vec<CriterionOutcome>, ThresholdError> {
    let thresholds = parse_thresholds(definitions)?;
    let outcomes = evaluate(&thresholds, results);
    let section = ThresholdSection {
        definitions: definitions.clone(),
        outcomes: outcomes.clone(),
    };
    let value = serde_json::to_value(section).expect("threshold section serializes");
    results.extra.insert(EXTRA_KEY.to_string(), value);
    Ok(outcomes)
}

/// The thresholds stored in `results`, re-evaluated from their definitions when present (so a
/// newer gate applies its own rules), else the outcomes the run stored. `Ok(None)` when the
/// run had no thresholds.
pub fn stored_outcomes(results: &Results) -> Result<Option<ThresholdSection>, StoredError> {
    let Some(value) = results.extra.get(EXTRA_KEY) else {
        return Ok(None);
    };
    let mut section: ThresholdSection =
        serde_json::from_value(value.clone()).map_err(StoredError::Malformed)?;
    if !section.definitions.is_empty() {
        let thresholds = parse_thresholds(&section.definitions)?;
        section.outcomes = evaluate(&thresholds, results);
    }
    Ok(Some(section))
}

#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("results.extra.thresholds is malformed: {0}")]
    Malformed(serde_json::Error),
    #[error("results.extra.thresholds.definitions: {0}")]
    Threshold(#[from] ThresholdError),
}
