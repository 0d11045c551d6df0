use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::metrics::read_latency_log;
use crate::report::testdata::{synthetic_results, synthetic_run};

const SCENARIO: &str = "name: ramp <script>alert(1)</script>\nusers: 600\n";

#[test]
fn a_run_folder_has_every_file() {
    let (metrics, server) = synthetic_run();
    let mut results = synthetic_results(&metrics, "ramp & <friends>");
    results.extra.insert(
        "thresholds".into(),
        json!({"definitions": {"imap.fetch": "p99 < 1ms"}, "outcomes": [
            {"criterion": "imap.fetch: p99 < 1ms", "passed": false, "observed": 1.7,
             "limit": {"op": "<", "value": 1.0}, "reason": "p99 is 1.7ms, needs < 1ms"}
        ]}),
    );
    results.extra.insert(
        "checks".into(),
        json!([{"id": "imap.expunge.order", "status": "fail", "message": "EXISTS after EXPUNGE"}]),
    );
    results.extra.insert("audit".into(), json!({"lost": 0}));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run-1");
    let files = write_run_report(&run, &results, &metrics, &server, SCENARIO).unwrap();
    assert!(files.warnings.is_empty(), "{:?}", files.warnings);

    // results.json: as given, plus the server summary.
    let stored = Results::read(&files.results).unwrap();
    assert_eq!(stored.commands, results.commands);
    assert_eq!(stored.extra["audit"], json!({"lost": 0}));
    let per_user = stored.extra["server"]["bytes_per_user"].as_f64().unwrap();
    assert!((per_user - 630_000.0).abs() < 1_000.0, "{per_user}");

    // latency.hlog: per tag, the intervals add up to the totals.
    let log = std::fs::read(files.latency_log.as_ref().unwrap()).unwrap();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for interval in read_latency_log(&log).unwrap() {
        *counts.entry(interval.tag.unwrap()).or_default() += interval.histogram.len();
    }
    for c in &results.commands {
        assert_eq!(counts[&c.metric], c.count - c.errors, "{}", c.metric);
    }

    // server.json: every sample and the same fit.
    let server_file: ServerFile =
        serde_json::from_slice(&std::fs::read(files.server.as_ref().unwrap()).unwrap()).unwrap();
    assert_eq!(server_file.samples.len(), server.len());
    for (read, written) in server_file.samples.iter().zip(&server) {
        assert_eq!(
            (read.pss_bytes, read.connected),
            (written.pss_bytes, written.connected)
        );
    }
    assert_eq!(
        server_file.summary.bytes_per_user,
        stored.extra["server"]["bytes_per_user"].as_f64()
    );
    assert_eq!(server_file.summary.peak_connected, 600);

    assert_eq!(files.plots.len(), 14);
    assert!(files.plots.iter().all(|p| p.starts_with(run.join("plots"))));

    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained and script-free: nothing is fetched, nothing runs.
    for banned in ["<script", "<link", "<img", " src=", "@import", "url("] {
        assert!(!html.contains(banned), "report contains {banned:?}");
    }
    assert!(html.contains("ramp &amp; &lt;friends&gt;"));
    assert!(html.contains("name: ramp &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(html.matches("<svg").count(), 7);
    assert!(html.contains("imap.fetch: p99 &lt; 1ms") && html.contains("0 of 1 thresholds held"));
    assert!(html.contains("Violations") && html.contains("imap.expunge.order"));
    assert!(html.contains("630.0 kB (615.2 KiB) per connected user"));
    assert!(html.contains("<summary>audit</summary>"));
    assert!(html.contains("timeout"), "errors by kind are listed");
}

#[test]
fn a_run_without_server_or_log_still_reports() {
    let (mut metrics, _) = synthetic_run();
    metrics.latency_log.clear();
    let results = synthetic_results(&metrics, "plain");
    let dir = tempfile::tempdir().unwrap();
    let files = write_run_report(dir.path(), &results, &metrics, &[], "").unwrap();
    assert!(files.latency_log.is_none() && files.server.is_none());
    assert!(!dir.path().join("server.json").exists());
    let stored = Results::read(&files.results).unwrap();
    assert!(!stored.extra.contains_key("server"));
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("The scenario text was not recorded."));
    assert!(!html.contains("id=\"server\""));
    assert!(!html.contains("id=\"thresholds\""));
}

#[test]
fn an_unwritable_folder_is_a_clear_error() {
    let (metrics, _) = synthetic_run();
    let results = synthetic_results(&metrics, "x");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = write_run_report(&file.join("run"), &results, &metrics, &[], "").unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
