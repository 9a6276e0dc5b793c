//! Fuzz targets for every parser users feed, as property tests so that `cargo test` is their
//! short CI run: run records and exports, profiles and their `[load]` section, perfcheck.toml
//! and its `[thresholds]`, metric names and patterns, and the `--rate`, `--duration`, `--mix`
//! and `--phases` flags.
//!
//! Each target feeds arbitrary text and, more usefully, structured mutations of valid input
//! (fields deleted, retyped, huge or negative numbers, NaN-like strings, non-ASCII and control
//! characters in every string, deep nesting, truncation). Every call must return `Ok` or a clean
//! `Err`; an accepted value must also survive what consumes it (metric extraction, comparison,
//! report rendering, the load schedule) and satisfy an invariant (it round-trips, names print
//! back as given, phases have positive durations).
//!
//! Case counts are modest defaults so the file stays quick in a debug build;
//! `PROPTEST_CASES=10000 cargo test --test fuzz_parsers` runs a long session (see [`cases`]).
//!
//! No target calls `GitInfo::short`, which slices the commit by bytes.

mod common;
#[path = "fuzz/configs.rs"]
mod configs;
#[path = "fuzz/flags.rs"]
mod flags;
#[path = "fuzz/mutate.rs"]
mod mutate;
#[path = "fuzz/records.rs"]
mod records;

use proptest::test_runner::Config;

/// `default` cases per target, unless `PROPTEST_CASES` is set: `Config::with_cases` would
/// override the variable, so it is only used when the variable is absent.
pub fn cases(default: u32) -> Config {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default()
    } else {
        Config::with_cases(default)
    }
}
