//! The machine fingerprint: what a timing depends on besides the code.

use serde::{Deserialize, Serialize};

/// Where a run happened. Runs are only compared against baselines with the same
/// [`Machine::key`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Operating system and architecture.
    pub os: String,
    /// Kernel release (informative; not part of the key, since hosts patch kernels often).
    pub kernel: String,
    /// The compiler that built perfcheck.
    pub rustc: String,
    /// Cargo build profile and optimisation level.
    pub build_profile: String,
    /// Host name (informative).
    pub hostname: String,
}

impl Machine {
    /// Reads the fingerprint of the current machine and build.
    pub fn current() -> Machine {
        Machine {
            cpu_model: cpu_model(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            rustc: env!("PERFCHECK_RUSTC_VERSION").to_owned(),
            build_profile: env!("PERFCHECK_BUILD_PROFILE").to_owned(),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
        }
    }

    /// The comparable identity: CPU, cores, OS, compiler and build profile, readable as is.
    pub fn key(&self) -> String {
        format!(
            "{} x{} | {} | {} | {}",
            self.cpu_model, self.cores, self.os, self.rustc, self.build_profile
        )
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_holds_the_comparable_fields_only() {
        let mut m = Machine::current();
        assert!(m.cores >= 1);
        assert!(m.rustc.starts_with("rustc "), "{}", m.rustc);
        let key = m.key();
        m.kernel = "other".into();
        m.hostname = "elsewhere".into();
        assert_eq!(m.key(), key);
        m.cores += 1;
        assert_ne!(m.key(), key);
    }
}
