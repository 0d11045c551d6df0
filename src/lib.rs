//! mailswarm: load tests and conformance checks for IMAP, SMTP and LMTP servers.
//!
//! Data flows one way through the modules:
//!
//! `scenario` (YAML, validated into a plan) → `engine` (population, scheduler, sessions) →
//! `proto` (wire clients: IMAP, SMTP, LMTP) → `metrics` (histograms, counters) → `report`
//! (results.json, console, plots). `lab` starts the real servers the tests and demos run
//! against; `conformance` is the RFC check suite; `cli` glues the commands together.

pub mod cli;
pub mod conformance;
pub mod engine;
pub mod gate;
pub mod lab;
pub mod metrics;
pub mod proto;
pub mod report;
pub mod scenario;
