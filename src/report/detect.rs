//! What a check could have detected ([`Mde`]), as table cells and a one-line summary.
//!
//! The figure shown is the warn-level MDE: the smallest true regression the gate would flag
//! with 80% power, given the noise this check measured.

use crate::compare::mde::{Binding, POWER};
use crate::compare::{Comparison, Mde, Status, Verdict};
use crate::metrics::Measure;
use crate::report::format::trim;

/// A relative effect without sign, to two significant digits: `8.7%`, `24%`, `130%`.
fn pct(x: f64) -> String {
    let p = 100.0 * x;
    if p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// `None` when the verdict has no MDE because nothing is gated (not gated, new, missing);
/// `Some(None)` when it is gated but its MDE is unknown (too few data, one value per run).
fn lookup(v: &Verdict) -> Option<Option<&Mde>> {
    match (&v.mde, v.status) {
        (Some(m), _) => Some(Some(m)),
        (None, Status::Ignored | Status::New | Status::Missing) => None,
        (None, _) => Some(None),
    }
}

/// The markdown cell: `≥ 24% (noise)`, `≥ 8.7% (threshold)`, `exact (1%)`, `unknown`, `-`.
pub fn md_cell(v: &Verdict) -> String {
    match lookup(v) {
        Some(Some(m)) if m.exact => match m.warn {
            Some(w) => format!("exact ({}%)", trim(100.0 * w)),
            None => "exact".into(),
        },
        Some(Some(m)) => match m.warn {
            Some(w) => format!("≥ {} ({})", pct(w), binding(m.binds)),
            None => "-".into(),
        },
        Some(None) => "unknown".into(),
        None => "-".into(),
    }
}

/// The terminal cell, narrower: `≥ 24%`, `exact`, `unknown`, `-`.
pub fn terminal_cell(v: &Verdict) -> String {
    match lookup(v) {
        Some(Some(m)) if m.exact => "exact".into(),
        Some(Some(m)) => m.warn.map_or("-".into(), |w| format!("≥ {}", pct(w))),
        Some(None) => "unknown".into(),
        None => "-".into(),
    }
}

fn binding(b: Binding) -> &'static str {
    match b {
        Binding::Noise => "noise",
        Binding::Threshold => "threshold",
    }
}

/// One measure's gated statistical verdicts: (warn-level MDE, metric) and bindings.
struct Group {
    measure: Measure,
    exact: bool,
    found: Vec<(f64, String)>,
    noise_bound: usize,
}

/// The whole check in one line, or `None` when no verdict states an MDE: `Could detect (80% power):
/// wall_ns ≥ 11% (median of 14; worst ≥ 24% on recall/vector_search/wall_ns), limited by
/// noise · allocs, alloc_bytes: exact · unknown for 2 metrics`. `code` renders a metric name
/// for the output (a markdown code span, or escaped terminal text).
pub fn summary(c: &Comparison, code: &dyn Fn(&str) -> String) -> Option<String> {
    let mut groups: Vec<Group> = Vec::new();
    let mut unknown = 0;
    for v in &c.verdicts {
        let m = match lookup(v) {
            None => continue,
            Some(None) => {
                unknown += 1;
                continue;
            }
            Some(Some(m)) => m,
        };
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
        if !m.exact {
            g.exact = false;
            if let Some(w) = m.warn {
                g.found.push((w, v.metric.to_string()));
                g.noise_bound += usize::from(m.binds == Binding::Noise);
            }
        }
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
    if unknown > 0 {
        let s = if unknown == 1 { "" } else { "s" };
        parts.push(format!("unknown for {unknown} metric{s}"));
    }
    // Without a single known MDE (nothing gated, or a check.json from before MDEs) there is
    // nothing to state.
    if groups.is_empty() {
        return None;
    }
    Some(format!(
        "Could detect ({}% power): {}",
        trim(100.0 * POWER),
        parts.join(" · ")
    ))
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
        return format!("{name} ≥ {} ({}), {limited}", pct(*worst), code(worst_name));
    }
    let median = if n % 2 == 1 {
        found[n / 2].0
    } else {
        0.5 * (found[n / 2 - 1].0 + found[n / 2].0)
    };
    format!(
        "{name} ≥ {} (median of {n}; worst ≥ {} on {}), {limited}",
        pct(median),
        pct(*worst),
        code(worst_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_read_with_two_digits() {
        assert_eq!(pct(0.0871), "8.7%");
        assert_eq!(pct(0.2449), "24%");
        assert_eq!(pct(1.3), "130%");
        assert_eq!(pct(0.005), "0.5%");
    }
}
