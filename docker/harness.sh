#!/usr/bin/env bash
# The container harness: gatewayd in a container whose ports are virtio-user
# only, real clients and servers in containers of their own, joined through a
# vhost-user fabric. Needs root, docker.io and mmdebstrap (scripts/setup.sh),
# and gatewayd, gwctl and l2fwd built in release (scripts/docker-test.sh builds them).
#
#   docker/harness.sh up      start dockerd, build the images, start the containers
#   docker/harness.sh test    run the cases against what `up` started
#   docker/harness.sh down    remove the containers, stop dockerd (idempotent)
#   docker/harness.sh run     up, test, down: down runs however the rest ends
#
#   client ctr           fabric ctr (l2fwd --pair)          gateway ctr (gatewayd)
#   eth0 10.0.0.1  ==tap== net_tap0 <-> net_vhost0 ==sock== net_virtio_user0 client 10.0.0.254
#   s1 eth0 .1.10  ==tap== net_tap1 <-> net_vhost1 ==sock== net_virtio_user1 s1 192.168.1.254
#   s2 eth0 .2.10  ==tap== net_tap2 <-> net_vhost2 ==sock== net_virtio_user2 s2 192.168.2.254
#   s3 eth0 .3.10  ==tap== net_tap3 <-> net_vhost3 ==sock== net_virtio_user3 s3 192.168.3.254
#
# The fabric is the project's own L2 forwarder: each vhost-user port (a socket
# in a folder both DPDK containers mount) is paired with a tap whose kernel
# end the harness moves into a client's or server's network namespace. Two
# processes busy-poll, each on its own core: the gateway's worker and the
# fabric's. A server's namespace is held by a small holder container, so its
# nginx container can stop and start again while its link stays.
#
# The harness's dockerd is its own (data root under target/docker, where the
# base image tarball is cached too; exec root and API socket under /run): it
# touches no host firewall, bridge or forwarding setting, and `down` stops
# only what `up` started, by the PIDs and names it recorded.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Cargo's target directory: gatewayd, gwctl and l2fwd are taken from its release/,
# and docker/ in it holds the cached base tarball and dockerd's data root.
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CACHE="$TARGET/docker"
# Unix socket paths are short (108 bytes): the run directory is under /run,
# named after the clone so that two clones never share one.
RUN="/run/gwh-$(printf '%s' "$ROOT" | sha256sum | cut -c1-8)"
SOCK_DIR="$RUN/vhost"
export DOCKER_HOST="unix://$RUN/docker.sock"

VIP_FNAT=10.0.0.100
VIP_NAT=10.0.0.101
VIP_SYNPROXY=10.0.0.102
# The FNAT local address, on s1's link; s2 and s3 reach it by their default
# route, through the gateway.
LIP=192.168.1.200
CLIENT=10.0.0.1
# Server N (1-based) is 192.168.N.10 behind the gateway's 192.168.N.254.
server_ip() { echo "192.168.$1.10"; }

log() { printf 'harness: %s\n' "$*" >&2; }
# Runs a docker command whose output matters only when it fails (the client's
# warnings: no IPv4 forwarding, which is meant; the legacy builder).
quietly() {
    "$@" >"$RUN/quietly.log" 2>&1 || {
        cat "$RUN/quietly.log" >&2
        return 1
    }
}
fail() {
    printf 'harness: FAIL: %s\n' "$*" >&2
    exit 1
}

# --- dockerd -----------------------------------------------------------------

dockerd_pid() {
    [[ -s "$RUN/dockerd.started" ]] && kill -0 "$(cat "$RUN/dockerd.started")" 2>/dev/null && cat "$RUN/dockerd.started"
}

start_dockerd() {
    if dockerd_pid >/dev/null; then
        return
    fi
    mkdir -p "$CACHE/data" "$RUN/exec" "$SOCK_DIR"
    # No host networking side effects: no iptables rules, no docker0 bridge,
    # no forwarding or masquerading. Containers run with --network none (or
    # join a holder's namespace) and get their links from the fabric. dockerd
    # starts a containerd of its own, unless the host runs one: then its
    # containers are kept apart from the host's in their own namespace.
    dockerd --data-root "$CACHE/data" --exec-root "$RUN/exec" -H "$DOCKER_HOST" \
        --pidfile "$RUN/dockerd.pid" --iptables=false --ip6tables=false --ip-forward=false \
        --ip-masq=false --bridge=none --containerd-namespace gwh --containerd-plugins-namespace gwh-plugins \
        >"$RUN/dockerd.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$RUN/dockerd.started"
    for _ in $(seq 100); do
        docker version >/dev/null 2>&1 && return
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    tail -20 "$RUN/dockerd.log" >&2
    fail "dockerd did not start (log: $RUN/dockerd.log)"
}

stop_dockerd() {
    local pid containerd
    pid=$(dockerd_pid) || return 0
    # dockerd started its own containerd; it stops it, but does not wait.
    containerd=$(cat "$RUN/exec/containerd/containerd.pid" 2>/dev/null || true)
    kill -TERM "$pid"
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "dockerd $pid did not stop in 30 s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    [[ -n $containerd ]] || return 0
    for _ in $(seq 50); do
        kill -0 "$containerd" 2>/dev/null || return 0
        sleep 0.2
    done
    log "containerd $containerd did not stop with dockerd: stopping it"
    kill -TERM "$containerd" 2>/dev/null || true
}

# --- images ------------------------------------------------------------------

# The base image: Debian bookworm minbase with docker/packages, built by
# mmdebstrap (no registry) and cached as a tarball named after the list's hash.
BASE_TAG=$(grep -v '^#' "$ROOT/docker/packages" | sha256sum | cut -c1-12)
BASE_IMAGE="gwh-base:$BASE_TAG"

build_images() {
    local tarball="$CACHE/base-$BASE_TAG.tar"
    if [[ ! -s "$tarball" ]]; then
        log "building the base image with mmdebstrap (once; cached as $tarball)"
        rm -f "$CACHE"/base-*.tar "$CACHE"/base-*.tar.partial
        local include
        include=$(grep -v -e '^#' -e '^$' "$ROOT/docker/packages" | paste -sd, -)
        mmdebstrap --quiet --variant=minbase --format=tar --include="$include" \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            bookworm "$tarball.partial"
        mv "$tarball.partial" "$tarball"
    fi
    if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        docker import "$tarball" "$BASE_IMAGE" >/dev/null
    fi
    # The build context: only what the images copy.
    local ctx="$RUN/context"
    rm -rf "$ctx" && mkdir -p "$ctx"
    for bin in gatewayd gwctl l2fwd; do
        [[ -x "$TARGET/release/$bin" ]] || fail "$TARGET/release/$bin missing: run cargo build --release -p gateway -p gwctl -p gwbench"
        cp "$TARGET/release/$bin" "$ctx/"
    done
    cp "$ROOT/docker/nginx.conf" "$ctx/"
    quietly env DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$BASE_IMAGE" -f "$ROOT/docker/Dockerfile" -t gwh-gateway "$ctx"
    quietly env DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$BASE_IMAGE" -f "$ROOT/docker/server.Dockerfile" -t gwh-server "$ctx"
    docker tag "$BASE_IMAGE" gwh-client
    # Old layers of gwh-gateway (a previous gatewayd) go.
    docker image prune -f >/dev/null
}

# The download case's file: 100 MB of random bytes, made once.
BIG="$CACHE/www/big.bin"
make_big_file() {
    if [[ ! -s "$BIG" ]] || (($(stat -c %s "$BIG") != 104857600)); then
        mkdir -p "$CACHE/www"
        head -c 104857600 /dev/urandom >"$BIG.partial"
        mv "$BIG.partial" "$BIG"
        rm -f "$BIG.sha256"
    fi
    [[ -s "$BIG.sha256" ]] || sha256sum "$BIG" | cut -d' ' -f1 >"$BIG.sha256"
}

# --- containers and links ----------------------------------------------------

pid_of() { docker inspect -f '{{.State.Pid}}' "$1"; }

# Runs a command in a container's network namespace, from the host (the
# containers have no NET_ADMIN).
in_netns() {
    local pid
    pid=$(pid_of "$1")
    shift
    nsenter -t "$pid" -n "$@"
}

wait_log() { # container, text, seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        docker logs "$1" 2>&1 | grep -q -- "$2" && return
        [[ $(docker inspect -f '{{.State.Running}}' "$1") == true ]] || break
        sleep 0.1
    done
    docker logs "$1" 2>&1 | tail -20 >&2
    fail "$1 did not log \"$2\" within $3 s"
}

# Moves the fabric's tap IFACE into CONTAINER's namespace as eth0 with ADDR/24
# and a default route via GW.
plumb() { # iface container addr gw
    nsenter -t "$(pid_of fabric)" -n ip link set dev "$1" netns "$(pid_of "$2")"
    in_netns "$2" ip link set dev "$1" name eth0
    in_netns "$2" ip addr add "$3/24" dev eth0
    in_netns "$2" ip link set dev eth0 up
    in_netns "$2" ip link set dev lo up
    in_netns "$2" ip route add default via "$4"
}

start_containers() {
    local d=(quietly docker run -d --init --network none)
    # Namespace holders: the client container itself; one per server, which
    # the server's nginx container joins.
    "${d[@]}" --name client --hostname client gwh-client sleep infinity
    local n
    for n in 1 2 3; do
        "${d[@]}" --name "ns-s$n" --hostname "s$n" gwh-client sleep infinity
    done

    # The fabric: vhost-user servers (the sockets) paired with taps. Its
    # worker polls on core 0, the gateway's on core 1. The gateway's
    # virtio-user ports offload TCP/UDP checksums: the virtio header asks the
    # vhost side to finish them. legacy-ol-flags=1 turns that request into tx
    # offload flags on the mbuf, which the tap PMD honours (it computes the
    # checksums in software); in the default mode the flags say "rx checksum
    # not verified" and the packets reach the kernel with partial checksums.
    local eal=("--lcores=0@1,1@0" --no-huge --no-shconf -m 256 --no-pci --file-prefix=fabric)
    local pairs=()
    for n in 0 1 2 3; do
        eal+=("--vdev=net_vhost$n,iface=/run/gwh/port$n.sock,queues=1,legacy-ol-flags=1" "--vdev=net_tap$n,iface=gwh$n")
        pairs+=(--pair "net_vhost$n,net_tap$n")
    done
    quietly docker run -d --network none --name fabric --cap-add NET_ADMIN --cap-add SYS_NICE \
        --device /dev/net/tun -v "$SOCK_DIR:/run/gwh" --entrypoint /usr/local/bin/l2fwd gwh-gateway \
        "${pairs[@]}" --stats-interval 3600 -- "${eal[@]}"
    wait_log fabric "worker lcore(s)" 20

    plumb gwh0 client "$CLIENT" 10.0.0.254
    for n in 1 2 3; do
        plumb "gwh$n" "ns-s$n" "$(server_ip $n)" "192.168.$n.254"
    done

    make_big_file
    for n in 1 2 3; do
        start_server "$n"
    done

    # The gateway: four virtio-user ports, nothing else.
    cat >"$RUN/gatewayd.json" <<EOF
{
  "eal": ["-l", "0-1", "--no-huge", "--no-shconf", "-m", "256", "--single-file-segments",
          "--no-pci", "--file-prefix=gw",
          "--vdev=net_virtio_user0,path=/run/gwh/port0.sock,queues=1",
          "--vdev=net_virtio_user1,path=/run/gwh/port1.sock,queues=1",
          "--vdev=net_virtio_user2,path=/run/gwh/port2.sock,queues=1",
          "--vdev=net_virtio_user3,path=/run/gwh/port3.sock,queues=1"],
  "ports": [
    {"device": "net_virtio_user0", "name": "client", "addrs": ["10.0.0.254/24"]},
    {"device": "net_virtio_user1", "name": "s1", "addrs": ["192.168.1.254/24"]},
    {"device": "net_virtio_user2", "name": "s2", "addrs": ["192.168.2.254/24"]},
    {"device": "net_virtio_user3", "name": "s3", "addrs": ["192.168.3.254/24"]}
  ],
  "conn_capacity": 65536
}
EOF
    quietly docker run -d --network none --name gateway --cap-add SYS_NICE -v "$SOCK_DIR:/run/gwh" \
        -v "$RUN/gatewayd.json:/etc/gatewayd.json:ro" gwh-gateway --config /etc/gatewayd.json
    wait_log gateway "gatewayd: running" 30
}

start_server() { # n
    quietly docker run -d --init --network "container:ns-s$1" --name "s$1" -e "SERVER_NAME=s$1" \
        -v "$CACHE/www:/srv/www:ro" gwh-server
    for _ in $(seq 50); do
        in_netns "ns-s$1" ss -Hltn 'sport = :80' | grep -q . && return
        sleep 0.1
    done
    docker logs "s$1" >&2
    fail "nginx of s$1 does not listen"
}

# --- cases -------------------------------------------------------------------

gwctl() { docker exec gateway gwctl "$@"; }
client() { docker exec client "$@"; }
# One request from the client; prints the body, or fails. 10 s: a lost SYN
# (resent after 1 s, then 2 s more) on this busy machine is not a failure.
who() { client curl -sS --max-time 10 "http://$1/who"; }
access_log() { docker exec "$1" cat /var/log/nginx/access.log; }
access_lines() { access_log "$1" | wc -l; }

case_fnat_rr() {
    log "case: FNAT rr over three nginx containers"
    gwctl -A -t "$VIP_FNAT:80" -s rr
    gwctl -P -t "$VIP_FNAT:80" -z "$LIP" -F s1
    local n
    for n in 1 2 3; do
        gwctl -a -t "$VIP_FNAT:80" -r "$(server_ip $n):80" -b
    done
    local before=() answers=""
    for n in 1 2 3; do before[n]=$(access_lines "s$n"); done
    for _ in 1 2 3 4 5 6; do answers+="$(who $VIP_FNAT) "; done
    log "  answers: $answers"
    for n in 1 2 3; do
        [[ $(grep -o "s$n " <<<"$answers" | wc -l) == 2 ]] || fail "rr: s$n answered $(grep -o "s$n " <<<"$answers" | wc -l) of 6, not 2: $answers"
        # Each server saw the local address, never the client.
        local peers
        peers=$(access_log "s$n" | tail -n +"$((before[n] + 1))" | cut -d' ' -f1 | sort -u)
        [[ $peers == "$LIP" ]] || fail "s$n saw $peers, not the local address $LIP"
    done
    log "  each server answered 2 of 6 and saw only $LIP"
}

case_nat() {
    log "case: NAT (the servers route back through the gateway)"
    gwctl -A -t "$VIP_NAT:80" -s rr
    local n
    for n in 1 2 3; do
        gwctl -a -t "$VIP_NAT:80" -r "$(server_ip $n):80" -m
    done
    local answers=""
    for _ in 1 2 3; do answers+="$(who $VIP_NAT) "; done
    [[ $(tr ' ' '\n' <<<"$answers" | grep . | sort -u | wc -l) == 3 ]] || fail "NAT: not every server answered: $answers"
    for n in 1 2 3; do
        access_log "s$n" | tail -1 | grep -q "^$CLIENT " || fail "NAT: s$n's last request is not from $CLIENT: $(access_log "s$n" | tail -1)"
    done
    log "  answers: $answers; every server saw the client $CLIENT"
}

stat_value() { # the number on the `gwctl stats` line that names $1 (absent: 0)
    local v
    v=$(gwctl stats | { grep -i -- "$1" || true; } | head -1 | grep -oE '[0-9]+$' || true)
    echo "${v:-0}"
}

case_synproxy() {
    log "case: SYN proxy (-j enable): the gateway answers the SYN with a cookie"
    gwctl -A -t "$VIP_SYNPROXY:80" -s rr -j enable
    gwctl -P -t "$VIP_SYNPROXY:80" -z "$LIP" -F s1
    local n
    for n in 1 2 3; do
        gwctl -a -t "$VIP_SYNPROXY:80" -r "$(server_ip $n):80" -b
    done
    local valid_before valid_after answers=""
    valid_before=$(stat_value "cookies valid")
    for _ in 1 2 3; do answers+="$(who $VIP_SYNPROXY) "; done
    valid_after=$(stat_value "cookies valid")
    ((valid_after - valid_before == 3)) || fail "SYN proxy: cookies valid went $valid_before -> $valid_after for 3 connections"
    [[ $(tr ' ' '\n' <<<"$answers" | grep . | sort -u | wc -l) == 3 ]] || fail "SYN proxy: not every server answered: $answers"
    log "  answers: $answers; 3 valid cookies"
}

case_server_restart() {
    log "case: a real server container stopped and started again"
    docker stop -t 2 s2 >/dev/null
    # The gateway keeps scheduling s2 (no health check): its share is
    # refused by s2's kernel, the others keep serving.
    local ok=0 refused=0 n
    for _ in 1 2 3 4 5 6; do
        if who "$VIP_FNAT" >/dev/null 2>&1; then ok=$((ok + 1)); else refused=$((refused + 1)); fi
    done
    ((ok == 4 && refused == 2)) || fail "s2 stopped: $ok served, $refused failed (want 4 and 2)"
    # The operator's answer (what a health checker does): weight 0 quiesces it.
    gwctl -e -t "$VIP_FNAT:80" -r "$(server_ip 2):80" -b -w 0
    for _ in 1 2 3 4; do
        [[ $(who "$VIP_FNAT") != s2 ]] || fail "s2 answered while stopped"
    done
    docker start s2 >/dev/null
    for _ in $(seq 50); do
        in_netns ns-s2 ss -Hltn 'sport = :80' | grep -q . && break
        sleep 0.1
    done
    gwctl -e -t "$VIP_FNAT:80" -r "$(server_ip 2):80" -b -w 1
    local answers=""
    for _ in 1 2 3 4 5 6; do answers+="$(who $VIP_FNAT) "; done
    for n in 1 2 3; do
        [[ $(grep -o "s$n " <<<"$answers" | wc -l) == 2 ]] || fail "after s2's restart: $answers"
    done
    log "  stopped: 4 served, 2 refused; weight 0: s2 skipped; started again: $answers"
}

case_download() {
    log "case: a 100 MB download through FNAT, checked by sha256"
    local want got t0 t1
    want=$(cat "$BIG.sha256")
    t0=$(date +%s.%N)
    got=$(client sh -c "curl -sS --max-time 60 http://$VIP_FNAT/big.bin | sha256sum" | cut -d' ' -f1)
    t1=$(date +%s.%N)
    [[ $got == "$want" ]] || fail "download: sha256 $got, want $want"
    log "  sha256 matches; $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s, %.0f Mbit/s", b - a, 838.8608 / (b - a) }')"
}

# wrk from the client container against the FNAT service; fails on any
# socket error or non-2xx answer, prints the latency and the rate.
wrk_fnat() { # description, wrk options...
    log "case: wrk, $1"
    shift
    local out
    out=$(client wrk -t1 "$@" --latency "http://$VIP_FNAT:80/who")
    grep -E 'Latency  |50%|99%|Requests/sec|requests in|Socket errors|Non-2xx' <<<"$out" | sed 's/^/harness:   /' >&2
    ! grep -q 'Socket errors\|Non-2xx' <<<"$out" || fail "wrk saw errors"
}

case_client_figures() {
    log "case: one new connection at a time (curl, 20 requests): connect and total times"
    local times
    times=$(client sh -c "for i in \$(seq 20); do curl -sS -o /dev/null --max-time 10 -w '%{time_connect} %{time_total}\n' http://$VIP_FNAT/who; done")
    sort -n -k2 <<<"$times" | awk '{ c[NR] = $1 * 1000; t[NR] = $2 * 1000 } END {
        printf "harness:   median connect %.2f ms, median request %.2f ms, slowest request %.2f ms\n", c[int((NR + 1) / 2)], t[int((NR + 1) / 2)], t[NR] }' >&2
    wrk_fnat "5 s, 16 keep-alive connections" -c16 -d5s
    wrk_fnat "3 s, 16 connections, a new connection per request" -c16 -d3s -H "Connection: close"
    gwctl -Ln | sed 's/^/harness:   /' >&2
}

run_tests() {
    local started=$SECONDS
    # From a clean table, so that `test` can run again after `up`.
    gwctl -C
    case_fnat_rr
    case_nat
    case_synproxy
    case_server_restart
    case_download
    case_client_figures
    log "all cases passed in $((SECONDS - started)) s"
}

# --- down --------------------------------------------------------------------

down() {
    if dockerd_pid >/dev/null; then
        local ids
        mapfile -t ids < <(docker ps -aq 2>/dev/null || true)
        # Stopping gatewayd and the fabric by signal lets them release their
        # ports; then everything goes (the namespaces, and the taps in them).
        docker stop -t 5 gateway fabric >/dev/null 2>&1 || true
        ((${#ids[@]} == 0)) || docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
        stop_dockerd
    fi
    # dockerd unmounts its data root and the containers' layers when it stops
    # cleanly; after a dockerd that had to be killed, do it for it.
    local m
    for m in $(findmnt -rn -o TARGET | { grep "^$CACHE/data" || true; } | sort -r); do
        umount "$m" || log "could not unmount $m"
    done
    rm -rf "$RUN"
}

up() {
    local started=$SECONDS
    mkdir -p "$RUN" "$CACHE"
    start_dockerd
    build_images
    # A previous run that died before its down left containers: remove them,
    local stale
    mapfile -t stale < <(docker ps -aq)
    ((${#stale[@]} == 0)) || docker rm -f "${stale[@]}" >/dev/null
    # and a killed fabric's vhost-user sockets, which a new one cannot bind.
    rm -f "$SOCK_DIR"/*.sock
    start_containers
    log "up in $((SECONDS - started)) s: gateway, fabric, client, s1 s2 s3"
}

on_failure() {
    local rc=$?
    if ((rc != 0)); then
        log "exit status $rc: the gateway's and the fabric's last lines"
        docker logs gateway 2>&1 | grep -v VHOST_CONFIG | tail -15 >&2 || true
        docker logs fabric 2>&1 | grep -v VHOST_CONFIG | tail -5 >&2 || true
    fi
    down
    exit "$rc"
}

# Say which command failed: set -e alone exits in silence.
set -E
trap 'log "line $LINENO: \"$BASH_COMMAND\" failed"; trap - ERR' ERR

[[ $(id -u) == 0 ]] || fail "must run as root (dockerd, namespaces)"
case "${1:-run}" in
up) up ;;
test) run_tests ;;
down) down ;;
run)
    trap on_failure EXIT
    up
    run_tests
    ;;
*) fail "usage: $0 up|test|down|run" ;;
esac
