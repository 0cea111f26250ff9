#!/usr/bin/env bash
# Replay of 1,000,000 keys at 1 shard: loads `SET key:N value:N` for N in 0..1M into a fresh
# aof log with redis-cli --pipe (server BIN_A), stops it, then restarts each binary on the same
# log ROUNDS times, interleaved, printing its "recovered ... in S s" line.
# Usage: replay_1m.sh BIN_A [BIN_B] [ROUNDS=5]   (needs python3 and redis-cli; port 7411)
set -euo pipefail
a=$1; b=${2:-$1}; rounds=${3:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e 's/^shards = "auto"/shards = 1/' -e 's/^mode = "off"/mode = "aof"/' \
    -e "s|^dir = \"nexus-data\"|dir = \"$work/data\"|" "$here/configs/default.toml" > "$work/aof.toml"
python3 -c "
import sys
out = open('$work/load.resp', 'wb')
for n in range(1000000):
    k = b'key:%d' % n; v = b'value:%d' % n
    out.write(b'*3\r\n\$3\r\nSET\r\n\$%d\r\n%s\r\n\$%d\r\n%s\r\n' % (len(k), k, len(v), v))
"
start() { "$1" run -c "$work/aof.toml" --listen 127.0.0.1:7411 --metrics-listen "" > "$work/out.log" 2>&1 & pid=$!
  for _ in $(seq 100); do sleep 0.1; redis-cli -p 7411 ping > /dev/null 2>&1 && return; done; }
start "$a"; redis-cli -p 7411 --pipe < "$work/load.resp" | tail -1; kill "$pid"; wait "$pid" || true
ls -l "$work/data"
for _ in $(seq "$rounds"); do
  for bin in "$a" "$b"; do
    start "$bin"; echo "$bin: $(grep -o 'recovered.*' "$work/out.log")"; kill "$pid"; wait "$pid" || true
  done
done
