//! Control requests never panic and a refused one changes nothing (DESIGN.md invariant 4),
//! under random input: arbitrary bytes through the decoder, and random batches of changes
//! drawn from a small pool of services, servers and values (so that they collide, hit
//! existing entries, and mix valid with invalid values) through the state.

use std::net::IpAddr;

use gateway::control::{ControlState, GatewayConfig, NoDataplane, NoWorkers};
use gwapi::api::{
    Change, Forwarding, InterfaceAddr, LaddrConfig, MarkRuleConfig, PersistenceConfig, ProxyProtocol, Reply, Request,
    RouteConfig, ServerConfig, ServiceConfig, TransportProtocol, VirtualService,
};
use gwapi::protocol::decode_request;
use proptest::prelude::*;

fn state() -> ControlState {
    ControlState::new(GatewayConfig::empty(), Box::new(NoWorkers), Box::new(NoDataplane::default()))
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => Just("10.0.0.1".parse().unwrap()),
        1 => Just("10.0.0.2".parse().unwrap()),
        1 => Just("192.168.1.2".parse().unwrap()),
        1 => Just("0.0.0.0".parse().unwrap()),
        1 => Just("2001:db8::1".parse().unwrap()),
    ]
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), Just(80), Just(8080), any::<u16>()]
}

fn service() -> impl Strategy<Value = VirtualService> {
    // Mostly the same few services, so batches build on each other.
    prop_oneof![
        6 => Just(VirtualService::Tcp { addr: "10.0.0.1".parse().unwrap(), port: 80 }),
        3 => Just(VirtualService::Fwmark { mark: 1 }),
        1 => (addr(), port()).prop_map(|(addr, port)| VirtualService::Tcp { addr, port }),
        1 => (addr(), port()).prop_map(|(addr, port)| VirtualService::Udp { addr, port }),
        1 => (0u32..3).prop_map(|mark| VirtualService::Fwmark { mark }),
    ]
}

fn netmask() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        Just("255.255.255.0".parse().unwrap()),
        Just("255.0.255.0".parse().unwrap()),
        Just("ffff:ffff::".parse().unwrap()),
    ]
}

fn service_config() -> impl Strategy<Value = ServiceConfig> {
    (
        service(),
        prop_oneof![Just("rr"), Just("wlc"), Just("mh"), Just("sh"), Just("dh"), Just("lblcr"), Just("bogus")],
        prop_oneof![3 => Just(None), 1 => (0u32..1000, netmask()).prop_map(Some)],
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(ProxyProtocol::V1)), Just(Some(ProxyProtocol::V2))],
    )
        .prop_map(|(service, sched, persistence, one_packet, synproxy, proxy_protocol)| ServiceConfig {
            service,
            scheduler: sched.to_string(),
            persistence: persistence.map(|(timeout, netmask)| PersistenceConfig { timeout, netmask }),
            one_packet,
            synproxy,
            proxy_protocol,
        })
}

fn server() -> impl Strategy<Value = ServerConfig> {
    (
        addr(),
        port(),
        prop_oneof![
            Just(Forwarding::FullNat),
            Just(Forwarding::Masq),
            Just(Forwarding::Route),
            Just(Forwarding::Tunnel)
        ],
        prop_oneof![4 => Just(1u32), 1 => Just(0), 1 => Just(65535), 1 => Just(65536), 1 => any::<u32>()],
        prop_oneof![4 => Just(0u32), 1 => Just(10), 1 => any::<u32>()],
        prop_oneof![4 => Just(0u32), 1 => Just(5), 1 => any::<u32>()],
    )
        .prop_map(|(addr, port, forwarding, weight, upper_threshold, lower_threshold)| ServerConfig {
            addr,
            port,
            forwarding,
            weight,
            upper_threshold,
            lower_threshold,
        })
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => service_config().prop_map(|service| Change::AddService { service }),
        4 => (service(), server()).prop_map(|(service, server)| Change::AddServer { service, server }),
        1 => service_config().prop_map(|service| Change::EditService { service }),
        1 => service().prop_map(|service| Change::DeleteService { service }),
        1 => Just(Change::Clear),
        1 => (service(), server()).prop_map(|(service, server)| Change::EditServer { service, server }),
        1 => (service(), addr(), port()).prop_map(|(service, addr, port)| Change::DeleteServer { service, addr, port }),
        1 => (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(tcp, tcp_fin, udp)| Change::SetTimeouts { tcp, tcp_fin, udp }),
        1 => (service(), addr(), prop_oneof![Just(""), Just("dpdk1")]).prop_map(|(service, addr, ifname)| Change::AddLaddr {
            service,
            laddr: LaddrConfig { addr, ifname: ifname.to_string() },
        }),
        1 => (service(), addr()).prop_map(|(service, addr)| Change::DeleteLaddr { service, addr }),
        1 => (0u32..3, addr(), any::<u8>(), proptest::collection::vec((any::<u16>(), any::<u16>()), 0..3)).prop_map(
            |(mark, dst, prefix_len, ports)| Change::AddMark {
                rule: MarkRuleConfig { mark, dst, prefix_len, protocol: Some(TransportProtocol::Tcp), ports },
            }
        ),
        1 => (0u32..3).prop_map(|mark| Change::DeleteMark { mark }),
        1 => (addr(), any::<u8>(), prop_oneof![Just(""), Just("dpdk0"), Just("x/y")]).prop_map(|(addr, prefix_len, ifname)| {
            Change::AddAddr { addr: InterfaceAddr { addr, prefix_len, ifname: ifname.to_string() } }
        }),
        1 => (addr(), any::<u8>(), proptest::option::of(addr())).prop_map(|(dst, prefix_len, via)| Change::AddRoute {
            route: RouteConfig { dst, prefix_len, via, ifname: "dpdk0".into() },
        }),
        1 => (addr(), any::<u8>()).prop_map(|(dst, prefix_len)| Change::DeleteRoute { dst, prefix_len }),
    ]
}

fn listing(st: &mut ControlState) -> Reply {
    st.handle(Request::ListServices { service: None }).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&bytes);
    }

    #[test]
    fn random_batches_apply_whole_or_not_at_all(batches in proptest::collection::vec(proptest::collection::vec(change(), 1..4), 1..16)) {
        let mut st = state();
        for batch in batches {
            let before = listing(&mut st);
            let generation = st.config().generation();
            let net_before = (*st.config().net).clone();
            match st.handle(Request::Apply { changes: batch.clone() }) {
                Ok(Reply::Applied { generation: g }) => prop_assert_eq!(g, generation + 1),
                Ok(other) => prop_assert!(false, "unexpected reply {:?}", other),
                Err(e) => {
                    prop_assert!(e.change_index.is_some_and(|i| i < batch.len()));
                    prop_assert!(!e.message.is_empty());
                    prop_assert_eq!(st.config().generation(), generation);
                    prop_assert_eq!(listing(&mut st), before);
                    prop_assert_eq!(&*st.config().net, &net_before);
                }
            }
            // Every query answers on whatever state the batches left.
            for q in [Request::ListConnections, Request::GetTimeouts, Request::ListMarks, Request::ListAddrs, Request::ListRoutes, Request::Info] {
                prop_assert!(st.handle(q).is_ok());
            }
        }
    }
}
