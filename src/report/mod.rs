//! Turning a run's metrics into what people and tools read: `results.json` and the console
//! summary.

pub mod console;
pub mod plots;
pub mod results;

pub use results::{Results, RunContext, ScenarioInfo};
