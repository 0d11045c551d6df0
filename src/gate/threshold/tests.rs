use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::gate::outcome::{Observed, Op, Unit};
use crate::gate::testutil::{command, results_with, sample};

fn one(key: &str, value: &str) -> Threshold {
    let mut all = parse_entry(key, value).unwrap();
    assert_eq!(all.len(), 1, "{key}: {value}");
    all.remove(0)
}

fn bad(key: &str, value: &str) -> ThresholdError {
    parse_entry(key, value).expect_err(value)
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn latency_condition_on_a_command() {
    let t = one("imap.fetch", "p99 < 50ms");
    assert_eq!(
        t.target,
        Target::Command {
            metric: "imap.fetch".into(),
            stat: Stat::P99
        }
    );
    assert_eq!(t.op, Op::Lt);
    assert_eq!(t.limit, 50_000.0);
    assert_eq!(t.unit, Unit::Micros);
    assert_eq!(t.criterion(), "imap.fetch: p99 < 50ms");
}

#[test]
fn every_time_unit_converts_to_micros() {
    for (text, us) in [
        ("p50 < 800us", 800.0),
        ("p50 < 800µs", 800.0),
        ("p50 < 800μs", 800.0),
        ("p50 < 1.5ms", 1500.0),
        ("p50 < 2s", 2_000_000.0),
        ("p50<2s", 2_000_000.0),
    ] {
        assert_eq!(one("imap.noop", text).limit, us, "{text}");
    }
}

#[test]
fn two_conditions_on_one_key() {
    let ts = parse_entry("imap.fetch", "p99 < 50ms, p50 < 5ms").unwrap();
    assert_eq!(ts.len(), 2);
    assert_eq!(ts[0].condition, "p99 < 50ms");
    assert_eq!(ts[1].condition, "p50 < 5ms");
    assert_eq!(ts[1].limit, 5000.0);
}

#[test]
fn statistic_at_the_end_of_the_key() {
    let t = one("imap.login.errors", "== 0");
    assert_eq!(
        t.target,
        Target::Command {
            metric: "imap.login".into(),
            stat: Stat::Errors
        }
    );
    assert_eq!((t.op, t.limit, t.unit), (Op::Eq, 0.0, Unit::Count));
    let t = one("imap.fetch.count", "> 0");
    assert!(matches!(
        t.target,
        Target::Command {
            stat: Stat::Count,
            ..
        }
    ));
    let t = one("imap.fetch.p99", "<= 50ms");
    assert_eq!((t.op, t.limit), (Op::Le, 50_000.0));
}

#[test]
fn total_error_rate_takes_percent_or_fraction() {
    let t = one("errors", "< 0.1%");
    assert_eq!(t.target, Target::TotalErrorRate);
    assert!((t.limit - 0.001).abs() < 1e-12);
    assert_eq!(t.unit, Unit::Ratio);
    assert_eq!(one("errors", "< 0.001").limit, 0.001);
    assert_eq!(one("errors", "== 0").limit, 0.0);
    let e = bad("errors", "< 5");
    assert!(e.problem.contains("more than 100%"), "{e}");
    assert!(e.hint.contains("0.1%"));
}

#[test]
fn counters_and_report_values_are_plain_values() {
    for key in ["lmtp.delivered", "audit.lost", "checks.violations"] {
        let t = one(key, ">= 100");
        assert_eq!(t.target, Target::Value { path: key.into() });
        assert_eq!(t.unit, Unit::Count);
        assert_eq!(t.op, Op::Ge);
    }
    let t = one("checks.pass_rate", "> 99%");
    assert_eq!(t.unit, Unit::Ratio);
    assert!((t.limit - 0.99).abs() < 1e-12);
}

#[test]
fn all_operators() {
    for (text, op) in [
        ("< 1", Op::Lt),
        ("<= 1", Op::Le),
        ("> 1", Op::Gt),
        (">= 1", Op::Ge),
        ("== 1", Op::Eq),
        ("!= 1", Op::Ne),
    ] {
        assert_eq!(one("audit.lost", text).op, op, "{text}");
    }
}

#[test]
fn stat_aliases() {
    assert!(matches!(
        one("imap.fetch", "p99.9 < 1s").target,
        Target::Command {
            stat: Stat::P999,
            ..
        }
    ));
    assert!(matches!(
        one("imap.fetch", "avg < 1s").target,
        Target::Command {
            stat: Stat::Mean,
            ..
        }
    ));
    assert!(matches!(
        one("imap.fetch", "P99 < 1s").target,
        Target::Command {
            stat: Stat::P99,
            ..
        }
    ));
}

#[test]
fn errors_name_the_key_the_part_and_a_fix() {
    let e = bad("imap.fetch", "p99 < 50ms, p98 < 5ms");
    assert_eq!(e.key, "imap.fetch");
    assert_eq!(e.part, "p98 < 5ms");
    assert_eq!(e.offset, Some(12));
    assert!(e.problem.contains("unknown statistic `p98`"));
    assert!(e.hint.contains("p99"));
    let text = e.to_string();
    assert!(
        text.starts_with("threshold `imap.fetch`: unknown statistic"),
        "{text}"
    );
}

#[test]
fn latency_without_a_unit_is_rejected() {
    let e = bad("imap.fetch", "p99 < 50");
    assert!(e.problem.contains("time unit"), "{e}");
    assert!(e.hint.contains("50ms"));
    let e = bad("imap.fetch", "p99 < 5%");
    assert!(e.problem.contains("time unit"), "{e}");
}

#[test]
fn duration_on_a_command_without_statistic_points_to_one() {
    let e = bad("imap.fetch", "< 50ms");
    assert!(e.problem.contains("not a latency"), "{e}");
    assert!(e.hint.contains("p99 < 50ms"));
}

#[test]
fn malformed_conditions() {
    assert!(bad("audit.lost", "0")
        .problem
        .contains("unknown statistic `0`"));
    assert!(bad("audit.lost", "= 0").hint.contains("=="));
    assert!(bad("audit.lost", "== ").problem.contains("number"));
    assert!(bad("audit.lost", "== 1.2.3").problem.contains("number"));
    assert!(bad("audit.lost", "== 5 kg")
        .problem
        .contains("unknown unit `kg`"));
    assert!(bad("audit.lost", "== 5%%").problem.contains("unknown unit"));
    assert!(bad("imap.fetch.count", "> 5%")
        .problem
        .contains("percentage"));
    assert!(bad("imap.fetch", "count > 5ms")
        .problem
        .contains("not a latency"));
}

#[test]
fn empty_and_trailing_commas_are_rejected() {
    let e = bad("imap.fetch", "p99 < 50ms,");
    assert!(e.problem.contains("empty condition"));
    assert_eq!(e.offset, Some(11));
    assert!(bad("imap.fetch", "").problem.contains("empty"));
}

#[test]
fn statistic_twice_or_on_a_non_command() {
    assert!(bad("imap.fetch.p99", "p50 < 5ms").problem.contains("twice"));
    let e = bad("audit.lost", "p99 < 5ms");
    assert!(e.problem.contains("applies to commands"), "{e}");
    assert!(bad("errors", "p99 < 5ms")
        .problem
        .contains("takes no statistic"));
}

#[test]
fn bad_keys_are_rejected_with_offset_none() {
    for key in ["", "imap..fetch", ".imap", "imap fetch", "imap/fetch"] {
        let e = bad(key, "== 0");
        assert_eq!(e.offset, None, "{key:?}");
        assert!(e.problem.contains("metric name"));
    }
}

#[test]
fn parse_thresholds_keeps_key_order_and_stops_at_the_first_error() {
    let all = parse_thresholds(&map(&[
        ("imap.fetch", "p99 < 50ms, p50 < 5ms"),
        ("errors", "< 0.1%"),
        ("audit.lost", "== 0"),
    ]))
    .unwrap();
    let keys: Vec<&str> = all.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["audit.lost", "errors", "imap.fetch", "imap.fetch"]);
    let e = parse_thresholds(&map(&[("audit.lost", "== 0"), ("imap.x", "p99 < 7")])).unwrap_err();
    assert_eq!(e.key, "imap.x");
}

fn eval(key: &str, value: &str, results: &crate::report::Results) -> Vec<CriterionOutcome> {
    evaluate(&parse_entry(key, value).unwrap(), results)
}

use crate::gate::outcome::CriterionOutcome;

#[test]
fn latency_pass_and_fail_with_numbers() {
    let r = sample();
    let out = eval("imap.fetch", "p99 < 50ms, p50 < 3ms", &r);
    assert!(out[0].passed);
    assert_eq!(out[0].observed, Some(Observed::Number(40_000.0)));
    assert_eq!(out[0].reason, "p99 is 40ms");
    assert!(!out[1].passed);
    assert_eq!(out[1].reason, "p50 is 4ms, needs < 3ms");
    assert_eq!(out[1].limit_display(), "< 3ms");
    assert_eq!(out[1].criterion, "imap.fetch: p50 < 3ms");
}

#[test]
fn counts_errors_and_rates_of_a_command() {
    let r = sample();
    assert!(!eval("imap.login.errors", "== 0", &r)[0].passed);
    assert!(eval("imap.fetch.errors", "== 0", &r)[0].passed);
    assert!(eval("imap.fetch.count", "> 0", &r)[0].passed);
    let rate = &eval("imap.login", "error_rate < 1%", &r)[0];
    assert!(!rate.passed, "1 in 100 is not below 1%");
    assert_eq!(rate.reason, "error_rate is 1%, needs < 1%");
    assert!(eval("imap.login", "error_rate <= 1%", &r)[0].passed);
}

#[test]
fn total_error_rate() {
    let r = sample(); // 1 error in 1220 operations = 0.082%
    assert!(eval("errors", "< 0.1%", &r)[0].passed);
    assert!(!eval("errors", "== 0", &r)[0].passed);
    let empty = results_with(vec![]);
    let out = &eval("errors", "< 0.1%", &empty)[0];
    assert!(!out.passed);
    assert!(out.reason.contains("no samples"), "{}", out.reason);
}

#[test]
fn counters_audit_and_checks() {
    let r = sample();
    assert!(eval("lmtp.delivered", ">= 100", &r)[0].passed);
    assert!(!eval("lmtp.delivered", ">= 200", &r)[0].passed);
    assert!(eval("audit.lost", "== 0", &r)[0].passed);
    assert!(eval("checks.violations", "== 0", &r)[0].passed);
    assert!(eval("checks.by_id.imap.exists-order", "== 0", &r)[0].passed);
    assert!(eval("totals.commands", "== 1220", &r)[0].passed);
    let mut lossy = sample();
    lossy.extra.insert("audit".into(), json!({"lost": 3}));
    let out = &eval("audit.lost", "== 0", &lossy)[0];
    assert!(!out.passed);
    assert_eq!(out.reason, "audit.lost is 3, needs == 0");
}

#[test]
fn missing_metric_fails_with_no_samples() {
    let r = sample();
    for (key, value, name) in [
        ("imap.append", "p99 < 50ms", "imap.append"),
        ("imap.append.count", "> 0", "imap.append"),
        ("smtp.rcpt", "p50 < 1s", "smtp.rcpt"),
        ("audit.missing", "== 0", "audit.missing"),
        ("server.pss_mb", "< 100", "server.pss_mb"),
    ] {
        let out = &eval(key, value, &r)[0];
        assert!(!out.passed, "{key}");
        assert_eq!(out.reason, format!("no samples for {name}"));
        assert_eq!(out.observed, None);
    }
}

#[test]
fn command_with_only_failures_has_no_latency() {
    let mut c = command("imap.select", 5, 5, 1, 1);
    (c.p50_us, c.p99_us, c.mean_us) = (None, None, None);
    let r = results_with(vec![c]);
    let out = &eval("imap.select", "p99 < 1s", &r)[0];
    assert!(!out.passed);
    assert!(out
        .reason
        .contains("no successful imap.select operations (5 ran, 5 failed)"));
}

#[test]
fn a_command_used_as_a_value_gets_a_hint() {
    let out = &eval("imap.fetch", "> 0", &sample())[0];
    assert!(!out.passed);
    assert!(
        out.reason.contains("is a command: name a statistic"),
        "{}",
        out.reason
    );
}

#[test]
fn non_numeric_report_value_fails() {
    let mut r = sample();
    r.extra.insert("audit".into(), json!({"lost": "many"}));
    let out = &eval("audit.lost", "== 0", &r)[0];
    assert!(!out.passed);
    assert!(out.reason.contains("not a number"), "{}", out.reason);
}

#[test]
fn record_stores_definitions_and_outcomes_and_gate_re_evaluates() {
    let mut r = sample();
    let defs = map(&[("imap.fetch", "p99 < 50ms"), ("audit.lost", "== 0")]);
    let outcomes = record(&mut r, &defs).unwrap();
    assert!(outcomes.iter().all(|o| o.passed));
    let stored = stored_outcomes(&r).unwrap().unwrap();
    assert_eq!(stored.definitions, defs);
    assert_eq!(stored.outcomes, outcomes);
    // A changed number is re-evaluated, not taken from the stored outcomes.
    r.commands[0].p99_us = Some(60_000);
    let again = stored_outcomes(&r).unwrap().unwrap();
    let fetch = again
        .outcomes
        .iter()
        .find(|o| o.criterion.starts_with("imap"))
        .unwrap();
    assert!(!fetch.passed);
    // Survives a JSON round trip of the whole results.
    let back: crate::report::Results =
        serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(stored_outcomes(&back).unwrap().unwrap().outcomes.len(), 2);
}

#[test]
fn stored_outcomes_without_definitions_are_used_as_is() {
    let mut r = sample();
    let section = ThresholdSection {
        definitions: BTreeMap::new(),
        outcomes: eval("imap.fetch", "p99 < 1ms", &r),
    };
    r.extra
        .insert(EXTRA_KEY.into(), serde_json::to_value(&section).unwrap());
    assert_eq!(stored_outcomes(&r).unwrap().unwrap(), section);
    assert!(stored_outcomes(&results_with(vec![])).unwrap().is_none());
}

#[test]
fn broken_stored_sections_are_errors() {
    let mut r = sample();
    r.extra.insert(EXTRA_KEY.into(), json!({"outcomes": 5}));
    assert!(matches!(
        stored_outcomes(&r),
        Err(StoredError::Malformed(_))
    ));
    r.extra.insert(
        EXTRA_KEY.into(),
        json!({"definitions": {"imap.fetch": "p99 <"}}),
    );
    assert!(matches!(
        stored_outcomes(&r),
        Err(StoredError::Threshold(_))
    ));
}
