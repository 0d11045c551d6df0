//! The server's side of a run in a few numbers: peak memory, CPU used and, above all, the
//! memory each connected user costs. Stored in `server.json` (with the samples) and in
//! `results.extra["server"]`, where `compare` and thresholds (`server.bytes_per_user`) read it.

use serde::{Deserialize, Serialize};

use super::plots::fit_line;
use super::results::Results;
use crate::metrics::{MemoryKind, ServerSample};

/// Key of the section in `results.extra`.
pub const EXTRA_KEY: &str = "server";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSummary {
    pub memory_kind: MemoryKind,
    pub samples: usize,
    pub first_bytes: u64,
    pub peak_bytes: u64,
    pub last_bytes: u64,
    /// Least-squares slope of memory against connected users; absent when the user count never
    /// changed.
    pub bytes_per_user: Option<f64>,
    pub fit_intercept_bytes: Option<f64>,
    pub fit_r_squared: Option<f64>,
    pub peak_connected: u64,
    pub peak_processes: Option<u64>,
    /// CPU seconds the server used between the first and the last sample.
    pub cpu_s: Option<f64>,
    /// Most processes in one sample whose RSS stood in for an unreadable PSS.
    pub rss_fallback_max: u64,
}

impl ServerSummary {
    /// `None` without samples.
    pub fn from_samples(samples: &[ServerSample]) -> Option<ServerSummary> {
        let first = samples.first()?;
        let last = samples.last()?;
        let points: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| (s.connected as f64, s.pss_bytes as f64))
            .collect();
        let fit = fit_line(&points);
        let round = |v: f64| (v * 10.0).round() / 10.0;
        Some(ServerSummary {
            memory_kind: first.kind,
            samples: samples.len(),
            first_bytes: first.pss_bytes,
            peak_bytes: samples.iter().map(|s| s.pss_bytes).max().unwrap_or(0),
            last_bytes: last.pss_bytes,
            bytes_per_user: fit.map(|f| round(f.slope)),
            fit_intercept_bytes: fit.map(|f| round(f.intercept)),
            fit_r_squared: fit.map(|f| (f.r_squared * 10_000.0).round() / 10_000.0),
            peak_connected: samples.iter().map(|s| s.connected).max().unwrap_or(0),
            peak_processes: samples.iter().filter_map(|s| s.processes).max(),
            cpu_s: match (first.cpu_s, last.cpu_s) {
                (Some(a), Some(b)) => Some(((b - a).max(0.0) * 100.0).round() / 100.0),
                _ => None,
            },
            rss_fallback_max: samples.iter().map(|s| s.rss_fallback).max().unwrap_or(0),
        })
    }

    /// What the numbers cannot be trusted for, in one sentence each.
    pub fn caveats(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.rss_fallback_max > 0 {
            out.push(format!(
                "PSS was unreadable for up to {} processes (smaps_rollup needs the right to \
                 trace them: run as root or as the server's user); their RSS was counted, \
                 which counts shared pages once per process and overstates memory.",
                self.rss_fallback_max
            ));
        }
        match self.memory_kind {
            MemoryKind::Cgroup => out.push(
                "Memory is the cgroup's charged memory, which includes page cache the server \
                 caused."
                    .to_string(),
            ),
            MemoryKind::Command => {
                out.push("Memory is what the user's command reported.".to_string())
            }
            MemoryKind::Pss => {}
        }
        if self.bytes_per_user.is_none() {
            out.push("No per-user cost: the number of connected users never changed.".to_string());
        }
        out
    }
}

/// Stores the summary in `results.extra["server"]` (replacing an older one). Call it before
/// evaluating thresholds so `server.bytes_per_user` can be gated on.
pub fn attach_server_summary(results: &mut Results, samples: &[ServerSample]) {
    if let Some(summary) = ServerSummary::from_samples(samples) {
        if let Ok(value) = serde_json::to_value(summary) {
            results.extra.insert(EXTRA_KEY.to_string(), value);
        }
    }
}

/// `server.json`: the summary and every sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFile {
    pub summary: ServerSummary,
    pub samples: Vec<ServerSample>,
}
