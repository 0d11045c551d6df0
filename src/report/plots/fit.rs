//! What one more connected user costs the server: a least-squares line through (connected
//! users, server memory) samples. Its slope is the number capacity planners multiply by.

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::timeseries::{num_label, Xy, MIB};
use super::{color, font, Chart, DrawResult, CAPTION_SIZE, DESC_SIZE, LABEL_SIZE};
use crate::metrics::ServerSample;

/// `y = slope · x + intercept`, fitted by ordinary least squares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// Bytes of server memory per connected user.
    pub slope: f64,
    /// Bytes with nobody connected.
    pub intercept: f64,
    /// Coefficient of determination: 1 is a perfect line, near 0 means memory does not follow
    /// the user count (too few distinct user counts, or other load dominates).
    pub r_squared: f64,
    pub samples: usize,
}

/// `None` when the line is undetermined: fewer than two points, or every point at the same x
/// (a run that never changed its user count says nothing about the per-user cost).
pub fn fit_line(points: &[(f64, f64)]) -> Option<LinearFit> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx <= f64::EPSILON * mean_x.abs().max(1.0) {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = points
        .iter()
        .map(|p| (p.1 - (slope * p.0 + intercept)).powi(2))
        .sum();
    let r_squared = if ss_tot == 0.0 {
        1.0
    } else {
        1.0 - ss_res / ss_tot
    };
    Some(LinearFit {
        slope,
        intercept,
        r_squared,
        samples: n,
    })
}

/// `630 kB (615 KiB)`: decimal first (what the fit says), binary for those who size in KiB.
pub fn bytes_label(bytes: f64) -> String {
    let abs = bytes.abs();
    if abs >= 1e9 {
        format!("{:.2} GB ({:.2} GiB)", bytes / 1e9, bytes / MIB / 1024.0)
    } else if abs >= 1e6 {
        format!("{:.2} MB ({:.2} MiB)", bytes / 1e6, bytes / MIB)
    } else if abs >= 1e3 {
        format!("{:.1} kB ({:.1} KiB)", bytes / 1e3, bytes / 1024.0)
    } else {
        format!("{bytes:.0} bytes")
    }
}

/// The sentence the chart and the report print about a fit.
pub fn fit_sentence(fit: &LinearFit) -> String {
    format!(
        "{} per connected user (R² = {:.3}, {} samples)",
        bytes_label(fit.slope),
        fit.r_squared,
        fit.samples
    )
}

pub(crate) struct MemoryPerUser {
    points: Vec<(f64, f64)>,
    fit: Option<LinearFit>,
}

impl MemoryPerUser {
    pub fn new(samples: &[ServerSample], fit: Option<LinearFit>) -> MemoryPerUser {
        MemoryPerUser {
            points: samples
                .iter()
                .map(|s| (s.connected as f64, s.pss_bytes as f64 / MIB))
                .collect(),
            fit,
        }
    }
}

/// Axes of "server memory against connected users", shared by a run's scatter and a sweep's
/// levels: x in users from 0 to `x_end`, y in MiB from 0 to `y_end`.
pub(crate) fn memory_users_frame<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    x_end: f64,
    y_end: f64,
    x_desc: &str,
) -> Result<ChartContext<'a, DB, Xy>, DrawingAreaErrorKind<DB::ErrorType>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(root)
        .caption("Server memory against connected users", font(CAPTION_SIZE))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..x_end, 0.0..y_end)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&|v| num_label(*v))
        .y_desc("server memory (MiB)")
        .y_label_formatter(&|v| num_label(*v))
        .label_style(font(LABEL_SIZE))
        .axis_desc_style(font(DESC_SIZE))
        .draw()?;
    Ok(chart)
}

impl Chart for MemoryPerUser {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let x_max = self.points.iter().map(|p| p.0).fold(0.0, f64::max);
        let y_max = self.points.iter().map(|p| p.1).fold(0.0, f64::max);
        let x_end = (x_max * 1.05).max(1.0);
        let mut chart =
            memory_users_frame(root, x_end, (y_max * 1.15).max(1.0), "connected users")?;
        let dots = color(0);
        chart
            .draw_series(
                self.points
                    .iter()
                    .map(|p| Circle::new(*p, 3, dots.mix(0.6).filled())),
            )?
            .label("one sample per second")
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, dots.filled()));
        let sentence = match &self.fit {
            Some(fit) => {
                let line = color(3);
                let at = |x: f64| (x, (fit.slope * x + fit.intercept) / MIB);
                chart
                    .draw_series(LineSeries::new([at(0.0), at(x_end)], line.stroke_width(2)))?
                    .label("least-squares fit")
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], line.stroke_width(3))
                    });
                format!("slope: {}", fit_sentence(fit))
            }
            None => "no fit: the number of connected users never changed".to_string(),
        };
        super::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        let (x0, _) = chart.plotting_area().get_base_pixel();
        root.draw(&Text::new(
            sentence,
            (x0 + 15, 55),
            font(DESC_SIZE + 1).color(&BLACK),
        ))?;
        Ok(())
    }
}
