//! The summary table printed at the end of a run.

use std::io::{self, Write};

use super::results::{CommandStats, Results};

fn ms(us: Option<u64>) -> String {
    match us {
        Some(us) => format!("{:.2}", us as f64 / 1000.0),
        None => "-".to_string(),
    }
}

/// Writes the per-command table and totals. Takes any writer so tests print into a Vec.
pub fn print_summary(out: &mut impl Write, results: &Results) -> io::Result<()> {
    let run = &results.run;
    writeln!(
        out,
        "scenario {} (seed {}), {:.1} s{}, peak {} connections",
        results.scenario.name,
        results.scenario.seed,
        run.duration_s,
        if run.interrupted { ", INTERRUPTED" } else { "" },
        run.peak_connected
    )?;
    if !results.phases.is_empty() {
        writeln!(
            out,
            "per-command figures: steady phase only (ramp-up and ramp-down are in results.json)"
        )?;
    }
    writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "command", "count", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    )?;
    for c in &results.commands {
        print_row(out, c)?;
    }
    let t = &results.totals;
    writeln!(
        out,
        "total over the whole run: {} operations, {} errors ({:.3}%)",
        t.commands,
        t.errors,
        t.error_rate * 100.0
    )?;
    if !t.errors_by_kind.is_empty() {
        let kinds: Vec<String> = t
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        writeln!(out, "errors by kind: {}", kinds.join(" "))?;
    }
    for (name, value) in &results.counters {
        writeln!(out, "{name}: {value}")?;
    }
    if let Some(checks) = results.extra.get("checks") {
        writeln!(
            out,
            "state checks: {} answers examined, {} violations",
            checks["observed"], checks["violations"]
        )?;
    }
    Ok(())
}

fn print_row(out: &mut impl Write, c: &CommandStats) -> io::Result<()> {
    writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        format!("{} {}", c.protocol, c.command),
        c.count,
        c.errors,
        ms(c.p50_us),
        ms(c.p90_us),
        ms(c.p99_us),
        ms(c.p999_us),
        ms(c.max_us)
    )
}

#[cfg(test)]
mod tests {
    use super::print_summary;
    use crate::gate::testutil::{command, results_with};

    #[test]
    fn the_summary_says_what_its_numbers_cover() {
        let mut r = results_with(vec![command("imap.fetch", 100, 2, 1_000, 9_000)]);
        let mut text = Vec::new();
        print_summary(&mut text, &r).unwrap();
        let plain = String::from_utf8(text).unwrap();
        assert!(!plain.contains("steady phase"), "{plain}");
        assert!(plain.contains("total over the whole run: 100 operations, 2 errors (2.000%)"));

        r.phases.insert("steady".into(), r.commands.clone());
        r.extra.insert(
            "checks".into(),
            serde_json::json!({"observed": 42, "violations": 0}),
        );
        let mut text = Vec::new();
        print_summary(&mut text, &r).unwrap();
        let phased = String::from_utf8(text).unwrap();
        assert!(phased.contains("steady phase only"), "{phased}");
        assert!(phased.contains("state checks: 42 answers examined, 0 violations"));
    }
}
