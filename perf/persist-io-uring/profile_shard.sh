#!/usr/bin/env bash
# Profiles one nexus shard under redis-benchmark SET -P 16, with and without the log, and
# prints the symbols whose share of the shard's samples grew most with the log.
# Usage: profile_shard.sh BIN [FSYNC=everysec] [TEST=set]
# On a VM perf samples on a timer, and kernel code run with interrupts off is charged to where
# they come back on (`_raw_spin_unlock_irq*`): kernel symbols' shares move from run to run.
# Read the user-space symbols and clear_page_erms (page faults), not the TCP stack's.
# Needs perf (perf_event_paranoid <= 2 is enough for -a as root). Outputs stay in a temp dir
# printed at the end.
set -euo pipefail
bin=$1; fsync=${2:-everysec}; test=${3:-set}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
sed -e 's/^shards = "auto"/shards = 1/' "$here/configs/default.toml" > "$work/off.toml"
sed -e 's/^mode = "off"/mode = "aof"/' -e "s/^fsync = .*/fsync = \"$fsync\"/" \
    -e "s|^dir = \"nexus-data\"|dir = \"$work/data\"|" "$work/off.toml" > "$work/log.toml"
profile() { # CONF PORT NAME
  "$bin" run -c "$work/$1.toml" --listen "127.0.0.1:$2" --metrics-listen "" > "$work/$3.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p "$2" ping > /dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p "$2" -c 50 -n 300000 -P 16 -t "$test" -r 100000 -q > /dev/null 2>&1
  (perf record -a -g -o "$work/$3.data" -- sleep 3 > /dev/null 2>&1 &)
  echo "$3: $(redis-benchmark -p "$2" -c 50 -n 2000000 -P 16 -t "$test" -r 100000 --csv 2>/dev/null | tail -1)"
  sleep 0.5; kill "$pid"; wait "$pid" || true
  perf report -i "$work/$3.data" --no-children --comm nexus-shard-0-1 --sort sym -q -g none 2>/dev/null \
    | awk -F'\\[.\\] ' '/\[.\]/{p=$1; gsub(/[ %]/,"",p); print p "\t" $2}' > "$work/$3.syms"
}
profile off 17651 off
profile log 17652 log
python3 - "$work" <<'PY'
import sys
def load(n):
    d = {}
    for line in open(f"{sys.argv[1]}/{n}.syms"):
        p, _, sym = line.partition("\t")
        try: d[sym.strip()] = float(p)
        except ValueError: pass
    return d
a, b = load("off"), load("log")
ta, tb = sum(a.values()), sum(b.values())
print("share of the shard's samples, without the log -> with it:")
for d, k in sorted(((b.get(k, 0) / tb - a.get(k, 0) / ta, k) for k in set(a) | set(b)), reverse=True)[:20]:
    print(f"{d * 100:+.2f}%  {k}  ({a.get(k, 0) / ta * 100:.2f} -> {b.get(k, 0) / tb * 100:.2f})")
PY
echo "raw data: $work"
