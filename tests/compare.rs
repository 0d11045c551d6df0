//! `mailswarm compare` as a user runs it: exit codes, console table, HTML file.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use mailswarm::metrics::{OpKey, Phase, Protocol, RunMetrics};
use mailswarm::report::{Results, RunContext, ScenarioInfo};

fn write_run(dir: &Path, name: &str, fetch_us: u64) {
    let mut metrics = RunMetrics::default();
    let stats = metrics
        .by_phase
        .entry((Phase::Steady, OpKey::new(Protocol::Imap, "FETCH")))
        .or_default();
    for i in 0..1000 {
        stats.record(fetch_us + i % 10, Ok(()));
    }
    let ctx = RunContext {
        scenario: ScenarioInfo {
            name: "cmp".into(),
            file: None,
            seed: 1,
            digest: "d".into(),
        },
        started: SystemTime::UNIX_EPOCH,
        ended: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
        interrupted: false,
        model: "closed".into(),
        has_ramps: false,
        nofile_soft: 1024,
        nofile_hard: 1024,
    };
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    Results::build(&ctx, &metrics)
        .write(&folder.join("results.json"))
        .unwrap();
}

fn mailswarm(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mailswarm"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn compare_two_runs_writes_html() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), "a", 1_000);
    write_run(dir.path(), "b", 2_000);
    let out = mailswarm(dir.path(), &["compare", "a", "b/results.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("imap.fetch") && stdout.contains("▲ +"),
        "{stdout}"
    );
    let html = std::fs::read_to_string(dir.path().join("compare.html")).unwrap();
    assert!(html.contains("<svg"));

    let out = mailswarm(dir.path(), &["compare", "a", "b", "--out", "r/c.html"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.path().join("r/c.html").exists());
}

#[test]
fn compare_missing_or_invalid_runs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), "a", 1_000);
    let out = mailswarm(dir.path(), &["compare", "a", "missing"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing does not exist"), "{stderr}");

    std::fs::write(dir.path().join("bad.json"), "[]").unwrap();
    let out = mailswarm(dir.path(), &["compare", "a", "bad.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));

    let out = mailswarm(dir.path(), &["compare", "a"]);
    assert_eq!(out.status.code(), Some(2), "one run is a usage error");
}
