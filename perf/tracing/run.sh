#!/bin/bash
# Message tracing's overhead (`nexus bench tracing`): builds the baseline without tracing's hooks
# (`--features nexus-engine/untraced`) into its own target dir, builds the normal release binary,
# and runs the measurement with both. Run it from the workspace root on a quiet machine.
# Usage: perf/tracing/run.sh [EXTRA ARGS FOR nexus bench tracing, e.g. --repeat 10]
# Writes perf/tracing/results.jsonl (the records) and perf/tracing/results.txt (the tables).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p nexus-tools --features nexus-engine/untraced --target-dir target/untraced
cargo build --release -p nexus-tools
target/release/nexus bench tracing --untraced-bin target/untraced/release/nexus \
  --json perf/tracing/results.jsonl "$@" | tee perf/tracing/results.txt
