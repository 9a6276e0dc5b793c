//! Run profiles: `profiles/<name>.toml`, with the built-in ones compiled in as a fallback.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::corpus::CorpusConfig;
use crate::engine::EngineConfig;
use crate::error::Error;
use crate::workload::Workload;

/// Profiles shipped with perfcheck, usable from any directory.
const BUILTIN: &[(&str, &str)] = &[
    ("quick", include_str!("../profiles/quick.toml")),
    ("ci", include_str!("../profiles/ci.toml")),
    ("tiny", include_str!("../profiles/tiny.toml")),
    ("ab", include_str!("../profiles/ab.toml")),
    ("load", include_str!("../profiles/load.toml")),
    ("soak", include_str!("../profiles/soak.toml")),
    ("soak-ci", include_str!("../profiles/soak-ci.toml")),
];

/// A named run profile: what to run and how big.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name (file stem), filled in when loaded.
    #[serde(default)]
    pub name: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Workloads run when none is given on the command line.
    #[serde(default = "Workload::all_vec")]
    pub workloads: Vec<Workload>,
    /// Corpus size and shape.
    #[serde(default)]
    pub corpus: CorpusConfig,
    /// Engine settings (index, cache, rerank weights).
    #[serde(default)]
    pub engine: EngineConfig,
    /// Operation counts and sampling.
    #[serde(default)]
    pub run: RunSettings,
    /// Operation mix of the `mixed` workload (and of `load` runs).
    #[serde(default)]
    pub mix: Mix,
    /// Load-test settings of `cargo perfcheck load` (defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::load::LoadSettings>,
    /// Instructions pass settings (`run --instructions`; `enabled` turns it on for `check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<InstructionsSettings>,
}

/// The instructions pass: the measured operations again, in a process of their own under
/// callgrind, counted instead of timed. Counts need no repetition, so a few hundred operations
/// suffice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstructionsSettings {
    /// Count instructions in every `run` and `check` of this profile (`run --instructions`
    /// does it for one run).
    pub enabled: bool,
    /// Counted operations per workload (recall, remember, mixed).
    pub ops: u64,
    /// Counted consolidation batches.
    pub consolidation_ops: u64,
    /// Simulate the caches too (`est_cycles`), about twice as slow.
    pub cache_sim: bool,
}

impl Default for InstructionsSettings {
    fn default() -> Self {
        InstructionsSettings {
            enabled: false,
            ops: 300,
            consolidation_ops: 3,
            cache_sim: false,
        }
    }
}

/// Operation counts and sampling of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Unrecorded operations before measuring (recall, remember, mixed).
    pub warmup_ops: u64,
    /// Measured operations per workload (recall, remember, mixed).
    pub ops: u64,
    /// Measured consolidation runs; each consolidates one batch of events.
    pub consolidation_ops: u64,
    /// Events per consolidation batch.
    pub consolidation_batch: usize,
    /// Every Nth operation reads thread CPU time at each stage boundary; those operations are
    /// left out of wall-time statistics. 0 turns CPU sampling off.
    pub cpu_sample_every: u64,
    /// Results per recall.
    pub recall_k: usize,
    /// Share of recalls that repeat a recent query (exercises the cache), 0..=1.
    pub repeat_fraction: f64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            warmup_ops: 200,
            ops: 5_000,
            consolidation_ops: 10,
            consolidation_batch: 1_000,
            cpu_sample_every: 10,
            recall_k: 10,
            repeat_fraction: 0.2,
        }
    }
}

/// Operation mix of the `mixed` workload, in relative weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    /// Weight of recall.
    pub recall: u32,
    /// Weight of remember.
    pub remember: u32,
    /// Weight of consolidation.
    pub consolidation: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            recall: 80,
            remember: 15,
            consolidation: 5,
        }
    }
}

impl Profile {
    /// Loads a profile by name (`profiles/<name>.toml` under `dir`, else a built-in) or by path
    /// (anything ending in `.toml` or containing a path separator).
    pub fn load(name_or_path: &str, dir: &Path) -> Result<Profile, Error> {
        let as_path = Path::new(name_or_path);
        if name_or_path.ends_with(".toml") || name_or_path.contains(std::path::MAIN_SEPARATOR) {
            let text = std::fs::read_to_string(as_path).map_err(|e| Error::Io {
                context: format!("cannot read profile {}", as_path.display()),
                source: e,
            })?;
            let stem = as_path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("custom");
            return Profile::parse(&text, stem, as_path);
        }
        let file = dir.join(format!("{name_or_path}.toml"));
        if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::Io {
                context: format!("cannot read profile {}", file.display()),
                source: e,
            })?;
            return Profile::parse(&text, name_or_path, &file);
        }
        match BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, text)) => Profile::parse(text, n, Path::new(&format!("<built-in {n}>"))),
            None => Err(Error::UnknownProfile {
                name: name_or_path.to_owned(),
                available: Profile::available(dir).join(", "),
                dir: dir.to_path_buf(),
            }),
        }
    }

    /// Parses profile TOML; `origin` names the file in errors.
    pub fn parse(text: &str, name: &str, origin: &Path) -> Result<Profile, Error> {
        let mut p: Profile = toml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        p.name = name.to_owned();
        p.validate(origin)?;
        Ok(p)
    }

    /// Checks every value a profile file could get wrong (also run on the profile a record
    /// carries, which came from another machine); errors name `origin`.
    pub fn validate(&self, origin: &Path) -> Result<(), Error> {
        let bad = |message: String| {
            Err(Error::Config {
                path: origin.to_path_buf(),
                message,
            })
        };
        if let Err(e) = self.corpus.validate() {
            return bad(e.to_string());
        }
        if let Err(e) = self.engine.validate() {
            return bad(e.to_string());
        }
        if self.run.recall_k == 0 {
            return bad("run.recall_k must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.run.repeat_fraction) {
            return bad(format!(
                "run.repeat_fraction must be between 0 and 1, got {}",
                self.run.repeat_fraction
            ));
        }
        if self.run.consolidation_batch == 0 {
            return bad("run.consolidation_batch must be at least 1".into());
        }
        if self.mix.recall + self.mix.remember + self.mix.consolidation == 0 {
            return bad("mix weights must not all be 0".into());
        }
        if let Some(Err(e)) = self.load.as_ref().map(|l| l.validate()) {
            return bad(e);
        }
        if let Some(i) = &self.instructions {
            if i.ops == 0 || i.consolidation_ops == 0 {
                return bad(format!(
                    "instructions.ops and instructions.consolidation_ops must be at least 1, got {} and {}",
                    i.ops, i.consolidation_ops
                ));
            }
        }
        Ok(())
    }

    /// Names of the profiles found in `dir` and built in, sorted and deduplicated.
    pub fn available(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                        names.push(stem.to_owned());
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// The default profile directory: `profiles/` under the current directory.
pub fn default_profile_dir() -> PathBuf {
    PathBuf::from("profiles")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        let dir = Path::new("/nonexistent");
        for (name, _) in BUILTIN {
            let p = Profile::load(name, dir).expect(name);
            assert_eq!(&p.name, name);
            assert!(!p.workloads.is_empty());
        }
        let quick = Profile::load("quick", dir).unwrap();
        assert_eq!(quick.corpus.events, 20_000);
        let ci = Profile::load("ci", dir).unwrap();
        assert_eq!(ci.corpus.events, 100_000);
    }

    #[test]
    fn malformed_toml_names_the_file_and_line() {
        let err = Profile::parse("[run]\nops = \"many\"\n", "x", Path::new("profiles/x.toml"))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("profiles/x.toml"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn unknown_key_and_unknown_workload_are_rejected() {
        let err = Profile::parse("[run]\nopz = 3\n", "x", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("opz"), "{err}");
        let err =
            Profile::parse("workloads = [\"recal\"]\n", "x", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("recal"), "{err}");
    }

    #[test]
    fn unknown_profile_lists_the_available_ones() {
        let err = Profile::load("quik", Path::new("/nonexistent")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("quik") && msg.contains("quick") && msg.contains("ci"),
            "{msg}"
        );
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let err =
            Profile::parse("[run]\nrepeat_fraction = 1.5\n", "x", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("repeat_fraction"), "{err}");
    }
}
