//! Terminal rendering of a load run: one row per phase, per-kind latency, resources, heap
//! growth, reconciliation and the SLO verdicts.

use std::fmt::Write;

use super::{LoadReport, PhaseResult};
use crate::report::escape;
use crate::report::format::{bytes, duration_ns, group_digits};

fn ns(v: u64) -> String {
    duration_ns(v as f64)
}

fn pct(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{:.3}%", x * 100.0)
    }
}

fn phase_row(out: &mut String, p: &PhaseResult) {
    let offered = if p.offered_rate.0 == p.offered_rate.1 || p.name == "total" {
        format!("{:.0}", p.offered_ops_per_s)
    } else {
        format!("{:.0}->{:.0}", p.offered_rate.0, p.offered_rate.1)
    };
    let _ = writeln!(
        out,
        "{:<12} {:>7.0}s {:>13} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
        p.name,
        p.duration_s,
        offered,
        p.achieved_ops_per_s,
        ns(p.latency.p50_ns),
        ns(p.latency.p95_ns),
        ns(p.latency.p99_ns),
        ns(p.latency.p999_ns),
        ns(p.latency.max_ns),
        group_digits(p.errors),
        group_digits(p.timeouts),
    );
}

/// The report as text for the terminal.
pub fn render(r: &LoadReport) -> String {
    let mut out = String::new();
    let mut head = format!("mix {}", escape::terminal(&r.mix.to_string()));
    for (key, n) in &r.at_start {
        // `events_at_start` -> `100,000 events at start`.
        let what = key
            .strip_suffix("_at_start")
            .unwrap_or(key)
            .replace('_', " ");
        let _ = write!(
            head,
            " | {} {} at start",
            group_digits(*n),
            escape::terminal(&what)
        );
    }
    let _ = writeln!(out, "{head} | timeout {}", super::human(r.settings.timeout));
    if let Some(run) = &r.run {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>13} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
            "phase",
            "length",
            "offered/s",
            "achieved/s",
            "p50",
            "p95",
            "p99",
            "p99.9",
            "max",
            "errors",
            "timeouts"
        );
        for p in &run.phases {
            phase_row(&mut out, p);
        }
        phase_row(&mut out, &run.total);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<14} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
            "kind (total)", "ops", "p50", "p99", "p99.9", "max", "errors", "timeouts"
        );
        for k in &run.total.by_kind {
            let _ = writeln!(
                out,
                "{:<14} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
                k.kind,
                group_digits(k.ops),
                ns(k.latency.p50_ns),
                ns(k.latency.p99_ns),
                ns(k.latency.p999_ns),
                ns(k.latency.max_ns),
                group_digits(k.errors),
                group_digits(k.timeouts)
            );
        }
        let _ = writeln!(
            out,
            "\nlatency is measured from each operation's intended start (coordinated omission corrected); \
             service time p50 {} p99 {}; start lag p50 {} p99 {}; {} workers",
            ns(run.service.p50_ns),
            ns(run.service.p99_ns),
            ns(run.start_lag.p50_ns),
            ns(run.start_lag.p99_ns),
            run.workers
        );
        if let (Some(first), Some(last)) = (run.timeline.first(), run.timeline.last()) {
            let peak_rss = run
                .timeline
                .iter()
                .map(|t| t.resources.rss_bytes)
                .max()
                .unwrap_or(0);
            let cpu: f64 = run
                .timeline
                .iter()
                .map(|t| t.resources.cpu_percent)
                .sum::<f64>()
                / run.timeline.len() as f64;
            let _ = writeln!(
                out,
                "resources: RSS {} -> {} (peak {}), Rust heap {} -> {} (index {} -> {}), SQLite heap {} -> {}, CPU {:.0}% of a core on average",
                bytes(first.resources.rss_bytes as f64),
                bytes(last.resources.rss_bytes as f64),
                bytes(peak_rss as f64),
                bytes(first.resources.heap_bytes as f64),
                bytes(last.resources.heap_bytes as f64),
                bytes(first.resources.index_bytes as f64),
                bytes(last.resources.index_bytes as f64),
                bytes(first.resources.sqlite_bytes as f64),
                bytes(last.resources.sqlite_bytes as f64),
                cpu
            );
        }
        for e in &run.error_samples {
            // Error text may quote data the target was given.
            let _ = writeln!(out, "error seen: {}", escape::terminal(e));
        }
    }
    if let Some(h) = &r.heap_growth {
        let _ = writeln!(
            out,
            "heap growth over `{}` ({:.0}-{:.0} s, {} samples): {}/h retained (± {}/h), Rust heap {}/h of which index {}/h (stored data), SQLite {}/h, RSS {}/h",
            h.phase,
            h.window_s.0,
            h.window_s.1,
            h.samples,
            signed_bytes(h.retained_bytes_per_hour),
            bytes(h.retained_se_bytes_per_hour),
            signed_bytes(h.heap_bytes_per_hour),
            signed_bytes(h.index_bytes_per_hour),
            signed_bytes(h.sqlite_bytes_per_hour),
            signed_bytes(h.rss_bytes_per_hour),
        );
    }
    if let Some(f) = &r.find_max {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:>12} {:>11} {:>9} {:>9} {:>9} {:>10}  verdict",
            "offered/s", "achieved/s", "p50", "p99", "p99.9", "failures"
        );
        for s in &f.steps {
            let _ = writeln!(
                out,
                "{:>12.0} {:>11.0} {:>9} {:>9} {:>9} {:>10}  {}",
                s.offered_ops_per_s,
                s.achieved_ops_per_s,
                ns(s.latency.p50_ns),
                ns(s.latency.p99_ns),
                ns(s.latency.p999_ns),
                pct(s.failure_rate),
                if s.pass {
                    "sustainable"
                } else {
                    "over the limit"
                }
            );
        }
        let _ = writeln!(
            out,
            "highest sustainable rate: {:.0} ops/s (p99 <= {}, failures <= {}){}",
            f.max_sustainable_ops_per_s,
            ns(f.p99_limit_ns),
            pct(f.failure_rate_limit),
            match f.first_failing_ops_per_s {
                Some(x) => format!("; {x:.0} ops/s crossed a limit"),
                None => "; no step crossed a limit (raise find_max.max_steps)".into(),
            }
        );
    }
    let c = &r.reconciliation;
    let summary = if c.summary.is_empty() {
        c.counts
            .iter()
            .map(|(k, v)| format!("{k} {}", group_digits(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        c.summary.clone()
    };
    let _ = writeln!(
        out,
        "reconciliation: {}{}{}",
        escape::terminal(&summary),
        if summary.is_empty() { "" } else { "; " },
        if c.ok() {
            "all counts reconcile".to_string()
        } else {
            format!("MISMATCH: {}", escape::terminal(&c.problems.join("; ")))
        }
    );
    for s in &r.slo {
        let show = |v: f64| match s.what.as_str() {
            "p99_ns" => duration_ns(v),
            "failure_rate" => pct(v),
            _ => format!("{}/h", signed_bytes(v)),
        };
        let _ = writeln!(
            out,
            "slo {:<10} {:<27} {:>10} (limit {:>10}) {}",
            escape::terminal(&s.phase),
            escape::terminal(&s.what),
            show(s.value),
            show(s.limit),
            if s.pass { "ok" } else { "FAILED" }
        );
    }
    out
}

fn signed_bytes(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", bytes(-v))
    } else {
        bytes(v)
    }
}
