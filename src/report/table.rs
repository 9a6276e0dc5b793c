//! The per-stage terminal table printed by `cargo perfcheck run`.

use crate::record::{StageSummary, WorkloadResult};
use crate::report::escape;
use crate::report::format::{bytes, count, duration_ns, group_digits};

/// Renders a workload's heading line and per-stage table as plain text.
pub fn workload_table(w: &WorkloadResult) -> String {
    let mut out = String::new();
    out.push_str(&heading(w));
    out.push('\n');
    let mut header = vec![
        "stage",
        "ops",
        "mean",
        "p50",
        "p95",
        "p99",
        "cpu/op",
        "allocs/op",
        "bytes/op",
        "peak",
        "share",
    ];
    let mut rows: Vec<Vec<String>> = w.stages.iter().map(row).collect();
    if let Some(ic) = &w.instructions {
        header.push("instr/op");
        for (r, s) in rows.iter_mut().zip(&w.stages) {
            let mean = ic.stage(&s.stage).map(|c| {
                c.instructions.iter().sum::<u64>() as f64 / c.instructions.len().max(1) as f64
            });
            r.push(mean.map(count).unwrap_or_else(|| "-".into()));
        }
    }
    out.push_str(&render(&header, &rows));
    if let Some(ic) = &w.instructions {
        out.push_str(&format!(
            "  instructions: {} operations counted by {}{}, self counts (nested stages excluded){}\n",
            group_digits(ic.ops),
            escape::terminal(&ic.tool),
            if ic.cache_sim {
                " with cache simulation"
            } else {
                ""
            },
            ic.pass_ms
                .map(|ms| format!("; pass {:.1}s", ms as f64 / 1000.0))
                .unwrap_or_default()
        ));
    }
    out
}

fn heading(w: &WorkloadResult) -> String {
    let mut h = format!(
        "{}: {} ops ({} CPU-sampled) in {}, {} ops/s",
        w.workload,
        group_digits(w.ops),
        group_digits(w.cpu_sampled_ops),
        duration_ns(w.elapsed_ns as f64),
        group_digits(w.throughput_ops.round() as u64),
    );
    if w.op_counts.len() > 1 {
        let mix: Vec<String> = w
            .op_counts
            .iter()
            .map(|(k, v)| format!("{} {}", escape::terminal(k), group_digits(*v)))
            .collect();
        h.push_str(&format!(", mix {}", mix.join(" / ")));
    }
    if let Some(c) = w.cache {
        let total = c.hits.saturating_add(c.misses); // imported counts may be anything
        let pct = if total > 0 {
            100.0 * c.hits as f64 / total as f64
        } else {
            0.0
        };
        h.push_str(&format!(
            ", cache {} hits / {} misses ({pct:.0}% hit)",
            group_digits(c.hits),
            group_digits(c.misses)
        ));
    }
    if let Some(q) = &w.quality {
        if let (Some(r), Some(k)) = (q.recall_at_k, q.k) {
            h.push_str(&format!(", recall@{k} {r:.3}"));
        }
        if let Some(a) = q.ann_recall_at_10 {
            h.push_str(&format!(" (index vs exact {a:.3})"));
        }
        if let Some(p) = q.purity {
            h.push_str(&format!(", fact purity {p:.3}"));
        }
        for (name, v) in &q.measures {
            // Names come from the record, which may have been imported.
            h.push_str(&format!(
                ", {} {v:.3}",
                crate::report::escape::terminal(name)
            ));
        }
    }
    h
}

fn row(s: &StageSummary) -> Vec<String> {
    vec![
        // Stage names come from the record, which may have been imported.
        escape::terminal(&s.stage),
        group_digits(s.ops),
        duration_ns(s.mean_ns),
        duration_ns(s.p50_ns as f64),
        duration_ns(s.p95_ns as f64),
        duration_ns(s.p99_ns as f64),
        s.cpu_mean_ns.map(duration_ns).unwrap_or_else(|| "-".into()),
        count(s.allocs_per_op),
        bytes(s.bytes_per_op),
        bytes(s.peak_live_bytes as f64),
        format!("{:.1}%", 100.0 * s.share),
    ]
}

/// Left-aligns the first column, right-aligns the rest, two spaces between columns.
fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from("  ");
        for (i, c) in cells.enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&mut header.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(stage: &str, mean: f64, share: f64) -> StageSummary {
        StageSummary {
            stage: stage.into(),
            ops: 1000,
            mean_ns: mean,
            p50_ns: mean as u64,
            p95_ns: 2 * mean as u64,
            p99_ns: 3 * mean as u64,
            max_ns: 4 * mean as u64,
            cpu_mean_ns: Some(mean * 0.9),
            allocs_per_op: 3.0,
            bytes_per_op: 2048.0,
            peak_live_bytes: 4096,
            share,
        }
    }

    #[test]
    fn table_has_a_row_per_stage_with_aligned_columns() {
        let w = WorkloadResult {
            workload: "recall".into(),
            ops: 1100,
            warmup_ops: 10,
            cpu_sampled_ops: 100,
            elapsed_ns: 250_000_000,
            throughput_ops: 4400.0,
            cache: Some(crate::record::CacheCounts {
                hits: 200,
                misses: 900,
            }),
            quality: Some(crate::record::Quality {
                recall_at_k: Some(0.9412),
                k: Some(10),
                ann_recall_at_10: Some(0.97),
                purity: None,
                measures: [("f1".to_owned(), 0.5)].into(),
            }),
            op_counts: [("recall".to_string(), 1100)].into_iter().collect(),
            stages: vec![
                summary("vector_search", 150_000.0, 0.75),
                summary("total", 200_000.0, 1.0),
            ],
            samples: vec![],
            instructions: None,
        };
        let t = workload_table(&w);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "recall: 1,100 ops (100 CPU-sampled) in 250ms, 4,400 ops/s, cache 200 hits / 900 misses (18% hit), recall@10 0.941 (index vs exact 0.970), f1 0.500"
        );
        assert_eq!(lines.len(), 4);
        assert!(lines[2].starts_with("  vector_search"));
        assert!(
            lines[2].contains("150µs") && lines[2].ends_with("75.0%"),
            "{}",
            lines[2]
        );
        // Right-aligned columns: every row has the same length.
        let width = |l: &str| l.chars().count();
        assert_eq!(width(lines[1]), width(lines[2]));
        assert_eq!(width(lines[2]), width(lines[3]));
    }
}
