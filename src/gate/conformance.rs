//! The conformance results the gate reads (`--conformance conform.json`), and the schema that
//! `mailswarm conform --json` writes.
//!
//! Minimal on purpose, so any checker can emit it:
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "server": "dovecot 2.3.19 on 127.0.0.1:10143",
//!   "checks": [
//!     {"id": "imap.fetch.body-literal", "status": "pass"},
//!     {"id": "imap.expunge.order", "status": "fail", "title": "EXPUNGE before EXISTS",
//!      "message": "got * 3 EXISTS after * 4 EXPUNGE", "reference": "RFC 9051 7.5.1"},
//!     {"id": "imap.condstore", "status": "skip", "message": "server lacks CONDSTORE"},
//!     {"id": "imap.id.quirk", "status": "waived", "message": "known, ticket OPS-12"}
//!   ]
//! }
//! ```
//!
//! Required: `checks`, and per check `id` and `status` (`pass`, `fail`, `skip`, `waived`).
//! Optional: `schema_version` (1 when absent), `server`, and per check `title`, `message`,
//! `reference`. Unknown fields are ignored so the checker can add detail. Any `fail` fails the
//! gate; `skip` and `waived` are reported as skipped; an empty `checks` list is an error,
//! because a conformance run that checked nothing did not really run.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::outcome::{CriterionOutcome, Group, Observed};

pub const CONFORMANCE_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformanceReport {
    #[serde(default = "default_version")]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub checks: Vec<ConformanceCheck>,
}

fn default_version() -> u32 {
    CONFORMANCE_SCHEMA_VERSION
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformanceCheck {
    /// Stable, dotted: `imap.fetch.body-literal`. The JUnit test case name.
    pub id: String,
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What went wrong, why it was skipped, or why it is waived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The rule checked, such as `RFC 9051 7.5.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    Skip,
    Waived,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
            CheckStatus::Waived => "waived",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("cannot read conformance results {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a conformance results file: {source} (expected {{\"checks\": \
         [{{\"id\": ..., \"status\": \"pass|fail|skip|waived\"}}]}})"
    )]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} has schema_version {found}; this mailswarm reads version {CONFORMANCE_SCHEMA_VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path} lists no checks: the conformance run did not check anything")]
    Empty { path: String },
}

impl ConformanceReport {
    pub fn read(path: &Path) -> Result<ConformanceReport, ConformanceError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ConformanceError::Io {
            path: shown.clone(),
            source,
        })?;
        let report: ConformanceReport =
            serde_json::from_slice(&bytes).map_err(|source| ConformanceError::Parse {
                path: shown.clone(),
                source,
            })?;
        if report.schema_version != CONFORMANCE_SCHEMA_VERSION {
            return Err(ConformanceError::Version {
                path: shown,
                found: report.schema_version,
            });
        }
        if report.checks.is_empty() {
            return Err(ConformanceError::Empty { path: shown });
        }
        Ok(report)
    }

    /// Writes the report as pretty JSON; for `mailswarm conform --json`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }

    /// One criterion per check.
    pub fn outcomes(&self) -> Vec<CriterionOutcome> {
        self.checks.iter().map(outcome).collect()
    }
}

fn outcome(check: &ConformanceCheck) -> CriterionOutcome {
    let mut reason = match check.status {
        CheckStatus::Pass => "passed".to_string(),
        CheckStatus::Fail => "failed".to_string(),
        CheckStatus::Skip => "skipped".to_string(),
        CheckStatus::Waived => "waived".to_string(),
    };
    for detail in [&check.title, &check.message].into_iter().flatten() {
        reason.push_str(": ");
        reason.push_str(detail);
    }
    if let Some(reference) = &check.reference {
        reason.push_str(&format!(" ({reference})"));
    }
    let skipped = matches!(check.status, CheckStatus::Skip | CheckStatus::Waived);
    CriterionOutcome {
        group: Group::Conformance,
        criterion: check.id.clone(),
        passed: check.status != CheckStatus::Fail,
        skipped,
        unit: None,
        observed: Some(Observed::Text(check.status.as_str().to_string())),
        limit: None,
        baseline: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("conform.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn documented_example_parses_and_maps_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"{"schema_version": 1, "server": "dovecot", "extra_field": true, "checks": [
                {"id": "imap.a", "status": "pass"},
                {"id": "imap.b", "status": "fail", "title": "EXPUNGE order",
                 "message": "EXISTS after EXPUNGE", "reference": "RFC 9051 7.5.1"},
                {"id": "imap.c", "status": "skip", "message": "no CONDSTORE"},
                {"id": "imap.d", "status": "waived"}]}"#,
        );
        let report = ConformanceReport::read(&path).unwrap();
        let out = report.outcomes();
        let flags: Vec<(bool, bool)> = out.iter().map(|o| (o.passed, o.skipped)).collect();
        assert_eq!(
            flags,
            [(true, false), (false, false), (true, true), (true, true)]
        );
        assert_eq!(
            out[1].reason,
            "failed: EXPUNGE order: EXISTS after EXPUNGE (RFC 9051 7.5.1)"
        );
        assert_eq!(out[1].observed_display(), "fail");
        assert_eq!(out[1].group, Group::Conformance);
    }

    #[test]
    fn schema_version_defaults_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, r#"{"checks": [{"id": "x", "status": "pass"}]}"#);
        let report = ConformanceReport::read(&path).unwrap();
        assert_eq!(report.schema_version, 1);
        report.write(&path).unwrap();
        assert_eq!(ConformanceReport::read(&path).unwrap(), report);
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, r#"{"checks": [{"id": "x", "status": "flaky"}]}"#);
        let e = ConformanceReport::read(&path).unwrap_err();
        assert!(matches!(e, ConformanceError::Parse { .. }));
        assert!(e.to_string().contains("conform.json"));
        assert!(e.to_string().contains("pass|fail|skip|waived"));
        let path = write(&dir, r#"{"checks": []}"#);
        assert!(matches!(
            ConformanceReport::read(&path),
            Err(ConformanceError::Empty { .. })
        ));
        let path = write(&dir, r#"{"schema_version": 2, "checks": []}"#);
        assert!(matches!(
            ConformanceReport::read(&path),
            Err(ConformanceError::Version { found: 2, .. })
        ));
        assert!(matches!(
            ConformanceReport::read(&dir.path().join("nope.json")),
            Err(ConformanceError::Io { .. })
        ));
    }
}
