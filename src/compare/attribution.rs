//! Where a stage's change came from: the functions whose instructions per operation moved most
//! between base and head, from the two instructions passes.

use serde::{Deserialize, Serialize};

use crate::record::InstructionCounts;

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
    let stage_base =
        base_stages.iter().map(|s| mean(&s.instructions)).sum::<f64>() / base_stages.len() as f64;
    let stage_head = mean(&head_stage.instructions);
    // A stage's count is its self count; its function holds its nested stages too. Functions
    // that hold far more than the whole operation's stage are its callers (the operation's
    // driver, the pipeline): every change passes through them, so they explain nothing.
    let total_base = bases
        .iter()
        .filter_map(|b| b.stage(crate::workload::summary::TOTAL))
        .map(|t| mean(&t.instructions))
        .fold(0.0, f64::max);
    let ceiling = if stage == crate::workload::summary::TOTAL {
        f64::INFINITY
    } else {
        // The stage's self count plus what nested stages and shared helpers may add.
        (stage_base.max(stage_head) * 1.02).min(total_base.max(1.0) * 0.98)
    };
    let mut names: Vec<(&str, &str)> = Vec::new();
    let all = bases.iter().flat_map(|b| &b.functions).chain(&head.functions);
    for f in all {
        if !names.iter().any(|(n, _)| *n == f.function) {
            names.push((&f.function, &f.file));
        }
    }
    let base_of = |name: &str| {
        bases
            .iter()
            .map(|b| {
                b.functions
                    .iter()
                    .find(|f| f.function == name)
                    .map_or(0.0, |f| f.inclusive)
            })
            .sum::<f64>()
            / bases.len().max(1) as f64
    };
    let mut deltas: Vec<FunctionDelta> = names
        .into_iter()
        .map(|(name, file)| {
            let base = base_of(name);
            let head = head
                .functions
                .iter()
                .find(|f| f.function == name)
                .map_or(0.0, |f| f.inclusive);
            FunctionDelta {
                function: name.to_owned(),
                file: file.to_owned(),
                base,
                head,
                delta: head - base,
                change: (base > 0.0).then(|| head / base - 1.0),
            }
        })
        .filter(|d| d.base.max(d.head) <= ceiling && d.delta.abs() >= 0.5)
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
        let Ok(w) = v.metric.workload().parse::<crate::workload::Workload>() else {
            continue;
        };
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
    out
}

/// The short name of a function for headlines: its last two path segments
/// (`perfcheck::engine::index::IvfIndex::search` -> `IvfIndex::search`), generics kept.
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
        let f = |name: &str, inclusive: f64| FunctionCost {
            function: name.into(),
            file: String::new(),
            inclusive,
            own: 0.0,
        };
        let mut functions = vec![
            f("app::main", 10_000.0 + extra),
            f("app::Engine::recall", 9_000.0 + extra),
            f("app::recall::vector_search", stage_work as f64 + extra),
            f("app::index::IvfIndex::search", 2_500.0 + extra),
            f("app::index::dot", 1_200.0),
            f("app::recall::rerank", 5_000.0),
        ];
        if extra > 0.0 {
            functions.push(f("app::index::planted_loop", extra));
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
        assert_eq!((top.base, top.head, top.delta, top.change), (0.0, 300.0, 300.0, None));
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
            short_name("perfcheck::engine::index::IvfIndex::search"),
            "IvfIndex::search"
        );
        assert_eq!(
            short_name("<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop"),
            "<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop"
        );
        assert_eq!(short_name("memcpy"), "memcpy");
    }
}
