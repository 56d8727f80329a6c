//! Connection sync between directors (ipvsadm's `--start-daemon master|backup`): a master
//! multicasts the connections it carries so a backup can carry them on after a failover.
//!
//! This module will hold the sync daemon's parts, each in its own file: the datagram format
//! ([`wire`], IPVS's sync protocol version 1 with our options for FNAT and the SYN proxy), and
//! later the master's batching of worker records into datagrams and the backup's installing of
//! received records. For now only the format is here.

pub mod wire;
