//! The simulated users: a compact table, not a task per user.
//!
//! A user costs 4 bytes of session counter plus one bit of "connected" whether she is online or
//! not, so ten million defined users take about 41 MB. Everything else about a user (her
//! client type, her next action) is recomputed from `(run seed, user id, session number)`, which
//! is also what makes runs reproducible whatever the thread count or scheduling order.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rand::{Rng, RngExt};
use rand_pcg::Pcg32;

/// Index of a user in `0..count`; her login name is the pattern with `first + id`.
pub type UserId = u32;

pub struct Population {
    count: u32,
    first: u64,
    pattern_prefix: String,
    pattern_suffix: String,
    /// One bit per user: set while a session of hers is running, so one user never holds
    /// two sessions of the same slot kind at once (like a real client).
    busy: Vec<AtomicU64>,
    /// Sessions each user has started: the session number seeds her next session's RNG.
    sessions: Vec<AtomicU32>,
}

impl Population {
    /// `pattern` must contain `{n}` (the scenario validator checks it).
    pub fn new(count: u32, first: u64, pattern: &str) -> Population {
        let (prefix, suffix) = pattern.split_once("{n}").unwrap_or((pattern, ""));
        Population {
            count,
            first,
            pattern_prefix: prefix.to_string(),
            pattern_suffix: suffix.to_string(),
            busy: (0..count.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            sessions: (0..count).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn login_name(&self, id: UserId) -> String {
        format!(
            "{}{}{}",
            self.pattern_prefix,
            self.first + u64::from(id),
            self.pattern_suffix
        )
    }

    /// Marks `id` busy if she is free. `AcqRel` so that the session's writes of one holder
    /// happen-before the next holder's claim.
    pub fn try_claim(&self, id: UserId) -> bool {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        self.busy[word].fetch_or(bit, Ordering::AcqRel) & bit == 0
    }

    pub fn release(&self, id: UserId) {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        self.busy[word].fetch_and(!bit, Ordering::AcqRel);
    }

    /// Claims a random free user; gives up after a bounded number of probes (the caller
    /// retries later), which only happens when nearly every user is connected.
    pub fn claim_random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<UserId> {
        for _ in 0..64 {
            let id = rng.random_range(0..self.count);
            if self.try_claim(id) {
                return Some(id);
            }
        }
        (0..self.count).find(|&id| self.try_claim(id))
    }

    /// Starts a session for `id` and returns the RNG that drives it: the same user's n-th
    /// session always gets the same stream.
    pub fn next_session_rng(&self, seed: u64, id: UserId) -> (u32, Pcg32) {
        let n = self.sessions[id as usize].fetch_add(1, Ordering::Relaxed);
        (n, session_rng(seed, id, n))
    }

    /// Approximate heap bytes of the table, for the offline-user memory figure.
    pub fn heap_bytes(&self) -> usize {
        self.busy.len() * 8 + self.sessions.len() * 4
    }
}

/// The RNG for user `id`'s session number `n`. PCG streams are independent per stream id,
/// so users never share a sequence; the state mixes in the session number.
pub fn session_rng(seed: u64, id: UserId, n: u32) -> Pcg32 {
    Pcg32::new(splitmix64(seed ^ (u64::from(n) << 32)), u64::from(id))
}

/// The RNG that draws how long user `id` stays offline after her session number `n`: its
/// own stream, so the gap does not depend on how far the session consumed its RNG.
pub fn gap_rng(seed: u64, id: UserId, n: u32) -> Pcg32 {
    Pcg32::new(
        splitmix64(seed ^ 0x6a9_0ff ^ (u64::from(n) << 32)),
        u64::from(id),
    )
}

/// A user's fixed traits (which client she runs) come from a stream no session uses.
pub fn user_rng(seed: u64, id: UserId) -> Pcg32 {
    Pcg32::new(splitmix64(seed ^ 0x05ee_d0f0_05e5), u64::from(id))
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_follow_the_pattern() {
        let p = Population::new(10, 1, "user{n}@lab.test");
        assert_eq!(p.login_name(0), "user1@lab.test");
        assert_eq!(p.login_name(9), "user10@lab.test");
    }

    #[test]
    fn a_user_is_claimed_once() {
        let p = Population::new(130, 1, "u{n}");
        assert!(p.try_claim(129));
        assert!(!p.try_claim(129));
        p.release(129);
        assert!(p.try_claim(129));
        let mut rng = Pcg32::seed_from_u64(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..129 {
            seen.insert(p.claim_random(&mut rng).unwrap());
        }
        assert_eq!(seen.len(), 129);
        assert_eq!(p.claim_random(&mut rng), None);
    }

    #[test]
    fn session_streams_are_reproducible_and_distinct() {
        let draw = |mut r: Pcg32| (0..8).map(|_| r.next_u32()).collect::<Vec<_>>();
        assert_eq!(draw(session_rng(7, 3, 0)), draw(session_rng(7, 3, 0)));
        assert_ne!(draw(session_rng(7, 3, 0)), draw(session_rng(7, 4, 0)));
        assert_ne!(draw(session_rng(7, 3, 0)), draw(session_rng(7, 3, 1)));
        assert_ne!(draw(session_rng(7, 3, 0)), draw(session_rng(8, 3, 0)));
    }

    #[test]
    fn ten_million_users_fit_in_little_memory() {
        let p = Population::new(10_000_000, 1, "user{n}");
        assert!(p.heap_bytes() < 42_000_000, "{}", p.heap_bytes());
    }
}
