//! The agent-memory engine's perfcheck harness: its four workloads (`recall`, `remember`,
//! `consolidation`, `mixed`) and built-in profiles, through the same public harness API any
//! crate uses. `cargo perfcheck` in this repository finds, builds and runs this target.

mod embed_switch;
mod faults;
mod gauges;
mod health;
mod ledger;
mod load;
mod sqlite_faults;
mod workloads;

// The name tests/load.rs gives this module when it includes it (faults.rs refers to it).
use load as engine_load;

use perfcheck::harness::Harness;

/// The engine's profiles, shipped in the binary so they work from any directory.
const PROFILES: &[(&str, &str)] = &[
    ("quick", include_str!("../../../../profiles/quick.toml")),
    ("ci", include_str!("../../../../profiles/ci.toml")),
    ("tiny", include_str!("../../../../profiles/tiny.toml")),
    ("ab", include_str!("../../../../profiles/ab.toml")),
    ("load", include_str!("../../../../profiles/load.toml")),
    ("soak", include_str!("../../../../profiles/soak.toml")),
    ("soak-ci", include_str!("../../../../profiles/soak-ci.toml")),
    ("chaos", include_str!("../../../../profiles/chaos.toml")),
];

fn harness() -> Harness {
    let shared = workloads::Shared::default();
    let mut h = Harness::new()
        .load_target(load::EngineLoad)
        .health_check(health::EngineHealth);
    for kind in workloads::Kind::ALL {
        h = h.workload(workloads::EngineWorkload::new(kind, shared.clone()));
    }
    for (name, text) in PROFILES {
        h = h.profile(name, text);
    }
    h
}

perfcheck::main!(harness = harness());
