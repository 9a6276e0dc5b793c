//! Which side runs first in each round of an A/B session: random but balanced and
//! reproducible.
//!
//! A fixed alternation (base first in odd rounds) cancels a steady drift, but any effect of
//! position that is tied to the round number (a neighbour's build that starts every other run)
//! lines up with it. So the order is drawn from a seeded generator in blocks of two rounds:
//! each block runs base first once and head first once, in random order. Over an even number
//! of rounds each side goes first exactly half of the time, so a "second run is slower"
//! effect cancels exactly; the seed is recorded so a session's order can be reproduced.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The side that runs first in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum First {
    /// The base binary runs first, then the head.
    Base,
    /// The head binary runs first, then the base.
    Head,
}

impl First {
    /// `base` or `head`.
    pub fn label(self) -> &'static str {
        match self {
            First::Base => "base",
            First::Head => "head",
        }
    }
}

/// The first side of each of `rounds` rounds for `seed`: blocks of two rounds with one of
/// each order, the block's order random; an odd last round is a coin flip.
pub fn first_sides(seed: u64, rounds: usize) -> Vec<First> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(rounds);
    while out.len() < rounds {
        let base_first = rng.random_bool(0.5);
        let block = if base_first {
            [First::Base, First::Head]
        } else {
            [First::Head, First::Base]
        };
        for f in block {
            if out.len() < rounds {
                out.push(f);
            }
        }
    }
    out
}

/// A seed for a session's order when the user gives none: from the clock and the process id,
/// so sessions differ; it is recorded, so a session can be repeated with `--order-seed`.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id())).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_in_blocks_reproducible_and_seed_dependent() {
        for seed in 0..50 {
            let o = first_sides(seed, 10);
            assert_eq!(o.len(), 10);
            for pair in o.chunks(2) {
                assert_ne!(pair[0], pair[1], "seed {seed}: {o:?}");
            }
            assert_eq!(o, first_sides(seed, 10));
            // A shorter session is a prefix of a longer one with the same seed.
            assert_eq!(first_sides(seed, 7), o[..7]);
        }
        let distinct: std::collections::BTreeSet<String> = (0..50)
            .map(|s| format!("{:?}", first_sides(s, 10)))
            .collect();
        assert!(distinct.len() > 10, "{distinct:?}");
        assert!(first_sides(1, 0).is_empty());
    }
}
