#!/usr/bin/env bash
# 2 shards, threads, aof always: A and B alternating, fresh server each, SET/INCR -P1/-P16.
# Usage: CONFIG=conf.toml [DATA=its dir] always_2shards_ab.sh BIN_A BIN_B (CONFIG: configs/default.toml with
# mode = "aof", fsync = "always" and dir = DATA; shards = "auto" runs 2 on a 2-vCPU machine).
# Prints "round test pipeline build req/s".
set -u
for r in 1 2 3; do
  for t in set incr; do for P in 1 16; do
    n=$([ $P = 1 ] && echo 100000 || echo 600000)
    for b in "$@"; do
      rm -rf "${DATA:-/tmp/inl/d2}"
      $b run -c "${CONFIG:?set CONFIG to a 2-shard aof always config whose dir is /tmp/inl/d2}" --executor threads --listen 127.0.0.1:17702 --metrics-listen "" > /dev/null 2>&1 & sp=$!
      for _ in $(seq 100); do redis-cli -p 17702 ping >/dev/null 2>&1 && break; sleep 0.1; done
      rps=$(timeout 120 redis-benchmark -p 17702 -c 50 -n $n -P $P -t $t -r 100000 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      kill $sp; wait $sp 2>/dev/null
      echo "$r $t $P $(basename $b) $rps"
    done
  done; done
done
