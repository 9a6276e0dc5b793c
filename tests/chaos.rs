//! `cargo perfcheck chaos` end to end: the real launcher runs the engine's harness through
//! every fault it offers, on a real SQLite store, in a short profile. Each scenario must
//! detect nothing it should not, recover after healing, and keep every acknowledged write
//! exactly once; the faults that refuse writes or degrade answers must be seen doing so.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

/// Small and slow enough for a debug build on a busy 2-core machine: 100 ops/s, a fault of
/// 1.5 s (the cascade's second fault starts after 1 s), an SLO far above normal latency.
const PROFILE: &str = r#"
[corpus]
seed = 3
events = 1000
topics = 8
sessions = 20
queries = 100
[mix]
recall = 80
remember = 15
consolidation = 5
[load]
rate = 100
workers = 4
timeout = "2s"
seed = 1
recall_k = 5
consolidation_batch = 100
[chaos]
clean = "300ms"
fault = "1500ms"
recovery = "2s"
[chaos.slo]
p99 = "300ms"
failure_rate = 0.02
window = "500ms"
"#;

fn chaos_report() -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(dir.path().join("profiles/minichaos.toml"), PROFILE).unwrap();
    let out = common::perfcheck(dir.path())
        .args(["chaos", "-p", "minichaos", "-q"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chaos failed:\n{stdout}\n{stderr}");
    let run = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .next()
        .expect("a run folder")
        .unwrap()
        .path();
    let md = std::fs::read_to_string(run.join("chaos.md")).unwrap();
    assert!(
        md.contains("cascading") && md.contains("chaos-disk_full.png"),
        "{md}"
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        record["extra_metrics"]["chaos/locked_db/lost_writes"],
        Value::from(0.0),
        "{}",
        record["extra_metrics"]
    );
    serde_json::from_slice(&std::fs::read(run.join("chaos.json")).unwrap()).unwrap()
}

#[test]
fn every_engine_fault_recovers_and_keeps_every_acknowledged_write() {
    let report = chaos_report();
    let scenarios: BTreeMap<String, &Value> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s))
        .collect();
    let expected = [
        "cascading",
        "disk_full",
        "embed_failure",
        "embed_hang",
        "flaky_lock",
        "flaky_reads",
        "locked_db",
        "memory_pressure",
        "pool_exhausted",
        "slow_db",
        "write_contention",
    ];
    assert_eq!(
        scenarios.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    let fault = |name: &str, key: &str| scenarios[name]["figures"]["fault"][key].as_u64().unwrap();
    for (name, s) in &scenarios {
        assert_eq!(s["problems"], Value::Array(Vec::new()), "{name}: {s}");
        assert!(s["figures"]["recovery_ms"].is_number(), "{name} recovered");
        let w = &s["writes"];
        assert_eq!(
            (w["lost"].as_u64(), w["duplicated"].as_u64()),
            (Some(0), Some(0)),
            "{name}"
        );
        assert!(
            w["acknowledged"].as_u64().unwrap() > 0,
            "{name}: some writes got through"
        );
        assert!(
            s["heal"]["error"].is_null() && s["inject"]["error"].is_null(),
            "{name}"
        );
    }
    // Writes refused while the store cannot take them; reads degraded, not failed.
    for name in [
        "locked_db",
        "disk_full",
        "embed_failure",
        "embed_hang",
        "cascading",
    ] {
        assert!(fault(name, "failed") > 0, "{name} refused writes");
    }
    for name in [
        "flaky_reads",
        "pool_exhausted",
        "embed_failure",
        "embed_hang",
        "cascading",
    ] {
        assert!(fault(name, "degraded") > 0, "{name} answered degraded");
    }
    // Recall never fails under a read-side fault: only writes (15% + 5% of the mix) may.
    for name in ["pool_exhausted", "embed_failure", "embed_hang"] {
        let (ops, failed) = (fault(name, "ops"), fault(name, "failed"));
        assert!(failed * 100 <= ops * 30, "{name}: {failed} of {ops} failed");
    }
    // Short lock bursts are waited out by the retries, and budgets evict: nothing failed.
    assert_eq!(fault("flaky_lock", "failed"), 0);
    assert_eq!(fault("memory_pressure", "failed"), 0);
    let heal = scenarios["memory_pressure"]["heal"]["note"]
        .as_str()
        .unwrap();
    assert!(heal.contains("of 65536 bytes"), "{heal}");
    assert_eq!(
        report["reconciliation"]["problems"],
        Value::Array(Vec::new())
    );
}
