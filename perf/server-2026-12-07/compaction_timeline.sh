#!/usr/bin/env bash
# Throughput around compactions: a fresh `nexus run` (glommio, 1 shard, aof everysec, log in a
# temporary directory) under redis-benchmark -c 50 -P 16 -t incr -r 100000; after 1 s,
# ops_timeline.py samples INFO every 50 ms for 6 s. Prints the median and mean Mops of the
# windows and those of the windows in which a compaction ended (aof_rewrites went up).
# Usage: compaction_timeline.sh BIN OUT (OUT: the windows, one a line)
set -euo pipefail
bin=$1; out=$2; here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
printf '[placement]\nshards = 1\n[persistence]\nmode = "aof"\nfsync = "everysec"\ndir = "%s/log"\n' "$work" > "$work/c.toml"
"$bin" run -c "$work/c.toml" --executor glommio --listen 127.0.0.1:17630 --metrics-listen "" > "$work/server.log" 2>&1 &
sp=$!
trap 'kill "$sp" "${b:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p 17630 ping > /dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p 17630 ping > /dev/null 2>&1 || { echo "compaction_timeline.sh: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
timeout 300 redis-benchmark -p 17630 -c 50 -n 20000000 -P 16 -t incr -r 100000 -q > /dev/null 2>&1 &
b=$!
sleep 1
python3 "$here/ops_timeline.py" 17630 6 > "$out"
python3 - "$out" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
v = [float(r[1]) for r in rows]
ended = [float(rows[i][1]) for i in range(1, len(rows)) if rows[i][4] != rows[i - 1][4]]
print(f"{sys.argv[1]}: median {st.median(v):.3f} Mops, mean {st.mean(v):.3f}, {len(v)} windows, {rows[-1][4]}; "
      f"windows where a compaction ended: {' '.join(f'{d:.2f}' for d in ended)}")
PY
