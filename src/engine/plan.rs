//! A scenario resolved into what the engine runs: socket addresses instead of host names,
//! credentials, cumulative weights. Everything that can fail is checked here, before the
//! first connection, so a bad target never costs a half-started run.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::ServerTarget;
use crate::proto::tls::TlsSettings;
use crate::proto::Secret;
use crate::scenario::{
    Behaviour, ChecksMode, DeliverySpec, LoadedScenario, Model, ServerSpec, TlsMode,
};

use super::audit::Auditor;
use super::checks::StateChecks;
use super::population::{user_rng, Population, UserId};
use super::trace::ActionTrace;
use rand::RngExt;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Target(String),
    #[error(
        "cannot read the lab description {path}: {message} (start the lab with `mailswarm lab up`)"
    )]
    Lab { path: String, message: String },
    #[error("cannot create the action trace {path}: {message}")]
    Trace { path: String, message: String },
    #[error("cannot read password file {path}: {message}")]
    PasswordFile { path: String, message: String },
}

/// Where the services are.
#[derive(Clone)]
pub struct Endpoints {
    pub imap: Option<SocketAddr>,
    pub lmtp: Option<SocketAddr>,
    pub smtp: Option<SocketAddr>,
    pub source_addresses: Vec<IpAddr>,
    pub domain: String,
    pub imap_tls: TlsMode,
    pub smtp_tls: TlsMode,
    /// Built once when any path uses TLS.
    pub tls: Option<TlsClient>,
}

/// A connector and the name to verify, shared by every TLS connection of the run.
#[derive(Clone)]
pub struct TlsClient {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: rustls::pki_types::ServerName<'static>,
}

/// Per-user passwords fall back to the shared one.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub shared: Secret<String>,
    pub per_user: HashMap<String, Secret<String>>,
}

impl Credentials {
    pub fn password(&self, login: &str) -> &Secret<String> {
        self.per_user.get(login).unwrap_or(&self.shared)
    }
}

pub struct RunPlan {
    pub scenario: LoadedScenario,
    pub endpoints: Endpoints,
    pub credentials: Credentials,
    pub population: Arc<Population>,
    pub duration: Duration,
    pub ramp_up: Duration,
    pub ramp_down: Duration,
    pub model: Model,
    /// Closed model: concurrent sessions. Open model: cap on concurrent sessions.
    pub sessions: u64,
    /// Open model: sessions started per second at full load.
    pub arrival_rate: f64,
    pub behaviours: Vec<Behaviour>,
    /// Cumulative weights over `behaviours`, for a binary-search draw.
    cumulative: Vec<u64>,
    pub lmtp_delivery: Option<DeliverySpec>,
    pub smtp_delivery: Option<DeliverySpec>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub drain_timeout: Duration,
    /// Where a lab target's description came from.
    pub lab_dir: Option<PathBuf>,
    /// What to sample for server memory and CPU.
    pub server: Option<ServerTarget>,
    /// Present when the scenario asks for the delivery audit.
    pub audit: Option<Auditor>,
    pub audit_grace: Duration,
    /// Present with `checks: strict`.
    pub checks: Option<StateChecks>,
    pub trace: Option<ActionTrace>,
    /// Names this run in generated messages (`X-Mailswarm-Id: <run_id>-<n>`); derived from
    /// the scenario name and seed so message bytes are reproducible.
    pub run_id: String,
}

impl RunPlan {
    pub fn seed(&self) -> u64 {
        self.scenario.scenario.seed
    }

    /// The delivery streams to run, with their routes.
    pub fn deliveries(&self) -> Vec<(super::delivery::Route, DeliverySpec)> {
        let mut out = Vec::new();
        if let (Some(spec), Some(addr)) = (&self.lmtp_delivery, self.endpoints.lmtp) {
            out.push((super::delivery::Route::lmtp(addr), spec.clone()));
        }
        if let (Some(spec), Some(addr)) = (&self.smtp_delivery, self.endpoints.smtp) {
            out.push((super::delivery::Route::smtp(addr), spec.clone()));
        }
        out
    }

    /// A Date header for message number `sequence`: fixed, so bytes repeat across runs, and
    /// spread over a year so date searches have something to find.
    pub fn message_date(&self, sequence: u64) -> i64 {
        const BASE: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
        BASE + (sequence % (365 * 86_400)) as i64
    }

    /// The behaviour user `id` runs: fixed for the whole run (a user has one client type),
    /// drawn from her own RNG so it does not depend on scheduling.
    pub fn behaviour_of(&self, id: UserId) -> Option<usize> {
        let total = *self.cumulative.last()?;
        if total == 0 {
            return None;
        }
        let draw = user_rng(self.seed(), id).random_range(0..total);
        Some(self.cumulative.partition_point(|&c| c <= draw))
    }
}

/// What the lab writes in `lab.json` that a run needs. Kept minimal on purpose: the lab owns
/// the full description.
#[derive(Debug, serde::Deserialize)]
struct LabTarget {
    listen: IpAddr,
    ports: LabPorts,
    users: LabUsers,
    domain: String,
    ca_file: PathBuf,
    dovecot: LabServer,
}

#[derive(Debug, serde::Deserialize)]
struct LabServer {
    pid_file: PathBuf,
}

#[derive(Debug, serde::Deserialize)]
struct LabPorts {
    imap: u16,
    imaps: u16,
    lmtp: u16,
    smtp: u16,
}

#[derive(Debug, serde::Deserialize)]
struct LabUsers {
    password: String,
}

pub fn default_lab_dir() -> PathBuf {
    std::env::var_os("MAILSWARM_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/mailswarm-lab"))
}

fn read_lab(dir: &Path) -> Result<LabTarget, PlanError> {
    let path = dir.join("lab.json");
    let err = |message: String| PlanError::Lab {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))
}

async fn resolve(what: &str, value: &str, allow_remote: bool) -> Result<SocketAddr, PlanError> {
    let mut addrs = tokio::net::lookup_host(value)
        .await
        .map_err(|e| PlanError::Target(format!("target.{what} `{value}`: {e}")))?;
    let addr = addrs
        .next()
        .ok_or_else(|| PlanError::Target(format!("target.{what} `{value}` resolves to nothing")))?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(PlanError::Target(format!(
            "target.{what} `{value}` is not a loopback address; set `target.allow_remote: true` \
             to load-test a remote server deliberately"
        )));
    }
    Ok(addr)
}

/// Command-line overrides applied on top of the scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub duration: Option<Duration>,
    pub seed: Option<u64>,
    pub sessions: Option<u64>,
    /// Open model: sessions started per second (`sweep` sets it per level).
    pub arrival_rate: Option<f64>,
    /// Warm-up tagged `ramp_up`, replacing the scenario's (`sweep --warmup`).
    pub ramp_up: Option<Duration>,
    pub lab_dir: Option<PathBuf>,
    pub trace_actions: Option<PathBuf>,
}

pub async fn build(
    mut scenario: LoadedScenario,
    overrides: &Overrides,
) -> Result<RunPlan, PlanError> {
    if let Some(seed) = overrides.seed {
        scenario.scenario.seed = seed;
    }
    let s = &scenario.scenario;
    let t = &s.target;
    let lab_dir = t.lab.then(|| {
        overrides
            .lab_dir
            .clone()
            .or(t.lab_dir.clone())
            .unwrap_or_else(default_lab_dir)
    });
    let lab = lab_dir.as_deref().map(read_lab).transpose()?;

    let mut endpoints = Endpoints {
        imap: None,
        lmtp: None,
        smtp: None,
        source_addresses: t.source_addresses.clone(),
        domain: s
            .users
            .domain
            .clone()
            .or_else(|| lab.as_ref().map(|l| l.domain.clone()))
            .unwrap_or_else(|| "localhost".into()),
        imap_tls: t.imap_tls,
        smtp_tls: t.smtp_tls,
        tls: None,
    };
    if let Some(lab) = &lab {
        let imap_port = if t.imap_tls == TlsMode::Implicit {
            lab.ports.imaps
        } else {
            lab.ports.imap
        };
        endpoints.imap = Some(SocketAddr::new(lab.listen, imap_port));
        endpoints.lmtp = Some(SocketAddr::new(lab.listen, lab.ports.lmtp));
        endpoints.smtp = Some(SocketAddr::new(lab.listen, lab.ports.smtp));
    }
    if t.smtp_tls == TlsMode::Implicit {
        return Err(PlanError::Target(
            "target.smtp_tls: implicit TLS (SMTPS) is not supported; use `starttls`".into(),
        ));
    }
    if t.imap_tls != TlsMode::None || t.smtp_tls != TlsMode::None {
        let settings = TlsSettings {
            ca_file: t.tls.ca_file.clone().or_else(|| {
                (!t.tls.insecure)
                    .then(|| lab.as_ref().map(|l| l.ca_file.clone()))
                    .flatten()
            }),
            insecure: t.tls.insecure,
            server_name: t.tls.server_name.clone(),
        };
        let tls_err =
            |e: crate::proto::tls::TlsError| PlanError::Target(format!("target.tls: {e}"));
        let connector = settings.connector().map_err(tls_err)?;
        let host = t
            .imap
            .as_ref()
            .or(t.smtp.as_ref())
            .and_then(|a| a.value.rsplit_once(':').map(|(h, _)| h.to_string()))
            .unwrap_or_else(|| "localhost".to_string());
        let server_name = settings.server_name(&host).map_err(tls_err)?;
        endpoints.tls = Some(TlsClient {
            connector,
            server_name,
        });
    }
    for (what, value, slot) in [
        ("imap", &t.imap, &mut endpoints.imap),
        ("lmtp", &t.lmtp, &mut endpoints.lmtp),
        ("smtp", &t.smtp, &mut endpoints.smtp),
    ] {
        if let Some(value) = value {
            *slot = Some(resolve(what, &value.value, t.allow_remote).await?);
        }
    }
    for source in &endpoints.source_addresses {
        if !t.allow_remote && !source.is_loopback() {
            return Err(PlanError::Target(format!(
                "target.source_addresses: {source} is not a loopback address"
            )));
        }
    }
    let has_smtp_delivery = s.delivery.as_ref().is_some_and(|d| d.smtp.is_some());
    let has_sender = s
        .mix
        .iter()
        .any(|b| matches!(b.value, Behaviour::Sender(_)));
    if (has_smtp_delivery || has_sender) && endpoints.smtp.is_none() {
        return Err(PlanError::Target(
            "delivery.smtp and the sender behaviour need target.smtp (or target.lab: true)".into(),
        ));
    }
    let has_lmtp_delivery = s.delivery.as_ref().is_some_and(|d| d.lmtp.is_some());
    if has_lmtp_delivery && endpoints.lmtp.is_none() {
        return Err(PlanError::Target(
            "delivery.lmtp needs target.lmtp (or target.lab: true)".into(),
        ));
    }

    let shared = s
        .users
        .password
        .clone()
        .or_else(|| lab.as_ref().map(|l| l.users.password.clone()))
        .ok_or_else(|| PlanError::Target("users.password is missing (and no lab target)".into()))?;
    let mut per_user = HashMap::new();
    if let Some(path) = &s.users.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::PasswordFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, pass) = line
                .split_once(':')
                .ok_or_else(|| PlanError::PasswordFile {
                    path: path.display().to_string(),
                    message: format!("line {}: expected `user:password`", n + 1),
                })?;
            per_user.insert(user.to_string(), Secret::new(pass.to_string()));
        }
    }

    let count = u32::try_from(s.users.count.value).map_err(|_| {
        PlanError::Target(format!(
            "users.count {} is above {}",
            s.users.count.value,
            u32::MAX
        ))
    })?;
    let population = Arc::new(Population::new(count, s.users.first, &s.users.pattern));
    let behaviours: Vec<Behaviour> = s.mix.iter().map(|b| b.value.clone()).collect();
    let cumulative = behaviours
        .iter()
        .scan(0u64, |acc, b| {
            *acc += u64::from(b.weight());
            Some(*acc)
        })
        .collect();
    let sessions = overrides
        .sessions
        .or(s.load.sessions.as_ref().map(|v| v.value))
        .or(s.load.max_sessions)
        .unwrap_or(u64::from(count))
        .min(u64::from(count));
    let trace = match &overrides.trace_actions {
        Some(path) => Some(ActionTrace::create(path).map_err(|e| PlanError::Trace {
            path: path.display().to_string(),
            message: e.to_string(),
        })?),
        None => None,
    };
    let server = match &s.server {
        Some(ServerSpec::Pid(pid)) => Some(ServerTarget::Pid(*pid as i32)),
        Some(ServerSpec::PidFile(path)) => Some(ServerTarget::PidFile(path.clone())),
        Some(ServerSpec::Process(name)) => Some(ServerTarget::ProcessName(name.clone())),
        Some(ServerSpec::Cgroup(path)) => Some(ServerTarget::Cgroup(path.clone())),
        Some(ServerSpec::Command(cmd)) => Some(ServerTarget::Command(cmd.clone())),
        None => lab
            .as_ref()
            .map(|l| ServerTarget::PidFile(l.dovecot.pid_file.clone())),
    };
    // The run id goes into every message's X-Mailswarm-Id. With the audit on it also carries
    // the start time, so a rerun with the same seed against the same mailboxes cannot mistake
    // the last run's messages for its own.
    let run_id = if s.audit {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("{}-{}-{started}", s.name, s.seed)
    } else {
        format!("{}-{}", s.name, s.seed)
    };
    let plan = RunPlan {
        audit: s.audit.then(Auditor::new),
        checks: (s.checks == ChecksMode::Strict).then(StateChecks::new),
        audit_grace: s.audit_grace.0,
        server,
        run_id,
        trace,
        endpoints,
        credentials: Credentials {
            shared: Secret::new(shared),
            per_user,
        },
        population,
        duration: overrides.duration.unwrap_or(s.duration.value.0),
        ramp_up: overrides.ramp_up.unwrap_or(s.load.ramp_up.0),
        ramp_down: s.load.ramp_down.0,
        model: s.load.model,
        sessions,
        arrival_rate: overrides
            .arrival_rate
            .or(s.load.arrival_rate.as_ref().map(|r| r.value.0))
            .unwrap_or(0.0),
        behaviours,
        cumulative,
        lmtp_delivery: s.delivery.as_ref().and_then(|d| d.lmtp.clone()),
        smtp_delivery: s.delivery.as_ref().and_then(|d| d.smtp.clone()),
        connect_timeout: s.timeouts.connect.0,
        command_timeout: s.timeouts.command.0,
        drain_timeout: s.timeouts.drain.0,
        lab_dir,
        scenario,
    };
    if plan.ramp_up + plan.ramp_down >= plan.duration {
        return Err(PlanError::Target(
            "--duration is too short for the scenario's ramp_up + ramp_down".into(),
        ));
    }
    Ok(plan)
}
