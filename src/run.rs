//! `run`: measures the requested workloads under a profile and writes the run record.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use std::sync::Arc;

use crate::config::{InstructionsSettings, Profile};
use crate::error::Error;
use crate::git::GitInfo;
use crate::harness::{Configured, Harness};
use crate::record::RunRecord;
use crate::stage;
use crate::workload::runner::run_workload;

/// What to run.
pub struct RunRequest {
    /// The profile (sizes, counts, engine settings).
    pub profile: Profile,
    /// Workloads to run; empty means the profile's list (else every registered one).
    pub workloads: Vec<String>,
    /// Folder that receives `<run-id>/run.json`.
    pub reports_dir: PathBuf,
    /// Directory whose git repository identifies the commit.
    pub repo_dir: PathBuf,
    /// Test knob: slow one stage by a percentage (see [`stage::set_slowdown`]).
    pub slowdown: Option<(String, u32)>,
    /// The store file this run may be saved into (`--store`); its untracked file does not make
    /// the tree dirty. `None`: the one perfcheck.toml or `PERFCHECK_STORE` names.
    pub store: Option<PathBuf>,
    /// Count instructions too, in passes of their own after the timing pass.
    pub instructions: Option<InstructionsPlan>,
}

/// How to count instructions: which binary runs the pass (the one being measured) and how.
#[derive(Clone, Debug)]
pub struct InstructionsPlan {
    /// A harness binary (normally this process's own).
    pub exe: PathBuf,
    /// Operations and cache simulation.
    pub settings: InstructionsSettings,
}

/// A finished run: the record and where it was written.
pub struct RunOutcome {
    /// The run record.
    pub record: RunRecord,
    /// The folder holding `run.json`.
    pub dir: PathBuf,
}

/// A workload the instructions pass counts, and how many operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    /// The workload's name.
    pub name: String,
    /// Operations counted.
    pub ops: u64,
}

impl Counted {
    /// What the pass counts of each of `workloads` under `settings`.
    pub fn plan(
        workloads: &[Arc<dyn Configured>],
        settings: &InstructionsSettings,
    ) -> Vec<Counted> {
        workloads
            .iter()
            .map(|w| Counted {
                name: w.name().to_owned(),
                ops: w.counted_ops(settings),
            })
            .collect()
    }
}

/// Runs every requested workload of `harness`, then writes `reports/<run-id>/run.json`.
/// `log` receives progress lines.
pub fn execute(
    req: &RunRequest,
    harness: &Harness,
    log: &mut dyn FnMut(&str),
) -> Result<RunOutcome, Error> {
    let workloads = harness.resolve(&req.profile, &req.workloads)?;
    let created_at = now_rfc3339();
    let git = GitInfo::discover_ignoring(&req.repo_dir, &own_output(req));

    let knob = stage::slowdown_scope(req.slowdown.as_ref().map(|(s, p)| (s.as_str(), *p)));
    log(&format!("profile {}", req.profile.name));
    let mut results: Vec<crate::record::WorkloadResult> = Vec::with_capacity(workloads.len());
    for w in &workloads {
        results.push(run_workload(w.as_ref(), &req.profile, log)?);
    }
    drop(knob);

    let (run_id, dir) = create_run_dir(&req.reports_dir, &created_at, git.as_ref())?;
    if let Some(plan) = &req.instructions {
        let counted = Counted::plan(&workloads, &plan.settings);
        let counts = count_instructions(plan, &req.profile, &counted, &dir, log)?;
        for (r, c) in results.iter_mut().zip(counts) {
            r.instructions = Some(c);
        }
    }
    let record = RunRecord::new(
        run_id,
        created_at,
        git,
        req.profile.clone(),
        req.slowdown.as_ref().map(|(s, p)| format!("{s}:{p}")),
        results,
        Default::default(),
    );
    record.write(&dir.join("run.json"))?;
    Ok(RunOutcome { record, dir })
}

/// Runs the instructions pass of every workload, two at a time on machines with two or more
/// cores (counts do not depend on what else runs), and returns the counts in workload order.
pub fn count_instructions(
    plan: &InstructionsPlan,
    profile: &Profile,
    workloads: &[Counted],
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<crate::record::InstructionCounts>, Error> {
    use crate::profile::instructions::count_workload;
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 2);
    for w in workloads {
        log(&format!(
            "{}: counting instructions of {} operations under callgrind",
            w.name, w.ops
        ));
    }
    // A queue, not fixed pairs: a worker that finishes takes the next workload at once, so a
    // long pass (consolidation's) never holds a core idle.
    let started = std::time::Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<_, Error>>>> = workloads
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..parallel.min(workloads.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(w) = workloads.get(i) else { break };
                let counted =
                    count_workload(&plan.exe, profile, &w.name, w.ops, &plan.settings, dir);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(counted);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(workloads.len());
    for (w, slot) in workloads.iter().zip(slots) {
        let counted = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(Error::Profiler(format!(
                "the instructions pass of {} did not finish (its thread panicked)",
                w.name
            )))
        });
        let (counts, files) = counted?;
        log(&format!(
            "{}: {} operations counted in {:.1}s ({})",
            w.name,
            counts.ops,
            counts.pass_ms.unwrap_or(0) as f64 / 1000.0,
            files.callgrind_out.display()
        ));
        out.push(counts);
    }
    log(&format!(
        "instructions pass: {} workload(s) in {:.1}s, {parallel} at a time",
        workloads.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(out)
}

/// Paths this run writes to besides the default folders, whose untracked files must not make
/// the tree dirty: the reports folder, and the store file with SQLite's files beside it (the
/// file, not its folder: a store at the repository's root must not hide every other file).
fn own_output(req: &RunRequest) -> Vec<PathBuf> {
    let mut own = vec![req.reports_dir.clone()];
    let store = req.store.clone().or_else(|| {
        crate::project::ProjectConfig::load(&req.repo_dir)
            .ok()
            .map(|p| p.store_path(None))
    });
    if let Some(store) = store {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = store.as_os_str().to_owned();
            p.push(suffix);
            own.push(PathBuf::from(p));
        }
        // calibrate's floors change what a check assumes, never the code a run measures.
        own.push(crate::compare::measured_noise::path_beside(&store));
    }
    own
}

/// The current UTC time, RFC 3339 to the second: the `created_at` of records and reports.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Creates the report folder of a run that started at `created_at` (RFC 3339) on `git`'s
/// commit, and returns its id (the folder name) and path. The id ends in a random tag, so runs
/// of the same commit started in the same second by other processes, clones or machines never
/// share an id; the folder gets `-2`, `-3`, ... in the (then astronomically unlikely) case that
/// it exists.
pub fn create_run_dir(
    reports_dir: &Path,
    created_at: &str,
    git: Option<&GitInfo>,
) -> Result<(String, PathBuf), Error> {
    let id = format!("{}-{}", run_id(created_at, git), random_tag()?);
    let dir = unique_dir(reports_dir, &id)?;
    let id = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .unwrap_or(id);
    Ok((id, dir))
}

/// `2026-11-27T06:50:12Z` + commit -> `20261127-065012-1a2b3c4`.
fn run_id(created_at: &str, git: Option<&GitInfo>) -> String {
    let stamp: String = created_at
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect::<String>()
        .replace('T', "-");
    match git {
        Some(g) => format!("{stamp}-{}", g.commit.chars().take(7).collect::<String>()),
        None => stamp,
    }
}

/// Eight characters of base32 (40 bits) from the operating system's random source: with 400
/// runs saved in one second, the chance that two share an id is below one in ten million.
fn random_tag() -> Result<String, Error> {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).map_err(|e| Error::Io {
        context: "cannot read the system's random source for a run id".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(base32(&bytes))
}

/// RFC 4648 base32 in lower case, without padding (`a`-`z`, `2`-`7`: safe in file names).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Creates `root/id`, or `root/id-2`, `-3`, ... when runs start in the same second.
fn unique_dir(root: &Path, id: &str) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(root).map_err(|e| Error::Io {
        context: format!("cannot create reports folder {}", root.display()),
        source: e,
    })?;
    for n in 1.. {
        let name = if n == 1 {
            id.to_owned()
        } else {
            format!("{id}-{n}")
        };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::Io {
                    context: format!("cannot create {}", dir.display()),
                    source: e,
                })
            }
        }
    }
    unreachable!("an unbounded range always yields")
}

/// Parses the test knob `stage:percent` (for example `vector_search:50`).
pub fn parse_slowdown(spec: &str) -> Option<(String, u32)> {
    let (stage, pct) = spec.split_once(':')?;
    let pct: u32 = pct.trim().parse().ok()?;
    (!stage.trim().is_empty()).then(|| (stage.trim().to_owned(), pct))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_sortable_and_name_the_commit() {
        let g = GitInfo {
            commit: "1a2b3c4d5e6f".into(),
            branch: None,
            dirty: false,
            untracked: Vec::new(),
        };
        assert_eq!(
            run_id("2026-11-27T06:50:12Z", Some(&g)),
            "20261127-065012-1a2b3c4"
        );
        assert_eq!(run_id("2026-11-27T06:50:12Z", None), "20261127-065012");
    }

    #[test]
    fn base32_matches_rfc_4648_test_vectors() {
        // RFC 4648 section 10, lower-cased, without padding.
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"fo"), "mzxq");
        assert_eq!(base32(b"foo"), "mzxw6");
        assert_eq!(base32(b"foob"), "mzxw6yq");
        assert_eq!(base32(b"fooba"), "mzxw6ytb");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn run_ids_of_the_same_second_and_commit_differ() {
        let tmp = tempfile::tempdir().unwrap();
        let g = GitInfo {
            commit: "1a2b3c4d5e6f".into(),
            branch: None,
            dirty: false,
            untracked: Vec::new(),
        };
        let ids: std::collections::BTreeSet<String> = (0..200)
            .map(|_| {
                create_run_dir(tmp.path(), "2026-11-27T06:50:12Z", Some(&g))
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(ids.len(), 200);
        for id in &ids {
            let (stamp, tag) = id.rsplit_once('-').unwrap();
            assert_eq!(stamp, "20261127-065012-1a2b3c4", "{id}");
            assert_eq!(tag.len(), 8, "{id}");
        }
    }

    #[test]
    fn same_second_runs_get_distinct_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let a = unique_dir(tmp.path(), "x").unwrap();
        let b = unique_dir(tmp.path(), "x").unwrap();
        assert_ne!(a, b);
        assert!(b.ends_with("x-2"));
    }

    #[test]
    fn slowdown_spec_parses() {
        assert_eq!(
            parse_slowdown("vector_search:50"),
            Some(("vector_search".into(), 50))
        );
        assert_eq!(parse_slowdown("vector_search"), None);
        assert_eq!(parse_slowdown("x:-3"), None);
        assert_eq!(parse_slowdown(":3"), None);
    }
}
