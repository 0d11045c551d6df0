//! Charts against time: throughput and errors, latency percentiles per command, server memory
//! next to connected users.

use std::collections::BTreeMap;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{color, font, Chart, DrawResult, CAPTION_SIZE, DESC_SIZE, LABEL_SIZE};
use crate::metrics::{OpKey, ServerSample, TimelinePoint};

const TIME_DESC: &str = "time since start (s)";

/// A series name and its points.
type Series = (String, Vec<(f64, f64)>);

/// Upper end of an axis: a little above the data so the top line stays visible, never empty.
fn top(max: f64, floor: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.1
    } else {
        floor
    }
}

fn time_range(points: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let end = points.fold(0.0f64, f64::max);
    0.0..end.max(1.0)
}

/// Axis numbers without a useless `.0`: plotters' default prints `10.0` on an f64 axis.
pub(crate) fn num_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Milliseconds with as many decimals as small values need, without trailing zeros.
pub(crate) fn ms_label(ms: f64) -> String {
    let text = if ms.abs() < 1.0 {
        format!("{ms:.3}")
    } else if ms.abs() < 10.0 {
        format!("{ms:.2}")
    } else if ms.abs() < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A chart with f64 on both axes.
pub(crate) type Xy = Cartesian2d<RangedCoordf64, RangedCoordf64>;

fn draw_lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Xy>,
    series: &[Series],
    first_color: usize,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    for (i, (name, points)) in series.iter().enumerate() {
        let c = color(first_color + i);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    Ok(())
}

fn draw_legend<'a, DB: DrawingBackend + 'a>(chart: &mut ChartContext<'a, DB, Xy>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    super::draw_legend(chart, SeriesLabelPosition::UpperLeft)
}

/// Operations per second per command (top) and errors per second per kind (bottom).
pub(crate) struct Throughput {
    ops: Vec<Series>,
    errors: Vec<Series>,
    x: std::ops::Range<f64>,
}

impl Throughput {
    pub fn new(timeline: &[TimelinePoint]) -> Throughput {
        let mut ops: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut total = Vec::with_capacity(timeline.len());
        let mut errors: BTreeMap<&'static str, Vec<(f64, f64)>> = BTreeMap::new();
        let kinds: std::collections::BTreeSet<_> = timeline
            .iter()
            .flat_map(|p| p.ops.values().flat_map(|s| s.errors.keys().copied()))
            .collect();
        let names: std::collections::BTreeSet<_> = timeline
            .iter()
            .flat_map(|p| p.ops.keys().copied())
            .collect();
        // A last interval of a fraction of a second (the logout burst after the end) would
        // show as a spike of thousands per second that flattens everything else.
        for point in timeline.iter().filter(|p| p.interval_s >= 0.5) {
            let t = point.t_s as f64;
            let per_s = 1.0 / point.interval_s;
            let mut sum = 0;
            for op in &names {
                let n = point.ops.get(op).map_or(0, |s| s.count());
                sum += n;
                ops.entry(op.metric_name())
                    .or_default()
                    .push((t, n as f64 * per_s));
            }
            total.push((t, sum as f64 * per_s));
            for kind in &kinds {
                let n: u64 = point.ops.values().filter_map(|s| s.errors.get(kind)).sum();
                errors
                    .entry(kind.as_str())
                    .or_default()
                    .push((t, n as f64 * per_s));
            }
        }
        let mut ops: Vec<Series> = ops.into_iter().collect();
        // A legend that fits: the busiest commands by name, the rest summed as one line.
        ops.sort_by(|a, b| volume(b).total_cmp(&volume(a)));
        if ops.len() > MAX_NAMED_SERIES {
            let rest = ops.split_off(MAX_NAMED_SERIES - 1);
            let mut other = rest[0].1.clone();
            for (_, points) in &rest[1..] {
                for (sum, (_, y)) in other.iter_mut().zip(points) {
                    sum.1 += y;
                }
            }
            ops.push((format!("{} other commands", rest.len()), other));
        }
        if ops.len() > 1 {
            ops.insert(0, ("all commands".into(), total));
        }
        Throughput {
            ops,
            errors: errors
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            x: time_range(timeline.iter().map(|p| p.t_s as f64)),
        }
    }
}

/// Lines the throughput chart names in its legend besides "all commands".
const MAX_NAMED_SERIES: usize = 8;

fn volume(series: &Series) -> f64 {
    series.1.iter().map(|(_, y)| y).sum()
}

fn max_y(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max)
}

impl Chart for Throughput {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (upper, lower) = root.split_vertically((62).percent());
        let mut chart = ChartBuilder::on(&upper)
            .caption("Throughput", font(CAPTION_SIZE))
            .margin(12)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(self.x.clone(), 0.0..top(max_y(&self.ops), 1.0))?;
        chart
            .configure_mesh()
            .x_desc(TIME_DESC)
            .x_label_formatter(&|v| num_label(*v))
            .y_desc("operations per second")
            .y_label_formatter(&|v| num_label(*v))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        draw_lines(&mut chart, &self.ops, 0)?;
        draw_legend(&mut chart)?;

        let caption = if self.errors.is_empty() {
            "Errors (none)"
        } else {
            "Errors by kind"
        };
        let mut chart = ChartBuilder::on(&lower)
            .caption(caption, font(CAPTION_SIZE - 4))
            .margin(12)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(self.x.clone(), 0.0..top(max_y(&self.errors), 1.0))?;
        chart
            .configure_mesh()
            .x_desc(TIME_DESC)
            .x_label_formatter(&|v| num_label(*v))
            .y_desc("errors per second")
            .y_label_formatter(&|v| num_label(*v))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        if !self.errors.is_empty() {
            // Start from red: errors are alarming.
            draw_lines(&mut chart, &self.errors, 3)?;
            draw_legend(&mut chart)?;
        }
        Ok(())
    }
}

/// p50, p90 and p99 of one command, per second.
pub(crate) struct LatencyOverTime {
    metric: String,
    series: Vec<Series>,
    x: std::ops::Range<f64>,
}

impl LatencyOverTime {
    pub fn new(timeline: &[TimelinePoint], op: OpKey) -> LatencyOverTime {
        let mut series: Vec<Series> = ["p50", "p90", "p99"]
            .iter()
            .map(|n| (n.to_string(), Vec::new()))
            .collect();
        for point in timeline {
            let Some(s) = point.ops.get(&op).filter(|s| s.ok > 0) else {
                continue;
            };
            let t = point.t_s as f64;
            for (i, us) in [s.p50_us, s.p90_us, s.p99_us].into_iter().enumerate() {
                series[i].1.push((t, us as f64 / 1000.0));
            }
        }
        LatencyOverTime {
            metric: op.metric_name(),
            series,
            x: time_range(timeline.iter().map(|p| p.t_s as f64)),
        }
    }
}

impl Chart for LatencyOverTime {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{}: latency per second", self.metric),
                font(CAPTION_SIZE),
            )
            .margin(12)
            .margin_right(30)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(self.x.clone(), 0.0..top(max_y(&self.series), 1.0))?;
        chart
            .configure_mesh()
            .x_desc(TIME_DESC)
            .x_label_formatter(&|v| num_label(*v))
            .y_desc("latency (ms)")
            .y_label_formatter(&|v| ms_label(*v))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        draw_lines(&mut chart, &self.series, 0)?;
        draw_legend(&mut chart)?;
        Ok(())
    }
}

/// Server memory (left axis) and connected users (right axis).
pub(crate) struct ServerOverTime {
    memory_mib: Vec<(f64, f64)>,
    connected: Vec<(f64, f64)>,
    x: std::ops::Range<f64>,
}

pub(crate) const MIB: f64 = 1024.0 * 1024.0;

impl ServerOverTime {
    pub fn new(samples: &[ServerSample]) -> ServerOverTime {
        ServerOverTime {
            memory_mib: samples
                .iter()
                .map(|s| (s.t_s, s.pss_bytes as f64 / MIB))
                .collect(),
            connected: samples
                .iter()
                .map(|s| (s.t_s, s.connected as f64))
                .collect(),
            x: time_range(samples.iter().map(|s| s.t_s)),
        }
    }
}

impl Chart for ServerOverTime {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let max_mem = self.memory_mib.iter().map(|p| p.1).fold(0.0, f64::max);
        let max_users = self.connected.iter().map(|p| p.1).fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(root)
            .caption("Server memory and connected users", font(CAPTION_SIZE))
            .margin(12)
            .margin_right(30)
            .x_label_area_size(45)
            .y_label_area_size(90)
            .right_y_label_area_size(90)
            .build_cartesian_2d(self.x.clone(), 0.0..top(max_mem, 1.0))?
            .set_secondary_coord(self.x.clone(), 0.0..top(max_users, 1.0));
        chart
            .configure_mesh()
            .x_desc(TIME_DESC)
            .x_label_formatter(&|v| num_label(*v))
            .y_desc("server memory (MiB)")
            .y_label_formatter(&|v| num_label(*v))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("connected users")
            .y_label_formatter(&|v| num_label(*v))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        let mem = color(0);
        let users = color(1);
        chart
            .draw_series(LineSeries::new(
                self.memory_mib.iter().copied(),
                mem.stroke_width(2),
            ))?
            .label("server memory (MiB, left)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], mem.stroke_width(3)));
        chart
            .draw_secondary_series(LineSeries::new(
                self.connected.iter().copied(),
                users.stroke_width(2),
            ))?
            .label("connected users (right)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], users.stroke_width(3))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(font(LABEL_SIZE))
            .draw()?;
        Ok(())
    }
}

#[cfg(test)]
mod throughput_tests {
    use std::collections::BTreeMap;

    use super::Throughput;
    use crate::metrics::{IntervalStats, OpKey, Protocol, TimelinePoint};

    const COMMANDS: [&str; 12] = [
        "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "A10", "A11", "A12",
    ];

    fn point(t_s: u64, interval_s: f64, per_command: u64) -> TimelinePoint {
        let ops: BTreeMap<OpKey, IntervalStats> = COMMANDS
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let stats = IntervalStats {
                    ok: per_command * (i as u64 + 1),
                    ..IntervalStats::default()
                };
                (OpKey::new(Protocol::Imap, c), stats)
            })
            .collect();
        TimelinePoint {
            t_s,
            interval_s,
            connected: 1,
            ops,
        }
    }

    #[test]
    fn the_legend_names_the_busiest_commands_and_sums_the_rest() {
        let timeline = [point(1, 1.0, 10), point(2, 1.0, 10), point(3, 0.05, 500)];
        let chart = Throughput::new(&timeline);
        let names: Vec<&str> = chart.ops.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 1 + super::MAX_NAMED_SERIES, "{names:?}");
        assert_eq!(names[0], "all commands");
        assert_eq!(names[1], "imap.a12", "busiest first: {names:?}");
        assert_eq!(*names.last().unwrap(), "5 other commands");
        // The 0.05 s tail (a logout burst) is left out instead of drawn as 10,000/s.
        assert!(chart.ops.iter().all(|(_, points)| points.len() == 2));
        let total: f64 = chart.ops[0].1[0].1;
        assert_eq!(total, (1..=12).map(|i| 10.0 * i as f64).sum::<f64>());
        let other = &chart.ops.last().unwrap().1[0].1;
        assert_eq!(*other, (1..=5).map(|i| 10.0 * i as f64).sum::<f64>());
    }
}
