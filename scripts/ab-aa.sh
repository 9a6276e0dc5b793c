#!/usr/bin/env bash
# Two-file A/A checks and slowdown checks of the paired gate, with per-round statistics.
#
#   scripts/ab-aa.sh [CHECKS] [ROUNDS] [SLOWDOWN...]
#
# Makes two byte-identical copies of the release binary, A (runs the check: the orchestrator)
# and B (given as --base-bin), in a scratch git repository, and runs CHECKS checks of
# `check --ab --rounds ROUNDS -p ab -w recall` with nothing changed, then CHECKS checks per
# SLOWDOWN (`stage:percent`, passed as PERFCHECK_SLOW_STAGE, which reaches the head side only).
# Per check it prints the machine load, the gate's verdict and change for recall/total and
# recall/vector_search, and from the runs' own records the per-round log differences
# d = ln(head p50) - ln(base p50): mean, sd, min, max. At the end, per setting: mean change
# and how many checks flagged (fail or warn) each metric.
#
# Defaults: 3 checks, 10 rounds, no slowdowns. Example, the measurements in the README:
#   scripts/ab-aa.sh 3 20                        # A/A
#   scripts/ab-aa.sh 5 20 vector_search:10       # power at +10%
# BIN=path uses that binary instead of building; KEEP=1 keeps the scratch folder. Needs git,
# jq and awk.
set -euo pipefail
checks=${1:-3}
rounds=${2:-10}
shift $(( $# > 2 ? 2 : $# )) || true
slowdowns=("$@")

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin cargo-perfcheck
  BIN="${CARGO_TARGET_DIR:-$root/target}/release/cargo-perfcheck"
  case "$BIN" in /*) ;; *) BIN="$root/$BIN" ;; esac
fi
work=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
mkdir "$work/a" "$work/b" "$work/repo"
cp "$BIN" "$work/a/cargo-perfcheck"
cp "$BIN" "$work/b/cargo-perfcheck"
cd "$work/repo"
git init -q
printf 'reports/\nbaselines/\ntarget/\n' > .gitignore
git add -A
git -c user.name=ab-aa -c user.email=ab@example.com commit -qm base
# The scratch repository's build folder, not the caller's: the check makes its worktree there.
unset CARGO_TARGET_DIR

# Per-round d of one stage in a session folder: "mean sd min max" in percent of ln.
rounds_stats() { # $1 = session dir, $2 = stage
  local i=1 b h
  while [ -d "$1/base-$i" ] && [ -d "$1/head-$i" ]; do
    b=$(jq -r --arg s "$2" '.workloads[0].stages[] | select(.stage == $s) | .p50_ns' "$1"/base-$i/*/run.json)
    h=$(jq -r --arg s "$2" '.workloads[0].stages[] | select(.stage == $s) | .p50_ns' "$1"/head-$i/*/run.json)
    echo "$b $h"
    i=$((i + 1))
  done | awk '{ d = 100 * log($2 / $1); s += d; q += d * d; n++; if (n == 1 || d < lo) lo = d; if (n == 1 || d > hi) hi = d }
    END { m = s / n; sd = sqrt((q - n * m * m) / (n - 1)); printf "%+.2f %.2f %+.1f %+.1f", m, sd, lo, hi }'
}

summary=$work/summary.txt
check() { # $1 = label, $2 = slowdown spec or empty
  local n code dir
  for n in $(seq "$checks"); do
    local load0
    load0=$(cut -d' ' -f1 /proc/loadavg)
    set +e
    # An empty PERFCHECK_SLOW_STAGE is an error, so unset it for the unchanged checks.
    if [ -n "$2" ]; then export PERFCHECK_SLOW_STAGE="$2"; else unset PERFCHECK_SLOW_STAGE; fi
    "$work/a/cargo-perfcheck" check --ab --base HEAD \
      --base-bin "$work/b/cargo-perfcheck" --rounds "$rounds" -p ab -w recall \
      --profiles-dir "$root/profiles" -q > out.txt 2> err.txt
    code=$?
    set -e
    [ $code -le 1 ] || { cat out.txt err.txt; echo "check failed with exit $code"; exit 2; }
    dir=$(ls -d reports/ab/*/ | sort | tail -1)
    for m in total vector_search; do
      local v st ch
      v=$(jq -c --arg m "recall/$m/wall_ns" '.verdicts[] | select(.metric == $m)' "$dir/check.json")
      st=$(jq -r .status <<< "$v")
      ch=$(jq -r '(.change // 0) * 100' <<< "$v")
      read -r mean sd lo hi <<< "$(rounds_stats "$dir" "$m")"
      printf '%-22s #%-2d load %5s  %-14s %-10s change %+6.2f%%  rounds: d mean %+6.2f%% sd %5.2f%% min %+6.1f%% max %+6.1f%%\n' \
        "$1" "$n" "$load0" "$m" "$st" "$ch" "$mean" "$sd" "$lo" "$hi"
      echo "$1 $m $st $ch $sd" >> "$summary"
    done
    echo "  order seed $(jq -r .ab_session.order_seed "$dir/check.json" 2>/dev/null || echo '?'), exit $code"
  done
}

echo "machine: $("$BIN" --version) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $checks checks of $rounds rounds per setting; load now $(cut -d' ' -f1-3 /proc/loadavg)"
check "A/A" ""
for s in "${slowdowns[@]}"; do
  check "$s" "$s"
done
echo "per setting and metric: checks, mean change, mean per-round sd, flagged (fail or warn)"
awk '{ k = $1 " " $2; n[k]++; c[k] += $4; sd[k] += $5; if ($3 == "fail" || $3 == "warn") f[k]++ }
  END { for (k in n) printf "  %-30s %2d checks, mean change %+6.2f%%, per-round sd %5.2f%%, flagged %d/%d\n", k, n[k], c[k] / n[k], sd[k] / n[k], f[k] + 0, n[k] }' \
  "$summary" | sort
