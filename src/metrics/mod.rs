//! Latency histograms, error counts and the per-second timeline of a run.
//!
//! Sessions never touch a histogram: they send small [`Sample`]s through a [`MetricsSink`] to one
//! collector task that owns every histogram. That keeps a per-connection task small (a
//! histogram is ~184 KiB, far too much to hold per connection), makes merging trivial, and lets
//! the collector cut the per-second timeline without locks. Each cut keeps a compact summary per
//! operation and appends the interval's histograms to an HdrHistogram interval log, so memory
//! does not grow with 184 KiB per operation per second. `server` samples the server under test.

mod collector;
pub mod latency_log;
pub mod server;
mod stats;

pub use collector::{spawn_collector, Collector, Gauges, MetricsSink, PhasePlan, ProgressSnapshot};
pub use latency_log::{read_latency_log, LatencyLogWriter, LoggedInterval};
pub use server::{
    MemoryKind, RunningSampler, SamplerError, ServerRecording, ServerSample, ServerSampler,
    ServerTarget,
};
pub use stats::{new_histogram, IntervalStats, OpStats, RunMetrics, TimelinePoint};

use serde::Serialize;

use crate::proto::ErrorKind;

/// The wire protocol an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Imap,
    Smtp,
    Lmtp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Smtp => "smtp",
            Protocol::Lmtp => "lmtp",
        }
    }
}

/// What was measured: a protocol and a command name as the protocol spells it (`FETCH`,
/// `UID FETCH`, `DATA`), plus the pseudo-commands `CONNECT` (TCP + greeting) and `TLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpKey {
    pub protocol: Protocol,
    pub command: &'static str,
}

impl OpKey {
    pub const fn new(protocol: Protocol, command: &'static str) -> OpKey {
        OpKey { protocol, command }
    }

    /// `imap.fetch`: the name thresholds and reports use.
    pub fn metric_name(&self) -> String {
        format!(
            "{}.{}",
            self.protocol.as_str(),
            self.command.to_ascii_lowercase().replace(' ', "_")
        )
    }
}

/// Where in the run a sample fell. Warm-up and cool-down samples are kept apart so that
/// steady-state numbers are not diluted by an empty server or a draining one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    RampUp,
    Steady,
    RampDown,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::RampUp, Phase::Steady, Phase::RampDown];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::RampUp => "ramp_up",
            Phase::Steady => "steady",
            Phase::RampDown => "ramp_down",
        }
    }
}

/// One finished operation.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub op: OpKey,
    /// Microseconds from the operation's intended start (open model) or its actual start.
    pub latency_us: u64,
    pub outcome: Result<(), ErrorKind>,
}

/// User plus system CPU time this process has used so far.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
pub fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct we pass.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t);
    }
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}
