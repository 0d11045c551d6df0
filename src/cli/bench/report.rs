//! `bench report`: merges the measurements into one `bench.json` with each headline figure,
//! its target and pass/miss, the raw measurements, and what machine they were taken on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::write_json;
use crate::cli::{EXIT_FAILED, EXIT_OK};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output of `bench idle`.
    #[arg(long)]
    pub idle: Option<PathBuf>,
    /// Output of `bench commands`.
    #[arg(long)]
    pub commands: Option<PathBuf>,
    /// Output of `bench timers`.
    #[arg(long)]
    pub timers: Option<PathBuf>,
    /// How the numbers were produced, recorded as `reproduce`.
    #[arg(long, default_value = "ci/bench")]
    pub reproduce: String,
    /// Exit 1 when a target is missed or a measurement is absent.
    #[arg(long)]
    pub strict: bool,
    #[arg(long)]
    pub out: PathBuf,
}

/// One headline figure: where it comes from and what it should be.
struct Key {
    name: &'static str,
    source: Source,
    field: &'static str,
    comparison: Comparison,
    target: f64,
}

#[derive(Clone, Copy)]
enum Source {
    Idle,
    Commands,
    Timers,
}

#[derive(Clone, Copy, Serialize, PartialEq, Eq, Debug)]
enum Comparison {
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = ">=")]
    AtLeast,
}

const KEYS: [Key; 4] = [
    Key {
        name: "idle_conn_bytes",
        source: Source::Idle,
        field: "bytes_per_connection",
        comparison: Comparison::AtMost,
        target: 4096.0,
    },
    Key {
        name: "offline_user_bytes",
        source: Source::Timers,
        field: "bytes_per_offline_user",
        comparison: Comparison::AtMost,
        target: 150.0,
    },
    Key {
        name: "imap_cmds_per_core_sec",
        source: Source::Commands,
        field: "commands_per_core_second",
        comparison: Comparison::AtLeast,
        target: 100_000.0,
    },
    Key {
        name: "scheduler_events_per_sec",
        source: Source::Timers,
        field: "events_per_second",
        comparison: Comparison::AtLeast,
        target: 1_000_000.0,
    },
];

#[derive(Debug, Serialize, PartialEq)]
struct Check {
    value: Option<f64>,
    comparison: Comparison,
    target: f64,
    /// "pass", "miss", or "absent" when the measurement did not run or failed.
    result: &'static str,
}

#[derive(Debug, Serialize)]
struct Machine {
    nproc: usize,
    kernel: String,
    open_files_soft: u64,
    open_files_hard: u64,
    /// /proc/loadavg when the report was written: other work on the machine makes the rates
    /// noisy (a shared 2-core machine varies by about ±15 %).
    loadavg: String,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let parts = [
        ("idle", load(args.idle.as_deref())?),
        ("commands", load(args.commands.as_deref())?),
        ("timers", load(args.timers.as_deref())?),
    ];
    let part = |s: Source| match s {
        Source::Idle => &parts[0].1,
        Source::Commands => &parts[1].1,
        Source::Timers => &parts[2].1,
    };
    let checks: Vec<(&str, Check)> = KEYS
        .iter()
        .map(|k| (k.name, check(k, part(k.source))))
        .collect();
    let mut report = serde_json::Map::new();
    for (name, c) in &checks {
        report.insert(name.to_string(), c.value.map_or(Value::Null, Value::from));
    }
    report.insert(
        "targets".into(),
        serde_json::to_value(
            checks
                .iter()
                .map(|(n, c)| (*n, c))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )?,
    );
    report.insert("mailswarm_version".into(), env!("CARGO_PKG_VERSION").into());
    report.insert("machine".into(), serde_json::to_value(machine())?);
    report.insert("reproduce".into(), args.reproduce.clone().into());
    let measured_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    report.insert("measured_at_unix".into(), measured_at.into());
    report.insert(
        "details".into(),
        Value::Object(
            parts
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        ),
    );
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_json(&Value::Object(report), Some(&args.out))?;
    for (name, c) in &checks {
        let value = c.value.map_or("-".to_string(), |v| format!("{v:.1}"));
        let op = if c.comparison == Comparison::AtMost {
            "<="
        } else {
            ">="
        };
        eprintln!(
            "{name:<26} {value:>14}  target {op} {:<10} {}",
            c.target, c.result
        );
    }
    let all_pass = checks.iter().all(|(_, c)| c.result == "pass");
    Ok(ExitCode::from(if args.strict && !all_pass {
        EXIT_FAILED
    } else {
        EXIT_OK
    }))
}

/// A measurement's JSON, or `null` when it was not given or not written (a failed step).
fn load(path: Option<&Path>) -> anyhow::Result<Value> {
    let Some(path) = path else {
        return Ok(Value::Null);
    };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Value::Null),
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

fn check(key: &Key, part: &Value) -> Check {
    let value = part.get(key.field).and_then(Value::as_f64);
    let result = match value {
        None => "absent",
        Some(v) if key.comparison == Comparison::AtMost && v <= key.target => "pass",
        Some(v) if key.comparison == Comparison::AtLeast && v >= key.target => "pass",
        Some(_) => "miss",
    };
    Check {
        value,
        comparison: key.comparison,
        target: key.target,
        result,
    }
}

fn machine() -> Machine {
    let (soft, hard) = crate::lab::sink::raise_open_files_limit().unwrap_or((0, 0));
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_default(),
        open_files_soft: soft,
        open_files_hard: hard,
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.trim().to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_compare_in_the_right_direction_and_flag_absent_values() {
        let idle = &KEYS[0];
        let at = |v: f64| check(idle, &serde_json::json!({ "bytes_per_connection": v })).result;
        assert_eq!((at(4096.0), at(4097.0)), ("pass", "miss"));
        let cmds = &KEYS[2];
        let rate =
            |v: f64| check(cmds, &serde_json::json!({ "commands_per_core_second": v })).result;
        assert_eq!((rate(99_999.0), rate(100_000.0)), ("miss", "pass"));
        assert_eq!(check(idle, &Value::Null).result, "absent");
        assert_eq!(check(idle, &serde_json::json!({ "other": 1 })).value, None);
    }

    #[test]
    fn a_missing_or_empty_measurement_file_is_null() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(load(Some(&empty)).unwrap(), Value::Null);
        assert_eq!(
            load(Some(&dir.path().join("nope.json"))).unwrap(),
            Value::Null
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        assert!(load(Some(&bad)).is_err());
    }
}
