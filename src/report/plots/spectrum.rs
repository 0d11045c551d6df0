//! The percentile spectrum, drawn the way HdrHistogram's plotter does: latency against
//! percentile with the x axis stretched logarithmically towards 100%, so the tail (99%,
//! 99.9%, 99.99%) gets as much room as the median.

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::timeseries::ms_label;
use super::{color, font, Chart, DrawResult, CAPTION_SIZE, DESC_SIZE, LABEL_SIZE};

/// Points per chart; the line is smooth at 1000 px.
const STEPS: usize = 240;
/// The axis stops at 99.9999%: beyond it a run rarely has data.
const MAX_X: f64 = 1e6;

/// `x = 1 / (1 - q)`: 1 is 0%, 10 is 90%, 100 is 99%...
pub(crate) fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x.max(1.0));
    let decimals = (x.max(1.0).log10().ceil() as i32 - 2).max(0) as usize;
    format!("{p:.decimals$}%")
}

pub(crate) struct Spectrum {
    metric: String,
    count: u64,
    points: Vec<(f64, f64)>,
    x_max: f64,
}

impl Spectrum {
    pub fn new(metric: &str, h: &Histogram<u64>) -> Spectrum {
        // Beyond 1 / count the quantiles all name the maximum: nothing left to show.
        let x_max = (h.len() as f64).clamp(10.0, MAX_X);
        let mut points: Vec<(f64, f64)> = (0..=STEPS)
            .map(|i| {
                let x = x_max.powf(i as f64 / STEPS as f64);
                let q = 1.0 - 1.0 / x;
                (x, h.value_at_quantile(q) as f64 / 1000.0)
            })
            .collect();
        // The right end stands for the slowest operation: draw the recorded maximum there,
        // which the quantile just below it can miss by far.
        if let Some(last) = points.last_mut() {
            last.1 = last.1.max(h.max() as f64 / 1000.0);
        }
        Spectrum {
            metric: metric.to_string(),
            count: h.len(),
            points,
            x_max,
        }
    }
}

impl Chart for Spectrum {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let y_max = self.points.iter().map(|p| p.1).fold(0.0, f64::max);
        // Ticks at 0%, 90%, 99%, ... plus the median; short axes also get 80%, 98%, ...
        let mut ticks = vec![1.0];
        while ticks
            .last()
            .is_some_and(|d| d * 10.0 <= self.x_max * 1.0001)
        {
            ticks.push(ticks.last().copied().unwrap_or(1.0) * 10.0);
        }
        let short = ticks.len() <= 3;
        let decades = ticks.clone();
        ticks.push(2.0);
        if short {
            ticks.extend(decades.iter().map(|d| d * 5.0).filter(|x| *x <= self.x_max));
        }
        ticks.sort_by(f64::total_cmp);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: latency by percentile ({} successful operations)",
                    self.metric, self.count
                ),
                font(CAPTION_SIZE),
            )
            .margin(12)
            .margin_right(30)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (1.0..self.x_max).log_scale().with_key_points(ticks),
                0.0..(y_max * 1.1).max(0.01),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale towards 100%)")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| ms_label(*v))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        let c = color(0);
        chart.draw_series(LineSeries::new(
            self.points.iter().copied(),
            c.stroke_width(2),
        ))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Spectrum;

    #[test]
    fn the_right_end_is_the_slowest_operation() {
        let mut h = crate::metrics::new_histogram();
        for _ in 0..549 {
            h.record(1_000).unwrap();
        }
        h.record(60_000).unwrap();
        let s = Spectrum::new("lmtp.data", &h);
        let (x, y) = *s.points.last().unwrap();
        assert_eq!(x, 550.0);
        assert!((y - 60.0).abs() < 0.1, "{y} ms");
        assert!(s.points[0].1 < 1.1);
    }
}
