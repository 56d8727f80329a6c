#!/usr/bin/env bash
# The demo: gatewayd forwarding real Linux traffic between two network
# namespaces over DPDK tap ports. Run as root from a fresh clone; it does the
# set-up itself and removes everything it created, even on failure.
#
#   client ns (10.99.0.1/24, tap gwdemo0) <-> gatewayd <-> (tap gwdemo1, 10.99.0.2/24) server ns
#
# The client pings the server and fetches a page from it; every packet crosses
# gatewayd's worker lcore. Until the load balancer itself lands, gatewayd runs
# as a plain L2 forwarder; this demo grows into the load-balancing demo.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN="${GW_DEMO_SECONDS:-20}"
CLIENT=gwdemo-client
SERVER=gwdemo-server
LOG=$(mktemp -t gatewayd-demo.XXXXXX)
GW_PID=""
HTTP_PID=""

cleanup() {
    set +e
    [[ -n "$HTTP_PID" ]] && kill "$HTTP_PID" 2>/dev/null
    [[ -n "$GW_PID" ]] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    ip netns del "$CLIENT" 2>/dev/null
    ip netns del "$SERVER" 2>/dev/null
    rm -f "$LOG"
}
trap cleanup EXIT INT TERM

bash scripts/setup.sh
cargo build --release --bin gatewayd
BIN="${CARGO_TARGET_DIR:-target}/release/gatewayd"

ip netns del "$CLIENT" 2>/dev/null || true
ip netns del "$SERVER" 2>/dev/null || true
ip netns add "$CLIENT"
ip netns add "$SERVER"

"$BIN" --seconds "$SECONDS_TO_RUN" --stats-interval 5 -- \
    -l 0-1 --no-pci --in-memory --file-prefix=gwdemo --log-level=lib.eal:error \
    --vdev=net_tap0,iface=gwdemo0 --vdev=net_tap1,iface=gwdemo1 >"$LOG" 2>&1 &
GW_PID=$!

for _ in $(seq 100); do
    ip link show gwdemo0 >/dev/null 2>&1 && ip link show gwdemo1 >/dev/null 2>&1 && grep -q running "$LOG" && break
    sleep 0.1
done
grep -q running "$LOG" || { cat "$LOG"; echo "demo: gatewayd did not start" >&2; exit 1; }

ip link set gwdemo0 netns "$CLIENT"
ip link set gwdemo1 netns "$SERVER"
ip -n "$CLIENT" addr add 10.99.0.1/24 dev gwdemo0
ip -n "$SERVER" addr add 10.99.0.2/24 dev gwdemo1
for ns in "$CLIENT" "$SERVER"; do ip -n "$ns" link set lo up; done
ip -n "$CLIENT" link set gwdemo0 up
ip -n "$SERVER" link set gwdemo1 up

mkdir -p /tmp/gwdemo-www && echo "hello through gatewayd" > /tmp/gwdemo-www/index.html
ip netns exec "$SERVER" python3 -m http.server 8080 --bind 10.99.0.2 --directory /tmp/gwdemo-www >/dev/null 2>&1 &
HTTP_PID=$!

echo "demo: ping client -> server through gatewayd"
ip netns exec "$CLIENT" ping -c 3 -W 2 10.99.0.2
echo "demo: HTTP GET client -> server through gatewayd"
for _ in $(seq 50); do
    body=$(ip netns exec "$CLIENT" curl -s --max-time 2 http://10.99.0.2:8080/index.html) && break
    sleep 0.2
done
echo "demo: got: ${body:-<nothing>}"
[[ "${body:-}" == "hello through gatewayd" ]]

kill "$GW_PID"; wait "$GW_PID" || true; GW_PID=""
echo "demo: gatewayd's counters:"
tail -n 3 "$LOG"
echo "demo: OK"
