//! `--metrics-addr` end to end: the real launcher runs `load` with the engine's harness, and a
//! real HTTP client scrapes `/metrics` (parsed by a Prometheus text parser) and `/health`
//! while the run goes on; flag errors exit 2 naming the flag.
//!
//! Every wait polls the endpoint for observable state within a generous bound; no assertion
//! is about wall time.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Project;
use prometheus_parse::{Scrape, Value};

/// Long enough for two scrapes after the first operations, small enough for a debug build.
const MONITORED: &str = r#"
workloads = ["mixed"]
[corpus]
events = 600
topics = 6
sessions = 20
queries = 60
[mix]
recall = 70
remember = 20
consolidation = 10
[load]
rate = 100
workers = 4
timeout = "10s"
phases = [{ name = "steady", duration = "10s", rate = 1.0 }]
[load.slo]
p99 = "10s"
error_rate = 0.05
"#;

const KINDS: [&str; 3] = ["recall", "remember", "consolidation"];
/// Bound of every wait: a deadlock guard, not a measurement.
const PATIENCE: Duration = Duration::from_secs(300);

fn spawn_load(p: &Project, extra: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("cargo-perfcheck"))
        .env("PERFCHECK_HARNESS", common::harness_bin())
        .env_remove("PERFCHECK_STORE")
        .env_remove("PERFCHECK_SLOW_STAGE")
        .env("NO_COLOR", "1")
        .current_dir(p.path())
        .args(["load", "-p", "mini", "-q"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the launcher starts")
}

/// Sends every stderr line of `child` down a channel, from a thread of its own.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut r = agent.get(url).call().expect("the endpoint answers");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().expect("a text body"))
}

fn scrape(agent: &ureq::Agent, base: &str) -> Scrape {
    let (code, text) = get(agent, &format!("{base}/metrics"));
    assert_eq!(code, 200, "{text}");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text parses")
}

/// The latency histogram of `kind`: its buckets (upper bound, cumulative count).
fn histogram(s: &Scrape, kind: &str) -> Option<Vec<(f64, f64)>> {
    s.samples.iter().find_map(|x| match &x.value {
        Value::Histogram(b)
            if x.metric == "perfcheck_op_latency_seconds" && x.labels.get("kind") == Some(kind) =>
        {
            let mut b: Vec<(f64, f64)> = b.iter().map(|h| (h.less_than, h.count)).collect();
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            Some(b)
        }
        _ => None,
    })
}

fn ops_total(s: &Scrape) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == "perfcheck_ops_total")
        .map(|x| match x.value {
            Value::Counter(v) => v,
            ref v => panic!("ops_total is not a counter: {v:?}"),
        })
        .sum()
}

fn value(s: &Scrape, metric: &str) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == metric)
        .and_then(|x| match x.value {
            Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// Polls `/metrics` until `done` holds for a scrape (or the patience runs out).
fn scrape_until(
    agent: &ureq::Agent,
    base: &str,
    what: &str,
    done: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let start = Instant::now();
    loop {
        let s = scrape(agent, base);
        if done(&s) {
            return s;
        }
        assert!(start.elapsed() < PATIENCE, "never saw {what}");
        // Polling interval between scrapes; the condition above is what is waited for.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_load_run_serves_its_metrics_and_health_while_it_runs_and_stops_serving_after() {
    let p = Project::new(MONITORED, None);
    let mut child = spawn_load(&p, &["--metrics-addr", "127.0.0.1:0"]);
    let mut out = child.stdout.take().expect("stdout piped");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let addr: SocketAddr = loop {
        let line = lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no `metrics:` line on stderr: {seen:?}"));
        if let Some(url) = line.strip_prefix("metrics: http://") {
            let addr = url.strip_suffix("/metrics").expect("ends with /metrics");
            break addr.parse().expect("a socket address");
        }
        seen.push(line);
    };
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the ephemeral port is printed, not 0");
    let base = format!("http://{addr}");
    let agent = agent();

    // Every kind of the mix observed at least once.
    let first = scrape_until(&agent, &base, "every kind observed", |s| {
        KINDS
            .iter()
            .all(|k| histogram(s, k).is_some_and(|b| b.last().is_some_and(|l| l.1 > 0.0)))
    });
    for kind in KINDS {
        let b = histogram(&first, kind).unwrap();
        assert_eq!(b.len(), 18, "{kind}: 17 bounds and +Inf");
        assert!(
            (b[0].0 - 50e-6).abs() < 1e-12 && b[16].0 == 10.0,
            "{kind}: {b:?}"
        );
        assert!(b.last().unwrap().0.is_infinite());
        assert!(
            b.windows(2).all(|w| w[0].1 <= w[1].1),
            "{kind}: cumulative counts never fall: {b:?}"
        );
    }
    let count_before = ops_total(&first);
    assert!(count_before > 0.0);
    // Resources come with the generator's once-a-second sample.
    let second = scrape_until(&agent, &base, "ops_total growing, resources sampled", |s| {
        ops_total(s) > count_before && value(s, "perfcheck_rss_bytes").is_some()
    });
    assert!(ops_total(&second) > count_before);

    // The run's own gauges and the engine's.
    assert!(value(&second, "perfcheck_rss_bytes").is_some_and(|v| v > 0.0));
    assert!(value(&second, "perfcheck_target_events").is_some_and(|v| v >= 600.0));
    assert!(value(&second, "perfcheck_target_recall_cache_hits_total").is_some());
    // Every breaker is there, closed, in a healthy run.
    let breakers: Vec<_> = second
        .samples
        .iter()
        .filter(|x| x.metric == "perfcheck_target_breaker_state")
        .collect();
    assert_eq!(breakers.len(), 3, "reads, writes, embedder");
    assert!(breakers
        .iter()
        .all(|b| matches!(b.value, Value::Gauge(v) | Value::Untyped(v) if v == 0.0)));
    let rate = value(&second, "perfcheck_target_recall_cache_hit_rate").unwrap();
    assert!((0.0..=1.0).contains(&rate), "{rate}");

    let (code, body) = get(&agent, &format!("{base}/health"));
    assert_eq!(code, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).expect("/health is JSON");
    assert_eq!(h["status"], "ok", "{h}");
    assert!(h["ops"].as_u64().is_some_and(|n| n > 0), "{h}");
    assert!(
        ["steady", "idle"].contains(&h["phase"].as_str().unwrap_or("")),
        "{h}"
    );
    assert_eq!(h["target"]["status"], "ok", "{h}");
    assert!(h["target"]["detail"]["events_stored"]
        .as_u64()
        .is_some_and(|n| n >= 600));
    assert_eq!(h["target"]["detail"]["index_consistent"], true, "{h}");

    assert_eq!(get(&agent, &format!("{base}/nope")).0, 404);

    // The run ends by itself, and the endpoint with it.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(PATIENCE)
        .expect("the load run ends: nothing keeps the process alive")
        .unwrap();
    let stdout = stdout.join().unwrap();
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "exit {status:?}\n{stdout}\n{rest:?}");
    assert!(stdout.contains("run record: "), "{stdout}");
    assert!(
        agent.get(&format!("{base}/metrics")).call().is_err(),
        "nothing serves after the run"
    );
}

#[test]
fn a_bad_or_busy_metrics_address_is_a_usage_error_naming_the_flag() {
    let p = Project::new(MONITORED, None);
    let out = p
        .cmd()
        .args(["load", "-p", "mini", "-q", "--metrics-addr", "nonsense"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--metrics-addr") && err.contains("HOST:PORT"),
        "{err}"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    for cmd in ["load", "chaos"] {
        let out = p
            .cmd()
            .args([cmd, "-p", "mini", "-q", "--metrics-addr", &addr])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains(&format!("--metrics-addr {addr}")) && err.contains("cannot listen"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("metrics: http://"), "{cmd}: {err}");
    }
}
