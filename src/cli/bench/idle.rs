//! Client memory per idle IMAP connection: N connections each log in, SELECT and IDLE with
//! mailswarm's own `ImapClient`; the process RSS at N idle connections minus the RSS before
//! the first one, divided by N. Kernel socket buffers are not in RSS, so this is what the
//! client itself costs: task, client state, runtime registration, allocator overhead.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{rss_bytes, write_json, Targets};
use crate::lab::sink::raise_open_files_limit;
use crate::proto::imap::{ImapClient, ImapLimits};
use crate::proto::net::ConnectOptions;
use crate::proto::Secret;

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Idle connections to hold.
    #[arg(long, default_value_t = 15_000)]
    pub connections: usize,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Give up when not all connections are idle after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

#[derive(Debug, Serialize)]
struct IdleResult {
    connections: usize,
    failed: usize,
    rss_before_bytes: u64,
    rss_idle_bytes: u64,
    /// (rss_idle - rss_before) / connections: the headline figure.
    bytes_per_connection: f64,
    /// The same after `malloc_trim(0)`: how much of the figure is memory the allocator kept
    /// from the connecting phase rather than live state.
    bytes_per_connection_after_trim: f64,
    /// What `ImapClient::heap_bytes` reports, averaged (the client's own accounting).
    client_heap_bytes_per_connection: f64,
    /// Size of one connection task's future (held inline in its tokio task).
    task_future_bytes: usize,
    /// `size_of::<ImapClient<TcpStream>>()`, part of the future above.
    client_struct_bytes: usize,
    setup_seconds: f64,
    sinks: usize,
    sources: usize,
    threads: usize,
}

/// What every connection task reports to the driver.
struct Shared {
    idle: AtomicUsize,
    failed: AtomicUsize,
    client_heap: AtomicUsize,
    changed: Notify,
    /// Only this many connections are logging in at once (the permit is dropped at IDLE).
    setup: Semaphore,
    stop: CancellationToken,
}

pub fn run(args: IdleArgs) -> anyhow::Result<ExitCode> {
    args.targets.check()?;
    let (soft, _) = raise_open_files_limit().context("raising the open-file limit")?;
    anyhow::ensure!(
        (args.connections as u64) + 100 < soft,
        "{} connections need more file descriptors than the limit of {soft}",
        args.connections
    );
    let result = args.targets.runtime()?.block_on(measure(&args))?;
    write_json(&result, args.targets.out.as_deref())
}

async fn measure(args: &IdleArgs) -> anyhow::Result<IdleResult> {
    let shared_all = Arc::new(Shared {
        idle: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        client_heap: AtomicUsize::new(0),
        changed: Notify::new(),
        setup: Semaphore::new(args.concurrency.max(1)),
        stop: CancellationToken::new(),
    });
    // One full connection first, so lazily initialized state (runtime timers, codec tables,
    // allocator arenas) is in the baseline rather than in the first connection's share.
    warm_up(&args.targets).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_bytes()?;

    let started = Instant::now();
    let mut task_future_bytes = 0;
    for i in 0..args.connections {
        let (target, source) = args.targets.pick(i);
        let shared = shared_all.clone();
        // Set-up happens inside the task, as in a session task. (Boxing the set-up future
        // shrinks the task but not the RSS: the freed boxes stay as holes between tasks.)
        let task = async move {
            let client = setup(i, target, source, &shared).await;
            hold_idle(client, shared).await
        };
        task_future_bytes = std::mem::size_of_val(&task);
        tokio::spawn(task);
    }
    let deadline = started + Duration::from_secs(args.timeout_secs);
    loop {
        let notified = shared_all.changed.notified();
        let (idle, failed) = (
            shared_all.idle.load(Ordering::Acquire),
            shared_all.failed.load(Ordering::Acquire),
        );
        if idle + failed >= args.connections {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(
            !left.is_zero(),
            "only {idle} of {} connections idle after {} s ({failed} failed)",
            args.connections,
            args.timeout_secs
        );
        let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), notified).await;
    }
    let setup_seconds = started.elapsed().as_secs_f64();
    let idle = shared_all.idle.load(Ordering::Acquire);
    anyhow::ensure!(idle > 0, "no connection reached IDLE");
    // Let the last responses' buffers be released before sampling.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_bytes()?;
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    let rss_trimmed = rss_bytes()?;
    shared_all.stop.cancel();
    let per = |rss: u64| rss.saturating_sub(rss_before) as f64 / idle as f64;
    Ok(IdleResult {
        connections: idle,
        failed: shared_all.failed.load(Ordering::Acquire),
        rss_before_bytes: rss_before,
        rss_idle_bytes: rss_idle,
        bytes_per_connection: per(rss_idle),
        bytes_per_connection_after_trim: per(rss_trimmed),
        client_heap_bytes_per_connection: shared_all.client_heap.load(Ordering::Acquire) as f64
            / idle as f64,
        task_future_bytes,
        client_struct_bytes: std::mem::size_of::<ImapClient<tokio::net::TcpStream>>(),
        setup_seconds,
        sinks: args.targets.imap.len(),
        sources: args.targets.sources.len().max(1),
        threads: args.targets.threads,
    })
}

async fn warm_up(targets: &Targets) -> anyhow::Result<()> {
    let (target, source) = targets.pick(0);
    let mut client = open_idle(0, target, source).await?;
    client.done().await.context("warm-up DONE")?;
    client.logout().await.context("warm-up LOGOUT")?;
    Ok(())
}

/// Connects, logs in as `user{i}`, selects INBOX and enters IDLE.
async fn open_idle(
    i: usize,
    target: std::net::SocketAddr,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<ImapClient<tokio::net::TcpStream>> {
    let options = ConnectOptions {
        source,
        ..ConnectOptions::default()
    };
    let mut client = ImapClient::connect(target, &options, ImapLimits::default())
        .await
        .with_context(|| format!("connecting to {target}"))?;
    let password = Secret::from("bench");
    client.login(&format!("user{i}"), &password).await?;
    client.select("INBOX").await?;
    client.idle().await?;
    Ok(client)
}

/// Opens one idle connection under a setup permit; `None` (counted) when it fails.
async fn setup(
    i: usize,
    target: std::net::SocketAddr,
    source: Option<std::net::IpAddr>,
    shared: &Shared,
) -> Option<ImapClient<tokio::net::TcpStream>> {
    let permit = shared.setup.acquire().await.expect("never closed");
    let opened = open_idle(i, target, source).await;
    drop(permit);
    match opened {
        Ok(client) => Some(client),
        Err(err) => {
            if shared.failed.fetch_add(1, Ordering::AcqRel) == 0 {
                eprintln!("bench idle: connection {i} failed: {err:#}");
            }
            shared.changed.notify_one();
            None
        }
    }
}

/// Holds the connection the way a session holds it: waiting for a push, or for the end.
async fn hold_idle(client: Option<ImapClient<tokio::net::TcpStream>>, shared: Arc<Shared>) {
    let Some(mut client) = client else { return };
    shared
        .client_heap
        .fetch_add(client.heap_bytes(), Ordering::AcqRel);
    shared.idle.fetch_add(1, Ordering::AcqRel);
    shared.changed.notify_one();
    loop {
        tokio::select! {
            event = client.wait_for_event(Duration::from_secs(3600)) => {
                if event.is_err() {
                    return;
                }
            }
            _ = shared.stop.cancelled() => return,
        }
    }
}
