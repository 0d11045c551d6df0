//! One simulated client session: connect, log in, run a behaviour, log out. Every IMAP
//! command goes through [`Imap::timed`], which records its latency and any error, so the
//! behaviours read as what the client does and nothing else.

mod desktop;
mod exec;
pub mod script;
mod submit;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand_pcg::Pcg32;
use tokio::time::Instant;

use super::checks::StateChecks;
use super::plan::RunPlan;
use super::population::UserId;
use super::scheduler::RunSignals;
use crate::metrics::{MetricsSink, Protocol};
use crate::proto::imap::{ImapClient, ImapError, ImapLimits, SequenceSet};
use crate::proto::net::connect_tcp;
use crate::proto::net::ConnectOptions;
use crate::proto::tls::{handshake, MaybeTlsStream};
use crate::proto::ErrorKind;
use crate::scenario::Behaviour;
use crate::scenario::TlsMode;

/// How a session ended; the scheduler backs off after connection failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Completed,
    /// TCP connect, greeting or login failed.
    ConnectFailed,
    /// A command failed after login; the connection was dropped.
    Failed,
}

pub struct SessionCtx {
    pub plan: Arc<RunPlan>,
    pub sink: MetricsSink,
    pub signals: RunSignals,
    pub user: UserId,
    pub login: String,
    /// Which of the user's sessions this is (0 = her first in this run).
    pub session: u32,
    pub rng: Pcg32,
    /// When the session was due to start; the first operation's latency counts from here.
    pub intended_start: Instant,
}

impl SessionCtx {
    pub fn new(
        plan: &Arc<RunPlan>,
        sink: &MetricsSink,
        signals: &RunSignals,
        user: UserId,
        intended_start: Instant,
    ) -> SessionCtx {
        let (session, rng) = plan.population.next_session_rng(plan.seed(), user);
        SessionCtx {
            plan: plan.clone(),
            sink: sink.clone(),
            signals: signals.clone(),
            user,
            login: plan.population.login_name(user),
            session,
            rng,
            intended_start,
        }
    }

    /// Sleeps for a think time, or less if the run is wrapping up. Returns false when the
    /// session should stop.
    pub async fn think(&self, pause: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(pause) => !self.signals.wrap_up.is_cancelled(),
            _ = self.signals.wrap_up.cancelled() => false,
        }
    }

    pub fn wrapping_up(&self) -> bool {
        self.signals.wrap_up.is_cancelled()
    }
}

/// A logged-in IMAP connection whose commands are timed into the metrics.
pub struct Imap {
    pub client: ImapClient<MaybeTlsStream>,
    sink: MetricsSink,
    /// The run's plan when it checks state rules (`checks: strict`), else `None`.
    strict: Option<Arc<RunPlan>>,
    pub login: Box<str>,
}

impl Imap {
    /// Runs one command, records its latency under `command` (or its error kind), and passes
    /// the result on. With strict checks, the sequence-number rules are checked after it.
    pub async fn timed<T, F>(&mut self, command: &'static str, op: F) -> Result<T, ImapError>
    where
        F: AsyncFnOnce(&mut ImapClient<MaybeTlsStream>) -> Result<T, ImapError>,
    {
        let started = Instant::now();
        let result = op(&mut self.client).await;
        match &result {
            Ok(_) => self.sink.ok(Protocol::Imap, command, started.elapsed()),
            Err(err) => self.sink.error(Protocol::Imap, command, err.kind()),
        }
        if let Some(plan) = &self.strict {
            let seen = self.client.take_sequence_violations();
            if let Some(checks) = &plan.checks {
                checks.sequence(&self.login, seen);
            }
        }
        result
    }

    /// The run's state-rule checks, when the scenario asks for them.
    pub fn checks(&self) -> Option<&StateChecks> {
        self.strict.as_ref().and_then(|plan| plan.checks.as_ref())
    }
}

/// TCP, TLS when asked for, and the greeting, for one of `user`'s connections. The caller
/// records the outcome as CONNECT.
pub async fn connect_for(
    plan: &RunPlan,
    user: UserId,
) -> Result<ImapClient<MaybeTlsStream>, ErrorKind> {
    let endpoints = &plan.endpoints;
    let addr = endpoints
        .imap
        .expect("the plan checked that an IMAP target exists");
    let sources = &endpoints.source_addresses;
    let opts = ConnectOptions {
        source: (!sources.is_empty()).then(|| sources[user as usize % sources.len()]),
        connect_timeout: plan.connect_timeout,
    };
    let tcp = connect_tcp(addr, &opts)
        .await
        .map_err(|e| ErrorKind::from_io(&e))?;
    let limits = ImapLimits {
        command_timeout: plan.command_timeout,
        ..ImapLimits::default()
    };
    let client = match (endpoints.imap_tls, &endpoints.tls) {
        (TlsMode::Implicit, Some(tls)) => {
            let stream = handshake(
                tcp,
                tls.server_name.clone(),
                &tls.connector,
                plan.connect_timeout,
            )
            .await
            .map_err(|e| e.kind())?;
            ImapClient::from_stream(MaybeTlsStream::Tls(Box::new(stream)), limits).await
        }
        (TlsMode::Starttls, Some(tls)) => {
            let plain = ImapClient::from_stream(tcp, limits)
                .await
                .map_err(|e| e.kind())?;
            plain
                .starttls(
                    &tls.connector,
                    tls.server_name.clone(),
                    plan.connect_timeout,
                )
                .await
        }
        _ => ImapClient::from_stream(MaybeTlsStream::Plain(tcp), limits).await,
    };
    let client = client.map_err(|e| match e {
        ImapError::Io(ref io) if io.to_string().starts_with("TLS:") => ErrorKind::Tls,
        other => other.kind(),
    })?;
    Ok(client)
}

/// Connects and logs in; CONNECT (TCP, TLS, greeting) counts from the intended start.
async fn open(ctx: &SessionCtx) -> Result<Imap, ErrorKind> {
    let client = match connect_for(&ctx.plan, ctx.user).await {
        Ok(client) => {
            ctx.sink
                .ok(Protocol::Imap, "CONNECT", ctx.intended_start.elapsed());
            client
        }
        Err(kind) => {
            ctx.sink.error(Protocol::Imap, "CONNECT", kind);
            return Err(kind);
        }
    };
    ctx.sink.gauges().connection_opened();
    let mut imap = Imap {
        client,
        sink: ctx.sink.clone(),
        strict: ctx.plan.checks.is_some().then(|| ctx.plan.clone()),
        login: ctx.login.as_str().into(),
    };
    let password = ctx.plan.credentials.password(&ctx.login).clone();
    let login = ctx.login.clone();
    let logged_in = imap
        .timed("LOGIN", async move |c| c.login(&login, &password).await)
        .await;
    if let Err(err) = logged_in {
        ctx.sink.gauges().connection_closed();
        return Err(err.kind());
    }
    Ok(imap)
}

/// Runs one whole session for `ctx.user`.
pub async fn run(mut ctx: SessionCtx) -> SessionEnd {
    let Some(index) = ctx.plan.behaviour_of(ctx.user) else {
        return SessionEnd::Completed;
    };
    let plan = ctx.plan.clone();
    let behaviour = &plan.behaviours[index];
    let actions = script::script(behaviour, &mut ctx.rng);
    if let Some(trace) = &plan.trace {
        trace.record(ctx.user, ctx.session, behaviour.name(), &actions);
    }
    ctx.sink.count("sessions.started", 1);
    if let Behaviour::Sender(spec) = behaviour {
        return match submit::run(&ctx, spec, &actions).await {
            Ok(()) => {
                ctx.sink.count("sessions.completed", 1);
                SessionEnd::Completed
            }
            Err(_) => {
                ctx.sink.count("sessions.failed", 1);
                SessionEnd::Failed
            }
        };
    }
    let mut imap = match open(&ctx).await {
        Ok(imap) => imap,
        Err(kind) => {
            // A refused login is a different fault (credentials, auth backend) from a
            // connection that never came up.
            let counter = if kind == ErrorKind::Auth {
                "sessions.login_failed"
            } else {
                "sessions.connect_failed"
            };
            ctx.sink.count(counter, 1);
            return SessionEnd::ConnectFailed;
        }
    };
    let body = match behaviour {
        Behaviour::Desktop(spec) => {
            let rng = Pcg32::new(ctx.rng.next_u64(), u64::from(ctx.user));
            desktop::run(&ctx, &mut imap, spec, &actions, rng).await
        }
        Behaviour::Idler(s) => exec::run_actions(&ctx, &mut imap, &s.mailbox, &actions).await,
        Behaviour::Reader(s) => exec::run_actions(&ctx, &mut imap, &s.mailbox, &actions).await,
        Behaviour::Writer(s) => exec::run_actions(&ctx, &mut imap, &s.mailbox, &actions).await,
        Behaviour::Sender(_) => unreachable!("handled above"),
        Behaviour::Mobile(_) | Behaviour::Webmail(_) => {
            exec::run_actions(&ctx, &mut imap, "INBOX", &actions).await
        }
    };
    let end = match body {
        Ok(()) => {
            let _ = imap.timed("LOGOUT", async |c| c.logout().await).await;
            ctx.sink.count("sessions.completed", 1);
            SessionEnd::Completed
        }
        Err(_) => {
            ctx.sink.count("sessions.failed", 1);
            SessionEnd::Failed
        }
    };
    ctx.sink.gauges().connection_closed();
    end
}

/// `first:last` as a sequence set; callers guarantee `1 <= first <= last`.
pub(crate) fn seq_range(first: u32, last: u32) -> SequenceSet {
    SequenceSet::try_from(format!("{first}:{last}").as_str()).expect("a non-zero range is valid")
}

/// One UID as a set; UIDs from the server are never zero.
fn uid_set(uid: u32) -> SequenceSet {
    SequenceSet::try_from(uid).expect("server UIDs are non-zero")
}
