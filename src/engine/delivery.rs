//! Mail arriving while users read it: LMTP transactions at a steady rate to random users, as
//! an MTA in front of the backends would deliver it.
//!
//! Each of `connections` workers owns one LMTP connection and `rate / connections` of the
//! load. Transactions are due at fixed intended times; a late one records its latency from
//! when it was due, so a server that stalls deliveries shows it in the numbers.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use rand_pcg::Pcg32;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::message::{build_message, MessageParams, MessageSpec};
use super::plan::RunPlan;
use super::scheduler::RunSignals;
use crate::metrics::{MetricsSink, Protocol};
use crate::proto::net::ConnectOptions;
use crate::proto::smtp::{Envelope, Flavor, SendOptions, SmtpClient, SmtpError, SmtpSettings};
use crate::scenario::LmtpDelivery;

const LMTP: Protocol = Protocol::Lmtp;

pub fn spawn_lmtp(
    workers: &mut JoinSet<()>,
    plan: Arc<RunPlan>,
    spec: LmtpDelivery,
    sink: MetricsSink,
    signals: RunSignals,
    start: Instant,
) {
    let spec = Arc::new(spec);
    for worker in 0..spec.connections {
        workers.spawn(lmtp_worker(
            plan.clone(),
            spec.clone(),
            sink.clone(),
            signals.clone(),
            start,
            worker,
        ));
    }
}

async fn lmtp_worker(
    plan: Arc<RunPlan>,
    spec: Arc<LmtpDelivery>,
    sink: MetricsSink,
    signals: RunSignals,
    start: Instant,
    worker: u32,
) {
    let addr = plan
        .endpoints
        .lmtp
        .expect("the plan checked the LMTP target");
    let interval = Duration::from_secs_f64(f64::from(spec.connections) / spec.rate.value.0);
    // Stagger workers so their transactions interleave instead of arriving in bursts.
    let mut due = start + interval.mul_f64(f64::from(worker) / f64::from(spec.connections));
    let mut rng = Pcg32::new(plan.seed() ^ 0x1e7d_e11e, u64::from(worker));
    let mut sent: u64 = 0;
    let mut client: Option<SmtpClient<TcpStream>> = None;
    let mut on_connection = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = signals.stop_starting.cancelled() => break,
        }
        if client.is_none() {
            client = connect(&plan, &sink, addr, due).await;
            on_connection = 0;
        }
        if let Some(c) = client.as_mut() {
            let ok = transaction(&plan, &spec, &sink, c, &mut rng, worker, sent, due).await;
            sent += 1;
            on_connection += 1;
            if !ok || on_connection >= spec.transactions_per_connection {
                if let Some(c) = client.take() {
                    quit(&sink, c).await;
                }
            }
        }
        due += interval;
    }
    if let Some(c) = client.take() {
        quit(&sink, c).await;
    }
}

async fn connect(
    plan: &RunPlan,
    sink: &MetricsSink,
    addr: std::net::SocketAddr,
    due: Instant,
) -> Option<SmtpClient<TcpStream>> {
    let opts = ConnectOptions {
        source: plan.endpoints.source_addresses.first().copied(),
        connect_timeout: plan.connect_timeout,
    };
    let settings = SmtpSettings {
        command_timeout: plan.command_timeout,
        ..SmtpSettings::default()
    };
    let mut client = match SmtpClient::connect_with(addr, &opts, Flavor::Lmtp, settings).await {
        Ok(c) => c,
        Err(err) => {
            sink.error(LMTP, "CONNECT", err.kind());
            return None;
        }
    };
    sink.ok(LMTP, "CONNECT", due.elapsed());
    let started = Instant::now();
    match client.lhlo("mailswarm.test").await {
        Ok(_) => sink.ok(LMTP, "LHLO", started.elapsed()),
        Err(err) => {
            sink.error(LMTP, "LHLO", err.kind());
            return None;
        }
    }
    sink.gauges().connection_opened();
    Some(client)
}

async fn quit(sink: &MetricsSink, client: SmtpClient<TcpStream>) {
    let started = Instant::now();
    match client.quit().await {
        Ok(_) => sink.ok(LMTP, "QUIT", started.elapsed()),
        Err(err) => sink.error(LMTP, "QUIT", err.kind()),
    }
    sink.gauges().connection_closed();
}

/// One transaction to 1..n distinct random users. Returns false when the connection should
/// be dropped.
#[allow(clippy::too_many_arguments)]
async fn transaction(
    plan: &RunPlan,
    spec: &LmtpDelivery,
    sink: &MetricsSink,
    client: &mut SmtpClient<TcpStream>,
    rng: &mut Pcg32,
    worker: u32,
    n: u64,
    due: Instant,
) -> bool {
    let users = plan.population.count();
    let wanted = spec.recipients.sample(rng).clamp(1, u64::from(users)) as usize;
    let mut recipients: Vec<String> = Vec::with_capacity(wanted);
    while recipients.len() < wanted {
        let id = rng.random_range(0..users);
        let address = format!(
            "{}@{}",
            plan.population.login_name(id),
            plan.endpoints.domain
        );
        if !recipients.contains(&address) {
            recipients.push(address);
        }
    }
    let size = spec.size.sample(rng).0 as usize;
    let from = format!("sender{worker}@{}", plan.endpoints.domain);
    // Deliveries are numbered apart from APPENDs (whose numbers are random 64-bit values
    // with the top bit clear): the top bit marks LMTP, then the worker, then the count.
    let sequence = (1 << 63) | (u64::from(worker) << 40) | n;
    let message_spec = MessageSpec::default();
    let params = MessageParams {
        spec: &message_spec,
        run_id: &plan.run_id,
        sequence,
        target_size: size,
        from: &from,
        to: &recipients,
        domain: &plan.endpoints.domain,
        date: plan.message_date(sequence),
    };
    let message = build_message(rng, &params);
    let envelope = Envelope { from, recipients };
    let result = client
        .send(&envelope, &message, &SendOptions::default())
        .await;
    match result {
        Ok(outcome) => {
            let t = &outcome.timings;
            sink.ok(LMTP, "MAIL", t.mail);
            for (reply, latency) in outcome.rcpt.iter().zip(&t.rcpt) {
                if reply.is_positive() {
                    sink.ok(LMTP, "RCPT", *latency);
                } else {
                    sink.error(LMTP, "RCPT", crate::proto::ErrorKind::Rejected);
                }
            }
            sink.ok(LMTP, "DATA", t.data_command.unwrap_or_default() + t.message);
            // The whole transaction counts from when it was due: a worker that fell behind a
            // stalling server shows the delay here instead of hiding it.
            sink.ok(LMTP, "TRANSACTION", due.elapsed());
            sink.count("lmtp.transactions", 1);
            sink.count("lmtp.accepted_recipients", outcome.accepted() as u64);
            sink.count("lmtp.delivered", outcome.delivered() as u64);
            let refused = outcome.accepted() - outcome.delivered();
            if refused > 0 {
                sink.count("lmtp.refused_after_data", refused as u64);
            }
            true
        }
        Err(err) => {
            let command = match &err {
                SmtpError::Rejected { command, .. } => command_name(command),
                _ => "DATA",
            };
            sink.error(LMTP, command, err.kind());
            sink.count("lmtp.failed_transactions", 1);
            false
        }
    }
}

fn command_name(command: &str) -> &'static str {
    match command {
        "MAIL" => "MAIL",
        "RCPT" => "RCPT",
        "BDAT" => "BDAT",
        _ => "DATA",
    }
}
