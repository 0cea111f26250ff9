#!/usr/bin/env bash
# One nexus build under several configs, a fresh server (and an empty log directory) per run,
# the configs alternating within each round: redis-benchmark -c 50 -P 16 -r 100000, N requests
# (3,000,000) of test T (set), pipeline P (16). Prints "round config req/s".
# Usage: [T=set] [N=3000000] [P=16] [EXEC=glommio] configs_ab.sh ROUNDS BIN CONFIG...
# A config with mode = "aof" should name its own log `dir`; it is emptied before every run.
set -euo pipefail
rounds=$1; bin=$2; shift 2
for r in $(seq "$rounds"); do
  for c in "$@"; do
    if grep -q '^mode = "aof"' "$c"; then
      dir=$(sed -n 's/^dir = "\(.*\)"/\1/p' "$c")
      [ -n "$dir" ] && rm -rf "$dir"
    fi
    "$bin" run -c "$c" --executor "${EXEC:-glommio}" --listen 127.0.0.1:17630 --metrics-listen "" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do redis-cli -p 17630 ping > /dev/null 2>&1 && break; sleep 0.1; done
    if ! redis-cli -p 17630 ping > /dev/null 2>&1; then
      echo "configs_ab.sh: $c did not start on port 17630 (in use?)" >&2; kill "$pid" 2>/dev/null; exit 1
    fi
    rps=$(timeout 300 redis-benchmark -p 17630 -c 50 -n "${N:-3000000}" -P "${P:-16}" -t "${T:-set}" -r 100000 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$r $(basename "$c") $rps"
  done
done
