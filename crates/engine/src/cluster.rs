//! Spherical k-means (cosine similarity) with k-means++ seeding, on flat `f32` storage.
//!
//! Used twice: to train the IVF index's coarse centroids and to group events during
//! consolidation. Vectors are expected to be unit length (or zero), so "nearest" means
//! "largest dot product" and centroids are renormalised after every update.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Dot product of two equal-length slices.
///
/// Eight independent accumulators let the compiler vectorise the loop without `-ffast-math`
/// style reassociation, which matters because every search and k-means step is made of these.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// Scales `v` to unit L2 length; a zero vector stays zero.
#[inline]
pub fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        let inv = 1.0 / n;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

/// Index and similarity of the centroid (rows of `centroids`, each `dim` long) most similar
/// to `v`. Ties go to the lower index so results never depend on float noise in ordering.
#[inline]
pub fn nearest(centroids: &[f32], dim: usize, v: &[f32]) -> (usize, f32) {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, c) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(c, v);
        if s > best.1 {
            best = (i, s);
        }
    }
    best
}

/// Parameters of one k-means run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KMeansParams {
    /// Number of clusters wanted (capped at the number of points).
    pub k: usize,
    /// Upper bound on Lloyd iterations; the loop also stops when no assignment changes.
    pub max_iter: usize,
    /// Seed for k-means++ seeding.
    pub seed: u64,
}

/// Result of a k-means run.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// Vector dimension.
    pub dim: usize,
    /// Unit-length centroids, `k * dim` values, row-major.
    pub centroids: Vec<f32>,
    /// Cluster of each input point.
    pub assignments: Vec<u32>,
    /// Similarity of each point to its centroid after the last assignment step.
    pub similarity: Vec<f32>,
    /// Lloyd iterations actually run.
    pub iterations: usize,
}

impl KMeans {
    /// Number of clusters.
    pub fn k(&self) -> usize {
        self.centroids.len() / self.dim.max(1)
    }

    /// Centroid `c` as a slice.
    pub fn centroid(&self, c: usize) -> &[f32] {
        &self.centroids[c * self.dim..(c + 1) * self.dim]
    }
}

/// Clusters the rows of `data` (`n * dim` values) into at most `params.k` clusters.
///
/// Deterministic for a given input and seed. An empty input gives zero clusters.
pub fn kmeans(data: &[f32], dim: usize, params: KMeansParams) -> KMeans {
    let dim = dim.max(1);
    let n = data.len() / dim;
    let k = params.k.clamp(1, n.max(1));
    if n == 0 {
        return KMeans {
            dim,
            centroids: Vec::new(),
            assignments: Vec::new(),
            similarity: Vec::new(),
            iterations: 0,
        };
    }
    let mut centroids = seed_plus_plus(data, dim, k, params.seed);
    let mut assignments = vec![u32::MAX; n];
    let mut similarity = vec![0.0f32; n];
    let mut sums = vec![0.0f32; k * dim];
    let mut counts = vec![0usize; k];
    let mut iterations = 0;
    let mut converged = false;
    for _ in 0..params.max_iter.max(1) {
        iterations += 1;
        let mut changed = 0usize;
        for (i, row) in data.chunks_exact(dim).enumerate() {
            let (c, s) = nearest(&centroids, dim, row);
            if assignments[i] != c as u32 {
                assignments[i] = c as u32;
                changed += 1;
            }
            similarity[i] = s;
        }
        if changed == 0 {
            converged = true;
            break;
        }
        sums.fill(0.0);
        counts.fill(0);
        for (i, row) in data.chunks_exact(dim).enumerate() {
            let c = assignments[i] as usize;
            counts[c] += 1;
            for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
                *s += x;
            }
        }
        for c in 0..k {
            let dst = &mut centroids[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                // An empty cluster is wasted capacity: restart it at the point its current
                // centroid explains worst, and take that point over so it is not empty again.
                let worst = worst_point(&similarity);
                dst.copy_from_slice(&data[worst * dim..(worst + 1) * dim]);
                similarity[worst] = f32::INFINITY;
                continue;
            }
            dst.copy_from_slice(&sums[c * dim..(c + 1) * dim]);
            normalize(dst);
        }
    }
    if !converged {
        // The last update moved the centroids: reassign so that `assignments` and
        // `similarity` describe the returned centroids.
        for (i, row) in data.chunks_exact(dim).enumerate() {
            let (c, s) = nearest(&centroids, dim, row);
            assignments[i] = c as u32;
            similarity[i] = s;
        }
    }
    KMeans {
        dim,
        centroids,
        assignments,
        similarity,
        iterations,
    }
}

fn worst_point(similarity: &[f32]) -> usize {
    let mut worst = (0usize, f32::INFINITY);
    for (i, &s) in similarity.iter().enumerate() {
        if s < worst.1 {
            worst = (i, s);
        }
    }
    worst.0
}

/// k-means++ seeding: each new centre is drawn with probability proportional to its squared
/// distance from the nearest centre chosen so far (`2 - 2 cos` for unit vectors).
fn seed_plus_plus(data: &[f32], dim: usize, k: usize, seed: u64) -> Vec<f32> {
    let n = data.len() / dim;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centroids = Vec::with_capacity(k * dim);
    let first = rng.random_range(0..n);
    centroids.extend_from_slice(&data[first * dim..(first + 1) * dim]);
    let mut d2: Vec<f64> = data
        .chunks_exact(dim)
        .map(|row| dist2(row, &centroids[..dim]))
        .collect();
    while centroids.len() < k * dim {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut u = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, &w) in d2.iter().enumerate() {
                if u < w {
                    pick = i;
                    break;
                }
                u -= w;
            }
            pick
        } else {
            // All points coincide with some centre: any point will do.
            rng.random_range(0..n)
        };
        let start = centroids.len();
        centroids.extend_from_slice(&data[pick * dim..(pick + 1) * dim]);
        let c = &centroids[start..start + dim];
        for (i, row) in data.chunks_exact(dim).enumerate() {
            let d = dist2(row, c);
            if d < d2[i] {
                d2[i] = d;
            }
        }
    }
    centroids
}

#[inline]
fn dist2(a: &[f32], b: &[f32]) -> f64 {
    // Computed from norms so zero vectors (empty texts) get a sensible distance too.
    let d = dot(a, a) + dot(b, b) - 2.0 * dot(a, b);
    f64::from(d.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n_per: usize, centres: &[[f32; 4]], seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for (l, c) in centres.iter().enumerate() {
            for _ in 0..n_per {
                let mut v: Vec<f32> = c
                    .iter()
                    .map(|x| x + rng.random_range(-0.15f32..0.15))
                    .collect();
                normalize(&mut v);
                data.extend_from_slice(&v);
                labels.push(l);
            }
        }
        (data, labels)
    }

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn recovers_well_separated_blobs() {
        let centres = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let (data, labels) = blobs(50, &centres, 7);
        let km = kmeans(
            &data,
            4,
            KMeansParams {
                k: 4,
                max_iter: 20,
                seed: 1,
            },
        );
        assert_eq!(km.k(), 4);
        // Every blob maps to exactly one cluster and no two blobs share one.
        let mut map = [usize::MAX; 4];
        for (i, &l) in labels.iter().enumerate() {
            let c = km.assignments[i] as usize;
            if map[l] == usize::MAX {
                map[l] = c;
            }
            assert_eq!(map[l], c, "blob {l} split");
        }
        let mut seen = map.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 4);
        assert!(km.similarity.iter().all(|&s| s > 0.9));
    }

    #[test]
    fn deterministic_and_caps_k_at_n() {
        let (data, _) = blobs(3, &[[1.0, 0.0, 0.0, 0.0]], 3);
        let p = KMeansParams {
            k: 10,
            max_iter: 5,
            seed: 9,
        };
        let a = kmeans(&data, 4, p);
        let b = kmeans(&data, 4, p);
        assert_eq!(a, b);
        assert_eq!(a.k(), 3);
        assert_eq!(kmeans(&[], 4, p).k(), 0);
    }
}
