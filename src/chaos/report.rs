//! Chaos results in words: a log line per scenario, the terminal table, and `chaos.md`.

use std::fmt::Write;
use std::path::PathBuf;

use super::{ChaosReport, ScenarioResult};
use crate::report::escape;
use crate::report::format::{duration_ns, group_digits};

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "-".into(),
    }
}

fn ns(v: u64) -> String {
    duration_ns(v as f64)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn writes(s: &ScenarioResult) -> (String, String) {
    match &s.writes {
        Some(w) => (group_digits(w.lost), group_digits(w.duplicated)),
        None => ("n/a".into(), "n/a".into()),
    }
}

/// `detect` cell: `-` becomes "not seen" (no client noticed the fault).
fn detect(s: &ScenarioResult) -> String {
    match s.figures.detect_ms {
        Some(_) => ms(s.figures.detect_ms),
        None => "not seen".into(),
    }
}

fn recover(s: &ScenarioResult) -> String {
    match s.figures.recovery_ms {
        Some(_) => ms(s.figures.recovery_ms),
        None => "NOT RECOVERED".into(),
    }
}

/// One line for the progress log after a scenario.
pub fn scenario_line(s: &ScenarioResult) -> String {
    let f = &s.figures;
    let (lost, dup) = writes(s);
    format!(
        "  {}: {} answered during the fault ({} degraded, {} failed of {}), detected {}, recovered {}, p99 {} -> {} -> {}, lost {lost}, duplicated {dup}{}",
        s.name,
        pct(f.fault.success_rate),
        group_digits(f.fault.degraded),
        group_digits(f.fault.failed),
        group_digits(f.fault.ops),
        detect(s),
        recover(s),
        ns(f.clean.p99_ns),
        ns(f.fault.p99_ns),
        ns(f.after.p99_ns),
        if s.passed() { "" } else { " - FAILED" }
    )
}

/// The report as text for the terminal.
pub fn render(r: &ChaosReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>8} {:>8} {:>10} {:>13} {:>9} {:>9} {:>9} {:>5} {:>5}  verdict",
        "scenario",
        "ops",
        "answered",
        "degraded",
        "detect",
        "recover",
        "p99 clean",
        "p99 fault",
        "p99 after",
        "lost",
        "dup"
    );
    for s in &r.scenarios {
        let f = &s.figures;
        let (lost, dup) = writes(s);
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>8} {:>10} {:>13} {:>9} {:>9} {:>9} {:>5} {:>5}  {}",
            escape::terminal(&s.name),
            group_digits(f.fault.ops),
            pct(f.fault.success_rate),
            pct(f.fault.degraded_rate),
            detect(s),
            recover(s),
            ns(f.clean.p99_ns),
            ns(f.fault.p99_ns),
            ns(f.after.p99_ns),
            lost,
            dup,
            if s.passed() { "ok" } else { "FAILED" }
        );
    }
    for s in r.scenarios.iter().filter(|s| !s.passed()) {
        for p in &s.problems {
            let _ = writeln!(
                out,
                "  {}: {}",
                escape::terminal(&s.name),
                escape::terminal(p)
            );
        }
    }
    let rec = &r.reconciliation;
    if rec.ok() {
        let _ = writeln!(
            out,
            "reconciliation: ok{}",
            if rec.summary.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape::terminal(&rec.summary))
            }
        );
    } else {
        for p in &rec.problems {
            let _ = writeln!(out, "reconciliation: {}", escape::terminal(p));
        }
    }
    out
}

/// `chaos.md`: the verdict first, the table, then per scenario what happened and its chart.
pub fn markdown(r: &ChaosReport, charts: &[PathBuf]) -> String {
    let mut md = String::new();
    let failed: Vec<&ScenarioResult> = r.scenarios.iter().filter(|s| !s.passed()).collect();
    let c = &r.chaos;
    let _ = writeln!(md, "# perfcheck chaos: {}\n", escape::md_text(&r.run_id));
    if failed.is_empty() && r.reconciliation.ok() {
        let _ = writeln!(
            md,
            "**Passed**: {} scenarios recovered, no acknowledged write lost or duplicated.\n",
            r.scenarios.len()
        );
    } else {
        let _ = writeln!(
            md,
            "**Failed**: {}{}.\n",
            failed
                .iter()
                .map(|s| escape::md_code(&s.name))
                .collect::<Vec<_>>()
                .join(", "),
            if r.reconciliation.ok() {
                ""
            } else {
                "; the counts do not reconcile"
            }
        );
    }
    let _ = writeln!(
        md,
        "Profile {}, {} ops/s offered by {} workers. Each scenario: {} clean, {} with the fault, \
         {} to recover. Recovered = a full {} with p99 <= {} and at most {} of operations failed \
         or degraded.\n",
        escape::md_code(&r.profile),
        r.rate,
        r.workers,
        humantime::format_duration(c.clean),
        humantime::format_duration(c.fault),
        humantime::format_duration(c.recovery),
        humantime::format_duration(c.slo.window),
        humantime::format_duration(c.slo.p99),
        pct(c.slo.failure_rate),
    );
    md.push_str(
        "| scenario | answered during fault | degraded | failed | detect | recover | p99 clean | p99 fault | p99 after | lost | duplicated |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in &r.scenarios {
        let f = &s.figures;
        let (lost, dup) = writes(s);
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} of {} | {} | {} | {} | {} | {} | {lost} | {dup} |",
            escape::md_code_cell(&s.name),
            if s.passed() { "" } else { " **FAILED**" },
            pct(f.fault.success_rate),
            pct(f.fault.degraded_rate),
            group_digits(f.fault.failed),
            group_digits(f.fault.ops),
            detect(s),
            recover(s),
            ns(f.clean.p99_ns),
            ns(f.fault.p99_ns),
            ns(f.after.p99_ns),
        );
    }
    md.push('\n');
    for s in &r.scenarios {
        let _ = writeln!(
            md,
            "## {}\n\n{}\n",
            escape::md_text(&s.name),
            escape::md_text(&s.description)
        );
        let action = |what: &str, a: &super::ActionResult| {
            let mut line = format!("- {what} at {:.3} s, took {:.1} ms", a.at_s, a.took_ms);
            if let Some(n) = &a.note {
                let _ = write!(line, ": {}", escape::md_text(n));
            }
            if let Some(e) = &a.error {
                let _ = write!(line, ": **failed**: {}", escape::md_text(e));
            }
            line
        };
        let _ = writeln!(md, "{}", action("injected", &s.inject));
        let _ = writeln!(md, "{}", action("healed", &s.heal));
        if let Some(w) = &s.writes {
            let _ = writeln!(
                md,
                "- writes: {} acknowledged during the scenario, {} lost, {} duplicated ({})",
                group_digits(w.acknowledged),
                group_digits(w.lost),
                group_digits(w.duplicated),
                escape::md_text(&w.detail)
            );
        }
        if !s.figures.clean_within_slo {
            let _ = writeln!(
                md,
                "- note: the clean period itself was outside the SLO, so recovery is measured against a level the system did not have before the fault"
            );
        }
        for p in &s.problems {
            let _ = writeln!(md, "- **problem**: {}", escape::md_text(p));
        }
        for e in &s.error_samples {
            let _ = writeln!(md, "- error seen: {}", escape::md_code(e));
        }
        let png = format!("chaos-{}.png", s.name);
        if charts
            .iter()
            .any(|c| c.file_name().and_then(|n| n.to_str()) == Some(png.as_str()))
        {
            let _ = writeln!(md, "\n![{}]({png})", escape::md_text(&s.name));
        }
        md.push('\n');
    }
    let rec = &r.reconciliation;
    let _ = writeln!(
        md,
        "## Reconciliation\n\n{}",
        if rec.ok() {
            format!("ok: {}", escape::md_text(&rec.summary))
        } else {
            rec.problems
                .iter()
                .map(|p| format!("- {}", escape::md_text(p)))
                .collect::<Vec<_>>()
                .join("\n")
        }
    );
    md
}
