//! The functions behind flagged stages, for check.md and the terminal: a one-line headline
//! per stage and a function table, from [`crate::compare::attribution`].

use std::fmt::Write as _;

use crate::compare::attribution::{short_name, FunctionDelta, StageAttribution};
use crate::compare::Comparison;
use crate::report::escape;
use crate::report::format::group_digits;

/// Attributed stages shown in full (the rest get their headline only).
const SHOWN: usize = 3;

fn signed_count(x: f64) -> String {
    let r = x.round();
    let sign = if r > 0.0 {
        "+"
    } else if r < 0.0 {
        "-"
    } else {
        "±"
    };
    format!("{sign}{}", group_digits(r.abs() as u64))
}

fn stage_change(a: &StageAttribution) -> String {
    if a.stage_base > 0.0 {
        super::check::percent(a.stage_head / a.stage_base - 1.0)
    } else {
        "new".into()
    }
}

fn delta_change(d: &FunctionDelta) -> String {
    match d.change {
        Some(c) => super::check::percent(c),
        None if d.head > 0.0 => "new".into(),
        None => "-".into(),
    }
}

/// `recall/vector_search +3.1% instructions, mostly `IvfIndex::search` (+2,950 instr/op)`,
/// markdown; `code` formats a function name (a code span in markdown).
fn line(a: &StageAttribution, code: &dyn Fn(&str) -> String) -> String {
    let mut s = format!(
        "{}/{} {} instructions",
        a.workload,
        a.stage,
        stage_change(a)
    );
    if let Some(top) = &a.top {
        let _ = write!(
            s,
            ", mostly {} ({} instr/op)",
            code(&short_name(&top.function)),
            signed_count(top.delta)
        );
    }
    s
}

/// One headline line per attributed stage, markdown (empty without attribution).
pub fn markdown_headlines(c: &Comparison) -> String {
    let mut out = String::new();
    for a in &c.attribution {
        let name = |f: &str| escape::md_code(f);
        let stage = format!("{}/{}", a.workload, a.stage);
        let text = line(a, &name).replacen(&stage, &escape::md_code(&stage), 1);
        let _ = writeln!(out, "- {text}");
    }
    for d in &c.crosscheck {
        let _ = writeln!(
            out,
            "- {}: {} (wall time {} … {})",
            escape::md_code(&d.stage),
            escape::md_text(&d.reading),
            super::check::percent(d.wall_low),
            super::check::percent(d.wall_high)
        );
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The "Where it came from" section of check.md: per attributed stage, its function table
/// and a link to its differential flamegraph.
pub fn markdown_section(c: &Comparison) -> String {
    if c.attribution.is_empty() {
        return String::new();
    }
    let mut out = String::from("#### Where it came from (instructions per operation)\n\n");
    for a in c.attribution.iter().take(SHOWN) {
        let _ = write!(
            out,
            "{}: {} → {} instr/op ({})",
            escape::md_code(&format!("{}/{}", a.workload, a.stage)),
            group_digits(a.stage_base.round() as u64),
            group_digits(a.stage_head.round() as u64),
            stage_change(a)
        );
        // Only names perfcheck made (a record read back could hold anything).
        let safe = |f: &str| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if let Some(f) = a.flamegraph.as_deref().filter(|f| safe(f)) {
            let _ = write!(
                out,
                " · [differential flamegraph]({f}) (red grew, blue shrank)"
            );
        }
        out.push_str("\n\n");
        if a.functions.is_empty() {
            out.push_str("No function changed by more than half an instruction per operation.\n\n");
            continue;
        }
        out.push_str("| function | base | head | change | |\n|---|--:|--:|--:|--:|\n");
        for d in &a.functions {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                escape::md_code_cell(&short_name(&d.function)),
                group_digits(d.base.round() as u64),
                group_digits(d.head.round() as u64),
                signed_count(d.delta),
                delta_change(d)
            );
        }
        out.push('\n');
    }
    out.push_str(
        "Inclusive instructions per operation (the function and everything it calls), from \
         callgrind passes of base and head; callers of the whole stage are left out. \
         `callgrind-<workload>.out` beside this report opens in kcachegrind.\n\n",
    );
    out
}

/// Terminal lines, one per attributed stage.
pub fn terminal(c: &Comparison) -> String {
    let mut out = String::new();
    for a in &c.attribution {
        let name = |f: &str| escape::terminal(f);
        let _ = writeln!(out, "  where: {}", line(a, &name));
    }
    for d in &c.crosscheck {
        let _ = writeln!(
            out,
            "  note: {}: {} (wall time {} … {})",
            escape::terminal(&d.stage),
            escape::terminal(&d.reading),
            super::check::percent(d.wall_low),
            super::check::percent(d.wall_high)
        );
    }
    out
}
