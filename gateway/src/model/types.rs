//! The small vocabulary of the configuration model.
//!
//! These are plain values describing what the operator asked for (a *spec*), not runtime
//! state. Numeric fields are wider than their valid range (a weight is a `u32`, not a `u16`)
//! on purpose: the control server converts user input straight into them and the snapshot
//! editor rejects out-of-range values with an error that names the value the user typed,
//! instead of the parser silently truncating it.
//!
//! Names follow ipvsadm: [`Protocol`] prints `TCP`/`UDP`, [`ForwardMethod`] prints the
//! `Forward` column words (`Masq`, `Route`, `Tunnel`, `FullNat`), [`SchedulerKind`] parses and
//! prints the `-s` names (`rr`, `wlc`, ..., `mh`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use super::ConfigError;

/// Transport protocol of a virtual service or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number (`IPPROTO_TCP`, `IPPROTO_UDP`).
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// The protocol for an IP protocol number, if it is one we balance.
    pub const fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    /// ipvsadm's listing word: `TCP` or `UDP`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

impl FromStr for Protocol {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("tcp") {
            Ok(Protocol::Tcp)
        } else if s.eq_ignore_ascii_case("udp") {
            Ok(Protocol::Udp)
        } else {
            Err(ConfigError::UnknownProtocol(s.to_string()))
        }
    }
}

/// How packets reach a real server (see the table in DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMethod {
    /// Full NAT (`-b`, DPVS extension): source and destination rewritten.
    FullNat,
    /// Masquerading, i.e. NAT (`-m`): destination rewritten, replies come back through us.
    Masq,
    /// Direct routing (`-g`, ipvsadm's default): only the destination MAC changes.
    DirectRoute,
    /// IP-in-IP tunnel (`-i`).
    Tunnel,
}

impl ForwardMethod {
    /// Whether replies from the real server come back through the gateway. Only then can
    /// the connection table see both directions (IPVS's `NOOUTPUT` flag is the negation).
    pub const fn sees_replies(self) -> bool {
        matches!(self, ForwardMethod::FullNat | ForwardMethod::Masq)
    }

    /// Whether the real server may listen on a port other than the virtual port.
    pub const fn can_change_port(self) -> bool {
        self.sees_replies()
    }
}

impl fmt::Display for ForwardMethod {
    /// ipvsadm's `Forward` column word.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardMethod::FullNat => "FullNat",
            ForwardMethod::Masq => "Masq",
            ForwardMethod::DirectRoute => "Route",
            ForwardMethod::Tunnel => "Tunnel",
        })
    }
}

/// A connection scheduler, named as ipvsadm's `-s` option names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (ipvsadm's default).
    #[default]
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev consistent hashing.
    Mh,
    /// Weighted random of two choices.
    Twos,
}

impl SchedulerKind {
    /// Every scheduler, in ipvsadm's help order.
    pub const ALL: [SchedulerKind; 14] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Dh,
        SchedulerKind::Sh,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Mh,
        SchedulerKind::Twos,
    ];

    /// The `-s` name.
    pub const fn name(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Lblc => "lblc",
            SchedulerKind::Lblcr => "lblcr",
            SchedulerKind::Dh => "dh",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Fo => "fo",
            SchedulerKind::Ovf => "ovf",
            SchedulerKind::Mh => "mh",
            SchedulerKind::Twos => "twos",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedulerKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedulerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ConfigError::UnknownScheduler(s.to_string()))
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// `-t`/`-u addr:port`; port 0 means every port of the address.
    Inet { proto: Protocol, addr: IpAddr, port: u16 },
    /// `-f mark`: packets given this mark by a gateway match rule (mark > 0).
    Fwmark(u32),
}

impl From<&gwapi::api::VirtualService> for ServiceKey {
    fn from(vs: &gwapi::api::VirtualService) -> ServiceKey {
        use gwapi::api::VirtualService;
        match *vs {
            VirtualService::Tcp { addr, port } => ServiceKey::tcp(addr, port),
            VirtualService::Udp { addr, port } => ServiceKey::udp(addr, port),
            VirtualService::Fwmark { mark } => ServiceKey::Fwmark(mark),
        }
    }
}

impl ServiceKey {
    pub const fn tcp(addr: IpAddr, port: u16) -> ServiceKey {
        ServiceKey::Inet { proto: Protocol::Tcp, addr, port }
    }

    pub const fn udp(addr: IpAddr, port: u16) -> ServiceKey {
        ServiceKey::Inet { proto: Protocol::Udp, addr, port }
    }

    /// Whether this service accepts every port of its address (`-t addr:0`).
    pub const fn all_ports(&self) -> bool {
        matches!(self, ServiceKey::Inet { port: 0, .. })
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's numeric naming: `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 10`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Inet { proto, addr, port } => {
                write!(f, "{proto} {}", SockAddr(addr, port))
            }
            ServiceKey::Fwmark(mark) => write!(f, "FWM {mark}"),
        }
    }
}

/// Formats `addr:port` the way ipvsadm does (IPv6 in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockAddr(pub IpAddr, pub u16);

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// Persistence (`-p timeout -M netmask`): clients within the same netmask go to the same
/// real server while their template lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Seconds a template outlives the last connection it created (ipvsadm default 300).
    pub timeout: u32,
    /// Client address granularity; a contiguous mask of the service's address family
    /// (ipvsadm default 255.255.255.255; an IPv6 `-M 64` is `ffff:ffff:ffff:ffff::`).
    pub netmask: IpAddr,
}

impl Persistence {
    /// ipvsadm's `-p` default timeout in seconds.
    pub const DEFAULT_TIMEOUT: u32 = 300;
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence { timeout: Self::DEFAULT_TIMEOUT, netmask: IpAddr::V4(Ipv4Addr::BROADCAST) }
    }
}

/// A virtual service as the operator describes it (`-A`/`-E`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    pub scheduler: SchedulerKind,
    pub persistence: Option<Persistence>,
    /// The SYN proxy answers the handshakes (`-j enable`): TCP and fwmark services only,
    /// and every real server's replies must pass the gateway (FNAT or NAT).
    pub synproxy: bool,
    /// A PROXY protocol header carries the client's address to the real server
    /// (`--proxy-protocol`): TCP services only, FNAT or NAT servers only; no TOA then.
    pub proxy_protocol: Option<crate::wire::proxy_protocol::Version>,
}

impl ServiceSpec {
    /// A service with ipvsadm's defaults: `wlc`, not persistent, no SYN proxy, no PROXY
    /// protocol.
    pub fn new(key: ServiceKey) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: SchedulerKind::default(),
            persistence: None,
            synproxy: false,
            proxy_protocol: None,
        }
    }
}

/// A real server as the operator describes it (`-a`/`-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestSpec {
    pub addr: IpAddr,
    /// The real server's port. 0 means "the destination port of the packet", which is what
    /// a port-0 (all ports) service needs.
    pub port: u16,
    pub method: ForwardMethod,
    /// 0..=65535; 0 makes the server quiescent (no new connections, existing ones live on).
    pub weight: u32,
    /// Upper connection threshold (`-x`); 0 = none.
    pub upper_threshold: u32,
    /// Lower connection threshold (`-y`); 0 = 3/4 of the upper one.
    pub lower_threshold: u32,
}

impl DestSpec {
    /// The largest weight IPVS accepts.
    pub const MAX_WEIGHT: u32 = 65535;

    /// A real server with ipvsadm's defaults: direct routing, weight 1, no thresholds.
    pub fn new(addr: IpAddr, port: u16) -> DestSpec {
        DestSpec { addr, port, method: ForwardMethod::DirectRoute, weight: 1, upper_threshold: 0, lower_threshold: 0 }
    }

    pub fn with_method(self, method: ForwardMethod) -> DestSpec {
        DestSpec { method, ..self }
    }

    pub fn with_weight(self, weight: u32) -> DestSpec {
        DestSpec { weight, ..self }
    }

    pub fn with_thresholds(self, upper: u32, lower: u32) -> DestSpec {
        DestSpec { upper_threshold: upper, lower_threshold: lower, ..self }
    }
}

/// A gateway match rule standing in for `iptables ... -j MARK`: packets to `dst` (an address
/// prefix) of `proto` whose destination port falls in one of `ports` get `mark`, which selects
/// the `-f mark` service when no exact service matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MarkRule {
    pub mark: u32,
    pub dst: IpAddr,
    pub prefix_len: u8,
    /// `None` matches both TCP and UDP.
    pub proto: Option<Protocol>,
    /// Inclusive ranges; empty means every port.
    pub ports: Vec<(u16, u16)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_names_round_trip() {
        for kind in SchedulerKind::ALL {
            assert_eq!(kind.name().parse::<SchedulerKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!(SchedulerKind::default(), SchedulerKind::Wlc);
    }

    #[test]
    fn unknown_scheduler_names_the_input() {
        let err = "fastest".parse::<SchedulerKind>().unwrap_err();
        assert_eq!(err, ConfigError::UnknownScheduler("fastest".into()));
        assert_eq!(err.to_string(), "unknown scheduler \"fastest\"");
    }

    #[test]
    fn listing_words_match_ipvsadm() {
        assert_eq!(ForwardMethod::Masq.to_string(), "Masq");
        assert_eq!(ForwardMethod::DirectRoute.to_string(), "Route");
        assert_eq!(ForwardMethod::Tunnel.to_string(), "Tunnel");
        assert_eq!(ForwardMethod::FullNat.to_string(), "FullNat");
        let v4 = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
        assert_eq!(v4.to_string(), "TCP 10.0.0.1:80");
        let v6 = ServiceKey::udp("2001:db8::1".parse().unwrap(), 53);
        assert_eq!(v6.to_string(), "UDP [2001:db8::1]:53");
        assert_eq!(ServiceKey::Fwmark(10).to_string(), "FWM 10");
        assert_eq!("Tcp".parse::<Protocol>().unwrap(), Protocol::Tcp);
        assert!("sctp".parse::<Protocol>().is_err());
    }
}
