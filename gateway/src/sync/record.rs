//! A connection as a sync record ([`record_of`]), and a received record as what a worker
//! installs ([`Synced::of`]); both for either family, the record's being the table's
//! (an IPv6 connection lives in a worker's IPv6 table and travels in an IPv6 record).
//!
//! How our connections map onto IPVS's record:
//!
//! - forwarding method: the `flags`' low 3 bits (`MASQ` 0, `TUNNEL` 2, `DROUTE` 3); FNAT is
//!   `MASQ` with our `FNAT_LOCAL` option, which a kernel backup cannot skip (see [`super::wire`]).
//! - state: IPVS's TCP state numbers ([`State::tcp_number`]); UDP's one state is 0.
//!   A TCP connection not ESTABLISHED carries `INACTIVE`, as IPVS's do.
//! - timeout: the seconds the connection has left (IPVS sends the whole state timeout; ours
//!   follows the master's deadline, see the [module doc](super)).
//! - SYN proxy: its sequence and timestamp deltas in our `SYNPROXY` option.

use super::queue::Refusal;
use super::wire::{conn_flags, ConnRepr, SynProxyDeltas, SyncFamily};
use crate::conn::table::Conn;
use crate::conn::{Proxy, State};
use crate::model::{ForwardMethod, Protocol};

/// IPVS's UDP state (`IP_VS_UDP_S_NORMAL`).
const UDP_STATE: u16 = 0;

/// The record of connection `c` at time `now`.
pub fn record_of<A: SyncFamily>(c: &Conn<A>, now: u32) -> ConnRepr<A> {
    let state = c.state();
    let (protocol, state_number) = match c.proto {
        Protocol::Tcp => (6, state.tcp_number().unwrap_or(0)),
        Protocol::Udp => (17, UDP_STATE),
    };
    let mut flags = match c.method {
        ForwardMethod::FullNat | ForwardMethod::Masq => conn_flags::MASQ,
        ForwardMethod::Tunnel => conn_flags::TUNNEL,
        ForwardMethod::DirectRoute => conn_flags::DROUTE,
    };
    if c.proto == Protocol::Tcp && !state.is_active() {
        flags |= conn_flags::INACTIVE;
    }
    let synproxy = match c.proxy() {
        Proxy::Deltas { seq, ts } => Some(SynProxyDeltas { seq_delta: seq, ts_delta: ts.unwrap_or(0) }),
        _ => None,
    };
    ConnRepr {
        protocol,
        flags,
        state: state_number,
        client: c.client.socket(c.cport),
        virtual_service: c.vaddr.socket(c.vport),
        real_server: c.raddr.socket(c.rport),
        fwmark: 0,
        timeout_secs: c.expires().saturating_sub(now),
        seq_data: None,
        fnat_local: (c.method == ForwardMethod::FullNat).then(|| c.laddr.socket(c.lport)),
        synproxy,
    }
}

/// A received record, checked: what a worker needs to install or refresh the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced<A: SyncFamily> {
    pub proto: Protocol,
    pub client: A::Socket,
    pub virtual_service: A::Socket,
    pub real_server: A::Socket,
    pub method: ForwardMethod,
    /// FNAT's local address and port.
    pub local: Option<A::Socket>,
    pub state: State,
    pub timeout_secs: u32,
    pub proxy: Proxy,
}

impl<A: SyncFamily> Synced<A> {
    /// Checks `record`: a connection (not a template) of TCP or UDP, a method and a state
    /// this gateway has. The same rules for both families.
    pub fn of(record: &ConnRepr<A>) -> Result<Synced<A>, Refusal> {
        if record.flags & conn_flags::TEMPLATE != 0 {
            return Err(Refusal::Unsupported);
        }
        let proto = Protocol::from_number(record.protocol).ok_or(Refusal::Unsupported)?;
        let state = match proto {
            Protocol::Tcp => State::from_tcp_number(record.state).ok_or(Refusal::Unsupported)?,
            Protocol::Udp if record.state == UDP_STATE => State::Udp,
            Protocol::Udp => return Err(Refusal::Unsupported),
        };
        let method = match (record.flags & conn_flags::FWD_MASK, record.fnat_local) {
            (conn_flags::MASQ, Some(_)) => ForwardMethod::FullNat,
            (conn_flags::MASQ, None) => ForwardMethod::Masq,
            (conn_flags::TUNNEL, None) => ForwardMethod::Tunnel,
            (conn_flags::DROUTE, None) => ForwardMethod::DirectRoute,
            _ => return Err(Refusal::Unsupported),
        };
        let proxy = match record.synproxy {
            Some(d) if proto == Protocol::Tcp => {
                Proxy::Deltas { seq: d.seq_delta, ts: (d.ts_delta != 0).then_some(d.ts_delta) }
            }
            Some(_) => return Err(Refusal::Unsupported),
            None => Proxy::Off,
        };
        Ok(Synced {
            proto,
            client: record.client,
            virtual_service: record.virtual_service,
            real_server: record.real_server,
            method,
            local: record.fnat_local,
            state,
            timeout_secs: record.timeout_secs,
            proxy,
        })
    }
}

/// How far along its close a TCP state is: a record may only move a connection forward
/// (a lower rank than the connection's is an old record, e.g. a replay).
pub fn close_rank(state: State) -> u8 {
    match state {
        State::Established => 1,
        State::FinWait | State::CloseWait => 2,
        State::LastAck | State::TimeWait => 3,
        State::Close => 4,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn record() -> ConnRepr<Ipv4Addr> {
        ConnRepr {
            protocol: 6,
            flags: conn_flags::MASQ,
            state: 1,
            client: "10.0.0.1:40000".parse().unwrap(),
            virtual_service: "10.0.0.100:80".parse().unwrap(),
            real_server: "192.168.1.10:8080".parse().unwrap(),
            fwmark: 0,
            timeout_secs: 900,
            seq_data: None,
            fnat_local: Some("192.168.1.200:1027".parse().unwrap()),
            synproxy: Some(SynProxyDeltas { seq_delta: 0x1234_5678, ts_delta: 0 }),
        }
    }

    #[test]
    fn a_record_becomes_what_a_worker_installs() {
        let s = Synced::of(&record()).unwrap();
        assert_eq!((s.proto, s.method, s.state), (Protocol::Tcp, ForwardMethod::FullNat, State::Established));
        assert_eq!(s.local, Some("192.168.1.200:1027".parse().unwrap()));
        assert_eq!(s.proxy, Proxy::Deltas { seq: 0x1234_5678, ts: None }, "a zero timestamp delta shifts nothing");
        let nat = Synced::of(&ConnRepr { fnat_local: None, state: 5, ..record() }).unwrap();
        assert_eq!((nat.method, nat.state), (ForwardMethod::Masq, State::TimeWait));
        let dr = Synced::of(&ConnRepr { flags: conn_flags::DROUTE, fnat_local: None, synproxy: None, ..record() });
        assert_eq!(dr.unwrap().method, ForwardMethod::DirectRoute);
        let udp = ConnRepr { protocol: 17, state: 0, synproxy: None, ..record() };
        assert_eq!(Synced::of(&udp).unwrap().state, State::Udp);
    }

    #[test]
    fn what_the_gateway_does_not_carry_is_refused() {
        for bad in [
            ConnRepr { flags: conn_flags::TEMPLATE, ..record() },
            ConnRepr { protocol: 132, ..record() },
            ConnRepr { state: 11, ..record() },
            ConnRepr { protocol: 17, state: 1, ..record() },
            ConnRepr { protocol: 17, state: 0, ..record() }, // UDP with SYN-proxy deltas
            ConnRepr { flags: 1, fnat_local: None, ..record() }, // LOCALNODE
            ConnRepr { flags: conn_flags::DROUTE, ..record() }, // DR with a local address
        ] {
            assert_eq!(Synced::of(&bad), Err(Refusal::Unsupported), "{bad:?}");
        }
    }

    #[test]
    fn an_ipv6_record_is_checked_by_the_rules_of_ipv4() {
        let r = ConnRepr::<Ipv6Addr> {
            protocol: 6,
            flags: conn_flags::MASQ,
            state: 1,
            client: "[2001:db8::1]:40000".parse().unwrap(),
            virtual_service: "[2001:db8::100]:80".parse().unwrap(),
            real_server: "[2001:db8:1::10]:8080".parse().unwrap(),
            fwmark: 0,
            timeout_secs: 900,
            seq_data: None,
            fnat_local: Some("[2001:db8:1::200]:1027".parse().unwrap()),
            synproxy: Some(SynProxyDeltas { seq_delta: 7, ts_delta: 9 }),
        };
        let s = Synced::of(&r).unwrap();
        assert_eq!((s.proto, s.method, s.state), (Protocol::Tcp, ForwardMethod::FullNat, State::Established));
        assert_eq!((s.local, s.proxy), (r.fnat_local, Proxy::Deltas { seq: 7, ts: Some(9) }));
        assert_eq!(
            Synced::of(&ConnRepr { fnat_local: None, synproxy: None, ..r }).unwrap().method,
            ForwardMethod::Masq
        );
        for bad in [
            ConnRepr { flags: conn_flags::TEMPLATE, ..r },
            ConnRepr { flags: conn_flags::DROUTE, ..r },
            ConnRepr { protocol: 17, ..r },
        ] {
            assert_eq!(Synced::of(&bad), Err(Refusal::Unsupported), "{bad:?}");
        }
    }

    #[test]
    fn close_ranks_only_grow_along_a_close() {
        let path = [State::Established, State::FinWait, State::TimeWait, State::Close];
        assert!(path.windows(2).all(|w| close_rank(w[0]) < close_rank(w[1])));
        assert_eq!(close_rank(State::SynRecv), 0);
    }
}
