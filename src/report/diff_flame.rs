//! Differential flamegraphs of instruction counts (inferno's differential mode): the head's
//! call paths, coloured red where they grew against the base and blue where they shrank.

use std::path::Path;

use inferno::differential;
use inferno::flamegraph::{self, Options};

use crate::compare::Comparison;
use crate::error::Error;
use crate::record::{InstructionCounts, RunRecord};

/// Folded paths scaled to `ops` operations, as inferno's input.
fn folded(c: &InstructionCounts, ops: u64) -> String {
    let scale = ops as f64 / c.ops.max(1) as f64;
    let lines: Vec<(String, u64)> = c
        .stacks
        .iter()
        .map(|(s, n)| (s.clone(), (*n as f64 * scale).round() as u64))
        .collect();
    crate::profile::instructions::stacks::to_text(&lines)
}

/// Renders base vs head to an SVG at `path`; `title` heads it.
pub fn write_svg(
    base: &InstructionCounts,
    head: &InstructionCounts,
    title: &str,
    path: &Path,
) -> Result<(), Error> {
    let before = folded(base, head.ops);
    let after = folded(head, head.ops);
    let mut diff = Vec::new();
    differential::from_readers(
        differential::Options::default(),
        before.as_bytes(),
        after.as_bytes(),
        &mut diff,
    )
    .map_err(|e| Error::Profiler(format!("cannot diff the call paths: {e}")))?;
    let diff = String::from_utf8_lossy(&diff).into_owned();
    let mut opt = Options::default();
    opt.title = title.to_owned();
    opt.subtitle = Some(format!(
        "instructions over {} operations: width = head, red = grew, blue = shrank vs base \
         (call paths estimated from callgrind's caller-callee pairs)",
        head.ops
    ));
    opt.count_name = "instructions".into();
    opt.deterministic = true;
    let file = std::fs::File::create(path).map_err(|e| Error::Io {
        context: format!("cannot write {}", path.display()),
        source: e,
    })?;
    let w = std::io::BufWriter::new(file);
    flamegraph::from_lines(&mut opt, diff.lines(), w).map_err(|e| Error::Io {
        context: format!("cannot render the flamegraph {}", path.display()),
        source: e,
    })
}

/// Writes one differential flamegraph per attributed stage's workload into `dir`
/// (`flame-diff-<workload>.svg`) and records its file name in the attribution.
pub fn write_for_attribution(
    comparison: &mut Comparison,
    bases: &[&RunRecord],
    head: &RunRecord,
    dir: &Path,
) -> Result<(), Error> {
    let counts = |r: &RunRecord, w: &str| {
        r.workload(w)
            .and_then(|x| x.instructions.as_ref())
            .filter(|c| !c.stacks.is_empty())
            .cloned()
    };
    let mut written: Vec<String> = Vec::new();
    for a in &mut comparison.attribution {
        let w = a.workload.clone();
        let w = w.as_str();
        let name = format!("flame-diff-{w}.svg");
        if !written.contains(&name) {
            let (Some(b), Some(h)) = (bases.first().and_then(|r| counts(r, w)), counts(head, w))
            else {
                continue;
            };
            let title = format!(
                "{w}: instructions, {} vs {}",
                crate::metrics::RunInfo::from_record(head).short(),
                crate::metrics::RunInfo::from_record(bases[0]).short()
            );
            write_svg(&b, &h, &title, &dir.join(&name))?;
            written.push(name.clone());
        }
        a.flamegraph = Some(name);
    }
    Ok(())
}
