//! The engine's sections of a perfcheck profile (`[corpus]`, `[engine]`, `[mix]` and its keys
//! of `[run]` and `[instructions]`): what its workloads are configured from.

use serde::{Deserialize, Serialize};

use crate::corpus::CorpusConfig;
use crate::EngineConfig;

/// Everything the engine's workloads read from a profile; every part has defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSettings {
    /// Corpus size and shape.
    pub corpus: CorpusConfig,
    /// Engine settings (index, cache, rerank weights).
    pub engine: EngineConfig,
    /// Operation mix of the `mixed` workload (and of load runs).
    pub mix: Mix,
    /// The engine's keys of `[run]`.
    pub run: RunKeys,
    /// The engine's keys of `[instructions]`.
    pub instructions: InstructionKeys,
}

/// The engine's keys of `[run]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunKeys {
    /// Measured consolidation runs; each consolidates one batch of events.
    pub consolidation_ops: u64,
    /// Events per consolidation batch.
    pub consolidation_batch: usize,
    /// Results per recall.
    pub recall_k: usize,
    /// Share of recalls that repeat a recent query (exercises the cache), 0..=1.
    pub repeat_fraction: f64,
}

impl Default for RunKeys {
    fn default() -> Self {
        RunKeys {
            consolidation_ops: 10,
            consolidation_batch: 1_000,
            recall_k: 10,
            repeat_fraction: 0.2,
        }
    }
}

/// The engine's keys of `[instructions]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstructionKeys {
    /// Counted consolidation batches (one batch is thousands of recalls' worth).
    pub consolidation_ops: u64,
}

impl Default for InstructionKeys {
    fn default() -> Self {
        InstructionKeys {
            consolidation_ops: 3,
        }
    }
}

/// Operation mix of the `mixed` workload, in relative weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

impl WorkloadSettings {
    /// Checks values that parse but cannot run; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.corpus.validate().map_err(|e| e.to_string())?;
        self.engine.validate().map_err(|e| e.to_string())?;
        if self.run.recall_k == 0 {
            return Err("run.recall_k must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.run.repeat_fraction) {
            return Err(format!(
                "run.repeat_fraction must be between 0 and 1, got {}",
                self.run.repeat_fraction
            ));
        }
        if self.run.consolidation_batch == 0 {
            return Err("run.consolidation_batch must be at least 1".into());
        }
        if self.mix.recall + self.mix.remember + self.mix.consolidation == 0 {
            return Err("mix weights must not all be 0".into());
        }
        if self.instructions.consolidation_ops == 0 {
            return Err("instructions.consolidation_ops must be at least 1, got 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_and_unknown_keys_are_rejected() {
        let bad: WorkloadSettings =
            serde_json::from_str(r#"{"run": {"repeat_fraction": 1.5}}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("repeat_fraction"));
        let err = serde_json::from_str::<WorkloadSettings>(r#"{"run": {"opz": 3}}"#).unwrap_err();
        assert!(err.to_string().contains("opz"), "{err}");
        let err = serde_json::from_str::<WorkloadSettings>(r#"{"corpuss": {}}"#).unwrap_err();
        assert!(err.to_string().contains("corpuss"), "{err}");
    }
}
