//! Aggregated numbers: what the collector hands to the report.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::{OpKey, Phase};
use crate::proto::ErrorKind;

/// Highest latency a histogram tracks: one hour. Anything slower is clamped, which is fine:
/// such an operation has long since failed any threshold.
const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// A histogram from 1 µs to one hour with 3 significant digits (0.1% resolution).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3).expect("static bounds are valid")
}

/// Latencies of successful operations and counts of failed ones.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Successful operations only: a refused connection has no meaningful latency.
    pub latency: Histogram<u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            latency: new_histogram(),
            errors: BTreeMap::new(),
        }
    }
}

impl OpStats {
    pub fn record(&mut self, latency_us: u64, outcome: Result<(), ErrorKind>) {
        match outcome {
            Ok(()) => self.latency.saturating_record(latency_us.max(1)),
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Completed operations, successful or not.
    pub fn count(&self) -> u64 {
        self.latency.len() + self.error_count()
    }

    /// Empties the stats but keeps the histogram's allocation.
    pub fn reset(&mut self) {
        self.latency.reset();
        self.errors.clear();
    }

    pub fn merge(&mut self, other: &OpStats) {
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
    }
}

/// One operation over one interval of the timeline: a few numbers instead of a 184 KiB
/// histogram, so an hour-long run's timeline stays small. The full per-interval histograms are
/// in [`RunMetrics::latency_log`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntervalStats {
    /// Successful operations.
    pub ok: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Latency of the successful operations in µs; all 0 when none succeeded.
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl IntervalStats {
    pub fn from_stats(stats: &OpStats) -> IntervalStats {
        let h = &stats.latency;
        let q = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        IntervalStats {
            ok: h.len(),
            errors: stats.errors.clone(),
            mean_us: if h.is_empty() { 0.0 } else { h.mean() },
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            max_us: if h.is_empty() { 0 } else { h.max() },
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Completed operations, successful or not.
    pub fn count(&self) -> u64 {
        self.ok + self.error_count()
    }
}

/// One second of the run, as the timeline in reports shows it.
#[derive(Debug, Clone)]
pub struct TimelinePoint {
    /// Seconds since the run started (end of the interval).
    pub t_s: u64,
    /// Length of the interval in seconds: 1 except for the last, partial one (rates divide by it).
    pub interval_s: f64,
    /// Live connections at the end of the interval.
    pub connected: u64,
    /// Operations that completed in the interval (absent: none did).
    pub ops: BTreeMap<OpKey, IntervalStats>,
}

/// Everything the collector measured, handed over once when the run ends.
#[derive(Debug, Default)]
pub struct RunMetrics {
    pub by_phase: BTreeMap<(Phase, OpKey), OpStats>,
    pub counters: BTreeMap<&'static str, u64>,
    pub timeline: Vec<TimelinePoint>,
    pub peak_connected: u64,
    /// The timeline's histograms as an HdrHistogram interval log (text, V2+DEFLATE); written
    /// out as `latency.hlog`. Empty when no collector ran.
    pub latency_log: Vec<u8>,
}

impl RunMetrics {
    /// Per-operation totals over the phases given.
    pub fn totals(&self, phases: &[Phase]) -> BTreeMap<OpKey, OpStats> {
        let mut out: BTreeMap<OpKey, OpStats> = BTreeMap::new();
        for ((phase, op), stats) in &self.by_phase {
            if phases.contains(phase) {
                out.entry(*op).or_default().merge(stats);
            }
        }
        out
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}
