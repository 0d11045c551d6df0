use serde_json::json;

use super::*;
use crate::report::testdata::{synthetic_results, synthetic_run};

/// Writes `results` as `dir/name/results.json` and returns the folder.
fn run_folder(dir: &Path, name: &str, results: &Results) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    results.write(&folder.join("results.json")).unwrap();
    folder
}

/// Baseline and a candidate whose FETCH p50 is 20% slower, p99 within noise, LOGIN faster by
/// 3 ms, more FETCH errors, and a server costing 10% more per user.
fn two_runs(dir: &Path) -> (PathBuf, PathBuf) {
    let (metrics, _) = synthetic_run();
    let mut base = synthetic_results(&metrics, "ramp");
    base.extra.insert(
        "server".into(),
        json!({
            "memory_kind": "pss", "samples": 60, "first_bytes": 1, "peak_bytes": 2, "last_bytes": 2,
            "bytes_per_user": 630000.0, "fit_intercept_bytes": 0.0, "fit_r_squared": 1.0,
            "peak_connected": 600, "peak_processes": 605, "cpu_s": 1.0, "rss_fallback_max": 0
        }),
    );
    let mut candidate = base.clone();
    for c in &mut candidate.commands {
        match c.metric.as_str() {
            "imap.fetch" => {
                c.p50_us = c.p50_us.map(|v| v * 12 / 10);
                c.p99_us = c.p99_us.map(|v| v + 50);
                c.errors += 100;
            }
            "imap.login" => c.p50_us = c.p50_us.map(|v| v - 3000),
            _ => {}
        }
    }
    candidate.extra.get_mut("server").unwrap()["bytes_per_user"] = json!(693000.0);
    (
        run_folder(dir, "base", &base),
        run_folder(dir, "candidate", &candidate),
    )
}

#[test]
fn deltas_and_noise_band() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(dir.path());
    // The candidate is given as a results.json path, the baseline as a folder.
    let runs = load_runs(&[a, b.join("results.json")]).unwrap();
    assert_eq!(runs[0].label, "base");
    assert_eq!(runs[1].label, "candidate");
    let cmp = compare(runs);
    assert_eq!(cmp.commands.len(), 2);
    let fetch = cmp
        .commands
        .iter()
        .find(|r| r.metric == "imap.fetch")
        .unwrap();
    assert!(
        fetch.runs[0].as_ref().unwrap().p50_delta.is_none(),
        "baseline has no delta"
    );
    let cand = fetch.runs[1].as_ref().unwrap();
    let p50 = cand.p50_delta.unwrap();
    assert_eq!(p50.verdict, Verdict::Worse);
    assert!((p50.relative.unwrap() - 0.2).abs() < 0.01, "{p50:?}");
    assert_eq!(
        cand.p99_delta.unwrap().verdict,
        Verdict::Same,
        "+50 µs is noise"
    );
    assert_eq!(cand.error_delta.unwrap().verdict, Verdict::Worse);
    let login = cmp
        .commands
        .iter()
        .find(|r| r.metric == "imap.login")
        .unwrap();
    let login = login.runs[1].as_ref().unwrap();
    assert_eq!(login.p50_delta.unwrap().verdict, Verdict::Better);
    assert_eq!(login.p50_delta.unwrap().absolute, -3000.0);
    assert_eq!(cmp.bytes_per_user, vec![Some(630_000.0), Some(693_000.0)]);

    let mut out = Vec::new();
    print_comparison(&mut out, &cmp).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("baseline: base"), "{text}");
    assert!(text.contains("▲ +20.0%"), "{text}");
    assert!(text.contains("▼ -"), "{text}");
    assert!(text.contains("≈ +"), "{text}");
    assert!(text.contains("693000 bytes ▲ +10.0%"), "{text}");
}

#[test]
fn noise_band_edges() {
    // 5% of 10 ms is 500 µs: 400 µs is noise, 600 µs is not.
    assert_eq!(Delta::latency(10_000.0, 10_400.0).verdict, Verdict::Same);
    assert_eq!(Delta::latency(10_000.0, 10_600.0).verdict, Verdict::Worse);
    // Under 2 ms the 100 µs floor applies: 80 µs on 300 µs is noise though it is 27%.
    assert_eq!(Delta::latency(300.0, 380.0).verdict, Verdict::Same);
    assert_eq!(Delta::latency(300.0, 150.0).verdict, Verdict::Better);
    assert_eq!(Delta::error_rate(0.0, 0.0005).verdict, Verdict::Same);
    assert_eq!(Delta::error_rate(0.0, 0.002).verdict, Verdict::Worse);
    assert_eq!(Delta::error_rate(0.0, 0.002).relative, None);
}

#[test]
fn html_has_table_and_bar_charts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(dir.path());
    let cmp = compare(load_runs(&[a, b]).unwrap());
    let out = dir.path().join("reports/compare/compare.html");
    write_compare_html(&cmp, &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("p50 latency (ms)") && html.contains("p99 latency (ms)"));
    assert!(html.contains("<span class=\"worse\">▲ +20.0%</span>"));
    assert!(html.contains("candidate") && html.contains("imap.login"));
    assert!(html.contains("Server memory per connected user"));
    assert!(!html.contains("<script"));
}

#[test]
fn bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = two_runs(dir.path());
    let missing = dir.path().join("nope");
    let err = load_runs(&[a.clone(), missing]).unwrap_err();
    assert!(matches!(err, CompareError::Missing(_)));
    assert!(err.to_string().contains("nope"), "{err}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = load_runs(&[a.clone(), empty]).unwrap_err();
    assert!(err.to_string().contains("without results.json"), "{err}");

    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{not json").unwrap();
    let err = load_runs(&[a.clone(), junk]).unwrap_err();
    assert!(err.to_string().contains("junk.json"), "{err}");

    assert!(matches!(load_runs(&[a]), Err(CompareError::TooFew(1))));
}

#[test]
fn same_folder_name_gets_a_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = two_runs(dir.path());
    let runs = load_runs(&[a.clone(), a]).unwrap();
    assert_eq!(runs[1].label, "base#2");
}
