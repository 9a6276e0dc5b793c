//! Run profiles: `profiles/<name>.toml`, with the built-in ones compiled in as a fallback.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

pub mod chaos;
pub mod load;
pub mod mix;

/// Profiles every harness has, whatever it measures: operation counts only (no workload
/// settings). A harness registers its own (the engine's `quick` has a corpus); those and
/// `profiles/<name>.toml` come first.
const BUILTIN: &[(&str, &str)] = &[
    (
        "quick",
        "description = \"2,000 measured operations per workload\"\n[run]\nwarmup_ops = 100\nops = 2000\ncpu_sample_every = 10\n",
    ),
    (
        "ci",
        "description = \"10,000 measured operations per workload\"\n[run]\nwarmup_ops = 200\nops = 10000\ncpu_sample_every = 10\n",
    ),
    (
        "tiny",
        "description = \"200 measured operations per workload, for smoke runs\"\n[run]\nwarmup_ops = 10\nops = 200\ncpu_sample_every = 10\n",
    ),
    (
        "ab",
        "description = \"short runs for check --ab rounds\"\n[run]\nwarmup_ops = 100\nops = 2000\ncpu_sample_every = 10\n",
    ),
];

/// A table of settings perfcheck passes through to a workload without reading it.
pub type Table = serde_json::Map<String, serde_json::Value>;

/// A named run profile: what to run and how big. perfcheck owns `workloads`, `[run]`'s
/// counts, `[load]`, `[chaos]` and `[instructions]`; everything else (`[corpus]`, `[engine]`, ...) is the
/// workload's own settings, kept as an opaque table and parsed by the workload
/// ([`crate::harness::Workload::Config`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Profile {
    /// Name (file stem), filled in when loaded.
    #[serde(default)]
    pub name: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Workloads run when none is given on the command line; empty: every registered one.
    #[serde(default)]
    pub workloads: Vec<String>,
    /// Operation counts and sampling.
    #[serde(default)]
    pub run: RunSettings,
    /// Load-test settings of `cargo perfcheck load` (defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<load::LoadSettings>,
    /// Instructions pass settings (`run --instructions`; `enabled` turns it on for `check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<InstructionsSettings>,
    /// Fault timeline of `cargo perfcheck chaos` (defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<chaos::ChaosSettings>,
    /// The workloads' own sections, unread by perfcheck.
    #[serde(flatten)]
    pub workload_config: Table,
    /// The file the profile was read from, for errors.
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

/// The instructions pass: the measured operations again, in a process of their own under
/// callgrind, counted instead of timed. Counts need no repetition, so a few hundred operations
/// suffice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstructionsSettings {
    /// Count instructions in every `run` and `check` of this profile (`run --instructions`
    /// does it for one run).
    pub enabled: bool,
    /// Counted operations per workload (a workload may count fewer: one batch is many).
    pub ops: u64,
    /// Simulate the caches too (`est_cycles`), about twice as slow.
    pub cache_sim: bool,
    /// Keys that are the workloads' (`consolidation_ops`), passed to them.
    #[serde(flatten)]
    pub rest: Table,
}

impl Default for InstructionsSettings {
    fn default() -> Self {
        InstructionsSettings {
            enabled: false,
            ops: 300,
            cache_sim: false,
            rest: Table::new(),
        }
    }
}

/// Operation counts and sampling of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSettings {
    /// Unrecorded operations before measuring.
    pub warmup_ops: u64,
    /// Measured operations per workload (a workload may choose its own count).
    pub ops: u64,
    /// Every Nth operation reads thread CPU time at each stage boundary; those operations are
    /// left out of wall-time statistics. 0 turns CPU sampling off.
    pub cpu_sample_every: u64,
    /// Keys that are the workloads' (`recall_k`, `consolidation_batch`), passed to them.
    #[serde(flatten)]
    pub rest: Table,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            warmup_ops: 200,
            ops: 5_000,
            cpu_sample_every: 10,
            rest: Table::new(),
        }
    }
}

/// Profiles a harness ships (name, TOML text), found before perfcheck's own.
pub type BuiltinProfiles = [(&'static str, &'static str)];

impl Profile {
    /// Loads a profile by name (`profiles/<name>.toml` under `dir`, else one of `harness`'s
    /// built-ins, else one of perfcheck's) or by path (anything ending in `.toml` or containing
    /// a path separator).
    pub fn load(
        name_or_path: &str,
        dir: &Path,
        harness: &BuiltinProfiles,
    ) -> Result<Profile, Error> {
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
        match harness
            .iter()
            .chain(BUILTIN)
            .find(|(n, _)| *n == name_or_path)
        {
            Some((n, text)) => Profile::parse(text, n, Path::new(&format!("<built-in {n}>"))),
            None => Err(Error::UnknownProfile {
                name: name_or_path.to_owned(),
                available: Profile::available(dir, harness).join(", "),
                dir: dir.to_path_buf(),
            }),
        }
    }

    /// Parses profile TOML; `origin` names the file in errors. The workloads' sections are
    /// checked when a harness configures its workloads from them.
    pub fn parse(text: &str, name: &str, origin: &Path) -> Result<Profile, Error> {
        let mut p: Profile = toml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        p.name = name.to_owned();
        p.origin = Some(origin.to_path_buf());
        p.validate(origin)?;
        Ok(p)
    }

    /// The file the profile came from, or `<profile NAME>` for one decoded from a record.
    pub fn origin(&self) -> PathBuf {
        self.origin
            .clone()
            .unwrap_or_else(|| format!("<profile {}>", self.name).into())
    }

    /// Checks every value of perfcheck's own sections a profile file could get wrong (also
    /// run on the profile a record carries, which came from another machine); errors name
    /// `origin`.
    pub fn validate(&self, origin: &Path) -> Result<(), Error> {
        let bad = |message: String| {
            Err(Error::Config {
                path: origin.to_path_buf(),
                message,
            })
        };
        if let Some(Err(e)) = self.load.as_ref().map(|l| l.validate()) {
            return bad(e);
        }
        if let Some(Err(e)) = self.chaos.as_ref().map(|c| c.validate()) {
            return bad(e);
        }
        // TOML has no null: a null in the opaque tables was a NaN or infinite float, which a
        // record (JSON) cannot carry.
        let rest = [
            (String::new(), &self.workload_config),
            ("run.".to_owned(), &self.run.rest),
        ];
        let instructions = self
            .instructions
            .as_ref()
            .map(|i| ("instructions.".to_owned(), &i.rest));
        for (prefix, table) in rest.into_iter().chain(instructions) {
            if let Some((key, problem)) = first_unstorable(table, &prefix) {
                return bad(format!("{key}: {problem}"));
            }
        }
        if let Some(i) = &self.instructions {
            if i.ops == 0 {
                return bad("instructions.ops must be at least 1, got 0".into());
            }
        }
        Ok(())
    }

    /// Names of the profiles found in `dir` and built in, sorted and deduplicated.
    pub fn available(dir: &Path, harness: &BuiltinProfiles) -> Vec<String> {
        let mut names: Vec<String> = harness
            .iter()
            .chain(BUILTIN)
            .map(|(n, _)| n.to_string())
            .collect();
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

/// Deepest nesting of tables and arrays a workload section may have: far beyond any real
/// setting, and well within what a record (JSON, parsed with a depth limit) can carry.
const MAX_DEPTH: usize = 24;

/// The dotted key of the first value in `table` that a record cannot store, and why: a null
/// (TOML has none: it was a NaN or an infinity) or nesting deeper than [`MAX_DEPTH`].
fn first_unstorable(table: &Table, prefix: &str) -> Option<(String, &'static str)> {
    fn walk(v: &serde_json::Value, at: String, depth: usize) -> Option<(String, &'static str)> {
        if depth > MAX_DEPTH {
            return Some((at, "nested too deeply (at most 24 levels)"));
        }
        match v {
            serde_json::Value::Null => Some((at, "expected a finite number")),
            serde_json::Value::Object(m) => m
                .iter()
                .find_map(|(k, v)| walk(v, format!("{at}.{k}"), depth + 1)),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, format!("{at}[{i}]"), depth + 1)),
            _ => None,
        }
    }
    table
        .iter()
        .find_map(|(k, v)| walk(v, format!("{prefix}{k}"), 1))
}

/// The default profile directory: `profiles/` under the current directory.
pub fn default_profile_dir() -> PathBuf {
    PathBuf::from("profiles")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse_and_hold_only_perfcheck_sections() {
        let dir = Path::new("/nonexistent");
        for (name, _) in BUILTIN {
            let p = Profile::load(name, dir, &[]).expect(name);
            assert_eq!(&p.name, name);
            assert!(p.run.ops >= 200, "{name}: {}", p.run.ops);
            assert!(
                p.workload_config.is_empty() && p.run.rest.is_empty(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_harness_profile_comes_before_perfcheck_s_own() {
        let harness: &BuiltinProfiles = &[("quick", "[run]\nops = 7\n[corpus]\nevents = 9\n")];
        let p = Profile::load("quick", Path::new("/nonexistent"), harness).unwrap();
        assert_eq!(p.run.ops, 7);
        assert_eq!(p.workload_config["corpus"]["events"], 9);
        let names = Profile::available(Path::new("/nonexistent"), harness);
        assert_eq!(names.iter().filter(|n| *n == "quick").count(), 1);
    }

    #[test]
    fn workload_keys_pass_through_and_survive_a_record_round_trip() {
        let text = "[run]\nops = 3\nrecall_k = 5\n[engine]\ncache = 8\n[instructions]\nconsolidation_ops = 2\n";
        let p = Profile::parse(text, "x", Path::new("x.toml")).unwrap();
        assert_eq!(p.run.ops, 3);
        assert_eq!(p.run.rest["recall_k"], 5);
        assert_eq!(p.workload_config["engine"]["cache"], 8);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["run"]["recall_k"], 5);
        assert_eq!(json["engine"]["cache"], 8);
        let back: Profile = serde_json::from_value(json).unwrap();
        assert_eq!(back.run.rest["recall_k"], 5);
        assert_eq!(back.instructions.unwrap().rest["consolidation_ops"], 2);
    }

    #[test]
    fn a_non_finite_number_in_a_workload_section_is_rejected_by_key() {
        let err = Profile::parse("[engine.rerank]\nweight = nan\n", "x", Path::new("x.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("engine.rerank.weight"), "{err}");
        let err =
            Profile::parse("[run]\nrepeat_fraction = inf\n", "x", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("run.repeat_fraction"), "{err}");
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
    fn unknown_profile_lists_the_available_ones() {
        let err = Profile::load("quik", Path::new("/nonexistent"), &[("mine", "")]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("quik") && msg.contains("quick") && msg.contains("mine"),
            "{msg}"
        );
    }
}
