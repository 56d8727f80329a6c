//! A port's kernel exception interface (config `"kernel": "gwk0"`): a DPDK
//! `net_tap` that gatewayd creates itself once the data port is open, with the
//! data port's MAC, MTU and configured addresses, so the kernel's own stack
//! (ssh, keepalived, a BGP daemon, tcpdump) sees the port as an interface of
//! its own. Configured over rtnetlink; removed with its port (the tap's
//! interface goes when the PMD closes its file descriptor).

use std::fmt;
use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::dpdk::{DpdkError, Eal, Mempool, Port, PortConfig, RxQueue, TxQueue, Vdev};
use crate::net::IpCidr;
use crate::wire::MacAddr;

/// What a kernel interface is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelIfaceSpec {
    /// The Linux interface name (checked by the configuration).
    pub name: String,
    /// The data port's MAC: the kernel answers ARP and sends with it, and
    /// its frames leave by the data port.
    pub mac: MacAddr,
    pub mtu: u16,
    /// The data port's configured addresses, of both families.
    pub addrs: Vec<IpCidr>,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
}

/// A created, configured kernel interface and its DPDK side.
pub struct KernelIface {
    pub name: String,
    /// The tap's port; the interface goes when it and both queues are dropped.
    pub port: Port,
    /// What the kernel sends (to leave by the data port).
    pub rx: RxQueue,
    /// Toward the kernel.
    pub tx: TxQueue,
}

/// Why a kernel interface could not be made.
#[derive(Debug)]
pub enum KernelIfaceError {
    /// An interface of that name exists already in this network namespace.
    Exists { name: String, index: u32 },
    /// DPDK could not create or open the `net_tap`.
    Dpdk { name: String, error: DpdkError },
    /// A netlink request failed.
    Netlink { name: String, what: String, error: io::Error },
}

impl fmt::Display for KernelIfaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelIfaceError::Exists { name, index } => write!(
                f,
                "kernel interface {name:?}: an interface of that name already exists (index {index}) in this network \
                 namespace; gatewayd creates it itself"
            ),
            KernelIfaceError::Dpdk { name, error } => write!(f, "kernel interface {name:?}: {error}"),
            KernelIfaceError::Netlink { name, what, error } => {
                write!(f, "kernel interface {name:?}: cannot {what}: {error}")
            }
        }
    }
}

impl std::error::Error for KernelIfaceError {}

impl KernelIface {
    /// Creates the `net_tap` for `spec`, opens it with one rx and one tx
    /// queue on `pool`, and brings the kernel end up with the data port's
    /// MAC, MTU and addresses. On failure nothing is left behind.
    pub fn create(eal: &Eal, pool: &Mempool, spec: &KernelIfaceSpec) -> Result<KernelIface, KernelIfaceError> {
        let name = spec.name.clone();
        let netlink = |what: String| {
            let name = name.clone();
            move |error| KernelIfaceError::Netlink { name, what, error }
        };
        let mut rtnl = Rtnl::open().map_err(netlink("open a netlink socket".into()))?;
        // The tap PMD would attach to an existing tap of that name (and fail on
        // any other kind): say so instead of sharing someone else's interface.
        if let Some(link) = rtnl.link(&spec.name).map_err(netlink("look the name up".into()))? {
            return Err(KernelIfaceError::Exists { name, index: link.index });
        }
        let dpdk = |error| KernelIfaceError::Dpdk { name: spec.name.clone(), error };
        let vdev =
            Vdev::create(eal, &format!("net_tap_{}", spec.name), &format!("iface={},mac={}", spec.name, spec.mac))
                .map_err(dpdk)?;
        let config = PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: spec.rx_descriptors,
            tx_descriptors: spec.tx_descriptors,
            rss: false,
            // The workers' frames carry their checksums already.
            checksum_offload: false,
            // The PMD reads every frame the kernel sends; promiscuous would only
            // make the kernel end accept frames for other MACs.
            promiscuous: false,
            mtu: None,
            ..PortConfig::default()
        };
        // From here on the port owns the device: dropping it removes the tap.
        let (port, rx, tx) = Port::open_vdev(eal, vdev, &config, pool).map_err(dpdk)?;
        let (rx, tx) = match (rx.into_iter().next(), tx.into_iter().next()) {
            (Some(rx), Some(tx)) => (rx, tx),
            _ => unreachable!("a port opened with one rx and one tx queue has them"),
        };
        let link = rtnl.link(&spec.name).map_err(netlink("look the new interface up".into()))?.ok_or_else(|| {
            KernelIfaceError::Netlink {
                name: spec.name.clone(),
                what: "find the interface the tap PMD created".into(),
                error: io::Error::from(io::ErrorKind::NotFound),
            }
        })?;
        if link.mac != Some(spec.mac) {
            rtnl.set_mac(link.index, spec.mac).map_err(netlink(format!("set its MAC to {}", spec.mac)))?;
        }
        rtnl.set_up(link.index, spec.mtu).map_err(netlink(format!("set it up with MTU {}", spec.mtu)))?;
        for a in &spec.addrs {
            rtnl.add_addr(link.index, *a).map_err(netlink(format!("add address {a}")))?;
        }
        Ok(KernelIface { name: spec.name.clone(), port, rx, tx })
    }
}

/// An interface as RTM_GETLINK describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Link {
    pub(super) index: u32,
    mac: Option<MacAddr>,
}

/// A blocking rtnetlink socket for one request at a time (also the
/// announcer's, [`super::announce`]).
pub(super) struct Rtnl {
    socket: Socket,
    sequence: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub(super) fn open() -> io::Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { socket, sequence: 0, buf: vec![0; 1 << 16] })
    }

    /// Sends `message` with `flags` (and request, ack) and collects the
    /// answers up to the kernel's acknowledgement; a refusal is the error.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence += 1;
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
        packet.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        packet.header.sequence_number = self.sequence;
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;
        let mut answers = Vec::new();
        loop {
            let size = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let reply: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&self.buf[offset..size])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = reply.header.length as usize;
                if reply.header.sequence_number == self.sequence {
                    match reply.payload {
                        NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                        NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(answers),
                        NetlinkPayload::InnerMessage(m) => answers.push(m),
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }

    /// The interface named `name`, if there is one.
    pub(super) fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let answers = match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(answers) => answers,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NODEV.raw_os_error()) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(answers.into_iter().find_map(|a| match a {
            RouteNetlinkMessage::NewLink(link) => Some(Link {
                index: link.header.index,
                mac: link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr),
                    _ => None,
                }),
            }),
            _ => None,
        }))
    }

    fn set_mac(&mut self, index: u32, mac: MacAddr) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    fn set_up(&mut self, index: u32, mtu: u16) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::Mtu(u32::from(mtu)));
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// Adds `cidr` to interface `index` (or replaces it: adding it twice is no error).
    pub(super) fn add_addr(&mut self, index: u32, cidr: IpCidr) -> io::Result<()> {
        let m = Self::address(index, cidr);
        self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_REPLACE).map(drop)
    }

    /// Removes `cidr` from interface `index` (EADDRNOTAVAIL when it is not there).
    pub(super) fn del_addr(&mut self, index: u32, cidr: IpCidr) -> io::Result<()> {
        let m = Self::address(index, cidr);
        self.request(RouteNetlinkMessage::DelAddress(m), 0).map(drop)
    }

    /// The message that names `cidr` on interface `index`. An IPv6 address
    /// skips duplicate address detection: the gateway's own port holds it
    /// too, and its answer to the kernel's probe would mark it a duplicate.
    fn address(index: u32, cidr: IpCidr) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.prefix_len = cidr.prefix_len();
        m.header.scope = AddressScope::Universe;
        m.header.index = index;
        let addr = cidr.addr();
        m.attributes.push(AddressAttribute::Local(addr));
        m.attributes.push(AddressAttribute::Address(addr));
        match cidr {
            IpCidr::V4(c) => {
                m.header.family = AddressFamily::Inet;
                if c.prefix_len() < 31 {
                    let broadcast = Ipv4Addr::from(u32::from(c.addr()) | !c.mask_bits());
                    m.attributes.push(AddressAttribute::Broadcast(broadcast));
                }
            }
            IpCidr::V6(_) => {
                m.header.family = AddressFamily::Inet6;
                m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        m
    }
}
