//! Instruction counts in a paired A/B session: counts need no repetition, so each side's
//! binary runs its instructions pass once (not in every round), and the counts are attached to
//! every round's record of that side.

use std::path::Path;

use crate::config::{InstructionsSettings, Profile};
use crate::error::Error;
use crate::record::{InstructionCounts, RunRecord};
use crate::run::Counted;

/// One side's counts per workload.
pub type SideCounts = Vec<(String, InstructionCounts)>;

/// Runs the instructions pass of every workload with `bin` (a harness binary of one
/// side), writing its callgrind files into `dir`.
pub fn count_side(
    bin: &Path,
    profile: &Profile,
    workloads: &[Counted],
    settings: &InstructionsSettings,
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<SideCounts, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        context: format!("cannot create {}", dir.display()),
        source: e,
    })?;
    let plan = crate::run::InstructionsPlan {
        exe: bin.to_path_buf(),
        settings: settings.clone(),
    };
    let counts = crate::run::count_instructions(&plan, profile, workloads, dir, log)?;
    Ok(workloads
        .iter()
        .map(|w| w.name.clone())
        .zip(counts)
        .collect())
}

/// Attaches a side's counts to each of its round records.
pub fn attach(records: &mut [RunRecord], counts: &SideCounts) {
    for r in records {
        for (w, c) in counts {
            if let Some(res) = r.workloads.iter_mut().find(|x| x.workload == *w) {
                res.instructions = Some(c.clone());
            }
        }
    }
}
