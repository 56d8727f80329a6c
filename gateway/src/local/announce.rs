//! Route announcement by address (config `"announce": "gwk0"`): gatewayd puts
//! each VIP it can serve on that kernel interface as a /32, and takes it away
//! when it cannot, so a routing daemon on the director (BIRD's `protocol
//! direct`, FRR's `redistribute connected`) announces exactly the VIPs this
//! director serves, with itself as next hop, to ECMP routers (DESIGN.md,
//! "Scale-out"). The address on the interface is also what makes the VIP held
//! ([`super::held`]): announced and served are one fact, never two that could
//! disagree.
//!
//! A VIP (of a TCP, UDP or SCTP service; a firewall mark has no address) is
//! announced while some service of it has a real server with a weight above
//! 0 and every worker polls. It is withdrawn:
//! - when no service of it has such a server (all quiesced with `-w 0`, or
//!   removed), or the service is deleted;
//! - when a worker stopped or stalled (`gwctl stats` shows it): the watchdog's
//!   `"on_failure": "continue"` keeps gatewayd running, but not announcing;
//! - when the control server stops answering ([`SILENT_QUERIES`] in a row);
//! - when gatewayd stops (SIGTERM, or a worker failure with `"on_failure":
//!   "exit"`): before the kernel interfaces go (gatewayd stops its exception
//!   loop only after this thread ended, [`WITHDRAW_GRACE`] after the
//!   withdrawal), so the routing daemon's withdrawal (a BGP UPDATE) leaves
//!   while its session is up, and the router moves the flows at once rather
//!   than at the end of its hold time;
//! - when gatewayd dies: the interface goes with the process, its addresses
//!   with it, and the router's hold timer (or BFD) ends the session.
//!
//! The thread asks the control socket what `gwctl -Ln` and `gwctl stats`
//! ask (as the metrics exporter does) every [`PERIOD`], and changes only
//! the addresses it manages: the VIPs it added, never the port's own
//! addresses. Put no VIP it manages in keepalived's `virtual_ipaddress` too:
//! two owners of one address would undo each other.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gwapi::api::{Reply, Request, ServiceInfo, VirtualService, WorkerStats};
use gwapi::client::Client;

use super::kernel_iface::Rtnl;
use crate::net::{IpCidr, Ipv4Cidr};

/// How often the thread asks the control server: a quiesced VIP is withdrawn
/// within this (and the routing daemon's reaction, milliseconds for BIRD).
pub const PERIOD: Duration = Duration::from_millis(200);

/// How long one question to the control server may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Unanswered questions in a row after which everything is withdrawn: a
/// control server that does not answer for that long is not healthy, but one
/// slow answer (a large `gwctl -R` applying) is no reason to move traffic.
pub const SILENT_QUERIES: u32 = 3;

/// How long the thread waits, once it withdrew at stop, before gatewayd goes
/// on stopping (and its kernel interfaces go): the routing daemon's turn to
/// tell its peers (BIRD sends its UPDATE within milliseconds of the address's removal).
pub const WITHDRAW_GRACE: Duration = Duration::from_millis(300);

/// How often the thread looks at the stop flag while it waits.
const WAKE_PERIOD: Duration = Duration::from_millis(50);

/// What the gateway can serve now, as the control server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The VIPs with a real server of weight above 0 in some service.
    pub serving: BTreeSet<Ipv4Addr>,
    /// Every IPv4 VIP of a service, serving or not.
    pub vips: BTreeSet<Ipv4Addr>,
    /// Why nothing is served, whatever the services say.
    pub down: Option<String>,
}

impl Health {
    /// Reads the services (`gwctl -Ln`) and the workers (`gwctl stats`).
    pub fn of(services: &[ServiceInfo], workers: &[WorkerStats]) -> Health {
        let mut serving = BTreeSet::new();
        let mut vips = BTreeSet::new();
        for s in services {
            let addr = match s.config.service {
                VirtualService::Tcp { addr: IpAddr::V4(a), .. } | VirtualService::Udp { addr: IpAddr::V4(a), .. } => a,
                _ => continue,
            };
            vips.insert(addr);
            if s.servers.iter().any(|r| r.config.weight > 0) {
                serving.insert(addr);
            }
        }
        let down = workers.iter().find_map(|w| w.health.as_ref().map(|h| format!("worker {} {h}", w.worker)));
        Health { serving, vips, down }
    }

    /// The VIPs to announce.
    pub fn wanted(&self) -> BTreeSet<Ipv4Addr> {
        if self.down.is_some() {
            return BTreeSet::new();
        }
        self.serving.clone()
    }

    /// Why `vip` is not announced (it is not in [`Health::wanted`]).
    pub fn why_not(&self, vip: Ipv4Addr) -> String {
        match &self.down {
            Some(down) => down.clone(),
            None if self.vips.contains(&vip) => "no real server with a weight above 0".into(),
            None => "no service has it any more".into(),
        }
    }
}

/// Why the control server's answer could not be read.
#[derive(Debug)]
pub struct QueryError {
    pub request: &'static str,
    pub error: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the control server's answer to {}: {}", self.request, self.error)
    }
}

/// Asks the control server for the services and the workers' state.
fn query(client: &Client) -> Result<Health, QueryError> {
    let failed = |request, error: String| QueryError { request, error };
    let services = match client.call(&Request::ListServices { service: None }) {
        Ok(Reply::Services(table)) => table.services,
        Ok(other) => return Err(failed("list_services", format!("unexpected reply {other:?}"))),
        Err(e) => return Err(failed("list_services", e.to_string())),
    };
    let workers = match client.call(&Request::GetStats) {
        Ok(Reply::Stats { workers }) => workers,
        Ok(other) => return Err(failed("get_stats", format!("unexpected reply {other:?}"))),
        Err(e) => return Err(failed("get_stats", e.to_string())),
    };
    Ok(Health::of(&services, &workers))
}

/// Where announced VIPs go: the kernel interface ([`Interface`]), or a
/// test's table.
trait VipTable {
    /// Puts `vip`/32 there (putting it twice is no error).
    fn add(&mut self, vip: Ipv4Addr) -> io::Result<()>;
    /// Takes `vip`/32 away (EADDRNOTAVAIL when it is not there).
    fn remove(&mut self, vip: Ipv4Addr) -> io::Result<()>;
}

/// The kernel interface, by index, over rtnetlink.
struct Interface {
    rtnl: Rtnl,
    index: u32,
}

impl VipTable for Interface {
    fn add(&mut self, vip: Ipv4Addr) -> io::Result<()> {
        self.rtnl.add_addr(self.index, host(vip))
    }

    fn remove(&mut self, vip: Ipv4Addr) -> io::Result<()> {
        self.rtnl.del_addr(self.index, host(vip))
    }
}

/// The VIPs this thread put on the interface, and the interface.
struct Announcer<T: VipTable> {
    dev: String,
    table: T,
    /// The port's own addresses: never added nor removed here.
    own: BTreeSet<Ipv4Addr>,
    announced: BTreeSet<Ipv4Addr>,
    /// VIPs whose addition or removal failed, so that each failure is
    /// logged once, not every period, while it is retried.
    failing: BTreeSet<Ipv4Addr>,
}

impl<T: VipTable> Announcer<T> {
    fn new(dev: &str, table: T, own: BTreeSet<Ipv4Addr>) -> Announcer<T> {
        Announcer { dev: dev.to_owned(), table, own, announced: BTreeSet::new(), failing: BTreeSet::new() }
    }

    /// Makes the interface carry the wanted VIPs; `why_not` names the reason of each withdrawal.
    fn converge(&mut self, wanted: &BTreeSet<Ipv4Addr>, why_not: impl Fn(Ipv4Addr) -> String) {
        let wanted: BTreeSet<Ipv4Addr> = wanted.difference(&self.own).copied().collect();
        // Only a VIP still to add or to remove can be failing.
        let pending: BTreeSet<Ipv4Addr> = wanted.symmetric_difference(&self.announced).copied().collect();
        self.failing.retain(|v| pending.contains(v));
        for vip in wanted.difference(&self.announced).copied().collect::<Vec<_>>() {
            match self.table.add(vip) {
                Ok(()) => {
                    self.announced.insert(vip);
                    self.failing.remove(&vip);
                    log::info!("gatewayd: announcing {vip}: on {} (a real server with a weight above 0)", self.dev);
                }
                Err(e) if self.failing.insert(vip) => {
                    log::warn!("gatewayd: cannot announce {vip}: adding {vip}/32 to {} failed: {e}", self.dev);
                }
                Err(_) => {}
            }
        }
        for vip in self.announced.difference(&wanted).copied().collect::<Vec<_>>() {
            match self.table.remove(vip) {
                Ok(()) => log::info!("gatewayd: withdrawing {vip}: off {} ({})", self.dev, why_not(vip)),
                // Removed by someone else already: it is not announced either way.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::ADDRNOTAVAIL.raw_os_error()) => {
                    log::warn!("gatewayd: {vip} was no longer on {} when withdrawn ({})", self.dev, why_not(vip));
                }
                Err(e) => {
                    // Still there: tried again next period.
                    if self.failing.insert(vip) {
                        log::warn!("gatewayd: cannot withdraw {vip}: removing {vip}/32 from {} failed: {e}", self.dev);
                    }
                    continue;
                }
            }
            self.announced.remove(&vip);
            self.failing.remove(&vip);
        }
    }

    /// Until `stop`: asks, converges, waits; then withdraws everything.
    fn run(mut self, client: &Client, stop: &AtomicBool) {
        let mut silent = 0;
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            match query(client) {
                Ok(health) => {
                    if silent >= SILENT_QUERIES {
                        log::info!("gatewayd: the control server answers again");
                    }
                    silent = 0;
                    self.converge(&health.wanted(), |vip| health.why_not(vip));
                }
                Err(e) => {
                    silent += 1;
                    if silent == SILENT_QUERIES {
                        log::error!("gatewayd: {e} ({SILENT_QUERIES} in a row): withdrawing every VIP");
                        self.converge(&BTreeSet::new(), |_| "the control server does not answer".into());
                    }
                }
            }
            while !stop.load(Ordering::Relaxed) && started.elapsed() < PERIOD {
                std::thread::sleep(WAKE_PERIOD);
            }
        }
        if !self.announced.is_empty() {
            self.converge(&BTreeSet::new(), |_| "gatewayd stops".into());
            std::thread::sleep(WITHDRAW_GRACE);
        }
    }
}

/// The /32 of `vip`.
fn host(vip: Ipv4Addr) -> IpCidr {
    IpCidr::V4(Ipv4Cidr::new(vip, 32).expect("a /32 has no host bits"))
}

/// Why announcing could not start.
#[derive(Debug)]
pub enum AnnounceError {
    /// The netlink socket could not be opened or the interface looked up.
    Netlink { dev: String, error: io::Error },
    /// No interface of that name (gatewayd creates it before this starts).
    NoInterface { dev: String },
    /// The thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnnounceError::Netlink { dev, error } => write!(f, "announcing on {dev:?}: netlink: {error}"),
            AnnounceError::NoInterface { dev } => write!(f, "announcing on {dev:?}: no interface of that name"),
            AnnounceError::Thread(e) => write!(f, "cannot start the announcing thread: {e}"),
        }
    }
}

impl std::error::Error for AnnounceError {}

/// Starts the thread that announces on the kernel interface `dev`, asking
/// the control server at `control_socket`; `own` are the port's configured
/// addresses. It withdraws everything and ends once `stop` is set: join it
/// before the workers.
pub fn spawn(
    dev: &str,
    own: BTreeSet<Ipv4Addr>,
    control_socket: &Path,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, AnnounceError> {
    let netlink = |error| AnnounceError::Netlink { dev: dev.to_owned(), error };
    let mut rtnl = Rtnl::open().map_err(netlink)?;
    let index =
        rtnl.link(dev).map_err(netlink)?.ok_or_else(|| AnnounceError::NoInterface { dev: dev.to_owned() })?.index;
    let announcer = Announcer::new(dev, Interface { rtnl, index }, own);
    let client = Client::new(control_socket).with_timeout(QUERY_TIMEOUT);
    std::thread::Builder::new()
        .name("gw-announce".into())
        .spawn(move || announcer.run(&client, &stop))
        .map_err(AnnounceError::Thread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gwapi::api::{Forwarding, ServerConfig, ServerInfo, ServiceConfig, TrafficStats};

    fn service(service: VirtualService, weights: &[u32]) -> ServiceInfo {
        ServiceInfo {
            config: ServiceConfig {
                service,
                scheduler: "mh".into(),
                persistence: None,
                one_packet: false,
                synproxy: false,
                proxy_protocol: None,
            },
            stats: TrafficStats::default(),
            servers: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| {
                    ServerInfo::configured(ServerConfig {
                        addr: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10 + i as u8)),
                        port: 80,
                        forwarding: Forwarding::Route,
                        weight,
                        upper_threshold: 0,
                        lower_threshold: 0,
                    })
                })
                .collect(),
            laddrs: Vec::new(),
        }
    }

    fn tcp(a: [u8; 4], port: u16) -> VirtualService {
        VirtualService::Tcp { addr: IpAddr::V4(Ipv4Addr::from(a)), port }
    }

    fn worker(worker: u32, health: Option<&str>) -> WorkerStats {
        WorkerStats {
            worker,
            lcore: worker + 1,
            health: health.map(str::to_owned),
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            redirected_out: 0,
            redirected_in: 0,
            new_connections: 0,
            connections: 0,
            connection_capacity: 0,
            events: Vec::new(),
            drops: Vec::new(),
            kernel: Vec::new(),
            poll: None,
        }
    }

    fn set(addrs: &[[u8; 4]]) -> BTreeSet<Ipv4Addr> {
        addrs.iter().map(|&a| Ipv4Addr::from(a)).collect()
    }

    #[test]
    fn a_vip_is_wanted_while_some_service_of_it_has_a_server_of_weight_above_zero() {
        let services = [
            service(tcp([10, 100, 0, 1], 80), &[1, 0, 2]),
            // All quiesced on port 80, one server on UDP 53: still served.
            service(tcp([10, 100, 0, 2], 80), &[0, 0, 0]),
            service(VirtualService::Udp { addr: IpAddr::V4(Ipv4Addr::new(10, 100, 0, 2)), port: 53 }, &[0, 3]),
            // Every server quiesced, or none at all: not served.
            service(tcp([10, 100, 0, 3], 80), &[0, 0, 0]),
            service(tcp([10, 100, 0, 4], 443), &[]),
            // A firewall mark has no address to announce; IPv6 is not announced.
            service(VirtualService::Fwmark { mark: 1 }, &[1]),
            service(VirtualService::Tcp { addr: "2001:db8::1".parse().unwrap(), port: 80 }, &[1]),
        ];
        let health = Health::of(&services, &[worker(0, None), worker(1, None)]);
        assert_eq!(health.wanted(), set(&[[10, 100, 0, 1], [10, 100, 0, 2]]));
        assert_eq!(health.why_not(Ipv4Addr::new(10, 100, 0, 3)), "no real server with a weight above 0");
        assert_eq!(health.why_not(Ipv4Addr::new(10, 100, 0, 4)), "no real server with a weight above 0");
        assert_eq!(health.why_not(Ipv4Addr::new(10, 100, 0, 9)), "no service has it any more");
    }

    #[test]
    fn nothing_is_wanted_while_a_worker_is_stopped_or_stalled() {
        let services = [service(tcp([10, 100, 0, 1], 80), &[1])];
        for why in ["stopped: panicked: boom", "stalled: no poll for 5 s"] {
            let health = Health::of(&services, &[worker(0, None), worker(1, Some(why))]);
            assert_eq!(health.wanted(), BTreeSet::new(), "{why}");
            assert_eq!(health.why_not(Ipv4Addr::new(10, 100, 0, 1)), format!("worker 1 {why}"));
        }
    }

    /// A table that records what it holds and refuses what it is told to.
    #[derive(Default)]
    struct Table {
        held: BTreeSet<Ipv4Addr>,
        calls: Vec<String>,
        refuse_add: BTreeSet<Ipv4Addr>,
        refuse_remove: Option<(Ipv4Addr, rustix::io::Errno)>,
    }

    impl VipTable for Table {
        fn add(&mut self, vip: Ipv4Addr) -> io::Result<()> {
            self.calls.push(format!("add {vip}"));
            if self.refuse_add.contains(&vip) {
                return Err(io::Error::from_raw_os_error(rustix::io::Errno::NOBUFS.raw_os_error()));
            }
            self.held.insert(vip);
            Ok(())
        }

        fn remove(&mut self, vip: Ipv4Addr) -> io::Result<()> {
            self.calls.push(format!("remove {vip}"));
            if let Some((_, errno)) = self.refuse_remove.filter(|(v, _)| *v == vip) {
                return Err(io::Error::from_raw_os_error(errno.raw_os_error()));
            }
            self.held.remove(&vip);
            Ok(())
        }
    }

    fn announcer(own: &[[u8; 4]]) -> Announcer<Table> {
        Announcer::new("gwk0", Table::default(), set(own))
    }

    fn calls(a: &mut Announcer<Table>) -> Vec<String> {
        std::mem::take(&mut a.table.calls)
    }

    #[test]
    fn converging_adds_what_is_wanted_removes_what_is_not_and_leaves_the_ports_addresses_alone() {
        let mut a = announcer(&[[10, 0, 0, 251]]);
        a.converge(&set(&[[10, 100, 0, 1], [10, 100, 0, 2], [10, 0, 0, 251]]), |_| String::new());
        assert_eq!(calls(&mut a), ["add 10.100.0.1", "add 10.100.0.2"], "the port's own address is not touched");
        assert_eq!(a.table.held, set(&[[10, 100, 0, 1], [10, 100, 0, 2]]));
        a.converge(&set(&[[10, 100, 0, 1], [10, 100, 0, 2]]), |_| String::new());
        assert_eq!(calls(&mut a), Vec::<String>::new(), "nothing changes: nothing is asked");
        a.converge(&set(&[[10, 100, 0, 2]]), |_| String::new());
        assert_eq!(calls(&mut a), ["remove 10.100.0.1"]);
        a.converge(&BTreeSet::new(), |_| String::new());
        assert_eq!(calls(&mut a), ["remove 10.100.0.2"], "the port's own address stays too");
        assert!(a.table.held.is_empty() && a.announced.is_empty());
    }

    #[test]
    fn a_refused_change_is_tried_again_until_it_is_made() {
        let mut a = announcer(&[]);
        let vip = Ipv4Addr::new(10, 100, 0, 1);
        a.table.refuse_add.insert(vip);
        for _ in 0..2 {
            a.converge(&set(&[[10, 100, 0, 1]]), |_| String::new());
            assert_eq!(calls(&mut a), ["add 10.100.0.1"]);
            assert!(a.announced.is_empty() && a.failing.contains(&vip));
        }
        a.table.refuse_add.clear();
        a.converge(&set(&[[10, 100, 0, 1]]), |_| String::new());
        assert_eq!(calls(&mut a), ["add 10.100.0.1"]);
        assert!(a.announced.contains(&vip) && a.failing.is_empty());

        // A removal refused for another reason than "not there" keeps it announced, and is tried again.
        a.table.refuse_remove = Some((vip, rustix::io::Errno::NOBUFS));
        for _ in 0..2 {
            a.converge(&BTreeSet::new(), |_| String::new());
            assert_eq!(calls(&mut a), ["remove 10.100.0.1"]);
            assert!(a.announced.contains(&vip) && a.failing.contains(&vip));
        }
        // Taken away by someone else: withdrawn all the same.
        a.table.refuse_remove = Some((vip, rustix::io::Errno::ADDRNOTAVAIL));
        a.converge(&BTreeSet::new(), |_| String::new());
        assert_eq!(calls(&mut a), ["remove 10.100.0.1"]);
        assert!(a.announced.is_empty() && a.failing.is_empty());
    }

    #[test]
    fn no_service_means_nothing_to_announce() {
        let health = Health::of(&[], &[worker(0, None)]);
        assert_eq!(health, Health { serving: BTreeSet::new(), vips: BTreeSet::new(), down: None });
        assert!(health.wanted().is_empty());
    }
}
