//! Noise floors measured on a machine by `calibrate`, kept in `noise.json` beside the store
//! and used by later checks on the same machine and profile instead of the configured floors.
//!
//! Two floors per metric, both one standard deviation of a run's ln statistic beyond its own
//! sampling error, in percent:
//! - `drift`: between runs of one binary over the calibration's span (the `noise` floor of a
//!   check against stored baselines);
//! - `paired`: between the two sides of the comment-only control's rounds (the floor of
//!   `check --ab`, `paired_noise`).
//!
//! A floor is only ever a minimum: the spread a check itself measures widens it, as it widens
//! the configured floors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Thresholds;
use crate::error::Error;

/// Version of the noise.json layout.
pub const NOISE_SCHEMA_VERSION: u32 = 1;

/// File name of the measured floors, in the store's folder.
pub const FILE_NAME: &str = "noise.json";

/// The noise file of the store at `store`: `noise.json` in the same folder.
pub fn path_beside(store: &Path) -> PathBuf {
    store.parent().unwrap_or(Path::new("")).join(FILE_NAME)
}

/// All measured floors: one entry per machine and profile, the newest calibration's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseFile {
    /// [`NOISE_SCHEMA_VERSION`].
    pub schema: u32,
    /// One entry per (machine, profile).
    pub entries: Vec<NoiseEntry>,
}

/// Floors of one machine and profile, from one calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseEntry {
    /// Machine fingerprint key ([`crate::machine::Machine::key`]).
    pub machine: String,
    /// Profile name of the calibrated runs.
    pub profile: String,
    /// When the calibration finished (RFC 3339).
    pub measured_at: String,
    /// Commit the calibrated binaries were built from.
    pub commit: String,
    /// Minutes from the first to the last calibrated run: the span `drift` covers.
    pub span_minutes: f64,
    /// Upper confidence level of the stored floors (their estimates' upper bound).
    pub confidence: f64,
    /// Per metric (`workload/stage/measure`).
    pub metrics: BTreeMap<String, MetricNoise>,
}

/// The floors of one metric, in percent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricNoise {
    /// Between runs of one binary (stored-baseline checks); `None` when too few runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<f64>,
    /// Between paired sides of one session (`check --ab`); `None` without A/A rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<f64>,
    /// Runs behind `drift`.
    pub runs: usize,
    /// Rounds behind `paired`.
    pub pairs: usize,
}

/// Where a check's floors came from, for its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseSource {
    /// The file read.
    pub file: String,
    /// When its entry was measured.
    pub measured_at: String,
    /// Commit of the calibration.
    pub commit: String,
    /// Metrics with a measured floor of the kind the check uses.
    pub metrics: usize,
}

impl NoiseFile {
    /// Reads `path`; `Ok(None)` when it does not exist. A file that does not decode is an error
    /// naming it (a check never silently falls back from a damaged calibration).
    pub fn load(path: &Path) -> Result<Option<NoiseFile>, Error> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Io {
                    context: format!("cannot read {}", path.display()),
                    source: e,
                })
            }
        };
        let file: NoiseFile = serde_json::from_slice(&bytes).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: format!(
                "not a noise file perfcheck can read ({e}); run `cargo perfcheck calibrate` \
                 again or delete it to use the configured floors"
            ),
        })?;
        if file.schema != NOISE_SCHEMA_VERSION {
            return Err(Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "noise file layout {} is not {NOISE_SCHEMA_VERSION}, the one this perfcheck \
                     reads; run `cargo perfcheck calibrate` again",
                    file.schema
                ),
            });
        }
        for e in &file.entries {
            for (name, m) in &e.metrics {
                for v in [m.drift, m.paired].into_iter().flatten() {
                    if !(v.is_finite() && (0.0..=1000.0).contains(&v)) {
                        return Err(Error::Config {
                            path: path.to_path_buf(),
                            message: format!(
                                "floor {v} of {name} ({} on {}) is not a percentage in 0..=1000",
                                e.profile, e.machine
                            ),
                        });
                    }
                }
            }
        }
        Ok(Some(file))
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Json {
            context: format!("cannot encode {}", path.display()),
            source: e,
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                context: format!("cannot create {}", dir.display()),
                source: e,
            })?;
        }
        crate::files::write_atomic(path, &json).map_err(|e| Error::Io {
            context: format!("cannot write {}", path.display()),
            source: e,
        })
    }

    /// Puts `entry` in place of the one of the same machine and profile.
    pub fn upsert(&mut self, entry: NoiseEntry) {
        self.entries
            .retain(|e| !(e.machine == entry.machine && e.profile == entry.profile));
        self.entries.push(entry);
    }

    /// The entry of this machine and profile.
    pub fn lookup(&self, machine: &str, profile: &str) -> Option<&NoiseEntry> {
        self.entries
            .iter()
            .find(|e| e.machine == machine && e.profile == profile)
    }
}

/// `thresholds` with the floors measured for `machine` and `profile` in `noise_file`, if it
/// has them, and where they came from; `paired` picks which floor the source counts. The
/// thresholds are unchanged when the file or its entry is absent.
pub fn apply(
    thresholds: &Thresholds,
    noise_file: &Path,
    machine: &str,
    profile: &str,
    paired: bool,
) -> Result<(Thresholds, Option<NoiseSource>), Error> {
    let Some(file) = NoiseFile::load(noise_file)? else {
        return Ok((thresholds.clone(), None));
    };
    let Some(entry) = file.lookup(machine, profile) else {
        return Ok((thresholds.clone(), None));
    };
    let t = thresholds.with_measured(entry);
    let metrics = t
        .measured
        .values()
        .filter(|m| if paired { m.paired } else { m.drift }.is_some())
        .count();
    if metrics == 0 {
        return Ok((thresholds.clone(), None));
    }
    let source = NoiseSource {
        file: noise_file.display().to_string(),
        measured_at: entry.measured_at.clone(),
        commit: entry.commit.clone(),
        metrics,
    };
    Ok((t, Some(source)))
}

impl Default for NoiseFile {
    fn default() -> Self {
        NoiseFile {
            schema: NOISE_SCHEMA_VERSION,
            entries: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(machine: &str, drift: f64) -> NoiseEntry {
        NoiseEntry {
            machine: machine.into(),
            profile: "ab".into(),
            measured_at: "2026-12-01T20:00:00Z".into(),
            commit: "c".repeat(40),
            span_minutes: 30.0,
            confidence: 0.9,
            metrics: BTreeMap::from([(
                "recall/total/wall_ns".to_owned(),
                MetricNoise {
                    drift: Some(drift),
                    paired: Some(drift / 2.0),
                    runs: 40,
                    pairs: 20,
                },
            )]),
        }
    }

    #[test]
    fn upsert_replaces_only_the_same_machine_and_profile() {
        let mut f = NoiseFile::default();
        f.upsert(entry("m1", 4.0));
        f.upsert(entry("m2", 6.0));
        f.upsert(entry("m1", 3.0));
        assert_eq!(f.entries.len(), 2);
        let m1 = f.lookup("m1", "ab").unwrap();
        assert_eq!(m1.metrics["recall/total/wall_ns"].drift, Some(3.0));
        assert!(f.lookup("m1", "quick").is_none());
    }

    #[test]
    fn round_trips_and_rejects_damage_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines").join(FILE_NAME);
        assert_eq!(NoiseFile::load(&path).unwrap(), None);
        let mut f = NoiseFile::default();
        f.upsert(entry("m1", 4.0));
        f.save(&path).unwrap();
        assert_eq!(NoiseFile::load(&path).unwrap(), Some(f));

        std::fs::write(&path, b"{\"schema\": 1, \"entries\": [").unwrap();
        let err = NoiseFile::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("noise.json") && err.contains("calibrate"),
            "{err}"
        );

        let mut bad = NoiseFile::default();
        bad.upsert(entry("m1", f64::INFINITY));
        let json = serde_json::to_string(&bad).unwrap().replace("null", "-5.0");
        std::fs::write(&path, json).unwrap();
        let err = NoiseFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a percentage"), "{err}");
    }

    #[test]
    fn lives_beside_the_store() {
        assert_eq!(
            path_beside(Path::new("baselines/perfcheck.sqlite")),
            Path::new("baselines/noise.json")
        );
        assert_eq!(path_beside(Path::new("s.sqlite")), Path::new("noise.json"));
    }
}
