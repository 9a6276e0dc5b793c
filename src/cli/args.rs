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

/// `--metrics-addr`: live monitoring of `load` and `chaos`.
#[derive(Args)]
pub struct Monitoring {
    /// Serve live metrics while the run goes on: Prometheus text at http://ADDR/metrics, a
    /// JSON verdict at /health (port 0: any free port, printed on stderr).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

fn parse_listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let expected = "expected HOST:PORT, e.g. 127.0.0.1:9464 (port 0: any free port)";
    s.to_socket_addrs()
        .map_err(|e| format!("{e}: {expected}"))?
        .next()
        .ok_or_else(|| format!("{s} names no address: {expected}"))
}

impl Monitoring {
    /// Starts the endpoint when asked for (nothing runs otherwise) and prints its address; a
    /// bind failure is a usage error naming the flag and the address.
    pub fn start(
        &self,
    ) -> Result<
        Option<(
            std::sync::Arc<crate::monitor::Monitor>,
            crate::monitor::MetricsServer,
        )>,
        crate::Error,
    > {
        let Some(addr) = self.metrics_addr else {
            return Ok(None);
        };
        let monitor = crate::monitor::Monitor::new();
        let server = crate::monitor::MetricsServer::start(addr, std::sync::Arc::clone(&monitor))
            .map_err(|e| {
                crate::Error::Usage(format!("--metrics-addr {addr}: cannot listen there: {e}"))
            })?;
        eprintln!("metrics: http://{}/metrics", server.addr());
        Ok(Some((monitor, server)))
    }
}
