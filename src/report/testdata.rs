//! Synthetic runs for the report's tests: known numbers in, known numbers out.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::{
    IntervalStats, LatencyLogWriter, MemoryKind, OpKey, OpStats, Phase, Protocol, RunMetrics,
    ServerSample, TimelinePoint,
};
use crate::proto::ErrorKind;
use crate::report::{Results, RunContext, ScenarioInfo};

pub const FETCH: OpKey = OpKey::new(Protocol::Imap, "FETCH");
pub const LOGIN: OpKey = OpKey::new(Protocol::Imap, "LOGIN");

/// 60 s: users ramp 0→600, FETCH latency grows with them, a burst of timeouts at 40 s.
pub fn synthetic_run() -> (RunMetrics, Vec<ServerSample>) {
    let mut metrics = RunMetrics::default();
    let mut server = Vec::new();
    let mut log =
        LatencyLogWriter::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_357_350));
    for t in 1..=60u64 {
        let users = (t * 10).min(600);
        let mut interval = OpStats::default();
        for i in 0..(users / 2) {
            interval.record(500 + t * 20 + i % 50, Ok(()));
        }
        if (40..45).contains(&t) {
            for _ in 0..5 {
                interval.record(0, Err(ErrorKind::Timeout));
            }
        }
        let mut login = OpStats::default();
        login.record(15_000 + t * 100, Ok(()));
        metrics
            .by_phase
            .entry((Phase::Steady, FETCH))
            .or_default()
            .merge(&interval);
        metrics
            .by_phase
            .entry((Phase::Steady, LOGIN))
            .or_default()
            .merge(&login);
        let start = Duration::from_secs(t - 1);
        log.write(
            "imap.fetch",
            &interval.latency,
            start,
            Duration::from_secs(1),
        );
        log.write("imap.login", &login.latency, start, Duration::from_secs(1));
        let mut ops = BTreeMap::new();
        ops.insert(FETCH, IntervalStats::from_stats(&interval));
        ops.insert(LOGIN, IntervalStats::from_stats(&login));
        metrics.timeline.push(TimelinePoint {
            t_s: t,
            interval_s: 1.0,
            connected: users,
            ops,
        });
        // 200 MB base + 630,000 bytes per user, with a little alternating noise.
        let noise = if t % 2 == 0 { 40_000 } else { -40_000 };
        server.push(ServerSample {
            t_s: t as f64,
            pss_bytes: (200_000_000 + 630_000 * users as i64 + noise) as u64,
            kind: MemoryKind::Pss,
            rss_fallback: 0,
            cpu_s: Some(t as f64 * 0.3),
            processes: Some(users + 5),
            connected: users,
        });
    }
    metrics.peak_connected = 600;
    metrics.latency_log = log.into_bytes();
    (metrics, server)
}

/// The results of [`synthetic_run`], as the engine would build them.
pub fn synthetic_results(metrics: &RunMetrics, name: &str) -> Results {
    let ctx = RunContext {
        scenario: ScenarioInfo {
            name: name.to_string(),
            file: Some("scenarios/ramp.yaml".into()),
            seed: 42,
            digest: "sha256:abc".into(),
        },
        started: UNIX_EPOCH + Duration::from_secs(1_796_357_350),
        ended: UNIX_EPOCH + Duration::from_secs(1_796_357_410),
        interrupted: false,
        model: "closed".into(),
        has_ramps: false,
        nofile_soft: 20_000,
        nofile_hard: 20_000,
    };
    Results::build(&ctx, metrics)
}
