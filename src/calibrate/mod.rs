//! `cargo perfcheck calibrate`: measures the paired gate on this machine with real code
//! changes. Each patch (a variant) is applied to a scratch checkout of HEAD and built in
//! release like the unpatched HEAD (the base); then `checks` paired sessions compare base and
//! variant, exactly as `check --ab` does, and [`tally`] counts what they flagged. Nothing a
//! calibration runs is ever saved as a baseline.
//!
//! The steps are separate: [`patches`] finds and applies the diffs, [`prepare`] builds the
//! binaries (or takes given ones), [`run`] runs the checks, [`report`] renders the result.

pub mod noise;
pub mod patches;
pub mod report;
pub mod tally;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::ab::{self, instructions, session};
use crate::compare::{attribution, compare_paired, Comparison, Thresholds};
use crate::config::{InstructionsSettings, Profile};
use crate::error::Error;
use crate::metrics::metric_set;
use crate::record::RunRecord;

pub use noise::NoiseSamples;
pub use patches::Patch;
pub use tally::{Calibration, VariantTally};

/// The test-only slowdown knob: never passed to either side, so only the patches differ.
const SLOW_STAGE: &str = "PERFCHECK_SLOW_STAGE";

/// Where calibrations keep their scratch checkout, shared build folder and binaries:
/// `<target dir>/perfcheck-calibrate`, beside `check --ab`'s folder.
pub fn work_dir(repo_root: &Path) -> PathBuf {
    let ab = ab::work_dir(repo_root);
    ab.parent()
        .map(|t| t.join("perfcheck-calibrate"))
        .unwrap_or_else(|| repo_root.join("target/perfcheck-calibrate"))
}

/// One variant: a patch, and its binary when given instead of built.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The code change.
    pub patch: Patch,
    /// A prebuilt binary of HEAD with the patch applied (`--variant-bin`).
    pub bin: Option<PathBuf>,
}

/// Instruction counting for every check: the profile and workloads of the pass.
#[derive(Clone, Debug)]
pub struct Counting {
    /// The loaded profile.
    pub profile: Profile,
    /// Workloads counted, and how many operations of each.
    pub workloads: Vec<crate::run::Counted>,
    /// The pass's settings.
    pub settings: InstructionsSettings,
}

/// Everything a calibration needs.
#[derive(Clone, Debug)]
pub struct Request {
    /// Root of the repository's working tree; the runs start here.
    pub repo_root: PathBuf,
    /// The commit (HEAD) every binary is built from.
    pub head: String,
    /// The harness target built for each binary not given (`None`: none could be found).
    pub harness: Option<crate::harness::locate::HarnessTarget>,
    /// Variants, in report order.
    pub variants: Vec<Variant>,
    /// A prebuilt binary of unpatched HEAD (`--base-bin`).
    pub base_bin: Option<PathBuf>,
    /// Paired checks per variant.
    pub checks: usize,
    /// Rounds per check.
    pub rounds: usize,
    /// Arguments after `run` for every run (absolute paths only).
    pub run_args: Vec<OsString>,
    /// Count instructions in each check.
    pub counting: Option<Counting>,
    /// Thresholds of the comparisons (the project's).
    pub thresholds: Thresholds,
    /// Seed of the comparisons.
    pub seed: u64,
    /// The report folder (calibration.json, calibration.md, one folder per check).
    pub out_dir: PathBuf,
    /// Scratch folder ([`work_dir`]).
    pub work_dir: PathBuf,
}

/// The binaries of a calibration: the base and one per variant, in variant order.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// Unpatched HEAD.
    pub base: PathBuf,
    /// HEAD with each patch applied.
    pub variants: Vec<PathBuf>,
}

/// Checks out HEAD into the scratch folder, checks that every patch applies there, and builds
/// what was not given: the base, then each variant, all in one target folder (so only the
/// first build compiles the dependencies). Each binary is copied out of the target folder, as
/// the next build replaces it.
pub fn prepare(req: &Request, log: &mut dyn FnMut(&str)) -> Result<Binaries, Error> {
    let src = req.work_dir.join("src");
    let target = req.work_dir.join("target");
    let harness = || {
        req.harness.as_ref().ok_or_else(|| {
            Error::Usage(
                "calibrate: no harness target found to build (give --base-bin and \
                 --variant-bin, or run in a package with a perfcheck harness)"
                    .into(),
            )
        })
    };
    ab::worktree::checkout(&req.repo_root, &req.head, &src)?;
    for v in &req.variants {
        patches::check_applies(&v.patch.file, &src)?;
    }
    let base = match &req.base_bin {
        Some(b) => b.clone(),
        None => {
            log("building unpatched HEAD as the base");
            let built = ab::build::build_base(harness()?, &req.repo_root, &src, &target)?;
            keep(&built, &req.work_dir.join("bin/base"))?
        }
    };
    let mut variants = Vec::with_capacity(req.variants.len());
    let mut dirty = false;
    for v in &req.variants {
        let bin = match &v.bin {
            Some(b) => b.clone(),
            None => {
                ab::worktree::checkout(&req.repo_root, &req.head, &src)?;
                patches::apply(&v.patch.file, &src)?;
                dirty = true;
                log(&format!("building {}", v.patch.name));
                let built = ab::build::build_base(harness()?, &req.repo_root, &src, &target)?;
                keep(&built, &req.work_dir.join("bin").join(&v.patch.name))?
            }
        };
        variants.push(bin);
    }
    if dirty {
        // Leave no patched source behind for the next calibration or build.
        ab::worktree::checkout(&req.repo_root, &req.head, &src)?;
    }
    Ok(Binaries { base, variants })
}

/// Copies a freshly built binary into `dir` and returns the copy's path.
fn keep(bin: &Path, dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        context: format!("cannot create {}", dir.display()),
        source: e,
    })?;
    let name = bin
        .file_name()
        .unwrap_or_else(|| "cargo-perfcheck".as_ref());
    let copy = dir.join(name);
    std::fs::copy(bin, &copy).map_err(|e| Error::Io {
        context: format!("cannot copy {} to {}", bin.display(), copy.display()),
        source: e,
    })?;
    Ok(copy)
}

/// An empty calibration for `req`, to be filled by [`run`].
pub fn start(req: &Request) -> Calibration {
    Calibration {
        schema: tally::CALIBRATION_SCHEMA_VERSION,
        created_at: crate::run::now_rfc3339(),
        head: req.head.clone(),
        machine: None,
        run_args: req
            .run_args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        rounds: req.rounds,
        checks_planned: req.checks,
        instructions: req.counting.is_some(),
        complete: false,
        variants: req
            .variants
            .iter()
            .map(|v| VariantTally {
                name: v.patch.name.clone(),
                description: v.patch.description.clone(),
                patch: v.patch.file.display().to_string(),
                planted: v.patch.planted.clone(),
                ..VariantTally::default()
            })
            .collect(),
    }
}

/// Runs the checks into `cal`: check 1 of every variant, then check 2, ..., so that a drift of
/// the machine over the hours touches all variants alike and a stopped run has them all.
/// `saved` is called after every check (to write calibration.json as it grows); `noise`
/// gathers every session's runs for the floors of noise.json.
pub fn run(
    req: &Request,
    bins: &Binaries,
    cal: &mut Calibration,
    noise: &mut NoiseSamples,
    log: &mut dyn FnMut(&str),
    saved: &mut dyn FnMut(&Calibration) -> Result<(), Error>,
) -> Result<(), Error> {
    for i in 0..req.checks {
        let check_dir = req.out_dir.join(format!("check-{:03}", i + 1));
        // The base binary is the same in every variant's session of this check: its counts
        // are taken once per check and attached to each.
        let base_counts = match &req.counting {
            Some(c) => Some(count(
                &bins.base,
                c,
                &check_dir.join("base-instructions"),
                log,
            )?),
            None => None,
        };
        for (v, bin) in req.variants.iter().zip(&bins.variants) {
            log(&format!(
                "check {}/{}: {} ({} rounds)",
                i + 1,
                req.checks,
                v.patch.name,
                req.rounds
            ));
            let dir = check_dir.join(&v.patch.name);
            let control = v.patch.name == tally::CONTROL;
            let comparison = one_check(
                req,
                &bins.base,
                bin,
                base_counts.as_ref(),
                &dir,
                (noise, control),
                log,
            )?;
            if cal.machine.is_none() {
                cal.machine = comparison.base.first().map(|b| b.machine.clone());
            }
            let rel = dir
                .strip_prefix(&req.out_dir)
                .unwrap_or(&dir)
                .display()
                .to_string();
            if let Some(t) = cal.variants.iter_mut().find(|t| t.name == v.patch.name) {
                t.add(&comparison, rel);
            }
        }
        cal.complete = i + 1 == req.checks;
        saved(cal)?;
    }
    Ok(())
}

fn count(
    bin: &Path,
    c: &Counting,
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<instructions::SideCounts, Error> {
    instructions::count_side(bin, &c.profile, &c.workloads, &c.settings, dir, log)
}

/// One paired session of base against a variant, compared and attributed; its check.json is
/// written into `dir` beside the runs, its runs go into `noise` (as pairs if a control).
fn one_check(
    req: &Request,
    base_bin: &Path,
    head_bin: &Path,
    base_counts: Option<&instructions::SideCounts>,
    dir: &Path,
    (noise, control): (&mut NoiseSamples, bool),
    log: &mut dyn FnMut(&str),
) -> Result<Comparison, Error> {
    let side = |label, bin: &Path| session::Side {
        label,
        bin: bin.to_path_buf(),
        dir: req.repo_root.clone(),
        env_remove: vec![SLOW_STAGE],
    };
    let plan = session::Plan {
        base: side("base", base_bin),
        head: side("head", head_bin),
        rounds: req.rounds,
        // A fresh, recorded order per check, as `check --ab` draws it.
        order_seed: crate::ab::order::fresh_seed(),
        env: session::run_env(std::env::var("GLIBC_TUNABLES").ok().as_deref()),
        run_args: req.run_args.clone(),
        out_dir: dir.to_path_buf(),
    };
    let mut rounds = session::run(&plan, log)?;
    if let (Some(c), Some(base_counts)) = (&req.counting, base_counts) {
        instructions::attach(&mut rounds.base, base_counts);
        let head_counts = count(head_bin, c, &dir.join("head-instructions"), log)?;
        instructions::attach(&mut rounds.head, &head_counts);
    }
    let sets = |rs: &[RunRecord]| rs.iter().map(metric_set).collect::<Result<Vec<_>, _>>();
    let (base_sets, head_sets) = (sets(&rounds.base)?, sets(&rounds.head)?);
    noise.add_session(&base_sets, &head_sets, control);
    let mut comparison = compare_paired(&base_sets, &head_sets, &req.thresholds, req.seed);
    if let Some(head_run) = rounds.head.first() {
        let bases: Vec<&RunRecord> = rounds.base.iter().collect();
        attribution::explain(&mut comparison, &bases, head_run);
    }
    // The same two files `check --ab` writes, so any session can be read as a reviewer would.
    for (name, text) in [
        ("check.json", crate::report::check::json(&comparison)),
        ("check.md", crate::report::check::markdown(&comparison)),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).map_err(|e| Error::Io {
            context: format!("cannot write {}", file.display()),
            source: e,
        })?;
    }
    Ok(comparison)
}
