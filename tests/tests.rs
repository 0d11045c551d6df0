//! One integration-test binary (one link step), one module per area. Tests run against the
//! real lab servers that `common::lab()` starts on loopback.

mod audit;
mod common;
mod compare;
mod conform;
mod conform_mutations;
mod engine;
mod gate;
mod gate_lab;
mod imap;
mod lab;
mod mutation_proxy;
mod sink;
mod smtp;
mod sweep;
