//! The scenario schema. README.md's "Scenario reference" documents every key; keep the two in
//! step.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::dist::{Count, Dist};
use super::error::ScenarioError;
use super::units::{ByteSize, HumanDuration, Rate};

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Every user's behaviour is drawn from `(seed, user id)`: same seed, same run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub duration: Spanned<HumanDuration>,
    pub target: Target,
    pub users: Users,
    #[serde(default)]
    pub load: Load,
    /// Weighted behaviours; each session draws one.
    #[serde(default)]
    pub mix: Vec<Spanned<Behaviour>>,
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// `metric: "condition[, condition]"`, e.g. `imap.fetch: "p99 < 50ms"`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub timeouts: Timeouts,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Read addresses and credentials from the lab that `mailswarm lab up` started.
    #[serde(default)]
    pub lab: bool,
    /// The lab directory when it is not the default one.
    #[serde(default)]
    pub lab_dir: Option<PathBuf>,
    /// `host:port` of each service; with `lab: true` these override the lab's.
    #[serde(default)]
    pub imap: Option<Spanned<String>>,
    #[serde(default)]
    pub lmtp: Option<Spanned<String>>,
    #[serde(default)]
    pub smtp: Option<Spanned<String>>,
    /// Local addresses to open connections from (127.0.0.2, 127.0.0.3, ...); each adds
    /// about 28,000 ephemeral ports towards one server address.
    #[serde(default)]
    pub source_addresses: Vec<IpAddr>,
    /// Targets outside 127.0.0.0/8 are refused unless this is set: a load test pointed at the
    /// wrong host is an outage.
    #[serde(default)]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    /// Users `pattern` with `{n}` = first .. first+count-1.
    pub count: Spanned<u64>,
    #[serde(default = "default_pattern")]
    pub pattern: String,
    #[serde(default = "default_first")]
    pub first: u64,
    /// One password for every user (the lab's when `target.lab` and unset).
    #[serde(default)]
    pub password: Option<String>,
    /// A file with one `user:password` per line, overriding `password` for those listed.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Mail domain for LMTP/SMTP recipients (`user1@domain`); the lab's when unset.
    #[serde(default)]
    pub domain: Option<String>,
}

fn default_pattern() -> String {
    "user{n}".into()
}

fn default_first() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// A fixed number of concurrent sessions; a finished session is replaced at once.
    #[default]
    Closed,
    /// Sessions start at a rate whatever the server does; latency counts from the intended
    /// start, so a slow server cannot hide behind fewer requests (coordinated omission).
    Open,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default)]
    pub model: Model,
    /// Closed model: sessions kept running at once.
    #[serde(default)]
    pub sessions: Option<Spanned<u64>>,
    /// Open model: sessions started per second.
    #[serde(default)]
    pub arrival_rate: Option<Spanned<Rate>>,
    /// Open model: cap on concurrent sessions; arrivals past it wait (and their latency
    /// shows the wait).
    #[serde(default)]
    pub max_sessions: Option<u64>,
    /// Load rises linearly to its full level over this time; samples are tagged `ramp_up`.
    #[serde(default)]
    pub ramp_up: HumanDuration,
    /// Tail of the run tagged `ramp_down` (sessions finish, no new ones start).
    #[serde(default)]
    pub ramp_down: HumanDuration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    Idler(IdlerSpec),
    Reader(ReaderSpec),
    Writer(WriterSpec),
}

impl Behaviour {
    pub fn weight(&self) -> u32 {
        match self {
            Behaviour::Idler(s) => s.weight,
            Behaviour::Reader(s) => s.weight,
            Behaviour::Writer(s) => s.weight,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Idler(_) => "idler",
            Behaviour::Reader(_) => "reader",
            Behaviour::Writer(_) => "writer",
        }
    }
}

fn inbox() -> String {
    "INBOX".into()
}

fn yes() -> bool {
    true
}

/// A desktop client parked in IDLE: login, select, IDLE; fetches what the server pushes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdlerSpec {
    pub weight: u32,
    #[serde(default = "inbox")]
    pub mailbox: String,
    /// How long one session stays in IDLE before DONE and LOGOUT.
    #[serde(default = "default_idle_for")]
    pub idle_for: Dist<HumanDuration>,
    /// On a pushed EXISTS, leave IDLE and fetch the new messages (headers and body).
    #[serde(default = "yes")]
    pub fetch_on_push: bool,
}

fn default_idle_for() -> Dist<HumanDuration> {
    Dist::Uniform {
        min: HumanDuration(Duration::from_secs(20)),
        max: HumanDuration(Duration::from_secs(40)),
    }
}

/// A client reading mail: recent headers, a body, flags, a search.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSpec {
    pub weight: u32,
    #[serde(default = "inbox")]
    pub mailbox: String,
    /// Actions (fetch a body, mark seen, search, flag) per session.
    #[serde(default = "default_actions")]
    pub actions: Dist<Count>,
    #[serde(default = "default_think")]
    pub think: Dist<HumanDuration>,
    /// How many of the newest messages' headers are fetched after SELECT.
    #[serde(default = "default_headers")]
    pub recent_headers: u32,
}

fn default_actions() -> Dist<Count> {
    Dist::Uniform { min: 3, max: 8 }
}

fn default_think() -> Dist<HumanDuration> {
    Dist::Exponential {
        mean: HumanDuration(Duration::from_secs(2)),
        max: Some(HumanDuration(Duration::from_secs(20))),
    }
}

fn default_headers() -> u32 {
    20
}

/// A client filing mail: APPENDs messages of realistic sizes, sometimes deletes old ones.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WriterSpec {
    pub weight: u32,
    #[serde(default = "inbox")]
    pub mailbox: String,
    #[serde(default = "default_appends")]
    pub appends: Dist<Count>,
    #[serde(default = "default_size")]
    pub size: Dist<ByteSize>,
    #[serde(default = "default_think")]
    pub think: Dist<HumanDuration>,
    /// Chance per session of deleting (STORE \Deleted + EXPUNGE) its oldest message, which
    /// keeps mailboxes from growing without bound in long runs.
    #[serde(default = "default_expunge")]
    pub expunge_probability: f64,
}

fn default_appends() -> Dist<Count> {
    Dist::Uniform { min: 1, max: 3 }
}

/// Log-normal with a long tail: most mail is a few KiB, some carries attachments.
pub fn default_size() -> Dist<ByteSize> {
    Dist::Lognormal {
        median: ByteSize(8 * 1024),
        sigma: 1.2,
        max: Some(ByteSize(4 * 1024 * 1024)),
    }
}

fn default_expunge() -> f64 {
    0.3
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    #[serde(default)]
    pub lmtp: Option<LmtpDelivery>,
}

/// Mail arriving over LMTP, as from an MTA, to random users.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LmtpDelivery {
    /// Transactions per second.
    pub rate: Spanned<Rate>,
    #[serde(default = "default_recipients")]
    pub recipients: Dist<Count>,
    #[serde(default = "default_size")]
    pub size: Dist<ByteSize>,
    /// LMTP connections used in parallel; each carries several transactions.
    #[serde(default = "default_connections")]
    pub connections: u32,
    #[serde(default = "default_per_connection")]
    pub transactions_per_connection: u32,
}

fn default_recipients() -> Dist<Count> {
    Dist::Fixed(1)
}

fn default_connections() -> u32 {
    2
}

fn default_per_connection() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default = "default_connect_timeout")]
    pub connect: HumanDuration,
    #[serde(default = "default_command_timeout")]
    pub command: HumanDuration,
    /// How long sessions get to LOGOUT/QUIT after the run's end (or Ctrl-C).
    #[serde(default = "default_drain")]
    pub drain: HumanDuration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: default_connect_timeout(),
            command: default_command_timeout(),
            drain: default_drain(),
        }
    }
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_command_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_drain() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

impl Scenario {
    /// Checks what the types cannot: ranges, combinations, references.
    pub fn validate(&self, file: &str) -> Result<(), ScenarioError> {
        let at = |loc: &serde_saphyr::Location, msg: String| ScenarioError::at(file, loc, msg);
        if self.duration.value.0.is_zero() {
            return Err(at(
                &self.duration.referenced,
                "duration must be above zero".into(),
            ));
        }
        let users = self.users.count.value;
        if users == 0 {
            return Err(at(
                &self.users.count.referenced,
                "users.count must be at least 1".into(),
            ));
        }
        if !self.users.pattern.contains("{n}") {
            return Err(ScenarioError::at(
                file,
                &self.users.count.referenced,
                format!("users.pattern `{}` has no `{{n}}`", self.users.pattern),
            )
            .with_hint("write e.g. pattern: \"user{n}\""));
        }
        let ramps = self.load.ramp_up.0 + self.load.ramp_down.0;
        if ramps >= self.duration.value.0 {
            return Err(at(
                &self.duration.referenced,
                "load.ramp_up + load.ramp_down must be shorter than duration".into(),
            ));
        }
        match self.load.model {
            Model::Closed => match &self.load.sessions {
                None if !self.mix.is_empty() => {
                    return Err(at(
                        &self.users.count.referenced,
                        "the closed model needs load.sessions".into(),
                    )
                    .with_hint("add `load: {sessions: 50}`"))
                }
                Some(s) if s.value > users => {
                    return Err(at(
                        &s.referenced,
                        format!(
                            "load.sessions ({}) is more than users.count ({users}): each session is a distinct user",
                            s.value
                        ),
                    ))
                }
                _ => {}
            },
            Model::Open => match &self.load.arrival_rate {
                None => {
                    return Err(at(
                        &self.users.count.referenced,
                        "the open model needs load.arrival_rate".into(),
                    )
                    .with_hint("add e.g. `arrival_rate: 20/s` under load"))
                }
                Some(r) if r.value.0 <= 0.0 => {
                    return Err(at(&r.referenced, "load.arrival_rate must be above zero".into()))
                }
                _ => {}
            },
        }
        if !self.mix.is_empty() && self.mix.iter().all(|b| b.value.weight() == 0) {
            return Err(at(
                &self.mix[0].referenced,
                "every mix weight is zero".into(),
            ));
        }
        for entry in &self.mix {
            self.validate_behaviour(file, entry)?;
        }
        if self.mix.is_empty() && self.delivery.as_ref().is_none_or(|d| d.lmtp.is_none()) {
            return Err(at(
                &self.duration.referenced,
                "nothing to do: the scenario has no mix and no delivery".into(),
            ));
        }
        if let Some(lmtp) = self.delivery.as_ref().and_then(|d| d.lmtp.as_ref()) {
            let check = |r: Result<(), String>| {
                r.map_err(|m| at(&lmtp.rate.referenced, format!("delivery.lmtp: {m}")))
            };
            check(lmtp.recipients.validate())?;
            check(lmtp.size.validate())?;
            if lmtp.rate.value.0 <= 0.0 {
                return Err(at(
                    &lmtp.rate.referenced,
                    "delivery.lmtp.rate must be above zero".into(),
                ));
            }
            if lmtp.connections == 0 || lmtp.transactions_per_connection == 0 {
                return Err(at(
                    &lmtp.rate.referenced,
                    "delivery.lmtp.connections and transactions_per_connection must be at least 1"
                        .into(),
                ));
            }
        }
        let t = &self.target;
        if !t.lab && t.imap.is_none() && !self.mix.is_empty() {
            return Err(
                at(&self.duration.referenced, "target.imap is missing".into()).with_hint(
                    "set `target: {lab: true}` or `target: {imap: \"127.0.0.1:10143\"}`",
                ),
            );
        }
        for addr in [&t.imap, &t.lmtp, &t.smtp].into_iter().flatten() {
            let host = addr.value.rsplit_once(':').map(|(h, _)| h);
            let port_ok = addr
                .value
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
            if host.is_none() || !port_ok {
                return Err(at(
                    &addr.referenced,
                    format!("`{}` is not host:port", addr.value),
                ));
            }
        }
        Ok(())
    }

    fn validate_behaviour(
        &self,
        file: &str,
        entry: &Spanned<Behaviour>,
    ) -> Result<(), ScenarioError> {
        let name = entry.value.name();
        let fail = |m: String| ScenarioError::at(file, &entry.referenced, format!("{name}: {m}"));
        match &entry.value {
            Behaviour::Idler(s) => s.idle_for.validate().map_err(fail),
            Behaviour::Reader(s) => {
                s.actions.validate().map_err(fail)?;
                s.think.validate().map_err(fail)
            }
            Behaviour::Writer(s) => {
                s.appends.validate().map_err(fail)?;
                s.size.validate().map_err(fail)?;
                s.think.validate().map_err(fail)?;
                if !(0.0..=1.0).contains(&s.expunge_probability) {
                    return Err(fail("expunge_probability must be between 0 and 1".into()));
                }
                Ok(())
            }
        }
    }

    pub fn has_ramps(&self) -> bool {
        !(self.load.ramp_up.0.is_zero() && self.load.ramp_down.0.is_zero())
    }
}
