//! Turning a run's metrics into what people and tools read: `results.json`, the console
//! summary, `latency.hlog`, charts, the HTML report and the comparison of runs.

pub mod compare;
pub mod console;
pub mod html;
pub mod plots;
pub mod progress;
pub mod results;
mod run_report;
mod sections;
pub mod server;
pub mod sweep;
#[cfg(test)]
pub(crate) mod testdata;

pub use results::{Results, RunContext, ScenarioInfo};
pub use run_report::{render_html, write_run_report, ReportError, ReportFiles};
pub use server::{attach_server_summary, ServerSummary};
