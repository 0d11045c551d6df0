//! `mailswarm gate` as CI runs it: the real binary on synthetic results files, asserting the
//! exit code contract (0 pass, 1 fail, 2 no verdict), the named failing criterion, and that
//! the JUnit and Markdown files are what CI tools read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailswarm::gate::threshold::record;
use mailswarm::report::results::{CommandStats, RunInfo, Totals, SCHEMA_VERSION};
use mailswarm::report::{Results, ScenarioInfo};
use quick_junit::{Report, TestCaseStatus};

fn command(metric: &str, count: u64, errors: u64, p50: u64, p99: u64) -> CommandStats {
    let (protocol, command) = metric.split_once('.').unwrap();
    CommandStats {
        protocol: protocol.into(),
        command: command.to_ascii_uppercase(),
        metric: metric.into(),
        count,
        errors,
        errors_by_kind: BTreeMap::new(),
        mean_us: Some((p50 + p99) as f64 / 2.0),
        p50_us: Some(p50),
        p90_us: Some((p50 + p99) / 2),
        p99_us: Some(p99),
        p999_us: Some(p99),
        max_us: Some(p99),
    }
}

/// A finished run: imap.fetch (p50 4 ms, p99 `fetch_p99_us`), imap.login, lmtp.data; the
/// scenario's thresholds `imap.fetch: p99 < 50ms` and `audit.lost: == 0` stored with it.
fn results(fetch_p99_us: u64) -> Results {
    let commands = vec![
        command("imap.fetch", 1000, 0, 4_000, fetch_p99_us),
        command("imap.login", 100, 0, 10_000, 30_000),
        command("lmtp.data", 120, 0, 20_000, 150_000),
    ];
    let mut r = Results {
        schema_version: SCHEMA_VERSION,
        mailswarm_version: env!("CARGO_PKG_VERSION").into(),
        scenario: ScenarioInfo {
            name: "gate".into(),
            file: Some("scenarios/gate.yaml".into()),
            seed: 7,
            digest: "5ce7a210".into(),
        },
        run: RunInfo {
            started_at: "2026-12-04T00:00:00.000Z".into(),
            ended_at: "2026-12-04T00:01:00.000Z".into(),
            duration_s: 60.0,
            interrupted: false,
            model: "open".into(),
            peak_connected: 20,
            nofile_soft: 20_000,
            nofile_hard: 20_000,
        },
        totals: Totals {
            commands: commands.iter().map(|c| c.count).sum(),
            errors: 0,
            error_rate: 0.0,
            errors_by_kind: BTreeMap::new(),
        },
        commands,
        phases: BTreeMap::new(),
        counters: BTreeMap::from([("lmtp.delivered".into(), 120)]),
        extra: BTreeMap::from([(
            "audit".into(),
            serde_json::json!({"accepted": 120, "delivered": 120, "lost": 0}),
        )]),
    };
    let thresholds = BTreeMap::from([
        ("imap.fetch".to_string(), "p99 < 50ms".to_string()),
        ("audit.lost".to_string(), "== 0".to_string()),
    ]);
    record(&mut r, &thresholds).unwrap();
    r
}

/// A temp folder laid out like CI: `reports/gate/results.json`, baseline in `reports/`.
struct Ci {
    dir: tempfile::TempDir,
}

impl Ci {
    fn new(results: &Results) -> Ci {
        let ci = Ci {
            dir: tempfile::tempdir().unwrap(),
        };
        ci.write_results(results);
        ci
    }

    fn write_results(&self, results: &Results) {
        std::fs::create_dir_all(self.run_dir()).unwrap();
        results.write(&self.run_dir().join("results.json")).unwrap();
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("reports/gate")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn gate(&self, args: &[&str]) -> Gate {
        let output = Command::new(env!("CARGO_BIN_EXE_mailswarm"))
            .arg("gate")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        Gate(output)
    }
}

struct Gate(Output);

impl Gate {
    fn code(&self) -> i32 {
        self.0.status.code().expect("exited normally")
    }
    fn stdout(&self) -> String {
        String::from_utf8(self.0.stdout.clone()).unwrap()
    }
    fn stderr(&self) -> String {
        String::from_utf8(self.0.stderr.clone()).unwrap()
    }
    #[track_caller]
    fn expect(&self, code: i32) -> &Gate {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

fn junit(path: &Path) -> Report {
    let xml = std::fs::read_to_string(path).unwrap();
    Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("invalid JUnit {e}:\n{xml}"))
}

fn case_names(report: &Report) -> Vec<String> {
    report
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter().map(|c| c.name.as_str().to_string()))
        .collect()
}

#[test]
fn passing_run_exits_0_and_writes_junit_and_markdown() {
    let ci = Ci::new(&results(40_000));
    let g = ci.gate(&[
        "reports/gate",
        "--junit",
        "out/junit.xml",
        "--markdown",
        "out/summary.md",
    ]);
    g.expect(0);
    assert!(
        g.stdout()
            .starts_with("mailswarm gate: PASS (0 of 2 criteria failed)"),
        "{}",
        g.stdout()
    );
    assert!(g.stdout().contains("no baseline at reports/baseline.json"));
    let report = junit(&ci.path("out/junit.xml"));
    assert_eq!((report.tests, report.failures, report.errors), (2, 0, 0));
    assert_eq!(
        case_names(&report),
        ["audit.lost: == 0", "imap.fetch: p99 < 50ms"]
    );
    let md = std::fs::read_to_string(ci.path("out/summary.md")).unwrap();
    assert!(md.starts_with("## mailswarm gate: ✅ PASS"));
    assert!(md.contains("| ✅ pass | threshold | `imap.fetch: p99 < 50ms` | 40ms | < 50ms | - |"));
}

#[test]
fn failing_threshold_exits_1_and_names_the_criterion() {
    let ci = Ci::new(&results(61_200));
    let g = ci.gate(&[
        "reports/gate",
        "--junit",
        "junit.xml",
        "--markdown",
        "summary.md",
    ]);
    g.expect(1);
    let out = g.stdout();
    assert!(
        out.starts_with("mailswarm gate: FAIL (1 of 2 criteria failed)"),
        "{out}"
    );
    assert!(out.contains("FAIL [threshold] imap.fetch: p99 < 50ms\n"));
    assert!(out.contains("observed 61.2ms, limit < 50ms"));
    let report = junit(&ci.path("junit.xml"));
    assert_eq!(report.failures, 1);
    let case = report.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "imap.fetch: p99 < 50ms")
        .unwrap();
    let TestCaseStatus::NonSuccess { message, .. } = &case.status else {
        panic!("{:?}", case.status)
    };
    assert_eq!(
        message.as_ref().unwrap().as_str(),
        "p99 is 61.2ms, needs < 50ms"
    );
    let md = std::fs::read_to_string(ci.path("summary.md")).unwrap();
    assert!(md.contains("| ❌ FAIL | threshold | `imap.fetch: p99 < 50ms` | 61.2ms | < 50ms |"));
}

#[test]
fn results_file_path_and_command_line_thresholds() {
    let ci = Ci::new(&results(40_000));
    let g = ci.gate(&[
        "reports/gate/results.json",
        "--threshold",
        "lmtp.delivered=>= 200",
        "--threshold",
        "imap.login=p50 < 20ms",
    ]);
    g.expect(1);
    assert!(
        g.stdout()
            .contains("FAIL [threshold] lmtp.delivered: >= 200"),
        "{}",
        g.stdout()
    );
    assert!(g.stdout().contains("lmtp.delivered is 120, needs >= 200"));
    assert!(!g.stdout().contains("FAIL [threshold] imap.login"));
}

#[test]
fn baseline_update_then_regression_then_noise() {
    let ci = Ci::new(&results(40_000));
    ci.gate(&["reports/gate", "--update-baseline"]).expect(0);
    let baseline = ci.path("reports/baseline.json");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(stored["scenario"], "gate");
    assert_eq!(stored["scenario_digest"], "5ce7a210");
    assert_eq!(stored["seed"], 7);
    assert_eq!(stored["mailswarm_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(stored["results"]["commands"][0]["p99_us"], 40_000);

    // Same run again: compared, passes.
    let g = ci.gate(&["reports/gate"]);
    g.expect(0);
    assert!(g.stdout().contains("baseline"), "{}", g.stdout());

    // p99 40 -> 48 ms: +20% > 15% and +8 ms > 200 us; still under the 50 ms threshold.
    ci.write_results(&results(48_000));
    let g = ci.gate(&["reports/gate", "--junit", "junit.xml"]);
    g.expect(1);
    assert!(
        g.stdout()
            .contains("FAIL [baseline] imap.fetch p99 vs baseline"),
        "{}",
        g.stdout()
    );
    assert!(g
        .stdout()
        .contains("observed 48ms, limit <= 46ms, baseline 40ms"));
    assert_eq!(junit(&ci.path("junit.xml")).failures, 1);

    // A looser tolerance lets it through.
    ci.gate(&["reports/gate", "--tolerance", "p99=25%"])
        .expect(0);
}

#[test]
fn noise_floor_decides_for_small_latencies() {
    let mut fast = results(40_000);
    fast.commands[1] = command("imap.login", 1000, 0, 100, 300);
    let ci = Ci::new(&fast);
    ci.gate(&["reports/gate", "--update-baseline"]).expect(0);
    // 300 -> 450 us: +50% but only 150 us.
    fast.commands[1] = command("imap.login", 1000, 0, 100, 450);
    ci.write_results(&fast);
    ci.gate(&["reports/gate"]).expect(0);
    let g = ci.gate(&["reports/gate", "--noise-floor", "100us"]);
    g.expect(1);
    assert!(g.stdout().contains("imap.login p99 vs baseline"));
}

#[test]
fn missing_command_and_higher_error_rate_fail_against_the_baseline() {
    let ci = Ci::new(&results(40_000));
    ci.gate(&["reports/gate", "--update-baseline"]).expect(0);
    let mut now = results(40_000);
    now.commands.retain(|c| c.metric != "lmtp.data");
    now.commands[1].errors = 5; // imap.login: 5 in 100
    now.totals.errors = 5;
    now.totals.error_rate = 5.0 / now.totals.commands as f64;
    ci.write_results(&now);
    let g = ci.gate(&["reports/gate"]);
    g.expect(1);
    let out = g.stdout();
    assert!(out.contains("FAIL [baseline] lmtp.data present"), "{out}");
    assert!(out.contains("lmtp.data ran 120 times in the baseline but not in this run"));
    assert!(out.contains("FAIL [baseline] imap.login error rate"));
}

#[test]
fn baseline_of_another_workload_is_refused_with_exit_2() {
    let ci = Ci::new(&results(40_000));
    ci.gate(&["reports/gate", "--update-baseline"]).expect(0);
    let mut changed = results(40_000);
    changed.scenario.digest = "ffff0000".into();
    ci.write_results(&changed);
    let g = ci.gate(&["reports/gate", "--junit", "junit.xml"]);
    g.expect(2);
    let err = g.stderr();
    assert!(
        err.contains("scenario digest 5ce7a210, this run ffff0000"),
        "{err}"
    );
    assert!(err.contains("--update-baseline"));
    assert_eq!(junit(&ci.path("junit.xml")).errors, 1);
}

#[test]
fn other_mailswarm_version_is_only_a_warning() {
    let ci = Ci::new(&results(40_000));
    ci.gate(&["reports/gate", "--update-baseline"]).expect(0);
    let mut newer = results(40_000);
    newer.mailswarm_version = "99.0.0".into();
    ci.write_results(&newer);
    let g = ci.gate(&["reports/gate"]);
    g.expect(0);
    assert!(
        g.stderr()
            .contains("warning: the baseline was recorded by mailswarm"),
        "{}",
        g.stderr()
    );
}

#[test]
fn failing_run_is_not_recorded_as_baseline() {
    let ci = Ci::new(&results(90_000));
    let g = ci.gate(&["reports/gate", "--update-baseline"]);
    g.expect(1);
    assert!(g.stdout().contains("baseline not updated"));
    assert!(!ci.path("reports/baseline.json").exists());
}

#[test]
fn incomplete_runs_exit_2() {
    let mut interrupted = results(40_000);
    interrupted.run.interrupted = true;
    let ci = Ci::new(&interrupted);
    let g = ci.gate(&["reports/gate", "--markdown", "summary.md"]);
    g.expect(2);
    assert!(
        g.stderr().contains("the run did not complete"),
        "{}",
        g.stderr()
    );
    assert!(g.stderr().contains("the server may be unreachable"));
    let md = std::fs::read_to_string(ci.path("summary.md")).unwrap();
    assert!(md.contains("ERROR") && md.contains("did not complete"));

    let mut empty = results(40_000);
    empty.commands.clear();
    empty.totals.commands = 0;
    ci.write_results(&empty);
    let g = ci.gate(&["reports/gate"]);
    g.expect(2);
    assert!(g.stderr().contains("no operation completed"));
}

#[test]
fn unreadable_inputs_and_bad_flags_exit_2() {
    let ci = Ci::new(&results(40_000));
    let g = ci.gate(&["nowhere"]);
    g.expect(2);
    assert!(g.stderr().contains("cannot read nowhere"), "{}", g.stderr());

    std::fs::write(ci.path("broken.json"), "{not json").unwrap();
    let g = ci.gate(&["broken.json"]);
    g.expect(2);
    assert!(g.stderr().contains("not a mailswarm results file"));

    let g = ci.gate(&["reports/gate", "--baseline", "missing.json"]);
    g.expect(2);
    assert!(g.stderr().contains("cannot read baseline missing.json"));

    let g = ci.gate(&["reports/gate", "--tolerance", "p99=fast"]);
    g.expect(2);
    assert!(g.stderr().contains("--tolerance"));
    ci.gate(&["reports/gate", "--threshold", "imap.fetch=p99 < 50"])
        .expect(2);
}

#[test]
fn a_run_without_anything_to_check_exits_2() {
    let mut bare = results(40_000);
    bare.extra.clear();
    let ci = Ci::new(&bare);
    let g = ci.gate(&["reports/gate"]);
    g.expect(2);
    assert!(g.stderr().contains("nothing to check"), "{}", g.stderr());
}

#[test]
fn conformance_failures_fail_the_gate() {
    let ci = Ci::new(&results(40_000));
    std::fs::write(
        ci.path("conform.json"),
        r#"{"checks": [
            {"id": "imap.fetch.literal", "status": "pass"},
            {"id": "imap.expunge.order", "status": "fail", "message": "EXISTS after EXPUNGE"},
            {"id": "imap.condstore", "status": "skip"}]}"#,
    )
    .unwrap();
    let g = ci.gate(&[
        "reports/gate",
        "--conformance",
        "conform.json",
        "--junit",
        "junit.xml",
    ]);
    g.expect(1);
    assert!(
        g.stdout().contains("FAIL [conformance] imap.expunge.order"),
        "{}",
        g.stdout()
    );
    assert!(g.stdout().contains("failed: EXISTS after EXPUNGE"));
    let report = junit(&ci.path("junit.xml"));
    assert_eq!((report.tests, report.failures), (5, 1));
    let conformance = report
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "conformance")
        .unwrap();
    assert_eq!(
        conformance.skipped, 1,
        "the skipped check is reported as skipped"
    );

    std::fs::write(
        ci.path("conform.json"),
        r#"{"checks": [{"id": "x", "status": "ok"}]}"#,
    )
    .unwrap();
    let g = ci.gate(&["reports/gate", "--conformance", "conform.json"]);
    g.expect(2);
    assert!(g.stderr().contains("not a conformance results file"));
}

/// The thresholds users copy from the examples must parse.
#[test]
fn example_scenario_and_docs_thresholds_parse() {
    #[derive(serde::Deserialize)]
    struct WithThresholds {
        thresholds: BTreeMap<String, String>,
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = std::fs::read_to_string(root.join("scenarios/gate.yaml")).unwrap();
    let docs = std::fs::read_to_string(root.join("docs/ci-gate.md")).unwrap();
    let start = docs
        .find("```yaml\nthresholds:")
        .expect("thresholds example in docs")
        + 8;
    let docs_block = &docs[start..start + docs[start..].find("```").unwrap()];
    for (name, yaml) in [("gate.yaml", scenario.as_str()), ("ci-gate.md", docs_block)] {
        let parsed: WithThresholds = serde_saphyr::from_str(yaml).unwrap();
        let thresholds = mailswarm::gate::parse_thresholds(&parsed.thresholds)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(thresholds.len() >= 8, "{name}: {}", thresholds.len());
    }
}

/// `cli::main` exits 0 on a broken pipe; for the gate the verdict must win.
#[test]
fn closed_stdout_does_not_turn_a_failure_into_a_pass() {
    let ci = Ci::new(&results(61_200));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailswarm"))
        .args(["gate", "reports/gate", "-v"])
        .current_dir(ci.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}
