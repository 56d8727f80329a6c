#!/bin/sh
# Instructions per packet of classify + rewrite for every forwarding mode
# and for the SYN proxy (SYN-ACK generation, cookie check), counted exactly
# by callgrind (these machines have no hardware counters).
#
#   gateway/benches/measure_insns.sh            # from the repository root
#   PATHS="synack cookie_ack" gateway/benches/measure_insns.sh   # some paths
#
# For each path it prints:
#   exact  - instructions inside the measured function (classify + rewrite),
#            divided by N (callgrind --toggle-collect);
#   diff   - (whole-program instructions at N2 - at N1) / (N2 - N1), which
#            removes set-up cost but keeps the per-iteration frame reset (a
#            copy of the packet), as a cross-check;
#   reset  - the same difference for the reset alone.
set -eu
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
N1=${N1:-20000}
N2=${N2:-120000}
cargo bench -p gateway --no-default-features --bench xmit_insns --no-run >/dev/null 2>&1
BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/xmit_insns-* | grep -v '\.d$' | head -1)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

total() { # path n [toggle]
    if [ -n "${3:-}" ]; then
        valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" --toggle-collect='*measured_*' "$BIN" "$1" "$2" >/dev/null 2>&1
    else
        valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" "$BIN" "$1" "$2" >/dev/null 2>&1
    fi
    awk '/^summary:/ { print $2 }' "$OUT/cg"
}

r1=$(total reset "$N1"); r2=$(total reset "$N2")
reset=$(( (r2 - r1) / (N2 - N1) ))
printf '%-16s %6s %6s   (reset alone: %s)\n' path exact diff "$reset"
for p in ${PATHS:-classify classify_v6 fnat_in fnat_in_seq fnat_out_ack fnat_out_sack fnat_in_proxy fnat_out_proxy fnat_in_rxgood fnat_in_offload fnat_in_toa nat_in nat_out fnat_in_v6 fnat_in_proxy_v6 fnat_out_proxy_v6 fnat_in_offload_v6 fnat_in_toa_v6 nat_in_v6 nat_out_v6 dr tun synack synack_offload cookie_ack}; do
    exact=$(total "$p" "$N1" toggle)
    t1=$(total "$p" "$N1"); t2=$(total "$p" "$N2")
    printf '%-16s %6s %6s\n' "$p" "$((exact / N1))" "$(( (t2 - t1) / (N2 - N1) ))"
done
