//! `perfcheck.toml`: project settings (store location, check behaviour, thresholds).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::Thresholds;
use crate::error::Error;

/// File name of the project settings, looked up in the current directory.
pub const FILE_NAME: &str = "perfcheck.toml";
/// Environment variable that overrides the store location (below `--store`).
pub const STORE_ENV: &str = "PERFCHECK_STORE";
/// Store location when nothing else names one.
pub const DEFAULT_STORE: &str = "baselines/perfcheck.sqlite";

/// Everything `perfcheck.toml` may hold; every part is optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Baseline store settings.
    #[serde(default)]
    pub store: StoreSettings,
    /// Regression gate settings.
    #[serde(default)]
    pub check: CheckSettings,
    /// Thresholds per kind of measure and per metric (see [`crate::compare::thresholds`]).
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Which target is the harness (`[harness]`; default: an example or bench named
    /// `perfcheck`).
    #[serde(default)]
    pub harness: crate::harness::locate::HarnessConfig,
    /// Where the file was read from (`None` when absent).
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

/// `[store]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Path of the SQLite store, relative to the directory of perfcheck.toml.
    pub path: Option<PathBuf>,
}

/// `[check]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckSettings {
    /// Profile run by `check` when `--profile` is not given.
    pub profile: String,
    /// Exit 1 instead of 0 when no baseline is found.
    pub fail_without_baseline: bool,
    /// Accept runs of dirty working trees as baselines.
    pub include_dirty_baselines: bool,
    /// Branch whose merge-base starts the baseline search (default: origin/HEAD, main, master).
    pub default_branch: Option<String>,
    /// Seed of the bootstrap, so a check is reproducible.
    pub seed: u64,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            profile: "quick".into(),
            fail_without_baseline: false,
            include_dirty_baselines: false,
            default_branch: None,
            seed: 1,
        }
    }
}

impl ProjectConfig {
    /// Reads `dir/perfcheck.toml` if present; defaults otherwise.
    pub fn load(dir: &Path) -> Result<ProjectConfig, Error> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ProjectConfig::default())
            }
            Err(e) => {
                return Err(Error::Io {
                    context: format!("cannot read {}", path.display()),
                    source: e,
                })
            }
        };
        ProjectConfig::parse(&text, &path)
    }

    /// Parses and validates the text of a perfcheck.toml; `path` names the file in errors and
    /// becomes [`ProjectConfig::origin`].
    pub fn parse(text: &str, path: &Path) -> Result<ProjectConfig, Error> {
        let mut cfg: ProjectConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        cfg.thresholds.validate().map_err(|e| e.into_error(path))?;
        if cfg.check.profile.trim().is_empty() {
            return Err(Error::Config {
                path: path.to_path_buf(),
                message: "`check.profile` must name a profile".into(),
            });
        }
        cfg.origin = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// The store file: `--store` beats `PERFCHECK_STORE`, which beats `[store] path`, which
    /// beats `baselines/perfcheck.sqlite`.
    pub fn store_path(&self, flag: Option<&Path>) -> PathBuf {
        if let Some(p) = flag {
            return p.to_path_buf();
        }
        if let Some(p) = std::env::var_os(STORE_ENV).filter(|v| !v.is_empty()) {
            return PathBuf::from(p);
        }
        if let Some(p) = &self.store.path {
            let base = self
                .origin
                .as_deref()
                .and_then(Path::parent)
                .unwrap_or(Path::new(""));
            return base.join(p);
        }
        PathBuf::from(DEFAULT_STORE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_and_bad_keys_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = ProjectConfig::load(tmp.path()).unwrap();
        assert_eq!(cfg.check.profile, "quick");
        std::fs::write(
            tmp.path().join(FILE_NAME),
            "[check]\nfail_without_baselin = true\n",
        )
        .unwrap();
        let err = ProjectConfig::load(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("perfcheck.toml") && err.contains("fail_without_baselin"),
            "{err}"
        );
    }

    #[test]
    fn store_path_precedence() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join(FILE_NAME),
            "[store]\npath = \"b/s.sqlite\"\n",
        )
        .unwrap();
        let cfg = ProjectConfig::load(tmp.path()).unwrap();
        assert_eq!(
            cfg.store_path(Some(Path::new("flag.sqlite"))),
            PathBuf::from("flag.sqlite")
        );
        // The environment variable is process-wide; only check the file setting when unset.
        if std::env::var_os(STORE_ENV).is_none() {
            assert_eq!(cfg.store_path(None), tmp.path().join("b/s.sqlite"));
            assert_eq!(
                ProjectConfig::default().store_path(None),
                PathBuf::from(DEFAULT_STORE)
            );
        }
    }
}
