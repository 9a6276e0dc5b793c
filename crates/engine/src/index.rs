//! In-memory vector index: exact brute force and IVF (inverted file) approximate search.
//!
//! Each inverted list stores its vectors dimension-major and sparse: per dimension, the
//! positions and values of the vectors that are non-zero there. Hashed embeddings are sparse
//! (a query's few words touch a dozen or so of 256 dimensions, an event's some thirty), so
//! scoring a list visits only the query's dimensions and, within them, only the vectors that
//! have a value: several times less memory traffic than dense columns (what bounds a scan),
//! with bit-identical scores (the skipped terms are exact zeros). A dense query costs what a
//! row-major scan of the non-zeros costs. Exact search is "probe every list"; before training
//! there is a single list and IVF search is exact.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::cluster::{kmeans, nearest, KMeansParams};

/// One search result: an event id and its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Event id.
    pub id: i64,
    /// Cosine similarity (dot product of unit vectors).
    pub score: f32,
}

/// Heap entry ordered so that `BinaryHeap` (a max-heap) keeps the *worst* hit on top.
#[derive(Debug, Clone, Copy)]
struct Worst(Hit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // Lower score is "greater" (worse); among equal scores the higher id is worse, which
        // makes ties resolve the same way in exact and IVF search.
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.id.cmp(&other.0.id))
    }
}

/// Bounded top-k collector: O(log k) per accepted hit, O(1) per rejected one.
#[derive(Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    /// Score of the worst kept hit once full (`-inf` before): most candidates of a scan fall
    /// below it and are rejected with one float comparison.
    floor: f32,
}

impl TopK {
    /// A collector keeping the best `k` hits.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            // `k` can come from a caller; never pre-allocate more than a page of hits for it.
            heap: BinaryHeap::with_capacity(k.min(1024).saturating_add(1)),
            floor: f32::NEG_INFINITY,
        }
    }

    /// Offers one hit.
    #[inline]
    pub fn push(&mut self, id: i64, score: f32) {
        // Strictly below the worst kept score can never enter (ties go on: ids break them).
        // NaN scores fail every comparison and take the exact path below.
        if score < self.floor || self.k == 0 {
            return;
        }
        let w = Worst(Hit { id, score });
        if self.heap.len() < self.k {
            self.heap.push(w);
        } else if let Some(top) = self.heap.peek() {
            if w < *top {
                self.heap.pop();
                self.heap.push(w);
            }
        }
        if self.heap.len() == self.k {
            if let Some(top) = self.heap.peek() {
                self.floor = top.0.score;
            }
        }
    }

    /// The kept hits, best first (ties by ascending id).
    pub fn into_sorted(self) -> Vec<Hit> {
        // Ascending in `Worst` order is best-first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

/// One inverted list: ids, and per dimension the `(position, value)` of every vector that is
/// non-zero in it, positions ascending.
#[derive(Debug, Clone)]
struct InvList {
    ids: Vec<i64>,
    postings: Vec<Vec<(u32, f32)>>,
}

impl InvList {
    fn new(dim: usize) -> Self {
        Self {
            ids: Vec::new(),
            postings: vec![Vec::new(); dim],
        }
    }

    /// Appends a vector; missing trailing values count as zero, extra ones are ignored.
    fn push(&mut self, id: i64, v: &[f32]) {
        // A list would need 4 billion vectors (hundreds of GB) to overflow a position.
        let pos = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.push(id);
        for (post, &x) in self.postings.iter_mut().zip(v) {
            if x != 0.0 {
                post.push((pos, x));
            }
        }
    }

    /// Appends every vector of the list as a dense row to `out`, in position order.
    fn rows_into(&self, out: &mut Vec<f32>) {
        let dim = self.postings.len();
        let base = out.len();
        out.resize(base + self.ids.len() * dim, 0.0);
        for (d, post) in self.postings.iter().enumerate() {
            for &(p, x) in post {
                out[base + p as usize * dim + d] = x;
            }
        }
    }

    /// Heap bytes held (capacities, so growth slack counts too).
    fn heap_bytes(&self) -> usize {
        self.ids.capacity() * std::mem::size_of::<i64>()
            + self.postings.capacity() * std::mem::size_of::<Vec<(u32, f32)>>()
            + self
                .postings
                .iter()
                .map(|c| c.capacity() * std::mem::size_of::<(u32, f32)>())
                .sum::<usize>()
    }

    fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.postings.iter_mut().for_each(Vec::shrink_to_fit);
    }

    /// Scores every vector against the sparse query `nz` (`(dimension, value)` pairs) and
    /// offers the results to `top`. `scores` is scratch space reused across lists.
    #[inline]
    fn scan(&self, nz: &[(usize, f32)], scores: &mut Vec<f32>, top: &mut TopK) {
        scores.clear();
        scores.resize(self.ids.len(), 0.0);
        for &(d, w) in nz {
            let Some(post) = self.postings.get(d) else {
                continue;
            };
            for &(p, x) in post {
                if let Some(s) = scores.get_mut(p as usize) {
                    *s += w * x;
                }
            }
        }
        for (&id, &s) in self.ids.iter().zip(scores.iter()) {
            top.push(id, s);
        }
    }
}

/// `dot(c, q)` for a query given by its non-zero dimensions `nz`, bit for bit: the same
/// eight lanes and tail as [`dot`], each summed in ascending dimension order, only without the
/// zero terms (which add exactly nothing).
#[inline]
fn sparse_dot(c: &[f32], nz: &[(usize, f32)]) -> f32 {
    let body = c.len() / 8 * 8;
    let mut acc = [0.0f32; 8];
    let mut tail = 0.0f32;
    for &(d, w) in nz {
        let Some(&x) = c.get(d) else { continue };
        if d < body {
            acc[d % 8] += x * w;
        } else {
            tail += x * w;
        }
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// The non-zero dimensions of a query.
fn sparse(q: &[f32]) -> Vec<(usize, f32)> {
    q.iter()
        .enumerate()
        .filter(|(_, &x)| x != 0.0)
        .map(|(d, &x)| (d, x))
        .collect()
}

/// IVF training parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainParams {
    /// Number of inverted lists (coarse centroids).
    pub nlist: usize,
    /// Lloyd iterations for the coarse k-means.
    pub iterations: usize,
    /// At most this many vectors (an even stride through the data) train the centroids.
    pub sample: usize,
    /// k-means++ seed.
    pub seed: u64,
}

/// Read access to a lock; a panic elsewhere never leaves the index half-written (every
/// mutation is a single push per list), so a poisoned lock is still safe to use.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Centroids and lists: replaced as a whole by training, read by everything else.
#[derive(Debug)]
struct Lists {
    /// `nlist * dim` coarse centroids; empty while untrained.
    centroids: Vec<f32>,
    /// One lock per list: an insert blocks only searches scanning that one list.
    lists: Vec<RwLock<InvList>>,
}

impl Lists {
    fn untrained(dim: usize) -> Self {
        Self {
            centroids: Vec::new(),
            lists: vec![RwLock::new(InvList::new(dim))],
        }
    }
}

/// Vector index with exact and IVF search over unit-length vectors.
///
/// Safe to share between threads (`&self` everywhere). Searches and inserts take the
/// centroid table for reading and lock one inverted list at a time: a search holds a list's
/// read lock only while scanning it, an insert holds one list's write lock for a single push,
/// so writers never wait for whole searches and searches never wait for each other. Training
/// replaces the table under its write lock (rare: opening, bulk loads, explicit retraining).
pub struct IvfIndex {
    dim: usize,
    state: RwLock<Lists>,
    len: AtomicUsize,
}

impl Clone for IvfIndex {
    fn clone(&self) -> Self {
        let s = read(&self.state);
        Self {
            dim: self.dim,
            state: RwLock::new(Lists {
                centroids: s.centroids.clone(),
                lists: s
                    .lists
                    .iter()
                    .map(|l| RwLock::new(read(l).clone()))
                    .collect(),
            }),
            len: AtomicUsize::new(self.len()),
        }
    }
}

impl std::fmt::Debug for IvfIndex {
    // A summary: the vectors themselves can be hundreds of megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfIndex")
            .field("dim", &self.dim)
            .field("len", &self.len())
            .field("nlist", &self.nlist())
            .field("trained", &self.is_trained())
            .finish()
    }
}

impl IvfIndex {
    /// An empty, untrained index for `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        Self {
            dim: dim.max(1),
            state: RwLock::new(Lists::untrained(dim.max(1))),
            len: AtomicUsize::new(0),
        }
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors stored.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// True when no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of inverted lists (1 while untrained).
    pub fn nlist(&self) -> usize {
        read(&self.state).lists.len()
    }

    /// True once coarse centroids exist.
    pub fn is_trained(&self) -> bool {
        !read(&self.state).centroids.is_empty()
    }

    /// Sizes of the inverted lists (for diagnostics and balance checks).
    pub fn list_sizes(&self) -> Vec<usize> {
        read(&self.state)
            .lists
            .iter()
            .map(|l| read(l).ids.len())
            .collect()
    }

    /// Heap bytes the index holds (ids, vectors, centroids, growth slack included). Grows by
    /// about `4 * dim + 8` bytes per stored vector by design; a load test subtracts it to
    /// tell data growth from leaks.
    pub fn heap_bytes(&self) -> usize {
        let s = read(&self.state);
        s.centroids.capacity() * std::mem::size_of::<f32>()
            + s.lists.capacity() * std::mem::size_of::<RwLock<InvList>>()
            + s.lists.iter().map(|l| read(l).heap_bytes()).sum::<usize>()
    }

    /// Adds one vector; after training it goes to the list of its nearest centroid.
    /// A vector of the wrong length is truncated or zero-padded.
    pub fn insert(&self, id: i64, v: &[f32]) {
        let s = read(&self.state);
        // The nearest centroid is found before any list lock is taken.
        let list = if s.centroids.is_empty() {
            0
        } else {
            nearest(&s.centroids, self.dim, v).0
        };
        write(&s.lists[list]).push(id, v);
        self.len.fetch_add(1, Ordering::AcqRel);
    }

    /// (Re)trains the coarse centroids on the stored vectors and redistributes them.
    /// `nlist` is capped so that each list holds at least a few vectors on average.
    /// Searches and inserts wait while it runs.
    pub fn train(&self, params: TrainParams) {
        let dim = self.dim;
        let mut s = write(&self.state);
        let n = self.len();
        let mut ids = Vec::with_capacity(n);
        let mut data = Vec::with_capacity(n * dim);
        for l in s.lists.drain(..) {
            let l = l.into_inner().unwrap_or_else(PoisonError::into_inner);
            ids.extend_from_slice(&l.ids);
            l.rows_into(&mut data);
        }
        let n = ids.len();
        let nlist = params.nlist.min(n / 4).max(1);
        if nlist <= 1 {
            let mut one = InvList::new(dim);
            for (id, row) in ids.into_iter().zip(data.chunks_exact(dim)) {
                one.push(id, row);
            }
            *s = Lists {
                centroids: Vec::new(),
                lists: vec![RwLock::new(one)],
            };
            self.len.store(n, Ordering::Release);
            return;
        }
        let step = n.div_ceil(params.sample.max(nlist)).max(1);
        let sample: Vec<f32> = data
            .chunks_exact(dim)
            .step_by(step)
            .flatten()
            .copied()
            .collect();
        let km = kmeans(
            &sample,
            dim,
            KMeansParams {
                k: nlist,
                max_iter: params.iterations,
                seed: params.seed,
            },
        );
        let centroids = km.centroids;
        let k = centroids.len() / dim;
        let mut lists = vec![InvList::new(dim); k];
        for (i, (id, row)) in ids.into_iter().zip(data.chunks_exact(dim)).enumerate() {
            // When every vector was in the training sample its list is already known.
            let list = if step == 1 {
                km.assignments[i] as usize
            } else {
                nearest(&centroids, dim, row).0
            };
            lists[list].push(id, row);
        }
        // Growth slack would otherwise cost up to as much memory as the vectors themselves.
        for l in &mut lists {
            l.shrink_to_fit();
        }
        *s = Lists {
            centroids,
            lists: lists.into_iter().map(RwLock::new).collect(),
        };
        self.len.store(n, Ordering::Release);
    }

    /// Exact top-`k` by cosine similarity.
    pub fn search_exact(&self, q: &[f32], k: usize) -> Vec<Hit> {
        let s = read(&self.state);
        let nz = sparse(q);
        let mut scores = Vec::new();
        let mut top = TopK::new(k);
        for l in &s.lists {
            read(l).scan(&nz, &mut scores, &mut top);
        }
        top.into_sorted()
    }

    /// Approximate top-`k`: scans the `nprobe` lists whose centroids are most similar to `q`.
    /// Exact when untrained or when `nprobe >= nlist`.
    pub fn search(&self, q: &[f32], k: usize, nprobe: usize) -> Vec<Hit> {
        let s = read(&self.state);
        if s.centroids.is_empty() || nprobe >= s.lists.len() {
            drop(s);
            return self.search_exact(q, k);
        }
        let nz = sparse(q);
        let mut probe = TopK::new(nprobe.max(1));
        for (i, c) in s.centroids.chunks_exact(self.dim).enumerate() {
            probe.push(i as i64, sparse_dot(c, &nz));
        }
        let mut scores = Vec::new();
        let mut top = TopK::new(k);
        for p in probe.into_sorted() {
            read(&s.lists[p.id as usize]).scan(&nz, &mut scores, &mut top);
        }
        top.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{dot, normalize};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_unit(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        normalize(&mut v);
        v
    }

    #[test]
    fn topk_keeps_best_sorted_with_id_tiebreak() {
        let mut t = TopK::new(3);
        for (id, s) in [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.9), (5, 0.2), (6, 0.7)] {
            t.push(id, s);
        }
        let ids: Vec<i64> = t.into_sorted().iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![2, 4, 6]);
    }

    #[test]
    fn sparse_dot_is_bit_identical_to_dot() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for dim in [256usize, 13, 8, 3] {
            let c: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let mut q = vec![0.0f32; dim];
            for _ in 0..dim.min(11) {
                q[rng.random_range(0..dim)] = rng.random_range(-1.0f32..1.0);
            }
            assert_eq!(sparse_dot(&c, &sparse(&q)).to_bits(), dot(&c, &q).to_bits());
        }
    }

    #[test]
    fn exact_search_matches_brute_force_and_ivf_with_all_lists_is_exact() {
        let dim = 16;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let idx = IvfIndex::new(dim);
        let vecs: Vec<Vec<f32>> = (0..500).map(|_| random_unit(&mut rng, dim)).collect();
        for (i, v) in vecs.iter().enumerate() {
            idx.insert(i as i64, v);
        }
        let q = random_unit(&mut rng, dim);
        let mut brute: Vec<(i64, f32)> = vecs
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64, dot(v, &q)))
            .collect();
        brute.sort_by(|a, b| b.1.total_cmp(&a.1));
        let exact: Vec<i64> = idx.search_exact(&q, 5).iter().map(|h| h.id).collect();
        assert_eq!(exact, brute[..5].iter().map(|x| x.0).collect::<Vec<_>>());

        idx.train(TrainParams {
            nlist: 8,
            iterations: 5,
            sample: 10_000,
            seed: 1,
        });
        assert!(idx.is_trained());
        assert_eq!(idx.nlist(), 8);
        assert_eq!(idx.len(), 500);
        assert_eq!(idx.list_sizes().iter().sum::<usize>(), 500);
        let all: Vec<i64> = idx.search(&q, 5, 8).iter().map(|h| h.id).collect();
        assert_eq!(all, exact);
        // Inserting after training lands in exactly one list and is findable.
        idx.insert(10_000, &q);
        assert_eq!(idx.search(&q, 1, 1)[0].id, 10_000);
    }
}
