//! Baselines: stored runs keyed by commit, profile and machine, and how a check finds one.

pub mod checksum;
pub mod exchange;
pub mod pending;
pub mod select;
pub mod sqlite;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::record::RunRecord;

/// What the store knows about a run without loading its samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRun {
    /// The run's id (its `reports/` folder name).
    pub run_id: String,
    /// Commit measured; `None` for runs made outside a repository (never a baseline).
    pub commit: Option<String>,
    /// Branch at the time, if any.
    pub branch: Option<String>,
    /// Whether the working tree had uncommitted changes.
    pub dirty: bool,
    /// Profile name.
    pub profile: String,
    /// [`crate::machine::Machine::key`] of the machine that ran it.
    pub machine_key: String,
    /// RFC 3339 start time.
    pub created_at: String,
}

impl StoredRun {
    /// The searchable identity of a record.
    pub fn of(record: &RunRecord) -> StoredRun {
        StoredRun {
            run_id: record.run_id.clone(),
            commit: record.git.as_ref().map(|g| g.commit.clone()),
            branch: record.git.as_ref().and_then(|g| g.branch.clone()),
            dirty: record.git.as_ref().is_some_and(|g| g.dirty),
            profile: record.profile.name.clone(),
            machine_key: record.machine.key(),
            created_at: record.created_at.clone(),
        }
    }
}

/// Which runs to list or export.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only runs of commits starting with this prefix.
    pub commit_prefix: Option<String>,
    /// Only runs of this profile.
    pub profile: Option<String>,
    /// Only runs on this machine key.
    pub machine_key: Option<String>,
    /// Include runs of dirty working trees.
    pub include_dirty: bool,
}

impl RunFilter {
    /// Whether a stored run passes the filter.
    pub fn matches(&self, r: &StoredRun) -> bool {
        self.commit_prefix.as_ref().is_none_or(|p| {
            r.commit
                .as_deref()
                .is_some_and(|c| c.starts_with(p.as_str()))
        }) && self.profile.as_ref().is_none_or(|p| &r.profile == p)
            && self
                .machine_key
                .as_ref()
                .is_none_or(|m| &r.machine_key == m)
            && (self.include_dirty || !r.dirty)
    }
}

/// Outcome of saving a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// Stored as a new run.
    Inserted,
    /// This very run (same id, same content) was already stored; nothing changed.
    AlreadyPresent,
}

/// Outcome of importing runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Ids of the runs stored (after renaming).
    pub inserted: Vec<String>,
    /// Runs that were already stored with the same content.
    pub already: usize,
    /// `(id in the file, id stored)` for runs whose id was taken by a different run.
    pub renamed: Vec<(String, String)>,
}

/// Refuses a run that was slowed or faulted on purpose (the calibration knob was on): such a
/// run can never become a baseline, whichever backend or command stores it.
pub fn ensure_fair(record: &RunRecord) -> Result<(), Error> {
    match &record.slowdown {
        None => Ok(()),
        Some(knob) => Err(Error::Usage(format!(
            "run {} was slowed on purpose (PERFCHECK_SLOW_STAGE={knob}) and cannot be stored as a \
             baseline; nothing was saved",
            record.run_id
        ))),
    }
}

/// A place that keeps runs. SQLite now; a shared server backend later, for teams whose CI
/// runs on many machines.
pub trait Store {
    /// Stores one run, whole or not at all. A different run under the same id is an error,
    /// never a silent skip.
    fn save(&mut self, record: &RunRecord) -> Result<Saved, Error>;
    /// Stores several runs in one transaction (import): the same run again is recognised by
    /// its content; a different run under a taken id is stored under a content-derived id.
    fn save_all(&mut self, records: &[RunRecord]) -> Result<Imported, Error>;
    /// Runs matching `filter`, oldest first, without their samples.
    fn list(&self, filter: &RunFilter) -> Result<Vec<StoredRun>, Error>;
    /// One whole run by id.
    fn load(&self, run_id: &str) -> Result<Option<RunRecord>, Error>;
    /// Deletes one run by id; whether it existed.
    fn delete(&mut self, run_id: &str) -> Result<bool, Error>;
    /// Clean runs (dirty ones too when asked) of `commit` with this profile and machine.
    fn runs_of_commit(
        &self,
        commit: &str,
        profile: &str,
        machine_key: &str,
        include_dirty: bool,
    ) -> Result<Vec<StoredRun>, Error> {
        let filter = RunFilter {
            commit_prefix: Some(commit.to_owned()),
            profile: Some(profile.to_owned()),
            machine_key: Some(machine_key.to_owned()),
            include_dirty,
        };
        Ok(self
            .list(&filter)?
            .into_iter()
            .filter(|r| r.commit.as_deref() == Some(commit))
            .collect())
    }
}
