#!/bin/sh
# Instructions per packet through the whole worker pipeline (see
# pipeline_insns.rs), counted exactly by callgrind inside `measured_pipeline`.
#
#   gateway/benches/measure_pipeline.sh                         # every path
#   gateway/benches/measure_pipeline.sh --stages PATH [--lines[=N]] # one path, by stage
#
# From the repository root. `--stages` takes PATH's count apart by stage
# (classify, lookup, state and timer, egress, rewrite, send, and the glue
# around them; see pipeline_stages.py), `--lines` listing each stage's
# source lines.
set -eu
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
N=${N:-20000}
cargo bench -p gateway --no-default-features --bench pipeline_insns --no-run >/dev/null 2>&1
BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/pipeline_insns-* | grep -v '\.d$' | head -1)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# The packets PATH ($1) runs: a handshake is three bursts of 32 packets, so
# its N is rounded down to whole ones.
packets() {
    case $1 in
        handshake*) echo $((N / 96 * 96)) ;;
        *) echo "$N" ;;
    esac
}
if [ "${1:-}" = --stages ]; then
    [ $# -ge 2 ] || { echo "usage: $0 --stages PATH [--lines[=N]]" >&2; exit 2; }
    path=$2
    n=$(packets "$path")
    shift 2
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$OUT/cg" --toggle-collect='*measured_pipeline*' \
        "$BIN" "$path" "$n" >/dev/null 2>&1
    python3 "$(dirname "$0")/pipeline_stages.py" "$OUT/cg" "$BIN" "$n" "$@"
    exit
fi
for path in established reply reply-clients new synproxy proxied proxied-reply established6 reply6 new6 nat64 nat64-reply handshake \
    established-staged reply-staged new-staged established6-staged synproxy-staged; do
    n=$(packets "$path")
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" --toggle-collect='*measured_pipeline*' \
        "$BIN" "$path" "$n" >/dev/null 2>&1
    total=$(awk '/^summary:/ { print $2 }' "$OUT/cg")
    echo "$path: $((total / n)) instructions/packet (N=$n)"
done
