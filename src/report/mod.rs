//! Turning a run's metrics into what people and tools read: `results.json` and the console
//! summary.

pub mod console;
pub mod results;

pub use results::{Results, RunContext, ScenarioInfo};
