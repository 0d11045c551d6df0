//! `sweep.html`: the knee and the per-user memory cost up front, then one row per level, the
//! two charts (inline SVG) and every command's p50/p99 per level. One static file, no script.

use super::charts::slope_sentence;
use super::SweepReport;
use crate::report::html::{escape, ms, percent, Cell, Page, Table};
use crate::report::plots::bytes_label;

/// The knee in one sentence, for the page and the console.
pub fn knee_sentence(report: &SweepReport) -> String {
    match &report.knee {
        Some(knee) => format!(
            "knee at {}: {}",
            report.level_unit.describe(knee.level),
            knee.reason
        ),
        None if report.thresholds.is_empty() => {
            "no knee: the scenario has no thresholds to fail (add `thresholds:` to find one)"
                .to_string()
        }
        None => "no knee: every level met the scenario's thresholds".to_string(),
    }
}

/// The page; a chart passed as `None` is replaced by a note saying why it is missing.
pub fn render_sweep_html(
    report: &SweepReport,
    latency_svg: Option<&str>,
    memory_svg: Option<&str>,
) -> String {
    let mut page = Page::new();
    let s = &report.scenario;
    page.heading(1, None, &format!("mailswarm sweep: {}", s.name));
    page.push_raw(&format!(
        "<p class=\"meta\"><span>scenario {}</span><span>seed {}</span><span>digest {}</span>\
         <span>model {}</span><span>{} s per level, first {} s warm-up</span></p>\n",
        escape(s.file.as_deref().unwrap_or("-")),
        s.seed,
        escape(s.digest.get(..12).unwrap_or(&s.digest)),
        escape(&report.model),
        report.duration_s,
        report.warmup_s,
    ));
    if report.interrupted {
        page.paragraph_class(
            "warning",
            "The sweep was interrupted: only the levels below ran, and an interrupted level is \
             left out of the knee and the fit.",
        );
    }
    let knee = knee_sentence(report);
    let mut chars = knee.chars();
    let knee = chars
        .next()
        .map_or(String::new(), |c| c.to_uppercase().chain(chars).collect());
    page.paragraph_class("headline", &knee);
    let memory = match &report.memory_fit {
        Some(fit) => format!(
            "Server memory per connected user: {} (R² = {:.3}, fit over {} levels).",
            bytes_label(fit.slope_bytes_per_user),
            fit.r_squared,
            fit.levels
        ),
        None => "Server memory per connected user: not measured (needs server samples at two \
                 levels with different user counts)."
            .to_string(),
    };
    page.paragraph_class("headline", &memory);
    page.paragraph(
        "Every number is from the steady phase of its level: the warm-up and the ramp-down are \
         left out. Latency is of successful operations.",
    );

    page.heading(2, Some("levels"), "Levels");
    let mut levels = Table::new(&[
        "#level",
        "#connected",
        "#operations",
        "#error rate",
        "#server memory",
        "thresholds",
        "failed",
        "run",
    ]);
    for level in &report.levels {
        let operations: u64 = level.commands.iter().map(|c| c.count).sum();
        let verdict = if level.interrupted {
            Cell::badge("skip", "interrupted")
        } else if level.thresholds_passed {
            Cell::badge("pass", "pass")
        } else {
            Cell::badge("fail", "FAIL")
        };
        let failed = level
            .failed_criteria
            .iter()
            .map(|c| format!("{} ({})", c.criterion, c.reason))
            .collect::<Vec<_>>()
            .join("; ");
        let link = format!("{}/report.html", level.dir);
        levels.row(vec![
            Cell::num(level.level.to_string()),
            Cell::num(
                level
                    .connected_mean
                    .map_or("-".into(), |c| format!("{c:.1}")),
            ),
            Cell::num(operations.to_string()),
            Cell::num(percent(level.error_rate)),
            Cell::num(level.server_pss_mean_bytes.map_or("-".into(), bytes_label)),
            verdict,
            Cell::text(failed),
            Cell::Html(format!(
                "<a href=\"{}\">{}</a>",
                escape(&link),
                escape(&level.dir)
            )),
        ]);
    }
    page.table(&levels);

    page.heading(2, Some("charts"), "Charts");
    match latency_svg {
        Some(svg) => page.figure(
            svg,
            "p99 (solid) and p50 (dashed) latency of each command at each level",
        ),
        None => page.paragraph_class("warning", "No latency chart: no command succeeded."),
    }
    match memory_svg {
        Some(svg) => {
            let caption = report.memory_fit.as_ref().map_or(
                "Server memory against connected users, one point per level".to_string(),
                |fit| {
                    format!(
                        "Server memory against connected users; {}",
                        slope_sentence(fit)
                    )
                },
            );
            page.figure(svg, &caption);
        }
        None => page.paragraph_class(
            "warning",
            "No memory chart: the server was not sampled (set `server:` in the scenario, or use \
             a lab target).",
        ),
    }

    page.heading(2, Some("commands"), "Latency per command");
    let mut header = vec!["command".to_string()];
    header.extend(
        report
            .levels
            .iter()
            .map(|l| format!("#{} p50 / p99 ms", l.level)),
    );
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut commands = Table::new(&header);
    let mut metrics: Vec<&str> = report
        .levels
        .iter()
        .flat_map(|l| l.commands.iter().map(|c| c.metric.as_str()))
        .collect();
    metrics.sort_unstable();
    metrics.dedup();
    for metric in metrics {
        let mut row = vec![Cell::text(metric)];
        for level in &report.levels {
            row.push(Cell::num(level.command(metric).map_or("-".into(), |c| {
                format!("{} / {}", ms(c.p50_us), ms(c.p99_us))
            })));
        }
        commands.row(row);
    }
    page.table(&commands);

    if !report.thresholds.is_empty() {
        page.heading(2, Some("thresholds"), "Thresholds");
        let mut table = Table::new(&["metric", "condition"]);
        for (key, value) in &report.thresholds {
            table.row(vec![Cell::text(key), Cell::text(value)]);
        }
        page.table(&table);
    }
    page.push_raw(&format!(
        "<footer>mailswarm {} · sweep.json schema {}</footer>\n",
        escape(&report.mailswarm_version),
        report.schema_version
    ));
    page.finish(&format!("mailswarm sweep: {}", s.name))
}
