//! The harness: what a crate links to be measured by perfcheck (the [`Workload`] trait, the
//! [`Harness`] registry and the [`main!`](crate::main) macro), and how the tool finds and
//! builds that crate's harness target.

pub mod build;
pub mod erased;
pub mod fault;
pub mod health;
pub mod load_target;
pub mod locate;
pub mod workload;

use std::sync::Arc;

use crate::config::Profile;
use crate::error::Error;

pub use erased::{AnyWorkload, Configured, Session};
pub use fault::{ActiveFault, FaultInfo, Outcome, WriteCheck};
pub use health::{HealthCheck, StoredHealth};
pub use load_target::{AnyLoadTarget, LoadTarget};
pub use workload::{BoxError, Gap, NoConfig, OpCounts, PassMode, SetupContext, Workload};

/// The workloads one harness binary can run, in the order a run performs them.
#[derive(Clone, Default)]
pub struct Harness {
    workloads: Vec<Arc<dyn AnyWorkload>>,
    profiles: Vec<(&'static str, &'static str)>,
    load_target: Option<Arc<dyn AnyLoadTarget>>,
    health: Option<Arc<dyn HealthCheck>>,
}

impl Harness {
    /// An empty harness (the launcher's: it can read stores and draw trends, not run).
    pub fn new() -> Harness {
        Harness::default()
    }

    /// Registers `workload`.
    pub fn workload<W: Workload>(mut self, workload: W) -> Harness {
        self.workloads
            .push(Arc::new(erased::Erased(Arc::new(workload))));
        self
    }

    /// Registers the target of `cargo perfcheck load` (one per harness; a second replaces the
    /// first).
    pub fn load_target<L: LoadTarget>(mut self, target: L) -> Harness {
        self.load_target = Some(Arc::new(load_target::Erased(Arc::new(target))));
        self
    }

    /// Registers the check `cargo perfcheck health --store-dir DIR` runs.
    pub fn health_check<H: HealthCheck>(mut self, check: H) -> Harness {
        self.health = Some(Arc::new(check));
        self
    }

    /// The registered health check, if any.
    pub fn get_health_check(&self) -> Option<&Arc<dyn HealthCheck>> {
        self.health.as_ref()
    }

    /// The registered load target, if any.
    pub fn get_load_target(&self) -> Option<&Arc<dyn AnyLoadTarget>> {
        self.load_target.as_ref()
    }

    /// Registers a built-in profile (`--profile NAME` finds it after `profiles/NAME.toml` and
    /// before perfcheck's own), its TOML text usually `include_str!`-ed.
    pub fn profile(mut self, name: &'static str, toml: &'static str) -> Harness {
        self.profiles.retain(|(n, _)| *n != name);
        self.profiles.push((name, toml));
        self
    }

    /// The registered built-in profiles (name, TOML text).
    pub fn profiles(&self) -> &[(&'static str, &'static str)] {
        &self.profiles
    }

    /// Names of the registered workloads.
    pub fn names(&self) -> Vec<&str> {
        self.workloads.iter().map(|w| w.name()).collect()
    }

    /// Whether no workload is registered.
    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty()
    }

    /// The registered workloads.
    pub fn workloads(&self) -> &[Arc<dyn AnyWorkload>] {
        &self.workloads
    }

    /// Checks that `name` is registered; the error lists the ones that are.
    pub fn check_name(&self, name: &str) -> Result<(), Error> {
        self.find(name).map(|_| ())
    }

    fn find(&self, name: &str) -> Result<&Arc<dyn AnyWorkload>, Error> {
        self.workloads
            .iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| Error::UnknownWorkload {
                name: name.to_owned(),
                available: if self.is_empty() {
                    "none: this binary has no harness (see README, \"Use it on your own crate\")"
                        .into()
                } else {
                    self.names().join(", ")
                },
            })
    }

    /// The workloads to run: `requested`, else the profile's list, else every registered one;
    /// each configured from the profile (errors name the profile's file).
    pub fn resolve(
        &self,
        profile: &Profile,
        requested: &[String],
    ) -> Result<Vec<Arc<dyn Configured>>, Error> {
        for n in requested {
            self.check_name(n)
                .map_err(|e| Error::Usage(format!("--workload {n}: {e}")))?;
        }
        let names: Vec<String> = if !requested.is_empty() {
            requested.to_vec()
        } else if !profile.workloads.is_empty() {
            profile.workloads.clone()
        } else {
            self.names().into_iter().map(str::to_owned).collect()
        };
        if names.is_empty() {
            return Err(Error::Usage(
                "this binary has no workloads: run `cargo perfcheck` in a package with a \
                 perfcheck harness target (see README, \"Use it on your own crate\")"
                    .into(),
            ));
        }
        let origin = profile.origin();
        names
            .iter()
            .map(|n| {
                let w = self.find(n).map_err(|e| Error::Config {
                    path: origin.clone(),
                    message: e.to_string(),
                })?;
                w.configure(profile, &origin)
            })
            .collect()
    }
}

/// The `main` of a harness target (a `harness = false` bench or an example): installs the
/// counting allocator and runs the perfcheck command line over the given workloads.
///
/// ```ignore
/// perfcheck::main!(my_crate::perf::Ingest, my_crate::perf::Query);
/// // or, with built-in profiles: a function returning the harness
/// perfcheck::main!(harness = my_harness());
/// ```
#[macro_export]
macro_rules! main {
    (harness = $harness:expr) => {
        #[global_allocator]
        static PERFCHECK_ALLOC: $crate::stage::CountingAlloc = $crate::stage::CountingAlloc::system();

        fn main() -> ::std::process::ExitCode {
            $crate::cli::main($harness)
        }
    };
    ($($workload:expr),+ $(,)?) => {
        #[global_allocator]
        static PERFCHECK_ALLOC: $crate::stage::CountingAlloc = $crate::stage::CountingAlloc::system();

        fn main() -> ::std::process::ExitCode {
            $crate::cli::main($crate::harness::Harness::new()$(.workload($workload))+)
        }
    };
}
