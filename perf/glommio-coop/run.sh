#!/usr/bin/env bash
# The engine's paths on glommio before (fb3dde6, glommio 0.9.0) and after (2731a87, vendored
# glommio with COOP_TASKRUN): 3 alternating rounds of `nexus bench pingpong` and `counting`,
# --executor glommio --repeat 3, then summarize.py.
# Usage: run.sh OLD_BIN NEW_BIN   (binaries built at fb3dde6 and 2731a87)
set -euo pipefail
cd "$(dirname "$0")"
for r in 1 2 3; do
  for pair in "fb3dde6:$1" "2731a87:$2"; do
    name=${pair%%:*}; bin=${pair#*:}
    "$bin" bench pingpong --executor glommio --repeat 3 --json "pingpong-$name-$r.jsonl" > /dev/null
    "$bin" bench counting --executor glommio --repeat 3 --json "counting-$name-$r.jsonl" > /dev/null
  done
done
python3 summarize.py | tee summary.txt
