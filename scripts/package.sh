#!/usr/bin/env bash
# Builds the Debian package of gatewayd and gwctl with cargo-deb:
# target/debian/gatewayd_VERSION-1_ARCH.deb. What it holds is listed under
# [package.metadata.deb] in gateway/Cargo.toml (the programs, the systemd unit,
# the demo configuration, the hugepage sysctl, the man pages, gwctl's shell
# completions), the programs stripped of debug information. Needs the build
# set-up of scripts/setup.sh; installs cargo-deb (a few minutes) if missing.
# scripts/package-test.sh installs the result in a clean bookworm and checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"

if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: installing cargo-deb"
    # Pinned: the version this packaging was written and tested with.
    cargo install --locked cargo-deb --version 3.8.0
fi

cargo build --locked --release -p gateway --bin gatewayd -p gwctl --bin gwctl

# gatewayd(8) from the clap definition gatewayd parses; gwctl(8) is written by
# hand (packaging/gwctl.8), its command line being ipvsadm's, not clap's.
# target/release/ is where cargo-deb looks for built files; it gzips man pages
# from the source tree but not those, hence gzip here.
mkdir -p "$TARGET/release/man"
cargo run --locked --quiet -p gateway --example gatewayd_man | gzip -9n >"$TARGET/release/man/gatewayd.8.gz.partial"
mv "$TARGET/release/man/gatewayd.8.gz.partial" "$TARGET/release/man/gatewayd.8.gz"

# gwctl's shell completions, from the clap definition it parses (`gwctl
# completions SHELL`), named as each shell's vendor directory expects.
mkdir -p "$TARGET/release/completions"
"$TARGET/release/gwctl" completions bash >"$TARGET/release/completions/gwctl"
"$TARGET/release/gwctl" completions zsh >"$TARGET/release/completions/_gwctl"
"$TARGET/release/gwctl" completions fish >"$TARGET/release/completions/gwctl.fish"

# --no-build: both programs are built above (cargo-deb would build only the
# gateway package's binaries, not gwctl). --strip: the release profile keeps
# limited debug information (debug = 1: line tables, for profiles and
# backtraces of a source build), which cargo-deb would package as it is; the
# package carries none.
cargo deb --locked -p gateway --no-build --strip --output "$TARGET/debian/"
ls -1 "$TARGET"/debian/gatewayd_*.deb
