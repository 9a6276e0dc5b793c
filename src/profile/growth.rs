//! The growth check: live heap sampled every 1,000 measured operations; the growth per 1,000
//! operations is the least-squares slope, flagged above a threshold (a leak detector for
//! long runs).
//!
//! The first interval is left out of the slope: caches fill there (the recall cache holds up
//! to 1,024 results), which is growth by design, not a leak.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::report::format::{bytes, group_digits};

/// Default threshold: 64 KiB per 1,000 operations (64 bytes per operation).
pub const DEFAULT_THRESHOLD: u64 = 64 * 1024;

/// The verdict of one growth check.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GrowthReport {
    /// Operations between samples.
    pub every_ops: u64,
    /// `(ops done, Rust heap live bytes, SQLite bytes)`; the Rust heap counts blocks allocated
    /// since the pass started.
    pub samples: Vec<(u64, i64, i64)>,
    /// Growth of Rust heap + SQLite per `every_ops` operations (least squares, first interval
    /// excluded); `None` with fewer than three samples after the first interval.
    pub per_every_ops: Option<f64>,
    /// The Rust heap's share of that growth.
    pub rust_per_every_ops: Option<f64>,
    /// SQLite's share of that growth.
    pub sqlite_per_every_ops: Option<f64>,
    /// Bytes per `every_ops` operations above which growth is flagged.
    pub threshold: u64,
    /// Whether the growth exceeds the threshold.
    pub flagged: bool,
}

/// Least-squares slope of `y` over `x`; `None` for fewer than two points or constant `x`.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

impl GrowthReport {
    /// Analyses samples taken every `every_ops` operations.
    pub fn new(samples: &[(u64, i64, i64)], every_ops: u64, threshold: u64) -> GrowthReport {
        let steady: Vec<&(u64, i64, i64)> = samples.iter().filter(|s| s.0 >= every_ops).collect();
        let fit = |f: &dyn Fn(&(u64, i64, i64)) -> f64| -> Option<f64> {
            if steady.len() < 3 {
                return None;
            }
            let pts: Vec<(f64, f64)> = steady
                .iter()
                .map(|s| (s.0 as f64 / every_ops as f64, f(s)))
                .collect();
            slope(&pts)
        };
        let total = fit(&|s| (s.1 + s.2) as f64);
        GrowthReport {
            every_ops,
            samples: samples.to_vec(),
            per_every_ops: total,
            rust_per_every_ops: fit(&|s| s.1 as f64),
            sqlite_per_every_ops: fit(&|s| s.2 as f64),
            threshold,
            flagged: total.is_some_and(|g| g > threshold as f64),
        }
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let per = group_digits(self.every_ops);
        match self.per_every_ops {
            None => format!(
                "growth: not checked: needs at least {} measured operations (samples every {per}, \
                 the first interval left out); raise --ops",
                group_digits(self.every_ops * 3)
            ),
            Some(g) => {
                let signed = |v: f64| {
                    if v < 0.0 {
                        format!("-{}", bytes(-v))
                    } else {
                        format!("+{}", bytes(v))
                    }
                };
                format!(
                    "growth: {} per {per} ops (Rust heap {}, SQLite {}), threshold {}: {}",
                    signed(g),
                    signed(self.rust_per_every_ops.unwrap_or(0.0)),
                    signed(self.sqlite_per_every_ops.unwrap_or(0.0)),
                    bytes(self.threshold as f64),
                    if self.flagged { "FLAGGED" } else { "ok" }
                )
            }
        }
    }
}

/// Parses `--growth-threshold`: bytes with an optional unit (`65536`, `64KiB`, `1.5MiB`,
/// `500KB`).
pub fn parse_bytes(flag: &str, s: &str) -> Result<u64, Error> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => f64::NAN,
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && mult.is_finite() => Ok((v * mult).round() as u64),
        _ => Err(Error::Usage(format!(
            "{flag} {s:?}: expected a byte count such as 65536, 64KiB or 1.5MiB"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some(2.0));
        assert_eq!(slope(&[(1.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn a_leak_is_flagged_and_a_filled_cache_is_not() {
        // 100 KiB of Rust heap per 1,000 ops: flagged at the 64 KiB default.
        let leak: Vec<(u64, i64, i64)> =
            (0..=5).map(|i| (i * 1000, i as i64 * 102_400, 0)).collect();
        let r = GrowthReport::new(&leak, 1000, DEFAULT_THRESHOLD);
        assert!((r.per_every_ops.unwrap() - 102_400.0).abs() < 1e-6);
        assert!(r.flagged);
        assert!(r.line().contains("FLAGGED"), "{}", r.line());
        // A cache that fills in the first interval and then stays flat.
        let cache: Vec<(u64, i64, i64)> = (0..=5)
            .map(|i| {
                (
                    i * 1000,
                    if i == 0 { 0 } else { 5_000_000 + i as i64 },
                    300_000,
                )
            })
            .collect();
        let r = GrowthReport::new(&cache, 1000, DEFAULT_THRESHOLD);
        assert!(r.per_every_ops.unwrap().abs() < 10.0);
        assert!(!r.flagged);
    }

    #[test]
    fn too_few_samples_is_not_a_verdict() {
        let r = GrowthReport::new(&[(0, 0, 0), (1000, 5, 0), (2000, 9, 0)], 1000, 1);
        assert_eq!(r.per_every_ops, None);
        assert!(!r.flagged);
        assert!(r.line().contains("3,000"), "{}", r.line());
    }

    #[test]
    fn byte_counts_parse_with_units() {
        assert_eq!(parse_bytes("--x", "65536").unwrap(), 65536);
        assert_eq!(parse_bytes("--x", "64KiB").unwrap(), 65536);
        assert_eq!(parse_bytes("--x", "1.5MiB").unwrap(), 1_572_864);
        assert_eq!(parse_bytes("--x", "500kb").unwrap(), 500_000);
        let e = parse_bytes("--growth-threshold", "lots")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--growth-threshold") && e.contains("64KiB"),
            "{e}"
        );
        assert!(parse_bytes("--x", "-5").is_err());
        assert!(parse_bytes("--x", "5 parsecs").is_err());
    }
}
