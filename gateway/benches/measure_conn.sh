#!/bin/sh
# Instructions per new connection (setup: schedule + local port + insert,
# through the Director) and per lookup in a 100k-connection table, counted
# exactly by callgrind as the difference of two runs (N1 and N2 iterations),
# which removes the set-up of the table. `lookup` minus `keys` is the lookup
# alone (the loop that makes the keys, without looking them up).
#
#   gateway/benches/measure_conn.sh        # from the repository root
set -eu
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
N1=${N1:-20000}
N2=${N2:-120000}
cargo bench -p gateway --no-default-features --bench conn_table --no-run >/dev/null 2>&1
BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/conn_table-* | grep -v '\.d$' | head -1)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
total() { # mode n
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" "$BIN" "$1" "$2" >/dev/null 2>&1
    awk '/^summary:/ { print $2 }' "$OUT/cg"
}
per() { # mode
    a=$(total "$1" "$N1"); b=$(total "$1" "$N2")
    echo $(( (b - a) / (N2 - N1) ))
}
setup=$(per setup); lookup=$(per lookup); keys=$(per keys); packet=$(per packet)
echo "setup:  $setup instructions/connection"
echo "lookup: $((lookup - keys)) instructions (loop $lookup, key generation $keys)"
echo "packet: $((packet - keys)) instructions (lookup + state + timer)"
