//! Where a stage's change came from: the functions whose instructions per operation moved most
//! between base and head, from the two instructions passes.

use serde::{Deserialize, Serialize};

use crate::record::InstructionCounts;
use crate::record::TOTAL;

/// Rows of a function table.
pub const TOP_FUNCTIONS: usize = 10;

/// One function's change, per operation, inclusive of what it calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionDelta {
    /// Demangled name.
    pub function: String,
    /// Source file, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Base instructions per operation (0 when new).
    pub base: f64,
    /// Head instructions per operation (0 when gone).
    pub head: f64,
    /// Head minus base.
    pub delta: f64,
    /// Change relative to base; `None` for a new function.
    pub change: Option<f64>,
}

/// The functions behind one flagged stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageAttribution {
    /// Workload of the flagged metric.
    pub workload: String,
    /// Stage of the flagged metric.
    pub stage: String,
    /// The stage's instructions per operation, base and head (self counts).
    pub stage_base: f64,
    /// See `stage_base`.
    pub stage_head: f64,
    /// The function the change is mostly in: the most specific one (smallest base cost)
    /// among those carrying at least half of the largest change.
    pub top: Option<FunctionDelta>,
    /// Largest changes first, at most [`TOP_FUNCTIONS`].
    pub functions: Vec<FunctionDelta>,
    /// File name of the differential flamegraph beside the report, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flamegraph: Option<String>,
}

fn mean(v: &[u64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<u64>() as f64 / v.len() as f64
    }
}

/// Attributes the change of `stage` of one workload. `bases` are the baseline runs' counts
/// (their function costs are averaged); `None` when either side has no counts for the stage.
pub fn attribute(
    workload: &str,
    stage: &str,
    bases: &[&InstructionCounts],
    head: &InstructionCounts,
) -> Option<StageAttribution> {
    let head_stage = head.stage(stage)?;
    let base_stages: Vec<_> = bases.iter().filter_map(|b| b.stage(stage)).collect();
    if base_stages.is_empty() {
        return None;
    }
    let stage_base = base_stages
        .iter()
        .map(|s| mean(&s.instructions))
        .sum::<f64>()
        / base_stages.len() as f64;
    let stage_head = mean(&head_stage.instructions);
    // Per function, its instructions per operation within this stage (all stages for `total`).
    let per_stage = |c: &InstructionCounts| -> Vec<(String, String, f64, f64)> {
        let mut out: Vec<(String, String, f64, f64)> = Vec::new();
        for f in &c.functions {
            if stage != TOTAL && f.stage != stage {
                continue;
            }
            // For `total`, a stage's per-operation cost counts for the operations it ran in.
            let weight = if stage == TOTAL {
                c.stage(&f.stage)
                    .map_or(0.0, |s| s.instructions.len() as f64 / c.ops.max(1) as f64)
            } else {
                1.0
            };
            match out.iter_mut().find(|(n, ..)| *n == f.function) {
                Some(e) => {
                    e.2 += weight * f.inclusive;
                    e.3 += weight * f.own;
                }
                None => out.push((
                    f.function.clone(),
                    f.file.clone(),
                    weight * f.inclusive,
                    weight * f.own,
                )),
            }
        }
        out
    };
    let head_fns = per_stage(head);
    let base_fns: Vec<_> = bases.iter().map(|b| per_stage(b)).collect();
    let mut names: Vec<(&str, &str)> = Vec::new();
    for (n, file, ..) in base_fns.iter().flatten().chain(&head_fns) {
        if !names.iter().any(|(x, _)| x == n) {
            names.push((n, file));
        }
    }
    let lookup = |fns: &[(String, String, f64, f64)], name: &str| {
        fns.iter()
            .find(|(n, ..)| n == name)
            .map_or((0.0, 0.0), |(_, _, i, o)| (*i, *o))
    };
    let count = stage_base.max(stage_head).max(1.0);
    let mut deltas: Vec<FunctionDelta> = names
        .into_iter()
        .filter_map(|(name, file)| {
            let b: Vec<(f64, f64)> = base_fns.iter().map(|f| lookup(f, name)).collect();
            let base = b.iter().map(|x| x.0).sum::<f64>() / b.len().max(1) as f64;
            let base_own = b.iter().map(|x| x.1).sum::<f64>() / b.len().max(1) as f64;
            let (head, head_own) = lookup(&head_fns, name);
            // Callers of the whole stage (the driver, the pipeline) hold all of it and do no
            // work of their own in it: every change passes through them, so they explain
            // nothing. The stage's own function does work of its own and stays.
            let caller = base.max(head) >= 0.98 * count && base_own.max(head_own) < 0.01 * count;
            (!caller).then(|| FunctionDelta {
                function: name.to_owned(),
                file: file.to_owned(),
                base,
                head,
                delta: head - base,
                change: (base > 0.0).then(|| head / base - 1.0),
            })
        })
        .filter(|d| d.delta.abs() >= 0.5)
        .collect();
    deltas.sort_by(|a, b| {
        b.delta
            .abs()
            .total_cmp(&a.delta.abs())
            .then_with(|| a.base.total_cmp(&b.base))
            .then_with(|| a.function.cmp(&b.function))
    });
    deltas.truncate(TOP_FUNCTIONS);
    let largest = deltas.first().map_or(0.0, |d| d.delta.abs());
    let top = deltas
        .iter()
        .filter(|d| d.delta.abs() >= 0.5 * largest && d.delta.signum() == deltas[0].delta.signum())
        .min_by(|a, b| a.base.max(a.head).total_cmp(&b.base.max(b.head)))
        .cloned();
    Some(StageAttribution {
        workload: workload.to_owned(),
        stage: stage.to_owned(),
        stage_base,
        stage_head,
        top,
        functions: deltas,
        flamegraph: None,
    })
}

/// Attributes every stage that a verdict flagged (regression or improvement, on any measure)
/// and that both sides counted, in verdict order.
pub fn attribute_flagged(
    comparison: &super::Comparison,
    bases: &[&crate::record::RunRecord],
    head: &crate::record::RunRecord,
) -> Vec<StageAttribution> {
    use super::Status;
    let mut done: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for v in &comparison.verdicts {
        if !matches!(v.status, Status::Regression(_) | Status::Improvement) {
            continue;
        }
        let key = (v.metric.workload().to_owned(), v.metric.stage().to_owned());
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let w = v.metric.workload();
        let Some(h) = head.workload(w).and_then(|r| r.instructions.as_ref()) else {
            continue;
        };
        let b: Vec<&InstructionCounts> = bases
            .iter()
            .filter_map(|r| r.workload(w).and_then(|r| r.instructions.as_ref()))
            .collect();
        if let Some(a) = attribute(v.metric.workload(), v.metric.stage(), &b, h) {
            out.push(a);
        }
    }
    // The stages themselves first, the most changed first; the whole operation and the time
    // outside stages after them (they only add up the stages).
    let rel = |a: &StageAttribution| (a.stage_head / a.stage_base.max(1.0) - 1.0).abs();
    let aggregate = |a: &StageAttribution| a.stage == TOTAL || a.stage == crate::metrics::OTHER;
    out.sort_by(|a, b| {
        aggregate(a)
            .cmp(&aggregate(b))
            .then_with(|| rel(b).total_cmp(&rel(a)))
    });
    out
}

/// Fills in what a comparison can say beyond its verdicts: the functions behind each flagged
/// stage and the stages whose instructions and wall time disagree.
pub fn explain(
    comparison: &mut super::Comparison,
    bases: &[&crate::record::RunRecord],
    head: &crate::record::RunRecord,
) {
    comparison.attribution = attribute_flagged(comparison, bases, head);
    comparison.crosscheck = super::crosscheck::disagreements(comparison);
}

/// The short name of a function for headlines: its last two path segments
/// (`agent_memory::index::IvfIndex::search` -> `IvfIndex::search`), generics kept.
pub fn short_name(function: &str) -> String {
    // Split on `::` outside angle brackets only.
    let mut depth = 0i32;
    let mut cuts = Vec::new();
    let b = function.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'<' => depth += 1,
            b'>' => depth -= 1,
            b':' if depth == 0 && b[i + 1] == b':' => {
                cuts.push(i);
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    match cuts.len() {
        0 | 1 => function.to_owned(),
        n => function[cuts[n - 2] + 2..].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FunctionCost, StageInstructions};

    fn counts(stage_work: u64, extra: f64) -> InstructionCounts {
        let f = |stage: &str, name: &str, inclusive: f64, own: f64| FunctionCost {
            stage: stage.into(),
            function: name.into(),
            file: String::new(),
            inclusive,
            own,
        };
        let vs = stage_work as f64 + extra;
        let mut functions = vec![
            // The callers of the stage hold all of its instructions and none of their own.
            f("vector_search", "app::main", vs, 0.0),
            f("vector_search", "app::Engine::recall", vs, 0.0),
            f("vector_search", "app::recall::vector_search", vs, 500.0),
            f(
                "vector_search",
                "app::index::IvfIndex::search",
                2_500.0 + extra,
                1_300.0,
            ),
            f("vector_search", "app::index::dot", 1_200.0, 1_200.0),
            f("rerank", "app::main", 5_000.0, 0.0),
            f("rerank", "app::recall::rerank", 5_000.0, 5_000.0),
        ];
        if extra > 0.0 {
            functions.push(f("vector_search", "app::index::planted_loop", extra, extra));
        }
        let stage = |name: &str, n: u64| StageInstructions {
            stage: name.into(),
            instructions: vec![n; 4],
            est_cycles: Vec::new(),
        };
        InstructionCounts {
            ops: 4,
            tool: "callgrind-3.19.0".into(),
            cache_sim: false,
            stages: vec![
                stage("total", 10_000 + extra as u64),
                stage("vector_search", stage_work + extra as u64),
                stage("rerank", 5_000),
            ],
            functions,
            stacks: Vec::new(),
            pass_ms: None,
        }
    }

    #[test]
    fn a_planted_loop_is_named_and_the_callers_are_left_out() {
        let base = counts(3_000, 0.0);
        let head = counts(3_000, 300.0);
        let a = attribute("recall", "vector_search", &[&base], &head).unwrap();
        assert_eq!((a.stage_base, a.stage_head), (3_000.0, 3_300.0));
        let names: Vec<&str> = a.functions.iter().map(|f| f.function.as_str()).collect();
        // The stage function and its callee come first, deepest first among equals; the
        // operation's callers (main, Engine::recall) are not listed, nor unchanged functions.
        assert_eq!(
            names,
            vec![
                "app::index::planted_loop",
                "app::index::IvfIndex::search",
                "app::recall::vector_search",
            ]
        );
        let top = a.top.unwrap();
        assert_eq!(top.function, "app::index::planted_loop");
        assert_eq!(
            (top.base, top.head, top.delta, top.change),
            (0.0, 300.0, 300.0, None)
        );
        let search = &a.functions[1];
        assert!((search.change.unwrap() - 0.12).abs() < 1e-12, "{search:?}");
    }

    #[test]
    fn no_counts_no_attribution() {
        let base = counts(3_000, 0.0);
        let head = counts(3_000, 0.0);
        assert!(attribute("recall", "embed_query", &[&base], &head).is_none());
        let a = attribute("recall", "vector_search", &[&base], &head).unwrap();
        assert!(a.functions.is_empty() && a.top.is_none());
    }

    #[test]
    fn short_names_keep_the_type_and_method() {
        assert_eq!(
            short_name("agent_memory::index::IvfIndex::search"),
            "IvfIndex::search"
        );
        assert_eq!(
            short_name("<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop"),
            "<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop"
        );
        assert_eq!(short_name("memcpy"), "memcpy");
    }
}
