//! The population model's timer structure: every offline user is one 8-byte entry
//! `(due, user)` in a binary heap, not a task. A dispatcher pops due users, starts their
//! sessions, and takes them back with their next due time when the session ends.
//!
//! At a million users that is about 8 MB of heap plus the population table (about 4 bytes a
//! user), against ~715 bytes for even a sleeping tokio task per user.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use rand_pcg::Pcg32;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::plan::RunPlan;
use super::population::{gap_rng, UserId};
use super::scheduler::RunSignals;
use super::session::{self, SessionCtx};
use crate::metrics::MetricsSink;

/// Due times in milliseconds since the run started: u32 covers 49 days.
pub type DueMs = u32;

/// Offline users ordered by when they come back.
#[derive(Default)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<(DueMs, UserId)>>,
}

impl TimerHeap {
    pub fn with_entries(entries: Vec<(DueMs, UserId)>) -> TimerHeap {
        TimerHeap {
            heap: BinaryHeap::from(entries.into_iter().map(Reverse).collect::<Vec<_>>()),
        }
    }

    pub fn push(&mut self, due: DueMs, user: UserId) {
        self.heap.push(Reverse((due, user)));
    }

    pub fn next_due(&self) -> Option<DueMs> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// Removes and returns the earliest user if she is due at `now`.
    pub fn pop_due(&mut self, now: DueMs) -> Option<UserId> {
        match self.heap.peek() {
            Some(Reverse((due, _))) if *due <= now => self.heap.pop().map(|Reverse((_, u))| u),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Heap bytes held (capacity, not length: that is what the allocator gave us).
    pub fn heap_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Reverse<(DueMs, UserId)>>()
    }
}

fn due_ms(d: Duration) -> DueMs {
    DueMs::try_from(d.as_millis()).unwrap_or(DueMs::MAX)
}

/// Where each user's first session falls: spread over the ramp-up when there is one (users
/// come online as the day starts), otherwise over her behaviour's mean offline time (the run
/// joins a population already in its rhythm).
fn first_due(plan: &RunPlan, user: UserId, rng: &mut Pcg32) -> DueMs {
    let spread = if !plan.ramp_up.is_zero() {
        plan.ramp_up
    } else {
        let mean = plan
            .behaviour_of(user)
            .map(|i| plan.behaviours[i].offline().mean())
            .unwrap_or(0.0);
        Duration::from_secs_f64(mean.max(0.001))
    };
    due_ms(spread.mul_f64(rng.random_range(0.0..1.0)))
}

pub async fn run_population(
    plan: &Arc<RunPlan>,
    sink: &MetricsSink,
    signals: &RunSignals,
    start: Instant,
    sessions: &mut JoinSet<()>,
) {
    let mut rng = Pcg32::new(plan.seed() ^ 0x0f_f11e, 0);
    let users = plan.population.count();
    let end = due_ms(plan.duration.saturating_sub(plan.ramp_down));
    let mut timers = TimerHeap::with_entries(
        (0..users)
            .map(|u| (first_due(plan, u, &mut rng), u))
            .filter(|(due, _)| *due < end)
            .collect(),
    );
    sink.count("population.scheduled_at_start", timers.len() as u64);
    let permits = Arc::new(Semaphore::new(plan.sessions.max(1) as usize));
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<(DueMs, UserId)>();
    loop {
        let now = due_ms(start.elapsed());
        while let Some(user) = timers.pop_due(now) {
            if !plan.population.try_claim(user) {
                continue;
            }
            let due = start + Duration::from_millis(u64::from(now));
            spawn_session(
                plan, sink, signals, &permits, &back_tx, start, user, due, sessions,
            );
        }
        while sessions.try_join_next().is_some() {}
        let wake = timers
            .next_due()
            .map(|d| start + Duration::from_millis(u64::from(d)));
        tokio::select! {
            _ = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            back = back_rx.recv() => {
                if let Some((due, user)) = back {
                    if due < end {
                        timers.push(due, user);
                    }
                }
            }
            _ = signals.stop_starting.cancelled() => return,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_session(
    plan: &Arc<RunPlan>,
    sink: &MetricsSink,
    signals: &RunSignals,
    permits: &Arc<Semaphore>,
    back: &mpsc::UnboundedSender<(DueMs, UserId)>,
    start: Instant,
    user: UserId,
    due: Instant,
    sessions: &mut JoinSet<()>,
) {
    let (plan, sink, signals, permits, back) = (
        plan.clone(),
        sink.clone(),
        signals.clone(),
        permits.clone(),
        back.clone(),
    );
    sessions.spawn(async move {
        let permit = tokio::select! {
            p = permits.acquire_owned() => p.expect("semaphore is never closed"),
            _ = signals.stop_starting.cancelled() => {
                plan.population.release(user);
                return;
            }
        };
        let ctx = SessionCtx::new(&plan, &sink, &signals, user, due);
        let session_no = ctx.session;
        session::run(ctx).await;
        drop(permit);
        plan.population.release(user);
        let offline = plan
            .behaviour_of(user)
            .map(|i| plan.behaviours[i].offline())
            .map(|d| d.sample(&mut gap_rng(plan.seed(), user, session_no)).0)
            .unwrap_or(Duration::from_secs(3600));
        let _ = back.send((due_ms(start.elapsed() + offline), user));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_due_order_only_when_due() {
        let mut t = TimerHeap::with_entries(vec![(30, 3), (10, 1), (20, 2)]);
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25), Some(1));
        assert_eq!(t.pop_due(25), Some(2));
        assert_eq!(t.pop_due(25), None);
        t.push(15, 9);
        assert_eq!(t.next_due(), Some(15));
        assert_eq!(t.pop_due(100), Some(9));
        assert_eq!(t.pop_due(100), Some(3));
        assert!(t.is_empty());
    }

    #[test]
    fn a_million_offline_users_cost_a_few_bytes_each() {
        let t = TimerHeap::with_entries((0..1_000_000).map(|u| (u % 7_919, u)).collect());
        assert_eq!(t.len(), 1_000_000);
        assert!(t.heap_bytes() <= 8 * 1_000_000, "{}", t.heap_bytes());
    }
}
