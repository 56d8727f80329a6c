//! `gwbench`: the gateway's benchmark (issue 9).
//!
//! - [`packet`]: the generator's frames (flow addressing, segment templates,
//!   the real servers' answers, ARP), pure and unit-tested;
//! - `gen` (with the `dpdk` feature): the traffic generator, a DPDK process
//!   of its own on one lcore, connected to `gatewayd` over two memif links;
//! - [`result`]: what a generator run reports;
//! - [`driver`]: runs each figure next to its reference in the same run
//!   (the plain forwarder `l2fwd`, then gatewayd configured with
//!   gwctl), calls the instruction-count scripts, writes JSON and a table.
//!
//! `scripts/bench.sh` is the one command; PERFORMANCE.md explains the figures.

pub mod driver;
#[cfg(feature = "dpdk")]
pub mod gen;
pub mod packet;
pub mod result;
pub mod suite;
