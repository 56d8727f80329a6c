//! gatewayd's command line, in its own file so that the man page
//! (gatewayd.8, from `cargo run -p gateway --example gatewayd_man`) is made
//! from the very definition gatewayd parses.

use std::path::PathBuf;

use clap::Parser;

/// The gateway daemon: a DPDK layer-4 load balancer, configured by gwctl.
#[derive(Debug, Parser)]
#[command(name = "gatewayd", version)]
pub struct Options {
    /// The configuration file (JSON; see the README): DPDK's arguments, the
    /// ports, and the services to start with.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The control socket gwctl talks to; else the file's "control_socket",
    /// else $GATEWAYD_SOCKET, else the default.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<String>,
    /// Validate the configuration file as gatewayd does before it starts DPDK,
    /// then exit: 0 when valid, 2 with what is wrong. Nothing is started or bound.
    #[arg(long)]
    pub check_config: bool,
}
