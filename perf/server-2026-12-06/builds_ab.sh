#!/usr/bin/env bash
# Two nexus builds and redis-server 7 in the same rounds, 1 shard each, order rotated per round:
# redis-benchmark -c 50 -r 100000, SET and GET at -P 1 (100,000 requests) and -P 16
# (1,000,000), each run at least 0.5 s. Prints one line per run ("round test P server rps"),
# then each build's ratio to redis-server and B's ratio to A: median (min-max) of the per-round
# ratios.
# Usage: builds_ab.sh BIN_A BIN_B [ROUNDS=4] [EXECUTOR=glommio] [IDLE_TIMEOUT_S=300] [IDLE_TIMEOUT_S_B]
# (the last sets B's idle_timeout_s apart from A's, to compare the two settings on one build);
# TESTS="set get" (the default) picks redis-benchmark's tests; FSYNC=always|everysec|no runs
# both builds with `[persistence] mode = "aof"` and that fsync policy (each its own log dir).
set -euo pipefail
tests=${TESTS:-set get}
a=$1; b=$2; rounds=${3:-4}; executor=${4:-glommio}; idle=${5:-300}; idle_b=${6:-$idle}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
sed -e 's/^shards = "auto"/shards = 1/' -e "s/^idle_timeout_s = .*/idle_timeout_s = $idle/" \
    "$here/configs/default.toml" > "$work/s1.toml"
sed -e "s/^idle_timeout_s = .*/idle_timeout_s = $idle_b/" "$work/s1.toml" > "$work/s1b.toml"
if [ -n "${FSYNC:-}" ]; then
  for c in s1 s1b; do
    sed -i -e 's/^mode = "off"/mode = "aof"/' -e "s/^fsync = .*/fsync = \"$FSYNC\"/" \
        -e "s|^dir = \"nexus-data\"|dir = \"$work/$c-data\"|" "$work/$c.toml"
  done
fi
"$a" run -c "$work/s1.toml" --executor "$executor" --listen 127.0.0.1:17621 --metrics-listen "" > "$work/a.log" 2>&1 & pids+=($!)
"$b" run -c "$work/s1b.toml" --executor "$executor" --listen 127.0.0.1:17622 --metrics-listen "" > "$work/b.log" 2>&1 & pids+=($!)
redis-server --port 17623 --save "" --appendonly no --daemonize no --logfile "" > "$work/r.log" 2>&1 & pids+=($!)
for port in 17621 17622 17623; do
  for _ in $(seq 100); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
  # A server that did not start (its port still held by an earlier run, say) would leave
  # redis-benchmark spinning on refused connections: stop here instead.
  redis-cli -p $port ping > /dev/null 2>&1 || { echo "builds_ab.sh: nothing answers on port $port; see $work/*.log" >&2; cat "$work"/*.log >&2; exit 1; }
done
out=$work/runs.txt
for r in $(seq "$rounds"); do
  for t in $tests; do for P in 1 16; do
    n=$([ "$P" = 1 ] && echo 100000 || echo 1000000)
    case $((r % 3)) in 0) order="17621 17622 17623";; 1) order="17622 17623 17621";; *) order="17623 17621 17622";; esac
    for port in $order; do
      rps=$(timeout 300 redis-benchmark -p "$port" -c 50 -n "$n" -P "$P" -t "$t" -r 100000 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      echo "$r $t $P $port $rps" | tee -a "$out"
    done
  done; done
done
python3 - "$out" $tests <<'PY'
import sys, statistics as st
runs = {}
for line in open(sys.argv[1]):
    r, t, p, port, rps = line.split()
    runs[(r, t, p, port)] = float(rps)
def ratios(t, p, num, den):
    return [runs[(r, t, p, num)] / runs[(r, t, p, den)] for (r, tt, pp, port) in runs if tt == t and pp == p and port == den]
for t in sys.argv[2:]:
    for p in ("1", "16"):
        cells = []
        for name, num, den in (("A/redis", "17621", "17623"), ("B/redis", "17622", "17623"), ("B/A", "17622", "17621")):
            x = ratios(t, p, num, den)
            cells.append(f"{name} {st.median(x):.2f}x ({min(x):.2f}-{max(x):.2f})")
        print(f"{t.upper()} -P {p}: " + "; ".join(cells))
PY
