//! What a check could have detected ([`Mde`]), as table cells and a one-line summary.
//!
//! The figure shown is the warn-level MDE: the smallest true regression the gate would flag
//! with 80% power, given the noise this check measured.

use crate::compare::mde::{Binding, Unknown, POWER};
use crate::compare::{Comparison, Mde, Verdict};
use crate::metrics::Measure;
use crate::report::format::trim;

/// Beyond this the figure only says "nothing short of a doubling": paired checks of 2-3
/// rounds take t quantiles of 1-2 degrees of freedom (64 at 99% for one), which turn a few
/// percent of noise into MDEs of thousands of percent.
const SHOWN_MAX: f64 = 1.0;

/// A smallest detectable effect: `≥ 8.7%`, `≥ 24%`, or `> 100%` beyond [`SHOWN_MAX`].
fn at_least(x: f64) -> String {
    if x > SHOWN_MAX {
        format!("> {}%", trim(100.0 * SHOWN_MAX))
    } else {
        format!("≥ {}", pct(x))
    }
}

/// A relative effect without sign, to two significant digits: `8.7%`, `24%`, `130%`.
fn pct(x: f64) -> String {
    let p = 100.0 * x;
    if p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// The markdown cell: `≥ 24% (noise)`, `≥ 8.7% (threshold)`, `exact (1%)`, `unknown`, or `-`
/// when nothing is gated (not gated, new, missing).
pub fn md_cell(v: &Verdict) -> String {
    match &v.mde {
        Some(Mde::Statistical(e)) => match e.warn {
            Some(w) => format!("{} ({})", at_least(w), binding(e.binds)),
            None => "never".into(),
        },
        Some(Mde::Exact { warn, .. }) => format!("exact ({}%)", trim(100.0 * warn)),
        Some(Mde::Unknown { .. }) => "unknown".into(),
        None => "-".into(),
    }
}

/// The terminal cell, narrower: `≥ 24%`, `exact`, `unknown`, `-`.
pub fn terminal_cell(v: &Verdict) -> String {
    match &v.mde {
        Some(Mde::Statistical(e)) => e.warn.map_or("never".into(), at_least),
        Some(Mde::Exact { .. }) => "exact".into(),
        Some(Mde::Unknown { .. }) => "unknown".into(),
        None => "-".into(),
    }
}

fn binding(b: Binding) -> &'static str {
    match b {
        Binding::Noise => "noise",
        Binding::Threshold => "threshold",
    }
}

/// The known MDEs of one measure: exact, or (warn-level MDE, metric) with how many of them
/// the noise limits.
struct Group {
    measure: Measure,
    exact: bool,
    found: Vec<(f64, String)>,
    noise_bound: usize,
}

/// The whole check in one line, or `None` when no verdict states an MDE: `Could detect (80%
/// power): wall_ns ≥ 11% (median of 14; worst ≥ 24% on recall/vector_search/wall_ns),
/// limited by noise · allocs, alloc_bytes: exact · unknown for 2 metrics (too few data)`.
/// `code` renders a metric name for the output (a markdown code span, or terminal text).
pub fn summary(c: &Comparison, code: &dyn Fn(&str) -> String) -> Option<String> {
    let mut groups: Vec<Group> = Vec::new();
    let mut unknown: Vec<Unknown> = Vec::new();
    for v in &c.verdicts {
        let Some(m) = &v.mde else { continue };
        if let Mde::Unknown { reason } = m {
            unknown.push(*reason);
            continue;
        }
        let measure = v.metric.measure();
        let i = match groups.iter().position(|g| g.measure == measure) {
            Some(i) => i,
            None => {
                groups.push(Group {
                    measure,
                    exact: true,
                    found: Vec::new(),
                    noise_bound: 0,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        if let Mde::Statistical(e) = m {
            g.exact = false;
            if let Some(w) = e.warn {
                g.found.push((w, v.metric.to_string()));
                g.noise_bound += usize::from(e.binds == Binding::Noise);
            }
        }
    }
    // Without a single known MDE (nothing gated, or a check.json from before MDEs) there is
    // nothing to state.
    if groups.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = groups
        .iter()
        .filter(|g| !g.exact && !g.found.is_empty())
        .map(|g| statistical(g, code))
        .collect();
    let exact: Vec<&str> = groups
        .iter()
        .filter(|g| g.exact)
        .map(|g| g.measure.name())
        .collect();
    if !exact.is_empty() {
        parts.push(format!("{}: exact", exact.join(", ")));
    }
    if !unknown.is_empty() {
        let n = unknown.len();
        let mut why: Vec<&str> = Vec::new();
        for r in &unknown {
            let w = reason(*r);
            if !why.contains(&w) {
                why.push(w);
            }
        }
        let s = if n == 1 { "" } else { "s" };
        parts.push(format!("unknown for {n} metric{s} ({})", why.join(", ")));
    }
    let few_rounds = c
        .verdicts
        .iter()
        .filter_map(|v| match &v.mde {
            Some(Mde::Statistical(e)) => e.df,
            _ => None,
        })
        .min()
        .filter(|df| *df < FEW_DF);
    if let Some(df) = few_rounds {
        parts.push(format!(
            "{} rounds resolve little (t quantiles of {df} degree{} of freedom): use 5 or more",
            df + 1,
            if df == 1 { "" } else { "s" }
        ));
    }
    Some(format!(
        "Could detect ({}% power): {}",
        trim(100.0 * POWER),
        parts.join(" · ")
    ))
}

/// Paired tests with fewer degrees of freedom than this get a hint to add rounds.
const FEW_DF: usize = 4;

fn reason(r: Unknown) -> &'static str {
    match r {
        Unknown::TooFewData => "too few data",
        Unknown::SingleValue => "one value per run",
        Unknown::NoEstimate => "no noise estimate",
    }
}

/// `wall_ns ≥ 11% (median of 14; worst ≥ 24% on x), limited by noise`.
fn statistical(g: &Group, code: &dyn Fn(&str) -> String) -> String {
    let mut found = g.found.clone();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = found.len();
    let name = g.measure.name();
    let limited = match g.noise_bound {
        k if k == n => "limited by noise".to_owned(),
        0 => "limited by the thresholds".to_owned(),
        k => format!("limited by noise for {k} of {n}"),
    };
    let (worst, worst_name) = &found[n - 1];
    if n == 1 {
        return format!(
            "{name} {} ({}), {limited}",
            at_least(*worst),
            code(worst_name)
        );
    }
    let median = if n % 2 == 1 {
        found[n / 2].0
    } else {
        0.5 * (found[n / 2 - 1].0 + found[n / 2].0)
    };
    format!(
        "{name} {} (median of {n}; worst {} on {}), {limited}",
        at_least(median),
        at_least(*worst),
        code(worst_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::mde::Effects;
    use crate::compare::{compare, Thresholds};
    use crate::metrics::{Metric, MetricName, MetricSet};

    /// A comparison of three stages' wall time and one allocation count, MDEs set by hand.
    fn check(mdes: [Option<Mde>; 3]) -> Comparison {
        let names = ["w/a/wall_ns", "w/b/wall_ns", "w/c/wall_ns", "w/a/allocs"];
        let set = MetricSet {
            metrics: names
                .iter()
                .map(|n| Metric::from_samples(MetricName::parse(n).unwrap(), vec![50_000; 40]))
                .collect(),
            ..MetricSet::default()
        };
        let mut c = compare(std::slice::from_ref(&set), &set, &Thresholds::default(), 1);
        for (v, m) in c.verdicts.iter_mut().zip(mdes) {
            v.mde = m;
        }
        c
    }

    fn stat(warn: Option<f64>, binds: Binding) -> Option<Mde> {
        Some(Mde::Statistical(Effects {
            power: POWER,
            statistical: 0.1,
            warn,
            fail: warn,
            binds,
            df: Some(9),
        }))
    }

    #[test]
    fn the_summary_names_median_worst_and_what_limits_them() {
        let c = check([
            stat(Some(0.09), Binding::Threshold),
            stat(Some(0.24), Binding::Noise),
            stat(Some(0.11), Binding::Threshold),
        ]);
        let line = summary(&c, &|m| format!("`{m}`")).unwrap();
        assert_eq!(
            line,
            "Could detect (80% power): wall_ns ≥ 11% (median of 3; worst ≥ 24% on \
             `w/b/wall_ns`), limited by noise for 1 of 3 · allocs: exact"
        );
        assert_eq!(md_cell(&c.verdicts[1]), "≥ 24% (noise)");
        assert_eq!(md_cell(&c.verdicts[0]), "≥ 9.0% (threshold)");
        assert_eq!(terminal_cell(&c.verdicts[0]), "≥ 9.0%");
        assert_eq!(md_cell(&c.verdicts[3]), "exact (1%)");
        assert_eq!(terminal_cell(&c.verdicts[3]), "exact");
    }

    #[test]
    fn unknown_and_uncrossable_effects_are_said_so() {
        let c = check([
            stat(Some(0.5), Binding::Noise),
            Some(Mde::unknown(Unknown::TooFewData)),
            stat(None, Binding::Noise),
        ]);
        let line = summary(&c, &|m| m.to_owned()).unwrap();
        assert_eq!(
            line,
            "Could detect (80% power): wall_ns ≥ 50% (w/a/wall_ns), limited by noise · allocs: \
             exact · unknown for 1 metric (too few data)"
        );
        assert_eq!(md_cell(&c.verdicts[1]), "unknown");
        assert_eq!(md_cell(&c.verdicts[2]), "never");
        let mut none = check([None, None, None]);
        none.verdicts[3].mde = None;
        assert_eq!(summary(&none, &|m| m.to_owned()), None);
        assert_eq!(md_cell(&none.verdicts[0]), "-");
    }

    #[test]
    fn effects_read_with_two_digits() {
        assert_eq!(pct(0.0871), "8.7%");
        assert_eq!(pct(0.2449), "24%");
        assert_eq!(pct(1.3), "130%");
        assert_eq!(at_least(0.97), "≥ 97%");
        assert_eq!(at_least(1.3), "> 100%");
        assert_eq!(pct(0.005), "0.5%");
    }

    #[test]
    fn a_check_of_two_rounds_says_to_add_rounds() {
        let two_rounds = |warn: f64| {
            Some(Mde::Statistical(Effects {
                power: POWER,
                statistical: warn,
                warn: Some(warn),
                fail: Some(warn),
                binds: Binding::Noise,
                df: Some(1),
            }))
        };
        let c = check([
            two_rounds(24.0),
            two_rounds(0.8),
            stat(Some(0.1), Binding::Noise),
        ]);
        let line = summary(&c, &|m| m.to_owned()).unwrap();
        assert_eq!(
            line,
            "Could detect (80% power): wall_ns ≥ 80% (median of 3; worst > 100% on \
             w/a/wall_ns), limited by noise · allocs: exact · 2 rounds resolve little (t \
             quantiles of 1 degree of freedom): use 5 or more"
        );
        assert_eq!(md_cell(&c.verdicts[0]), "> 100% (noise)");
        assert_eq!(terminal_cell(&c.verdicts[0]), "> 100%");
    }
}
