//! Fuzzes the whole per-packet path: classification, then every rewrite
//! (FNAT with TOA, sequence deltas and MSS clamp, NAT both ways, DR, TUN,
//! ICMP error relay, time-exceeded answers, TOA insertion), with parameters,
//! frame geometry and NIC checksum verdicts taken from the input, and with a
//! classification that does not match the frame. Beyond "no panic, no
//! out-of-bounds", it asserts that a rewrite never turns a packet with valid
//! checksums into one with a wrong checksum. The same bytes go through the
//! IPv6 parsers (`classify_ipv6`, checked against the typed views, and the
//! IPv6 and ICMPv6 views, reprs, extension-header and neighbour-discovery
//! option walks on their own).
//!
//! The body is `exercise` in `gateway/tests/wire_no_panic.rs`, which the
//! normal test suite also runs under proptest.
//!
//! Run, from the repository root (stable toolchain: cargo-fuzz passes
//! nightly `-Z` flags, which RUSTC_BOOTSTRAP=1 allows; `cargo install
//! cargo-fuzz` once):
//!
//! ```text
//! cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=/work/target-fuzz \
//!     cargo fuzz run classify_rewrite -- -max_total_time=60
//! ```
//!
//! Findings land in `fuzz/artifacts/classify_rewrite/`; reproduce one with
//! `cargo fuzz run classify_rewrite <file>`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../gateway/tests/wire_no_panic.rs"]
mod wire_no_panic;

fuzz_target!(|data: &[u8]| wire_no_panic::exercise(data));
