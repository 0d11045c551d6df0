//! The collector task and the cheap handle sessions record through.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::latency_log::LatencyLogWriter;
use super::stats::{new_histogram, IntervalStats, OpStats, RunMetrics, TimelinePoint};
use super::{OpKey, Phase, Protocol, Sample};
use crate::proto::ErrorKind;

enum Event {
    Sample(Sample),
    Count(&'static str, u64),
    Finish(oneshot::Sender<RunMetrics>),
}

/// Values sessions update in place and the collector samples once a second.
///
/// `Relaxed` is enough: each counter is read on its own for a report, never used to order
/// other memory accesses.
#[derive(Debug, Default)]
pub struct Gauges {
    pub connected: AtomicU64,
}

impl Gauges {
    pub fn connection_opened(&self) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }
}

/// Cloneable handle: one per session task. Sending never blocks and never fails the session;
/// if the collector is gone the run is ending and the sample is dropped.
#[derive(Clone)]
pub struct MetricsSink {
    tx: mpsc::UnboundedSender<Event>,
    gauges: Arc<Gauges>,
}

impl MetricsSink {
    pub fn record(&self, op: OpKey, latency: Duration, outcome: Result<(), ErrorKind>) {
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let _ = self.tx.send(Event::Sample(Sample {
            op,
            latency_us,
            outcome,
        }));
    }

    pub fn ok(&self, protocol: Protocol, command: &'static str, latency: Duration) {
        self.record(OpKey::new(protocol, command), latency, Ok(()));
    }

    pub fn error(&self, protocol: Protocol, command: &'static str, kind: ErrorKind) {
        self.record(OpKey::new(protocol, command), Duration::ZERO, Err(kind));
    }

    /// Adds to a named counter such as `lmtp.delivered`.
    pub fn count(&self, name: &'static str, n: u64) {
        let _ = self.tx.send(Event::Count(name, n));
    }

    pub fn gauges(&self) -> &Gauges {
        &self.gauges
    }

    /// The gauges for a task that outlives this handle's borrow (the server sampler).
    pub fn shared_gauges(&self) -> Arc<Gauges> {
        self.gauges.clone()
    }
}

/// Owner side of a running collector.
pub struct Collector {
    tx: mpsc::UnboundedSender<Event>,
    task: JoinHandle<()>,
    progress: watch::Receiver<ProgressSnapshot>,
}

impl Collector {
    /// Stops the collector after every sample sent before this call, and returns the numbers.
    pub async fn finish(self) -> RunMetrics {
        let (reply_tx, reply_rx) = oneshot::channel();
        if self.tx.send(Event::Finish(reply_tx)).is_err() {
            return RunMetrics::default();
        }
        let metrics = reply_rx.await.unwrap_or_default();
        let _ = self.task.await;
        metrics
    }

    /// The snapshot of the last cut interval, updated once a second: what a progress line
    /// shows. Reading it never touches a histogram.
    pub fn progress(&self) -> watch::Receiver<ProgressSnapshot> {
        self.progress.clone()
    }
}

/// The last interval in a few numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProgressSnapshot {
    /// Time since the run started, at the end of the interval.
    pub elapsed: Duration,
    pub interval: Duration,
    pub connected: u64,
    /// Operations completed in the interval, successful or not.
    pub ops: u64,
    pub errors: u64,
    /// Over all successful operations of the interval; `None` when there were none.
    pub p99_us: Option<u64>,
}

/// Phase boundaries, as offsets from the run's start.
#[derive(Debug, Clone, Copy)]
pub struct PhasePlan {
    pub ramp_up: Duration,
    pub steady: Duration,
}

impl PhasePlan {
    pub fn phase_at(&self, elapsed: Duration) -> Phase {
        if elapsed < self.ramp_up {
            Phase::RampUp
        } else if elapsed < self.ramp_up + self.steady {
            Phase::Steady
        } else {
            Phase::RampDown
        }
    }
}

/// Starts the collector on the current runtime. The run's clock starts now.
pub fn spawn_collector(phases: PhasePlan) -> (MetricsSink, Collector) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gauges = Arc::new(Gauges::default());
    let sink = MetricsSink {
        tx: tx.clone(),
        gauges: gauges.clone(),
    };
    let (progress_tx, progress) = watch::channel(ProgressSnapshot::default());
    let task = tokio::spawn(collect(rx, gauges, phases, progress_tx));
    (sink, Collector { tx, task, progress })
}

/// The interval being filled. Its histograms are reset, not dropped, at each cut.
struct OpenInterval {
    started: Duration,
    ops: BTreeMap<OpKey, OpStats>,
    /// Every successful operation of the interval, for the progress line's p99.
    all: Histogram<u64>,
}

async fn collect(
    mut rx: mpsc::UnboundedReceiver<Event>,
    gauges: Arc<Gauges>,
    phases: PhasePlan,
    progress: watch::Sender<ProgressSnapshot>,
) {
    let start = Instant::now();
    let mut metrics = RunMetrics::default();
    let mut log = LatencyLogWriter::new(SystemTime::now());
    let mut interval = OpenInterval {
        started: Duration::ZERO,
        ops: BTreeMap::new(),
        all: new_histogram(),
    };
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reply = loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(Event::Sample(sample)) => {
                    let phase = phases.phase_at(start.elapsed());
                    metrics
                        .by_phase
                        .entry((phase, sample.op))
                        .or_default()
                        .record(sample.latency_us, sample.outcome);
                    interval
                        .ops
                        .entry(sample.op)
                        .or_default()
                        .record(sample.latency_us, sample.outcome);
                    if sample.outcome.is_ok() {
                        interval.all.saturating_record(sample.latency_us.max(1));
                    }
                }
                Some(Event::Count(name, n)) => *metrics.counters.entry(name).or_default() += n,
                Some(Event::Finish(reply)) => break Some(reply),
                None => break None,
            },
            _ = tick.tick() => {
                cut_interval(&mut metrics, &mut interval, &mut log, start, &gauges, &progress);
            }
        }
    };
    cut_interval(
        &mut metrics,
        &mut interval,
        &mut log,
        start,
        &gauges,
        &progress,
    );
    if log.skipped > 0 {
        metrics
            .counters
            .insert("metrics.latency_log_skipped", log.skipped);
    }
    metrics.latency_log = log.into_bytes();
    if let Some(reply) = reply {
        let _ = reply.send(metrics);
    }
}

fn cut_interval(
    metrics: &mut RunMetrics,
    interval: &mut OpenInterval,
    log: &mut LatencyLogWriter,
    start: Instant,
    gauges: &Gauges,
    progress: &watch::Sender<ProgressSnapshot>,
) {
    let now = start.elapsed();
    let length = now.saturating_sub(interval.started);
    let connected = gauges.connected();
    metrics.peak_connected = metrics.peak_connected.max(connected);
    let mut ops = BTreeMap::new();
    let (mut ops_total, mut errors_total) = (0, 0);
    for (op, stats) in interval.ops.iter_mut() {
        if stats.count() == 0 {
            continue;
        }
        if !stats.latency.is_empty() {
            log.write(&op.metric_name(), &stats.latency, interval.started, length);
        }
        let summary = IntervalStats::from_stats(stats);
        ops_total += summary.count();
        errors_total += summary.error_count();
        ops.insert(*op, summary);
        stats.reset();
    }
    progress.send_replace(ProgressSnapshot {
        elapsed: now,
        interval: length,
        connected,
        ops: ops_total,
        errors: errors_total,
        p99_us: (!interval.all.is_empty()).then(|| interval.all.value_at_quantile(0.99)),
    });
    interval.all.reset();
    interval.started = now;
    metrics.timeline.push(TimelinePoint {
        t_s: now.as_secs_f64().round() as u64,
        interval_s: length.as_secs_f64(),
        connected,
        ops,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const FETCH: OpKey = OpKey::new(Protocol::Imap, "FETCH");

    #[tokio::test]
    async fn samples_sent_before_finish_are_all_counted() {
        let plan = PhasePlan {
            ramp_up: Duration::ZERO,
            steady: Duration::from_secs(3600),
        };
        let (sink, collector) = spawn_collector(plan);
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    for i in 0..250u64 {
                        sink.record(FETCH, Duration::from_micros(100 + i + w), Ok(()));
                    }
                    sink.error(Protocol::Imap, "FETCH", ErrorKind::Timeout);
                    sink.count("lmtp.delivered", 2);
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let metrics = collector.finish().await;
        let totals = metrics.totals(&Phase::ALL);
        let fetch = &totals[&FETCH];
        assert_eq!(fetch.latency.len(), 1000);
        assert_eq!(fetch.errors[&ErrorKind::Timeout], 4);
        assert_eq!(fetch.count(), 1004);
        assert_eq!(fetch.latency.min(), 100);
        assert_eq!(fetch.latency.max(), 352);
        assert_eq!(metrics.counter("lmtp.delivered"), 8);
        assert_eq!(metrics.by_phase.keys().next().unwrap().0, Phase::Steady);
    }

    /// The interval log holds every successful operation once, under its metric's tag, and the
    /// timeline's compact summaries agree with it.
    #[tokio::test]
    async fn latency_log_and_timeline_add_up_to_the_totals() {
        const LOGIN: OpKey = OpKey::new(Protocol::Imap, "LOGIN");
        let plan = PhasePlan {
            ramp_up: Duration::ZERO,
            steady: Duration::from_secs(3600),
        };
        let (sink, collector) = spawn_collector(plan);
        let progress = collector.progress();
        for i in 0..300u64 {
            sink.record(FETCH, Duration::from_micros(200 + i), Ok(()));
        }
        sink.record(LOGIN, Duration::from_millis(20), Ok(()));
        sink.error(Protocol::Imap, "LOGIN", ErrorKind::Auth);
        // Let at least one one-second cut happen between the two batches.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        for i in 0..200u64 {
            sink.record(FETCH, Duration::from_micros(5000 + i), Ok(()));
        }
        let metrics = collector.finish().await;
        let totals = metrics.totals(&Phase::ALL);

        let intervals = crate::metrics::read_latency_log(&metrics.latency_log).unwrap();
        let mut from_log: BTreeMap<String, u64> = BTreeMap::new();
        for interval in &intervals {
            *from_log.entry(interval.tag.clone().unwrap()).or_default() += interval.histogram.len();
        }
        let intervals = intervals.len();
        assert_eq!(from_log["imap.fetch"], 500);
        assert_eq!(from_log["imap.fetch"], totals[&FETCH].latency.len());
        assert_eq!(from_log["imap.login"], 1, "the failed LOGIN has no latency");
        assert!(
            intervals >= 3,
            "FETCH in two intervals plus LOGIN: {intervals}"
        );

        let fetch_in_timeline: u64 = metrics
            .timeline
            .iter()
            .filter_map(|p| p.ops.get(&FETCH))
            .map(IntervalStats::count)
            .sum();
        assert_eq!(fetch_in_timeline, 500);
        let login_errors: u64 = metrics
            .timeline
            .iter()
            .filter_map(|p| p.ops.get(&LOGIN))
            .map(IntervalStats::error_count)
            .sum();
        assert_eq!(login_errors, 1);
        let last_fetch = metrics
            .timeline
            .iter()
            .rev()
            .find_map(|p| p.ops.get(&FETCH))
            .unwrap();
        assert_eq!((last_fetch.ok, last_fetch.max_us), (200, 5199));

        let snapshot = *progress.borrow();
        assert_eq!((snapshot.ops, snapshot.errors), (200, 0));
        assert!(snapshot.p99_us.unwrap() >= 5000);
    }

    #[test]
    fn phase_boundaries() {
        let plan = PhasePlan {
            ramp_up: Duration::from_secs(5),
            steady: Duration::from_secs(10),
        };
        assert_eq!(plan.phase_at(Duration::from_secs(4)), Phase::RampUp);
        assert_eq!(plan.phase_at(Duration::from_secs(5)), Phase::Steady);
        assert_eq!(plan.phase_at(Duration::from_millis(14_999)), Phase::Steady);
        assert_eq!(plan.phase_at(Duration::from_secs(15)), Phase::RampDown);
    }
}
