#!/usr/bin/env bash
# What `--metrics-addr` costs a load run: alternates `load` runs without and with the flag
# (the endpoint scraped once a second) at the same offered rate, and prints per run the
# completed operations and the latency p50/p99 from its load.json.
#
#   scripts/monitor-ab.sh [PAIRS] [RATE] [DURATION]
#
# Defaults: 3 pairs, 1000 ops/s, 20s; 2,000 events, 4 workers, debug harness (the profile the
# tests use; `cargo build` builds it). Needs curl and python3.
set -euo pipefail
pairs=${1:-3}
rate=${2:-1000}
duration=${3:-20s}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build -q --bin cargo-perfcheck && cargo build -q -p agent-memory --example perfcheck)
export PERFCHECK_HARNESS=$target/debug/examples/perfcheck
bin=$target/debug/cargo-perfcheck
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/profiles"
cat > "$work/profiles/monitor-ab.toml" <<TOML
workloads = ["mixed"]
[corpus]
events = 2000
topics = 8
sessions = 40
queries = 100
[load]
rate = $rate
workers = 4
timeout = "10s"
phases = [{ name = "steady", duration = "$duration", rate = 1.0 }]
TOML
cd "$work"
for i in $(seq 1 "$pairs"); do
  for mode in off on; do
    if [ "$mode" = off ]; then
      "$bin" load -p monitor-ab -q > "run-$mode-$i.txt" 2>&1
    else
      "$bin" load -p monitor-ab -q --metrics-addr 127.0.0.1:0 > "run-$mode-$i.txt" 2> "err-$i.txt" &
      pid=$!
      until grep -q "metrics: http://" "err-$i.txt" 2>/dev/null; do sleep 0.1; done
      url=$(grep -o "http://[^ ]*" "err-$i.txt" | head -1)
      while kill -0 "$pid" 2>/dev/null; do curl -s -o /dev/null "$url" || true; sleep 1; done
      wait "$pid"
    fi
    f=$(grep -o "reports/[^ ]*/load.json" "run-$mode-$i.txt")
    python3 - "$f" "$mode" "$i" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["run"]
t = r["total"]
ops = sum(k["ops"] for k in t["by_kind"])
print(f"pair {sys.argv[3]} {sys.argv[2]:>3}: {ops} ops, p50 {t['latency']['p50_ns']/1e3:.0f} us, p99 {t['latency']['p99_ns']/1e6:.2f} ms")
PY
  done
done
