//! A sender session: SMTP submission as a mail client does it — EHLO, STARTTLS when asked
//! for, EHLO again, AUTH, a few messages to other users of the population, QUIT.

use std::time::Duration;

use rand::RngExt;
use rand_pcg::Pcg32;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::script::Action;
use super::SessionCtx;
use crate::engine::audit::message_id;
use crate::engine::message::{build_message, MessageParams, MessageSpec};
use crate::metrics::Protocol;
use crate::proto::net::ConnectOptions;
use crate::proto::smtp::{
    AuthMechanism, Envelope, Flavor, SendOptions, SmtpClient, SmtpError, SmtpSettings,
};
use crate::proto::ErrorKind;
use crate::scenario::{AuthKind, SenderSpec, TlsMode};

const SMTP: Protocol = Protocol::Smtp;

/// Times one SMTP step into the metrics.
async fn step<T>(
    ctx: &SessionCtx,
    command: &'static str,
    fut: impl std::future::Future<Output = Result<T, SmtpError>>,
) -> Result<T, SmtpError> {
    let started = Instant::now();
    let result = fut.await;
    match &result {
        Ok(_) => ctx.sink.ok(SMTP, command, started.elapsed()),
        Err(err) => ctx.sink.error(SMTP, command, err.kind()),
    }
    result
}

/// Runs the session; `Err` carries the kind of the failure that ended it.
pub async fn run(ctx: &SessionCtx, spec: &SenderSpec, actions: &[Action]) -> Result<(), ErrorKind> {
    let plan = &ctx.plan;
    let addr = plan
        .endpoints
        .smtp
        .expect("the plan checked the SMTP target");
    let opts = ConnectOptions {
        source: plan.endpoints.source_addresses.first().copied(),
        connect_timeout: plan.connect_timeout,
    };
    let settings = SmtpSettings {
        command_timeout: plan.command_timeout,
        tls_handshake_timeout: plan.connect_timeout,
    };
    let mut client = match SmtpClient::connect_with(addr, &opts, Flavor::Smtp, settings).await {
        Ok(client) => {
            ctx.sink.ok(SMTP, "CONNECT", ctx.intended_start.elapsed());
            client
        }
        Err(err) => {
            ctx.sink.error(SMTP, "CONNECT", err.kind());
            return Err(err.kind());
        }
    };
    ctx.sink.gauges().connection_opened();
    let result = async {
        step(ctx, "EHLO", client.ehlo("client.mailswarm.test"))
            .await
            .map_err(|e| e.kind())?;
        match (plan.endpoints.smtp_tls, &plan.endpoints.tls) {
            (TlsMode::Starttls, Some(tls)) => {
                let started = Instant::now();
                let mut tls_client = match client
                    .starttls(&tls.connector, tls.server_name.clone())
                    .await
                {
                    Ok(c) => {
                        ctx.sink.ok(SMTP, "STARTTLS", started.elapsed());
                        c
                    }
                    Err(err) => {
                        ctx.sink.error(SMTP, "STARTTLS", err.kind());
                        return Err(err.kind());
                    }
                };
                step(ctx, "EHLO", tls_client.ehlo("client.mailswarm.test"))
                    .await
                    .map_err(|e| e.kind())?;
                submit_all(ctx, spec, actions, &mut tls_client).await?;
                let _ = step(ctx, "QUIT", tls_client.quit()).await;
                Ok(())
            }
            _ => {
                submit_all(ctx, spec, actions, &mut client).await?;
                let _ = step(ctx, "QUIT", client.quit()).await;
                Ok(())
            }
        }
    }
    .await;
    ctx.sink.gauges().connection_closed();
    result
}

async fn submit_all<S>(
    ctx: &SessionCtx,
    spec: &SenderSpec,
    actions: &[Action],
    client: &mut SmtpClient<S>,
) -> Result<(), ErrorKind>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let plan = &ctx.plan;
    let mechanism = match spec.auth {
        AuthKind::Plain => AuthMechanism::Plain,
        AuthKind::Login => AuthMechanism::Login,
    };
    let password = plan.credentials.password(&ctx.login).expose().clone();
    step(
        ctx,
        "AUTH",
        client.auth(mechanism, &ctx.login, &password, true),
    )
    .await
    .map_err(|e| e.kind())?;
    let domain = &plan.endpoints.domain;
    let from = format!("{}@{domain}", ctx.login);
    for action in actions {
        if ctx.wrapping_up() {
            break;
        }
        match *action {
            Action::Think { ms } => {
                let go_on = ctx.think(Duration::from_millis(ms)).await;
                if !go_on {
                    break;
                }
            }
            Action::Submit {
                size,
                seed,
                recipients,
            } => {
                let mut rng = Pcg32::new(seed, u64::from(ctx.user));
                let users = plan.population.count();
                let mut picked: Vec<u32> = Vec::new();
                while picked.len() < usize::from(recipients).min(users as usize) {
                    let id = rng.random_range(0..users);
                    if !picked.contains(&id) {
                        picked.push(id);
                    }
                }
                let to: Vec<String> = picked
                    .iter()
                    .map(|&id| format!("{}@{domain}", plan.population.login_name(id)))
                    .collect();
                let message_spec = MessageSpec::default();
                let params = MessageParams {
                    spec: &message_spec,
                    run_id: &plan.run_id,
                    sequence: seed,
                    target_size: size as usize,
                    from: &from,
                    to: &to,
                    domain,
                    date: plan.message_date(seed),
                };
                let message = build_message(&mut rng, &params);
                let envelope = Envelope {
                    from: from.clone(),
                    recipients: to,
                };
                let outcome = client
                    .send(&envelope, &message, &SendOptions::default())
                    .await;
                match outcome {
                    Ok(outcome) => {
                        let t = &outcome.timings;
                        ctx.sink.ok(SMTP, "MAIL", t.mail);
                        for (reply, latency) in outcome.rcpt.iter().zip(&t.rcpt) {
                            if reply.is_positive() {
                                ctx.sink.ok(SMTP, "RCPT", *latency);
                            } else {
                                ctx.sink.error(SMTP, "RCPT", ErrorKind::Rejected);
                            }
                        }
                        ctx.sink
                            .ok(SMTP, "DATA", t.data_command.unwrap_or_default() + t.message);
                        ctx.sink.count("smtp.submitted", 1);
                        ctx.sink
                            .count("smtp.accepted_recipients", outcome.delivered() as u64);
                        if let (Some(audit), Some(id)) = (&plan.audit, message_id(&message)) {
                            for (i, reply) in outcome.rcpt.iter().enumerate() {
                                if reply.is_positive() && outcome.delivered() > 0 {
                                    audit.accepted(&id, picked[i], "INBOX");
                                }
                            }
                        }
                    }
                    Err(err) => {
                        ctx.sink.error(SMTP, "DATA", err.kind());
                        return Err(err.kind());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
