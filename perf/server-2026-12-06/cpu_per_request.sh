#!/usr/bin/env bash
# CPU time per request of `nexus run` (1 shard) under redis-benchmark (GET -P 1 unless TEST and
# PIPELINE say otherwise): for each BIN:EXECUTOR pair, ROUNDS times in turn, starts the server,
# runs REQUESTS (300,000) requests from 50 clients, and prints req/s and the process's CPU time
# (user + system, /proc/PID/stat) divided by the requests.
# Usage: [TEST=set] [PIPELINE=16] [REQUESTS=2000000] cpu_per_request.sh ROUNDS BIN:EXECUTOR...
#   e.g. cpu_per_request.sh 3 ./nexus.old:glommio target/release/nexus:glommio
set -euo pipefail
rounds=$1; shift
test=${TEST:-get}; pipeline=${PIPELINE:-1}; requests=${REQUESTS:-300000}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e 's/^shards = "auto"/shards = 1/' "$here/configs/default.toml" > "$work/s1.toml"
tick=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
  for pair in "$@"; do
    bin=${pair%:*}; executor=${pair##*:}
    "$bin" run -c "$work/s1.toml" --executor "$executor" --listen 127.0.0.1:17641 --metrics-listen "" > "$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do redis-cli -p 17641 ping > /dev/null 2>&1 && break; sleep 0.1; done
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    rps=$(redis-benchmark -p 17641 -c 50 -n "$requests" -P "$pipeline" -t "$test" -r 100000 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$r $bin $executor rps=$rps cpu_us_per_request=$(python3 -c "print(round(($t1 - $t0) * 1e6 / $tick / $requests, 3))")"
  done
done
