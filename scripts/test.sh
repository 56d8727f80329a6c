#!/usr/bin/env bash
# Runs every test of the project from a fresh clone: machine set-up (Debian
# packages, hugepages; needs root), then the whole workspace's tests.
#
# DPDK initialises once per process, so each test that needs the EAL is its
# own integration-test binary (gateway/tests/dpdk_*.rs) with one #[test];
# cargo runs test binaries one after another, so they never share an EAL.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# Pure-Rust build first: proves the model, wire layer and gwctl build on a
# machine without DPDK (the feature gate is what keeps that true).
cargo build --locked --workspace --exclude dpdk-sys --no-default-features --lib --bins

# The mechanical guards: the project's rustfmt style, and clippy with every
# warning (the workspace lints deny unsafe outside gateway::dpdk and unsafe
# blocks without a SAFETY note) an error.
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

cargo test --locked --workspace

# The container harness: gatewayd on virtio-user ports, curl, wrk and three
# nginx in containers (docker/harness.sh). About a minute once its base image
# is cached under target/docker; the first run builds that image.
bash scripts/docker-test.sh

# The Debian package: built with cargo-deb (scripts/package.sh; installed the
# first time, a few minutes), installed in a clean bookworm chroot, its unit
# verified and started as systemd would: 40 s to 2 min (the mirror) after the
# release build above.
bash scripts/package-test.sh
