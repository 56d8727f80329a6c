#!/usr/bin/env bash
# The container harness from a fresh clone: builds gatewayd, gwctl and l2fwd in
# release, then runs docker/harness.sh (its own dockerd, offline images,
# gatewayd on virtio-user ports, curl/wrk and three nginx in containers; see
# that file), which stops everything it started however it ends. Needs root,
# docker.io and mmdebstrap (scripts/setup.sh installs them).
#
# The first run builds the base image with mmdebstrap (a minute or two) and
# caches it under target/docker; later runs take seconds plus the cases.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --release -p gateway -p gwctl -p gwbench
exec bash docker/harness.sh run
