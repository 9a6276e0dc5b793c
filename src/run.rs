//! `run`: measures the requested workloads under a profile and writes the run record.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::Profile;
use crate::engine::corpus::Corpus;
use crate::error::Error;
use crate::git::GitInfo;
use crate::record::RunRecord;
use crate::stage;
use crate::workload::runner::run_workload;
use crate::workload::Workload;

/// What to run.
pub struct RunRequest {
    /// The profile (sizes, counts, engine settings).
    pub profile: Profile,
    /// Workloads to run; empty means the profile's list.
    pub workloads: Vec<Workload>,
    /// Folder that receives `<run-id>/run.json`.
    pub reports_dir: PathBuf,
    /// Directory whose git repository identifies the commit.
    pub repo_dir: PathBuf,
    /// Test knob: slow one stage by a percentage (see [`stage::set_slowdown`]).
    pub slowdown: Option<(String, u32)>,
}

/// A finished run: the record and where it was written.
pub struct RunOutcome {
    /// The run record.
    pub record: RunRecord,
    /// The folder holding `run.json`.
    pub dir: PathBuf,
}

/// Runs every requested workload, then writes `reports/<run-id>/run.json`. `log` receives
/// progress lines.
pub fn execute(req: &RunRequest, log: &mut dyn FnMut(&str)) -> Result<RunOutcome, Error> {
    let workloads = if req.workloads.is_empty() {
        req.profile.workloads.clone()
    } else {
        req.workloads.clone()
    };
    let created_at = now_rfc3339();
    let git = GitInfo::discover(&req.repo_dir);

    stage::set_slowdown(req.slowdown.as_ref().map(|(s, p)| (s.as_str(), *p)));
    log(&format!(
        "profile {}: generating corpus ({} events, seed {})",
        req.profile.name, req.profile.corpus.events, req.profile.corpus.seed
    ));
    let corpus = Corpus::generate(&req.profile.corpus)?;
    let mut results = Vec::with_capacity(workloads.len());
    for w in &workloads {
        results.push(run_workload(*w, &req.profile, &corpus, log)?);
    }
    stage::set_slowdown(None);

    let (run_id, dir) = create_run_dir(&req.reports_dir, &created_at, git.as_ref())?;
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

/// The current UTC time, RFC 3339 to the second: the `created_at` of records and reports.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Creates the report folder of a run that started at `created_at` (RFC 3339) on `git`'s
/// commit, and returns its id (the folder name) and path. Runs started in the same second get
/// `-2`, `-3`, ...
pub fn create_run_dir(
    reports_dir: &Path,
    created_at: &str,
    git: Option<&GitInfo>,
) -> Result<(String, PathBuf), Error> {
    let id = run_id(created_at, git);
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
        Some(g) => format!("{stamp}-{}", &g.commit[..g.commit.len().min(7)]),
        None => stamp,
    }
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
        };
        assert_eq!(
            run_id("2026-11-27T06:50:12Z", Some(&g)),
            "20261127-065012-1a2b3c4"
        );
        assert_eq!(run_id("2026-11-27T06:50:12Z", None), "20261127-065012");
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
