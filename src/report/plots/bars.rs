//! Grouped horizontal bars: one group per command, one bar per run. Horizontal so that long
//! command names stay readable and any number of commands fits (the chart grows downwards).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::timeseries::ms_label;
use super::{color, font, Chart, DrawResult, CAPTION_SIZE, DESC_SIZE, LABEL_SIZE, WIDTH};

const LEGEND_ROW: u32 = 26;
const LEGEND_LEFT: i32 = 60;

/// Room around the bars of one command, as a share of its band.
const BAND_PAD: f64 = 0.15;

pub struct CompareBars {
    title: String,
    x_desc: String,
    commands: Vec<String>,
    runs: Vec<String>,
    /// `values_ms[command][run]`; `None` where the run has no value.
    values_ms: Vec<Vec<Option<f64>>>,
}

impl CompareBars {
    pub fn new(
        title: &str,
        x_desc: &str,
        commands: Vec<String>,
        runs: Vec<String>,
        values_ms: Vec<Vec<Option<f64>>>,
    ) -> CompareBars {
        CompareBars {
            title: title.to_string(),
            x_desc: x_desc.to_string(),
            commands,
            runs,
            values_ms,
        }
    }

    /// Tall enough for every bar to be a readable stripe.
    pub fn size(&self) -> (u32, u32) {
        let per_command = 18 * self.runs.len() as u32 + 22;
        let height =
            150 + per_command * self.commands.len() as u32 + self.legend_rows() * LEGEND_ROW;
        (WIDTH, height.max(300))
    }

    /// Where each run's legend entry goes: (run index, label, pixel position) in rows that
    /// wrap at the chart's width. Above the bars, so it never hides one.
    fn legend_layout(&self) -> Vec<(usize, &str, (i32, i32))> {
        let (mut x, mut row) = (LEGEND_LEFT, 0);
        let mut out = Vec::new();
        for (j, run) in self.runs.iter().enumerate() {
            let width = 22 + run.chars().count() as i32 * 10 + 30;
            if x + width > WIDTH as i32 - 20 && x > LEGEND_LEFT {
                x = LEGEND_LEFT;
                row += 1;
            }
            out.push((
                j,
                run.as_str(),
                (x, row * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2),
            ));
            x += width;
        }
        out
    }

    fn legend_rows(&self) -> u32 {
        self.legend_layout()
            .last()
            .map_or(1, |(_, _, (_, y))| *y as u32 / LEGEND_ROW + 1)
    }
}

impl Chart for CompareBars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let legend_height = self.legend_rows() * LEGEND_ROW + 8;
        let (legend, root) = root.split_vertically(legend_height + CAPTION_SIZE + 20);
        legend.draw(&Text::new(
            self.title.clone(),
            (WIDTH as i32 / 2, 10),
            font(CAPTION_SIZE).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        for (j, run, (x, y)) in self.legend_layout() {
            let y = y + CAPTION_SIZE as i32 + 20;
            legend.draw(&Rectangle::new(
                [(x, y - 7), (x + 16, y + 7)],
                color(j).filled(),
            ))?;
            legend.draw(&Text::new(
                run.to_string(),
                (x + 22, y),
                font(LABEL_SIZE).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        let root = &root;
        let n = self.commands.len();
        let max = self
            .values_ms
            .iter()
            .flatten()
            .flatten()
            .fold(0.0f64, |a, b| a.max(*b));
        let longest = self.commands.iter().map(|c| c.len()).max().unwrap_or(4);
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(40)
            .x_label_area_size(45)
            .y_label_area_size((longest as u32 * 10 + 20).min(320))
            .build_cartesian_2d(0.0..(max * 1.18).max(0.01), 0.0..n.max(1) as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(self.x_desc.as_str())
            .x_label_formatter(&|v| ms_label(*v))
            // Command names are drawn beside their bands below, not at plotters' ticks.
            .y_labels(0)
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        let name_style = font(LABEL_SIZE).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, name) in self.commands.iter().enumerate() {
            // Command 0 is drawn at the top.
            // backend_coord is in image pixels; `root` starts below the legend.
            let (x, y) = chart.backend_coord(&(0.0, (n - i) as f64 - 0.5));
            let (left, top) = root.get_base_pixel();
            let at = (x - left - 10, y - top);
            root.draw(&Text::new(name.clone(), at, name_style.clone()))?;
        }
        let runs = self.runs.len().max(1) as f64;
        let bar = (1.0 - 2.0 * BAND_PAD) / runs;
        let value_style = font(LABEL_SIZE - 3).pos(Pos::new(HPos::Left, VPos::Center));
        for j in 0..self.runs.len() {
            let c = color(j);
            let mut bars = Vec::new();
            let mut labels = Vec::new();
            for (i, values) in self.values_ms.iter().enumerate() {
                let Some(Some(v)) = values.get(j) else {
                    continue;
                };
                let top = (n - i) as f64 - BAND_PAD - j as f64 * bar;
                let bottom = top - bar * 0.9;
                bars.push(Rectangle::new([(0.0, bottom), (*v, top)], c.filled()));
                labels.push(Text::new(
                    ms_label(*v),
                    (*v + max * 0.01, (top + bottom) / 2.0),
                    value_style.clone(),
                ));
            }
            chart.draw_series(bars)?;
            chart.draw_series(labels)?;
        }
        Ok(())
    }
}
