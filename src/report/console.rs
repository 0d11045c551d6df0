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
        "total: {} operations, {} errors ({:.3}%)",
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
