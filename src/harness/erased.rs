//! Workloads behind trait objects, so the runner, the profiler passes and the instructions
//! pass drive any crate's workloads through one interface.

use std::path::Path;
use std::sync::Arc;

use crate::config::{InstructionsSettings, Profile, RunSettings};
use crate::error::Error;
use crate::harness::workload::{Gap, OpCounts, SetupContext, Workload};
use crate::record::{CacheCounts, Quality};

/// A registered workload, its settings not yet parsed.
pub trait AnyWorkload: Send + Sync {
    /// Its name.
    fn name(&self) -> &str;
    /// Its one-line description.
    fn description(&self) -> &str;
    /// Parses and checks its settings from `profile`; errors name `origin`.
    fn configure(&self, profile: &Profile, origin: &Path) -> Result<Arc<dyn Configured>, Error>;
}

/// A workload with its settings: ready to set up passes.
pub trait Configured: Send + Sync {
    /// The workload's name.
    fn name(&self) -> &str;
    /// Warm-up and measured operations of a timing or profiling pass.
    fn op_counts(&self, run: &RunSettings) -> OpCounts;
    /// Operations the instructions pass counts.
    fn counted_ops(&self, settings: &InstructionsSettings) -> u64;
    /// The progress line before setup, if the workload has one.
    fn setup_note(&self) -> Option<String>;
    /// Untimed setup of one pass.
    fn setup(&self, ctx: &SetupContext<'_>) -> Result<Box<dyn Session>, Error>;
}

/// One pass's state: prepares and executes operations.
pub trait Session: Send {
    /// Untimed: chooses the next input and returns the operation's kind.
    fn prepare(&mut self) -> Result<&'static str, Error>;
    /// The measured operation on the input [`prepare`](Self::prepare) chose.
    fn execute(&mut self) -> Result<(), Error>;
    /// Untimed work between operations.
    fn between_ops(&mut self, gap: Gap) -> Result<(), Error>;
    /// Result quality after the measured operations.
    fn quality(&mut self) -> Result<Option<Quality>, Error>;
    /// Cumulative cache counters.
    fn cache_counts(&self) -> Option<CacheCounts>;
}

/// Wraps a typed workload.
pub(crate) struct Erased<W: Workload>(pub(crate) Arc<W>);

struct WithConfig<W: Workload> {
    workload: Arc<W>,
    config: W::Config,
}

struct Running<W: Workload> {
    workload: Arc<W>,
    state: W::State,
    next: Option<W::Input>,
    kind: &'static str,
}

fn failed(workload: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Workload(format!("workload {workload}: {what}: {e}"))
}

/// The profile's parts a workload's settings are read from: every section perfcheck does not
/// own, and the keys of `[run]` and `[instructions]` that are not perfcheck's.
pub fn workload_table(profile: &Profile) -> serde_json::Map<String, serde_json::Value> {
    let mut table = profile.workload_config.clone();
    if !profile.run.rest.is_empty() {
        table.insert("run".into(), profile.run.rest.clone().into());
    }
    if let Some(rest) = profile.instructions.as_ref().map(|i| &i.rest) {
        if !rest.is_empty() {
            table.insert("instructions".into(), rest.clone().into());
        }
    }
    table
}

/// A harness's typed settings from their table; errors name `origin` and `what` they are for.
pub fn parse_settings<C: serde::de::DeserializeOwned>(
    table: crate::config::Table,
    origin: &Path,
    what: &str,
) -> Result<C, Error> {
    serde_json::from_value(serde_json::Value::Object(table)).map_err(|e| Error::Config {
        path: origin.to_path_buf(),
        message: format!("settings of {what}: {e}"),
    })
}

impl<W: Workload> AnyWorkload for Erased<W> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn description(&self) -> &str {
        self.0.description()
    }

    fn configure(&self, profile: &Profile, origin: &Path) -> Result<Arc<dyn Configured>, Error> {
        let what = format!("workload {}", self.0.name());
        let config: W::Config = parse_settings(workload_table(profile), origin, &what)?;
        self.0.validate(&config).map_err(|message| Error::Config {
            path: origin.to_path_buf(),
            message,
        })?;
        Ok(Arc::new(WithConfig {
            workload: Arc::clone(&self.0),
            config,
        }))
    }
}

impl<W: Workload> Configured for WithConfig<W> {
    fn name(&self) -> &str {
        self.workload.name()
    }

    fn op_counts(&self, run: &RunSettings) -> OpCounts {
        self.workload.op_counts(&self.config, run)
    }

    fn counted_ops(&self, settings: &InstructionsSettings) -> u64 {
        self.workload.counted_ops(&self.config, settings)
    }

    fn setup_note(&self) -> Option<String> {
        self.workload.setup_note(&self.config)
    }

    fn setup(&self, ctx: &SetupContext<'_>) -> Result<Box<dyn Session>, Error> {
        let state = self
            .workload
            .setup(&self.config, ctx)
            .map_err(|e| failed(self.workload.name(), "setup failed", e))?;
        let kind = static_name(self.workload.name());
        Ok(Box::new(Running {
            workload: Arc::clone(&self.workload),
            state,
            next: None,
            kind,
        }))
    }
}

impl<W: Workload> Session for Running<W> {
    fn prepare(&mut self) -> Result<&'static str, Error> {
        let input = self
            .workload
            .prepare(&mut self.state)
            .map_err(|e| failed(self.workload.name(), "preparing an operation failed", e))?;
        let kind = self.workload.op_kind(&input).unwrap_or(self.kind);
        self.next = Some(input);
        Ok(kind)
    }

    #[inline]
    fn execute(&mut self) -> Result<(), Error> {
        let input = self.next.take().ok_or_else(|| {
            Error::Workload(format!(
                "workload {}: an operation ran without a prepared input",
                self.workload.name()
            ))
        })?;
        self.workload
            .execute(&mut self.state, input)
            .map_err(|e| failed(self.workload.name(), "an operation failed", e))
    }

    fn between_ops(&mut self, gap: Gap) -> Result<(), Error> {
        self.workload
            .between_ops(&mut self.state, gap)
            .map_err(|e| failed(self.workload.name(), "work between operations failed", e))
    }

    fn quality(&mut self) -> Result<Option<Quality>, Error> {
        self.workload
            .quality(&mut self.state)
            .map_err(|e| failed(self.workload.name(), "measuring quality failed", e))
    }

    fn cache_counts(&self) -> Option<CacheCounts> {
        self.workload.cache_counts(&self.state)
    }
}

/// A `'static` copy of a workload's name: names are few and live as long as the process, and
/// heap labels and op-count keys take `&'static str`.
pub fn static_name(name: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = match NAMES.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}
