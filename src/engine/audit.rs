//! The delivery audit (`audit: true`): every message mailswarm hands to the server — by
//! LMTP, SMTP or APPEND — is expected in one mailbox exactly once, byte for byte.
//!
//! Sessions report what the server accepted (and what a client deleted on purpose); at the
//! end the auditor reads every involved mailbox over IMAP and checks each expected copy by the
//! `X-Mailswarm-Id` and body digest the message generator put in. Copies still missing are
//! looked for again until the grace time ends (mail through an MTA queue arrives later); what
//! turns up then is `late`, what never does is `lost`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::message::{verify_digest, DigestCheck};
use super::plan::RunPlan;
use super::population::UserId;
use crate::metrics::new_histogram;
use crate::proto::imap::{BodyPart, FetchItem};

/// Where a copy is expected.
type Place = (UserId, u16);

#[derive(Debug, Clone, Copy)]
struct Copy {
    place: Place,
    accepted_ms: u64,
    seen: bool,
    deleted: bool,
}

#[derive(Default)]
struct Ledger {
    mailboxes: Vec<String>,
    expected: HashMap<String, Vec<Copy>>,
    deleted_by_clients: u64,
}

impl Ledger {
    fn mailbox_index(&mut self, name: &str) -> u16 {
        match self.mailboxes.iter().position(|m| m == name) {
            Some(i) => i as u16,
            None => {
                self.mailboxes.push(name.to_string());
                (self.mailboxes.len() - 1) as u16
            }
        }
    }
}

/// Shared by every session of an audited run.
pub struct Auditor {
    start: Instant,
    ledger: Mutex<Ledger>,
    /// Accept → first seen by a client pushed the new mail (IDLE), in microseconds.
    delays: Mutex<Histogram<u64>>,
}

/// The `audit` section of `results.json`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AuditReport {
    /// Message copies the server accepted (one per LMTP recipient, SMTP recipient or APPEND).
    pub accepted: u64,
    /// Found exactly once, byte-intact.
    pub delivered: u64,
    /// Never found.
    pub lost: u64,
    /// Found more than once.
    pub duplicated: u64,
    /// Found, but the body digest does not match.
    pub corrupted: u64,
    /// Found only after the run ended, during the grace time.
    pub late: u64,
    /// Deleted by a simulated client (not counted as lost).
    pub deleted_by_clients: u64,
    /// Users whose mailboxes could not be read; their copies count as lost.
    pub unreadable_users: u64,
    pub delay_samples: u64,
    pub delay_p50_ms: Option<f64>,
    pub delay_p99_ms: Option<f64>,
    pub delay_max_ms: Option<f64>,
}

impl Default for Auditor {
    fn default() -> Self {
        Auditor::new()
    }
}

/// The message id a generated message carries, or None when it has none.
pub fn message_id(raw: &[u8]) -> Option<String> {
    match verify_digest(raw) {
        DigestCheck::Ok { id } | DigestCheck::Mismatch { id } => Some(id),
        DigestCheck::Missing => None,
    }
}

impl Auditor {
    pub fn new() -> Auditor {
        Auditor {
            start: Instant::now(),
            ledger: Mutex::new(Ledger::default()),
            delays: Mutex::new(new_histogram()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The server accepted a copy of message `id` for `user`'s `mailbox`.
    pub fn accepted(&self, id: &str, user: UserId, mailbox: &str) {
        let accepted_ms = self.now_ms();
        let mut ledger = self.ledger.lock().expect("audit ledger");
        let place = (user, ledger.mailbox_index(mailbox));
        ledger
            .expected
            .entry(id.to_string())
            .or_default()
            .push(Copy {
                place,
                accepted_ms,
                seen: false,
                deleted: false,
            });
    }

    /// A simulated client deleted its copy on purpose.
    pub fn deleted(&self, id: &str, user: UserId, mailbox: &str) {
        let mut ledger = self.ledger.lock().expect("audit ledger");
        let place = (user, ledger.mailbox_index(mailbox));
        let mut hit = false;
        if let Some(copy) = ledger
            .expected
            .get_mut(id)
            .and_then(|copies| copies.iter_mut().find(|c| c.place == place && !c.deleted))
        {
            copy.deleted = true;
            hit = true;
        }
        if hit {
            ledger.deleted_by_clients += 1;
        }
    }

    /// A client of `user` saw message `id` arrive (pushed during IDLE): the first sighting
    /// gives the accept-to-visible delay.
    pub fn seen(&self, id: &str, user: UserId) {
        let now = self.now_ms();
        let delay_ms = {
            let mut ledger = self.ledger.lock().expect("audit ledger");
            let Some(copy) = ledger
                .expected
                .get_mut(id)
                .and_then(|copies| copies.iter_mut().find(|c| c.place.0 == user && !c.seen))
            else {
                return;
            };
            copy.seen = true;
            now.saturating_sub(copy.accepted_ms)
        };
        self.delays
            .lock()
            .expect("audit delays")
            .saturating_record((delay_ms * 1000).max(1));
    }

    /// Checks every expected copy over IMAP. `grace` bounds how long missing copies are looked
    /// for again after the first pass.
    pub async fn verify(&self, plan: &Arc<RunPlan>, grace: Duration) -> AuditReport {
        let (mailboxes, mut pending, deleted_by_clients) = {
            let ledger = self.ledger.lock().expect("audit ledger");
            let mut pending: HashMap<Place, Vec<String>> = HashMap::new();
            for (id, copies) in &ledger.expected {
                for copy in copies.iter().filter(|c| !c.deleted) {
                    pending.entry(copy.place).or_default().push(id.clone());
                }
            }
            (ledger.mailboxes.clone(), pending, ledger.deleted_by_clients)
        };
        let mut report = AuditReport {
            accepted: pending.values().map(|v| v.len() as u64).sum::<u64>() + deleted_by_clients,
            deleted_by_clients,
            ..AuditReport::default()
        };
        let deadline = Instant::now() + grace;
        let mut first_pass = true;
        let mut unreadable: HashMap<UserId, ()> = HashMap::new();
        loop {
            let found = scan_places(plan, &mailboxes, &pending).await;
            let mut still = HashMap::new();
            for (place, ids) in pending {
                let Some(seen) = found.get(&place) else {
                    unreadable.insert(place.0, ());
                    still.insert(place, ids);
                    continue;
                };
                let mut missing = Vec::new();
                for id in ids {
                    match seen.get(&id) {
                        None => missing.push(id),
                        Some(&(count, intact)) => {
                            if !first_pass {
                                report.late += 1;
                            }
                            if count > 1 {
                                report.duplicated += 1;
                            } else if !intact {
                                report.corrupted += 1;
                            } else {
                                report.delivered += 1;
                            }
                        }
                    }
                }
                if !missing.is_empty() {
                    still.insert(place, missing);
                }
            }
            pending = still;
            first_pass = false;
            if pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1).min(deadline - Instant::now())).await;
        }
        report.lost = pending.values().map(|v| v.len() as u64).sum();
        report.unreadable_users = unreadable.len() as u64;
        let delays = self.delays.lock().expect("audit delays");
        report.delay_samples = delays.len();
        if !delays.is_empty() {
            let ms = |us: u64| (us as f64 / 1000.0 * 10.0).round() / 10.0;
            report.delay_p50_ms = Some(ms(delays.value_at_quantile(0.5)));
            report.delay_p99_ms = Some(ms(delays.value_at_quantile(0.99)));
            report.delay_max_ms = Some(ms(delays.max()));
        }
        report
    }
}

/// What one mailbox holds: id → (copies, all intact).
type Found = HashMap<String, (u32, bool)>;

/// Reads each place's mailbox, a bounded number of users at a time. A place whose mailbox
/// could not be read is absent from the answer.
async fn scan_places(
    plan: &Arc<RunPlan>,
    mailboxes: &[String],
    pending: &HashMap<Place, Vec<String>>,
) -> HashMap<Place, Found> {
    let mut by_user: HashMap<UserId, Vec<u16>> = HashMap::new();
    for place in pending.keys() {
        by_user.entry(place.0).or_default().push(place.1);
    }
    let mut users: Vec<(UserId, Vec<u16>)> = by_user.into_iter().collect();
    users.sort_unstable();
    let mut tasks = JoinSet::new();
    let mut out = HashMap::new();
    let mut queue = users.into_iter();
    const PARALLEL: usize = 16;
    loop {
        while tasks.len() < PARALLEL {
            let Some((user, boxes)) = queue.next() else {
                break;
            };
            let plan = plan.clone();
            let names: Vec<(u16, String)> = boxes
                .into_iter()
                .map(|i| (i, mailboxes[usize::from(i)].clone()))
                .collect();
            tasks.spawn(async move { (user, read_user(&plan, user, &names).await) });
        }
        match tasks.join_next().await {
            Some(Ok((user, Some(found)))) => {
                for (index, mailbox) in found {
                    out.insert((user, index), mailbox);
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    out
}

const BATCH: u32 = 100;

async fn read_user(
    plan: &RunPlan,
    user: UserId,
    mailboxes: &[(u16, String)],
) -> Option<Vec<(u16, Found)>> {
    let mut client = super::session::connect_for(plan, user).await.ok()?;
    let login = plan.population.login_name(user);
    client
        .login(&login, plan.credentials.password(&login))
        .await
        .ok()?;
    let items = [FetchItem::Body {
        part: BodyPart::Full,
        peek: true,
        partial: None,
    }];
    let mut out = Vec::new();
    for (index, name) in mailboxes {
        let info = client.examine(name).await.ok()?;
        let mut found = Found::new();
        let mut first = 1;
        while first <= info.exists {
            let last = (first + BATCH - 1).min(info.exists);
            let set = super::session::seq_range(first, last);
            for message in client.fetch(&set, &items).await.ok()? {
                let Some(body) = message.body() else { continue };
                let (id, intact) = match verify_digest(body) {
                    DigestCheck::Ok { id } => (id, true),
                    DigestCheck::Mismatch { id } => (id, false),
                    DigestCheck::Missing => continue,
                };
                let entry = found.entry(id).or_insert((0, true));
                entry.0 += 1;
                entry.1 &= intact;
            }
            first = last + 1;
        }
        out.push((*index, found));
    }
    let _ = client.logout().await;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_tracks_acceptance_deletion_and_sightings() {
        let a = Auditor::new();
        a.accepted("r-1", 3, "INBOX");
        a.accepted("r-1", 4, "INBOX");
        a.accepted("r-2", 3, "Sent");
        a.deleted("r-2", 3, "Sent");
        a.deleted("r-2", 3, "Sent");
        a.deleted("r-9", 3, "INBOX");
        a.seen("r-1", 4);
        a.seen("r-1", 4);
        a.seen("r-unknown", 4);
        let ledger = a.ledger.lock().unwrap();
        assert_eq!(ledger.deleted_by_clients, 1);
        assert_eq!(ledger.expected["r-1"].len(), 2);
        assert!(ledger.expected["r-1"][1].seen);
        assert!(!ledger.expected["r-1"][0].seen);
        assert_eq!(ledger.mailboxes, ["INBOX", "Sent"]);
        assert_eq!(a.delays.lock().unwrap().len(), 1);
    }
}
