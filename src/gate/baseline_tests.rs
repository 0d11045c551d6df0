use super::*;
use crate::gate::testutil::{command, results_with, sample};

fn find<'a>(out: &'a [CriterionOutcome], criterion: &str) -> &'a CriterionOutcome {
    out.iter()
        .find(|o| o.criterion == criterion)
        .unwrap_or_else(|| panic!("no criterion {criterion:?} in {out:#?}"))
}

#[test]
fn defaults_compare_p50_and_p99() {
    let t = Tolerances::default();
    assert_eq!(
        t.latency.keys().copied().collect::<Vec<_>>(),
        [Stat::P50, Stat::P99]
    );
    assert_eq!(t.latency[&Stat::P99], 0.15);
    assert_eq!(t.latency[&Stat::P50], 0.25);
    assert_eq!(t.noise_floor_us, 200.0);
}

#[test]
fn tolerance_flags() {
    let mut t = Tolerances::default();
    t.apply("p99=10%").unwrap();
    t.apply("p50=off, p90=20%,errors=0.5%").unwrap();
    assert_eq!(t.latency.len(), 2);
    assert_eq!(t.latency[&Stat::P99], 0.10);
    assert_eq!(t.latency[&Stat::P90], 0.20);
    assert_eq!(t.error_rate, 0.005);
    for bad in ["p99", "p99=15", "p98=15%", "count=5%", "p99=-5%", "p99=x%"] {
        let e = Tolerances::default().apply(bad).unwrap_err();
        assert!(e.contains(bad.split(',').next().unwrap()), "{e}");
    }
}

#[test]
fn noise_floor_durations() {
    assert_eq!(Tolerances::parse_noise_floor("200us").unwrap(), 200.0);
    assert_eq!(Tolerances::parse_noise_floor("0.5ms").unwrap(), 500.0);
    assert_eq!(Tolerances::parse_noise_floor("1s").unwrap(), 1_000_000.0);
    assert_eq!(Tolerances::parse_noise_floor("0").unwrap(), 0.0);
    assert!(Tolerances::parse_noise_floor("200")
        .unwrap_err()
        .contains("200us"));
    assert!(Tolerances::parse_noise_floor("fast").is_err());
}

#[test]
fn p99_regression_beyond_tolerance_and_noise_floor_fails() {
    let base = results_with(vec![command("imap.fetch", 1000, 0, 4_000, 40_000)]);
    let now = results_with(vec![command("imap.fetch", 1000, 0, 4_000, 48_000)]);
    let out = compare(&base, &now, &Tolerances::default());
    let p99 = find(&out, "imap.fetch p99 vs baseline");
    assert!(!p99.passed, "{}", p99.reason);
    assert_eq!(p99.baseline, Some(40_000.0));
    assert_eq!(p99.observed, Some(Observed::Number(48_000.0)));
    assert_eq!(p99.limit.unwrap().value, 46_000.0);
    assert!(p99.reason.contains("+20.0%"), "{}", p99.reason);
    assert!(find(&out, "imap.fetch p50 vs baseline").passed);
}

#[test]
fn percentiles_with_too_few_samples_are_not_compared() {
    // 125 operations: the p99 is the slowest one or two, so a doubling says nothing.
    let base = results_with(vec![command("lmtp.rcpt", 125, 0, 1_000, 4_000)]);
    let now = results_with(vec![command("lmtp.rcpt", 125, 0, 1_050, 8_000)]);
    let out = compare(&base, &now, &Tolerances::default());
    let p99 = find(&out, "lmtp.rcpt p99 vs baseline");
    assert!(p99.passed && p99.skipped, "{p99:?}");
    assert!(
        p99.reason.contains("125") && p99.reason.contains("1000"),
        "{}",
        p99.reason
    );
    // The median has enough samples and is still held to the baseline.
    let slow = results_with(vec![command("lmtp.rcpt", 125, 0, 2_000, 8_000)]);
    let out = compare(&base, &slow, &Tolerances::default());
    let p50 = find(&out, "lmtp.rcpt p50 vs baseline");
    assert!(!p50.passed && !p50.skipped, "{p50:?}");
    assert_eq!(min_samples(Stat::P999), 10_000);
}

#[test]
fn within_tolerance_or_faster_passes() {
    let base = results_with(vec![command("imap.fetch", 1000, 0, 4_000, 40_000)]);
    for p99 in [46_000, 40_000, 10_000] {
        let now = results_with(vec![command("imap.fetch", 1000, 0, 4_000, p99)]);
        let out = compare(&base, &now, &Tolerances::default());
        assert!(out.iter().all(|o| o.passed), "p99 {p99}: {out:#?}");
    }
}

#[test]
fn noise_floor_keeps_tiny_latencies_from_flapping() {
    // 300us -> 450us is +50%, but only 150us: below the 200us floor.
    let base = results_with(vec![command("imap.noop", 1000, 0, 100, 300)]);
    let now = results_with(vec![command("imap.noop", 1000, 0, 100, 450)]);
    let out = compare(&base, &now, &Tolerances::default());
    let p99 = find(&out, "imap.noop p99 vs baseline");
    assert!(p99.passed, "{}", p99.reason);
    assert_eq!(p99.limit.unwrap().value, 500.0);
    // Past the floor it fails.
    let now = results_with(vec![command("imap.noop", 1000, 0, 100, 520)]);
    assert!(
        !find(
            &compare(&base, &now, &Tolerances::default()),
            "imap.noop p99 vs baseline"
        )
        .passed
    );
    // With the floor off, the relative tolerance alone decides.
    let tol = Tolerances {
        noise_floor_us: 0.0,
        ..Tolerances::default()
    };
    let now = results_with(vec![command("imap.noop", 1000, 0, 100, 450)]);
    assert!(!find(&compare(&base, &now, &tol), "imap.noop p99 vs baseline").passed);
}

#[test]
fn missing_command_fails_and_new_commands_are_not_criteria() {
    let base = sample();
    let now = results_with(vec![
        command("imap.fetch", 1000, 0, 4_000, 40_000),
        command("imap.login", 100, 1, 10_000, 30_000),
        command("imap.idle", 10, 0, 1, 1),
    ]);
    let out = compare(&base, &now, &Tolerances::default());
    let missing = find(&out, "lmtp.data present");
    assert!(!missing.passed);
    assert_eq!(
        missing.reason,
        "lmtp.data ran 120 times in the baseline but not in this run"
    );
    assert!(out.iter().all(|o| !o.criterion.starts_with("imap.idle")));
}

#[test]
fn error_rate_may_rise_only_by_the_tolerance() {
    let base = results_with(vec![command("imap.login", 1000, 1, 10, 30)]);
    let ok = results_with(vec![command("imap.login", 1000, 2, 10, 30)]);
    let out = compare(&base, &ok, &Tolerances::default());
    assert!(find(&out, "imap.login error rate").passed);
    assert!(find(&out, "total error rate").passed);
    let worse = results_with(vec![command("imap.login", 1000, 5, 10, 30)]);
    let out = compare(&base, &worse, &Tolerances::default());
    let rate = find(&out, "imap.login error rate");
    assert!(!rate.passed);
    assert_eq!(rate.reason, "0.5% vs baseline 0.1%; allowed up to 0.2%");
    assert!(!find(&out, "total error rate").passed);
    let mut off = Tolerances::default();
    off.apply("errors=off").unwrap();
    assert!(compare(&base, &worse, &off).iter().all(|o| o.passed));
}

#[test]
fn latency_missing_now_fails_missing_in_baseline_is_skipped() {
    let mut failed = command("imap.select", 10, 10, 1, 1);
    (failed.p50_us, failed.p99_us) = (None, None);
    let base = results_with(vec![command("imap.select", 10, 0, 1_000, 2_000)]);
    let now = results_with(vec![failed.clone()]);
    let out = compare(&base, &now, &Tolerances::default());
    assert!(!find(&out, "imap.select p99 vs baseline").passed);
    let out = compare(&results_with(vec![failed]), &base, &Tolerances::default());
    assert!(out.iter().all(|o| !o.criterion.contains("p99")));
}

#[test]
fn identity_refuses_other_workloads_and_warns_on_version() {
    let r = sample();
    let b = Baseline::from_results(&r);
    assert_eq!(b.check_identity(&r).unwrap(), Vec::<String>::new());
    let mut changed = r.clone();
    changed.scenario.digest = "0ther".into();
    changed.scenario.seed = 7;
    let e = b.check_identity(&changed).unwrap_err();
    assert!(
        e.differences.contains("digest d1g35t, this run 0ther"),
        "{e}"
    );
    assert!(e.differences.contains("seed 42, this run 7"));
    assert!(e.to_string().contains("--update-baseline"));
    let mut renamed = r.clone();
    renamed.scenario.name = "other".into();
    assert!(b
        .check_identity(&renamed)
        .unwrap_err()
        .differences
        .contains("\"other\""));
    let mut newer = r.clone();
    newer.mailswarm_version = "9.9.9".into();
    let warnings = b.check_identity(&newer).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("9.9.9"));
}

#[test]
fn write_read_round_trip_and_version_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/baseline.json");
    let b = Baseline::from_results(&sample());
    b.write(&path).unwrap();
    assert_eq!(Baseline::read(&path).unwrap(), b);

    let mut value: serde_json::Value = serde_json::to_value(&b).unwrap();
    value["baseline_version"] = 99.into();
    std::fs::write(&path, value.to_string()).unwrap();
    let e = Baseline::read(&path).unwrap_err();
    assert!(matches!(e, BaselineError::Version { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("--update-baseline"));

    std::fs::write(&path, "{}").unwrap();
    assert!(matches!(
        Baseline::read(&path),
        Err(BaselineError::Parse { .. })
    ));
    assert!(matches!(
        Baseline::read(&dir.path().join("absent.json")),
        Err(BaselineError::Io { .. })
    ));
}
