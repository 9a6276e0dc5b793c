"""Asserts that a run record holds every workload and every canonical stage with samples."""
import json
import sys

EXPECTED = {
    "recall": ["embed_query", "vector_search", "rerank", "format"],
    "remember": ["embed", "persist", "index_insert"],
    "consolidation": ["load_events", "cluster", "extract_patterns", "validate", "store_facts"],
}
EXPECTED["mixed"] = sum(EXPECTED.values(), [])

record = json.load(open(sys.argv[1]))
assert record["schema"] == 1, record["schema"]
assert record["counting_allocator"] is True
assert record["machine"]["cores"] >= 1
problems = []
for w in record["workloads"]:
    name = w["workload"]
    stages = {s["stage"]: s for s in w["stages"]}
    samples = {s["stage"]: s for s in w["samples"]}
    for stage in EXPECTED[name] + ["total"]:
        if stage not in stages:
            problems.append(f"{name}: stage {stage} missing from stages")
        elif stages[stage]["ops"] == 0 or stages[stage]["mean_ns"] <= 0:
            problems.append(f"{name}: stage {stage} has no timing")
        if stage not in samples or not samples[stage]["wall_ns"]:
            problems.append(f"{name}: stage {stage} has no raw samples")
    total = stages.get("total", {})
    if total.get("allocs_per_op", 0) <= 0:
        problems.append(f"{name}: no allocations counted")
missing = set(EXPECTED) - {w["workload"] for w in record["workloads"]}
problems += [f"workload {m} missing" for m in sorted(missing)]
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"run record OK: {len(record['workloads'])} workloads, every stage present")
