#!/bin/sh
# Instructions per packet through the whole worker pipeline (see
# pipeline_insns.rs), counted exactly by callgrind inside `measured_pipeline`.
#
#   gateway/benches/measure_pipeline.sh        # from the repository root
set -eu
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
N=${N:-20000}
cargo bench -p gateway --no-default-features --bench pipeline_insns --no-run >/dev/null 2>&1
BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/pipeline_insns-* | grep -v '\.d$' | head -1)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for path in established reply reply-clients new synproxy proxied proxied-reply established6 reply6 new6 nat64 nat64-reply \
    established-staged reply-staged new-staged established6-staged; do
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" --toggle-collect='*measured_pipeline*' \
        "$BIN" "$path" "$N" >/dev/null 2>&1
    total=$(awk '/^summary:/ { print $2 }' "$OUT/cg")
    echo "$path: $((total / N)) instructions/packet (N=$N)"
done
