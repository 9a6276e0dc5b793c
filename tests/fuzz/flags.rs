//! Command-line forms: metric names and patterns (`--metric`, threshold override keys),
//! `--mix`, `--phases`, `--rate` and `--duration`.

use perfcheck::config::load::{parse_positive_duration, parse_rate};
use perfcheck::load::{parse_mix, parse_phases, LoadSettings, Mix};
use perfcheck::metrics::{Measure, MetricName, MetricPattern};
use proptest::prelude::*;

use super::cases;
use super::configs::accepted_load;
use super::mutate::{edit_text, text_edits, weird_string};

const NAMES: &[&str] = &[
    "recall/vector_search/wall_ns",
    "recall/total/p99_ns",
    "mixed/other/cpu_ns",
    "load/ramp_up/error_rate",
    "load/total/heap_growth_bytes_per_hour",
    "consolidation/cluster/alloc_bytes",
];

const PATTERNS: &[&str] = &[
    "recall/*/alloc_bytes",
    "*/total/p99_ns",
    "*/*/*",
    "load/peak/*",
    "recall/vector_search/wall_ns",
];

fn check_name(s: &str) {
    match MetricName::parse(s) {
        Ok(n) => {
            assert_eq!(n.to_string(), s, "a parsed name prints back as given");
            assert_eq!(MetricName::new(n.workload(), n.stage(), n.measure()), Ok(n));
        }
        Err(e) => {
            assert_eq!(e.input, s);
            assert!(!e.message.is_empty());
        }
    }
}

fn check_pattern(s: &str) {
    match MetricPattern::parse(s) {
        Ok(p) => {
            assert_eq!(p.as_str(), s);
            assert_eq!(p.to_string(), s);
            // Filling each `*` with a valid part gives a name the pattern matches.
            let parts: Vec<&str> = s.split('/').collect();
            assert_eq!(parts.len(), 3);
            let fill = |part: &str, any: &str| {
                if part == "*" {
                    any.to_owned()
                } else {
                    part.to_owned()
                }
            };
            let name = format!(
                "{}/{}/{}",
                fill(parts[0], "w"),
                fill(parts[1], "s"),
                fill(parts[2], "wall_ns")
            );
            let n = MetricName::parse(&name)
                .unwrap_or_else(|e| panic!("pattern `{s}` filled in as `{name}`: {e}"));
            assert!(p.matches(&n), "`{s}` does not match `{name}`");
            let (exact, _) = p.specificity();
            assert_eq!(
                usize::from(exact),
                parts.iter().filter(|x| **x != "*").count()
            );
        }
        Err(e) => assert_eq!(e.input, s),
    }
}

fn mix_text(m: &Mix) -> String {
    m.kinds()
        .iter()
        .map(|(k, w)| format!("{k}={w}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The engine's kinds: what `--mix` is checked against before it replaces `[mix]`.
fn engine_kinds() -> Mix {
    Mix::new([("recall", 1), ("remember", 1), ("consolidation", 1)])
}

fn check_mix(s: &str) {
    match parse_mix(s) {
        Ok(m) => {
            assert!(m.total() > 0);
            let back = parse_mix(&mix_text(&m)).expect("a printed mix parses");
            assert_eq!(back, m);
            match m.fill(&engine_kinds()) {
                Ok(full) => {
                    assert_eq!(full.names(), engine_kinds().names());
                    assert_eq!(full.total(), m.total());
                }
                Err(e) => assert!(e.contains("expected KIND=WEIGHT"), "{s:?}: {e}"),
            }
        }
        Err(e) => assert!(e.contains("expected KIND=WEIGHT"), "{s:?}: {e}"),
    }
}

fn check_phases(s: &str) {
    match parse_phases(s) {
        Ok(phases) => {
            assert!(!phases.is_empty());
            for p in &phases {
                assert!(
                    !p.duration.is_zero(),
                    "{s:?}: phase `{}` has no duration",
                    p.name
                );
                let (f, t) = p.multiples();
                assert!(f.is_finite() && t.is_finite() && f >= 0.0 && t >= 0.0 && f + t > 0.0);
            }
            // What `load` does next: the phases replace the profile's and are validated.
            let settings = LoadSettings {
                phases,
                ..LoadSettings::default()
            };
            if settings.validate().is_ok() {
                accepted_load(&settings);
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
}

fn check_rate(s: &str) {
    if let Ok(r) = parse_rate(s) {
        assert!(
            r.is_finite() && r > 0.0 && r <= 10_000_000.0,
            "{s:?} gave {r}"
        );
    }
}

fn check_duration(s: &str) {
    match parse_positive_duration(s) {
        Ok(d) => assert!(!d.is_zero(), "{s:?}"),
        Err(e) => assert!(e.contains(&format!("`{s}`")), "{e}"),
    }
}

/// A `--phases` value built from plausible and odd pieces; mostly plausible, so that whole
/// lists get past the first check and reach what only several valid phases together can break
/// (sums of durations, duplicate names).
fn phases_spec() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => prop::sample::select(vec!["ramp-up", "peak", "stress", "p_2", "a", "b", "c"])
            .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["total", "Peak", "", "-a"]).prop_map(str::to_owned),
        1 => weird_string(),
    ];
    let duration = prop_oneof![
        3 => prop::sample::select(vec![
            "10s", "1ms", "1ns", "0s", "-1s", "1h 30m", "1y", "18446744073709551615s",
            "18446744073709551616s", "99999999999999h", "584942417355y", "200days", "",
        ])
        .prop_map(str::to_owned),
        2 => any::<u64>().prop_map(|n| format!("{n}s")),
        1 => any::<u64>().prop_map(|n| format!("{n}ns")),
        1 => weird_string(),
    ];
    let rate = prop_oneof![
        3 => prop::sample::select(vec![
            "1", "1.5", "150%", "0.1..1", "1..0.1", "0..0", "0..1", "-1", "NaN", "inf", "1e309",
            "1e308", "1e300..1e300", "%", "..", "1..", "..1", "1....2", "1e-320", "",
        ])
        .prop_map(str::to_owned),
        1 => any::<f64>().prop_map(|x| x.to_string()),
        1 => weird_string(),
    ];
    let sep = prop::sample::select(vec!["=", "@", "=", "@", "", "=="]);
    let phase = (name, sep.clone(), duration, sep, rate).prop_map(|(n, s1, d, s2, r)| {
        // Mostly the real separators, sometimes the odd one.
        let s1 = if s1 == "@" { "=" } else { s1 };
        let s2 = if s2 == "=" { "@" } else { s2 };
        format!("{n}{s1}{d}{s2}{r}")
    });
    (
        prop::collection::vec(phase, 0..6),
        prop::sample::select(vec![",", ", ", ",,"]),
    )
        .prop_map(|(ps, sep)| ps.join(sep))
}

/// A `--mix` value built from plausible and odd pieces.
fn mix_spec() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        prop::sample::select(vec![
            "recall",
            "remember",
            "consolidation",
            "Recall",
            "",
            "mixed"
        ])
        .prop_map(str::to_owned),
        weird_string(),
    ];
    let weight = prop_oneof![
        any::<u32>().prop_map(|w| w.to_string()),
        prop::sample::select(vec![
            "0",
            "4294967296",
            "-1",
            "",
            " 5 ",
            "1e3",
            "+7",
            "0x10"
        ])
        .prop_map(str::to_owned),
        weird_string(),
    ];
    let part = (kind, prop::sample::select(vec!["=", "", "=="]), weight)
        .prop_map(|(k, eq, w)| format!("{k}{eq}{w}"));
    (
        prop::collection::vec(part, 0..5),
        prop::sample::select(vec![",", ", ", ",,", ";"]),
    )
        .prop_map(|(ps, sep)| ps.join(sep))
}

/// A valid name or pattern, damaged.
fn edited(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    (prop::sample::select(valid), text_edits()).prop_map(|(v, e)| edit_text(v, &e))
}

/// Three parts from valid and odd pieces.
fn assembled() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        prop::sample::select(vec![
            "recall", "total", "*", "wall_ns", "p99_ns", "a1_", "_a", "1a"
        ])
        .prop_map(str::to_owned),
        prop::sample::select(Measure::ALL.to_vec()).prop_map(|m| m.to_string()),
        weird_string(),
    ];
    prop::collection::vec(part, 0..5).prop_map(|p| p.join("/"))
}

#[test]
fn the_valid_forms_are_accepted() {
    for n in NAMES {
        assert_eq!(MetricName::parse(n).expect("valid").to_string(), *n);
        check_name(n);
    }
    for p in PATTERNS {
        MetricPattern::parse(p).expect("valid");
        check_pattern(p);
    }
    check_mix("recall=80,remember=15,consolidation=5");
    parse_phases("ramp-up=10s@0.1..1,peak=60s@1,stress=20s@150%").expect("valid");
    check_phases("ramp-up=10s@0.1..1,peak=60s@1,stress=20s@150%");
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn names_and_patterns_from_arbitrary_text(s in any::<String>()) {
        check_name(&s);
        check_pattern(&s);
    }

    #[test]
    fn names_and_patterns_from_pieces(s in prop_oneof![edited(NAMES), edited(PATTERNS), assembled()]) {
        check_name(&s);
        check_pattern(&s);
    }

    #[test]
    fn mix_from_arbitrary_text(s in any::<String>()) {
        check_mix(&s);
    }

    #[test]
    fn mix_from_pieces(s in mix_spec()) {
        check_mix(&s);
    }

    #[test]
    fn phases_from_arbitrary_text(s in any::<String>()) {
        check_phases(&s);
    }

    #[test]
    fn phases_from_pieces(s in phases_spec()) {
        check_phases(&s);
    }

    #[test]
    fn rate_and_duration_from_text(s in prop_oneof![any::<String>(), weird_string(), "[0-9.eE+-]{0,30}[a-z%]{0,3}"]) {
        check_rate(&s);
        check_duration(&s);
    }
}
