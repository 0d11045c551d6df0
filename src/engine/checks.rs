//! `checks: strict`: mailbox state rules checked on every response while the run loads the
//! server, counted by check id for `results.json` (`checks`). The ids are those of the same
//! rules in `mailswarm conform`.
//!
//! Only rules that hold whatever other sessions do at the same time are checked here:
//! sequence numbering (from the client's own bookkeeping), UIDs ascending with sequence numbers
//! within one FETCH answer, UIDVALIDITY per mailbox across every session of the run, and
//! APPENDUID naming the selected mailbox's UIDVALIDITY.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::proto::imap::{FetchedMessage, SequenceViolations};

/// Examples kept per check id: enough to start debugging, bounded for long runs.
const EXAMPLES_PER_ID: usize = 5;

/// A state rule checked during runs.
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub reference: &'static str,
}

pub const EXISTS_NO_DECREASE: Rule = Rule {
    id: "imap.seq.exists-no-decrease",
    title: "EXISTS never reports fewer messages than known; only EXPUNGE shrinks the mailbox",
    reference: "RFC 9051 5.2",
};
pub const EXPUNGE_IN_RANGE: Rule = Rule {
    id: "imap.seq.expunge-in-range",
    title: "EXPUNGE names an existing message sequence number",
    reference: "RFC 9051 7.5.1",
};
pub const NO_EXPUNGE_DURING_FETCH: Rule = Rule {
    id: "imap.seq.no-expunge-during-fetch-store-search",
    title: "No EXPUNGE while answering FETCH, STORE or SEARCH",
    reference: "RFC 9051 7.5.1",
};
pub const UID_ASCENDING: Rule = Rule {
    id: "imap.fetch.uid-ascending",
    title: "UIDs ascend with sequence numbers",
    reference: "RFC 9051 2.3.1.1",
};
pub const UIDVALIDITY_STABLE: Rule = Rule {
    id: "imap.select.uidvalidity-stable",
    title: "A mailbox keeps its UIDVALIDITY across sessions",
    reference: "RFC 9051 2.3.1.1",
};
pub const APPENDUID_VALIDITY: Rule = Rule {
    id: "imap.append.appenduid-validity",
    title: "APPENDUID carries the mailbox's UIDVALIDITY",
    reference: "RFC 4315 3",
};

pub const RULES: [&Rule; 6] = [
    &EXISTS_NO_DECREASE,
    &EXPUNGE_IN_RANGE,
    &NO_EXPUNGE_DURING_FETCH,
    &UID_ASCENDING,
    &UIDVALIDITY_STABLE,
    &APPENDUID_VALIDITY,
];

/// Shared by every session of a run.
#[derive(Default)]
pub struct StateChecks {
    /// Responses or answers examined (one per command checked).
    observed: AtomicU64,
    violations: Mutex<BTreeMap<&'static str, (u64, Vec<String>)>>,
    /// UIDVALIDITY first seen per (login, mailbox).
    validity: Mutex<HashMap<(String, String), u32>>,
}

impl StateChecks {
    pub fn new() -> StateChecks {
        StateChecks::default()
    }

    /// Records one breach of `rule` with what was seen.
    pub fn violation(&self, rule: &Rule, detail: impl FnOnce() -> String) {
        let mut map = self.violations.lock().expect("checks lock");
        let entry = map.entry(rule.id).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES_PER_ID {
            entry.1.push(detail());
        }
    }

    /// What the client's sequence bookkeeping saw during the last command(s).
    pub fn sequence(&self, login: &str, seen: SequenceViolations) {
        self.observed.fetch_add(1, Ordering::Relaxed);
        let cases = [
            (&EXISTS_NO_DECREASE, seen.exists_decreased),
            (&EXPUNGE_IN_RANGE, seen.expunge_out_of_range),
            (
                &NO_EXPUNGE_DURING_FETCH,
                seen.expunge_during_fetch_store_search,
            ),
        ];
        for (rule, n) in cases {
            for _ in 0..n {
                self.violation(rule, || format!("session of {login}"));
            }
        }
    }

    /// One FETCH answer: by sequence number, UIDs must ascend.
    pub fn fetch_answer(&self, login: &str, mailbox: &str, messages: &[FetchedMessage]) {
        self.observed.fetch_add(1, Ordering::Relaxed);
        let mut by_seq: Vec<(u32, u32)> = messages
            .iter()
            .filter_map(|m| m.uid.map(|uid| (m.seq, uid)))
            .collect();
        by_seq.sort_unstable();
        by_seq.dedup();
        for pair in by_seq.windows(2) {
            let ((s1, u1), (s2, u2)) = (pair[0], pair[1]);
            if s1 < s2 && u1 >= u2 {
                self.violation(&UID_ASCENDING, || {
                    format!("{login} {mailbox}: seq {s1} has UID {u1}, seq {s2} has UID {u2}")
                });
            }
        }
    }

    /// UIDVALIDITY after a SELECT: the first one seen for this mailbox is the reference.
    /// (A mailbox deleted and re-created may change it legitimately; runs do neither.)
    pub fn selected(&self, login: &str, mailbox: &str, uid_validity: Option<u32>) {
        let Some(v) = uid_validity else { return };
        self.observed.fetch_add(1, Ordering::Relaxed);
        let mut map = self.validity.lock().expect("checks lock");
        let first = *map
            .entry((login.to_string(), mailbox.to_string()))
            .or_insert(v);
        drop(map);
        if first != v {
            self.violation(&UIDVALIDITY_STABLE, || {
                format!("{login} {mailbox}: UIDVALIDITY {first}, later {v}")
            });
        }
    }

    /// APPENDUID of an append into the selected mailbox.
    pub fn appended(&self, login: &str, mailbox: &str, selected: Option<u32>, appenduid: u32) {
        let Some(selected) = selected else { return };
        self.observed.fetch_add(1, Ordering::Relaxed);
        if selected != appenduid {
            self.violation(&APPENDUID_VALIDITY, || {
                format!("{login} {mailbox}: UIDVALIDITY {selected}, APPENDUID names {appenduid}")
            });
        }
    }

    /// The `checks` section of `results.json`: totals, counts by id (every rule, zeros too,
    /// so thresholds such as `checks.by_id.imap.fetch.uid-ascending == 0` always resolve), and
    /// one entry per rule in the conformance list layout the HTML report shows.
    pub fn summary(&self) -> ChecksSummary {
        let map = self.violations.lock().expect("checks lock");
        let by_id: BTreeMap<&'static str, u64> = RULES
            .iter()
            .map(|r| (r.id, map.get(r.id).map_or(0, |e| e.0)))
            .collect();
        let checks = RULES
            .iter()
            .map(|r| {
                let (count, examples) = map.get(r.id).cloned().unwrap_or_default();
                ChecksEntry {
                    id: r.id,
                    status: if count == 0 { "pass" } else { "fail" },
                    title: r.title,
                    reference: r.reference,
                    message: (count > 0)
                        .then(|| format!("{count} violations, e.g. {}", examples.join("; "))),
                }
            })
            .collect();
        ChecksSummary {
            mode: "strict",
            observed: self.observed.load(Ordering::Relaxed),
            violations: by_id.values().sum(),
            by_id,
            checks,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ChecksSummary {
    pub mode: &'static str,
    /// Answers examined.
    pub observed: u64,
    pub violations: u64,
    pub by_id: BTreeMap<&'static str, u64>,
    pub checks: Vec<ChecksEntry>,
}

#[derive(Debug, Serialize)]
pub struct ChecksEntry {
    pub id: &'static str,
    pub status: &'static str,
    pub title: &'static str,
    pub reference: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u32, uid: u32) -> FetchedMessage {
        FetchedMessage {
            seq,
            uid: Some(uid),
            ..FetchedMessage::default()
        }
    }

    #[test]
    fn uids_out_of_order_are_counted_with_an_example() {
        let checks = StateChecks::new();
        checks.fetch_answer("user1", "INBOX", &[msg(1, 10), msg(2, 12), msg(3, 15)]);
        assert_eq!(checks.summary().violations, 0);
        checks.fetch_answer("user1", "INBOX", &[msg(2, 12), msg(1, 10), msg(3, 11)]);
        let s = checks.summary();
        assert_eq!(s.by_id["imap.fetch.uid-ascending"], 1);
        assert_eq!(s.violations, 1);
        let entry = s.checks.iter().find(|c| c.id == UID_ASCENDING.id).unwrap();
        assert_eq!(entry.status, "fail");
        assert!(entry
            .message
            .as_ref()
            .unwrap()
            .contains("seq 2 has UID 12, seq 3 has UID 11"));
    }

    #[test]
    fn uidvalidity_must_not_change_between_sessions() {
        let checks = StateChecks::new();
        checks.selected("user1", "INBOX", Some(7));
        checks.selected("user2", "INBOX", Some(9));
        checks.selected("user1", "INBOX", Some(7));
        assert_eq!(checks.summary().violations, 0);
        checks.selected("user1", "INBOX", Some(8));
        assert_eq!(checks.summary().by_id[UIDVALIDITY_STABLE.id], 1);
    }

    #[test]
    fn sequence_violations_and_appenduid_are_counted_by_id() {
        let checks = StateChecks::new();
        checks.sequence(
            "user3",
            SequenceViolations {
                exists_decreased: 1,
                expunge_out_of_range: 0,
                expunge_during_fetch_store_search: 2,
            },
        );
        checks.appended("user3", "INBOX", Some(5), 5);
        checks.appended("user3", "INBOX", Some(5), 6);
        let s = checks.summary();
        assert_eq!(s.by_id[EXISTS_NO_DECREASE.id], 1);
        assert_eq!(s.by_id[EXPUNGE_IN_RANGE.id], 0);
        assert_eq!(s.by_id[NO_EXPUNGE_DURING_FETCH.id], 2);
        assert_eq!(s.by_id[APPENDUID_VALIDITY.id], 1);
        assert_eq!(s.violations, 4);
        assert_eq!(s.observed, 3);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["checks"].as_array().unwrap().len(), RULES.len());
    }
}
