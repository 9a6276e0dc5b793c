#!/usr/bin/env bash
# Measures the gate's false-alarm rate and detection power on this machine.
#
#   scripts/calibrate-gate.sh [TRIES] [PROFILE] [STAGE] [PERCENT...]
#
# In a scratch git repository it saves BASE_RUNS baselines of unchanged code, then runs
# `check` TRIES times unchanged and TRIES times per PERCENT with STAGE slowed by that much
# (PERFCHECK_SLOW_STAGE). It prints, per setting, how many checks failed (exit 1) and how many
# flagged anything (fail or warn). Defaults: 20 tries, profile quick, stage vector_search,
# slowdowns 10 15 20 30 50.
#
# AB=1 calibrates the paired gate instead: no stored baselines; each check is
# `check --ab --rounds ${ROUNDS:-5}` with this same binary as the base side (--base-bin), so
# the two sides differ only by the slowdown knob (which reaches the head side only).
set -euo pipefail
tries=${1:-20}
profile=${2:-quick}
stage=${3:-vector_search}
shift $(( $# > 3 ? 3 : $# )) || true
percents=("$@")
[ ${#percents[@]} -gt 0 ] || percents=(10 15 20 30 50)
base_runs=${BASE_RUNS:-3}
# Extra arguments for every run and check, e.g. WORKLOADS="-w recall".
read -r -a extra <<< "${WORKLOADS:-}"

root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
bindir=$(mktemp -d)
trap 'rm -rf "$work" "$bindir"' EXIT
# A private copy outside the work tree: a rebuild during the calibration must not swap the
# binary under it, and the scratch repository must stay clean.
cp "$root/target/release/cargo-perfcheck" "$bindir/cargo-perfcheck"
bin="$bindir/cargo-perfcheck"
cd "$work"
git init -q
printf 'reports/\nbaselines/\ntarget/\n' > .gitignore
unset CARGO_TARGET_DIR
ab=${AB:-0}
rounds=${ROUNDS:-5}
checkargs=(check --profile "$profile" --quiet --profiles-dir "$root/profiles" "${extra[@]}")
[ "$ab" = 1 ] && checkargs+=(--ab --base HEAD --base-bin "$bin" --rounds "$rounds")
[ -f "$root/perfcheck.toml" ] && cp "$root/perfcheck.toml" .
git add -A
git -c user.name=calibrate -c user.email=c@example.com commit -qm base

[ "$ab" = 1 ] && base_runs=0
for i in $(seq "$base_runs"); do
  "$bin" run --profile "$profile" --quiet --save --profiles-dir "$root/profiles" "${extra[@]}" > /dev/null
done

trial() { # $1 = label, $2 = slowdown spec or empty
  local fails=0 flags=0 code
  for i in $(seq "$tries"); do
    set +e
    if [ -n "$2" ]; then
      PERFCHECK_SLOW_STAGE="$2" "$bin" "${checkargs[@]}" > out.txt
    else
      "$bin" "${checkargs[@]}" > out.txt
    fi
    code=$?
    set -e
    [ $code -le 1 ] || { cat out.txt; echo "check failed with exit $code"; exit 2; }
    [ $code -eq 1 ] && fails=$((fails + 1))
    if grep -qE '^perfcheck check (FAIL|WARN)' out.txt; then
      flags=$((flags + 1))
      grep -E '^  (FAIL|warn) ' out.txt | sed "s/^/    [$1 #$i] /" >> flagged.txt
    fi
  done
  printf '%-24s exit 1 in %2d/%d, flagged (fail or warn) in %2d/%d\n' "$1" "$fails" "$tries" "$flags" "$tries"
}

echo "workloads: ${WORKLOADS:-all of the profile}"
if [ "$ab" = 1 ]; then how="paired A/B, $rounds rounds"; else how="$base_runs baseline runs"; fi
echo "machine: $("$bin" --version) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; profile $profile; $how; $tries tries each"
trial "unchanged" ""
for p in "${percents[@]}"; do
  trial "$stage +$p%" "$stage:$p"
done
if [ -f flagged.txt ]; then
  echo "flagged metrics:"
  cat flagged.txt
fi
