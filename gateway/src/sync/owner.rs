//! Which worker of a backup carries a received connection.
//!
//! It must be the worker its packets will reach:
//!
//! - FNAT: the worker owning the local port ([`PortPartition::owner`]). Replies to that port
//!   are redirected there, and the master gave the port to the worker the client's packets
//!   reach, so with the same worker count and RSS (an active/backup pair of identical
//!   machines) the client's packets reach it too.
//! - NAT, DR, TUN: the worker the NIC's RSS gives the client's packets, predicted from the
//!   port the client is routed through when its RSS can be predicted; otherwise (one worker,
//!   a device without a readable RSS table, or an IPv6 connection: the prediction hashes
//!   IPv4's fields only) by the client port's partition, as for FNAT.

use std::net::SocketAddrV4;

use super::wire::Record;
use crate::model::laddr::PortPartition;
use crate::model::NetView;

/// The worker (of `workers`) that is to carry `record`'s connection.
pub fn owning_worker(record: &Record, workers: u16, net: &NetView) -> u16 {
    // Worker 0 of any valid count: `owner` depends only on the count.
    let Ok(partition) = PortPartition::new(workers.max(1), 0) else { return 0 };
    let by_port = |port| partition.owner(port).min(workers.saturating_sub(1));
    if let Some(local) = record.local_port() {
        return by_port(local);
    }
    match record {
        Record::V4(r) => rss_queue(net, r.client, r.virtual_service).filter(|&q| q < workers),
        Record::V6(_) => None,
    }
    .unwrap_or_else(|| by_port(record.client_port()))
}

/// The rx queue the NIC gives a packet from `client` to `service`, if predictable.
fn rss_queue(net: &NetView, client: SocketAddrV4, service: SocketAddrV4) -> Option<u16> {
    let hop = net.routes.next_hop(*client.ip())?;
    let steering = net.ports.get(usize::from(hop.port))?.steering.as_deref()?;
    // `base`/`queue` hash (source, destination, source port, destination port): the
    // client's packet has the client as source.
    Some(steering.queue(steering.base(*client.ip(), client.port(), *service.ip()), service.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::wire::ConnRepr;

    fn record(client: &str, fnat_local: Option<&str>) -> Record {
        Record::V4(ConnRepr {
            protocol: 6,
            flags: 0,
            state: 1,
            client: client.parse().unwrap(),
            virtual_service: "10.0.0.100:80".parse().unwrap(),
            real_server: "192.168.1.10:80".parse().unwrap(),
            fwmark: 0,
            timeout_secs: 900,
            seq_data: None,
            fnat_local: fnat_local.map(|l| l.parse().unwrap()),
            synproxy: None,
        })
    }

    fn record6(client: &str, fnat_local: Option<&str>) -> Record {
        Record::V6(ConnRepr {
            protocol: 6,
            flags: 0,
            state: 1,
            client: client.parse().unwrap(),
            virtual_service: "[2001:db8::100]:80".parse().unwrap(),
            real_server: "[2001:db8:1::10]:80".parse().unwrap(),
            fwmark: 0,
            timeout_secs: 900,
            seq_data: None,
            fnat_local: fnat_local.map(|l| l.parse().unwrap()),
            synproxy: None,
        })
    }

    #[test]
    fn fnat_goes_to_the_local_ports_owner_and_others_by_client_port() {
        let net = NetView::default();
        assert_eq!(owning_worker(&record("10.0.0.1:4000", Some("192.168.1.200:1027")), 4, &net), 3);
        assert_eq!(owning_worker(&record("10.0.0.1:4000", Some("192.168.1.200:1026")), 4, &net), 2);
        // No route to the client, so no RSS prediction: the client port's partition.
        assert_eq!(owning_worker(&record("10.0.0.1:4001", None), 4, &net), 1);
        assert_eq!(owning_worker(&record("10.0.0.1:4001", None), 1, &net), 0);
        // Three workers: ports are split by a mask of 3, and owner 3 does not exist.
        assert_eq!(owning_worker(&record("10.0.0.1:4003", None), 3, &net), 2);
        assert_eq!(owning_worker(&record("10.0.0.1:4003", None), 0, &net), 0, "no workers: no panic");
    }

    #[test]
    fn ipv6_goes_by_the_same_ports() {
        let net = NetView::default();
        assert_eq!(owning_worker(&record6("[2001:db8::1]:4000", Some("[2001:db8:1::200]:1027")), 4, &net), 3);
        assert_eq!(owning_worker(&record6("[2001:db8::1]:4001", None), 4, &net), 1);
        assert_eq!(owning_worker(&record6("[2001:db8::1]:4003", None), 3, &net), 2);
    }
}
