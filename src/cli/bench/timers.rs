//! The population model's bookkeeping without the network: memory per scheduled offline user
//! (the engine's `Population` table plus its `TimerHeap`) and how many timer events per
//! second the dispatcher's core loop (pop the due user, claim her, release her, push her next
//! due time) can process.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use rand::RngExt;
use rand_pcg::Pcg32;
use serde::Serialize;

use super::{rss_bytes, write_json};
use crate::engine::population::Population;
use crate::engine::timers::{DueMs, TimerHeap};

#[derive(Debug, Args)]
pub struct TimersArgs {
    /// Simulated users, all offline and scheduled.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u32,
    /// Timer events to process (pop + reschedule each).
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Users come back after a uniform gap of up to this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub max_gap_secs: u32,
    /// Write the JSON result here (default: stdout).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct TimersResult {
    users: u32,
    rss_before_bytes: u64,
    rss_scheduled_bytes: u64,
    /// (rss_scheduled - rss_before) / users: the headline figure.
    bytes_per_offline_user: f64,
    /// Population::heap_bytes + TimerHeap::heap_bytes, per user (the structures' accounting).
    accounted_bytes_per_user: f64,
    events: u64,
    seconds: f64,
    /// CPU time of the (single) thread that ran the loop.
    cpu_seconds: f64,
    /// events / cpu_seconds: the headline figure. Per CPU-second rather than per wall
    /// second, so other processes taking the core do not count against it.
    events_per_second: f64,
    events_per_wall_second: f64,
    /// Simulated time the events covered.
    simulated_seconds: f64,
}

pub fn run(args: TimersArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.users > 0, "--users must be at least 1");
    anyhow::ensure!(args.max_gap_secs > 0, "--max-gap-secs must be at least 1");
    let max_gap_ms = args.max_gap_secs.saturating_mul(1000);
    let mut rng = Pcg32::new(0x0be5_c4ed, 0);
    let rss_before = rss_bytes()?;
    let population = Population::new(args.users, 1, "user{n}@bench.test");
    let entries: Vec<(DueMs, u32)> = (0..args.users)
        .map(|u| (rng.random_range(0..max_gap_ms), u))
        .collect();
    let mut timers = TimerHeap::with_entries(entries);
    let rss_scheduled = rss_bytes()?;
    let accounted = population.heap_bytes() + timers.heap_bytes();

    let (started, cpu_started) = (Instant::now(), crate::metrics::thread_cpu_seconds());
    let mut now: DueMs = 0;
    let mut done = 0u64;
    while done < args.events {
        let Some(due) = timers.next_due() else { break };
        now = now.max(due);
        while let Some(user) = timers.pop_due(now) {
            // What the dispatcher does around a session, without the session.
            if population.try_claim(user) {
                population.release(user);
            }
            let gap = rng.random_range(1..=max_gap_ms);
            timers.push(now.saturating_add(gap), user);
            done += 1;
            if done == args.events {
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = crate::metrics::thread_cpu_seconds() - cpu_started;
    let result = TimersResult {
        users: args.users,
        rss_before_bytes: rss_before,
        rss_scheduled_bytes: rss_scheduled,
        bytes_per_offline_user: rss_scheduled.saturating_sub(rss_before) as f64
            / f64::from(args.users),
        accounted_bytes_per_user: accounted as f64 / f64::from(args.users),
        events: done,
        seconds,
        cpu_seconds,
        events_per_second: done as f64 / cpu_seconds.max(1e-9),
        events_per_wall_second: done as f64 / seconds.max(1e-9),
        simulated_seconds: Duration::from_millis(u64::from(now)).as_secs_f64(),
    };
    // Kept alive until here so the RSS sample above saw them and the loop used them.
    drop((population, timers));
    write_json(&result, args.out.as_deref())
}
