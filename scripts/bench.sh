#!/usr/bin/env bash
# The benchmark, one command (issue 9). Run as root from the clone's top
# directory:
#
#   scripts/bench.sh                 # everything (4 minutes quiet, 20 busy)
#   scripts/bench.sh --quick         # one short round of each figure
#   scripts/bench.sh --figures established,connect   # some figures only
#
# Builds in release, runs gwbench's driver (each figure next to its reference
# in the same run: the plain forwarder, bench's l2fwd, over the same memif links),
# the callgrind instruction counts and the connection-table bench, writes
# target/bench/results.json, prints a short table and plots
# target/bench/mpps_vs_conns.png. Options after the script name go to
# `gwbench all` (see `gwbench all --help` and PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;; esac
cargo build --locked --release -p gwbench -p gateway -p gwctl --bins

out="$CARGO_TARGET_DIR/bench"
mkdir -p "$out"
# gwbench stops every process it started and removes its temporary
# directories itself, also on SIGINT/SIGTERM.
"$CARGO_TARGET_DIR/release/gwbench" all --repo . --target-dir "$CARGO_TARGET_DIR" \
    --out "$out/results.json" "$@"
# Debian's python3-matplotlib belongs to the system interpreter.
py=/usr/bin/python3
[[ -x $py ]] || py=python3
if "$py" -c 'import matplotlib' 2>/dev/null; then
    "$py" bench/plot.py "$out/results.json" "$out/mpps_vs_conns.png" || true
else
    echo "bench.sh: python3-matplotlib missing, no plot" >&2
fi
