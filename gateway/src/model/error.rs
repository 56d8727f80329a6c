//! Errors of the configuration model. Every variant carries the value the operator gave, so
//! the message can name it; a failed edit leaves the snapshot it was applied to unchanged.

use std::fmt;
use std::net::IpAddr;

use super::types::{ForwardMethod, ServiceKey, SockAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    UnknownScheduler(String),
    UnknownProtocol(String),
    WeightOutOfRange(u32),
    /// The lower threshold is above the upper one (IPVS: `-ERANGE`).
    ThresholdsInverted {
        upper: u32,
        lower: u32,
    },
    /// Not a contiguous mask of the service's address family.
    InvalidNetmask(IpAddr),
    PersistenceTimeoutZero,
    FwmarkZero,
    ServiceExists(ServiceKey),
    ServiceNotFound(ServiceKey),
    DestExists {
        dest: SockAddr,
        service: ServiceKey,
    },
    DestNotFound {
        dest: SockAddr,
        service: ServiceKey,
    },
    /// DR and TUN cannot change the port: the packet reaches the server unmodified.
    PortChangeNeedsNat {
        dest: SockAddr,
        service: ServiceKey,
    },
    /// The real server's address family differs from the service's.
    FamilyMismatch {
        dest: SockAddr,
        service: ServiceKey,
    },
    /// A service holds at most this many real servers (indices are 16 bits).
    TooManyDests {
        service: ServiceKey,
        max: usize,
    },
    LaddrExists {
        laddr: IpAddr,
        service: ServiceKey,
    },
    LaddrNotFound {
        laddr: IpAddr,
        service: ServiceKey,
    },
    MarkRuleExists(u32),
    MarkRuleNotFound(u32),
    InvalidPortRange {
        low: u16,
        high: u16,
    },
    InvalidPrefix {
        addr: IpAddr,
        prefix_len: u8,
    },
    /// A port partition for a worker that does not exist.
    InvalidWorker {
        worker: u16,
        workers: u16,
    },
    /// Maglev's table size must be a prime (so every skip is coprime to it).
    TableSizeNotPrime(usize),
    /// The SYN proxy on a UDP service: it answers TCP handshakes only.
    SynproxyNotTcp(ServiceKey),
    /// The SYN proxy shifts the sequence numbers of every packet between server and client
    /// for the connection's life, so a proxied service's replies must pass the gateway: a
    /// DR or TUN real server's bypass it.
    SynproxyBypassed {
        service: ServiceKey,
        dest: SockAddr,
        method: ForwardMethod,
    },
    /// A PROXY protocol header goes in front of a TCP stream: not for UDP, and not for a
    /// fwmark service, which may carry UDP.
    ProxyProtocolNotTcp(ServiceKey),
    /// The header shifts the client's sequence numbers for the connection's life, so the
    /// server's replies must pass the gateway (FNAT or NAT), as with the SYN proxy.
    ProxyProtocolBypassed {
        service: ServiceKey,
        dest: SockAddr,
        method: ForwardMethod,
    },
    /// A feature NAT64 (an IPv6 service's IPv4 servers) does not have (`what` names it as
    /// the operator gave it).
    NotForNat64 {
        service: ServiceKey,
        what: &'static str,
    },
    /// A service's real servers are of one family.
    ServerFamiliesMixed {
        dest: SockAddr,
        other: SockAddr,
        service: ServiceKey,
    },
    /// A local address of another family than the service's FNAT servers (`dest`), or an
    /// IPv6 one for an IPv4 service (`dest` none).
    LaddrFamilyMismatch {
        laddr: IpAddr,
        service: ServiceKey,
        dest: Option<SockAddr>,
    },
    /// An IPv4 local address listed by an IPv4 service and by a NAT64 one.
    LaddrShared {
        laddr: IpAddr,
        service: ServiceKey,
        other: ServiceKey,
    },
    /// An address that would be a service's VIP (`vip_of`) and a FNAT local address
    /// (`local_of`'s) at once: a packet to a local address is taken for a reply to one of
    /// the gateway's connections, so the VIP's clients would open none.
    VipIsLocalAddress {
        addr: IpAddr,
        vip_of: ServiceKey,
        local_of: ServiceKey,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigError::*;
        match self {
            UnknownScheduler(s) => write!(f, "unknown scheduler {s:?}"),
            UnknownProtocol(s) => write!(f, "unknown protocol {s:?} (tcp or udp)"),
            WeightOutOfRange(w) => write!(f, "weight {w} out of range 0..65535"),
            ThresholdsInverted { upper, lower } => {
                write!(f, "lower threshold {lower} is higher than upper threshold {upper}")
            }
            InvalidNetmask(m) => write!(f, "netmask {m} is not a valid mask for this service"),
            PersistenceTimeoutZero => write!(f, "persistence timeout must be at least 1 second"),
            FwmarkZero => write!(f, "fwmark 0 is invalid (marks start at 1)"),
            ServiceExists(k) => write!(f, "service {k} already exists"),
            ServiceNotFound(k) => write!(f, "service {k} not defined"),
            DestExists { dest, service } => {
                write!(f, "real server {dest} already exists in service {service}")
            }
            DestNotFound { dest, service } => {
                write!(f, "real server {dest} not found in service {service}")
            }
            PortChangeNeedsNat { dest, service } => write!(
                f,
                "real server {dest} has a port other than service {service}'s; \
                 only NAT and FullNat can change the port"
            ),
            FamilyMismatch { dest, service } => {
                write!(f, "real server {dest} is not of the same address family as service {service}")
            }
            TooManyDests { service, max } => {
                write!(f, "service {service} already has the maximum of {max} real servers")
            }
            LaddrExists { laddr, service } => {
                write!(f, "local address {laddr} already exists in service {service}")
            }
            LaddrNotFound { laddr, service } => {
                write!(f, "local address {laddr} not found in service {service}")
            }
            MarkRuleExists(m) => write!(f, "a match rule for mark {m} already exists"),
            MarkRuleNotFound(m) => write!(f, "no match rule for mark {m}"),
            InvalidPortRange { low, high } => write!(f, "port range {low}-{high} is empty"),
            InvalidPrefix { addr, prefix_len } => {
                write!(f, "prefix length {prefix_len} is too long for {addr}")
            }
            InvalidWorker { worker, workers } => {
                write!(f, "worker {worker} does not exist (0..{workers})")
            }
            TableSizeNotPrime(m) => write!(f, "Maglev table size {m} is not a prime"),
            SynproxyNotTcp(k) => write!(f, "SYN proxy is only for TCP services, not {k}"),
            SynproxyBypassed { service, dest, method } => {
                let how = match method {
                    ForwardMethod::Tunnel => "tunnelled (-i)",
                    _ => "direct-routed (-g)",
                };
                write!(
                    f,
                    "SYN proxy on {service} needs the replies to pass the gateway, but real server {dest} is {how}: \
                     use masquerading (-m) or fullnat (-b), or disable the SYN proxy (-j disable)"
                )
            }
            ProxyProtocolNotTcp(k) => {
                write!(f, "the PROXY protocol is only for TCP services (-t), not {k}")
            }
            NotForNat64 { service, what } => {
                write!(f, "{what} is not available for NAT64 (IPv6 service {service} with IPv4 real servers)")
            }
            ServerFamiliesMixed { dest, other, service } => write!(
                f,
                "real server {dest} is not of the address family of real server {other} in service {service}: \
                 a service's real servers are of one family (an IPv6 service's IPv4 servers are reached by NAT64)"
            ),
            LaddrFamilyMismatch { laddr, service, dest: Some(dest) } => {
                write!(
                    f,
                    "local address {laddr} is not of the address family of real server {dest} in service {service}"
                )
            }
            LaddrFamilyMismatch { laddr, service, dest: None } => {
                write!(f, "local address {laddr} is not of the same address family as service {service}")
            }
            LaddrShared { laddr, service, other } => write!(
                f,
                "local address {laddr} of service {service} is a local address of service {other} too: an IPv4 \
                 local address serves IPv4 services or NAT64 ones, not both (each has its own port pools)"
            ),
            VipIsLocalAddress { addr, vip_of, local_of } => write!(
                f,
                "{addr} cannot be both the address of virtual service {vip_of} and a local address of service \
                 {local_of}: packets to a local address are taken for replies to the gateway's connections"
            ),
            ProxyProtocolBypassed { service, dest, method } => {
                let how = match method {
                    ForwardMethod::Tunnel => "tunnelled (-i)",
                    _ => "direct-routed (-g)",
                };
                write!(
                    f,
                    "the PROXY protocol on {service} needs the replies to pass the gateway, but real server {dest} \
                     is {how}: use masquerading (-m) or fullnat (-b)"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}
