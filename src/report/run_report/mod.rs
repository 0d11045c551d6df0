//! Everything a run leaves in its folder, written by one call at the end of the run:
//! `results.json`, `latency.hlog`, `server.json`, `plots/*.png|svg` and a self-contained
//! `report.html` (inline CSS and SVG, no scripts, no external assets: it can be mailed or
//! attached to a ticket as it is).

use std::path::{Path, PathBuf};

use super::html::{command_table, escape, kinds, percent, Cell, Page, Table};
use super::plots::{bytes_label, fit_sentence, render_run, LinearFit, RunPlots};
use super::results::Results;
use super::sections;
use super::server::{self, ServerFile, ServerSummary};
use crate::metrics::{Phase, RunMetrics, ServerSample};

/// Paths of what [`write_run_report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub dir: PathBuf,
    pub results: PathBuf,
    /// Absent when the metrics carry no interval log (no collector ran).
    pub latency_log: Option<PathBuf>,
    /// Absent without server samples.
    pub server: Option<PathBuf>,
    /// Every PNG and SVG.
    pub plots: Vec<PathBuf>,
    pub html: PathBuf,
    /// Problems that left the report incomplete without failing it (a chart that could not be
    /// drawn); also shown in the HTML.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn write_file(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    std::fs::write(&path, bytes).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Writes the run's folder. `results` is stored as given, plus `extra["server"]` (the
/// [`ServerSummary`]) when there are server samples and it is not there yet.
/// `scenario_yaml` is the scenario text as the user wrote it; it is shown, escaped, at the end
/// of the report.
pub fn write_run_report(
    dir: &Path,
    results: &Results,
    metrics: &RunMetrics,
    server: &[ServerSample],
    scenario_yaml: &str,
) -> Result<ReportFiles, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut results = results.clone();
    if !results.extra.contains_key(server::EXTRA_KEY) {
        server::attach_server_summary(&mut results, server);
    }
    let results_path = dir.join("results.json");
    results
        .write(&results_path)
        .map_err(|source| ReportError::Io {
            path: results_path.clone(),
            source,
        })?;
    let latency_log = if metrics.latency_log.is_empty() {
        None
    } else {
        Some(write_file(dir.join("latency.hlog"), &metrics.latency_log)?)
    };
    let summary = ServerSummary::from_samples(server);
    let server_path = match &summary {
        Some(summary) => {
            let file = ServerFile {
                summary: summary.clone(),
                samples: server.to_vec(),
            };
            let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
            Some(write_file(dir.join("server.json"), &json)?)
        }
        None => None,
    };
    let mut warnings = Vec::new();
    let plots = match render_run(&dir.join("plots"), metrics, server, headline(&results)) {
        Ok(plots) => plots,
        Err(err) => {
            warnings.push(format!("charts are missing: {err}"));
            RunPlots::default()
        }
    };
    let html = render_html(&results, &plots, summary.as_ref(), scenario_yaml, &warnings);
    let html_path = write_file(dir.join("report.html"), html.as_bytes())?;
    Ok(ReportFiles {
        dir: dir.to_path_buf(),
        results: results_path,
        latency_log,
        server: server_path,
        plots: plots
            .all()
            .flat_map(|p| [p.png_path.clone(), p.svg_path.clone()])
            .collect(),
        html: html_path,
        warnings,
    })
}

/// The phases the headline numbers cover: `Results::build` fills `phases` only for runs with
/// ramps, whose headline is the steady state.
fn headline(results: &Results) -> &'static [Phase] {
    if results.phases.is_empty() {
        &Phase::ALL
    } else {
        &[Phase::Steady]
    }
}

/// The page itself; public so a report can be re-rendered from stored files.
pub fn render_html(
    results: &Results,
    plots: &RunPlots,
    server: Option<&ServerSummary>,
    scenario_yaml: &str,
    warnings: &[String],
) -> String {
    let mut page = Page::new();
    let name = &results.scenario.name;
    page.heading(1, None, &format!("mailswarm run: {name}"));
    page.push_raw(&format!(
        "<p class=\"meta\"><span>started {}</span><span>{:.1} s</span><span>{} model</span>\
         <span>seed {}</span><span>mailswarm {}</span></p>\n",
        escape(&results.run.started_at),
        results.run.duration_s,
        escape(&results.run.model),
        results.scenario.seed,
        escape(&results.mailswarm_version)
    ));
    let has = |key: &str| results.extra.contains_key(key);
    let mut nav = vec![("summary", "Summary")];
    if has("thresholds") {
        nav.push(("thresholds", "Thresholds"));
    }
    if has("checks") {
        nav.push(("checks", "Conformance"));
    }
    nav.extend([("commands", "Commands"), ("charts", "Charts")]);
    if server.is_some() {
        nav.push(("server", "Server"));
    }
    nav.extend([("errors", "Errors"), ("scenario", "Scenario")]);
    let links: Vec<String> = nav
        .iter()
        .map(|(id, title)| format!("<a href=\"#{id}\">{title}</a>"))
        .collect();
    page.push_raw(&format!("<nav>{}</nav>\n", links.join("")));
    for warning in warnings {
        page.paragraph_class("warning", warning);
    }
    if results.run.interrupted {
        page.paragraph_class(
            "warning",
            "This run was interrupted: the numbers cover only the part that ran.",
        );
    }

    summary(&mut page, results, server, plots.fit);
    if let Some(value) = results.extra.get("thresholds") {
        page.heading(2, Some("thresholds"), "Thresholds");
        sections::thresholds(&mut page, value);
    }
    if let Some(value) = results.extra.get("checks") {
        page.heading(2, Some("checks"), "Conformance");
        sections::checks(&mut page, value);
    }
    commands(&mut page, results);
    charts(&mut page, plots);
    if let Some(server) = server {
        server_section(&mut page, server, plots);
    }
    errors(&mut page, results);
    let known = ["thresholds", "checks", server::EXTRA_KEY];
    let others: Vec<_> = results
        .extra
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .collect();
    if !others.is_empty() {
        page.heading(2, Some("other"), "Other sections");
        for (key, value) in others {
            sections::other(&mut page, key, value);
        }
    }
    run_details(&mut page, results);
    page.heading(2, Some("scenario"), "Scenario");
    if scenario_yaml.trim().is_empty() {
        page.paragraph("The scenario text was not recorded.");
    } else {
        page.pre(scenario_yaml);
    }
    page.push_raw(
        "<footer>Files next to this report: results.json (all numbers), latency.hlog \
         (HdrHistogram interval log, one histogram per command per second, µs), server.json, \
         plots/ (PNG and SVG).</footer>\n",
    );
    page.finish(&format!("mailswarm: {name}"))
}

fn summary(
    page: &mut Page,
    results: &Results,
    server: Option<&ServerSummary>,
    fit: Option<LinearFit>,
) {
    page.heading(2, Some("summary"), "Summary");
    let t = &results.totals;
    let mut headline = format!(
        "{} operations, {} errors ({}), peak {} connections.",
        t.commands,
        t.errors,
        percent(t.error_rate),
        results.run.peak_connected
    );
    if let Some(fit) = fit {
        headline.push_str(&format!(" Server: {}.", fit_sentence(&fit)));
    } else if let Some(server) = server {
        headline.push_str(&format!(
            " Server memory peaked at {}.",
            bytes_label(server.peak_bytes as f64)
        ));
    }
    page.paragraph_class("headline", &headline);
    if !t.errors_by_kind.is_empty() {
        page.paragraph(&format!("Errors by kind: {}.", kinds(&t.errors_by_kind)));
    }
}

fn commands(page: &mut Page, results: &Results) {
    let scope = if results.phases.is_empty() {
        "whole run"
    } else {
        "steady state"
    };
    page.heading(2, Some("commands"), &format!("Commands ({scope})"));
    if results.commands.is_empty() {
        page.paragraph("No operation completed.");
    } else {
        page.paragraph("Latencies are of successful operations, in milliseconds.");
        page.table(&command_table(&results.commands));
    }
    for (phase, commands) in &results.phases {
        page.heading(3, None, &format!("Phase {phase}"));
        page.table(&command_table(commands));
    }
}

fn charts(page: &mut Page, plots: &RunPlots) {
    page.heading(2, Some("charts"), "Charts");
    if let Some(plot) = &plots.throughput {
        page.figure(&plot.svg, &plot.title);
    }
    for (op, over_time, spectrum) in &plots.commands {
        page.heading(3, None, &op.metric_name());
        page.figure(&over_time.svg, &over_time.title);
        page.figure(&spectrum.svg, &spectrum.title);
    }
    if plots.throughput.is_none() && plots.commands.is_empty() {
        page.paragraph("Nothing to chart: the run recorded no interval.");
    }
}

fn server_section(page: &mut Page, server: &ServerSummary, plots: &RunPlots) {
    page.heading(2, Some("server"), "Server");
    let mut table = Table::new(&["measure", "#value"]);
    let bytes = |b: u64| Cell::num(bytes_label(b as f64));
    let rows: Vec<(&str, Cell)> = vec![
        (
            "memory per connected user (fit)",
            Cell::num(server.bytes_per_user.map_or("-".to_string(), |b| {
                format!("{} ({b:.0} bytes)", bytes_label(b))
            })),
        ),
        (
            "memory with nobody connected (fit)",
            Cell::num(server.fit_intercept_bytes.map_or("-".into(), bytes_label)),
        ),
        (
            "fit R²",
            Cell::num(
                server
                    .fit_r_squared
                    .map_or("-".into(), |r| format!("{r:.3}")),
            ),
        ),
        ("memory at start", bytes(server.first_bytes)),
        ("peak memory", bytes(server.peak_bytes)),
        ("memory at end", bytes(server.last_bytes)),
        (
            "peak connected users",
            Cell::num(server.peak_connected.to_string()),
        ),
        (
            "peak processes",
            Cell::num(server.peak_processes.map_or("-".into(), |p| p.to_string())),
        ),
        (
            "server CPU used",
            Cell::num(server.cpu_s.map_or("-".into(), |s| format!("{s:.1} s"))),
        ),
        ("samples", Cell::num(server.samples.to_string())),
    ];
    for (name, value) in rows {
        table.row(vec![Cell::text(name), value]);
    }
    page.table(&table);
    for caveat in server.caveats() {
        page.paragraph_class("warning", &caveat);
    }
    for plot in plots.server.iter().chain(plots.memory_per_user.iter()) {
        page.figure(&plot.svg, &plot.title);
    }
}

fn errors(page: &mut Page, results: &Results) {
    page.heading(2, Some("errors"), "Errors");
    let t = &results.totals;
    if t.errors == 0 {
        page.paragraph("No operation failed.");
        return;
    }
    let mut table = Table::new(&["kind", "#count", "#share of errors"]);
    for (kind, n) in &t.errors_by_kind {
        table.row(vec![
            Cell::text(kind),
            Cell::num(n.to_string()),
            Cell::num(percent(*n as f64 / t.errors as f64)),
        ]);
    }
    page.table(&table);
    let mut by_command = Table::new(&["command", "#errors", "errors by kind"]);
    for c in results.commands.iter().filter(|c| c.errors > 0) {
        by_command.row(vec![
            Cell::text(&c.metric),
            Cell::num(c.errors.to_string()),
            Cell::text(kinds(&c.errors_by_kind)),
        ]);
    }
    if !by_command.is_empty() {
        page.heading(3, None, "By command");
        page.table(&by_command);
    }
}

fn run_details(page: &mut Page, results: &Results) {
    page.heading(2, Some("run"), "Run details");
    let run = &results.run;
    let scenario = &results.scenario;
    let mut table = Table::new(&["", ""]);
    let rows = [
        ("scenario", scenario.name.clone()),
        (
            "scenario file",
            scenario.file.clone().unwrap_or_else(|| "-".into()),
        ),
        ("scenario digest", scenario.digest.clone()),
        ("seed", scenario.seed.to_string()),
        ("started", run.started_at.clone()),
        ("ended", run.ended_at.clone()),
        ("duration", format!("{:.3} s", run.duration_s)),
        ("model", run.model.clone()),
        (
            "open files limit",
            format!("{} (hard {})", run.nofile_soft, run.nofile_hard),
        ),
        ("mailswarm", results.mailswarm_version.clone()),
    ];
    for (name, value) in rows {
        table.row(vec![Cell::text(name), Cell::text(value)]);
    }
    page.table(&table);
    if !results.counters.is_empty() {
        let mut counters = Table::new(&["counter", "#value"]);
        for (name, value) in &results.counters {
            counters.row(vec![Cell::text(name), Cell::num(value.to_string())]);
        }
        page.heading(3, None, "Counters");
        page.table(&counters);
    }
}

#[cfg(test)]
mod tests;
