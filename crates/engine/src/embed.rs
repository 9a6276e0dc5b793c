//! Tokenizer and feature-hashing embeddings (word unigrams and bigrams, signed hashing).
//!
//! No model weights: a text's vector is the L2-normalised sum of signed one-hot features, one per
//! unigram and (at half weight) per adjacent bigram, hashed into `dim` buckets. Cosine similarity
//! of two such vectors approximates weighted word overlap, which is all the engine needs.

/// Default embedding dimension.
pub const DEFAULT_DIM: usize = 256;

/// Weight of a bigram feature relative to a unigram: bigrams add word-order evidence but should
/// not dominate, because queries rarely keep the original word order.
const BIGRAM_WEIGHT: f32 = 0.5;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over bytes: tiny, stable across platforms and releases (unlike `DefaultHasher`).
#[inline]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Final avalanche (from MurmurHash3) so that bucket and sign bits are independent.
#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Iterator over the words of a text: maximal runs of alphanumeric characters, not lowercased.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Hash of one word, case-insensitive, computed without allocating a lowercase copy.
#[inline]
pub fn word_hash(word: &str) -> u64 {
    let mut h = FNV_OFFSET;
    let mut feed = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    };
    for c in word.chars() {
        if c.is_ascii() {
            feed(c.to_ascii_lowercase() as u8);
        } else {
            let mut buf = [0u8; 4];
            for lc in c.to_lowercase() {
                for &b in lc.encode_utf8(&mut buf).as_bytes() {
                    feed(b);
                }
            }
        }
    }
    h
}

/// Lowercased words of a text.
pub fn tokenize(text: &str) -> Vec<String> {
    words(text).map(str::to_lowercase).collect()
}

/// Sorted, deduplicated word hashes of a text: a cheap term set for lexical overlap.
pub fn term_set(text: &str) -> Vec<u64> {
    let mut v: Vec<u64> = words(text).map(word_hash).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Feature-hashing embedder with a fixed output dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedder {
    dim: usize,
}

impl Embedder {
    /// An embedder producing `dim`-dimensional vectors (`dim` must be at least 1).
    pub fn new(dim: usize) -> Self {
        Self { dim: dim.max(1) }
    }

    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds `text` into a new vector.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0; self.dim];
        self.embed_into(text, &mut v);
        v
    }

    /// Embeds `text` into `out` (overwritten; its length must be `dim`). An empty text gives
    /// the zero vector, which is similar to nothing.
    pub fn embed_into(&self, text: &str, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.dim);
        out.fill(0.0);
        let mut prev: Option<u64> = None;
        for w in words(text) {
            let h = word_hash(w);
            self.add_feature(out, fmix64(h), 1.0);
            if let Some(p) = prev {
                // Order-sensitive combination so "a b" and "b a" differ.
                let bigram = p.rotate_left(29) ^ h.wrapping_mul(FNV_PRIME);
                self.add_feature(out, fmix64(bigram ^ 0x9e37_79b9_7f4a_7c15), BIGRAM_WEIGHT);
            }
            prev = Some(h);
        }
        crate::cluster::normalize(out);
    }

    #[inline]
    fn add_feature(&self, out: &mut [f32], h: u64, weight: f32) {
        let bucket = (h % self.dim as u64) as usize;
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        out[bucket] += sign * weight;
    }
}

impl Default for Embedder {
    fn default() -> Self {
        Self::new(DEFAULT_DIM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::dot;

    #[test]
    fn fnv1a_known_vectors() {
        // Published FNV-1a 64-bit test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn tokenizer_lowercases_and_splits_on_non_alphanumerics() {
        assert_eq!(
            tokenize("Hello, wORLD! x2-y_z  Äpfel"),
            vec!["hello", "world", "x2", "y", "z", "äpfel"]
        );
        assert_eq!(word_hash("ÄPFEL"), fnv1a("äpfel".as_bytes()));
        assert_eq!(word_hash("MiXeD"), fnv1a(b"mixed"));
    }

    #[test]
    fn embeddings_are_unit_length_deterministic_and_case_insensitive() {
        let e = Embedder::new(256);
        let a = e.embed("kalo miren toshu vaze");
        let b = e.embed("KALO Miren toshu, vaze.");
        assert_eq!(a, b);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert!(e.embed("").iter().all(|&x| x == 0.0));
    }

    #[test]
    fn similar_texts_score_higher_than_unrelated_ones() {
        let e = Embedder::new(256);
        let q = e.embed("kalo miren toshu");
        let near = e.embed("kalo miren toshu vaze rilo");
        let far = e.embed("bepa dunor fizzel gomik tarun");
        assert!(dot(&q, &near) > 0.6, "{}", dot(&q, &near));
        assert!(dot(&q, &far) < 0.3, "{}", dot(&q, &far));
    }

    #[test]
    fn word_order_changes_the_vector_through_bigrams() {
        let e = Embedder::new(256);
        let a = e.embed("alpha beta gamma");
        let b = e.embed("gamma beta alpha");
        let s = dot(&a, &b);
        assert!(s < 0.999 && s > 0.5, "{s}");
    }
}
