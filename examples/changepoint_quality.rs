//! How well `trend`'s change-point detection works, measured on seeded synthetic series:
//! `cargo run --release --example changepoint_quality`.
//!
//! Each series has 30-60 points (commits with runs) with log-normal noise of a per-point CV,
//! and 1 or 2 planted steps of one size (random sign, at least 5 points apart and 3 from the
//! ends); the detector gets each point's standard error as a trend band gives it (the true CV,
//! jittered by +-25% per point). Step-free series give the false change-point rate.
//! A detection matches a planted step within 2 points; attribution counts matched detections
//! at exactly the planted commit and within 1.

use perfcheck::compare::stats::normal_quantile;
use perfcheck::trend::changepoint::detect;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SERIES: usize = 1000;
/// Timing CVs: 3% is a quiet run; 10% is the per-run spread (sd of ln) this machine's runs
/// showed under load (README, "Huge pages for the heap": 9.3-12.9%), also the default
/// `time.noise` floor.
const CVS: [f64; 2] = [0.03, 0.10];
const STEPS: [f64; 4] = [0.05, 0.10, 0.20, 0.50];

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    normal_quantile(rng.random_range(1e-12..1.0))
}

/// A series and its planted step indices.
fn synthetic(
    rng: &mut ChaCha8Rng,
    cv: f64,
    size: f64,
    steps: usize,
) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
    let n = rng.random_range(30..=60);
    let mut at: Vec<usize> = Vec::new();
    while at.len() < steps {
        let i = rng.random_range(3..=n - 3);
        if at.iter().all(|a| a.abs_diff(i) >= 5) {
            at.push(i);
        }
    }
    at.sort_unstable();
    let mut level = 0.0;
    let mut logs = Vec::with_capacity(n);
    let mut se = Vec::with_capacity(n);
    for i in 0..n {
        if at.contains(&i) {
            let up = rng.random_bool(0.5);
            level += if up {
                (1.0 + size).ln()
            } else {
                -(1.0 + size).ln()
            };
        }
        logs.push(12.0 + level + cv * gaussian(rng));
        se.push(cv * rng.random_range(0.75..1.25));
    }
    (logs, se, at)
}

fn main() {
    println!(
        "{SERIES} series per row, 30-60 points, 1 or 2 planted steps; match within 2 points\n"
    );
    println!("| CV | step | recall | precision | at the commit | within ±1 |");
    println!("|--:|--:|--:|--:|--:|--:|");
    let mut fp_rows = Vec::new();
    for (ci, &cv) in CVS.iter().enumerate() {
        for (si, &size) in STEPS.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(1000 * ci as u64 + si as u64);
            let (mut planted, mut found, mut matched, mut exact, mut near, mut detected) =
                (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
            for k in 0..SERIES {
                let (logs, se, at) = synthetic(&mut rng, cv, size, 1 + k % 2);
                let got = detect(&logs, &se, k as u64);
                planted += at.len();
                detected += got.len();
                for a in &at {
                    if let Some(d) = got
                        .iter()
                        .map(|s| s.index.abs_diff(*a))
                        .filter(|d| *d <= 2)
                        .min()
                    {
                        found += 1;
                        exact += usize::from(d == 0);
                        near += usize::from(d <= 1);
                    }
                }
                matched += got
                    .iter()
                    .filter(|s| at.iter().any(|a| s.index.abs_diff(*a) <= 2))
                    .count();
            }
            println!(
                "| {:.0}% | {:.0}% | {:.1}% | {:.1}% | {:.1}% | {:.1}% |",
                100.0 * cv,
                100.0 * size,
                100.0 * found as f64 / planted as f64,
                100.0 * matched as f64 / detected.max(1) as f64,
                100.0 * exact as f64 / found.max(1) as f64,
                100.0 * near as f64 / found.max(1) as f64,
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(99_000 + ci as u64);
        let (mut series_with, mut total, mut points) = (0usize, 0usize, 0usize);
        for k in 0..SERIES {
            let (logs, se, _) = synthetic(&mut rng, cv, 0.0, 0);
            let got = detect(&logs, &se, k as u64);
            series_with += usize::from(!got.is_empty());
            total += got.len();
            points += logs.len();
        }
        fp_rows.push((cv, series_with, total, points));
    }
    println!(
        "\n| CV | step-free series with a change point | false change points per 100 points |"
    );
    println!("|--:|--:|--:|");
    for (cv, with, total, points) in fp_rows {
        println!(
            "| {:.0}% | {:.1}% ({with} of {SERIES}) | {:.3} |",
            100.0 * cv,
            100.0 * with as f64 / SERIES as f64,
            100.0 * total as f64 / points as f64,
        );
    }
}
