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

use super::audit::message_id;
use super::message::{build_message, MessageParams, MessageSpec};
use super::plan::RunPlan;
use super::scheduler::RunSignals;
use crate::metrics::{MetricsSink, Protocol};
use std::net::SocketAddr;

use crate::proto::net::ConnectOptions;
use crate::proto::smtp::{
    Delivery, Envelope, Flavor, SendOptions, SmtpClient, SmtpError, SmtpSettings,
    TransactionOutcome,
};
use crate::scenario::DeliverySpec;

/// Which path the mail takes, and the names its numbers go under.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub flavor: Flavor,
    pub protocol: Protocol,
    pub addr: SocketAddr,
    transactions: &'static str,
    accepted: &'static str,
    delivered: &'static str,
    refused_after_data: &'static str,
    failed: &'static str,
    /// Distinguishes the workers' RNG streams and message numbers per route.
    salt: u64,
}

impl Route {
    pub fn lmtp(addr: SocketAddr) -> Route {
        Route {
            flavor: Flavor::Lmtp,
            protocol: Protocol::Lmtp,
            addr,
            transactions: "lmtp.transactions",
            accepted: "lmtp.accepted_recipients",
            delivered: "lmtp.delivered",
            refused_after_data: "lmtp.refused_after_data",
            failed: "lmtp.failed_transactions",
            salt: 0,
        }
    }

    /// SMTP to the MTA, which relays to the mail store on its own schedule.
    pub fn smtp(addr: SocketAddr) -> Route {
        Route {
            flavor: Flavor::Smtp,
            protocol: Protocol::Smtp,
            addr,
            transactions: "smtp.transactions",
            accepted: "smtp.accepted_recipients",
            delivered: "smtp.queued",
            refused_after_data: "smtp.refused_after_data",
            failed: "smtp.failed_transactions",
            salt: 1 << 20,
        }
    }
}

pub fn spawn(
    workers: &mut JoinSet<()>,
    plan: Arc<RunPlan>,
    route: Route,
    spec: DeliverySpec,
    sink: MetricsSink,
    signals: RunSignals,
    start: Instant,
) {
    let spec = Arc::new(spec);
    for worker in 0..spec.connections {
        workers.spawn(worker_loop(
            plan.clone(),
            route,
            spec.clone(),
            sink.clone(),
            signals.clone(),
            start,
            worker,
        ));
    }
}

async fn worker_loop(
    plan: Arc<RunPlan>,
    route: Route,
    spec: Arc<DeliverySpec>,
    sink: MetricsSink,
    signals: RunSignals,
    start: Instant,
    worker: u32,
) {
    let interval = Duration::from_secs_f64(f64::from(spec.connections) / spec.rate.value.0);
    // Stagger workers so their transactions interleave instead of arriving in bursts.
    let mut due = start + interval.mul_f64(f64::from(worker) / f64::from(spec.connections));
    let worker = worker + route.salt as u32;
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
            client = connect(&plan, route, &sink, due).await;
            on_connection = 0;
        }
        if let Some(c) = client.as_mut() {
            let ok = transaction(&plan, route, &spec, &sink, c, &mut rng, worker, sent, due).await;
            sent += 1;
            on_connection += 1;
            if !ok || on_connection >= spec.transactions_per_connection {
                if let Some(c) = client.take() {
                    quit(route, &sink, c).await;
                }
            }
        }
        due += interval;
    }
    if let Some(c) = client.take() {
        quit(route, &sink, c).await;
    }
}

async fn connect(
    plan: &RunPlan,
    route: Route,
    sink: &MetricsSink,
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
    let mut client = match SmtpClient::connect_with(route.addr, &opts, route.flavor, settings).await
    {
        Ok(c) => c,
        Err(err) => {
            sink.error(route.protocol, "CONNECT", err.kind());
            return None;
        }
    };
    sink.ok(route.protocol, "CONNECT", due.elapsed());
    let started = Instant::now();
    let hello = match route.flavor {
        Flavor::Lmtp => "LHLO",
        Flavor::Smtp => "EHLO",
    };
    match client.hello("mailswarm.test").await {
        Ok(_) => sink.ok(route.protocol, hello, started.elapsed()),
        Err(err) => {
            sink.error(route.protocol, hello, err.kind());
            return None;
        }
    }
    sink.gauges().connection_opened();
    Some(client)
}

async fn quit(route: Route, sink: &MetricsSink, client: SmtpClient<TcpStream>) {
    let started = Instant::now();
    match client.quit().await {
        Ok(_) => sink.ok(route.protocol, "QUIT", started.elapsed()),
        Err(err) => sink.error(route.protocol, "QUIT", err.kind()),
    }
    sink.gauges().connection_closed();
}

/// One transaction to 1..n distinct random users. Returns false when the connection should
/// be dropped.
#[allow(clippy::too_many_arguments)]
async fn transaction(
    plan: &RunPlan,
    route: Route,
    spec: &DeliverySpec,
    sink: &MetricsSink,
    client: &mut SmtpClient<TcpStream>,
    rng: &mut Pcg32,
    worker: u32,
    n: u64,
    due: Instant,
) -> bool {
    let users = plan.population.count();
    let wanted = spec.recipients.sample(rng).clamp(1, u64::from(users)) as usize;
    let mut users_picked: Vec<u32> = Vec::with_capacity(wanted);
    while users_picked.len() < wanted {
        let id = rng.random_range(0..users);
        if !users_picked.contains(&id) {
            users_picked.push(id);
        }
    }
    let recipients: Vec<String> = users_picked
        .iter()
        .map(|&id| {
            format!(
                "{}@{}",
                plan.population.login_name(id),
                plan.endpoints.domain
            )
        })
        .collect();
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
            if let (Some(audit), Some(id)) = (&plan.audit, message_id(&message)) {
                for index in delivered_recipients(&outcome) {
                    audit.accepted(&id, users_picked[index], "INBOX");
                }
            }
            let t = &outcome.timings;
            sink.ok(route.protocol, "MAIL", t.mail);
            for (reply, latency) in outcome.rcpt.iter().zip(&t.rcpt) {
                if reply.is_positive() {
                    sink.ok(route.protocol, "RCPT", *latency);
                } else {
                    sink.error(route.protocol, "RCPT", crate::proto::ErrorKind::Rejected);
                }
            }
            sink.ok(
                route.protocol,
                "DATA",
                t.data_command.unwrap_or_default() + t.message,
            );
            // The whole transaction counts from when it was due: a worker that fell behind a
            // stalling server shows the delay here instead of hiding it.
            sink.ok(route.protocol, "TRANSACTION", due.elapsed());
            sink.count(route.transactions, 1);
            sink.count(route.accepted, outcome.accepted() as u64);
            sink.count(route.delivered, outcome.delivered() as u64);
            let refused = outcome.accepted() - outcome.delivered();
            if refused > 0 {
                sink.count(route.refused_after_data, refused as u64);
            }
            true
        }
        Err(err) => {
            let command = match &err {
                SmtpError::Rejected { command, .. } => command_name(command),
                _ => "DATA",
            };
            sink.error(route.protocol, command, err.kind());
            sink.count(route.failed, 1);
            false
        }
    }
}

/// Indices of the recipients the server took the message for.
fn delivered_recipients(outcome: &TransactionOutcome) -> Vec<usize> {
    match &outcome.delivery {
        Delivery::PerRecipient(replies) => replies
            .iter()
            .filter(|r| r.reply.is_positive())
            .map(|r| r.recipient)
            .collect(),
        Delivery::Message(reply) if reply.is_positive() => outcome
            .rcpt
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_positive())
            .map(|(i, _)| i)
            .collect(),
        Delivery::Message(_) => Vec::new(),
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
