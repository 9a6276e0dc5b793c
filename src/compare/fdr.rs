//! False discovery rate control across the metrics of one check (Benjamini-Hochberg).
//!
//! One check tests a hundred metrics; at a 1% level each, an unchanged rerun would flag one of
//! them on average. Benjamini-Hochberg keeps the expected share of false flags among all flags
//! at the level instead, and stays valid under the positive dependence that metrics of one run
//! have (a slow run slows every stage).

/// Benjamini-Hochberg adjusted p-values (q-values), in the order of `p`. A metric is a
/// discovery at FDR level `alpha` when its q-value is at most `alpha`. NaN p-values count as 1.
pub fn bh_adjust(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    let pv = |i: usize| if p[i].is_nan() { 1.0 } else { p[i] };
    order.sort_by(|&a, &b| pv(a).total_cmp(&pv(b)));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    // From the largest p down: q(i) = min over ranks j >= i of p(j) * m / j.
    for (rank, &i) in order.iter().enumerate().rev() {
        let adj = pv(i) * m as f64 / (rank + 1) as f64;
        running = running.min(adj).min(1.0);
        q[i] = running;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_worked_example() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.5), "BH")
        //   -> 0.025 0.05 0.05 0.025 0.5
        let q = bh_adjust(&[0.01, 0.04, 0.03, 0.005, 0.5]);
        let want = [0.025, 0.05, 0.05, 0.025, 0.5];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
    }

    #[test]
    fn is_monotone_and_bounded() {
        let p = [0.9, 1e-9, 0.2, 0.2, f64::NAN, 0.0001];
        let q = bh_adjust(&p);
        assert_eq!(q[4], 1.0);
        for i in 0..p.len() {
            assert!(q[i] >= p[i].min(1.0) || p[i].is_nan());
            assert!(q[i] <= 1.0);
            for j in 0..p.len() {
                if p[i] < p[j] {
                    assert!(q[i] <= q[j]);
                }
            }
        }
        assert!(bh_adjust(&[]).is_empty());
    }

    #[test]
    fn one_strong_signal_among_noise_survives_and_uniform_noise_does_not() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut flagged_null = 0;
        for _ in 0..200 {
            let p: Vec<f64> = (0..100).map(|_| rng.random::<f64>()).collect();
            flagged_null += bh_adjust(&p).iter().filter(|&&q| q <= 0.01).count().min(1);
        }
        // Under the global null BH controls the chance of any flag at alpha (here 1%).
        assert!(flagged_null <= 8, "{flagged_null}");
        let mut p: Vec<f64> = (0..100).map(|_| rng.random::<f64>()).collect();
        p[17] = 1e-7;
        assert!(bh_adjust(&p)[17] <= 0.01);
    }
}
