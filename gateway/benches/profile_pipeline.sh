#!/bin/sh
# Where one path's instructions per packet go, by stage (classify, lookup,
# state and timer, counters, egress, rewrite, send, and the glue around them):
# measure_pipeline.sh's count for PATH, taken apart by pipeline_stages.py.
#
#   gateway/benches/profile_pipeline.sh established [--lines]   # from the repository root
set -eu
[ $# -ge 1 ] || { echo "usage: $0 PATH [--lines]" >&2; exit 2; }
path=$1
shift
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
N=${N:-20000}
cargo bench -p gateway --no-default-features --bench pipeline_insns --no-run >/dev/null 2>&1
BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/pipeline_insns-* | grep -v '\.d$' | head -1)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$OUT/cg" --toggle-collect='*measured_pipeline*' \
    "$BIN" "$path" "$N" >/dev/null 2>&1
python3 "$(dirname "$0")/pipeline_stages.py" "$OUT/cg" "$BIN" "$N" "$@"
