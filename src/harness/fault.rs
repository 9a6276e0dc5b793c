//! What a load target offers `cargo perfcheck chaos`: named faults it can inject into its
//! running system and heal again, and a check of the writes it acknowledged.
//!
//! The tool owns the timeline (a clean period, the fault, the healing, a recovery period),
//! the load and the analysis; the target owns what a fault *is*, because only it knows how to
//! make its own dependencies fail for real (hold a database lock, fill a disk, make a service
//! time out). A fault is a value: [`ActiveFault`] holds whatever keeps it going (a thread
//! holding a lock, a lowered limit) and [`heal`](ActiveFault::heal) undoes it.

use serde::{Deserialize, Serialize};

use crate::harness::workload::BoxError;

/// A fault a target can inject, as listed by `cargo perfcheck chaos --list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultInfo {
    /// The scenario name given to `--scenario` (`locked_db`).
    pub name: String,
    /// One line: what is done to the system and what it should do about it.
    pub description: String,
}

impl FaultInfo {
    /// A fault named `name`.
    pub fn new(name: &str, description: &str) -> FaultInfo {
        FaultInfo {
            name: name.to_owned(),
            description: description.to_owned(),
        }
    }
}

/// An injected fault, in effect until healed.
pub trait ActiveFault: Send {
    /// Ends the fault; the note (what was undone, what it cost) goes into the report.
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError>;
}

/// The target's check of every write it acknowledged since setup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCheck {
    /// Writes acknowledged to the load generator (operations that returned `Ok`).
    pub acknowledged: u64,
    /// Acknowledged writes the system no longer has.
    pub lost: u64,
    /// Writes the system holds more than once.
    pub duplicated: u64,
    /// One line for the report (what was compared with what).
    pub detail: String,
}

/// The outcome of one operation that did not fail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The full answer.
    #[default]
    Ok,
    /// An answer the system marked as degraded (from a fallback, partial, stale).
    Degraded,
}
