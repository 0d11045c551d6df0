//! `mailswarm run` end to end against the lab Dovecot: the main job's acceptance, determinism,
//! Ctrl-C, thresholds and scenario errors. Every run here is bounded (seconds, tens of users).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

fn mailswarm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailswarm"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mailswarm-engine-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scenario against the shared test lab, with `body` appended (mix, delivery, ...).
fn scenario(dir: &Path, name: &str, duration: &str, body: &str) -> PathBuf {
    let lab = common::lab();
    let text = format!(
        "name: {name}\nseed: 11\nduration: {duration}\ntarget:\n  lab: true\n  lab_dir: {}\nusers:\n  count: 40\n{body}",
        lab.dir.display()
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    let out = mailswarm().args(args).output().expect("mailswarm runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `mailswarm run SCENARIO --out DIR -q`.
fn run_quiet(scenario: &Path, out: &Path) -> Output {
    run(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ])
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).unwrap()
}

fn command<'a>(results: &'a Value, metric: &str) -> Option<&'a Value> {
    results["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == metric)
}

const MIX: &str = r#"load:
  sessions: 12
mix:
  - idler: {weight: 3, idle_for: {uniform: {min: 2s, max: 4s}}}
  - reader: {weight: 4, actions: {uniform: {min: 2, max: 4}}, think: {fixed: 200ms}}
  - writer: {weight: 2, think: {fixed: 200ms}, expunge_probability: 0.5}
delivery:
  lmtp: {rate: 20/s, recipients: {uniform: {min: 1, max: 3}}}
"#;

#[test]
fn mixed_run_measures_imap_and_lmtp_without_errors() {
    let dir = scratch("mixed");
    let path = scenario(&dir, "mixed", "8s", MIX);
    let out = run_quiet(&path, &dir);
    assert_eq!(out.status.code(), Some(0));
    let r = results(&dir);
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["totals"]["errors"], 0, "{:#}", r["totals"]);
    let imap_kinds = r["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["protocol"] == "imap" && c["count"].as_u64() > Some(0))
        .count();
    assert!(imap_kinds >= 6, "only {imap_kinds} IMAP command kinds");
    for metric in [
        "imap.login",
        "imap.select",
        "imap.append",
        "imap.idle",
        "lmtp.data",
    ] {
        let c = command(&r, metric).unwrap_or_else(|| panic!("{metric} missing"));
        assert!(c["count"].as_u64().unwrap() > 0, "{metric}");
        let (p50, p99) = (c["p50_us"].as_u64().unwrap(), c["p99_us"].as_u64().unwrap());
        assert!(p50 > 0 && p50 <= p99, "{metric}: p50 {p50} p99 {p99}");
    }
    let counters = &r["counters"];
    assert!(counters["lmtp.delivered"].as_u64().unwrap() > 0);
    assert_eq!(
        counters["lmtp.delivered"], counters["lmtp.accepted_recipients"],
        "every accepted LMTP recipient is delivered on a healthy lab"
    );
    assert_eq!(counters["sessions.started"], counters["sessions.completed"]);
}

/// `checks: strict` on a healthy Dovecot under a mix that expunges while others fetch and
/// IDLE: every state rule is examined and none is broken, and a threshold can gate on it.
#[test]
fn strict_checks_find_no_violations_on_a_healthy_lab() {
    let dir = scratch("strict");
    let body = format!("{MIX}checks: strict\nthresholds:\n  checks.violations: \"== 0\"\n");
    let path = scenario(&dir, "strict", "6s", &body);
    let out = run_quiet(&path, &dir);
    assert_eq!(out.status.code(), Some(0));
    let r = results(&dir);
    let checks = &r["extra"]["checks"];
    assert_eq!(checks["mode"], "strict", "{r:#}");
    assert_eq!(checks["violations"], 0, "{checks:#}");
    assert!(checks["observed"].as_u64().unwrap() > 50, "{checks:#}");
    let by_id = checks["by_id"].as_object().unwrap();
    assert_eq!(by_id.len(), 6, "{checks:#}");
    assert!(by_id.contains_key("imap.seq.no-expunge-during-fetch-store-search"));
    assert!(checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "pass"));
}

#[test]
fn same_seed_gives_each_user_the_same_actions() {
    let dir = scratch("determinism");
    let body = r#"load:
  model: population
  max_sessions: 40
mix:
  - mobile: {weight: 2, poll_interval: {fixed: 1s}}
  - webmail: {weight: 1, think: {fixed: 50ms}, revisit: {fixed: 1s}}
  - reader: {weight: 1, think: {fixed: 50ms}}
"#;
    let path = scenario(&dir, "determinism", "5s", body);
    let mut traces = Vec::new();
    for threads in ["1", "2"] {
        let out_dir = dir.join(threads);
        let trace = dir.join(format!("trace-{threads}.jsonl"));
        let out = run(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--threads",
            threads,
            "--trace-actions",
            trace.to_str().unwrap(),
            "-q",
        ]);
        assert_eq!(out.status.code(), Some(0));
        let lines: std::collections::BTreeMap<(u64, u64), Value> = std::fs::read_to_string(&trace)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let key = (v["user"].as_u64().unwrap(), v["session"].as_u64().unwrap());
                (key, v)
            })
            .collect();
        traces.push(lines);
    }
    let common: Vec<_> = traces[0]
        .keys()
        .filter(|k| traces[1].contains_key(k))
        .collect();
    assert!(
        common.len() >= 40,
        "only {} sessions in common",
        common.len()
    );
    for key in common {
        assert_eq!(
            traces[0][key], traces[1][key],
            "user {} session {}",
            key.0, key.1
        );
    }
}

#[test]
fn ctrl_c_still_writes_results() {
    let dir = scratch("interrupt");
    let path = scenario(&dir, "interrupt", "60s", MIX);
    let mut child = mailswarm()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "-q",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "drain is bounded"
    );
    assert_eq!(status.code(), Some(2), "an interrupted run is not a pass");
    let r = results(&dir);
    assert_eq!(r["run"]["interrupted"], true);
    assert!(r["totals"]["commands"].as_u64().unwrap() > 0);
    assert!(r["run"]["duration_s"].as_f64().unwrap() < 30.0);
}

#[test]
fn failed_threshold_exits_1_and_is_recorded() {
    let dir = scratch("threshold");
    let body =
        format!("{MIX}thresholds:\n  imap.login: \"p50 < 1us\"\n  imap.select.errors: \"== 0\"\n");
    let path = scenario(&dir, "threshold", "3s", &body);
    let out = run_quiet(&path, &dir);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("threshold FAIL: imap.login"), "{stdout}");
    let outcomes = results(&dir)["extra"]["thresholds"]["outcomes"].clone();
    let passed: Vec<bool> = outcomes
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(passed.len(), 2);
    assert_eq!(passed.iter().filter(|p| **p).count(), 1);
}

#[test]
fn scenario_errors_exit_2_with_line_and_column() {
    let dir = scratch("bad");
    let good = scenario(&dir, "bad", "3s", MIX);
    let text = std::fs::read_to_string(&good).unwrap();
    let cases = [
        (
            "unknown-key",
            text.replace("  count: 40\n", "  count: 40\n  colour: blue\n"),
            ":9:3:",
            "colour",
        ),
        (
            "string-for-number",
            text.replace("count: 40", "count: forty"),
            ":8:10:",
            "forty",
        ),
        (
            "bad-threshold",
            format!("{text}thresholds:\n  imap.fetch: \"p99 < 50 parsecs\"\n"),
            ":18:15:",
            "thresholds.imap.fetch",
        ),
    ];
    for (name, yaml, place, word) in cases {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let out = run(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            dir.join(name).to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(place), "{name}: {stderr}");
        assert!(stderr.contains(word), "{name}: {stderr}");
        assert!(
            !dir.join(name).join("results.json").exists(),
            "{name}: nothing ran"
        );
    }
}

/// A target that refuses every connection gives no verdict (exit 2), but the results of the
/// attempt are still written; so does a scenario value past its limit, before any I/O.
#[test]
fn unreachable_target_exits_2_with_results_and_limits_are_checked() {
    let dir = scratch("unreachable");
    let port = common::free_ports().imap;
    let path = dir.join("refused.yaml");
    std::fs::write(
        &path,
        format!(
            "name: refused\nduration: 2s\ntarget:\n  imap: \"127.0.0.1:{port}\"\n\
             users:\n  count: 3\n  password: x\nload:\n  sessions: 2\n\
             mix:\n  - reader: {{weight: 1}}\n"
        ),
    )
    .unwrap();
    let out = run_quiet(&path, &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no operation succeeded"));
    let r = results(&dir);
    assert!(
        r["totals"]["errors_by_kind"]["refused"].as_u64().unwrap() > 0,
        "{r:#}"
    );

    let huge = dir.join("huge.yaml");
    std::fs::write(
        &huge,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("{weight: 1}", "{weight: 1, actions: {fixed: 1000000000}}"),
    )
    .unwrap();
    let out = run(&[
        "run",
        huge.to_str().unwrap(),
        "--out",
        dir.join("huge").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("huge.yaml:") && stderr.contains("limit"),
        "{stderr}"
    );
}
