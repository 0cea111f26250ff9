"""Per-round ratios (2731a87 / fb3dde6) of the pingpong and counting records in this folder."""
import json
import statistics as st


def load(path):
    return {(r["workload"], r["placement"], r["metric"]): r["value"] for r in map(json.loads, open(path))}


rows = {}
for workload in ("pingpong", "counting"):
    for r in (1, 2, 3):
        old = load(f"{workload}-fb3dde6-{r}.jsonl")
        new = load(f"{workload}-2731a87-{r}.jsonl")
        for key, value in old.items():
            if key in new and value:
                rows.setdefault(key, []).append((value, new[key], new[key] / value))
print("glommio executor, 2 shards; fb3dde6 (glommio 0.9.0) against 2731a87 (COOP_TASKRUN); 3 alternating rounds of --repeat 3")
print("workload placement metric: old median -> new median; new/old median (min-max)")
for key, values in sorted(rows.items()):
    if not any(m in key[2] for m in ("p50", "p99", "msgs_per_s", "wake")):
        continue
    ratios = [v[2] for v in values]
    print(f"{key[0]} {key[1]} {key[2]}: {st.median(v[0] for v in values):,.0f} -> "
          f"{st.median(v[1] for v in values):,.0f}; {st.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
