//! One gate evaluation: load the run, hold it to its thresholds, the baseline and the
//! conformance results, and optionally record it as the new baseline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::baseline::{compare, Baseline, BaselineError, IdentityMismatch, Tolerances};
use super::conformance::{ConformanceError, ConformanceReport};
use super::outcome::CriterionOutcome;
use super::threshold::{evaluate, parse_thresholds, stored_outcomes, StoredError, ThresholdError};
use crate::report::results::ResultsError;
use crate::report::{Results, ScenarioInfo};

/// What `mailswarm gate` was asked to do, after flag parsing.
#[derive(Debug, Clone, Default)]
pub struct GateInputs {
    /// A run folder holding `results.json`, or the file itself.
    pub results: PathBuf,
    /// Explicit baseline; when None, `<results dir>/../baseline.json` is used if it exists.
    pub baseline: Option<PathBuf>,
    pub tolerances: Tolerances,
    pub conformance: Option<PathBuf>,
    /// Thresholds given on the command line, checked besides the scenario's own.
    pub thresholds: BTreeMap<String, String>,
    /// Record this run as the baseline (when the rest of the gate passes) instead of
    /// comparing against the old one.
    pub update_baseline: bool,
}

#[derive(Debug, Clone)]
pub struct GateReport {
    pub results_path: PathBuf,
    pub scenario: ScenarioInfo,
    pub criteria: Vec<CriterionOutcome>,
    /// What the gate did not check and why, for the reader.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    pub baseline_path: PathBuf,
    pub baseline_written: bool,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(|c| c.passed)
    }

    pub fn failures(&self) -> impl Iterator<Item = &CriterionOutcome> {
        self.criteria.iter().filter(|c| !c.passed)
    }
}

/// Everything that stops the gate from giving a verdict; all exit 2.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(
        "{path}: the run did not complete ({why}); the server may be unreachable. \
         Check the run's log and that the server under test is up, then run it again"
    )]
    Incomplete { path: String, why: String },
    #[error("{path}: {source}")]
    StoredThresholds {
        path: String,
        source: Box<StoredError>,
    },
    #[error("--threshold: {0}")]
    Threshold(Box<ThresholdError>),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("baseline {path}: {source}")]
    Identity {
        path: String,
        source: IdentityMismatch,
    },
    #[error(transparent)]
    Conformance(#[from] ConformanceError),
    #[error(
        "nothing to check: the run stores no thresholds, there is no baseline at {baseline} and \
         no --conformance file. Add `thresholds:` to the scenario, pass --threshold, or record \
         a baseline with --update-baseline"
    )]
    NothingToCheck { baseline: String },
}

impl From<ThresholdError> for GateError {
    fn from(err: ThresholdError) -> GateError {
        GateError::Threshold(Box::new(err))
    }
}

/// `RESULTS` may name the run folder or the file in it.
pub fn results_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    }
}

/// `<results dir>/../baseline.json`: beside the run folders, so every run of the scenario
/// under `reports/` shares it.
pub fn default_baseline_path(results_file: &Path) -> PathBuf {
    let dir = results_file.parent().unwrap_or(Path::new(""));
    match dir.parent() {
        _ if dir.as_os_str().is_empty() || dir == Path::new(".") => {
            PathBuf::from("../baseline.json")
        }
        Some(parent) => parent.join("baseline.json"),
        None => dir.join("baseline.json"),
    }
}

pub fn run_gate(inputs: &GateInputs) -> Result<GateReport, GateError> {
    let results_path = results_file(&inputs.results);
    let results = Results::read(&results_path)?;
    let shown = results_path.display().to_string();
    if results.run.interrupted {
        return Err(GateError::Incomplete {
            path: shown,
            why: "it was interrupted".into(),
        });
    }
    if results.totals.commands == 0 || results.commands.is_empty() {
        return Err(GateError::Incomplete {
            path: shown,
            why: "no operation completed".into(),
        });
    }

    let mut criteria = Vec::new();
    let mut notes = Vec::new();
    let mut warnings = Vec::new();

    match stored_outcomes(&results) {
        Ok(Some(section)) => criteria.extend(section.outcomes),
        Ok(None) => notes.push("the scenario defines no thresholds".to_string()),
        Err(source) => {
            return Err(GateError::StoredThresholds {
                path: shown,
                source: Box::new(source),
            })
        }
    }
    criteria.extend(evaluate(&parse_thresholds(&inputs.thresholds)?, &results));

    let baseline_path = inputs
        .baseline
        .clone()
        .unwrap_or_else(|| default_baseline_path(&results_path));
    if inputs.update_baseline {
        notes.push("not compared with a baseline: --update-baseline records a new one".into());
    } else if inputs.baseline.is_some() || baseline_path.exists() {
        let baseline = Baseline::read(&baseline_path)?;
        let identity = baseline
            .check_identity(&results)
            .map_err(|source| GateError::Identity {
                path: baseline_path.display().to_string(),
                source,
            })?;
        warnings.extend(identity);
        criteria.extend(compare(&baseline.results, &results, &inputs.tolerances));
    } else {
        notes.push(format!(
            "no baseline at {}; record one from a good run with --update-baseline",
            baseline_path.display()
        ));
    }

    if let Some(path) = &inputs.conformance {
        criteria.extend(ConformanceReport::read(path)?.outcomes());
    }

    if criteria.is_empty() && !inputs.update_baseline {
        return Err(GateError::NothingToCheck {
            baseline: baseline_path.display().to_string(),
        });
    }

    let mut report = GateReport {
        results_path,
        scenario: results.scenario.clone(),
        criteria,
        notes,
        warnings,
        baseline_path,
        baseline_written: false,
    };
    if inputs.update_baseline {
        if report.passed() {
            Baseline::from_results(&results).write(&report.baseline_path)?;
            report.baseline_written = true;
            report.notes.push(format!(
                "recorded this run as the baseline: {}",
                report.baseline_path.display()
            ));
        } else {
            report
                .notes
                .push("baseline not updated: a failing run must not become the baseline".into());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::testutil::sample;
    use crate::gate::threshold::record;
    use crate::gate::Group;

    fn thresholds(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `<tmp>/reports/gate/results.json` holding `results`.
    fn run_dir(results: &Results) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("reports/gate");
        std::fs::create_dir_all(&dir).unwrap();
        results.write(&dir.join("results.json")).unwrap();
        (tmp, dir)
    }

    #[test]
    fn default_baseline_sits_beside_the_run_folders() {
        let p = default_baseline_path(Path::new("reports/gate/results.json"));
        assert_eq!(p, PathBuf::from("reports/baseline.json"));
        assert_eq!(
            default_baseline_path(Path::new("gate/results.json")),
            PathBuf::from("baseline.json")
        );
        assert_eq!(
            default_baseline_path(Path::new("results.json")),
            PathBuf::from("../baseline.json")
        );
    }

    #[test]
    fn stored_and_flag_thresholds_are_both_checked() {
        let mut r = sample();
        record(&mut r, &thresholds(&[("imap.fetch", "p99 < 50ms")])).unwrap();
        let (_tmp, dir) = run_dir(&r);
        let report = run_gate(&GateInputs {
            results: dir,
            thresholds: thresholds(&[("imap.login.errors", "== 0")]),
            ..GateInputs::default()
        })
        .unwrap();
        assert_eq!(report.criteria.len(), 2);
        let failed: Vec<&str> = report.failures().map(|c| c.criterion.as_str()).collect();
        assert_eq!(failed, ["imap.login.errors: == 0"]);
        assert!(report.notes.iter().any(|n| n.contains("no baseline at")));
    }

    #[test]
    fn update_then_compare_then_refuse_another_seed() {
        let mut r = sample();
        record(&mut r, &thresholds(&[("audit.lost", "== 0")])).unwrap();
        let (tmp, dir) = run_dir(&r);
        let inputs = GateInputs {
            results: dir.clone(),
            update_baseline: true,
            ..GateInputs::default()
        };
        let report = run_gate(&inputs).unwrap();
        assert!(report.baseline_written);
        let baseline = tmp.path().join("reports/baseline.json");
        assert_eq!(report.baseline_path, baseline);
        assert_eq!(Baseline::read(&baseline).unwrap().seed, 42);

        let compare_inputs = GateInputs {
            results: dir.clone(),
            ..GateInputs::default()
        };
        let report = run_gate(&compare_inputs).unwrap();
        assert!(report.passed());
        assert!(report.criteria.iter().any(|c| c.group == Group::Baseline));

        let mut other = r.clone();
        other.scenario.seed = 1;
        other.write(&dir.join("results.json")).unwrap();
        let err = run_gate(&compare_inputs).unwrap_err();
        assert!(matches!(err, GateError::Identity { .. }), "{err}");
        assert!(err.to_string().contains("--update-baseline"));
    }

    #[test]
    fn failing_run_does_not_become_the_baseline() {
        let mut r = sample();
        record(&mut r, &thresholds(&[("imap.fetch", "p99 < 1ms")])).unwrap();
        let (tmp, dir) = run_dir(&r);
        let report = run_gate(&GateInputs {
            results: dir,
            update_baseline: true,
            ..GateInputs::default()
        })
        .unwrap();
        assert!(!report.passed());
        assert!(!report.baseline_written);
        assert!(!tmp.path().join("reports/baseline.json").exists());
    }

    #[test]
    fn incomplete_runs_and_empty_gates_are_errors() {
        let mut r = sample();
        r.run.interrupted = true;
        let (_tmp, dir) = run_dir(&r);
        let err = run_gate(&GateInputs {
            results: dir,
            ..GateInputs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("did not complete"), "{err}");

        let (_tmp, dir) = run_dir(&sample());
        let err = run_gate(&GateInputs {
            results: dir,
            ..GateInputs::default()
        })
        .unwrap_err();
        assert!(matches!(err, GateError::NothingToCheck { .. }), "{err}");
    }

    #[test]
    fn explicit_missing_baseline_is_an_error() {
        let (tmp, dir) = run_dir(&sample());
        let err = run_gate(&GateInputs {
            results: dir,
            baseline: Some(tmp.path().join("nope.json")),
            ..GateInputs::default()
        })
        .unwrap_err();
        assert!(
            matches!(err, GateError::Baseline(BaselineError::Io { .. })),
            "{err}"
        );
    }
}
