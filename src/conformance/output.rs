//! Renders a [`ConformRun`]: a console table grouped by check group, JUnit XML (one test case
//! per check, one suite per group) and JSON in the schema `mailswarm gate --conformance` reads
//! (`gate::conformance`), with extra fields for people.

use std::collections::BTreeMap;
use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use super::runner::{CheckRecord, ConformRun};
use crate::gate::conformance::CONFORMANCE_SCHEMA_VERSION;
use crate::gate::CheckStatus;

/// Transcript lines kept per failed check in the console output (JSON and JUnit keep all).
const CONSOLE_TRANSCRIPT: usize = 12;

/// The console report: one line per check under its group (only the failed ones with
/// `failures_only`), failures with details, totals over every check.
pub fn console(run: &ConformRun, failures_only: bool, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "conformance of {}", run.target)?;
    let mut group = "";
    let shown = run
        .records
        .iter()
        .filter(|r| !failures_only || r.status == CheckStatus::Fail);
    for r in shown {
        if r.group != group {
            group = r.group;
            let in_group: Vec<&CheckRecord> =
                run.records.iter().filter(|x| x.group == group).collect();
            let passed = in_group
                .iter()
                .filter(|x| x.status == CheckStatus::Pass)
                .count();
            writeln!(out, "\n{group} ({passed}/{} passed)", in_group.len())?;
        }
        let mark = match r.status {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skip => "skip",
            CheckStatus::Waived => "waived",
        };
        write!(
            out,
            "  {mark:<6} {:<44} {:<6} {}",
            r.id,
            r.level.as_str(),
            r.reference
        )?;
        match (&r.status, &r.message) {
            (CheckStatus::Skip | CheckStatus::Waived, Some(m)) => writeln!(out, "  ({m})")?,
            _ => writeln!(out)?,
        }
        if r.status == CheckStatus::Fail {
            writeln!(out, "         {}", r.title)?;
            match (&r.expected, &r.seen) {
                (Some(expected), Some(seen)) => {
                    writeln!(out, "         expected: {expected}")?;
                    writeln!(out, "         seen:     {seen}")?;
                }
                _ => {
                    if let Some(m) = &r.message {
                        writeln!(out, "         {m}")?;
                    }
                }
            }
            let skip = r.transcript.len().saturating_sub(CONSOLE_TRANSCRIPT);
            for line in &r.transcript[skip..] {
                writeln!(out, "         | {line}")?;
            }
        }
    }
    writeln!(
        out,
        "\n{} checks: {} passed, {} failed, {} skipped, {} waived ({:.1}s)",
        run.records.len(),
        run.count(CheckStatus::Pass),
        run.count(CheckStatus::Fail),
        run.count(CheckStatus::Skip),
        run.count(CheckStatus::Waived),
        run.elapsed.as_secs_f64()
    )?;
    if run.interrupted {
        writeln!(
            out,
            "interrupted: the checks after the last one listed did not run"
        )?;
    }
    for problem in &run.cleanup_problems {
        writeln!(out, "warning: cleanup: {problem}")?;
    }
    Ok(())
}

/// `--json`: the gate's conformance schema plus detail.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub schema_version: u32,
    /// Stopped by a signal: not every selected check ran.
    pub interrupted: bool,
    pub mailswarm_version: &'static str,
    pub server: &'a str,
    pub capabilities: &'a str,
    pub summary: BTreeMap<&'static str, usize>,
    pub checks: Vec<JsonCheck<'a>>,
}

#[derive(Debug, Serialize)]
pub struct JsonCheck<'a> {
    pub id: &'a str,
    pub status: CheckStatus,
    pub title: &'a str,
    pub reference: &'a str,
    pub level: &'a str,
    pub group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub transcript: &'a [String],
    pub duration_ms: u64,
}

pub fn json(run: &ConformRun) -> String {
    let summary = [
        ("pass", CheckStatus::Pass),
        ("fail", CheckStatus::Fail),
        ("skip", CheckStatus::Skip),
        ("waived", CheckStatus::Waived),
    ]
    .into_iter()
    .map(|(name, status)| (name, run.count(status)))
    .collect();
    let report = JsonReport {
        schema_version: CONFORMANCE_SCHEMA_VERSION,
        interrupted: run.interrupted,
        mailswarm_version: env!("CARGO_PKG_VERSION"),
        server: &run.target,
        capabilities: &run.capabilities,
        summary,
        checks: run
            .records
            .iter()
            .map(|r| JsonCheck {
                id: r.id,
                status: r.status,
                title: r.title,
                reference: r.reference,
                level: r.level.as_str(),
                group: r.group,
                message: r.message.as_deref(),
                expected: r.expected.as_deref(),
                seen: r.seen.as_deref(),
                transcript: &r.transcript,
                duration_ms: r.duration.as_millis() as u64,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).expect("the report serializes")
}

/// `--junit`: one suite per group, one test case per check. Waived checks are skipped cases
/// whose message says so (JUnit has no "waived").
pub fn junit(run: &ConformRun) -> Report {
    let mut report = Report::new("mailswarm conform");
    let mut groups: Vec<&str> = run.records.iter().map(|r| r.group).collect();
    groups.dedup();
    for group in groups {
        let mut suite = TestSuite::new(group);
        suite.add_property(Property::new("target", run.target.as_str()));
        for r in run.records.iter().filter(|r| r.group == group) {
            let message = r.message.clone().unwrap_or_default();
            let status = match r.status {
                CheckStatus::Pass => TestCaseStatus::success(),
                CheckStatus::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(message);
                    s
                }
                CheckStatus::Waived => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(message).set_type("waived");
                    s
                }
                CheckStatus::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let mut detail =
                        format!("{} ({} {})\n", r.title, r.level.as_str(), r.reference);
                    if let (Some(e), Some(seen)) = (&r.expected, &r.seen) {
                        detail.push_str(&format!("expected: {e}\nseen:     {seen}\n"));
                    }
                    if !r.transcript.is_empty() {
                        detail.push_str("transcript:\n");
                        for line in &r.transcript {
                            detail.push_str(line);
                            detail.push('\n');
                        }
                    }
                    s.set_message(message)
                        .set_type(r.level.as_str())
                        .set_description(detail);
                    s
                }
            };
            let mut case = TestCase::new(r.id, status);
            case.set_classname(r.group).set_time(r.duration);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conformance::Level;
    use crate::gate::ConformanceReport;

    fn record(id: &'static str, status: CheckStatus) -> CheckRecord {
        let failed = status == CheckStatus::Fail;
        CheckRecord {
            id,
            group: crate::conformance::group_of(id),
            title: "a title",
            reference: "RFC 9051 6.3.1",
            level: Level::Must,
            status,
            message: failed.then(|| "expected 1; saw 2".to_string()),
            expected: failed.then(|| "1".to_string()),
            seen: failed.then(|| "2".to_string()),
            transcript: if failed {
                vec!["S1> a SELECT x".into()]
            } else {
                vec![]
            },
            duration: Duration::from_millis(3),
        }
    }

    fn sample() -> ConformRun {
        ConformRun {
            target: "imap 127.0.0.1:10143".into(),
            capabilities: "IMAP4rev1 IDLE".into(),
            records: vec![
                record("imap.select.uidvalidity-range", CheckStatus::Pass),
                record("imap.select.uidnext-present", CheckStatus::Fail),
                record("imap.idle.push-exists", CheckStatus::Skip),
                record("smtp.ehlo.syntax", CheckStatus::Waived),
            ],
            cleanup_problems: vec![],
            interrupted: false,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn json_is_what_the_gate_reads() {
        let text = json(&sample());
        let parsed: ConformanceReport = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.checks.len(), 4);
        assert_eq!(parsed.checks[1].status, CheckStatus::Fail);
        assert_eq!(
            parsed.checks[1].reference.as_deref(),
            Some("RFC 9051 6.3.1")
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["summary"]["fail"], 1);
        assert_eq!(value["checks"][1]["transcript"][0], "S1> a SELECT x");
    }

    #[test]
    fn junit_has_a_case_per_check_and_a_suite_per_group() {
        let xml = junit(&sample()).to_string().unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
        assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
        assert!(
            xml.contains("<failure") && xml.contains("seen:     2"),
            "{xml}"
        );
        assert_eq!(xml.matches("<skipped").count(), 2, "{xml}");
    }

    #[test]
    fn console_groups_and_counts() {
        let mut out = Vec::new();
        console(&sample(), false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("imap.select (1/2 passed)"), "{text}");
        assert!(
            text.contains("FAIL   imap.select.uidnext-present"),
            "{text}"
        );
        assert!(
            text.contains("expected: 1") && text.contains("| S1> a SELECT x"),
            "{text}"
        );
        assert!(
            text.contains("4 checks: 1 passed, 1 failed, 1 skipped, 1 waived"),
            "{text}"
        );
    }
}
