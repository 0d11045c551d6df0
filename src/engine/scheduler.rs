//! Who connects when. The closed model keeps N session slots busy; the open model starts
//! sessions at an arrival rate whatever the server does. Both ramp linearly and stop starting
//! sessions at the end; running sessions then get `drain` time to log out.

use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp};
use rand_pcg::Pcg32;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::RunPlan;
use super::session::{self, SessionCtx, SessionEnd};
use crate::metrics::MetricsSink;
use crate::scenario::Model;

/// Signals shared by everything the scheduler starts.
#[derive(Clone)]
pub struct RunSignals {
    /// Fires when no new session may start (end of the run, or Ctrl-C).
    pub stop_starting: CancellationToken,
    /// Fires when running sessions should wrap up and log out.
    pub wrap_up: CancellationToken,
}

/// Backoff after a failed connection: 100 ms doubling to 5 s, with full jitter so that
/// thousands of slots do not reconnect in lock-step after a server restart.
fn backoff(failures: u32, rng: &mut Pcg32) -> Duration {
    let cap = 100u64.saturating_mul(1 << failures.min(6)).min(5_000);
    Duration::from_millis(rng.random_range(cap / 2..=cap))
}

/// Runs the session schedule until `signals.stop_starting` fires, then waits for sessions.
pub async fn run_sessions(
    plan: Arc<RunPlan>,
    sink: MetricsSink,
    signals: RunSignals,
    start: Instant,
) {
    if plan.behaviours.is_empty() {
        return;
    }
    let mut sessions = JoinSet::new();
    match plan.model {
        Model::Closed => {
            for slot in 0..plan.sessions {
                let delay = ramp_offset(plan.ramp_up, slot, plan.sessions);
                let stop_at = stop_offset(&plan, slot);
                sessions.spawn(closed_slot(
                    plan.clone(),
                    sink.clone(),
                    signals.clone(),
                    start + delay,
                    start + stop_at,
                    slot,
                ));
            }
        }
        Model::Open => {
            open_arrivals(&plan, &sink, &signals, start, &mut sessions).await;
        }
        Model::Population => {
            super::timers::run_population(&plan, &sink, &signals, start, &mut sessions).await;
        }
    }
    while sessions.join_next().await.is_some() {}
}

/// Slot `i` of `n` starts `ramp * i / n` after the run starts: a linear ramp.
fn ramp_offset(ramp: Duration, i: u64, n: u64) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    ramp.mul_f64(i as f64 / n as f64)
}

/// Slot `i` stops starting sessions during the ramp-down, the last slots first.
fn stop_offset(plan: &RunPlan, i: u64) -> Duration {
    let steady_end = plan.duration - plan.ramp_down;
    let n = plan.sessions.max(1);
    steady_end + plan.ramp_down.mul_f64((n - i) as f64 / n as f64)
}

async fn closed_slot(
    plan: Arc<RunPlan>,
    sink: MetricsSink,
    signals: RunSignals,
    begin: Instant,
    stop_at: Instant,
    slot: u64,
) {
    let mut rng = Pcg32::new(plan.seed() ^ 0xc105_ed00, slot);
    let mut failures = 0u32;
    tokio::select! {
        _ = tokio::time::sleep_until(begin) => {}
        _ = signals.stop_starting.cancelled() => return,
    }
    while Instant::now() < stop_at && !signals.stop_starting.is_cancelled() {
        let Some(user) = plan.population.claim_random(&mut rng) else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ctx = SessionCtx::new(&plan, &sink, &signals, user, Instant::now());
        let end = session::run(ctx).await;
        plan.population.release(user);
        if end == SessionEnd::ConnectFailed {
            failures += 1;
            let pause = backoff(failures, &mut rng);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = signals.stop_starting.cancelled() => return,
            }
        } else {
            failures = 0;
        }
    }
}

/// Arrival rate at `elapsed`: ramps up linearly, holds, ramps down linearly.
fn rate_at(plan: &RunPlan, elapsed: Duration) -> f64 {
    let full = plan.arrival_rate;
    let down_start = plan.duration.saturating_sub(plan.ramp_down);
    if elapsed < plan.ramp_up {
        full * elapsed.as_secs_f64() / plan.ramp_up.as_secs_f64()
    } else if elapsed >= down_start && !plan.ramp_down.is_zero() {
        let left = plan.duration.saturating_sub(elapsed).as_secs_f64();
        full * left / plan.ramp_down.as_secs_f64()
    } else {
        full
    }
}

async fn open_arrivals(
    plan: &Arc<RunPlan>,
    sink: &MetricsSink,
    signals: &RunSignals,
    start: Instant,
    sessions: &mut JoinSet<()>,
) {
    let permits = Arc::new(Semaphore::new(plan.sessions as usize));
    let mut rng = Pcg32::seed_from_u64(plan.seed() ^ 0x0be0_a771);
    let unit = Exp::new(1.0).expect("rate 1 is valid");
    let mut intended = start;
    loop {
        // A Poisson process with a time-varying rate: draw a unit-rate gap and scale it by the
        // current rate (a floor keeps the ramp's first arrival from waiting forever).
        let rate = rate_at(plan, intended - start).max(plan.arrival_rate / 1000.0);
        let gap: f64 = unit.sample(&mut rng) / rate;
        intended += Duration::from_secs_f64(gap);
        if intended - start >= plan.duration {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(intended) => {}
            _ = signals.stop_starting.cancelled() => return,
        }
        // Reap finished sessions so the set does not grow for the whole run.
        while sessions.try_join_next().is_some() {}
        let Some(user) = plan.population.claim_random(&mut rng) else {
            sink.count("sessions.no_free_user", 1);
            continue;
        };
        let (plan, sink, signals, permits) =
            (plan.clone(), sink.clone(), signals.clone(), permits.clone());
        sessions.spawn(async move {
            // Waiting for a permit is part of the latency: the session was due at `intended`.
            let permit = tokio::select! {
                p = permits.acquire_owned() => p.expect("semaphore is never closed"),
                _ = signals.stop_starting.cancelled() => {
                    plan.population.release(user);
                    return;
                }
            };
            let ctx = SessionCtx::new(&plan, &sink, &signals, user, intended);
            session::run(ctx).await;
            plan.population.release(user);
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_are_linear() {
        let ramp = Duration::from_secs(10);
        assert_eq!(ramp_offset(ramp, 0, 10), Duration::ZERO);
        assert_eq!(ramp_offset(ramp, 5, 10), Duration::from_secs(5));
        assert_eq!(ramp_offset(Duration::ZERO, 5, 10), Duration::ZERO);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut rng = Pcg32::seed_from_u64(3);
        let first = backoff(1, &mut rng);
        assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&first));
        for _ in 0..100 {
            let late = backoff(30, &mut rng);
            assert!((Duration::from_millis(2_500)..=Duration::from_secs(5)).contains(&late));
        }
    }
}
