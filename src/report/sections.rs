//! HTML for the sections later stages add to `results.extra`: threshold outcomes and
//! conformance checks. Their schemas belong to those stages, so the rendering is tolerant: it
//! reads the fields it knows, and shows anything else as JSON rather than failing the report.

use serde_json::Value;

use super::html::{escape, Cell, Page, Table};

/// A JSON value as a table cell: numbers without a trailing `.0`, strings unquoted.
fn scalar(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            Some(f) => format!("{}", (f * 1e6).round() / 1e6),
            None => n.to_string(),
        },
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => other.to_string(),
    }
}

/// `{"op": "<", "value": 50}` → `< 50`; a plain number or string as it is.
fn limit(v: Option<&Value>) -> String {
    match v {
        Some(Value::Object(map)) if map.contains_key("value") => {
            let op = map.get("op").map(|o| scalar(Some(o))).unwrap_or_default();
            format!("{op} {}", scalar(map.get("value")))
                .trim()
                .to_string()
        }
        other => scalar(other),
    }
}

/// The list inside a section: the value itself, or its `key` member.
fn list<'a>(value: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    value
        .as_array()
        .or_else(|| value.get(key).and_then(Value::as_array))
}

fn raw_json(page: &mut Page, note: &str, value: &Value) {
    page.paragraph(note);
    page.pre(&serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Threshold outcomes: a list of `{criterion, passed, observed, limit}` (optionally `skipped`,
/// `reason`), or an object holding it as `outcomes`. Returns (passed, total).
pub fn thresholds(page: &mut Page, value: &Value) -> (usize, usize) {
    let Some(items) = list(value, "outcomes") else {
        raw_json(page, "The thresholds section has an unknown layout:", value);
        return (0, 0);
    };
    let mut table = Table::new(&["criterion", "result", "#observed", "#limit", "detail"]);
    let mut passed = 0;
    for item in items {
        let ok = item.get("passed").and_then(Value::as_bool).unwrap_or(false);
        let skipped = item
            .get("skipped")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        passed += usize::from(ok);
        let badge = match (skipped, ok) {
            (true, _) => Cell::badge("skip", "SKIP"),
            (false, true) => Cell::badge("pass", "PASS"),
            (false, false) => Cell::badge("fail", "FAIL"),
        };
        table.row(vec![
            Cell::text(scalar(item.get("criterion").or_else(|| item.get("name")))),
            badge,
            Cell::num(scalar(item.get("observed"))),
            Cell::num(limit(item.get("limit"))),
            Cell::text(scalar(item.get("reason"))),
        ]);
    }
    let total = items.len();
    let class = if passed == total { "pass" } else { "fail" };
    page.push_raw(&format!(
        "<p><span class=\"badge {class}\">{}</span> {passed} of {total} thresholds held.</p>\n",
        if passed == total { "PASS" } else { "FAIL" }
    ));
    if !table.is_empty() {
        page.table(&table);
    }
    (passed, total)
}

/// Conformance checks: a list of `{id, status, title, message, reference}`, or an object holding
/// it as `checks`. Failures are listed first and in full; the rest under a fold. Returns the
/// number of failed checks.
pub fn checks(page: &mut Page, value: &Value) -> usize {
    let Some(items) = list(value, "checks") else {
        raw_json(page, "The checks section has an unknown layout:", value);
        return 0;
    };
    let status = |item: &Value| {
        item.get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_ascii_lowercase()
    };
    let row = |item: &Value| {
        let s = status(item);
        let class = match s.as_str() {
            "pass" => "pass",
            "fail" => "fail",
            _ => "skip",
        };
        vec![
            Cell::text(scalar(item.get("id"))),
            Cell::badge(class, &s.to_ascii_uppercase()),
            Cell::text(scalar(item.get("title"))),
            Cell::text(scalar(item.get("reference"))),
            Cell::text(scalar(item.get("message"))),
        ]
    };
    let header = ["check", "status", "title", "rule", "message"];
    let failed: Vec<&Value> = items.iter().filter(|i| status(i) == "fail").collect();
    let count = |name: &str| items.iter().filter(|i| status(i) == name).count();
    page.paragraph(&format!(
        "{} checks: {} passed, {} failed, {} skipped, {} waived.",
        items.len(),
        count("pass"),
        failed.len(),
        count("skip"),
        count("waived")
    ));
    if !failed.is_empty() {
        page.heading(3, None, "Violations");
        let mut table = Table::new(&header);
        for item in &failed {
            table.row(row(item));
        }
        page.table(&table);
    }
    let rest: Vec<&Value> = items.iter().filter(|i| status(i) != "fail").collect();
    if !rest.is_empty() {
        let mut table = Table::new(&header);
        for item in rest {
            table.row(row(item));
        }
        page.push_raw(&format!(
            "<details><summary>{} other checks</summary>\n{}</details>\n",
            items.len() - failed.len(),
            table.to_html()
        ));
    }
    failed.len()
}

/// Any other section, folded, as JSON.
pub fn other(page: &mut Page, name: &str, value: &Value) {
    page.push_raw(&format!(
        "<details><summary>{}</summary>\n<pre>{}</pre></details>\n",
        escape(name),
        escape(&serde_json::to_string_pretty(value).unwrap_or_default())
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds_in_both_layouts() {
        let outcomes = json!([
            {"criterion": "imap.fetch: p99 < 50ms", "passed": true, "observed": 12.5,
             "limit": {"op": "<", "value": 50.0}, "reason": "p99 is 12.5ms"},
            {"criterion": "error_rate < 1%", "passed": false, "observed": 0.02, "limit": 0.01}
        ]);
        let mut page = Page::new();
        assert_eq!(thresholds(&mut page, &outcomes), (1, 2));
        let html = page.finish("t");
        assert!(html.contains("imap.fetch: p99 &lt; 50ms"));
        assert!(html.contains("<td class=\"num\">&lt; 50</td>"));
        assert!(html.contains("1 of 2 thresholds held"));
        assert!(html.contains("badge fail"));

        let mut page = Page::new();
        let wrapped = json!({"definitions": {}, "outcomes": outcomes});
        assert_eq!(thresholds(&mut page, &wrapped), (1, 2));

        let mut page = Page::new();
        assert_eq!(thresholds(&mut page, &json!("odd")), (0, 0));
        assert!(page.finish("t").contains("unknown layout"));
    }

    #[test]
    fn checks_list_failures_first() {
        let value = json!({"checks": [
            {"id": "imap.fetch.body", "status": "pass"},
            {"id": "imap.expunge.order", "status": "fail", "message": "EXISTS <before> EXPUNGE",
             "reference": "RFC 9051 7.5.1"},
            {"id": "imap.idle", "status": "skip"}
        ]});
        let mut page = Page::new();
        assert_eq!(checks(&mut page, &value), 1);
        let html = page.finish("t");
        assert!(html.contains("3 checks: 1 passed, 1 failed, 1 skipped, 0 waived."));
        let violations = html.find("Violations").unwrap();
        assert!(html.find("imap.expunge.order").unwrap() > violations);
        assert!(html.contains("EXISTS &lt;before&gt; EXPUNGE"));
        assert!(html.contains("2 other checks"));
    }
}
