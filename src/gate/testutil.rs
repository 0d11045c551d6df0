//! Synthetic results for the gate's unit tests: small, explicit numbers so every expected
//! value in a test can be checked by hand.

use std::collections::BTreeMap;

use serde_json::json;

use crate::report::results::{CommandStats, RunInfo, Totals, SCHEMA_VERSION};
use crate::report::{Results, ScenarioInfo};

/// A command with the given count, errors and p50/p99 in microseconds (p90 between them,
/// p999 and max above p99).
pub fn command(metric: &str, count: u64, errors: u64, p50: u64, p99: u64) -> CommandStats {
    let (protocol, command) = metric.split_once('.').unwrap();
    CommandStats {
        protocol: protocol.to_string(),
        command: command.to_ascii_uppercase(),
        metric: metric.to_string(),
        count,
        errors,
        errors_by_kind: if errors > 0 {
            BTreeMap::from([("timeout".to_string(), errors)])
        } else {
            BTreeMap::new()
        },
        mean_us: Some((p50 + p99) as f64 / 2.0),
        p50_us: Some(p50),
        p90_us: Some((p50 + p99) / 2),
        p99_us: Some(p99),
        p999_us: Some(p99 + 1),
        max_us: Some(p99 + 2),
    }
}

/// A results file built from `commands`, with totals summed from them.
pub fn results_with(commands: Vec<CommandStats>) -> Results {
    let total: u64 = commands.iter().map(|c| c.count).sum();
    let errors: u64 = commands.iter().map(|c| c.errors).sum();
    Results {
        schema_version: SCHEMA_VERSION,
        mailswarm_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: ScenarioInfo {
            name: "gate".into(),
            file: Some("scenarios/gate.yaml".into()),
            seed: 42,
            digest: "d1g35t".into(),
        },
        run: RunInfo {
            started_at: "2026-12-04T00:00:00.000Z".into(),
            ended_at: "2026-12-04T00:01:00.000Z".into(),
            duration_s: 60.0,
            interrupted: false,
            model: "open".into(),
            peak_connected: 10,
            nofile_soft: 20_000,
            nofile_hard: 20_000,
        },
        commands,
        phases: BTreeMap::new(),
        totals: Totals {
            commands: total,
            errors,
            error_rate: if total == 0 {
                0.0
            } else {
                errors as f64 / total as f64
            },
            errors_by_kind: BTreeMap::new(),
        },
        counters: BTreeMap::new(),
        extra: BTreeMap::new(),
    }
}

/// imap.fetch p50 4 ms / p99 40 ms, imap.login with 1 error in 100, lmtp.data p99 150 ms,
/// 120 deliveries, a clean audit and checks section.
pub fn sample() -> Results {
    let mut r = results_with(vec![
        command("imap.fetch", 1000, 0, 4_000, 40_000),
        command("imap.login", 100, 1, 10_000, 30_000),
        command("lmtp.data", 120, 0, 20_000, 150_000),
    ]);
    r.counters.insert("lmtp.delivered".into(), 120);
    r.extra.insert(
        "audit".into(),
        json!({"accepted": 120, "delivered": 120, "lost": 0, "duplicated": 0, "corrupted": 0}),
    );
    r.extra.insert(
        "checks".into(),
        json!({"violations": 0, "by_id": {"imap.exists-order": 0}}),
    );
    r
}
