#!/bin/bash
# Interleaved A/B of the ask path: the criterion `ask_local` and `ask_cross` benches of two
# builds of bench/benches/core.rs, untyped (a98a613, answers through on_reply) and typed
# (answers through the adapter and handle), alternating round by round.
# Usage: perf/ab-typed-ask/run.sh UNTYPED_BIN TYPED_BIN OUT_DIR [ROUNDS]
#   Build each with `cargo bench -p nexus-bench --bench core --no-run` at its commit and copy
#   target/release/deps/core-* aside. `python3 perf/ab-typed-ask/pairs.py OUT_DIR` reads it.
set -euo pipefail
old=${1:?untyped binary}; new=${2:?typed binary}; out=${3:?output dir}; rounds=${4:-4}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for side in untyped typed; do
    bin=$old; [ "$side" = typed ] && bin=$new
    echo "round $r/$rounds: $side" >&2
    "$bin" --bench '^ask_(local|cross)$' --noplot > "$out/$side-$r.txt" 2>&1
  done
done
