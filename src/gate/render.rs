//! The verdict for people (console), CI test reporters (JUnit) and job summaries (Markdown).
//! All three render the same [`GateReport`], failures first.

use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::check::GateReport;
use super::outcome::{CriterionOutcome, Group};

const GROUPS: [(Group, &str); 3] = [
    (Group::Threshold, "thresholds"),
    (Group::Baseline, "baseline"),
    (Group::Conformance, "conformance"),
];

fn verdict_word(report: &GateReport) -> &'static str {
    if report.passed() {
        "PASS"
    } else {
        "FAIL"
    }
}

fn numbers(c: &CriterionOutcome) -> String {
    let mut parts = vec![format!("observed {}", c.observed_display())];
    if c.limit.is_some() {
        parts.push(format!("limit {}", c.limit_display()));
    }
    if c.baseline.is_some() {
        parts.push(format!("baseline {}", c.baseline_display()));
    }
    parts.join(", ")
}

/// The console verdict: one headline, every failing criterion with its numbers, a tally.
/// `verbose` lists passing and skipped criteria too.
pub fn print_verdict(out: &mut impl Write, report: &GateReport, verbose: bool) -> io::Result<()> {
    let failed = report.failures().count();
    let total = report.criteria.len();
    let s = &report.scenario;
    writeln!(
        out,
        "mailswarm gate: {} ({failed} of {total} criteria failed) - scenario {} (seed {}), {}",
        verdict_word(report),
        s.name,
        s.seed,
        report.results_path.display()
    )?;
    for c in report.failures() {
        writeln!(out, "  FAIL [{}] {}", c.group.as_str(), c.criterion)?;
        writeln!(out, "       {}", numbers(c))?;
        writeln!(out, "       {}", c.reason)?;
    }
    if verbose {
        for c in report.criteria.iter().filter(|c| c.passed) {
            let word = if c.skipped { "SKIP" } else { "PASS" };
            writeln!(
                out,
                "  {word} [{}] {}: {}",
                c.group.as_str(),
                c.criterion,
                c.reason
            )?;
        }
    }
    let tally: Vec<String> = GROUPS
        .iter()
        .filter_map(|(group, name)| {
            let of_group = || report.criteria.iter().filter(|c| c.group == *group);
            let n = of_group().count();
            (n > 0).then(|| {
                let passed = of_group().filter(|c| c.passed && !c.skipped).count();
                let skipped = of_group().filter(|c| c.skipped).count();
                let skip = if skipped > 0 {
                    format!(", {skipped} skipped")
                } else {
                    String::new()
                };
                format!("{name} {passed}/{n} passed{skip}")
            })
        })
        .collect();
    if !tally.is_empty() {
        writeln!(out, "  {}", tally.join("; "))?;
    }
    for note in &report.notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}

/// One test suite per group, one test case per criterion; failures carry the reason as
/// message and the numbers as description.
pub fn junit(report: &GateReport) -> Report {
    let mut junit = Report::new("mailswarm gate");
    for (group, name) in GROUPS {
        let mut suite = TestSuite::new(name);
        suite.add_property(Property::new("scenario", report.scenario.name.as_str()));
        suite.add_property(Property::new("seed", report.scenario.seed.to_string()));
        suite.add_property(Property::new("digest", report.scenario.digest.as_str()));
        for c in report.criteria.iter().filter(|c| c.group == group) {
            let status = if c.skipped {
                let mut s = TestCaseStatus::skipped();
                s.set_message(c.reason.as_str());
                s
            } else if c.passed {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(c.reason.as_str())
                    .set_type(c.group.as_str())
                    .set_description(numbers(c));
                s
            };
            let mut case = TestCase::new(c.criterion.as_str(), status);
            case.set_classname(format!("mailswarm.gate.{name}"));
            if c.passed && !c.skipped {
                case.set_system_out(c.reason.as_str());
            }
            suite.add_test_case(case);
        }
        if !suite.test_cases.is_empty() {
            junit.add_test_suite(suite);
        }
    }
    junit
}

/// A JUnit report for a gate that could not run (exit 2), so CI shows why instead of an
/// empty test tab.
pub fn junit_error(message: &str) -> Report {
    let mut junit = Report::new("mailswarm gate");
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_message(message).set_type("infrastructure");
    let mut case = TestCase::new("gate could run", status);
    case.set_classname("mailswarm.gate");
    let mut suite = TestSuite::new("gate");
    suite.add_test_case(case);
    junit.add_test_suite(suite);
    junit
}

/// Table cells must stay on one line and not split on `|`.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A GitHub/GitLab-flavoured Markdown summary, e.g. for `$GITHUB_STEP_SUMMARY`.
pub fn markdown(report: &GateReport) -> String {
    let failed = report.failures().count();
    let s = &report.scenario;
    let mut md = format!(
        "## mailswarm gate: {} {}\n\nScenario `{}` (seed {}, digest `{}`): **{failed} of {} \
         criteria failed**.\n\n",
        if report.passed() { "✅" } else { "❌" },
        verdict_word(report),
        cell(&s.name),
        s.seed,
        cell(s.digest.get(..12).unwrap_or(&s.digest)),
        report.criteria.len()
    );
    md.push_str("| Result | Kind | Criterion | Observed | Limit | Baseline | Detail |\n");
    md.push_str("|---|---|---|---|---|---|---|\n");
    let order = |c: &&CriterionOutcome| match (c.passed, c.skipped) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 2,
    };
    let mut rows: Vec<&CriterionOutcome> = report.criteria.iter().collect();
    rows.sort_by_key(order);
    for c in rows {
        let result = match (c.passed, c.skipped) {
            (false, _) => "❌ FAIL",
            (true, false) => "✅ pass",
            (true, true) => "⏭️ skip",
        };
        md.push_str(&format!(
            "| {result} | {} | `{}` | {} | {} | {} | {} |\n",
            c.group.as_str(),
            cell(&c.criterion),
            cell(&c.observed_display()),
            cell(&c.limit_display()),
            cell(&c.baseline_display()),
            cell(&c.reason)
        ));
    }
    let extras: Vec<String> = report
        .warnings
        .iter()
        .map(|w| format!("- ⚠️ {w}\n"))
        .chain(report.notes.iter().map(|n| format!("- {n}\n")))
        .collect();
    if !extras.is_empty() {
        md.push('\n');
        md.extend(extras);
    }
    md
}

/// The Markdown summary for a gate that could not run.
pub fn markdown_error(message: &str) -> String {
    format!(
        "## mailswarm gate: ⚠️ ERROR\n\nThe gate could not give a verdict:\n\n> {}\n",
        cell(message)
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::gate::baseline::{compare, Tolerances};
    use crate::gate::conformance::{CheckStatus, ConformanceCheck, ConformanceReport};
    use crate::gate::testutil::{command, results_with, sample};
    use crate::gate::threshold::{evaluate, parse_entry};

    fn report() -> GateReport {
        let r = sample();
        let mut criteria = evaluate(
            &parse_entry("imap.fetch", "p99 < 30ms, p50 < 5ms").unwrap(),
            &r,
        );
        let slower = results_with(vec![command("imap.fetch", 1000, 0, 4_000, 60_000)]);
        criteria.extend(compare(&r, &slower, &Tolerances::default()));
        let conform = ConformanceReport {
            schema_version: 1,
            server: None,
            checks: vec![ConformanceCheck {
                id: "imap.condstore".into(),
                status: CheckStatus::Skip,
                title: None,
                message: Some("no CONDSTORE | QRESYNC".into()),
                reference: None,
            }],
        };
        criteria.extend(conform.outcomes());
        GateReport {
            results_path: PathBuf::from("reports/gate/results.json"),
            scenario: r.scenario.clone(),
            criteria,
            notes: vec!["a note".into()],
            warnings: vec!["a warning".into()],
            baseline_path: PathBuf::from("reports/baseline.json"),
            baseline_written: false,
        }
    }

    #[test]
    fn console_lists_failures_with_numbers() {
        let mut out = Vec::new();
        print_verdict(&mut out, &report(), false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("mailswarm gate: FAIL ("), "{text}");
        assert!(text.contains("  FAIL [threshold] imap.fetch: p99 < 30ms\n"));
        assert!(text.contains("observed 40ms, limit < 30ms\n"));
        assert!(text.contains("FAIL [baseline] imap.fetch p99 vs baseline"));
        assert!(text.contains("observed 60ms, limit <= 46ms, baseline 40ms"));
        assert!(text.contains("FAIL [baseline] lmtp.data present"));
        assert!(
            !text.contains("p50 < 5ms"),
            "passing criteria only with --verbose"
        );
        assert!(text.contains("conformance 0/1 passed, 1 skipped"));
        let mut out = Vec::new();
        print_verdict(&mut out, &report(), true).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("PASS [threshold] imap.fetch: p50 < 5ms"));
    }

    #[test]
    fn junit_round_trips_with_one_case_per_criterion() {
        let report = report();
        let xml = junit(&report).to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        let cases: usize = back.test_suites.iter().map(|s| s.test_cases.len()).sum();
        assert_eq!(cases, report.criteria.len());
        assert_eq!(back.failures, report.failures().count());
        let fetch = back.test_suites[0]
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == "imap.fetch: p99 < 30ms")
            .unwrap();
        match &fetch.status {
            TestCaseStatus::NonSuccess { message, .. } => {
                assert_eq!(
                    message.as_ref().unwrap().as_str(),
                    "p99 is 40ms, needs < 30ms"
                )
            }
            other => panic!("{other:?}"),
        }
        let skipped = &back.test_suites[2].test_cases[0];
        assert!(matches!(skipped.status, TestCaseStatus::Skipped { .. }));
    }

    #[test]
    fn junit_for_an_error_has_one_error_case() {
        let xml = junit_error("the run did not complete").to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.errors, 1);
    }

    #[test]
    fn markdown_table_puts_failures_first_and_escapes_pipes() {
        let md = markdown(&report());
        assert!(md.starts_with("## mailswarm gate: ❌ FAIL\n"));
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 1 + report().criteria.len());
        assert!(rows[1].starts_with("| ❌ FAIL |"));
        assert!(rows.last().unwrap().starts_with("| ⏭️ skip |"));
        assert!(md.contains("CONDSTORE \\| QRESYNC"));
        for row in &rows {
            assert_eq!(row.matches(" | ").count(), 6, "{row}");
        }
        assert!(md.contains("- ⚠️ a warning\n- a note\n"));
        assert!(markdown_error("x | y").contains("x \\| y"));
    }
}
