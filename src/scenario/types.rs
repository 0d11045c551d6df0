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
    /// Track every message handed to the server and check at the end, over IMAP, that each
    /// is in its mailbox exactly once and byte-intact.
    #[serde(default)]
    pub audit: bool,
    /// How long the audit keeps looking for copies still missing after the run (mail
    /// through an MTA queue arrives later).
    #[serde(default = "default_audit_grace")]
    pub audit_grace: HumanDuration,
    /// Where to sample the server's memory and CPU every second. Default with `lab: true`:
    /// the lab's Dovecot; otherwise nothing is sampled.
    #[serde(default)]
    pub server: Option<ServerSpec>,
    /// `strict`: check the server's mailbox state rules on every response during the run
    /// (EXISTS/EXPUNGE numbering, UID order, UIDVALIDITY, APPENDUID) and count violations by
    /// check id in `results.json` (`checks`). `off` (default) only parses strictly.
    #[serde(default)]
    pub checks: ChecksMode,
}

/// Whether `mailswarm run` checks state rules while it loads the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksMode {
    #[default]
    Off,
    Strict,
}

/// One way to find the server under test; give exactly one.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerSpec {
    /// Root pid: PSS is summed over it and all its descendants.
    Pid(u32),
    /// A pid file such as Dovecot's `master.pid`.
    PidFile(PathBuf),
    /// Every process of this name (e.g. `dovecot`) and their descendants.
    Process(String),
    /// A cgroup directory (`memory.current`).
    Cgroup(PathBuf),
    /// A shell command printing the server's memory in bytes (for remote servers).
    Command(String),
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
    /// `none`, `starttls` or `implicit` (IMAPS; with `lab: true` the lab's IMAPS port).
    #[serde(default)]
    pub imap_tls: TlsMode,
    /// `none` or `starttls` for SMTP submission and SMTP delivery.
    #[serde(default)]
    pub smtp_tls: TlsMode,
    #[serde(default)]
    pub tls: TlsSpec,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    None,
    Starttls,
    Implicit,
}

/// Whom to trust. Default: the system's web roots (the lab's CA with `lab: true`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only for test servers with throw-away certificates.
    #[serde(default)]
    pub insecure: bool,
    /// Name to send in SNI and check in the certificate; default: the target host.
    #[serde(default)]
    pub server_name: Option<String>,
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
    /// Every user follows her own client's rhythm: online for a session, offline for the
    /// behaviour's `offline`/`poll_interval`/`revisit` time, again and again. Concurrency is
    /// whatever that rhythm produces, capped by `max_sessions`.
    Population,
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
    Desktop(DesktopSpec),
    Mobile(MobileSpec),
    Webmail(WebmailSpec),
    Sender(SenderSpec),
}

impl Behaviour {
    pub fn weight(&self) -> u32 {
        match self {
            Behaviour::Idler(s) => s.weight,
            Behaviour::Reader(s) => s.weight,
            Behaviour::Writer(s) => s.weight,
            Behaviour::Desktop(s) => s.weight,
            Behaviour::Mobile(s) => s.weight,
            Behaviour::Webmail(s) => s.weight,
            Behaviour::Sender(s) => s.weight,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Idler(_) => "idler",
            Behaviour::Reader(_) => "reader",
            Behaviour::Writer(_) => "writer",
            Behaviour::Desktop(_) => "desktop",
            Behaviour::Mobile(_) => "mobile",
            Behaviour::Webmail(_) => "webmail",
            Behaviour::Sender(_) => "sender",
        }
    }

    /// Time a user of this behaviour stays offline between sessions (population model).
    pub fn offline(&self) -> Dist<HumanDuration> {
        match self {
            Behaviour::Desktop(s) => s.offline,
            Behaviour::Mobile(s) => s.poll_interval,
            Behaviour::Webmail(s) => s.revisit,
            Behaviour::Sender(s) => s.offline,
            _ => default_revisit(),
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

fn minutes(m: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(m * 60))
}

fn default_revisit() -> Dist<HumanDuration> {
    Dist::Exponential {
        mean: minutes(30),
        max: None,
    }
}

/// A desktop client (Thunderbird-like): one connection parked in IDLE on INBOX that downloads
/// whole messages on push (offline use), plus a second connection that LISTs once and then
/// STATUSes the other folders periodically.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesktopSpec {
    pub weight: u32,
    /// Folders the second connection polls with STATUS (missing ones are skipped).
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    /// Thunderbird checks other folders every 10 minutes by default.
    #[serde(default = "default_status_interval")]
    pub status_interval: Dist<HumanDuration>,
    /// How long the client stays online per session.
    #[serde(default = "default_desktop_session")]
    pub session_length: Dist<HumanDuration>,
    /// Population model: offline time between sessions (laptop closed).
    #[serde(default = "default_desktop_offline")]
    pub offline: Dist<HumanDuration>,
}

fn default_folders() -> Vec<String> {
    ["Sent", "Drafts", "Trash"].map(String::from).to_vec()
}

fn default_status_interval() -> Dist<HumanDuration> {
    Dist::Fixed(minutes(10))
}

fn default_desktop_session() -> Dist<HumanDuration> {
    Dist::Fixed(minutes(8 * 60))
}

fn default_desktop_offline() -> Dist<HumanDuration> {
    Dist::Exponential {
        mean: minutes(60),
        max: None,
    }
}

/// A phone's mail app (iOS Mail in the background): no IDLE; it connects every
/// `poll_interval`, fetches the newest headers first, opens a few bodies partially, and leaves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MobileSpec {
    pub weight: u32,
    /// iOS polls every 15, 30 or 60 minutes.
    #[serde(default = "default_poll")]
    pub poll_interval: Dist<HumanDuration>,
    #[serde(default = "default_mobile_headers")]
    pub headers: u32,
    /// Bodies previewed per poll (first `preview_bytes` of each).
    #[serde(default = "default_mobile_bodies")]
    pub bodies: Dist<Count>,
    #[serde(default = "default_preview")]
    pub preview_bytes: ByteSize,
}

fn default_poll() -> Dist<HumanDuration> {
    Dist::Fixed(minutes(15))
}

fn default_mobile_headers() -> u32 {
    25
}

fn default_mobile_bodies() -> Dist<Count> {
    Dist::Uniform { min: 0, max: 2 }
}

fn default_preview() -> ByteSize {
    ByteSize(4096)
}

/// A webmail front end's IMAP traffic: short sessions that list a page of headers, search,
/// open one message, set flags and file a sent message in `Sent`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebmailSpec {
    pub weight: u32,
    #[serde(default = "default_page")]
    pub page: u32,
    #[serde(default = "default_think")]
    pub think: Dist<HumanDuration>,
    /// Chance per session of sending a message (APPEND to `sent_folder`).
    #[serde(default = "default_send_probability")]
    pub send_probability: f64,
    #[serde(default = "default_sent")]
    pub sent_folder: String,
    #[serde(default = "default_size")]
    pub size: Dist<ByteSize>,
    /// Population model: time until the user comes back.
    #[serde(default = "default_revisit")]
    pub revisit: Dist<HumanDuration>,
}

fn default_page() -> u32 {
    50
}

fn default_send_probability() -> f64 {
    0.3
}

fn default_sent() -> String {
    "Sent".into()
}

/// A mail client sending: SMTP submission with AUTH (after STARTTLS when
/// `target.smtp_tls: starttls`), a few messages per session to other users of the population.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSpec {
    pub weight: u32,
    /// Thunderbird sends up to 10 messages per SMTP connection; most sessions send one or two.
    #[serde(default = "default_appends")]
    pub messages: Dist<Count>,
    #[serde(default = "default_recipients")]
    pub recipients: Dist<Count>,
    #[serde(default = "default_size")]
    pub size: Dist<ByteSize>,
    #[serde(default = "default_think")]
    pub think: Dist<HumanDuration>,
    /// `plain` or `login`.
    #[serde(default)]
    pub auth: AuthKind,
    /// Population model: time until the user sends again.
    #[serde(default = "default_revisit")]
    pub offline: Dist<HumanDuration>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    #[default]
    Plain,
    Login,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Straight into the mail store over LMTP, as an MTA in front of Dovecot delivers.
    #[serde(default)]
    pub lmtp: Option<DeliverySpec>,
    /// Through the MTA over SMTP (no AUTH; the MTA relays for the local domain).
    #[serde(default)]
    pub smtp: Option<DeliverySpec>,
}

/// Mail arriving at a steady rate, as from the outside world, to random users.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
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

fn default_audit_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
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
        // One arrival a day at the least (slower rates overflow timers), a million a second at
        // the most.
        const MIN_RATE: f64 = 1.0 / 86_400.0;
        const MAX_RATE: f64 = 1_000_000.0;
        let at = |loc: &serde_saphyr::Location, msg: String| ScenarioError::at(file, loc, msg);
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            return Err(at(
                &self.duration.referenced,
                format!("name `{}` must be a non-empty word without slashes (it names the report folder)", self.name),
            ));
        }
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
        if self
            .users
            .first
            .checked_add(users)
            .is_none_or(|end| end > u64::from(u32::MAX))
        {
            return Err(at(
                &self.users.count.referenced,
                format!(
                    "users.first + users.count must stay below {} (user ids are 32-bit)",
                    u32::MAX
                ),
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
                Some(s) if s.value == 0 => {
                    return Err(at(&s.referenced, "load.sessions must be at least 1".into()))
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
                Some(r) if !(MIN_RATE..=MAX_RATE).contains(&r.value.0) => {
                    return Err(at(
                        &r.referenced,
                        format!("load.arrival_rate must be between {MIN_RATE}/s and {MAX_RATE}/s"),
                    ))
                }
                _ => {}
            },
            Model::Population => {
                if self.mix.is_empty() {
                    return Err(at(
                        &self.users.count.referenced,
                        "the population model needs a mix of behaviours".into(),
                    ));
                }
            }
        }
        if self.load.max_sessions == Some(0) {
            return Err(at(
                &self.users.count.referenced,
                "load.max_sessions must be at least 1".into(),
            ));
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
        if self.mix.is_empty()
            && self
                .delivery
                .as_ref()
                .is_none_or(|d| d.lmtp.is_none() && d.smtp.is_none())
        {
            return Err(at(
                &self.duration.referenced,
                "nothing to do: the scenario has no mix and no delivery".into(),
            ));
        }
        let deliveries = self
            .delivery
            .iter()
            .flat_map(|d| [d.lmtp.as_ref(), d.smtp.as_ref()])
            .flatten();
        for lmtp in deliveries {
            let check = |r: Result<(), String>| {
                r.map_err(|m| at(&lmtp.rate.referenced, format!("delivery.lmtp: {m}")))
            };
            check(lmtp.recipients.validate())?;
            check(lmtp.size.validate())?;
            if !(MIN_RATE..=MAX_RATE).contains(&lmtp.rate.value.0) {
                return Err(at(
                    &lmtp.rate.referenced,
                    format!("delivery rate must be between {MIN_RATE}/s and {MAX_RATE}/s"),
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
            Behaviour::Desktop(s) => {
                s.status_interval.validate().map_err(fail)?;
                s.session_length.validate().map_err(fail)?;
                s.offline.validate().map_err(fail)?;
                if s.status_interval.mean() <= 0.0 {
                    return Err(fail("status_interval must be above zero".into()));
                }
                Ok(())
            }
            Behaviour::Mobile(s) => {
                s.poll_interval.validate().map_err(fail)?;
                s.bodies.validate().map_err(fail)
            }
            Behaviour::Sender(s) => {
                s.messages.validate().map_err(fail)?;
                s.recipients.validate().map_err(fail)?;
                s.size.validate().map_err(fail)?;
                s.think.validate().map_err(fail)?;
                s.offline.validate().map_err(fail)
            }
            Behaviour::Webmail(s) => {
                s.think.validate().map_err(fail)?;
                s.size.validate().map_err(fail)?;
                s.revisit.validate().map_err(fail)?;
                if !(0.0..=1.0).contains(&s.send_probability) {
                    return Err(fail("send_probability must be between 0 and 1".into()));
                }
                Ok(())
            }
        }
    }

    pub fn has_ramps(&self) -> bool {
        !(self.load.ramp_up.0.is_zero() && self.load.ramp_down.0.is_zero())
    }
}
