//! The kernel exception path as the workers see it: which of the gateway's
//! own packets go to the port's kernel interface, and with what precedence.
//!
//! A port may have a kernel interface (config `"kernel": "gwk0"`, a DPDK
//! `net_tap` carrying the port's MAC and addresses). What is addressed to the
//! gateway and that the datapath does not consume (not a service, not a
//! local-address connection, not the ARP and ICMP echo the workers answer)
//! leaves the worker through [`crate::worker::Io::to_kernel`] on one of two
//! rings toward the main lcore, by [`KernelClass`]: the protocols that keep
//! the director in its cluster (VRRP, BGP, ARP, IGMP) never wait behind bulk
//! traffic, so a flood at the gateway's address cannot cost it its VIPs or
//! its BGP sessions (DPVS users lose BGP sessions when a SYN flood fills the
//! KNI path).

/// The precedence of a packet toward the kernel interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelClass {
    /// Protocols that keep the director in its cluster: ARP, VRRP, IGMP,
    /// BGP, OSPF, IPv6 neighbour discovery. Their own ring and rate.
    Control,
    /// Everything else addressed to the gateway (ssh, ping replies to the
    /// kernel's own pings, a flood at the gateway's address).
    Bulk,
}

impl KernelClass {
    /// Both classes, in the order the main lcore drains them.
    pub const ALL: [KernelClass; 2] = [KernelClass::Control, KernelClass::Bulk];

    /// The index of this class in per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable name for counters and metrics.
    pub fn name(self) -> &'static str {
        match self {
            KernelClass::Control => "control",
            KernelClass::Bulk => "bulk",
        }
    }
}
