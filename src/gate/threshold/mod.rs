//! k6-style pass/fail thresholds from a scenario's `thresholds:` map.
//!
//! The key names what is measured, the value holds one or more comma-separated conditions:
//!
//! ```yaml
//! thresholds:
//!   imap.fetch: "p99 < 50ms, p50 < 5ms"   # a command and a latency statistic
//!   imap.login.errors: "== 0"              # the statistic can end the key instead
//!   imap.fetch.count: "> 0"
//!   errors: "< 0.1%"                       # error rate over all operations
//!   lmtp.delivered: ">= 100"               # a counter
//!   audit.lost: "== 0"                     # a value from a report section (results.extra)
//! ```
//!
//! Statistics: `p50 p90 p99 p999 (p99.9) max mean` (latency, needs a unit `us µs ms s`),
//! `count errors` (plain numbers), `error_rate` (`%` or a fraction). Operators:
//! `< <= > >= == !=`. Parsing happens when the scenario loads, so a typo is reported before
//! any load is sent; evaluation ([`evaluate`]) happens on the finished [`Results`].
//!
//! [`Results`]: crate::report::Results

mod eval;

pub use eval::{evaluate, record, stored_outcomes, StoredError, ThresholdSection, EXTRA_KEY};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::outcome::{Op, Unit};

/// A per-command statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
    Count,
    Errors,
    ErrorRate,
}

impl Stat {
    pub const ALL: [Stat; 9] = [
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::P999,
        Stat::Max,
        Stat::Mean,
        Stat::Count,
        Stat::Errors,
        Stat::ErrorRate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
            Stat::Mean => "mean",
            Stat::Count => "count",
            Stat::Errors => "errors",
            Stat::ErrorRate => "error_rate",
        }
    }

    pub fn from_name(name: &str) -> Option<Stat> {
        let stat = match name.to_ascii_lowercase().as_str() {
            "p50" | "median" | "med" => Stat::P50,
            "p90" => Stat::P90,
            "p99" => Stat::P99,
            "p999" | "p99.9" => Stat::P999,
            "max" => Stat::Max,
            "mean" | "avg" => Stat::Mean,
            "count" => Stat::Count,
            "errors" => Stat::Errors,
            "error_rate" => Stat::ErrorRate,
            _ => return None,
        };
        Some(stat)
    }

    pub fn is_latency(self) -> bool {
        self.unit() == Unit::Micros
    }

    pub fn unit(self) -> Unit {
        match self {
            Stat::Count | Stat::Errors => Unit::Count,
            Stat::ErrorRate => Unit::Ratio,
            _ => Unit::Micros,
        }
    }
}

/// Protocols whose operations appear as `commands[]` in results (`imap.fetch`).
pub const PROTOCOLS: [&str; 3] = ["imap", "smtp", "lmtp"];

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A statistic of one command (`commands[].metric`).
    Command { metric: String, stat: Stat },
    /// Errors over all operations (`totals.error_rate`).
    TotalErrorRate,
    /// A named number: a counter, `totals.*`, or a path into a report section such as
    /// `audit.lost` or `checks.violations`.
    Value { path: String },
}

/// One parsed condition. A key with two conditions gives two thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The key as written in the scenario.
    pub key: String,
    /// The condition as written, trimmed: `p99 < 50ms`.
    pub condition: String,
    pub target: Target,
    pub op: Op,
    /// In `unit`'s canonical form: microseconds, a fraction, or a plain number.
    pub limit: f64,
    pub unit: Unit,
}

impl Threshold {
    /// The criterion name used in reports and JUnit: `imap.fetch: p99 < 50ms`.
    pub fn criterion(&self) -> String {
        format!("{}: {}", self.key, self.condition)
    }
}

/// A threshold that does not parse. `offset` is the byte offset of `part` inside the value
/// string (None when the key itself is wrong), so the scenario loader can point at a column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("threshold `{key}`: {problem} in `{part}`; {hint}")]
pub struct ThresholdError {
    pub key: String,
    pub part: String,
    pub offset: Option<usize>,
    pub problem: String,
    pub hint: String,
}

/// Parses a whole `thresholds:` map, in key order.
pub fn parse_thresholds(map: &BTreeMap<String, String>) -> Result<Vec<Threshold>, ThresholdError> {
    let mut out = Vec::new();
    for (key, value) in map {
        out.extend(parse_entry(key, value)?);
    }
    Ok(out)
}

/// Parses one `key: "cond, cond"` entry.
pub fn parse_entry(key: &str, value: &str) -> Result<Vec<Threshold>, ThresholdError> {
    let key_err = |problem: &str, hint: &str| ThresholdError {
        key: key.to_string(),
        part: key.to_string(),
        offset: None,
        problem: problem.to_string(),
        hint: hint.to_string(),
    };
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() || !key.chars().all(valid_char) || key.split('.').any(str::is_empty) {
        return Err(key_err(
            "not a metric name",
            "use dotted names of letters, digits, `_` and `-`, such as `imap.fetch` or `audit.lost`",
        ));
    }
    let mut out = Vec::new();
    let mut start = 0;
    for raw in value.split(',') {
        let lead = raw.len() - raw.trim_start().len();
        let part = raw.trim();
        out.push(parse_condition(key, part, start + lead)?);
        start += raw.len() + 1;
    }
    Ok(out)
}

/// The key's own statistic suffix: `imap.login.errors` -> (`imap.login`, errors).
fn split_key_stat(key: &str) -> (&str, Option<Stat>) {
    let segments: Vec<&str> = key.split('.').collect();
    if segments.len() >= 3 && PROTOCOLS.contains(&segments[0]) {
        if let Some((base, last)) = key.rsplit_once('.') {
            if let Some(stat) = Stat::from_name(last) {
                return (base, Some(stat));
            }
        }
    }
    (key, None)
}

fn is_command_metric(key: &str) -> bool {
    let mut segments = key.split('.');
    segments.next().is_some_and(|p| PROTOCOLS.contains(&p)) && segments.next().is_some()
}

fn parse_condition(key: &str, part: &str, offset: usize) -> Result<Threshold, ThresholdError> {
    let err = |problem: String, hint: &str| ThresholdError {
        key: key.to_string(),
        part: part.to_string(),
        offset: Some(offset),
        problem,
        hint: hint.to_string(),
    };
    if part.is_empty() {
        return Err(err(
            "empty condition".into(),
            "write conditions such as `p99 < 50ms`, separated by commas, without a trailing comma",
        ));
    }
    let mut rest = part;

    // Optional statistic word before the operator.
    let word_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
        .unwrap_or(rest.len());
    let cond_stat = if word_len > 0 {
        let word = &rest[..word_len];
        let Some(stat) = Stat::from_name(word) else {
            return Err(err(
                format!("unknown statistic `{word}`"),
                "use one of p50, p90, p99, p999, max, mean, count, errors, error_rate",
            ));
        };
        rest = rest[word_len..].trim_start();
        Some(stat)
    } else {
        None
    };

    let op = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .into_iter()
    .find(|(sym, _)| rest.starts_with(sym));
    let Some((sym, op)) = op else {
        let hint = if rest.starts_with('=') {
            "write `==` for equality"
        } else {
            "expected one of < <= > >= == != followed by a number, such as `p99 < 50ms`"
        };
        return Err(err("missing comparison operator".into(), hint));
    };
    rest = rest[sym.len()..].trim_start();

    let num_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    let number: f64 = match rest[..num_len].parse() {
        Ok(n) if f64::is_finite(n) => n,
        _ => {
            return Err(err(
                "missing or malformed number".into(),
                "write a number after the operator, such as `< 50ms`, `== 0` or `< 0.1%`",
            ))
        }
    };
    let unit_text = rest[num_len..].trim();

    let (base, key_stat) = split_key_stat(key);
    let target =
        match (key_stat, cond_stat) {
            (Some(_), Some(_)) => return Err(err(
                "statistic given twice".into(),
                "name it once: either `imap.fetch: \"p99 < 50ms\"` or `imap.fetch.p99: \"< 50ms\"`",
            )),
            _ if key == "errors" || key == "error_rate" => {
                if cond_stat.is_some() {
                    return Err(err(
                    format!("`{key}` is the overall error rate and takes no statistic"),
                    "write `errors: \"< 0.1%\"`, or name a command: `imap.fetch.errors: \"== 0\"`",
                ));
                }
                Target::TotalErrorRate
            }
            (Some(stat), None) => Target::Command {
                metric: base.to_string(),
                stat,
            },
            (None, Some(stat)) => {
                if !is_command_metric(key) {
                    return Err(err(
                        format!(
                            "`{}` applies to commands, and `{key}` is not one",
                            stat.name()
                        ),
                        "statistics apply to command metrics such as `imap.fetch` or `lmtp.data`; \
                     counters and report values take a plain condition such as `== 0`",
                    ));
                }
                Target::Command {
                    metric: key.to_string(),
                    stat,
                }
            }
            (None, None) => Target::Value {
                path: key.to_string(),
            },
        };

    let (limit, unit) = convert_limit(&target, number, unit_text).map_err(|(p, h)| err(p, h))?;
    Ok(Threshold {
        key: key.to_string(),
        condition: part.to_string(),
        target,
        op,
        limit,
        unit,
    })
}

enum Written {
    Plain,
    Percent,
    Micros(f64),
}

fn written_unit(text: &str) -> Option<Written> {
    Some(match text {
        "" => Written::Plain,
        "%" => Written::Percent,
        "us" | "µs" | "μs" => Written::Micros(1.0),
        "ms" => Written::Micros(1000.0),
        "s" => Written::Micros(1_000_000.0),
        _ => return None,
    })
}

/// Converts the written number to the target's canonical unit, or says why it does not fit.
fn convert_limit(
    target: &Target,
    number: f64,
    unit_text: &str,
) -> Result<(f64, Unit), (String, &'static str)> {
    let Some(written) = written_unit(unit_text) else {
        return Err((
            format!("unknown unit `{unit_text}`"),
            "units are us, µs, ms and s for latency and % for rates; counts take a plain number",
        ));
    };
    let unit = match target {
        Target::Command { stat, .. } => stat.unit(),
        Target::TotalErrorRate => Unit::Ratio,
        Target::Value { .. } => match written {
            Written::Percent => Unit::Ratio,
            _ => Unit::Count,
        },
    };
    match (unit, written) {
        (Unit::Micros, Written::Micros(scale)) => Ok((number * scale, unit)),
        (Unit::Micros, _) => Err((
            "a latency limit needs a time unit".into(),
            "write the unit after the number, such as `p99 < 50ms` or `p50 < 800us`",
        )),
        (Unit::Ratio, Written::Percent) => Ok((number / 100.0, unit)),
        (Unit::Ratio, Written::Plain) if (0.0..=1.0).contains(&number) => Ok((number, unit)),
        (Unit::Ratio, Written::Plain) => Err((
            format!("an error rate of {number} is more than 100%"),
            "write a percentage (`< 0.1%`) or a fraction between 0 and 1 (`< 0.001`)",
        )),
        (Unit::Count, Written::Plain) => Ok((number, unit)),
        (_, Written::Micros(_)) => Err((
            "a time unit on a value that is not a latency".into(),
            "time units apply to p50, p90, p99, p999, max and mean of a command, \
             such as `imap.fetch: \"p99 < 50ms\"`",
        )),
        (_, Written::Percent) => Err((
            "a percentage on a count".into(),
            "use `error_rate` for a percentage of failed operations, such as \
             `imap.fetch: \"error_rate < 1%\"`",
        )),
    }
}

#[cfg(test)]
mod tests;
