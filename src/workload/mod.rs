//! The timing pass over a harness's workloads ([`runner`]) and the per-stage statistics it
//! collects ([`summary`]).

pub mod runner;
pub mod summary;
