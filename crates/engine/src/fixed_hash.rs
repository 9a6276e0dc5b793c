//! Hash maps with fixed hash keys, so the engine does the same work in every process.
//!
//! `std`'s default `RandomState` draws new keys per process: probe sequences, iteration order
//! and with them the order of allocations and frees change from one run to the next, and so
//! do instruction counts (glibc malloc's cost depends on the heap's history). With fixed keys
//! a seeded corpus and workload give the same counts to the instruction.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

/// A `HashMap` with fixed keys (SipHash-1-3 keyed with zeros).
pub type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// A `HashSet` with fixed keys.
pub type FixedSet<T> = HashSet<T, BuildHasherDefault<DefaultHasher>>;
