//! The library's error type and its mapping to exit codes.

use std::path::PathBuf;

/// Everything that can go wrong in perfcheck. All of these exit with code 2; exit code 1 is
/// reserved for "a regression was found".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration or profile file is malformed or holds an invalid value.
    #[error("{}: {message}", path.display())]
    Config {
        /// The offending file.
        path: PathBuf,
        /// What was wrong and what was expected.
        message: String,
    },
    /// `--profile` named a profile that does not exist.
    #[error("unknown profile `{name}` (--profile): expected one of {available}, or a path to a .toml file (looked in {})", dir.display())]
    UnknownProfile {
        /// The name given.
        name: String,
        /// Comma-separated names that exist.
        available: String,
        /// The directory searched.
        dir: PathBuf,
    },
    /// A flag or argument with a value that cannot be used; the message names the flag.
    #[error("{0}")]
    Usage(String),
    /// The baseline store cannot be opened, read or written.
    #[error("baseline store {}: {message}", path.display())]
    Store {
        /// The store file.
        path: PathBuf,
        /// What went wrong and what was expected.
        message: String,
    },
    /// The baseline store failed its integrity checks; the message names what and how to
    /// recover.
    #[error("baseline store {} is damaged: {message}", path.display())]
    Damaged {
        /// The store file.
        path: PathBuf,
        /// What is damaged, and how to recover what is intact.
        message: String,
    },
    /// A profiler (pprof, dhat) could not start or produce its output.
    #[error("profiler: {0}")]
    Profiler(String),
    /// A chart could not be drawn or written.
    #[error("{0}")]
    Chart(String),
    /// A workload name the harness does not register (--workload or a profile's list).
    #[error("unknown workload `{name}`: expected one of {available}")]
    UnknownWorkload {
        /// The name given.
        name: String,
        /// Comma-separated names that are registered.
        available: String,
    },
    /// A workload's setup, preparation or operation failed.
    #[error("{0}")]
    Workload(String),
    /// A file could not be read or written (the cause follows in the error's chain).
    #[error("{context}")]
    Io {
        /// What perfcheck was doing, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A paired A/B session could not build or run one of its sides.
    #[error("check --ab: {0}")]
    Paired(String),
    /// A run record could not be encoded or decoded (the cause follows in the error's chain).
    #[error("{context}")]
    Json {
        /// What perfcheck was doing, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        2
    }
}
