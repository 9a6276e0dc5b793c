//! The HTTP endpoint of live monitoring (`tiny_http`, one thread of its own; the generator is
//! thread based, so no async runtime is involved): `GET /metrics` (Prometheus text),
//! `GET /health` (JSON; 200 when ok or degraded, 503 when failing), 404 for any other path.
//! It stops when dropped.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response};

use super::{HealthStatus, Monitor};

/// A running endpoint; dropping it stops it (the serving thread is joined).
pub struct MetricsServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: an ephemeral port, see [`addr`](Self::addr)) and serves
    /// `monitor`. The error is the bind's (address in use, not local, ...).
    pub fn start(addr: SocketAddr, monitor: Arc<Monitor>) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map(Arc::new)
            .map_err(std::io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("perfcheck-metrics".into())
                .spawn(move || serve(&server, &stop, &monitor))?
        };
        Ok(MetricsServer {
            addr,
            server,
            stop,
            thread: Some(thread),
        })
    }

    /// The address listened on (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, monitor: &Monitor) {
    while !stop.load(Ordering::Acquire) {
        match server.recv() {
            Ok(rq) => respond(rq, monitor),
            // Unblocked to stop, or a failed accept: the loop's condition decides.
            Err(_) => continue,
        }
    }
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(rq: Request, monitor: &Monitor) {
    let path = rq.url().split('?').next().unwrap_or("").to_owned();
    let (code, content_type, body) = if !matches!(rq.method(), Method::Get | Method::Head) {
        (405, "text/plain; charset=utf-8", "only GET\n".to_owned())
    } else {
        match path.as_str() {
            "/metrics" => (200, super::registry::CONTENT_TYPE, monitor.encode()),
            "/health" => {
                let h = monitor.health();
                let code = if h.status == HealthStatus::Failing {
                    503
                } else {
                    200
                };
                let body = serde_json::to_string(&h).unwrap_or_else(|_| "{}".into());
                (code, "application/json", body + "\n")
            }
            _ => (
                404,
                "text/plain; charset=utf-8",
                "not found: /metrics and /health are served\n".to_owned(),
            ),
        }
    };
    let mut response = Response::from_string(body).with_status_code(code);
    if let Some(h) = header("Content-Type", content_type) {
        response.add_header(h);
    }
    // A client that went away is not the run's problem.
    let _ = rq.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> (u16, String, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut r = agent.get(url).call().unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (
            r.status().as_u16(),
            ct,
            r.body_mut().read_to_string().unwrap(),
        )
    }

    #[test]
    fn serves_metrics_health_and_404_and_stops_when_dropped() {
        let monitor = Monitor::new();
        let server =
            MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&monitor)).unwrap();
        let addr = server.addr();
        assert_ne!(addr.port(), 0, "the real port is reported");
        let base = format!("http://{addr}");

        let (code, ct, body) = get(&format!("{base}/metrics"));
        assert_eq!(code, 200);
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert!(
            body.contains("perfcheck_phase{phase=\"setup\"} 1"),
            "{body}"
        );

        let (code, ct, body) = get(&format!("{base}/health?verbose=1"));
        assert_eq!((code, ct.as_str()), (200, "application/json"));
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (h["status"].as_str(), h["ops"].as_u64()),
            (Some("ok"), Some(0))
        );

        let system = crate::harness::load_target::tests::counter_system();
        let _attached = monitor.attach(&system);
        let _fault = system.inject("outage").unwrap();
        let (code, _, body) = get(&format!("{base}/health"));
        assert_eq!(code, 503, "{body}");

        assert_eq!(get(&format!("{base}/nope")).0, 404);
        assert_eq!(get(&format!("{base}/")).0, 404);

        // Something else already listens there.
        let e = MetricsServer::start(addr, Arc::clone(&monitor))
            .err()
            .unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");

        drop(server);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        assert!(
            agent.get(&format!("{base}/metrics")).call().is_err(),
            "nothing answers once stopped"
        );
    }
}
