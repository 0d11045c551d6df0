//! What a session will do, decided up front from the user's RNG.
//!
//! Drawing every random choice before the first command makes a user's behaviour a pure
//! function of `(seed, user id, session number)`: the server's answers change which message an
//! action lands on, never which actions happen or in what order. That is what lets two runs —
//! on other thread counts or shards — be compared user by user.

use std::time::Duration;

use rand::{Rng, RngExt};
use rand_pcg::Pcg32;
use serde::Serialize;

use crate::scenario::{Behaviour, IdlerSpec, MobileSpec, ReaderSpec, WebmailSpec, WriterSpec};

/// Canned searches a reader or webmail user runs; indices are stable (they appear in traces).
pub const SEARCHES: &[&str] = &[
    "UNSEEN",
    "FLAGGED",
    "SUBJECT \"meeting\"",
    "SINCE 1-Jan-2020",
    "TEXT \"invoice\"",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    Seen,
    Flagged,
}

/// One step of a session. `pick` values choose among the messages the session has seen
/// (`pick % count`), so the choice is fixed before the server says how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    Think {
        ms: u64,
    },
    Select,
    /// FETCH the newest `count` messages' UID, FLAGS, size and a few header fields.
    ListHeaders {
        count: u32,
    },
    /// FETCH the newest `count` messages' ENVELOPE (what a webmail page shows).
    ListEnvelopes {
        count: u32,
    },
    /// UID FETCH a whole body (`peek: false` sets \Seen, as opening a message does).
    Open {
        pick: u32,
        peek: bool,
    },
    /// UID FETCH BODYSTRUCTURE plus the first `bytes` of part 1 (a phone's preview).
    Preview {
        pick: u32,
        bytes: u32,
    },
    Flag {
        pick: u32,
        flag: FlagKind,
        add: bool,
    },
    Search {
        query: u8,
    },
    Noop,
    /// APPEND a generated message of `size` bytes; `seed` (below 2^63) makes its bytes
    /// reproducible and numbers it in the run.
    Append {
        size: u64,
        seed: u64,
        to_sent: bool,
    },
    /// STORE \Deleted on the oldest message and EXPUNGE.
    ExpungeOldest,
    /// IDLE for `ms`, fetching pushed new mail when `fetch_on_push`.
    Idle {
        ms: u64,
        fetch_on_push: bool,
    },
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn think<R: Rng + ?Sized>(
    dist: &crate::scenario::dist::Dist<crate::scenario::units::HumanDuration>,
    rng: &mut R,
) -> Action {
    Action::Think {
        ms: ms(dist.sample(rng).0),
    }
}

/// The actions of one session of `behaviour`. Desktop sessions are long-lived and reactive;
/// they have their own driver and only an IDLE step here.
pub fn script(behaviour: &Behaviour, rng: &mut Pcg32) -> Vec<Action> {
    match behaviour {
        Behaviour::Idler(s) => idler(s, rng),
        Behaviour::Reader(s) => reader(s, rng),
        Behaviour::Writer(s) => writer(s, rng),
        Behaviour::Mobile(s) => mobile(s, rng),
        Behaviour::Webmail(s) => webmail(s, rng),
        Behaviour::Desktop(s) => vec![
            Action::Select,
            Action::Idle {
                ms: ms(s.session_length.sample(rng).0),
                fetch_on_push: true,
            },
        ],
    }
}

fn idler(s: &IdlerSpec, rng: &mut Pcg32) -> Vec<Action> {
    vec![
        Action::Select,
        Action::Idle {
            ms: ms(s.idle_for.sample(rng).0),
            fetch_on_push: s.fetch_on_push,
        },
    ]
}

fn reader(s: &ReaderSpec, rng: &mut Pcg32) -> Vec<Action> {
    let mut out = vec![
        Action::Select,
        Action::ListHeaders {
            count: s.recent_headers.max(1),
        },
    ];
    for _ in 0..s.actions.sample(rng) {
        out.push(think(&s.think, rng));
        let pick = rng.next_u32();
        out.push(match rng.random_range(0..100u32) {
            0..50 => Action::Open { pick, peek: false },
            50..70 => Action::Flag {
                pick,
                flag: FlagKind::Flagged,
                add: rng.random_bool(0.5),
            },
            70..90 => Action::Search {
                query: rng.random_range(0..SEARCHES.len() as u8),
            },
            _ => Action::Noop,
        });
    }
    out
}

fn writer(s: &WriterSpec, rng: &mut Pcg32) -> Vec<Action> {
    let mut out = Vec::new();
    for n in 0..s.appends.sample(rng) {
        if n > 0 {
            out.push(think(&s.think, rng));
        }
        out.push(Action::Append {
            size: s.size.sample(rng).0,
            seed: rng.next_u64() >> 1,
            to_sent: false,
        });
    }
    if rng.random_bool(s.expunge_probability) {
        out.push(Action::Select);
        out.push(Action::ExpungeOldest);
    }
    out
}

fn mobile(s: &MobileSpec, rng: &mut Pcg32) -> Vec<Action> {
    let mut out = vec![
        Action::Select,
        Action::ListHeaders {
            count: s.headers.max(1),
        },
    ];
    let bytes = u32::try_from(s.preview_bytes.0).unwrap_or(u32::MAX).max(1);
    for _ in 0..s.bodies.sample(rng) {
        out.push(Action::Preview {
            pick: rng.next_u32(),
            bytes,
        });
    }
    if rng.random_bool(0.5) {
        out.push(Action::Flag {
            pick: rng.next_u32(),
            flag: FlagKind::Seen,
            add: true,
        });
    }
    out
}

fn webmail(s: &WebmailSpec, rng: &mut Pcg32) -> Vec<Action> {
    let mut out = vec![
        Action::Select,
        Action::ListEnvelopes {
            count: s.page.max(1),
        },
        think(&s.think, rng),
        Action::Search {
            query: rng.random_range(0..SEARCHES.len() as u8),
        },
        think(&s.think, rng),
    ];
    let pick = rng.next_u32();
    out.push(Action::Open { pick, peek: true });
    out.push(Action::Flag {
        pick,
        flag: FlagKind::Seen,
        add: true,
    });
    if rng.random_bool(s.send_probability) {
        out.push(think(&s.think, rng));
        out.push(Action::Append {
            size: s.size.sample(rng).0,
            seed: rng.next_u64() >> 1,
            to_sent: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::population::session_rng;
    use crate::scenario::load_str;

    const MIX: &str = r#"
name: t
duration: 60s
target: {imap: "127.0.0.1:1"}
users: {count: 100, password: x}
load: {sessions: 10}
mix:
  - idler: {weight: 1}
  - reader: {weight: 1}
  - writer: {weight: 1}
  - mobile: {weight: 1}
  - webmail: {weight: 1}
  - desktop: {weight: 1}
"#;

    fn behaviours() -> Vec<Behaviour> {
        let loaded = load_str(MIX, None).unwrap();
        loaded
            .scenario
            .mix
            .iter()
            .map(|b| b.value.clone())
            .collect()
    }

    #[test]
    fn a_users_session_is_the_same_on_every_draw() {
        for behaviour in behaviours() {
            for user in [0, 1, 77] {
                for session in [0, 5] {
                    let a = script(&behaviour, &mut session_rng(42, user, session));
                    let b = script(&behaviour, &mut session_rng(42, user, session));
                    assert_eq!(a, b, "{}", behaviour.name());
                    assert!(!a.is_empty());
                }
            }
        }
    }

    #[test]
    fn sessions_differ_between_users_and_seeds() {
        let reader = &behaviours()[1];
        let base = script(reader, &mut session_rng(42, 3, 0));
        let other_user = script(reader, &mut session_rng(42, 4, 0));
        let other_seed = script(reader, &mut session_rng(43, 3, 0));
        assert_ne!(base, other_user);
        assert_ne!(base, other_seed);
    }

    #[test]
    fn reader_mix_has_the_documented_shape() {
        let reader = &behaviours()[1];
        let mut counts = [0u32; 4];
        for user in 0..500 {
            for action in script(reader, &mut session_rng(1, user, 0)) {
                match action {
                    Action::Open { .. } => counts[0] += 1,
                    Action::Flag { .. } => counts[1] += 1,
                    Action::Search { .. } => counts[2] += 1,
                    Action::Noop => counts[3] += 1,
                    _ => {}
                }
            }
        }
        let total: u32 = counts.iter().sum();
        let share = |n: u32| f64::from(n) / f64::from(total);
        assert!((share(counts[0]) - 0.5).abs() < 0.05, "{counts:?}");
        assert!((share(counts[1]) - 0.2).abs() < 0.05, "{counts:?}");
        assert!((share(counts[2]) - 0.2).abs() < 0.05, "{counts:?}");
    }
}
