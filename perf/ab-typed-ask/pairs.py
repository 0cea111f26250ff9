#!/usr/bin/env python3
"""Reads perf/ab-typed-ask/run.sh output: per bench, each side's median of the criterion point
estimates over the rounds (min-max), and the typed/untyped ratio taken round by round."""
import re, sys, glob, os, statistics
out = sys.argv[1]
units = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6}
def read(path):
    text = open(path).read()
    res = {}
    for m in re.finditer(r"^(ask_\w+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text, re.M):
        res[m.group(1)] = float(m.group(2)) * units[m.group(3)]
    return res
rounds = sorted({int(re.search(r"-(\d+)\.txt$", p).group(1)) for p in glob.glob(os.path.join(out, "*.txt"))})
for bench in ("ask_local", "ask_cross"):
    a = [read(os.path.join(out, f"untyped-{r}.txt")).get(bench) for r in rounds]
    b = [read(os.path.join(out, f"typed-{r}.txt")).get(bench) for r in rounds]
    pairs = [(x, y) for x, y in zip(a, b) if x and y]
    ratios = [y / x for x, y in pairs]
    fa = [x for x, _ in pairs]; fb = [y for _, y in pairs]
    print(f"{bench}: untyped {statistics.median(fa):.0f} ns ({min(fa):.0f}-{max(fa):.0f}), "
          f"typed {statistics.median(fb):.0f} ns ({min(fb):.0f}-{max(fb):.0f}), "
          f"typed/untyped {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) over {len(pairs)} rounds")
