#!/usr/bin/env bash
# The demo: a client's requests rotating across three real servers behind a
# FNAT virtual service, configured with gwctl in ipvsadm syntax. Run as root
# from a fresh clone; it does the set-up itself, says what it does as it goes,
# and removes everything it created, even on failure.
#
#   client ns 10.0.0.1 --tap-- gatewayd --tap-- servers ns 192.168.1.{10,11,12}
#                 VIP 10.0.0.100:80         local address 192.168.1.200
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENT=gwdemo-client
SERVERS=gwdemo-servers
WORK=$(mktemp -d -t gwdemo.XXXXXX)
export GATEWAYD_SOCKET="$WORK/gatewayd.sock"
GW_PID=""
HTTP_PIDS=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
    set +e
    for p in "${HTTP_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [[ -n "$GW_PID" ]] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    ip netns del "$CLIENT" 2>/dev/null
    ip netns del "$SERVERS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say "Setting up the machine (Debian packages, hugepages) and building"
bash scripts/setup.sh
cargo build --release --bin gatewayd --bin gwctl
BIN="${CARGO_TARGET_DIR:-target}/release"

say "Creating a client namespace and a namespace with three real servers"
ip netns del "$CLIENT" 2>/dev/null || true
ip netns del "$SERVERS" 2>/dev/null || true
ip netns add "$CLIENT"
ip netns add "$SERVERS"

cat > "$WORK/gatewayd.json" <<JSON
{
  "eal": ["-l", "0-1", "--no-pci", "--in-memory", "--file-prefix=gwdemo", "--log-level=lib.eal:error",
          "--vdev=net_tap0,iface=gwdemo0", "--vdev=net_tap1,iface=gwdemo1"],
  "ports": [
    {"device": "net_tap0", "name": "client", "addrs": ["10.0.0.254/24"]},
    {"device": "net_tap1", "name": "servers", "addrs": ["192.168.1.254/24"]}
  ]
}
JSON
say "Starting gatewayd with this configuration:"
cat "$WORK/gatewayd.json"
"$BIN/gatewayd" --config "$WORK/gatewayd.json" >"$WORK/gatewayd.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do grep -q running "$WORK/gatewayd.log" && break; sleep 0.1; done
grep -q running "$WORK/gatewayd.log" || { cat "$WORK/gatewayd.log"; echo "demo: gatewayd did not start" >&2; exit 1; }
cat "$WORK/gatewayd.log"

ip link set gwdemo0 netns "$CLIENT"
ip link set gwdemo1 netns "$SERVERS"
ip -n "$CLIENT" addr add 10.0.0.1/24 dev gwdemo0
for i in 10 11 12; do ip -n "$SERVERS" addr add "192.168.1.$i/24" dev gwdemo1; done
for ns in "$CLIENT" "$SERVERS"; do ip -n "$ns" link set lo up; done
ip -n "$CLIENT" link set gwdemo0 up
ip -n "$SERVERS" link set gwdemo1 up

say "Starting three web servers (192.168.1.10, .11, .12 port 8080), each saying who it is"
for i in 10 11 12; do
    mkdir -p "$WORK/rs$i" && echo "hello from real server 192.168.1.$i" > "$WORK/rs$i/index.html"
    ip netns exec "$SERVERS" python3 -m http.server 8080 --bind "192.168.1.$i" --directory "$WORK/rs$i" \
        >"$WORK/rs$i.log" 2>&1 &
    HTTP_PIDS+=($!)
done
for i in 10 11 12; do
    for _ in $(seq 50); do
        ip netns exec "$SERVERS" curl -s --max-time 1 "http://192.168.1.$i:8080/" >/dev/null && break
        sleep 0.1
    done
done

say "Configuring a FNAT service with gwctl, exactly as with ipvsadm"
run() { echo "# $*"; "$@"; }
run "$BIN/gwctl" -A -t 10.0.0.100:80 -s rr
run "$BIN/gwctl" -P -t 10.0.0.100:80 -z 192.168.1.200 -F servers
for i in 10 11 12; do run "$BIN/gwctl" -a -t 10.0.0.100:80 -r "192.168.1.$i:8080" -b; done
run "$BIN/gwctl" -Ln

say "The client asks the VIP six times: the answers rotate across the servers"
for _ in $(seq 50); do
    ip netns exec "$CLIENT" curl -s --max-time 2 http://10.0.0.100/ >/dev/null && break
    sleep 0.2
done
ANSWERS=()
for n in $(seq 6); do
    answer=$(ip netns exec "$CLIENT" curl -s --max-time 5 http://10.0.0.100/ || echo "(no answer)")
    printf 'request %d: %s\n' "$n" "$answer"
    ANSWERS+=("$answer")
done
distinct=$(printf '%s\n' "${ANSWERS[@]}" | grep '^hello from real server' | sort -u | wc -l)
if [[ $distinct -ne 3 ]]; then
    echo "demo: expected the six answers to rotate over three servers, got $distinct distinct" >&2
    exit 1
fi

say "What the servers saw: the gateway's local address, not the client"
tail -n 2 "$WORK/rs10.log"

say "The table now (ActiveConn/InActConn), its connections, its traffic counters, and the workers' counters"
run "$BIN/gwctl" -Ln
run "$BIN/gwctl" -Lnc
run "$BIN/gwctl" -Ln --stats
run "$BIN/gwctl" stats

say "Stopping gatewayd (every mbuf returns to its pool)"
kill "$GW_PID"; status=0; wait "$GW_PID" || status=$?; GW_PID=""
tail -n 2 "$WORK/gatewayd.log"
if [[ $status -ne 0 ]] || grep -q "not returned" "$WORK/gatewayd.log"; then
    echo "demo: gatewayd did not stop cleanly (exit status $status)" >&2
    exit 1
fi
say "Demo done: cleaning up namespaces and processes"
