//! The collector task and the cheap handle sessions record through.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::stats::{OpStats, RunMetrics, TimelinePoint};
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
    let task = tokio::spawn(collect(rx, gauges, phases));
    (sink, Collector { tx, task })
}

async fn collect(mut rx: mpsc::UnboundedReceiver<Event>, gauges: Arc<Gauges>, phases: PhasePlan) {
    let start = Instant::now();
    let mut metrics = RunMetrics::default();
    let mut interval: BTreeMap<OpKey, OpStats> = BTreeMap::new();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
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
                        .entry(sample.op)
                        .or_default()
                        .record(sample.latency_us, sample.outcome);
                }
                Some(Event::Count(name, n)) => *metrics.counters.entry(name).or_default() += n,
                Some(Event::Finish(reply)) => {
                    cut_interval(&mut metrics, &mut interval, start, &gauges);
                    let _ = reply.send(metrics);
                    return;
                }
                None => return,
            },
            _ = tick.tick() => cut_interval(&mut metrics, &mut interval, start, &gauges),
        }
    }
}

fn cut_interval(
    metrics: &mut RunMetrics,
    interval: &mut BTreeMap<OpKey, OpStats>,
    start: Instant,
    gauges: &Gauges,
) {
    let connected = gauges.connected();
    metrics.peak_connected = metrics.peak_connected.max(connected);
    metrics.timeline.push(TimelinePoint {
        t_s: start.elapsed().as_secs_f64().round() as u64,
        connected,
        ops: std::mem::take(interval),
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
