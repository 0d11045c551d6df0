//! The comparison as one self-contained HTML page: the delta table and bar charts of p50 and
//! p99 per command, one bar per run.

use std::path::{Path, PathBuf};

use super::{delta_text, ms_text, Comparison, Delta, RunCell};
use crate::report::html::{escape, percent, Cell, Page, Table};
use crate::report::plots::{bytes_label, render_svg, CompareBars, PlotError};

fn delta_cell(delta: Option<&Delta>, text: String) -> Cell {
    match delta {
        Some(d) => Cell::Html(format!(
            "<span class=\"{}\">{}</span>",
            d.verdict.css(),
            escape(&text)
        )),
        None => Cell::text(""),
    }
}

fn bars(cmp: &Comparison, pick: fn(&RunCell) -> Option<u64>, what: &str) -> CompareBars {
    CompareBars::new(
        &format!("{what} latency per command"),
        &format!("{what} latency (ms)"),
        cmp.commands.iter().map(|r| r.metric.clone()).collect(),
        cmp.runs.iter().map(|r| r.label.clone()).collect(),
        cmp.commands
            .iter()
            .map(|row| {
                row.runs
                    .iter()
                    .map(|c| c.as_ref().and_then(pick).map(|us| us as f64 / 1000.0))
                    .collect()
            })
            .collect(),
    )
}

/// The page. Charts that cannot be drawn are replaced by a note; the table always renders.
pub fn render_compare_html(cmp: &Comparison) -> String {
    let mut page = Page::new();
    page.heading(1, None, "mailswarm comparison");
    let mut runs = Table::new(&["", "run", "scenario", "started", "#duration s", "file"]);
    for (i, run) in cmp.runs.iter().enumerate() {
        let r = &run.results;
        runs.row(vec![
            Cell::text(if i == 0 { "baseline" } else { "" }),
            Cell::text(&run.label),
            Cell::text(&r.scenario.name),
            Cell::text(&r.run.started_at),
            Cell::num(format!("{:.1}", r.run.duration_s)),
            Cell::text(run.path.display().to_string()),
        ]);
    }
    page.table(&runs);
    let digests: std::collections::BTreeSet<_> = cmp
        .runs
        .iter()
        .map(|r| &r.results.scenario.digest)
        .collect();
    if digests.len() > 1 {
        page.paragraph_class(
            "warning",
            "The runs used different scenarios (their digests differ): a change may come \
             from the scenario, not from the server.",
        );
    }
    page.paragraph(
        "Deltas are against the baseline. ≈ marks a change within the noise band: latency \
         within max(5%, 100 µs), error rate within 0.1 percentage points. ▲ worse, ▼ better.",
    );
    let mut table = Table::new(&[
        "command",
        "run",
        "#p50 ms",
        "#Δ p50",
        "#p99 ms",
        "#Δ p99",
        "#errors",
        "#error rate",
        "#Δ errors",
    ]);
    for row in &cmp.commands {
        for (run, cell) in cmp.runs.iter().zip(&row.runs) {
            let Some(c) = cell else {
                table.row(vec![
                    Cell::text(&row.metric),
                    Cell::text(&run.label),
                    Cell::text("not run"),
                ]);
                continue;
            };
            let latency = |d: &Option<Delta>| {
                delta_cell(
                    d.as_ref(),
                    d.as_ref().map_or(String::new(), |d| delta_text(d, "µs")),
                )
            };
            let errors = c.error_delta.as_ref().map_or(String::new(), |d| {
                format!("{} {:+.2} pts", d.verdict.symbol(), d.absolute * 100.0)
            });
            table.row(vec![
                Cell::text(&row.metric),
                Cell::text(&run.label),
                Cell::num(ms_text(c.p50_us)),
                latency(&c.p50_delta),
                Cell::num(ms_text(c.p99_us)),
                latency(&c.p99_delta),
                Cell::num(c.errors.to_string()),
                Cell::num(percent(c.error_rate)),
                delta_cell(c.error_delta.as_ref(), errors),
            ]);
        }
    }
    page.heading(2, None, "Commands");
    page.table(&table);
    if cmp.bytes_per_user.iter().any(Option::is_some) {
        page.heading(2, None, "Server memory per connected user");
        let mut server = Table::new(&["run", "#per user", "#Δ"]);
        let base = cmp.bytes_per_user[0];
        for (i, (run, value)) in cmp.runs.iter().zip(&cmp.bytes_per_user).enumerate() {
            let delta = match (i, base, value) {
                (1.., Some(b), Some(v)) => Some(Delta::relative_only(b, *v)),
                _ => None,
            };
            server.row(vec![
                Cell::text(&run.label),
                Cell::num(value.map_or("-".into(), bytes_label)),
                delta_cell(
                    delta.as_ref(),
                    delta.map_or(String::new(), |d| delta_text(&d, "")),
                ),
            ]);
        }
        page.table(&server);
    }
    page.heading(2, None, "Charts");
    for (pick, what) in [
        (
            (|c: &RunCell| c.p50_us) as fn(&RunCell) -> Option<u64>,
            "p50",
        ),
        (|c: &RunCell| c.p99_us, "p99"),
    ] {
        let chart = bars(cmp, pick, what);
        match render_svg(&chart, &format!("compare-{what}"), chart.size()) {
            Ok(svg) => page.figure(
                &svg,
                &format!("{what} latency per command, one bar per run"),
            ),
            Err(err) => page.paragraph_class("warning", &format!("chart missing: {err}")),
        }
    }
    page.finish("mailswarm comparison")
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Writes the page to `out`, creating its folder.
pub fn write_compare_html(cmp: &Comparison, out: &Path) -> Result<PathBuf, WriteError> {
    let io = |source| WriteError::Io {
        path: out.to_path_buf(),
        source,
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(out, render_compare_html(cmp)).map_err(io)?;
    Ok(out.to_path_buf())
}
