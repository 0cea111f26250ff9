#!/usr/bin/env bash
# Profiles one nexus shard under a write load: a fresh `nexus run` (glommio, 1 shard per the
# config), a 1.5 M INCR warm-up, then redis-benchmark -c 50 -n 8000000 -P 16 -t incr -r 100000
# while `perf record -F 2999 -g` samples the server for 4 s. Prints the benchmark's CSV line;
# the profile is OUT.data (read it with `perf report -i OUT.data --no-children --sort sym`).
# Usage: [BIN=target/release/nexus] shard_profile.sh CONFIG OUT
# A config with mode = "aof" should name its own log `dir`; it is emptied first.
set -euo pipefail
c=$1; out=$2; bin=${BIN:-target/release/nexus}
if grep -q '^mode = "aof"' "$c"; then
  dir=$(sed -n 's/^dir = "\(.*\)"/\1/p' "$c"); [ -n "$dir" ] && rm -rf "$dir"
fi
"$bin" run -c "$c" --executor glommio --listen 127.0.0.1:17630 --metrics-listen "" > "$out.server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p 17630 ping > /dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p 17630 ping > /dev/null 2>&1 || { echo "shard_profile.sh: $c did not start on port 17630" >&2; exit 1; }
timeout 300 redis-benchmark -p 17630 -c 50 -n 1500000 -P 16 -t incr -r 100000 -q > /dev/null 2>&1
timeout 300 redis-benchmark -p 17630 -c 50 -n 8000000 -P 16 -t incr -r 100000 --csv 2>/dev/null | tail -1 > "$out.csv" &
b=$!
sleep 1
perf record -F 2999 -g -p "$pid" -o "$out.data" -- sleep 4 2> /dev/null
wait "$b"
cat "$out.csv"
