//! engine

pub mod message;
