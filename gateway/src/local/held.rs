//! The addresses the kernel interfaces hold (DESIGN.md, "High availability and
//! scale-out"): with a kernel interface on some port, a VIP or FNAT local
//! address is served only while a kernel interface carries it, so keepalived's
//! `virtual_ipaddress` moves it between directors and the gateway needs no
//! VRRP of its own.
//!
//! A thread follows the kernel's IPv4 and IPv6 addresses over rtnetlink: it
//! joins the link and address multicast groups first, then dumps the links and the
//! addresses, so no change falls between the dump and the notifications. It
//! keeps every interface's addresses by interface index and every interface's
//! name, because an interface may appear (or be renamed to a watched name)
//! after its addresses were reported; [`KernelAddrs::held`] is the addresses
//! of the interfaces with a watched name. Each new held set goes to the
//! control plane ([`crate::control::HeldInput`]), which publishes it to every
//! worker and logs what changed. A notification is read as soon as it arrives
//! (the thread sleeps in `poll` on the socket), so a change reaches the
//! workers within a publish round trip, far inside keepalived's failover time.
//!
//! The kernel drops notifications when the socket's buffer is full (ENOBUFS):
//! the thread then reads everything again, as `ip monitor` users must. A dump
//! the kernel marks interrupted (NLM_F_DUMP_INTR: its tables changed while it
//! was read) is read again too. A publish that fails (a worker did not
//! confirm) is retried until it succeeds.
//!
//! Message parsing is the rust-netlink crates' (netlink-packet-route); what
//! the messages mean for the held set ([`KernelAddrs::receive`]) is a pure
//! function of the bytes, tested on messages built with the crates' types and
//! on literal bytes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::control::ControlServer;

/// rtnetlink's multicast group of link changes (`RTNLGRP_LINK`).
const RTNLGRP_LINK: u32 = 1;
/// rtnetlink's multicast group of IPv4 address changes (`RTNLGRP_IPV4_IFADDR`).
const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// rtnetlink's multicast group of IPv6 address changes (`RTNLGRP_IPV6_IFADDR`).
const RTNLGRP_IPV6_IFADDR: u32 = 9;

/// How long the thread sleeps at most between looks at the stop flag (and
/// between tries of a publish that failed).
const WAKE_PERIOD: Duration = Duration::from_millis(50);

/// How long a dump may take before the kernel is taken not to answer.
const DUMP_DEADLINE: Duration = Duration::from_secs(5);

/// The largest datagram read: the kernel's dump datagrams are at most a few pages.
const DATAGRAM_BYTES: usize = 64 * 1024;

/// Receive buffer of the socket: room for the notifications of a large change
/// (keepalived moving many VIPs at once) while the thread publishes.
const SOCKET_BUFFER_BYTES: usize = 1 << 20;

/// Why the kernel's addresses could not be read.
#[derive(Debug)]
pub enum WatchError {
    /// A socket operation failed.
    Io { what: &'static str, error: io::Error },
    /// The kernel refused request `seq` (an NLMSG_ERROR with errno `errno`).
    Refused { seq: u32, errno: i32 },
    /// A datagram whose framing is broken at byte `offset` of its `len`.
    Malformed { offset: usize, len: usize },
    /// The dump of request `seq` did not end within [`DUMP_DEADLINE`].
    DumpTimeout { seq: u32 },
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Io { what, error } => write!(f, "{what}: {error}"),
            WatchError::Refused { seq, errno } => {
                write!(f, "the kernel refused netlink request {seq}: {}", io::Error::from_raw_os_error(*errno))
            }
            WatchError::Malformed { offset, len } => {
                write!(f, "a netlink datagram of {len} bytes is malformed at byte {offset}")
            }
            WatchError::DumpTimeout { seq } => {
                write!(f, "the kernel did not end the dump of netlink request {seq} within {DUMP_DEADLINE:?}")
            }
        }
    }
}

impl std::error::Error for WatchError {}

/// What a datagram said besides the addresses and links it reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// The dump answering request `seq` ended (NLMSG_DONE).
    pub done: Option<u32>,
    /// A message of a dump was marked NLM_F_DUMP_INTR: the kernel's tables
    /// changed while it was read, so the dump must be read again.
    pub interrupted: bool,
    /// Messages whose payload did not parse (skipped).
    pub unparsed: usize,
}

/// The kernel's IPv4 addresses and interface names as rtnetlink reported
/// them, and which of the addresses the watched interfaces hold.
#[derive(Debug, Clone, Default)]
pub struct KernelAddrs {
    /// The kernel interfaces' names (the ports' `"kernel"`).
    watched: Vec<String>,
    /// Every interface's name by index: an interface may take a watched name
    /// after its addresses were reported.
    links: HashMap<u32, String>,
    /// Every address by interface index, with its prefix length (the
    /// kernel lets one interface carry an address twice, under two prefixes).
    addrs: BTreeSet<(u32, IpAddr, u8)>,
}

impl KernelAddrs {
    /// Nothing known yet of the interfaces named `watched`.
    pub fn new(watched: Vec<String>) -> KernelAddrs {
        KernelAddrs { watched, links: HashMap::new(), addrs: BTreeSet::new() }
    }

    /// The addresses the watched interfaces carry, sorted, each once.
    pub fn held(&self) -> Vec<IpAddr> {
        let watched = |index: &u32| self.links.get(index).is_some_and(|name| self.watched.contains(name));
        let mut held: Vec<IpAddr> = self.addrs.iter().filter(|(i, _, _)| watched(i)).map(|&(_, a, _)| a).collect();
        held.sort_unstable();
        held.dedup();
        held
    }

    /// Forgets every link and address (before a new dump).
    fn forget(&mut self) {
        self.links.clear();
        self.addrs.clear();
    }

    /// Applies every message of one datagram (a dump's part or notifications).
    /// A message whose payload does not parse is skipped and counted; broken
    /// framing, or the kernel refusing a request, is an error.
    pub fn receive(&mut self, datagram: &[u8]) -> Result<Received, WatchError> {
        let mut received = Received::default();
        let mut offset = 0;
        while offset < datagram.len() {
            let bytes = &datagram[offset..];
            let malformed = WatchError::Malformed { offset, len: datagram.len() };
            let buffer = NetlinkBuffer::new_checked(bytes).map_err(|_| malformed)?;
            let length = buffer.length() as usize;
            if buffer.flags() & NLM_F_DUMP_INTR != 0 {
                received.interrupted = true;
            }
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..length]) {
                Ok(message) => match message.payload {
                    NetlinkPayload::InnerMessage(m) => self.apply(&m),
                    NetlinkPayload::Done(_) => received.done = Some(message.header.sequence_number),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(WatchError::Refused { seq: message.header.sequence_number, errno: -e.raw_code() })
                    }
                    _ => {}
                },
                Err(_) => received.unparsed += 1,
            }
            // Messages are 4-byte aligned within a datagram.
            offset += length.next_multiple_of(4);
        }
        Ok(received)
    }

    /// Applies one link or address message; others change nothing.
    fn apply(&mut self, message: &RouteNetlinkMessage) {
        match message {
            RouteNetlinkMessage::NewLink(link) => {
                if let Some(name) = link_name(link) {
                    self.links.insert(link.header.index, name.to_string());
                }
            }
            RouteNetlinkMessage::DelLink(link) => {
                let index = link.header.index;
                self.links.remove(&index);
                self.addrs.retain(|&(i, _, _)| i != index);
            }
            RouteNetlinkMessage::NewAddress(a) => {
                if let Some(entry) = address_entry(a) {
                    self.addrs.insert(entry);
                }
            }
            RouteNetlinkMessage::DelAddress(a) => {
                if let Some(entry) = address_entry(a) {
                    self.addrs.remove(&entry);
                }
            }
            _ => {}
        }
    }
}

fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

/// (interface index, address, prefix length) of an address message. The
/// address is IFA_LOCAL; IFA_ADDRESS is the peer's on a point-to-point link and
/// the same as IFA_LOCAL elsewhere, so it counts only when IFA_LOCAL is absent
/// (an IPv6 message has IFA_ADDRESS alone). An address of another family than
/// the message's is none.
fn address_entry(message: &AddressMessage) -> Option<(u32, IpAddr, u8)> {
    let of_family = |a: &IpAddr| match (message.header.family, a) {
        (AddressFamily::Inet, IpAddr::V4(_)) | (AddressFamily::Inet6, IpAddr::V6(_)) => Some(*a),
        _ => None,
    };
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => of_family(ip),
        _ => None,
    });
    let address = || {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => of_family(ip),
            _ => None,
        })
    };
    Some((message.header.index, local.or_else(address)?, message.header.prefix_len))
}

/// The bytes of a dump request for `message` with sequence number `seq`.
fn dump_request(message: RouteNetlinkMessage, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut request = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    bytes
}

/// The watch of the kernel interfaces' addresses: a netlink socket in the
/// link and IPv4-address groups, and what it has reported.
pub struct HeldWatch {
    socket: Socket,
    kernel: KernelAddrs,
    seq: u32,
    datagram: Vec<u8>,
}

impl HeldWatch {
    /// Opens the watch of the interfaces named `watched`: the socket joins its
    /// groups now, so a failure (no netlink, no permission) stops gatewayd at
    /// start, and no change made from here on is missed.
    pub fn open(watched: Vec<String>) -> Result<HeldWatch, WatchError> {
        let io = |what| move |error| WatchError::Io { what, error };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io("open a netlink socket"))?;
        socket.bind_auto().map_err(io("bind the netlink socket"))?;
        // Best effort: a smaller buffer only makes a resync likelier.
        let _ = socket.set_rx_buf_sz(SOCKET_BUFFER_BYTES);
        socket.add_membership(RTNLGRP_LINK).map_err(io("join the netlink link group"))?;
        socket.add_membership(RTNLGRP_IPV4_IFADDR).map_err(io("join the netlink IPv4 address group"))?;
        socket.add_membership(RTNLGRP_IPV6_IFADDR).map_err(io("join the netlink IPv6 address group"))?;
        socket.set_non_blocking(true).map_err(io("make the netlink socket non-blocking"))?;
        Ok(HeldWatch {
            socket,
            kernel: KernelAddrs::new(watched),
            seq: 0,
            datagram: Vec::with_capacity(DATAGRAM_BYTES),
        })
    }

    /// Follows the addresses for `server` until `stop`: each new held set is
    /// published to the workers through the server's state.
    pub fn follow(self, server: &ControlServer, stop: Arc<AtomicBool>) -> io::Result<JoinHandle<()>> {
        let input = server.held_input();
        self.spawn(move |held| input.set_held(Some(held)).map_err(|e| e.to_string()), stop)
    }

    /// Follows the addresses on a thread of its own until `stop`, handing
    /// `publish` the held set at first and after each change.
    pub fn spawn(
        self,
        publish: impl FnMut(Vec<IpAddr>) -> Result<(), String> + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name("gw-held".into()).spawn(move || self.run(publish, &stop))
    }

    fn run(mut self, mut publish: impl FnMut(Vec<IpAddr>) -> Result<(), String>, stop: &AtomicBool) {
        let mut synced = false;
        let mut published: Option<Vec<IpAddr>> = None;
        let mut failing = false;
        while !stop.load(Ordering::Relaxed) {
            if !synced {
                match self.dump_all() {
                    Ok(()) => synced = true,
                    Err(e) => {
                        log::warn!("gatewayd: held addresses: cannot read the kernel's addresses: {e}; trying again");
                        std::thread::sleep(WAKE_PERIOD);
                        continue;
                    }
                }
            }
            let held = self.kernel.held();
            if published.as_ref() != Some(&held) {
                match publish(held.clone()) {
                    Ok(()) => {
                        if failing {
                            log::info!("gatewayd: held addresses published again");
                        }
                        (published, failing) = (Some(held), false);
                    }
                    Err(e) if !failing => {
                        log::warn!("gatewayd: held addresses not published: {e}; trying again");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            if let Err(e) = self.wait_and_receive(WAKE_PERIOD) {
                log::warn!("gatewayd: held addresses: {e}; reading the kernel's addresses again");
                synced = false;
            }
        }
    }

    /// Reads the links, then the IPv4 and the IPv6 addresses, afresh; again
    /// while the kernel says a dump was interrupted.
    fn dump_all(&mut self) -> Result<(), WatchError> {
        loop {
            self.kernel.forget();
            let links = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
            let mut interrupted = links;
            for family in [AddressFamily::Inet, AddressFamily::Inet6] {
                let mut query = AddressMessage::default();
                query.header.family = family;
                interrupted |= self.dump(RouteNetlinkMessage::GetAddress(query))?;
            }
            if !interrupted {
                return Ok(());
            }
        }
    }

    /// Sends a dump request and applies everything received until it ends
    /// (notifications in between too). Returns whether it was interrupted.
    fn dump(&mut self, message: RouteNetlinkMessage) -> Result<bool, WatchError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let request = dump_request(message, seq);
        self.socket
            .send_to(&request, &SocketAddr::new(0, 0), 0)
            .map_err(|error| WatchError::Io { what: "send a netlink dump request", error })?;
        let deadline = Instant::now() + DUMP_DEADLINE;
        let mut interrupted = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WatchError::DumpTimeout { seq });
            }
            if !readable_within(&self.socket, left) {
                continue;
            }
            while let Some(received) = self.receive_one()? {
                interrupted |= received.interrupted;
                if received.done == Some(seq) {
                    return Ok(interrupted);
                }
            }
        }
    }

    /// Waits at most `timeout` for news, then applies every datagram waiting.
    fn wait_and_receive(&mut self, timeout: Duration) -> Result<(), WatchError> {
        if readable_within(&self.socket, timeout) {
            while self.receive_one()?.is_some() {}
        }
        Ok(())
    }

    /// Reads and applies one datagram; `None` when none is waiting.
    fn receive_one(&mut self) -> Result<Option<Received>, WatchError> {
        self.datagram.clear();
        match self.socket.recv(&mut self.datagram, 0) {
            Ok(_) => self.kernel.receive(&self.datagram).map(Some),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(error) => Err(WatchError::Io { what: "receive from the netlink socket", error }),
        }
    }
}

/// Whether `socket` has a datagram waiting, waiting at most `timeout`.
fn readable_within(socket: &Socket, timeout: Duration) -> bool {
    let timeout = Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
    let mut fds = [PollFd::new(socket, PollFlags::IN)];
    // An interrupted or failed poll just ends this wait early; recv decides.
    matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage, NLM_F_MULTIPART};
    use netlink_packet_route::address::AddressHeaderFlags;
    use std::num::NonZeroI32;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One netlink message of `payload`, sequence number `seq`, flags `flags`.
    fn message(payload: NetlinkPayload<RouteNetlinkMessage>, seq: u32, flags: u16) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        header.flags = flags;
        let mut m = NetlinkMessage::new(header, payload);
        m.finalize();
        let mut bytes = vec![0; m.buffer_len()];
        m.serialize(&mut bytes);
        bytes
    }

    fn notification(m: RouteNetlinkMessage) -> Vec<u8> {
        message(NetlinkPayload::InnerMessage(m), 0, 0)
    }

    fn link(index: u32, name: &str) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes.push(LinkAttribute::IfName(name.into()));
        link
    }

    /// An IPv4 address as the kernel reports it: IFA_ADDRESS and IFA_LOCAL both
    /// the address, the interface's name as the label.
    fn address(index: u32, addr: &str, prefix_len: u8) -> AddressMessage {
        let mut a = AddressMessage::default();
        a.header.family = AddressFamily::Inet;
        a.header.index = index;
        a.header.prefix_len = prefix_len;
        a.header.flags = AddressHeaderFlags::Permanent;
        a.attributes.push(AddressAttribute::Address(v4(addr)));
        a.attributes.push(AddressAttribute::Local(v4(addr)));
        a
    }

    fn done(seq: u32) -> Vec<u8> {
        let mut d = DoneMessage::default();
        d.code = 0;
        message(NetlinkPayload::Done(d), seq, NLM_F_MULTIPART)
    }

    fn watching(names: &[&str]) -> KernelAddrs {
        KernelAddrs::new(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn a_dump_holds_the_addresses_of_the_watched_interfaces_only() {
        let mut kernel = watching(&["gwk0", "gwk1"]);
        let dump = [
            notification(RouteNetlinkMessage::NewLink(link(1, "lo"))),
            notification(RouteNetlinkMessage::NewLink(link(2, "eth0"))),
            notification(RouteNetlinkMessage::NewLink(link(5, "gwk0"))),
            notification(RouteNetlinkMessage::NewAddress(address(1, "127.0.0.1", 8))),
            notification(RouteNetlinkMessage::NewAddress(address(2, "192.0.2.1", 24))),
            notification(RouteNetlinkMessage::NewAddress(address(5, "10.0.0.254", 24))),
            notification(RouteNetlinkMessage::NewAddress(address(5, "10.0.0.100", 32))),
            done(7),
        ]
        .concat();
        let received = kernel.receive(&dump).unwrap();
        assert_eq!(received, Received { done: Some(7), interrupted: false, unparsed: 0 });
        assert_eq!(kernel.held(), vec![v4("10.0.0.100"), v4("10.0.0.254")]);

        // keepalived removes the VIP (a BACKUP now), then adds it back.
        kernel.receive(&notification(RouteNetlinkMessage::DelAddress(address(5, "10.0.0.100", 32)))).unwrap();
        assert_eq!(kernel.held(), vec![v4("10.0.0.254")]);
        let r = kernel.receive(&notification(RouteNetlinkMessage::NewAddress(address(5, "10.0.0.100", 32)))).unwrap();
        assert_eq!(r, Received::default(), "a notification ends no dump");
        assert_eq!(kernel.held(), vec![v4("10.0.0.100"), v4("10.0.0.254")]);

        // An address on another interface is not held; an IPv6 one on a
        // watched interface is, an IPv6 message naming an IPv4 address is none.
        kernel.receive(&notification(RouteNetlinkMessage::NewAddress(address(2, "10.0.0.101", 32)))).unwrap();
        let mut v6 = AddressMessage::default();
        v6.header.family = AddressFamily::Inet6;
        v6.header.index = 5;
        v6.header.prefix_len = 64;
        v6.attributes.push(AddressAttribute::Address("2001:db8::100".parse().unwrap()));
        kernel.receive(&notification(RouteNetlinkMessage::NewAddress(v6.clone()))).unwrap();
        let mut mixed = v6.clone();
        mixed.attributes = vec![AddressAttribute::Address("10.0.0.102".parse().unwrap())];
        kernel.receive(&notification(RouteNetlinkMessage::NewAddress(mixed))).unwrap();
        assert_eq!(kernel.held(), vec![v4("10.0.0.100"), v4("10.0.0.254"), "2001:db8::100".parse().unwrap()]);
        kernel.receive(&notification(RouteNetlinkMessage::DelAddress(v6))).unwrap();
        assert_eq!(kernel.held(), vec![v4("10.0.0.100"), v4("10.0.0.254")]);
    }

    #[test]
    fn an_interface_that_appears_later_or_is_renamed_is_followed() {
        let mut kernel = watching(&["gwk1"]);
        // Its address is reported before its name (or the link message was lost).
        kernel.receive(&notification(RouteNetlinkMessage::NewAddress(address(9, "10.0.1.100", 32)))).unwrap();
        assert!(kernel.held().is_empty());
        kernel.receive(&notification(RouteNetlinkMessage::NewLink(link(9, "gwk1")))).unwrap();
        assert_eq!(kernel.held(), vec![v4("10.0.1.100")]);
        kernel.receive(&notification(RouteNetlinkMessage::NewLink(link(9, "renamed")))).unwrap();
        assert!(kernel.held().is_empty(), "renamed away: no longer a kernel interface");
        kernel.receive(&notification(RouteNetlinkMessage::NewLink(link(9, "gwk1")))).unwrap();
        assert_eq!(kernel.held(), vec![v4("10.0.1.100")]);
        kernel.receive(&notification(RouteNetlinkMessage::DelLink(link(9, "gwk1")))).unwrap();
        kernel.receive(&notification(RouteNetlinkMessage::NewLink(link(9, "gwk1")))).unwrap();
        assert!(kernel.held().is_empty(), "a deleted interface's addresses went with it");
    }

    #[test]
    fn an_address_carried_twice_stays_held_until_both_go() {
        let mut kernel = watching(&["gwk0", "gwk1"]);
        let setup = [
            notification(RouteNetlinkMessage::NewLink(link(5, "gwk0"))),
            notification(RouteNetlinkMessage::NewLink(link(6, "gwk1"))),
            notification(RouteNetlinkMessage::NewAddress(address(5, "10.0.0.100", 24))),
            notification(RouteNetlinkMessage::NewAddress(address(5, "10.0.0.100", 32))),
            notification(RouteNetlinkMessage::NewAddress(address(6, "10.0.0.100", 32))),
        ]
        .concat();
        kernel.receive(&setup).unwrap();
        assert_eq!(kernel.held(), vec![v4("10.0.0.100")], "each address once");
        for (index, prefix) in [(5, 24), (6, 32)] {
            kernel
                .receive(&notification(RouteNetlinkMessage::DelAddress(address(index, "10.0.0.100", prefix))))
                .unwrap();
            assert_eq!(kernel.held(), vec![v4("10.0.0.100")]);
        }
        kernel.receive(&notification(RouteNetlinkMessage::DelAddress(address(5, "10.0.0.100", 32)))).unwrap();
        assert!(kernel.held().is_empty());
    }

    /// `ip addr add 10.0.0.100/32 dev gwk0` as the kernel announces it
    /// (RTM_NEWADDR on ifindex 5: IFA_ADDRESS, IFA_LOCAL, IFA_LABEL "gwk0"),
    /// then its RTM_DELADDR, in one datagram.
    #[test]
    fn literal_kernel_messages_add_and_remove_an_address() {
        #[rustfmt::skip]
        let newaddr: [u8; 52] = [
            52, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: len 52, RTM_NEWADDR
            2, 32, 0x80, 0, 5, 0, 0, 0,                       // ifaddrmsg: AF_INET, /32, permanent, ifindex 5
            8, 0, 1, 0, 10, 0, 0, 100,                        // IFA_ADDRESS 10.0.0.100
            8, 0, 2, 0, 10, 0, 0, 100,                        // IFA_LOCAL 10.0.0.100
            9, 0, 3, 0, b'g', b'w', b'k', b'0', 0, 0, 0, 0,   // IFA_LABEL "gwk0", padded
        ];
        let mut deladdr = newaddr;
        deladdr[4] = 21; // RTM_DELADDR
        let mut kernel = watching(&["gwk0"]);
        kernel.receive(&notification(RouteNetlinkMessage::NewLink(link(5, "gwk0")))).unwrap();
        kernel.receive(&newaddr).unwrap();
        assert_eq!(kernel.held(), vec![v4("10.0.0.100")]);
        kernel.receive(&[&newaddr[..], &deladdr[..]].concat()).unwrap();
        assert!(kernel.held().is_empty(), "added, then removed, in order");
    }

    #[test]
    fn refusals_broken_framing_and_interrupted_dumps_are_reported() {
        let mut kernel = watching(&["gwk0"]);
        let mut error = ErrorMessage::default();
        error.code = NonZeroI32::new(-1); // -EPERM
        let refused = message(NetlinkPayload::Error(error), 3, 0);
        let e = kernel.receive(&refused).unwrap_err();
        assert!(matches!(e, WatchError::Refused { seq: 3, errno: 1 }), "{e:?}");
        assert_eq!(e.to_string(), format!("the kernel refused netlink request 3: {}", io::Error::from_raw_os_error(1)));

        let mut ack = ErrorMessage::default();
        ack.code = None;
        assert_eq!(kernel.receive(&message(NetlinkPayload::Error(ack), 4, 0)).unwrap(), Received::default());

        let link_msg = notification(RouteNetlinkMessage::NewLink(link(5, "gwk0")));
        let cut = &link_msg[..link_msg.len() - 4];
        let e = kernel.receive(cut).unwrap_err();
        assert!(matches!(e, WatchError::Malformed { offset: 0, len } if len == cut.len()), "{e:?}");
        let two = [link_msg.clone(), link_msg[..10].to_vec()].concat();
        let e = kernel.receive(&two).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("a netlink datagram of {} bytes is malformed at byte {}", two.len(), link_msg.len())
        );

        let part = message(
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address(5, "10.0.0.100", 32))),
            8,
            NLM_F_MULTIPART | NLM_F_DUMP_INTR,
        );
        let received = kernel.receive(&[part, done(8)].concat()).unwrap();
        assert_eq!(received, Received { done: Some(8), interrupted: true, unparsed: 0 });
    }

    #[test]
    fn a_message_that_does_not_parse_is_skipped_and_counted() {
        let mut kernel = watching(&["gwk0"]);
        // An RTM_NEWADDR too short for its ifaddrmsg, then a good link message.
        let short: [u8; 20] = [20, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 32, 0, 0];
        let datagram = [short.to_vec(), notification(RouteNetlinkMessage::NewLink(link(5, "gwk0")))].concat();
        let received = kernel.receive(&datagram).unwrap();
        assert_eq!(received.unparsed, 1);
        assert_eq!(kernel.links.get(&5).map(String::as_str), Some("gwk0"), "the next message still applies");
    }

    #[test]
    fn dump_requests_ask_for_everything() {
        let bytes = dump_request(RouteNetlinkMessage::GetLink(LinkMessage::default()), 42);
        let buffer = NetlinkBuffer::new_checked(&bytes[..]).unwrap();
        assert_eq!(buffer.length() as usize, bytes.len());
        assert_eq!(buffer.message_type(), 18, "RTM_GETLINK");
        assert_eq!(buffer.flags(), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(buffer.sequence_number(), 42);
    }
}
