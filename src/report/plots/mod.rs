//! Charts of a run, each drawn twice from the same code: SVG (inlined into `report.html`) and
//! PNG (for chat and tickets). plotters draws text only with a registered font, so DejaVu Sans
//! is compiled in: no system fonts or libraries are needed.

mod bars;
mod fit;
mod spectrum;
mod timeseries;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::metrics::{OpKey, Phase, RunMetrics, ServerSample};

pub use bars::CompareBars;
pub(crate) use fit::memory_users_frame;
pub use fit::{bytes_label, fit_line, fit_sentence, LinearFit};
pub(crate) use timeseries::{ms_label, num_label};

/// DejaVu Sans from Debian's `fonts-dejavu-core`; see `assets/fonts/README.md`.
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The family name charts ask for. SVG readers substitute their own sans-serif.
const FONT: &str = "sans-serif";

pub(crate) const WIDTH: u32 = 1000;
pub(crate) const HEIGHT: u32 = 500;
pub(crate) const CAPTION_SIZE: u32 = 26;
pub(crate) const LABEL_SIZE: u32 = 17;
pub(crate) const DESC_SIZE: u32 = 19;

/// Ten colours that stay apart for colour-blind readers (Tableau 10).
pub(crate) const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("the embedded font cannot be loaded: {0}")]
    Font(String),
    #[error("cannot draw {plot}: {reason}")]
    Draw { plot: String, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A chart that can draw itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// One chart as written: the SVG text and where both files went.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File stem, e.g. `latency-imap.fetch`.
    pub name: String,
    /// What the chart shows, for a caption or an alt text.
    pub title: String,
    pub svg: String,
    pub svg_path: PathBuf,
    pub png_path: PathBuf,
}

fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT, FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "DejaVuSans.ttf is not a usable TrueType font".to_string())
        })
        .clone()
        .map_err(PlotError::Font)
}

/// The legend box every chart uses: translucent white, thin border, the label font.
pub(crate) fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(font(LABEL_SIZE))
        .draw()?;
    Ok(())
}

pub(crate) fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

/// Draws `chart` as SVG text only (for a page that inlines it).
pub fn render_svg(chart: &impl Chart, name: &str, size: (u32, u32)) -> Result<String, PlotError> {
    ensure_font()?;
    let draw_err = |reason: Box<dyn std::error::Error>| PlotError::Draw {
        plot: name.to_string(),
        reason: reason.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        chart.draw(&root).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(Box::new(e)))?;
    }
    Ok(svg)
}

/// Draws `chart` as `dir/name.svg` and `dir/name.png`.
pub(crate) fn render(
    chart: &impl Chart,
    dir: &Path,
    name: &str,
    title: &str,
    size: (u32, u32),
) -> Result<Plot, PlotError> {
    let svg = render_svg(chart, name, size)?;
    let draw_err = |reason: Box<dyn std::error::Error>| PlotError::Draw {
        plot: name.to_string(),
        reason: reason.to_string(),
    };
    let svg_path = dir.join(format!("{name}.svg"));
    std::fs::write(&svg_path, &svg).map_err(|source| PlotError::Io {
        path: svg_path.clone(),
        source,
    })?;
    let png_path = dir.join(format!("{name}.png"));
    {
        let root = BitMapBackend::new(&png_path, size).into_drawing_area();
        chart.draw(&root).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(Box::new(e)))?;
    }
    Ok(Plot {
        name: name.to_string(),
        title: title.to_string(),
        svg,
        svg_path,
        png_path,
    })
}

/// A metric name safe as a file name on every system.
pub(crate) fn file_stem(metric: &str) -> String {
    metric
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Every chart of one run, in the order the HTML report shows them.
#[derive(Debug, Clone, Default)]
pub struct RunPlots {
    pub throughput: Option<Plot>,
    /// Per command: latency percentiles over time, then the percentile spectrum.
    pub commands: Vec<(OpKey, Plot, Plot)>,
    pub server: Option<Plot>,
    pub memory_per_user: Option<Plot>,
    /// Bytes of server memory per connected user, fitted over the server samples.
    pub fit: Option<LinearFit>,
}

impl RunPlots {
    pub fn all(&self) -> impl Iterator<Item = &Plot> {
        self.throughput
            .iter()
            .chain(self.commands.iter().flat_map(|(_, a, b)| [a, b]))
            .chain(self.server.iter())
            .chain(self.memory_per_user.iter())
    }
}

/// Draws every chart the data allows into `dir` (created if needed). `headline` are the phases
/// the percentile spectra cover (the steady state when the run had ramps).
pub fn render_run(
    dir: &Path,
    metrics: &RunMetrics,
    server: &[ServerSample],
    headline: &[Phase],
) -> Result<RunPlots, PlotError> {
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut plots = RunPlots::default();
    let size = (WIDTH, HEIGHT);
    if !metrics.timeline.is_empty() {
        let chart = timeseries::Throughput::new(&metrics.timeline);
        plots.throughput = Some(render(
            &chart,
            dir,
            "throughput",
            "Throughput and errors over time",
            (WIDTH, HEIGHT + 150),
        )?);
    }
    for (op, stats) in metrics.totals(headline) {
        if stats.latency.is_empty() {
            continue;
        }
        let metric = op.metric_name();
        let over_time = timeseries::LatencyOverTime::new(&metrics.timeline, op);
        let a = render(
            &over_time,
            dir,
            &format!("latency-{}", file_stem(&metric)),
            &format!("{metric}: latency percentiles over time"),
            size,
        )?;
        let spectrum = spectrum::Spectrum::new(&metric, &stats.latency);
        let b = render(
            &spectrum,
            dir,
            &format!("spectrum-{}", file_stem(&metric)),
            &format!("{metric}: latency by percentile"),
            size,
        )?;
        plots.commands.push((op, a, b));
    }
    if !server.is_empty() {
        let chart = timeseries::ServerOverTime::new(server);
        plots.server = Some(render(
            &chart,
            dir,
            "server",
            "Server memory and connected users over time",
            size,
        )?);
        let points: Vec<(f64, f64)> = server
            .iter()
            .map(|s| (s.connected as f64, s.pss_bytes as f64))
            .collect();
        plots.fit = fit_line(&points);
        let chart = fit::MemoryPerUser::new(server, plots.fit);
        plots.memory_per_user = Some(render(
            &chart,
            dir,
            "memory-per-user",
            "Server memory against connected users",
            size,
        )?);
    }
    Ok(plots)
}

#[cfg(test)]
mod tests;
