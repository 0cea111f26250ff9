"""Ratios new/old of every message-path figure of an interleaved A/B (see ab.sh), round by round.

Usage: python3 perf/ab/pairs.py DIR   (DIR holds base-W-R.jsonl and lap-W-R.jsonl)
Prints, per figure: the median of the per-round ratios new/old with their min-max, and each
side's median. Below 1 is better for times (ns), above 1 for rates.
"""
import glob
import json
import statistics
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "runs"


def load(path):
    figures = {}
    for line in open(path):
        o = json.loads(line)
        if o.get("system") == "nexus":
            figures[(o["workload"], o["placement"], o["metric"])] = o["value"]
        elif o["metric"] == "probe_rtt_p50_ns":
            figures[("probe", "cross", o["metric"])] = o["value"]
    return figures


rounds = sorted({f.rsplit("-", 1)[1].split(".")[0] for f in glob.glob(f"{root}/base-*.jsonl")}, key=int)
ratios, values = {}, {}
for r in rounds:
    for w in ["pingpong", "counting", "thread-ring"]:
        try:
            old, new = load(f"{root}/base-{w}-{r}.jsonl"), load(f"{root}/lap-{w}-{r}.jsonl")
        except FileNotFoundError:
            continue
        for k, v in old.items():
            if k in new and v:
                ratios.setdefault(k, []).append(new[k] / v)
                values.setdefault(k, []).append((v, new[k]))
skip = ("by_size", "wake", "clock", "p999")
for k in sorted(ratios):
    if any(s in k[2] for s in skip):
        continue
    rs = ratios[k]
    old_med = statistics.median(v[0] for v in values[k])
    new_med = statistics.median(v[1] for v in values[k])
    print(f"{k[0]:12} {k[1]:6} {k[2]:22} new/old median {statistics.median(rs):.3f} "
          f"({min(rs):.3f}-{max(rs):.3f})  old {old_med:.4g}  new {new_med:.4g}  rounds={len(rs)}")
