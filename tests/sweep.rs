//! `mailswarm sweep` against the lab: four concurrency levels give the capacity curves, server
//! memory rises with connected users (Dovecot runs one process per session), and the fitted
//! per-user slope is printed.

use serde_json::Value;

use crate::common;

#[test]
fn four_levels_give_rising_memory_a_slope_and_both_charts() {
    let lab = common::lab();
    let dir = std::env::temp_dir().join(format!("mailswarm-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("sweep.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: sweep-test\nseed: 4\nduration: 5s\n\
             target:\n  lab: true\n  lab_dir: {}\n\
             users:\n  count: 40\n  first: 300\n\
             load:\n  sessions: 2\n\
             mix:\n  - idler: {{weight: 2, idle_for: {{fixed: 20s}}}}\n  \
             - reader: {{weight: 1, actions: {{fixed: 50}}, think: {{fixed: 100ms}}}}\n\
             thresholds:\n  errors: \"< 1%\"\n",
            lab.dir.display()
        ),
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = common::mailswarm()
        .args(["sweep", scenario.to_str().unwrap(), "--levels", "2,6,12,20"])
        .args(["--warmup", "2s", "--out", out_dir.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("server memory per connected user:"),
        "{stdout}"
    );
    let sweep: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("sweep.json")).unwrap())
            .unwrap();
    let levels = sweep["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 4);
    let memory: Vec<f64> = levels
        .iter()
        .map(|l| l["server_pss_mean_bytes"].as_f64().unwrap())
        .collect();
    assert!(
        memory.windows(2).all(|w| w[1] > w[0]),
        "server memory does not rise with users: {memory:?}"
    );
    let slope = sweep["memory_fit"]["slope_bytes_per_user"]
        .as_f64()
        .unwrap();
    assert!(
        (100.0 * 1024.0..8.0 * 1024.0 * 1024.0).contains(&slope),
        "{slope} bytes per user"
    );
    assert!(levels
        .iter()
        .all(|l| l["commands"].as_array().is_some_and(|c| !c.is_empty())));
    for file in ["sweep-memory.png", "sweep-memory.svg", "sweep.html"] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
    let latency_chart = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("sweep-latency"));
    assert!(latency_chart, "no latency chart in {}", out_dir.display());
}
