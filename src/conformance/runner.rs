//! Runs the selected checks one after another: preflight (every endpoint answers, every
//! account logs in), then each check under a deadline, capability gating and waivers, then
//! cleanup of scratch mailboxes.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::context::{describe, Ctx};
use super::target::Target;
use super::waivers::Waivers;
use super::{all_checks, Check, CheckError, Level, Protocol};
use crate::gate::CheckStatus;
use crate::proto::imap::ImapError;

/// Choices of one `conform` run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Check ids or groups (`imap.select`, `smtp`) to run; empty = all.
    pub only: Vec<String>,
    /// Check ids or groups to leave out (not even listed).
    pub skip: Vec<String>,
    /// Skip checks that change server state.
    pub no_destructive: bool,
    pub waivers: Waivers,
    /// Deadline for one check as a whole.
    pub check_timeout: Duration,
    /// Deadline for one command.
    pub command_timeout: Duration,
    /// Cancelled on Ctrl-C/SIGTERM: the running check is abandoned, no further one starts,
    /// scratch mailboxes are still removed and what ran is reported.
    pub stop: CancellationToken,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            only: Vec::new(),
            skip: Vec::new(),
            no_destructive: false,
            waivers: Waivers::default(),
            check_timeout: Duration::from_secs(60),
            command_timeout: Duration::from_secs(20),
            stop: CancellationToken::new(),
        }
    }
}

/// How one check came out.
#[derive(Debug, Clone)]
pub struct CheckRecord {
    pub id: &'static str,
    pub group: &'static str,
    pub title: &'static str,
    pub reference: &'static str,
    pub level: Level,
    pub status: CheckStatus,
    /// Why it failed, was skipped or waived.
    pub message: Option<String>,
    pub expected: Option<String>,
    pub seen: Option<String>,
    /// The check's exchanges (failures only), credentials redacted.
    pub transcript: Vec<String>,
    pub duration: Duration,
}

/// Everything `conform` learnt.
#[derive(Debug, Clone)]
pub struct ConformRun {
    pub target: String,
    /// The IMAP capabilities after login, as announced.
    pub capabilities: String,
    pub records: Vec<CheckRecord>,
    /// Problems removing scratch mailboxes (reported, never failing the run).
    pub cleanup_problems: Vec<String>,
    /// Stopped by a signal before every selected check ran.
    pub interrupted: bool,
    pub elapsed: Duration,
}

impl ConformRun {
    pub fn count(&self, status: CheckStatus) -> usize {
        self.records.iter().filter(|r| r.status == status).count()
    }

    pub fn failed(&self) -> bool {
        self.count(CheckStatus::Fail) > 0
    }
}

/// The run could not start: an endpoint or an account does not work. Exit 2, not 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PreflightError(pub String);

/// Whether the selector `pattern` (an id, a group, a protocol) covers check `id`.
pub fn selects(pattern: &str, id: &str) -> bool {
    let pattern = pattern.trim_end_matches(".*").trim_end_matches('.');
    id == pattern || (id.starts_with(pattern) && id.as_bytes().get(pattern.len()) == Some(&b'.'))
}

/// The checks `only`/`skip` leave, in report order. Unknown selectors are an error (a typo in
/// `--only` must not silently run nothing).
pub fn select(opts: &RunOptions) -> Result<Vec<Check>, String> {
    let checks = all_checks();
    for pattern in opts.only.iter().chain(&opts.skip) {
        if !checks.iter().any(|c| selects(pattern, c.id)) {
            return Err(format!(
                "`{pattern}` matches no check id or group (see `mailswarm conform --list`)"
            ));
        }
    }
    let mut chosen: Vec<Check> = checks
        .into_iter()
        .filter(|c| opts.only.is_empty() || opts.only.iter().any(|p| selects(p, c.id)))
        .filter(|c| !opts.skip.iter().any(|p| selects(p, c.id)))
        .collect();
    // A group's checks may come from several tables: keep each group together, groups in
    // order of first appearance, checks in table order within a group.
    let mut groups: Vec<&str> = Vec::new();
    for c in &chosen {
        if !groups.contains(&c.group()) {
            groups.push(c.group());
        }
    }
    chosen.sort_by_key(|c| groups.iter().position(|g| *g == c.group()));
    if chosen.is_empty() {
        return Err("--only and --skip leave no check to run".into());
    }
    Ok(chosen)
}

/// Runs the checks `opts` selects against `target`.
pub async fn run(target: Target, opts: &RunOptions) -> Result<ConformRun, PreflightError> {
    let started = Instant::now();
    let checks = select(opts).map_err(PreflightError)?;
    let mut ctx = Ctx::new(target, opts.command_timeout);
    preflight(&mut ctx, &checks).await?;
    let target_name = ctx.target.imap.to_string();

    let mut records = Vec::with_capacity(checks.len());
    let mut interrupted = false;
    for check in &checks {
        if opts.stop.is_cancelled() {
            interrupted = true;
            break;
        }
        let began = Instant::now();
        let (status, error) = match gate(&ctx, check, opts) {
            Some(reason) => (CheckStatus::Skip, Some(CheckError::Skip(reason))),
            None => {
                ctx.begin_check();
                let outcome = tokio::select! {
                    outcome = tokio::time::timeout(opts.check_timeout, (check.run)(&ctx)) => outcome,
                    _ = opts.stop.cancelled() => {
                        interrupted = true;
                        break;
                    }
                };
                match outcome {
                    Ok(Ok(())) => (CheckStatus::Pass, None),
                    Ok(Err(CheckError::Skip(reason))) => {
                        (CheckStatus::Skip, Some(CheckError::Skip(reason)))
                    }
                    Ok(Err(err)) => (CheckStatus::Fail, Some(err)),
                    Err(_) => (
                        CheckStatus::Fail,
                        Some(CheckError::Fail {
                            expected: format!(
                                "the check to finish within {:?}",
                                opts.check_timeout
                            ),
                            seen: "no answer in time".into(),
                        }),
                    ),
                }
            }
        };
        let transcript = if status == CheckStatus::Fail {
            redact(ctx.take_transcript(), &ctx)
        } else {
            ctx.take_transcript();
            Vec::new()
        };
        records.push(record(
            check,
            status,
            error,
            transcript,
            began.elapsed(),
            opts,
            &target_name,
        ));
    }
    let cleanup_problems = ctx.cleanup(!opts.no_destructive).await;
    Ok(ConformRun {
        target: ctx.target.describe(),
        capabilities: ctx.imap_caps.iter().collect::<Vec<_>>().join(" "),
        records,
        cleanup_problems,
        interrupted,
        elapsed: started.elapsed(),
    })
}

/// Every endpoint the selected checks use must answer, and every account must log in.
async fn preflight(ctx: &mut Ctx, checks: &[Check]) -> Result<(), PreflightError> {
    let uses = |p: Protocol| checks.iter().any(|c| c.protocol == p);
    let imap = ctx.target.imap;
    let mut caps = None;
    for index in 0..ctx.target.accounts.len() {
        let user = ctx.account(index).user.clone();
        let mut session = ctx
            .login(index)
            .await
            .map_err(|e| PreflightError(format!("IMAP {imap} as {user}: {}", describe(&e))))?;
        if caps.is_none() {
            let announced = session
                .capability()
                .await
                .map_err(|e| PreflightError(format!("IMAP {imap} CAPABILITY: {e}")))?
                .clone();
            caps = Some(announced);
        }
        let _ = session.logout().await;
    }
    ctx.imap_caps = caps.unwrap_or_default();
    if uses(Protocol::Smtp) && ctx.target.smtp.is_some() {
        let client = ctx.smtp().await.map_err(|e| {
            PreflightError(format!(
                "SMTP {}: {}",
                ctx.target.smtp.unwrap(),
                describe(&e)
            ))
        })?;
        let caps = client.capabilities().cloned();
        let _ = client.quit().await;
        ctx.smtp_caps = caps;
    }
    if uses(Protocol::Lmtp) && ctx.target.lmtp.is_some() {
        let client = ctx.lmtp().await.map_err(|e| {
            PreflightError(format!(
                "LMTP {}: {}",
                ctx.target.lmtp.unwrap(),
                describe(&e)
            ))
        })?;
        let caps = client.capabilities().cloned();
        let _ = client.quit().await;
        ctx.lmtp_caps = caps;
    }
    ctx.take_transcript();
    Ok(())
}

/// Why a check cannot run here, if it cannot.
fn gate(ctx: &Ctx, check: &Check, opts: &RunOptions) -> Option<String> {
    match check.protocol {
        Protocol::Smtp if ctx.smtp_caps.is_none() => {
            return Some("no SMTP endpoint given (--smtp HOST:PORT)".into())
        }
        Protocol::Lmtp if ctx.lmtp_caps.is_none() => {
            return Some("no LMTP endpoint given (--lmtp HOST:PORT)".into())
        }
        _ => {}
    }
    if check.destructive && opts.no_destructive {
        return Some("changes server state; --no-destructive given".into());
    }
    if check.accounts > ctx.target.accounts.len() {
        return Some(format!(
            "needs {} accounts, {} given (--user NAME:PASSWORD again)",
            check.accounts,
            ctx.target.accounts.len()
        ));
    }
    let announced = |name: &str| -> Option<bool> {
        match check.protocol {
            Protocol::Imap => Some(ctx.imap_caps.has_named(name)),
            Protocol::Smtp => ctx.smtp_caps.as_ref().map(|c| c.has(name)),
            Protocol::Lmtp => ctx.lmtp_caps.as_ref().map(|c| c.has(name)),
        }
    };
    for need in check.needs {
        let any = need.split('|').any(|alt| announced(alt) == Some(true));
        if !any {
            return Some(format!(
                "server does not announce {}",
                need.replace('|', " or ")
            ));
        }
    }
    None
}

fn record(
    check: &Check,
    status: CheckStatus,
    error: Option<CheckError>,
    transcript: Vec<String>,
    duration: Duration,
    opts: &RunOptions,
    target: &str,
) -> CheckRecord {
    let (mut message, expected, seen) = match &error {
        None => (None, None, None),
        Some(CheckError::Fail { expected, seen }) => (
            Some(format!("expected {expected}; saw {seen}")),
            Some(expected.clone()),
            Some(seen.clone()),
        ),
        Some(CheckError::Skip(reason)) => (Some(reason.clone()), None, None),
        Some(CheckError::Imap(ImapError::Protocol { raw, reason })) => (
            Some(format!("IMAP grammar violation: {reason}")),
            Some("a response the IMAP grammar allows".into()),
            Some(raw.clone()),
        ),
        Some(other) => (Some(describe(other)), None, None),
    };
    let mut status = status;
    if let Some(waiver) = opts.waivers.find(check.id, target) {
        if status != CheckStatus::Skip {
            let outcome = match &message {
                Some(m) if status == CheckStatus::Fail => format!("failed: {m}"),
                _ => "passed: the waiver is no longer needed".into(),
            };
            message = Some(format!("waived ({}); {outcome}", waiver.reason));
            status = CheckStatus::Waived;
        }
    }
    CheckRecord {
        id: check.id,
        group: check.group(),
        title: check.title,
        reference: check.reference,
        level: check.level,
        status,
        message,
        expected,
        seen,
        transcript,
        duration,
    }
}

/// Passwords never reach a report, even when a server echoes them.
fn redact(lines: Vec<String>, ctx: &Ctx) -> Vec<String> {
    let secrets: Vec<&str> = ctx
        .target
        .accounts
        .iter()
        .map(|a| a.password.expose().as_str())
        .filter(|p| p.len() >= 3)
        .collect();
    lines
        .into_iter()
        .map(|mut line| {
            for secret in &secrets {
                if line.contains(secret) {
                    line = line.replace(secret, "<redacted>");
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_cover_ids_groups_and_protocols() {
        assert!(selects("imap.select", "imap.select.uidvalidity-range"));
        assert!(selects("imap", "imap.select.uidvalidity-range"));
        assert!(selects("imap.select.*", "imap.select.uidvalidity-range"));
        assert!(selects(
            "imap.select.uidvalidity-range",
            "imap.select.uidvalidity-range"
        ));
        assert!(!selects("imap.sel", "imap.select.uidvalidity-range"));
        assert!(!selects("smtp", "imap.select.uidvalidity-range"));
    }

    #[test]
    fn each_group_is_listed_together() {
        let all = select(&RunOptions::default()).unwrap();
        let mut seen: Vec<&str> = Vec::new();
        for c in &all {
            if seen.last() != Some(&c.group()) {
                assert!(!seen.contains(&c.group()), "group {} is split", c.group());
                seen.push(c.group());
            }
        }
    }

    #[test]
    fn unknown_selectors_are_refused() {
        let opts = RunOptions {
            only: vec!["imap.nosuchgroup".into()],
            ..RunOptions::default()
        };
        let err = select(&opts).unwrap_err();
        assert!(err.contains("imap.nosuchgroup"), "{err}");
    }

    #[test]
    fn only_and_skip_narrow_the_selection() {
        let all = select(&RunOptions::default()).unwrap();
        let only_smtp = select(&RunOptions {
            only: vec!["smtp".into()],
            ..RunOptions::default()
        })
        .unwrap();
        assert!(!only_smtp.is_empty() && only_smtp.iter().all(|c| c.id.starts_with("smtp.")));
        let no_smtp = select(&RunOptions {
            skip: vec!["smtp".into()],
            ..RunOptions::default()
        })
        .unwrap();
        assert_eq!(no_smtp.len() + only_smtp.len(), all.len());
    }
}
