//! Profiles (`Profile::parse`, with their `[load]` section), perfcheck.toml
//! (`ProjectConfig::parse`) and the `[thresholds]` table (`Thresholds::from_toml_str`).

use std::path::Path;

use perfcheck::compare::Thresholds;
use perfcheck::config::Profile;
use perfcheck::load::schedule::{windows, Schedule};
use perfcheck::load::LoadSettings;
use perfcheck::metrics::MetricName;
use perfcheck::project::ProjectConfig;
use proptest::prelude::*;

use super::cases;
use super::mutate::{apply, edit_text, mutations, prefixes, text_edits, weird_toml};

/// The shipped profiles plus one that sets every `[load]` key.
const PROFILES: &[&str] = &[
    include_str!("../../profiles/quick.toml"),
    include_str!("../../profiles/ci.toml"),
    include_str!("../../profiles/tiny.toml"),
    include_str!("../../profiles/ab.toml"),
    include_str!("../../profiles/load.toml"),
    include_str!("../../profiles/soak.toml"),
    include_str!("../../profiles/soak-ci.toml"),
    FULL_LOAD,
];

const FULL_LOAD: &str = r#"
description = "every load key"
workloads = ["mixed"]
[corpus]
events = 500
[engine]
dim = 64
[run]
ops = 10
[mix]
recall = 1
remember = 1
consolidation = 0
[load]
rate = 2000
workers = 3
timeout = "250ms"
seed = 9
recall_k = 5
repeat_fraction = 0.5
consolidation_batch = 100
phases = [
  { name = "ramp-up", duration = "1s", from = 0.1, to = 1.0 },
  { name = "peak", duration = "2s", rate = 1.0 },
  { name = "tail", duration = "1s", from = 1.5 },
]
[load.slo]
p99 = "2ms"
error_rate = 0.01
heap_growth_bytes_per_hour = 1000000.0
exempt_phases = ["tail"]
[load.find_max]
start = 100
factor = 2
warmup = "1s"
step = "2s"
refine = 2
max_steps = 5
p99 = "3ms"
error_rate = 0.002
"#;

const PROJECT: &str = r#"
[store]
path = "baselines/s.sqlite"

[check]
profile = "ci"
fail_without_baseline = true
include_dirty_baselines = false
default_branch = "main"
seed = 7

[thresholds]
confidence = 0.95
resamples = 200
paired_noise = 2
time = { warn = 5, fail = 10, noise = 10, min_ns = 1000 }
cpu = { gate = true }
allocs = { warn = 1, fail = 5, min_samples = 10 }
value = { max = 0.5 }

[thresholds.overrides]
"recall/vector_search/wall_ns" = { warn = 5, fail = 10 }
"recall/*/alloc_bytes" = { fail = 2 }
"*/total/p99_ns" = { gate = true }
"load/*/error_rate" = { max = 0.01 }
"#;

/// Names a resolved threshold is checked for.
const NAMES: &[&str] = &[
    "recall/vector_search/wall_ns",
    "recall/rerank/alloc_bytes",
    "mixed/total/p99_ns",
    "load/total/error_rate",
    "load/peak/heap_growth_bytes_per_hour",
    "remember/total/throughput_ops",
    "consolidation/cluster/cpu_ns",
    "recall/total/allocs",
];

/// What an accepted `[load]` section must satisfy, and what its consumers (the schedule, the
/// worker count) must survive.
pub fn accepted_load(l: &LoadSettings) {
    l.validate()
        .unwrap_or_else(|e| panic!("accepted settings fail validation: {e}"));
    assert!(l.effective_workers() >= 1);
    for p in &l.phases {
        assert!(!p.duration.is_zero(), "phase `{}` has no duration", p.name);
        let (f, t) = p.multiples();
        assert!(f.is_finite() && t.is_finite() && f >= 0.0 && t >= 0.0 && f + t > 0.0);
        assert!(!p.metric_name().contains('-'));
    }
    let total = l.total_duration();
    assert!(!total.is_zero());
    let w = windows(&l.phases, l.rate);
    assert_eq!(w.len(), l.phases.len());
    for pair in w.windows(2) {
        assert_eq!(pair[0].end_ns, pair[1].start_ns);
    }
    let mut s = Schedule::new(w);
    let end = s.end_ns();
    let mut last = 0;
    for _ in 0..64 {
        match s.next_op() {
            Some((_, at)) => {
                assert!(
                    at >= last && at < end,
                    "op at {at} (previous {last}, end {end})"
                );
                last = at;
            }
            None => break,
        }
    }
}

/// Parses profile text; an accepted profile must round-trip through TOML and keep a usable
/// `[load]` section.
fn check_profile(text: &str) {
    let origin = Path::new("profiles/fuzz.toml");
    match Profile::parse(text, "fuzz", origin) {
        Ok(p) => {
            assert_eq!(p.name, "fuzz");
            let again = toml::to_string(&p).expect("an accepted profile encodes as TOML");
            let back = Profile::parse(&again, "fuzz", origin)
                .unwrap_or_else(|e| panic!("an accepted profile does not read back: {e}\n{again}"));
            assert_eq!(
                serde_json::to_value(&back).expect("encodes"),
                serde_json::to_value(&p).expect("encodes"),
                "the profile changed on a round trip"
            );
            accepted_load(&perfcheck::load::settings_of(&p));
        }
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("profiles/fuzz.toml"), "{m}");
            assert_eq!(e.exit_code(), 2, "{m}");
        }
    }
}

/// Parses perfcheck.toml text; accepted thresholds must resolve to usable limits and the
/// settings must round-trip.
fn check_project(text: &str) {
    let path = Path::new("perfcheck.toml");
    match ProjectConfig::parse(text, path) {
        Ok(cfg) => {
            accepted_thresholds(&cfg.thresholds);
            assert!(!cfg.check.profile.trim().is_empty());
            let again = toml::to_string(&cfg).expect("accepted settings encode as TOML");
            let back = ProjectConfig::parse(&again, path)
                .unwrap_or_else(|e| panic!("accepted settings do not read back: {e}\n{again}"));
            assert_eq!(back.thresholds, cfg.thresholds);
            assert_eq!(
                serde_json::to_value(&back).expect("encodes"),
                serde_json::to_value(&cfg).expect("encodes")
            );
        }
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("perfcheck.toml"), "{m}");
            assert_eq!(e.exit_code(), 2, "{m}");
        }
    }
}

fn accepted_thresholds(t: &Thresholds) {
    t.validate()
        .unwrap_or_else(|e| panic!("accepted thresholds fail validation: {e}"));
    for n in NAMES {
        let l = t.resolve(&MetricName::parse(n).expect("a valid name"));
        assert!(l.warn <= l.fail, "{n}: {l:?}");
        assert!(
            l.warn.is_finite() && l.fail.is_finite() && l.noise.is_finite(),
            "{l:?}"
        );
        assert!(l.min_samples >= 2 && l.min_ns >= 0.0, "{l:?}");
    }
}

fn check_thresholds(text: &str) {
    match Thresholds::from_toml_str(text) {
        Ok(t) => accepted_thresholds(&t),
        Err(e) => assert!(e.to_string().starts_with("`thresholds"), "{e}"),
    }
}

/// A TOML document as a tree, mutated, and written back (`None` when TOML cannot write it).
fn mutate_toml(text: &str, muts: &[super::mutate::Mutation<toml::Value>]) -> Option<String> {
    let table: toml::Table = toml::from_str(text).expect("a valid document");
    let mut v = toml::Value::Table(table);
    apply(&mut v, muts);
    toml::to_string(&v).ok()
}

/// The `[thresholds]` table of [`PROJECT`] as a document of its own.
fn thresholds_text() -> String {
    let table: toml::Table = toml::from_str(PROJECT).expect("valid");
    toml::to_string(&table["thresholds"]).expect("encodes")
}

#[test]
fn the_valid_documents_are_accepted() {
    for text in PROFILES {
        let p = Profile::parse(text, "fuzz", Path::new("p.toml")).expect("a valid profile");
        check_profile(text);
        assert!(!p.workloads.is_empty());
    }
    let cfg = ProjectConfig::parse(PROJECT, Path::new("perfcheck.toml")).expect("valid");
    assert_eq!(cfg.thresholds.overrides.len(), 4);
    check_project(PROJECT);
    check_thresholds(&thresholds_text());
    Thresholds::from_toml_str(&thresholds_text()).expect("valid");
}

#[test]
fn every_prefix_of_the_valid_documents_parses_or_errs() {
    for text in PROFILES {
        prefixes(text).for_each(check_profile);
    }
    prefixes(PROJECT).for_each(check_project);
    prefixes(&thresholds_text()).for_each(check_thresholds);
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn profile_from_arbitrary_text(text in any::<String>()) {
        check_profile(&text);
    }

    #[test]
    fn profile_from_mutated_trees(
        which in 0..PROFILES.len(),
        muts in mutations(weird_toml()),
    ) {
        if let Some(text) = mutate_toml(PROFILES[which], &muts) {
            check_profile(&text);
        }
    }

    #[test]
    fn profile_from_edited_text(which in 0..PROFILES.len(), edits in text_edits()) {
        check_profile(&edit_text(PROFILES[which], &edits));
    }

    #[test]
    fn project_from_arbitrary_text(text in any::<String>()) {
        check_project(&text);
        check_thresholds(&text);
    }

    #[test]
    fn project_from_mutated_trees(muts in mutations(weird_toml())) {
        if let Some(text) = mutate_toml(PROJECT, &muts) {
            check_project(&text);
        }
        if let Some(text) = mutate_toml(&thresholds_text(), &muts) {
            check_thresholds(&text);
        }
    }

    #[test]
    fn project_from_edited_text(edits in text_edits()) {
        check_project(&edit_text(PROJECT, &edits));
        check_thresholds(&edit_text(&thresholds_text(), &edits));
    }
}
