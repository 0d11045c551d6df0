//! `mailswarm conform`: RFC-indexed checks of an IMAP server (and optionally its SMTP and LMTP
//! endpoints), run one after another against real accounts.
//!
//! Every check has a stable dotted id (`imap.select.uidvalidity-range`), the RFC section it
//! enforces, its level (MUST or SHOULD), the capabilities it needs (skipped with the reason when
//! the server does not announce them) and whether it changes mailbox state (`--no-destructive`
//! skips those). Checks talk to the server through the ordinary protocol clients, so every
//! response of every check is also decoded by the strict imap-codec grammar: a violation fails
//! the check with the raw line.
//!
//! Zero false positives is the rule: a check asserts only what the RFC requires of every
//! server, tolerates what the RFC leaves open (for example when unsolicited responses arrive),
//! and never depends on mailbox contents it did not create itself. Destructive checks work in
//! scratch mailboxes named after the run, deleted at the end.
//!
//! Layers: [`target`] (where and as whom) → [`context`] (sessions, scratch mailboxes,
//! transcripts) → the check tables ([`imap`], [`smtp`], [`lmtp`]) → [`runner`] (selection,
//! capability gating, waivers) → [`output`] (console, JUnit, JSON in the schema the gate reads).

pub mod context;
pub mod imap;
pub mod lmtp;
pub mod output;
pub mod runner;
pub mod smtp;
pub mod target;
pub mod waivers;

use std::future::Future;
use std::pin::Pin;

use crate::proto::imap::ImapError;
use crate::proto::smtp::SmtpError;

pub use context::Ctx;
pub use runner::{run, RunOptions};
pub use target::{Account, Target};

/// How strongly the RFC words the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

/// Which endpoint a check talks to (besides IMAP, which most checks also use to read back).
pub use crate::metrics::Protocol;

/// What a check function returns: `Ok(())` is a pass.
pub type CheckResult = Result<(), CheckError>;

/// The future of one running check. Checks run one at a time on a current-thread runtime,
/// so the future need not be `Send`.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + 'a>>;

/// A check's body.
pub type CheckFn = for<'a> fn(&'a Ctx) -> CheckFuture<'a>;

/// One conformance check: its identity, the rule it enforces and its body.
#[derive(Clone, Copy)]
pub struct Check {
    /// Stable, dotted, lower case: `protocol.area.rule`. The first two parts are the group.
    pub id: &'static str,
    pub title: &'static str,
    /// The rule, e.g. `RFC 9051 7.3.1`.
    pub reference: &'static str,
    pub level: Level,
    pub protocol: Protocol,
    /// Capabilities (IMAP) or EHLO/LHLO keywords (SMTP, LMTP) the check needs. All must be
    /// announced; a name with `|` needs any one of its alternatives (`LITERAL+|LITERAL-`).
    pub needs: &'static [&'static str],
    /// How many distinct accounts the check logs in as.
    pub accounts: usize,
    /// Changes server state (appends, flags, expunges, deliveries, mailboxes).
    pub destructive: bool,
    pub run: CheckFn,
}

impl Check {
    /// `imap.select` for `imap.select.uidvalidity-range`.
    pub fn group(&self) -> &'static str {
        group_of(self.id)
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("id", &self.id).finish()
    }
}

pub fn group_of(id: &str) -> &str {
    match id.match_indices('.').nth(1) {
        Some((at, _)) => &id[..at],
        None => id,
    }
}

/// Builds a [`Check`] table entry: `check!(id, title, reference, Must, Imap, run_fn)` with
/// optional `needs: [..]`, `accounts: N`, `destructive` after the function.
#[macro_export]
macro_rules! conform_check {
    // `destructive` is matched as a literal token: an `ident` fragment in its place would be
    // ambiguous with `needs`/`accounts` after the function path.
    ($id:literal, $title:literal, $reference:literal, $level:ident, $proto:ident, $run:path
     $(, needs: [$($need:literal),* $(,)?])? $(, accounts: $accounts:literal)?, destructive $(,)?) => {
        $crate::conform_check!(@build $id, $title, $reference, $level, $proto, $run,
            [$($($need),*)?], 1 $(- 1 + $accounts)?, true)
    };
    ($id:literal, $title:literal, $reference:literal, $level:ident, $proto:ident, $run:path
     $(, needs: [$($need:literal),* $(,)?])? $(, accounts: $accounts:literal)? $(,)?) => {
        $crate::conform_check!(@build $id, $title, $reference, $level, $proto, $run,
            [$($($need),*)?], 1 $(- 1 + $accounts)?, false)
    };
    (@build $id:literal, $title:literal, $reference:literal, $level:ident, $proto:ident,
     $run:path, [$($need:literal),*], $accounts:expr, $destructive:expr) => {
        $crate::conformance::Check {
            id: $id,
            title: $title,
            reference: $reference,
            level: $crate::conformance::Level::$level,
            protocol: $crate::conformance::Protocol::$proto,
            needs: &[$($need),*],
            accounts: $accounts,
            destructive: $destructive,
            run: |ctx| Box::pin($run(ctx)),
        }
    };
}

/// Why a check did not pass.
#[derive(Debug)]
pub enum CheckError {
    /// The server broke the rule: what the RFC requires against what came back.
    Fail { expected: String, seen: String },
    /// The check could not apply (a precondition the capability list does not show).
    Skip(String),
    /// An IMAP error: a grammar violation, NO/BAD to a valid command, a dropped connection.
    Imap(ImapError),
    /// An SMTP or LMTP error.
    Smtp(SmtpError),
    /// Something on our side (TLS set-up, a message we could not build).
    Local(String),
}

impl From<ImapError> for CheckError {
    fn from(err: ImapError) -> Self {
        CheckError::Imap(err)
    }
}

impl From<SmtpError> for CheckError {
    fn from(err: SmtpError) -> Self {
        CheckError::Smtp(err)
    }
}

/// A failed rule: `fail(expected, seen)`.
pub fn fail(expected: impl Into<String>, seen: impl Into<String>) -> CheckError {
    CheckError::Fail {
        expected: expected.into(),
        seen: seen.into(),
    }
}

/// Passes when `cond` holds, else fails with `expected` and `seen`.
pub fn ensure(cond: bool, expected: impl Into<String>, seen: impl Into<String>) -> CheckResult {
    if cond {
        Ok(())
    } else {
        Err(fail(expected, seen))
    }
}

/// Passes when `left == right`, else fails showing both (`what` names the value).
pub fn ensure_eq<T: PartialEq + std::fmt::Debug>(what: &str, left: T, right: T) -> CheckResult {
    if left == right {
        Ok(())
    } else {
        Err(fail(format!("{what} = {right:?}"), format!("{left:?}")))
    }
}

/// Every check, in report order.
pub fn all_checks() -> Vec<Check> {
    let mut checks = Vec::new();
    checks.extend(imap::checks());
    checks.extend_from_slice(smtp::CHECKS);
    checks.extend_from_slice(lmtp::CHECKS);
    checks
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod table_tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_dotted_and_referenced() {
        let checks = all_checks();
        let mut seen = HashSet::new();
        for check in &checks {
            assert!(seen.insert(check.id), "duplicate check id {}", check.id);
            assert!(
                check.id.split('.').count() >= 3
                    && check.id.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"-.".contains(&b)),
                "id {} is not protocol.area.rule in lower case",
                check.id
            );
            assert!(
                check.id.starts_with(check.protocol.as_str()),
                "{} is filed under {}",
                check.id,
                check.protocol.as_str()
            );
            assert!(
                check.reference.starts_with("RFC "),
                "{} names no RFC: {:?}",
                check.id,
                check.reference
            );
            assert!(check.accounts >= 1 && !check.title.is_empty());
        }
    }

    #[test]
    fn group_is_the_first_two_parts() {
        assert_eq!(group_of("imap.select.uidvalidity-range"), "imap.select");
        assert_eq!(group_of("imap.select"), "imap.select");
        assert_eq!(group_of("imap"), "imap");
    }
}
