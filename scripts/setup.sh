#!/usr/bin/env bash
# One-time, idempotent machine set-up for building and testing the gateway.
# Run as root on Debian bookworm. Safe to run again: it installs only what is
# missing and reserves hugepages only when fewer than wanted are reserved.
set -euo pipefail

HUGEPAGES_WANTED="${GW_HUGEPAGES:-512}"

if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: must run as root (it installs Debian packages and reserves hugepages)" >&2
    exit 1
fi

PACKAGES=(
    # build: DPDK headers/libs, bindgen's libclang, pkg-config
    libdpdk-dev dpdk clang libclang-dev pkg-config build-essential
    # test harness: namespaces, captures, real clients and servers
    iproute2 iputils-ping tcpdump nginx curl wrk iperf3 hping3 python3-scapy python3
    # the exception-path and VRRP tests: keepalived in the directors'
    # namespaces, arping and nc from the client
    keepalived iputils-arping netcat-openbsd
    # the ECMP test: BIRD 2 (BGP) on the directors' kernel interfaces and
    # the router; nft for the NAT servers' return routing
    bird2
    # the metrics test's Prometheus text parser
    python3-prometheus-client
    # the PROXY protocol test's second consumer (accept-proxy)
    haproxy
    # benchmarks: exact instruction counts, the plot of scripts/bench.sh, the
    # kernel NAT peer (nftables)
    valgrind python3-matplotlib nftables
    # the container harness (docker/harness.sh): its own dockerd, and the
    # offline base image built from Debian packages
    docker.io mmdebstrap
    # the package test (scripts/package-test.sh): systemd-analyze verify, and
    # dpkg-shlibdeps for cargo-deb's $auto dependencies
    systemd dpkg-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nginx, keepalived, bird and haproxy are test fixtures only: never leave the
# distribution's services running.
for service in nginx keepalived bird haproxy; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl stop "$service" || true
    fi
done

# Hugepages: reserve 2 MiB pages and mount hugetlbfs. Tests that cannot get
# them fall back to --no-huge, so a failure here is reported but not fatal.
current=$(cat /proc/sys/vm/nr_hugepages)
if (( current < HUGEPAGES_WANTED )); then
    echo "$HUGEPAGES_WANTED" > /proc/sys/vm/nr_hugepages || true
fi
if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages || echo "setup.sh: could not mount hugetlbfs" >&2
fi
echo "setup.sh: hugepages reserved: $(cat /proc/sys/vm/nr_hugepages) (wanted $HUGEPAGES_WANTED)"

if ! command -v cargo >/dev/null; then
    echo "setup.sh: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 1
fi
echo "setup.sh: ready"
