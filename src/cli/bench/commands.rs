//! IMAP commands per second of client CPU: N logged-in connections each alternate `NOOP` and
//! `FETCH seq (UID FLAGS RFC822.SIZE)` for a fixed time; commands completed divided by the
//! user+system CPU seconds this process used meanwhile (getrusage). The sink runs in other
//! processes, so its CPU is not counted.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tokio::sync::Barrier;

use super::{write_json, Targets};
use crate::lab::sink::raise_open_files_limit;
use crate::metrics::process_cpu_seconds as cpu_seconds;
use crate::proto::imap::{FetchItem, ImapClient, ImapLimits, SequenceSet};
use crate::proto::net::ConnectOptions;
use crate::proto::Secret;

#[derive(Debug, Args)]
pub struct CommandsArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Connections, each running commands back to back.
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Measured time in seconds (after every connection has logged in).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

#[derive(Debug, Serialize)]
struct CommandsResult {
    connections: usize,
    commands: u64,
    errors: u64,
    wall_seconds: f64,
    cpu_seconds: f64,
    /// commands / cpu_seconds: the headline figure.
    commands_per_core_second: f64,
    commands_per_second: f64,
    /// Mean cores the client kept busy.
    client_cores_used: f64,
    mix: &'static str,
    threads: usize,
}

pub fn run(args: CommandsArgs) -> anyhow::Result<ExitCode> {
    args.targets.check()?;
    raise_open_files_limit().context("raising the open-file limit")?;
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    let result = args.targets.runtime()?.block_on(measure(&args))?;
    write_json(&result, args.targets.out.as_deref())
}

async fn measure(args: &CommandsArgs) -> anyhow::Result<CommandsResult> {
    let mut clients = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let (target, source) = args.targets.pick(i);
        let options = ConnectOptions {
            source,
            ..ConnectOptions::default()
        };
        let mut client = ImapClient::connect(target, &options, ImapLimits::default())
            .await
            .with_context(|| format!("connecting to {target}"))?;
        client
            .login(&format!("user{i}"), &Secret::from("bench"))
            .await?;
        let exists = client.select("INBOX").await?.exists;
        anyhow::ensure!(
            exists > 0,
            "the sink's mailbox is empty: start it with --messages 1 or more"
        );
        clients.push((client, exists));
    }
    let start = Arc::new(Barrier::new(args.connections + 1));
    let commands = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let run_for = Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (mut client, exists)) in clients.into_iter().enumerate() {
        let (start, commands, errors) = (start.clone(), commands.clone(), errors.clone());
        tasks.spawn(async move {
            let items = [FetchItem::Uid, FetchItem::Flags, FetchItem::Rfc822Size];
            let mut seq = (i as u32 % exists) + 1;
            let (mut done, mut failed) = (0u64, 0u64);
            start.wait().await;
            let end = Instant::now() + run_for;
            while Instant::now() < end {
                let ok = if done % 2 == 0 {
                    client.noop().await.is_ok()
                } else {
                    let set = SequenceSet::try_from(seq).expect("seq is at least 1");
                    seq = seq % exists + 1;
                    client.fetch(&set, &items).await.is_ok()
                };
                if ok {
                    done += 1;
                } else {
                    failed += 1;
                    break;
                }
            }
            commands.fetch_add(done, Ordering::Relaxed);
            errors.fetch_add(failed, Ordering::Relaxed);
            let _ = client.logout().await;
        });
    }
    start.wait().await;
    let (wall0, cpu0) = (Instant::now(), cpu_seconds());
    // Each task stops at its deadline; the LOGOUTs after it are a few hundred commands at
    // most, inside the measured CPU but not counted, which errs on the low side.
    while let Some(joined) = tasks.join_next().await {
        joined.context("benchmark task")?;
    }
    let (wall, cpu) = (wall0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let commands = commands.load(Ordering::Relaxed);
    Ok(CommandsResult {
        connections: args.connections,
        commands,
        errors: errors.load(Ordering::Relaxed),
        wall_seconds: wall,
        cpu_seconds: cpu,
        commands_per_core_second: commands as f64 / cpu.max(1e-9),
        commands_per_second: commands as f64 / wall.max(1e-9),
        client_cores_used: cpu / wall.max(1e-9),
        mix: "alternating NOOP and FETCH n (UID FLAGS RFC822.SIZE)",
        threads: args.targets.threads,
    })
}
