//! A calibration for people: the terminal summary and calibration.md, both from the
//! [`Calibration`] that calibration.json holds.

use std::fmt::Write;

use super::tally::{Calibration, VariantTally};
use crate::compare::attribution::short_name;
use crate::report::escape;

/// Flagged metrics listed per variant.
const METRICS_SHOWN: usize = 8;

fn ratio(n: usize, of: usize) -> String {
    format!("{n}/{of}")
}

fn planted_line(v: &VariantTally) -> Option<String> {
    if v.planted.is_empty() {
        return None;
    }
    let top = v
        .top_functions
        .first()
        .map(|t| format!("{} ({}x)", short_name(&t.function), t.count))
        .unwrap_or_else(|| "none".into());
    Some(format!(
        "top attributed function: {top}; the planted {} in {}",
        v.planted.join(", "),
        ratio(v.planted_named, v.checks)
    ))
}

/// The terminal summary: one block per variant, then the false-alarm rate.
pub fn terminal(c: &Calibration) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "perfcheck calibrate{} | {} rounds per check | instructions {} | {}",
        if c.complete { "" } else { " (partial)" },
        c.rounds,
        if c.instructions { "on" } else { "off" },
        c.machine.as_deref().unwrap_or("no run yet")
    );
    for v in &c.variants {
        let _ = writeln!(
            s,
            "\n{:<22} flagged {:>5}  failed {:>5}  on instructions {:>5}",
            escape::terminal(&v.name),
            ratio(v.flagged, v.checks),
            ratio(v.failed, v.checks),
            ratio(v.flagged_instructions, v.checks)
        );
        for m in v.metrics.iter().take(METRICS_SHOWN) {
            let _ = writeln!(
                s,
                "  {:<44} {:>5}  (fail {}, warn {})",
                escape::terminal(&m.metric),
                ratio(m.fail + m.warn, v.checks),
                m.fail,
                m.warn
            );
        }
        if let Some(line) = planted_line(v) {
            let _ = writeln!(s, "  {}", escape::terminal(&line));
        }
    }
    if let Some((n, of)) = c.false_alarms() {
        let _ = writeln!(
            s,
            "\nfalse alarms (comment-only checks that flagged anything): {}",
            ratio(n, of)
        );
    }
    s
}

/// calibration.md: the same as a table, with each variant's flagged metrics.
pub fn markdown(c: &Calibration) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### perfcheck calibration{}\n\nHead {} · {} rounds per check · {} checks planned · \
         instructions {} · machine {}\n",
        if c.complete { "" } else { " (partial)" },
        escape::md_code(crate::git::short_sha(&c.head)),
        c.rounds,
        c.checks_planned,
        if c.instructions { "on" } else { "off" },
        escape::md_code(c.machine.as_deref().unwrap_or("none"))
    );
    let _ = writeln!(
        s,
        "| variant | checks | flagged | failed | on instructions | most flagged metric | top function |\n|---|---|---|---|---|---|---|"
    );
    for v in &c.variants {
        let metric = v
            .metrics
            .first()
            .map(|m| format!("{} {}", escape::md_code(&m.metric), m.fail + m.warn))
            .unwrap_or_else(|| "none".into());
        let top = match v.top_functions.first() {
            Some(t) if !v.planted.is_empty() => format!(
                "{} ({} of {} planted)",
                escape::md_code(&short_name(&t.function)),
                v.planted_named,
                v.checks
            ),
            Some(t) => escape::md_code(&short_name(&t.function)),
            None => "none".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {metric} | {top} |",
            escape::md_text(&v.name),
            v.checks,
            v.flagged,
            v.failed,
            v.flagged_instructions
        );
    }
    if let Some((n, of)) = c.false_alarms() {
        let _ = writeln!(
            s,
            "\nFalse alarms (comment-only checks that flagged anything): {n}/{of}."
        );
    }
    for v in c.variants.iter().filter(|v| !v.metrics.is_empty()) {
        let _ = writeln!(s, "\n#### {}\n", escape::md_text(&v.name));
        if !v.description.is_empty() {
            let _ = writeln!(s, "{}\n", escape::md_text(&v.description));
        }
        for m in &v.metrics {
            let _ = writeln!(
                s,
                "- {}: {}/{} (fail {}, warn {})",
                escape::md_code(&m.metric),
                m.fail + m.warn,
                v.checks,
                m.fail,
                m.warn
            );
        }
    }
    s
}
