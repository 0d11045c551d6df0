use super::*;
use crate::metrics::MemoryKind;
use crate::report::testdata::{synthetic_results, synthetic_run};

const BASE: f64 = 150e6;
const PER_USER: f64 = 630_000.0;

fn command(metric: &str, count: u64, errors: u64, p50: u64, p99: u64) -> LevelCommand {
    LevelCommand {
        metric: metric.to_string(),
        count,
        errors,
        p50_us: Some(p50),
        p99_us: Some(p99),
    }
}

/// A level whose latency and memory grow with the user count; `failed` criteria as given.
fn level(users: u64, failed: &[(&str, &str)]) -> SweepLevel {
    let u = users as f64;
    SweepLevel {
        level: users,
        dir: format!("level-{users}"),
        interrupted: false,
        connected_mean: Some(u - 0.5),
        commands: vec![
            command("imap.noop", users * 10, 0, 80 + users / 10, 300 + users),
            command(
                "imap.fetch",
                users * 4,
                0,
                900 + users * 2,
                5_000 + users * 40,
            ),
            command(
                "imap.login",
                users,
                users / 100,
                15_000,
                40_000 + users * 20,
            ),
        ],
        error_rate: (users / 100) as f64 / (users * 15) as f64,
        server_pss_mean_bytes: Some((BASE + PER_USER * (u - 0.5)).round()),
        server_samples: 20,
        thresholds_passed: failed.is_empty(),
        failed_criteria: failed
            .iter()
            .map(|(c, r)| FailedCriterion {
                criterion: c.to_string(),
                reason: r.to_string(),
            })
            .collect(),
    }
}

fn report(levels: Vec<SweepLevel>) -> SweepReport {
    let mut report = SweepReport {
        schema_version: SCHEMA_VERSION,
        mailswarm_version: "0.1.0".into(),
        scenario: ScenarioInfo {
            name: "capacity".into(),
            file: Some("scenarios/capacity.yaml".into()),
            seed: 7,
            digest: "sha256:0123456789abcdef".into(),
        },
        model: "closed".into(),
        level_unit: LevelUnit::Sessions,
        duration_s: 60.0,
        warmup_s: 6.0,
        ramp_down_s: 0.0,
        thresholds: BTreeMap::from([("imap.fetch".to_string(), "p99 < 50ms".to_string())]),
        interrupted: false,
        levels,
        knee: None,
        memory_fit: None,
    };
    report.analyse();
    report
}

const FETCH_FAILED: (&str, &str) = ("imap.fetch: p99 < 50ms", "p99 is 85ms, needs < 50ms");
const ERRORS_FAILED: (&str, &str) = ("errors: < 1%", "error rate is 2.5%, needs < 1%");

#[test]
fn the_knee_is_the_first_level_that_fails_a_threshold() {
    let levels = vec![
        level(100, &[]),
        level(500, &[]),
        level(1000, &[FETCH_FAILED]),
        level(2000, &[FETCH_FAILED, ERRORS_FAILED]),
    ];
    let knee = find_knee(&levels).unwrap();
    assert_eq!(knee.level, 1000);
    assert_eq!(
        knee.reason,
        "imap.fetch: p99 < 50ms (p99 is 85ms, needs < 50ms)"
    );

    // An error-rate failure alone is a knee too, and every failed criterion is named.
    let levels = vec![level(100, &[]), level(500, &[ERRORS_FAILED, FETCH_FAILED])];
    let knee = find_knee(&levels).unwrap();
    assert_eq!(knee.level, 500);
    assert!(knee.reason.starts_with("errors: < 1% (error rate is 2.5%"));
    assert!(knee.reason.contains("; imap.fetch: p99 < 50ms"));
}

#[test]
fn no_knee_when_every_level_passes_and_interrupted_levels_do_not_count() {
    let levels = vec![level(100, &[]), level(500, &[]), level(1000, &[])];
    assert_eq!(find_knee(&levels), None);

    let mut cut = level(1000, &[FETCH_FAILED]);
    cut.interrupted = true;
    let levels = vec![level(100, &[]), cut, level(2000, &[ERRORS_FAILED])];
    assert_eq!(find_knee(&levels).unwrap().level, 2000);
}

#[test]
fn memory_fit_recovers_the_per_user_cost_over_levels() {
    let levels: Vec<_> = [100, 500, 1000, 2000]
        .into_iter()
        .map(|u| level(u, &[]))
        .collect();
    let fit = fit_memory(&levels).unwrap();
    assert!(
        (fit.slope_bytes_per_user - PER_USER).abs() <= 1.0,
        "{fit:?}"
    );
    assert!((fit.intercept - BASE).abs() <= 2.0, "{fit:?}");
    assert_eq!(fit.r_squared, 1.0);
    assert_eq!(fit.levels, 4);

    // Levels without memory or cut short are left out; one point is no line.
    let mut cut = level(2000, &[]);
    cut.interrupted = true;
    cut.server_pss_mean_bytes = Some(1.0);
    let mut unsampled = level(500, &[]);
    unsampled.server_pss_mean_bytes = None;
    let levels = vec![level(100, &[]), unsampled, level(1000, &[]), cut];
    let fit = fit_memory(&levels).unwrap();
    assert_eq!(fit.levels, 2);
    assert!((fit.slope_bytes_per_user - PER_USER).abs() <= 1.0);
    assert_eq!(fit_memory(&levels[..2]), None);
}

#[test]
fn a_level_counts_only_its_steady_phase() {
    let (metrics, server) = synthetic_run();
    let results = synthetic_results(&metrics, "ramp");
    // The synthetic run ramps 10 users a second up to 600 at 60 s.
    let connected: Vec<(f64, u64)> = metrics
        .timeline
        .iter()
        .map(|p| (p.t_s as f64, p.connected))
        .collect();
    let window = SteadyWindow {
        start_s: 20.0,
        end_s: 30.0,
    };
    let level = SweepLevel::from_run(LevelRun {
        level: 300,
        dir: "level-300".into(),
        results: &results,
        failed_criteria: vec![FailedCriterion {
            criterion: FETCH_FAILED.0.into(),
            reason: FETCH_FAILED.1.into(),
        }],
        connected: &connected,
        server: &server,
        window,
    });
    // Seconds 20..=29: 200..=290 users.
    assert_eq!(level.connected_mean, Some(245.0));
    assert_eq!(level.server_samples, 10);
    let expected = 200e6 + 630_000.0 * 245.0; // the ±40 kB noise cancels over 10 samples
    assert_eq!(level.server_pss_mean_bytes, Some(expected));
    let (count, errors, _) = error_totals(&results.commands);
    assert!(errors > 0);
    assert_eq!(level.error_rate, errors as f64 / count as f64);
    assert!(!level.thresholds_passed);
    let fetch = level.command("imap.fetch").unwrap();
    assert_eq!(fetch.p50_us, results.command("imap.fetch").unwrap().p50_us);
    assert!(!level.interrupted);
}

#[test]
fn memory_means_skip_samples_outside_the_window() {
    let sample = |t_s: f64, pss: u64| ServerSample {
        t_s,
        pss_bytes: pss,
        kind: MemoryKind::Pss,
        rss_fallback: 0,
        cpu_s: None,
        processes: None,
        connected: 0,
    };
    let samples = [
        sample(0.0, 1),
        sample(1.9, 1),
        sample(2.0, 100),
        sample(5.0, 300),
        sample(8.0, 7),
    ];
    let window = SteadyWindow {
        start_s: 2.0,
        end_s: 8.0,
    };
    assert_eq!(mean_server_memory(&samples, window), Some((200.0, 2)));
    assert_eq!(mean_server_memory(&samples[..2], window), None);
    assert_eq!(mean_connected(&[], window), None);
}

#[test]
fn sweep_json_round_trips_and_refuses_other_versions() {
    let report = report(vec![level(100, &[]), level(500, &[FETCH_FAILED])]);
    assert_eq!(report.knee.as_ref().unwrap().level, 500);
    assert!(report.memory_fit.is_some());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.json");
    report.write(&path).unwrap();
    assert_eq!(SweepReport::read(&path).unwrap(), report);

    let text = std::fs::read_to_string(&path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["levels"][1]["failed_criteria"][0]["criterion"],
        FETCH_FAILED.0
    );
    assert_eq!(value["level_unit"], "sessions");
    assert_eq!(value["knee"]["level"], 500);
    assert!(
        value["memory_fit"]["slope_bytes_per_user"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    std::fs::write(
        &path,
        text.replace("\"schema_version\": 1", "\"schema_version\": 9"),
    )
    .unwrap();
    assert!(matches!(
        SweepReport::read(&path),
        Err(SweepError::Version { found: Some(9), .. })
    ));
}

#[test]
fn sweep_writes_both_charts_and_a_self_contained_page() {
    let report = report(
        [100, 500, 1000, 2000]
            .into_iter()
            .map(|u| level(u, if u >= 1000 { &[FETCH_FAILED] } else { &[] }))
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let files = write_sweep(dir.path(), &report).unwrap();
    assert!(files.warnings.is_empty(), "{:?}", files.warnings);
    assert_eq!(files.plots.len(), 4);
    for path in &files.plots {
        let bytes = std::fs::read(path).unwrap();
        if path.extension().unwrap() == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert!(
                bytes.len() > 10_000,
                "{}: {} bytes",
                path.display(),
                bytes.len()
            );
        } else {
            assert!(bytes.starts_with(b"<svg"));
        }
    }
    let svg = |name: &str| std::fs::read_to_string(dir.path().join(format!("{name}.svg"))).unwrap();
    let latency = svg(LATENCY_CHART);
    for label in [
        "concurrent sessions (level)",
        "latency (ms, log scale)",
        "imap.fetch",
        "imap.login",
        "imap.noop",
        "p50",
        "p99",
        "knee",
    ] {
        assert!(latency.contains(label), "latency chart lacks {label:?}");
    }
    let memory = svg(MEMORY_CHART);
    for label in [
        "connected users",
        "server memory (MiB)",
        "630.0 kB (615.2 KiB) per connected user",
        "level 2000",
    ] {
        assert!(memory.contains(label), "memory chart lacks {label:?}");
    }

    let html = std::fs::read_to_string(files.html.unwrap()).unwrap();
    assert!(html.contains("Knee at 1000 sessions: imap.fetch: p99 &lt; 50ms"));
    assert!(html.contains("Server memory per connected user: 630.0 kB"));
    assert!(html.contains("<a href=\"level-500/report.html\">level-500</a>"));
    assert_eq!(html.matches("<svg").count(), 2, "both charts inline");
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
}

#[test]
fn close_latencies_stay_on_a_linear_axis() {
    let mut a = level(100, &[]);
    a.commands.truncate(1);
    let mut b = level(200, &[]);
    b.commands.truncate(1);
    let chart = LatencyVsLoad::new(&report(vec![a, b]));
    assert!(!chart.log_y());
    let spread = LatencyVsLoad::new(&report(vec![level(100, &[]), level(2000, &[])]));
    assert!(spread.log_y());
}

#[test]
fn a_sweep_without_server_samples_has_no_memory_chart() {
    let mut levels = vec![level(100, &[]), level(500, &[])];
    for l in &mut levels {
        l.server_pss_mean_bytes = None;
    }
    let report = report(levels);
    assert_eq!(report.memory_fit, None);
    let dir = tempfile::tempdir().unwrap();
    let files = write_sweep(dir.path(), &report).unwrap();
    assert_eq!(files.plots.len(), 2);
    assert!(!dir.path().join(format!("{MEMORY_CHART}.png")).exists());
    let html = std::fs::read_to_string(files.html.unwrap()).unwrap();
    assert!(html.contains("No memory chart"));
    assert!(html.contains("not measured"));
}
