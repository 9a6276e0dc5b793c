//! The `[chaos]` section of a profile: the timeline of each fault scenario of `cargo perfcheck
//! chaos` and the service level it must return to.
//!
//! ```toml
//! [chaos]
//! clean = "2s"            # load without a fault, the reference
//! fault = "3s"            # the fault in effect
//! recovery = "4s"         # after healing: recovery is measured in here
//! scenarios = []          # empty: every fault the load target offers
//! [chaos.slo]             # "recovered": a full `window` with p99 and failures within these
//! p99 = "20ms"
//! failure_rate = 0.01     # errors, timeouts and degraded answers, of all operations
//! window = "1s"
//! min_success_rate = 0.8  # answered (fully or degraded) during the fault; 0: not judged
//! ```
//!
//! The load itself (rate, workers, timeout, seed, the target's keys) is the profile's `[load]`
//! section: a chaos run is a load run with faults on its timeline.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::load::humantime_serde_compat;

/// Chaos settings of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosSettings {
    /// Load before the fault, the reference period.
    #[serde(with = "humantime_serde_compat")]
    pub clean: Duration,
    /// How long the fault stays in effect.
    #[serde(with = "humantime_serde_compat")]
    pub fault: Duration,
    /// Load after healing, within which the system must recover.
    #[serde(with = "humantime_serde_compat")]
    pub recovery: Duration,
    /// Scenarios run when `--scenario` is not given; empty: every fault of the target.
    pub scenarios: Vec<String>,
    /// The service level that counts as recovered.
    pub slo: ChaosSlo,
}

/// What "recovered" means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosSlo {
    /// Highest p99 latency (from intended start) of a recovered window.
    #[serde(with = "humantime_serde_compat")]
    pub p99: Duration,
    /// Highest share of operations that failed, timed out or were answered degraded, in a
    /// recovered window.
    pub failure_rate: f64,
    /// How long the system must stay within the limits to count as recovered.
    #[serde(with = "humantime_serde_compat")]
    pub window: Duration,
    /// Lowest share of operations answered (fully or degraded) during the fault; 0: not
    /// judged.
    pub min_success_rate: f64,
}

impl Default for ChaosSlo {
    fn default() -> Self {
        ChaosSlo {
            p99: Duration::from_millis(20),
            failure_rate: 0.01,
            window: Duration::from_secs(1),
            min_success_rate: 0.0,
        }
    }
}

impl Default for ChaosSettings {
    fn default() -> Self {
        ChaosSettings {
            clean: Duration::from_secs(2),
            fault: Duration::from_secs(3),
            recovery: Duration::from_secs(4),
            scenarios: Vec::new(),
            slo: ChaosSlo::default(),
        }
    }
}

impl ChaosSettings {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, d) in [
            ("chaos.clean", self.clean),
            ("chaos.fault", self.fault),
            ("chaos.recovery", self.recovery),
            ("chaos.slo.p99", self.slo.p99),
            ("chaos.slo.window", self.slo.window),
        ] {
            if d.is_zero() {
                return Err(format!("{key} must be more than 0"));
            }
            if d > Duration::from_secs(24 * 3600) {
                return Err(format!("{key} must be at most 24h, got {d:?}"));
            }
        }
        if self.slo.window > self.recovery {
            return Err(format!(
                "chaos.slo.window ({}) must fit in chaos.recovery ({}): recovery is a full window within it",
                humantime::format_duration(self.slo.window),
                humantime::format_duration(self.recovery)
            ));
        }
        let f = self.slo.failure_rate;
        if !(f.is_finite() && (0.0..1.0).contains(&f)) {
            return Err(format!(
                "chaos.slo.failure_rate must be a fraction from 0 to below 1, got {f}"
            ));
        }
        let m = self.slo.min_success_rate;
        if !(m.is_finite() && (0.0..=1.0).contains(&m)) {
            return Err(format!(
                "chaos.slo.min_success_rate must be a fraction from 0 to 1, got {m}"
            ));
        }
        for s in &self.scenarios {
            check_scenario_name(s).map_err(|e| format!("chaos.scenarios: {e}"))?;
        }
        Ok(())
    }

    /// One scenario's scheduled length.
    pub fn scenario_length(&self) -> Duration {
        self.clean + self.fault + self.recovery
    }
}

/// A scenario name is a metric stage segment: lowercase letters, digits and `_`.
pub fn check_scenario_name(s: &str) -> Result<(), String> {
    let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "scenario name `{s}`: expected lowercase letters, digits and `_`, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_values_name_their_key() {
        let s: ChaosSettings =
            toml::from_str("fault = \"500ms\"\n[slo]\np99 = \"5ms\"\nwindow = \"250ms\"\n")
                .unwrap();
        assert_eq!(s.fault, Duration::from_millis(500));
        assert_eq!(s.slo.p99, Duration::from_millis(5));
        assert_eq!(s.clean, ChaosSettings::default().clean);
        s.validate().unwrap();
        let bad = ChaosSettings {
            recovery: Duration::from_millis(500),
            ..ChaosSettings::default()
        };
        let e = bad.validate().unwrap_err();
        assert!(
            e.contains("chaos.slo.window") && e.contains("chaos.recovery"),
            "{e}"
        );
        let bad = ChaosSettings {
            scenarios: vec!["Locked-DB".into()],
            ..ChaosSettings::default()
        };
        assert!(bad.validate().unwrap_err().contains("Locked-DB"));
        let e = toml::from_str::<ChaosSettings>("fualt = \"1s\"").unwrap_err();
        assert!(e.to_string().contains("fualt"), "{e}");
    }
}
