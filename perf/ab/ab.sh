#!/bin/bash
# Interleaved A/B of two Nexus builds on the message-path workloads.
#
# Usage: perf/ab/ab.sh OLD_BINARY NEW_BINARY OUT_DIR [ROUNDS]
#   Build each `nexus` with `cargo build --release -p nexus-tools --features peers --bin nexus`
#   at the two commits and copy the binaries aside. Each round runs old then new, each on
#   pingpong, counting and thread-ring with `--repeat 3`, writing OUT_DIR/{base,lap}-W-R.jsonl
#   ("base" is the old build, "lap" the new one). Then `python3 perf/ab/pairs.py OUT_DIR` prints
#   the new/old ratio of every figure, taken round by round (median, min-max).
# Make sure nothing else of yours runs (`ps`) before you start: the box has two cores.
set -euo pipefail
old=${1:?old binary}; new=${2:?new binary}; out=${3:?output dir}; rounds=${4:-4}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for side in base lap; do
    bin=$old; [ "$side" = lap ] && bin=$new
    for w in pingpong counting thread-ring; do
      echo "round $r/$rounds: $side $w" >&2
      "$bin" bench "$w" --repeat 3 --json "$out/$side-$w-$r.jsonl" >/dev/null
    done
  done
done
