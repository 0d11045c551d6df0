//! The two capacity charts of a sweep. Latency against load: one colour and marker per
//! command, p99 solid and p50 dashed, on a log axis when the commands span more than a decade
//! (NOOP and APPEND would otherwise squash each other). Server memory against connected
//! users: one point per level, the least-squares line, and its slope written on the chart,
//! because that number is what the reader came for.

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{memory_points, MemoryFit, SweepReport};
use crate::report::plots::{
    bytes_label, color, font, ms_label, num_label, Chart, DrawResult, CAPTION_SIZE, COLORS,
    DESC_SIZE, HEIGHT, LABEL_SIZE, WIDTH,
};

const MIB: f64 = 1024.0 * 1024.0;
/// Room on the right of the latency chart for its legend.
const LEGEND_WIDTH: u32 = 270;
const LEGEND_ROW: i32 = 24;
const LEGEND_TOP: i32 = 60;
/// Above this ratio of highest to lowest latency the y axis turns logarithmic.
const LOG_RATIO: f64 = 20.0;
const KNEE_COLOR: RGBColor = RGBColor(198, 40, 40);

/// p50 and p99 of one command across levels, in (level, ms).
struct CommandSeries {
    metric: String,
    p50: Vec<(f64, f64)>,
    p99: Vec<(f64, f64)>,
}

pub struct LatencyVsLoad {
    x_desc: &'static str,
    series: Vec<CommandSeries>,
    knee: Option<f64>,
    x_max: f64,
}

impl LatencyVsLoad {
    /// Complete levels only: an interrupted level's partial numbers would bend the lines.
    pub fn new(report: &SweepReport) -> LatencyVsLoad {
        let levels: Vec<_> = report.levels.iter().filter(|l| !l.interrupted).collect();
        let mut metrics: Vec<&str> = levels
            .iter()
            .flat_map(|l| l.commands.iter())
            .filter(|c| c.p50_us.is_some() || c.p99_us.is_some())
            .map(|c| c.metric.as_str())
            .collect();
        metrics.sort_unstable();
        metrics.dedup();
        let ms = |us: Option<u64>| us.map(|us| us as f64 / 1000.0);
        let series = metrics
            .into_iter()
            .map(|metric| {
                let mut s = CommandSeries {
                    metric: metric.to_string(),
                    p50: Vec::new(),
                    p99: Vec::new(),
                };
                for level in &levels {
                    let Some(c) = level.command(metric) else {
                        continue;
                    };
                    let x = level.level as f64;
                    s.p50.extend(ms(c.p50_us).map(|y| (x, y)));
                    s.p99.extend(ms(c.p99_us).map(|y| (x, y)));
                }
                s
            })
            .collect();
        LatencyVsLoad {
            x_desc: report.level_unit.axis_label(),
            series,
            knee: report.knee.as_ref().map(|k| k.level as f64),
            x_max: levels.iter().map(|l| l.level as f64).fold(0.0, f64::max),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Tall enough for one legend row per command.
    pub fn size(&self) -> (u32, u32) {
        let rows = self.series.len() as i32 + 3;
        let needed = LEGEND_TOP + rows * LEGEND_ROW + 20;
        (WIDTH + LEGEND_WIDTH, HEIGHT.max(needed as u32))
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.series
            .iter()
            .flat_map(|s| s.p50.iter().chain(&s.p99))
            .map(|p| p.1)
    }

    /// (lowest, highest) latency in ms, both above zero.
    fn y_bounds(&self) -> (f64, f64) {
        let lo = self.values().fold(f64::INFINITY, f64::min);
        let hi = self.values().fold(0.0, f64::max);
        let hi = if hi > 0.0 { hi } else { 1.0 };
        let lo = if lo.is_finite() && lo > 0.0 { lo } else { hi };
        (lo.max(0.001), hi)
    }

    pub fn log_y(&self) -> bool {
        let (lo, hi) = self.y_bounds();
        hi / lo > LOG_RATIO
    }

    fn draw_plot<DB, Y>(
        &self,
        area: &DrawingArea<DB, Shift>,
        y: Y,
        y_span: (f64, f64),
        y_desc: &str,
    ) -> DrawResult
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let x_end = (self.x_max * 1.06).max(1.0);
        let mut chart = ChartBuilder::on(area)
            .caption("Latency per command against load", font(CAPTION_SIZE))
            .margin(12)
            .margin_right(20)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_end, y)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .x_label_formatter(&|v| num_label(*v))
            .y_desc(y_desc)
            .y_label_formatter(&|v| ms_label(*v))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        if let Some(knee) = self.knee {
            chart.draw_series(DashedLineSeries::new(
                [(knee, y_span.0), (knee, y_span.1)],
                6,
                4,
                KNEE_COLOR.stroke_width(2),
            ))?;
            chart.draw_series([Text::new(
                "knee".to_string(),
                (knee, y_span.1),
                font(LABEL_SIZE)
                    .color(&KNEE_COLOR)
                    .pos(Pos::new(HPos::Right, VPos::Top)),
            )])?;
        }
        for (i, s) in self.series.iter().enumerate() {
            let c = color(i);
            chart.draw_series(LineSeries::new(s.p99.iter().copied(), c.stroke_width(2)))?;
            chart.draw_series(DashedLineSeries::new(
                s.p50.clone(),
                8,
                5,
                c.stroke_width(2),
            ))?;
            let points = s.p99.iter().chain(&s.p50).copied();
            match marker_of(i) {
                Marker::Circle => {
                    chart.draw_series(points.map(|p| Circle::new(p, 4, c.filled())))?;
                }
                Marker::Triangle => {
                    chart.draw_series(points.map(|p| TriangleMarker::new(p, 6, c.filled())))?;
                }
                Marker::Cross => {
                    chart.draw_series(points.map(|p| Cross::new(p, 5, c.stroke_width(2))))?;
                }
            }
        }
        Ok(())
    }

    /// Pixel-placed legend beside the plot, so no line is ever hidden under it.
    fn draw_legend<DB>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
    {
        let left = 10;
        let text = |s: &str, x: i32, y: i32| {
            Text::new(
                s.to_string(),
                (x, y),
                font(LABEL_SIZE).pos(Pos::new(HPos::Left, VPos::Center)),
            )
        };
        let mut y = LEGEND_TOP;
        area.draw(&PathElement::new(
            vec![(left, y), (left + 36, y)],
            BLACK.stroke_width(2),
        ))?;
        area.draw(&text("p99", left + 46, y))?;
        y += LEGEND_ROW;
        for (x0, x1) in [
            (left, left + 8),
            (left + 14, left + 22),
            (left + 28, left + 36),
        ] {
            area.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                BLACK.stroke_width(2),
            ))?;
        }
        area.draw(&text("p50", left + 46, y))?;
        y += LEGEND_ROW + LEGEND_ROW / 2;
        for (i, s) in self.series.iter().enumerate() {
            let c = color(i);
            area.draw(&PathElement::new(
                vec![(left, y), (left + 36, y)],
                c.stroke_width(3),
            ))?;
            let at = (left + 18, y);
            match marker_of(i) {
                Marker::Circle => area.draw(&Circle::new(at, 5, c.filled()))?,
                Marker::Triangle => area.draw(&TriangleMarker::new(at, 7, c.filled()))?,
                Marker::Cross => area.draw(&Cross::new(at, 6, c.stroke_width(2)))?,
            }
            area.draw(&text(&s.metric, left + 46, y))?;
            y += LEGEND_ROW;
        }
        Ok(())
    }
}

enum Marker {
    Circle,
    Triangle,
    Cross,
}

/// Colours repeat after ten commands; the marker then tells them apart.
fn marker_of(i: usize) -> Marker {
    match (i / COLORS.len()) % 3 {
        0 => Marker::Circle,
        1 => Marker::Triangle,
        _ => Marker::Cross,
    }
}

impl Chart for LatencyVsLoad {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (width, _) = root.dim_in_pixel();
        let (plot, legend) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let (lo, hi) = self.y_bounds();
        if self.log_y() {
            let span = (lo / 1.5, hi * 1.5);
            let y = (span.0..span.1).log_scale();
            self.draw_plot(&plot, y, span, "latency (ms, log scale)")?;
        } else {
            let span = (0.0, hi * 1.15);
            self.draw_plot(&plot, span.0..span.1, span, "latency (ms)")?;
        }
        self.draw_legend(&legend)
    }
}

pub struct MemoryVsUsers {
    /// (level, connected users, server MiB) per complete level.
    points: Vec<(u64, f64, f64)>,
    fit: Option<MemoryFit>,
}

impl MemoryVsUsers {
    pub fn new(report: &SweepReport) -> MemoryVsUsers {
        MemoryVsUsers {
            points: memory_points(&report.levels)
                .map(|(level, x, bytes)| (level, x, bytes / MIB))
                .collect(),
            fit: report.memory_fit,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }
}

/// The sentence printed on the chart and in the page about the fit.
pub fn slope_sentence(fit: &MemoryFit) -> String {
    format!(
        "slope: {} per connected user (R² = {:.3}, {} levels)",
        bytes_label(fit.slope_bytes_per_user),
        fit.r_squared,
        fit.levels
    )
}

impl Chart for MemoryVsUsers {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let x_max = self.points.iter().map(|p| p.1).fold(0.0, f64::max);
        let mut y_max = self.points.iter().map(|p| p.2).fold(0.0, f64::max);
        let x_end = (x_max * 1.1).max(1.0);
        if let Some(fit) = &self.fit {
            y_max = y_max.max((fit.slope_bytes_per_user * x_end + fit.intercept) / MIB);
        }
        // Headroom above the highest point for the slope sentence.
        let y_end = (y_max * 1.25).max(1.0);
        let mut chart = crate::report::plots::memory_users_frame(
            root,
            x_end,
            y_end,
            "connected users (mean over the steady phase)",
        )?;
        let sentence = match &self.fit {
            Some(fit) => {
                let line = color(3);
                let at = |x: f64| (x, ((fit.slope_bytes_per_user * x + fit.intercept) / MIB));
                chart
                    .draw_series(LineSeries::new([at(0.0), at(x_end)], line.stroke_width(2)))?
                    .label("least-squares fit")
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], line.stroke_width(3))
                    });
                slope_sentence(fit)
            }
            None => {
                "no fit: needs server memory at two levels with different user counts".to_string()
            }
        };
        let dots = color(0);
        chart
            .draw_series(
                self.points
                    .iter()
                    .map(|p| Circle::new((p.1, p.2), 6, dots.filled())),
            )?
            .label("one level (steady-phase mean)")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, dots.filled()));
        let label_style = font(LABEL_SIZE - 2).pos(Pos::new(HPos::Left, VPos::Bottom));
        chart.draw_series(self.points.iter().map(|p| {
            Text::new(
                format!("level {}", p.0),
                (p.1 + x_end * 0.008, p.2 + y_end * 0.015),
                label_style.clone(),
            )
        }))?;
        crate::report::plots::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        let (x0, _) = chart.plotting_area().get_base_pixel();
        root.draw(&Text::new(
            sentence,
            (x0 + 15, 55),
            font(DESC_SIZE + 1).color(&BLACK),
        ))?;
        Ok(())
    }
}
