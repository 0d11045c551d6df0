//! Scenario files: the YAML a user writes, its types, and validation.
//!
//! Parsing is strict on purpose (unknown keys are errors, booleans are only `true`/`false`,
//! durations need a unit): a typo in a load test silently running the default is worse than a
//! refusal. Every error names `file:line:column` and says how to fix it.

pub mod dist;
mod error;
mod types;
pub mod units;

pub use error::ScenarioError;
pub use types::*;

use std::path::Path;

use sha2::{Digest, Sha256};

/// A scenario as loaded, with the text it came from (reports embed the text).
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub scenario: Scenario,
    pub source: String,
    pub path: Option<String>,
    /// SHA-256 over the parsed document as canonical JSON: formatting and comments do not
    /// change it, any value does. Baselines compare it.
    pub digest: String,
}

pub fn load_file(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let source = std::fs::read_to_string(path).map_err(|err| ScenarioError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    })?;
    load_str(&source, Some(&path.display().to_string()))
}

pub fn load_str(source: &str, path: Option<&str>) -> Result<LoadedScenario, ScenarioError> {
    let file = path.unwrap_or("<scenario>");
    let options = serde_saphyr::options! { strict_booleans: true };
    let scenario: Scenario = serde_saphyr::from_str_with_options(source, options.clone())
        .map_err(|err| ScenarioError::from_yaml(file, source, &err))?;
    scenario.validate(file)?;
    let value: serde_json::Value = serde_saphyr::from_str_with_options(source, options)
        .map_err(|err| ScenarioError::from_yaml(file, source, &err))?;
    let canonical = serde_json::to_vec(&value).expect("a JSON value serializes");
    let digest = format!("{:x}", Sha256::digest(&canonical));
    Ok(LoadedScenario {
        scenario,
        source: source.to_string(),
        path: path.map(str::to_string),
        digest,
    })
}

#[cfg(test)]
mod tests;
