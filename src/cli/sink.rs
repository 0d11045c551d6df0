//! `mailswarm sink`: runs the benchmark fixture of `lab::sink` until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::lab::sink::{raise_open_files_limit, Sink, SinkConfig, MAX_BODY_BYTES, MAX_MESSAGES};

use super::EXIT_OK;

/// Benchmark fixture: a minimal, fast IMAP/LMTP responder to measure mailswarm's own limits
///
/// BENCHMARK FIXTURE, NOT A MAIL SERVER: it accepts any login, answers every mailbox with the
/// same fixed messages, forgets STORE, discards APPEND and LMTP deliveries, and matches every
/// SEARCH. Results against it say how fast mailswarm is, nothing about any server; test
/// servers against the real Dovecot/Postfix of `mailswarm lab`.
///
/// Only loopback addresses can be bound. One process holds as many connections as its
/// open-file limit allows (the soft limit is raised to the hard one); run several processes
/// on different ports for more. Prints `sink ready imap=ADDR lmtp=ADDR` on stdout once
/// listening (port 0 picks a free port).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SinkArgs {
    /// IMAP listen address on loopback, e.g. 127.0.0.1:11143.
    #[arg(long, value_name = "ADDR")]
    pub imap: Option<SocketAddr>,
    /// LMTP listen address on loopback, e.g. 127.0.0.1:11024.
    #[arg(long, value_name = "ADDR")]
    pub lmtp: Option<SocketAddr>,
    /// Messages in every mailbox (UIDs 1..=N, UIDVALIDITY 1).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_MESSAGES)))]
    pub messages: u32,
    /// Approximate body size in bytes of the fixed message.
    #[arg(long, default_value_t = 2048, value_parser = parse_body_bytes)]
    pub body_bytes: usize,
    /// Connections open at once; further clients wait in the listen backlog.
    #[arg(long, default_value_t = 19_500)]
    pub max_connections: usize,
    /// Worker threads (1 runs everything on one thread, the cheapest for several processes).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

fn parse_body_bytes(text: &str) -> Result<usize, String> {
    let n: usize = text.parse().map_err(|e| format!("{e}"))?;
    if n > MAX_BODY_BYTES {
        return Err(format!("at most {MAX_BODY_BYTES}"));
    }
    Ok(n)
}

pub fn run(args: SinkArgs) -> anyhow::Result<ExitCode> {
    let limits = raise_open_files_limit().context("reading the open-file limit")?;
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args.threads))
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    runtime.block_on(serve(args, limits))
}

async fn serve(args: SinkArgs, (soft, hard): (u64, u64)) -> anyhow::Result<ExitCode> {
    let config = SinkConfig {
        imap: args.imap,
        lmtp: args.lmtp,
        messages: args.messages,
        body_bytes: args.body_bytes,
        max_connections: args.max_connections,
    };
    let sink = Sink::bind(&config).await.context("mailswarm sink")?;
    let show = |a: Option<SocketAddr>| a.map_or("-".to_string(), |a| a.to_string());
    println!(
        "sink ready imap={} lmtp={} open_files={soft}/{hard}",
        show(sink.imap_addr()),
        show(sink.lmtp_addr())
    );
    let stats = sink.stats();
    let stop = CancellationToken::new();
    let server = tokio::spawn(sink.serve(stop.clone()));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    stop.cancel();
    let _ = server.await;
    eprintln!(
        "sink stopped: {} connections accepted, {} open, {} accept errors",
        stats.accepted.load(Ordering::Relaxed),
        stats.open.load(Ordering::Relaxed),
        stats.accept_errors.load(Ordering::Relaxed)
    );
    Ok(ExitCode::from(EXIT_OK))
}
