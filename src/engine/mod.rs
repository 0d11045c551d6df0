//! The engine: a population of simulated users, a scheduler that decides who connects when,
//! and the sessions that drive protocol clients and report to metrics.
//!
//! Memory follows connections, not users: a user is a few bytes in [`population`] until a
//! session of hers runs, and only a running session owns a task and a socket.

pub mod audit;
pub mod checks;
pub mod delivery;
pub mod message;
pub mod plan;
pub mod population;
pub mod scheduler;
pub mod session;
pub mod timers;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::MetricsSink;
use plan::RunPlan;
use scheduler::RunSignals;

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOutcome {
    /// Stopped early by `interrupt` rather than by reaching the scenario's duration.
    pub interrupted: bool,
    pub elapsed: Duration,
}

/// Runs the plan to its end or until `interrupt` fires. Either way sessions are asked to log
/// out and get the scenario's drain time before they are cut off, so what was measured is kept.
pub async fn run(
    plan: Arc<RunPlan>,
    sink: MetricsSink,
    interrupt: CancellationToken,
) -> EngineOutcome {
    let start = Instant::now();
    let signals = RunSignals {
        stop_starting: CancellationToken::new(),
        wrap_up: CancellationToken::new(),
    };
    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(scheduler::run_sessions(
        plan.clone(),
        sink.clone(),
        signals.clone(),
        start,
    ));
    for (route, spec) in plan.deliveries() {
        delivery::spawn(
            &mut workers,
            plan.clone(),
            route,
            spec,
            sink.clone(),
            signals.clone(),
            start,
        );
    }
    let interrupted = tokio::select! {
        _ = tokio::time::sleep_until(start + plan.duration) => false,
        _ = interrupt.cancelled() => true,
    };
    signals.stop_starting.cancel();
    signals.wrap_up.cancel();
    let drained = tokio::time::timeout(plan.drain_timeout, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        sink.count("drain.cut_off_workers", workers.len() as u64);
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
    if let Some(trace) = &plan.trace {
        trace.flush();
    }
    EngineOutcome {
        interrupted,
        elapsed: start.elapsed(),
    }
}
