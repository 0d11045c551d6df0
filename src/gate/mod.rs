//! The CI regression gate: turns a finished run into one pass/fail verdict a pipeline can act
//! on.
//!
//! A run passes when
//! - every threshold the scenario declares holds ([`threshold`]: k6-style `p99 < 50ms`),
//! - it is no slower and no more error-prone than the baseline beyond the tolerances
//!   ([`baseline`]: relative tolerance *and* an absolute noise floor, so sub-millisecond
//!   commands don't flap),
//! - and no conformance check failed ([`conformance`], whose JSON schema is defined there).
//!
//! Every part yields [`CriterionOutcome`]s; [`check::run_gate`] collects them and [`render`]
//! prints the verdict, JUnit and Markdown. A metric the run lacks fails its criterion instead
//! of passing silently: an empty histogram usually means a broken run, not a fast server.
//! [`latency_proxy`] slows a real server down so the gate itself can be tested end to end.

pub mod baseline;
pub mod check;
pub mod conformance;
pub mod latency_proxy;
pub mod outcome;
pub mod render;
pub mod threshold;

#[cfg(test)]
pub(crate) mod testutil;

pub use baseline::{Baseline, Tolerances};
pub use check::{run_gate, GateError, GateInputs, GateReport};
pub use conformance::{CheckStatus, ConformanceCheck, ConformanceReport};
pub use outcome::{CriterionOutcome, Group, Limit, Observed, Op, Unit};
pub use threshold::{evaluate, parse_thresholds, Threshold, ThresholdError};
