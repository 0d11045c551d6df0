//! lab
pub mod sink;
