//! How each checked server is reached now ([`RouteResolver`]), from the
//! configuration last sent to the workers: the server's forwarding method, the
//! service's local addresses and VIP, and the routes and addresses the workers
//! route by. The daemon updates it whenever it publishes
//! ([`PublishedRoutes::set`]), so a probe follows a change as the next client
//! packet does.
//!
//! The probe's source (see [`super::path`]): FNAT probes leave from the
//! service's first local address that this director holds (the address its
//! clients' connections use); a director that holds none (the backup of an
//! active/backup pair, whose local addresses float with the VIPs) probes from
//! its own address toward the server instead, so its servers stay checked and
//! are up when it takes over. The other modes use the gateway's address toward
//! the server: the route's preferred source, else the egress port's first
//! address. A fwmark service has no VIP to probe DR and TUN servers at: those
//! are probed at their own address and port, as in NAT.
//!
//! A server the checker took out of its service (`--on-failure remove`) is in no
//! snapshot, yet must be probed to come back: the control plane tells its
//! configured forwarding method ([`PublishedRoutes::set_removed`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex, PoisonError};

use gwapi::api::VirtualService;

use super::engine::TargetKey;
use super::path::{PathMode, ProbeRoute, RouteResolver};
use crate::model::{ForwardMethod, NetView, ServiceKey, Snapshot};

/// The configuration probes are routed by.
#[derive(Debug)]
pub struct PublishedRoutes {
    current: Mutex<(Arc<Snapshot>, Arc<NetView>)>,
    /// The servers out of their service, by the checker, and their forwarding method.
    removed: Mutex<Arc<Removed>>,
}

/// Servers the checker took out of their service, with their configured forwarding method.
pub type Removed = BTreeMap<TargetKey, ForwardMethod>;

impl PublishedRoutes {
    pub fn new(services: Arc<Snapshot>, net: Arc<NetView>) -> PublishedRoutes {
        PublishedRoutes { current: Mutex::new((services, net)), removed: Mutex::default() }
    }

    /// The configuration just sent to the workers.
    pub fn set(&self, services: Arc<Snapshot>, net: Arc<NetView>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = (services, net);
    }

    /// The servers the checker holds out of their service now.
    pub fn set_removed(&self, removed: Removed) {
        *self.removed.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(removed);
    }
}

impl RouteResolver for PublishedRoutes {
    fn resolve(&self, key: &TargetKey) -> Result<ProbeRoute, String> {
        let (services, net) = self.current.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let removed = Arc::clone(&self.removed.lock().unwrap_or_else(PoisonError::into_inner));
        resolve(&services, &net, &removed, key)
    }
}

fn v4(addr: IpAddr, what: &str) -> Result<Ipv4Addr, String> {
    match addr {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(format!("{what} {a} is IPv6, which the probes do not speak yet")),
    }
}

/// `key`'s route under `services` and `net`, or `removed` for a server out of its service.
pub fn resolve(services: &Snapshot, net: &NetView, removed: &Removed, key: &TargetKey) -> Result<ProbeRoute, String> {
    let service = services
        .service_id(&ServiceKey::from(&key.service))
        .map(|id| services.service(id))
        .ok_or_else(|| "no such service".to_string())?;
    let method = service
        .dest_index(key.addr, key.port)
        .map(|i| service.dests()[i].method())
        .or_else(|| removed.get(key).copied())
        .ok_or_else(|| "no such server".to_string())?;
    let server = v4(key.addr, "the server")?;
    let hop = net.routes.next_hop(server).ok_or_else(|| format!("no route to {server}"))?;
    let own = hop
        .src
        .or_else(|| net.source_on(hop.port))
        .ok_or_else(|| format!("no address of the gateway's on the port toward {server}"))?;
    let at_server = SocketAddrV4::new(server, key.port);
    let vip = match key.service {
        VirtualService::Tcp { addr, port } | VirtualService::Udp { addr, port } => {
            Some(SocketAddrV4::new(v4(addr, "the VIP")?, if port == 0 { key.port } else { port }))
        }
        VirtualService::Fwmark { .. } => None,
    };
    let route = |mode, src, dst| ProbeRoute { mode, src, dst, server };
    Ok(match (method, vip) {
        (ForwardMethod::FullNat, _) => {
            let held = |a: &Ipv4Addr| net.held.as_ref().is_none_or(|held| held.contains(&IpAddr::V4(*a)));
            let local = service.laddrs().iter().filter_map(|l| match l.addr {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            });
            match local.into_iter().find(held) {
                Some(laddr) => route(PathMode::Fnat, laddr, at_server),
                None => route(PathMode::Nat, own, at_server),
            }
        }
        (ForwardMethod::Masq, _) | (ForwardMethod::DirectRoute | ForwardMethod::Tunnel, None) => {
            route(PathMode::Nat, own, at_server)
        }
        (ForwardMethod::DirectRoute, Some(vip)) => route(PathMode::Dr, own, vip),
        (ForwardMethod::Tunnel, Some(vip)) => route(PathMode::Tun, own, vip),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DestSpec, LocalAddr, PortView, ServiceSpec};
    use crate::net::Ipv4Cidr;
    use crate::wire::MacAddr;
    use crate::xmit::Offload;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 254);
    const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 200);
    const RS: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

    fn net(held: Option<Vec<IpAddr>>) -> NetView {
        let port = |addr: &str| PortView {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            offload: Offload::NONE,
            addrs: vec![addr.parse::<Ipv4Cidr>().unwrap()],
            steering: None,
            kernel: false,
        };
        let view = NetView::with_connected_routes(vec![port("10.0.0.254/24"), port("192.168.1.254/24")], &[]);
        NetView { held, ..view.unwrap() }
    }

    fn services(method: ForwardMethod, servers: &[Ipv4Addr]) -> Arc<Snapshot> {
        let key = ServiceKey::tcp(VIP.into(), 80);
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec::new(key)).unwrap();
        for rs in servers {
            ed.add_dest(&key, DestSpec::new((*rs).into(), 80).with_method(method)).unwrap();
        }
        if method == ForwardMethod::FullNat {
            ed.add_laddr(&key, LocalAddr { addr: LIP.into(), ifname: "port1".into() }).unwrap();
        }
        ed.finish()
    }

    fn key(rs: Ipv4Addr) -> TargetKey {
        TargetKey { service: VirtualService::Tcp { addr: VIP.into(), port: 80 }, addr: rs.into(), port: 80 }
    }

    fn route(mode: PathMode, src: Ipv4Addr, dst: Ipv4Addr) -> ProbeRoute {
        ProbeRoute { mode, src, dst: SocketAddrV4::new(dst, 80), server: RS }
    }

    #[test]
    fn each_mode_is_probed_along_its_own_path() {
        let cases = [
            (ForwardMethod::FullNat, route(PathMode::Fnat, LIP, RS)),
            (ForwardMethod::Masq, route(PathMode::Nat, GW, RS)),
            (ForwardMethod::DirectRoute, route(PathMode::Dr, GW, VIP)),
            (ForwardMethod::Tunnel, route(PathMode::Tun, GW, VIP)),
        ];
        for (method, want) in cases {
            assert_eq!(
                resolve(&services(method, &[RS]), &net(None), &Removed::new(), &key(RS)),
                Ok(want),
                "{method:?}"
            );
        }
    }

    #[test]
    fn fnat_probes_leave_from_the_gateways_address_while_another_director_holds_the_local_address() {
        let snap = services(ForwardMethod::FullNat, &[RS]);
        let none = Removed::new();
        assert_eq!(
            resolve(&snap, &net(Some(vec![LIP.into(), VIP.into()])), &none, &key(RS)),
            Ok(route(PathMode::Fnat, LIP, RS))
        );
        assert_eq!(resolve(&snap, &net(Some(vec![])), &none, &key(RS)), Ok(route(PathMode::Nat, GW, RS)));
    }

    #[test]
    fn published_routes_follow_the_configuration_and_say_why_a_server_cannot_be_probed() {
        let far = Ipv4Addr::new(172, 16, 0, 1);
        let routes = PublishedRoutes::new(services(ForwardMethod::Masq, &[RS, far]), Arc::new(net(None)));
        assert_eq!(routes.resolve(&key(far)), Err("no route to 172.16.0.1".to_string()));
        assert_eq!(routes.resolve(&key(Ipv4Addr::new(192, 168, 1, 11))), Err("no such server".to_string()));
        routes.set(services(ForwardMethod::DirectRoute, &[RS]), Arc::new(net(None)));
        assert_eq!(routes.resolve(&key(RS)).map(|r| r.mode), Ok(PathMode::Dr));
        // A server out of its service is probed by its configured method.
        routes.set(services(ForwardMethod::DirectRoute, &[]), Arc::new(net(None)));
        assert_eq!(routes.resolve(&key(RS)), Err("no such server".to_string()));
        routes.set_removed(Removed::from([(key(RS), ForwardMethod::Tunnel)]));
        assert_eq!(routes.resolve(&key(RS)).map(|r| r.mode), Ok(PathMode::Tun));
        routes.set(Snapshot::empty(), Arc::new(net(None)));
        assert_eq!(routes.resolve(&key(RS)), Err("no such service".to_string()));
    }
}
