//! Arguments and environment shared by several subcommands.

use std::path::PathBuf;

use crate::run::parse_slowdown;
use clap::Args;

/// Where profiles are read from and reports are written: `run`, `check`, `profile`, `load`.
#[derive(Args)]
pub struct Folders {
    /// Folder searched for profile files.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    pub profiles_dir: PathBuf,
    /// Folder that receives one sub-folder per run.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub reports_dir: PathBuf,
}

/// The test-only knob `PERFCHECK_SLOW_STAGE=stage:percent`, if set; a malformed value is a
/// usage error naming the variable.
pub fn slowdown_from_env() -> Result<Option<(String, u32)>, crate::Error> {
    match std::env::var("PERFCHECK_SLOW_STAGE") {
        Ok(spec) => parse_slowdown(&spec).map(Some).ok_or_else(|| {
            crate::Error::Usage(format!(
                "PERFCHECK_SLOW_STAGE={spec:?}: expected STAGE:PERCENT, e.g. vector_search:50"
            ))
        }),
        Err(_) => Ok(None),
    }
}
