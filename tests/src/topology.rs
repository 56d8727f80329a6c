//! One gateway between a client namespace and a real-server namespace, built
//! from a few options and torn down in `Drop` (also when the test panics):
//!
//! ```text
//!   client ns                 gatewayd (root ns)               servers ns
//!   10.0.0.1.. --link-- client 10.0.0.254 | servers 192.168.1.254 --link-- 192.168.1.10..
//!        VIP 10.0.0.100, FNAT local address 192.168.1.200
//!   (bypass: client 172.16.0.1 --veth-- 172.16.0.2 servers, for DR/TUN replies)
//! ```
//!
//! The links are DPDK taps moved into the namespaces, or veth pairs whose
//! root-namespace ends are `net_af_packet` ports.
//!
//! With [`Options::director_netns`], gatewayd runs in a network namespace of
//! its own (the director's, `ip netns exec`): its taps are created there and
//! moved from there, and the kernel interfaces of [`Options::kernel`]
//! (`gwk0` on the client port, `gwk1` on the servers' port, carrying the
//! gateway's 10.0.0.254 and 192.168.1.254) stay there, apart from the root
//! namespace where concurrent tests and the host live. Every gatewayd busy-polls
//! a core, so topologies of one test process never overlap: each holds a
//! process-wide lock for its life (cargo runs test binaries one at a time,
//! so no two topologies ever run at once).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::{gatewayd_bin, gwctl_bin, l2fwd_bin, run, tag, wait_until, Daemon, Netns};

/// The client's first address; more follow (10.0.0.2, ...).
pub const CLIENT: &str = "10.0.0.1";
/// The gateway's address on the client link.
pub const GW_CLIENT: &str = "10.0.0.254";
/// The virtual service address.
pub const VIP: &str = "10.0.0.100";
/// The gateway's address on the servers' link.
pub const GW_SERVERS: &str = "192.168.1.254";
/// The FNAT local address.
pub const LIP: &str = "192.168.1.200";
/// The kernel interfaces of [`Options::kernel`], in the director's namespace:
/// the client port's and the servers' port's.
pub const KERNEL_CLIENT: &str = "gwk0";
pub const KERNEL_SERVERS: &str = "gwk1";
/// The client's end of the bypass link (DR and TUN replies).
pub const BYPASS_CLIENT: &str = "172.16.0.1";
pub const BYPASS_SERVERS: &str = "172.16.0.2";

/// The IPv6 side of [`Topology::add_ipv6`]: the client, the gateway's
/// address on the client link, the IPv6 VIP (on the client's subnet: the
/// gateway answers neighbour solicitations for it).
pub const CLIENT6: &str = "2001:db8::1";
pub const GW_CLIENT6: &str = "2001:db8::fe";
pub const VIP6: &str = "2001:db8::100";
/// The gateway's IPv6 address on the servers' link, and the FNAT local address.
pub const GW_SERVERS6: &str = "2001:db8:1::fe";
pub const LIP6: &str = "2001:db8:1::200";

/// How gatewayd's ports reach the namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `net_tap` devices, moved into the namespaces.
    Tap,
    /// veth pairs: gatewayd opens the root-namespace ends with `net_af_packet`.
    AfPacket,
    /// The client port is a `net_memif` server; the client namespace reaches
    /// it through a peer process (`l2fwd --pair` between a memif client
    /// and a tap moved into the namespace) that a test can stop and restart
    /// ([`Topology::interrupt_memif_peer`], [`Topology::start_memif_peer`]).
    /// The servers' side is a tap.
    Memif,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Worker lcores (each owns one rx and one tx queue on every port).
    pub workers: u16,
    pub link: Link,
    /// Client addresses: 10.0.0.1 ..= 10.0.0.n.
    pub clients: u8,
    /// Real-server addresses: 192.168.1.10 .. 192.168.1.(10+n-1).
    pub servers: u8,
    /// The servers' default route goes through the gateway (NAT).
    pub servers_via_gateway: bool,
    /// A direct veth between the namespaces; the servers reach the client
    /// subnet over it, never through the gateway (DR, TUN).
    pub bypass: bool,
    /// The configuration file's `"services"`: ipvsadm rules gatewayd starts with.
    pub services: Vec<String>,
    /// Connections per worker (`conn_capacity`).
    pub conn_capacity: u32,
    /// Further top-level members of the configuration file, as JSON text
    /// without the braces (`"synproxy": {"invalid_ack": "rst"}`); "" for none.
    pub extra_config: String,
    /// Environment variables of gatewayd (`FAILPOINTS` in a build with the
    /// gateway's `failpoints` feature).
    pub env: Vec<(String, String)>,
    /// gatewayd runs in a network namespace of its own, [`Topology::director`]
    /// (only with [`Link::Tap`]).
    pub director_netns: bool,
    /// Each port has a kernel interface ([`KERNEL_CLIENT`], [`KERNEL_SERVERS`]),
    /// in the director's namespace (needs [`Options::director_netns`]).
    pub kernel: bool,
    /// The client port's egress MTU at the gateway (the links themselves stay
    /// at 1500): a smaller one makes the gateway refuse what the servers send
    /// at full size, as a narrower link on the path would.
    pub client_port_mtu: Option<u16>,
    /// The configuration file's `"idle"`. The tests' default is `"sleep"`:
    /// a gatewayd whose workers poll flat out takes a core each, and the
    /// test machine has two for the clients, the servers, the test itself
    /// and whatever else runs there.
    pub idle: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 1,
            link: Link::Tap,
            clients: 1,
            servers: 3,
            servers_via_gateway: false,
            bypass: false,
            services: Vec::new(),
            conn_capacity: 65536,
            extra_config: String::new(),
            env: Vec::new(),
            director_netns: false,
            kernel: false,
            client_port_mtu: None,
            idle: "sleep".into(),
        }
    }
}

/// The ipvsadm rules of [`Topology::fnat_service`], for gwctl or the
/// configuration file's `"services"` ([`Options::services`]).
pub fn fnat_rules(service_opts: &str, server_opts: &[&str]) -> Vec<String> {
    let mut rules = vec![format!("-A -t {VIP}:80 {service_opts}"), format!("-P -t {VIP}:80 -z {LIP} -F servers")];
    rules
        .extend(server_opts.iter().enumerate().map(|(i, opts)| format!("-a -t {VIP}:80 -r {}:8080 -b {opts}", rip(i))));
    rules
}

/// Real-server address `i` (0-based).
pub fn rip(i: usize) -> String {
    format!("192.168.1.{}", 10 + i)
}

/// Client address `i` (0-based).
pub fn client_addr(i: usize) -> String {
    format!("10.0.0.{}", 1 + i)
}

/// Real server `i`'s IPv6 address (0-based), of [`Topology::add_ipv6`].
pub fn rip6(i: usize) -> String {
    format!("2001:db8:1::{}", 10 + i)
}

/// Only one topology at a time in a test process (see the module docs).
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the process-wide topology lock (see the module docs).
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running topology. Fields drop in order after `Drop::drop` stopped
/// gatewayd: namespaces (taking the moved links with them), root-namespace
/// link ends, the work directory, then the lock.
pub struct Topology {
    /// `gwt<pid><short>`: prefix of every name this topology creates.
    id: String,
    gatewayd: Option<Daemon>,
    /// The memif peer of [`Link::Memif`], while it runs.
    memif_peer: Option<Daemon>,
    pub client: Netns,
    pub servers: Netns,
    /// gatewayd's own namespace ([`Options::director_netns`]).
    director: Option<Netns>,
    /// Interface names on the client and the servers side (inside their namespaces).
    pub client_if: String,
    pub servers_if: String,
    root_links: Vec<RootLink>,
    dir: PathBuf,
    socket: PathBuf,
    opts: Options,
    _serial: MutexGuard<'static, ()>,
}

/// A link in the root namespace, deleted when dropped (a veth goes with its peer).
struct RootLink(String);

impl Drop for RootLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).stderr(Stdio::null()).status();
    }
}

/// The CPUs this process may run on, as the kernel lists them ("0-1").
pub(crate) fn allowed_cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_owned())))
        .unwrap_or_else(|| "0".to_owned())
}

impl Topology {
    /// Adds the IPv6 side to a started topology: addresses on the gateway's
    /// ports (`gwctl addr add`) and in the namespaces (three servers, [`rip6`]),
    /// the client routed to nothing but its own subnet. The namespaces' with
    /// `nodad` (duplicate address detection would hold each address back for
    /// a second or two).
    pub fn add_ipv6(&self) {
        self.gwctl(&["addr", "add", &format!("{GW_CLIENT6}/64"), "dev", "client"]);
        self.gwctl(&["addr", "add", &format!("{GW_SERVERS6}/64"), "dev", "servers"]);
        self.client.ip(&["-6", "addr", "add", &format!("{CLIENT6}/64"), "dev", &self.client_if, "nodad"]);
        for i in 0..3 {
            self.servers.ip(&["-6", "addr", "add", &format!("{}/64", rip6(i)), "dev", &self.servers_if, "nodad"]);
        }
    }

    /// Builds the topology for a test; `short` (at most 3 characters) keeps
    /// its names apart from other tests of the same process.
    pub fn start(short: &str, opts: Options) -> Topology {
        assert!(short.len() <= 3 && opts.workers >= 1 && opts.clients >= 1 && opts.servers >= 1);
        assert!(!opts.kernel || opts.director_netns, "kernel interfaces live in the director's namespace");
        assert!(!opts.director_netns || opts.link == Link::Tap, "a director namespace takes tap links only");
        let serial = serial();
        let id = format!("gwt{}{short}", tag());
        let dir = std::env::temp_dir().join(format!("{id}-work"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("work directory");
        let socket = dir.join("gatewayd.sock");
        let client = Netns::new(&format!("{id}-c"));
        let servers = Netns::new(&format!("{id}-s"));
        let director = opts.director_netns.then(|| Netns::new(&format!("{id}-d")));
        let mut topo = Topology {
            client_if: format!("{id}c"),
            servers_if: format!("{id}s"),
            id,
            gatewayd: None,
            memif_peer: None,
            client,
            servers,
            director,
            root_links: Vec::new(),
            dir,
            socket,
            opts: opts.clone(),
            _serial: serial,
        };
        topo.start_gatewayd();
        if topo.opts.link == Link::Memif {
            topo.start_memif_peer();
        }
        topo.wire();
        topo
    }

    fn start_gatewayd(&mut self) {
        let id = &self.id;
        let (c, s) = (&self.client_if, &self.servers_if);
        let (dev_c, dev_s, vdevs) = match self.opts.link {
            Link::Tap => (
                "net_tap0".to_owned(),
                "net_tap1".to_owned(),
                vec![format!("--vdev=net_tap0,iface={c}"), format!("--vdev=net_tap1,iface={s}")],
            ),
            Link::AfPacket => {
                // gatewayd keeps the `...g` ends; the others go into the namespaces.
                for end in [c, s] {
                    run("ip", &["link", "add", &format!("{end}g"), "type", "veth", "peer", "name", end]);
                    self.root_links.push(RootLink(format!("{end}g")));
                    run("ip", &["link", "set", &format!("{end}g"), "up"]);
                }
                let q = self.opts.workers;
                (
                    "net_af_packet0".to_owned(),
                    "net_af_packet1".to_owned(),
                    vec![
                        format!("--vdev=net_af_packet0,iface={c}g,qpairs={q}"),
                        format!("--vdev=net_af_packet1,iface={s}g,qpairs={q}"),
                    ],
                )
            }
            Link::Memif => (
                "net_memif0".to_owned(),
                "net_tap1".to_owned(),
                vec![
                    format!("--vdev=net_memif0,role=server,id=0,socket={}", self.memif_socket().display()),
                    format!("--vdev=net_tap1,iface={s}"),
                ],
            ),
        };
        let kernel = |name| self.opts.kernel.then_some(name);
        let ports = [
            PortConfig {
                device: &dev_c,
                name: "client",
                cidr: &format!("{GW_CLIENT}/24"),
                kernel: kernel(KERNEL_CLIENT),
                mtu: self.opts.client_port_mtu,
            },
            PortConfig {
                device: &dev_s,
                name: "servers",
                cidr: &format!("{GW_SERVERS}/24"),
                kernel: kernel(KERNEL_SERVERS),
                mtu: None,
            },
        ];
        let config = gatewayd_config(
            &eal_args(id, self.opts.workers, vdevs),
            &ports,
            self.opts.conn_capacity,
            &self.opts.services,
            &self.opts.idle,
            &self.opts.extra_config,
        );
        let path = self.dir.join("gatewayd.json");
        std::fs::write(&path, config).expect("write the configuration");
        self.gatewayd = Some(spawn_gatewayd(
            &format!("{id}-gatewayd"),
            self.director.as_ref(),
            &path,
            &self.socket,
            &self.opts.env,
        ));
    }

    /// The control socket of [`Link::Memif`]'s memif link.
    fn memif_socket(&self) -> PathBuf {
        self.dir.join("memif.sock")
    }

    /// Starts [`Link::Memif`]'s peer: `l2fwd --pair` between a memif
    /// client (zero-copy, as the benchmark's generator: gatewayd then reads
    /// and writes the peer's own buffers) and a new tap, which goes into the client namespace with the
    /// client addresses. Waits until the client reaches the gateway's
    /// address through it (ARP and ping, answered by gatewayd).
    pub fn start_memif_peer(&mut self) {
        assert_eq!(self.opts.link, Link::Memif, "only a memif topology has a memif peer");
        assert!(self.memif_peer.is_none(), "the memif peer runs already");
        let mut command = Command::new(l2fwd_bin());
        command.args(["--pair", "net_memif0,net_tap0", "--stats-interval", "3600", "--"]).args([
            format!("--lcores=(0-1)@({})", allowed_cpus()),
            "--no-pci".into(),
            "--in-memory".into(),
            format!("--file-prefix={}p", self.id),
            "--log-level=lib.eal:error".into(),
            "--single-file-segments".into(),
            format!("--vdev=net_memif0,role=client,id=0,zero-copy=yes,socket={}", self.memif_socket().display()),
            format!("--vdev=net_tap0,iface={}", self.client_if),
        ]);
        let mut peer = Daemon::spawn(&format!("{}-memif-peer", self.id), command);
        assert!(
            wait_until(Duration::from_secs(30), || peer.log().contains("running") || !peer.is_running()),
            "the memif peer did not start in 30 s"
        );
        assert!(peer.is_running(), "the memif peer did not start:\n{}", peer.log());
        self.memif_peer = Some(peer);
        self.wire_client();
        assert!(
            wait_until(Duration::from_secs(15), || self
                .client
                .output("ping", &["-c", "1", "-W", "1", GW_CLIENT])
                .status
                .success()),
            "the client does not reach gatewayd through the memif peer; gatewayd log:\n{}",
            self.gatewayd_log()
        );
    }

    /// Stops [`Link::Memif`]'s peer with SIGINT, the clean exit that closes
    /// its memif link (a disconnect message to gatewayd), and returns its
    /// exit status.
    pub fn interrupt_memif_peer(&mut self) -> std::process::ExitStatus {
        let mut peer = self.memif_peer.take().expect("the memif peer runs");
        run("kill", &["-INT", &peer.id().to_string()]);
        peer.wait(Duration::from_secs(15)).unwrap_or_else(|| panic!("the memif peer ignored SIGINT:\n{}", peer.log()))
    }

    /// Whether gatewayd is still running.
    pub fn gatewayd_running(&mut self) -> bool {
        self.gatewayd.as_mut().is_some_and(Daemon::is_running)
    }

    /// Moves the client link into its namespace, with the client addresses.
    fn wire_client(&self) {
        self.client.take(self.director.as_ref(), &self.client_if);
        self.client.ip(&["addr", "add", &format!("{CLIENT}/24"), "dev", &self.client_if]);
        self.client.ip(&["link", "set", &self.client_if, "up"]);
        for i in 1..usize::from(self.opts.clients) {
            self.client.ip(&["addr", "add", &format!("{}/24", client_addr(i)), "dev", &self.client_if]);
        }
    }

    /// Moves the links into the namespaces and gives them addresses and routes.
    fn wire(&self) {
        let o = &self.opts;
        if o.link != Link::Memif {
            // Link::Memif's client link is the peer's tap (start_memif_peer).
            self.wire_client();
        }
        self.servers.take(self.director.as_ref(), &self.servers_if);
        self.servers.ip(&["addr", "add", &format!("{}/24", rip(0)), "dev", &self.servers_if]);
        self.servers.ip(&["link", "set", &self.servers_if, "up"]);
        for i in 1..usize::from(o.servers) {
            self.servers.ip(&["addr", "add", &format!("{}/24", rip(i)), "dev", &self.servers_if]);
        }
        if o.link == Link::AfPacket {
            // An af_packet socket sees the kernel's packets before the
            // checksum is filled in (the veth offloads it); nothing would
            // complete it on the way to gatewayd, so the senders must.
            for (ns, ifname) in [(&self.client, &self.client_if), (&self.servers, &self.servers_if)] {
                set_tx_checksum_offload(ns, ifname, false);
            }
        }
        if o.servers_via_gateway {
            self.servers.ip(&["route", "add", "default", "via", GW_SERVERS]);
        }
        if o.bypass {
            let (bc, bs) = (format!("{}bc", self.id), format!("{}bs", self.id));
            self.client.ip(&["link", "add", &bc, "type", "veth", "peer", "name", &bs, "netns", self.servers.name()]);
            self.client.ip(&["addr", "add", &format!("{BYPASS_CLIENT}/30"), "dev", &bc]);
            self.client.ip(&["link", "set", &bc, "up"]);
            self.servers.ip(&["addr", "add", &format!("{BYPASS_SERVERS}/30"), "dev", &bs]);
            self.servers.ip(&["link", "set", &bs, "up"]);
            self.servers.ip(&["route", "add", "10.0.0.0/24", "via", BYPASS_CLIENT]);
            // Replies from the VIP arrive on the bypass link, while the route
            // to the VIP is the gateway link: reverse-path filtering would drop them.
            for key in ["all", "default", &bc] {
                self.client.sysctl(&format!("net.ipv4.conf.{key}.rp_filter"), "0");
            }
        }
    }

    /// Makes the servers namespace a DR/TUN real server: it holds the VIP on
    /// lo and must not answer ARP for it (only the gateway does), and accepts
    /// packets whose source it would route elsewhere (the client is behind
    /// the bypass link). `extra_ifs`: interfaces besides `servers_if`.
    pub fn servers_hold_the_vip(&self, extra_ifs: &[&str]) {
        self.servers.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        for key in ["all", "default", self.servers_if.as_str()].into_iter().chain(extra_ifs.iter().copied()) {
            self.servers.sysctl(&format!("net.ipv4.conf.{key}.arp_ignore"), "1");
            self.servers.sysctl(&format!("net.ipv4.conf.{key}.arp_announce"), "2");
            self.servers.sysctl(&format!("net.ipv4.conf.{key}.rp_filter"), "0");
        }
    }

    /// The bypass link's interface names (client side, servers side).
    pub fn bypass_ifs(&self) -> (String, String) {
        (format!("{}bc", self.id), format!("{}bs", self.id))
    }

    /// gatewayd's own namespace ([`Options::director_netns`]), where its kernel
    /// interfaces are and where the gateway's own daemons (a listener, tcpdump,
    /// keepalived) run.
    pub fn director(&self) -> &Netns {
        self.director.as_ref().expect("a topology with Options::director_netns")
    }

    /// The name prefix of this topology (for further interfaces: keep the total under 16 bytes).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A directory for files of this test, removed with the topology.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// gatewayd's process id.
    pub fn gatewayd_pid(&self) -> u32 {
        self.gatewayd.as_ref().map_or(0, Daemon::id)
    }

    /// Waits up to `timeout` for gatewayd to exit by itself; its status.
    pub fn wait_gatewayd_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.gatewayd.as_mut().and_then(|d| d.wait(timeout))
    }

    /// The configuration file gatewayd was started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("gatewayd.json")
    }

    /// gatewayd's output so far.
    pub fn gatewayd_log(&self) -> String {
        self.gatewayd.as_ref().map(Daemon::log).unwrap_or_default()
    }

    /// Runs gwctl with `stdin`, whatever its status.
    pub fn gwctl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        gwctl_at(&self.socket, args, stdin)
    }

    /// Runs gwctl, panicking when it fails; returns its standard output.
    pub fn gwctl(&self, args: &[&str]) -> String {
        gwctl_ok(&self.socket, args)
    }

    /// `gwctl` with a command line written as one would type it (no quoting).
    pub fn gwctl_line(&self, line: &str) -> String {
        self.gwctl(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// A FNAT TCP service on VIP:80 with `service_opts` ("-s wrr -p 60"),
    /// the local address, and one real server `rip(i):8080` per entry of
    /// `server_opts` (its extra options: "-w 3", or "").
    pub fn fnat_service(&self, service_opts: &str, server_opts: &[&str]) {
        for rule in fnat_rules(service_opts, server_opts) {
            self.gwctl_line(&rule);
        }
    }

    /// The (weight, ActiveConn, InActConn) of real server `rs` ("addr:port")
    /// in `gwctl -Ln`.
    pub fn server_row(&self, rs: &str) -> (u32, u64, u64) {
        let listing = self.gwctl(&["-Ln"]);
        let row = listing
            .lines()
            .find(|l| l.trim_start().strip_prefix("-> ").is_some_and(|r| r.starts_with(&format!("{rs} "))))
            .unwrap_or_else(|| panic!("no row for {rs} in\n{listing}"));
        let f: Vec<&str> = row.split_whitespace().collect();
        // "->" ADDR:PORT FORWARD WEIGHT ACTIVE INACTIVE
        (f[3].parse().unwrap(), f[4].parse().unwrap(), f[5].parse().unwrap())
    }

    /// As [`Topology::server_row`], for the real server `rs` of the virtual
    /// service `service` ("VIP:port"; the first protocol listed that has it).
    pub fn server_row_of(&self, service: &str, rs: &str) -> (u32, u64, u64) {
        let listing = self.gwctl(&["-Ln"]);
        let mut in_service = false;
        for line in listing.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [proto, addr, ..] if ["TCP", "UDP", "SCTP", "FWM"].contains(proto) => in_service = *addr == service,
                // "->" ADDR:PORT FORWARD WEIGHT ACTIVE INACTIVE
                ["->", addr, _, w, a, i] if in_service && *addr == rs => {
                    return (w.parse().unwrap(), a.parse().unwrap(), i.parse().unwrap());
                }
                _ => {}
            }
        }
        panic!("no row for {rs} under {service} in\n{listing}")
    }

    /// A counter of `gwctl stats` summed over the workers: `"redirected out"`,
    /// `"new connections"` and the other "name number" pairs it prints (0
    /// for an event or drop it does not print: those print only when non-zero).
    pub fn worker_counter(&self, name: &str) -> u64 {
        self.stats().counter(name)
    }

    /// `gwctl stats` now, to read several counters of one moment.
    pub fn stats(&self) -> Stats {
        Stats(self.gwctl(&["stats"]))
    }

    /// curl from the client namespace (source `from`, else the first client
    /// address); the body, trimmed, or "" when the request failed.
    pub fn curl_from(&self, from: Option<&str>, url: &str) -> String {
        let mut args = vec!["-sS", "--max-time", "5"];
        if let Some(a) = from {
            args.extend(["--interface", a]);
        }
        args.push(url);
        let out = self.client.output("curl", &args);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        } else {
            String::new()
        }
    }

    pub fn curl(&self, url: &str) -> String {
        self.curl_from(None, url)
    }

    /// Waits until `url` answers the client with a real server's name ("rsN").
    pub fn wait_for_service(&self, url: &str) {
        assert!(
            wait_until(Duration::from_secs(15), || self.curl(url).starts_with("rs")),
            "no answer from {url} through the gateway; gatewayd log:\n{}",
            self.gatewayd_log()
        );
    }

    /// `n` requests in one curl (a new connection each: the servers close
    /// after every answer), returning each answer's first line in order.
    /// The query string only makes the URLs distinct.
    pub fn curl_many(&self, from: Option<&str>, url: &str, n: usize) -> Vec<String> {
        let glob = format!("{url}?[1-{n}]");
        let mut args = vec!["-sS", "--max-time", "60", "-H", "Connection: close"];
        if let Some(a) = from {
            args.extend(["--interface", a]);
        }
        args.push(&glob);
        let out = self.client.output("curl", &args);
        assert!(out.status.success(), "curl {glob}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }

    /// Python HTTP servers on `rips` port 8080 (one connection per request:
    /// HTTP/1.0), each answering `/` with "rsN" (N = 1 + index in `rips`).
    pub fn python_http(&self, rips: &[String]) -> Vec<Daemon> {
        python_http_in(&self.servers, &self.dir, &self.id, rips)
    }

    /// One nginx serving every address of `rips` on port 8080: `/who`
    /// answers "rsN" (N = 1 + index) and the rest comes from `www()`.
    /// Each server's requests are logged, one line each, to `access_log(N)`.
    /// `keepalive` false closes every connection after its answer, so that
    /// each request of a load generator is a new connection to schedule.
    pub fn nginx(&self, rips: &[String], keepalive: bool) -> Daemon {
        let listens: Vec<String> = rips.iter().map(|r| format!("{r}:8080")).collect();
        self.nginx_on(&listens, keepalive)
    }

    /// As [`Topology::nginx`], on the given `addr:port` pairs.
    pub fn nginx_on(&self, listens: &[String], keepalive: bool) -> Daemon {
        nginx_in(&self.servers, &self.dir, &self.id, listens, keepalive)
    }

    /// nginx's document root (files for downloads go here).
    pub fn www(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// Serves `len` bytes of incompressible data (`head -c`'s syntax: `"20M"`)
    /// from the real servers' directory, downloads them from the client
    /// through VIP:80 with curl (at most `max_secs`), and asserts they arrive
    /// intact, compared by SHA-256. Both files are gone afterwards.
    pub fn download_intact(&self, len: &str, max_secs: u32) {
        let blob = self.www().join("blob");
        crate::random_file(&blob, len);
        let got = self.dir.join("got");
        let url = format!("http://{VIP}/blob");
        let max_time = max_secs.to_string();
        let download = self.client.output("curl", &["-sS", "--max-time", &max_time, "-o", got.to_str().unwrap(), &url]);
        assert!(download.status.success(), "download: {}", String::from_utf8_lossy(&download.stderr));
        assert_eq!(crate::sha256(&got), crate::sha256(&blob), "the download of {len} arrives intact");
        let _ = std::fs::remove_file(&got);
        let _ = std::fs::remove_file(&blob);
    }

    /// The requests nginx's real server N (1-based) logged: (client, status) per line.
    pub fn access_log(&self, n: usize) -> Vec<(String, u16)> {
        self.access_log_ports(n).into_iter().map(|(addr, status, _)| (addr, status)).collect()
    }

    /// As [`Topology::access_log`], with the client's port.
    pub fn access_log_ports(&self, n: usize) -> Vec<(String, u16, u16)> {
        std::fs::read_to_string(self.dir.join(format!("rs{n}.access")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?.to_owned(), f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
            .collect()
    }

    /// Waits until every `addr:port` of `listens` answers HTTP inside
    /// `ns` (nginx does not log `/ready`; python answers it 404, which is fine).
    pub fn wait_listening(&self, ns: &Netns, listens: &[String]) {
        wait_listening_in(ns, listens);
    }

    /// Stops gatewayd with SIGTERM and asserts a clean exit with every mbuf
    /// back in its pool; returns its log.
    pub fn stop(&mut self) -> String {
        let mut gatewayd = self.gatewayd.take().expect("gatewayd runs");
        let status = gatewayd.terminate(Duration::from_secs(15)).expect("gatewayd stops on SIGTERM");
        let log = gatewayd.log();
        assert!(status.success(), "gatewayd exit status {status}:\n{log}");
        assert!(!log.contains("not returned"), "mbufs leaked:\n{log}");
        log
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // gatewayd and the memif peer first: their ports are the links the namespaces hold.
        drop(self.memif_peer.take());
        drop(self.gatewayd.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `gwctl stats` printed at one moment.
#[derive(Debug, Clone)]
pub struct Stats(pub String);

impl Stats {
    /// The number after `name` ("new connections", "connection table",
    /// "drop no_service"), summed over the workers; 0 when not printed.
    pub fn counter(&self, name: &str) -> u64 {
        self.0
            .split(name)
            .skip(1)
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .and_then(|n| n.trim_end_matches(',').parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no number after {name:?} in {}", self.0))
            })
            .sum()
    }

    /// The packets the workers handed toward port `port`'s kernel interface
    /// as `class` ("control", "bulk"), and those its rate refused, summed
    /// over the workers (lines "kernel port 0 bulk: handed 20 rate-limited 4").
    pub fn kernel(&self, port: u16, class: &str) -> (u64, u64) {
        let prefix = format!("kernel port {port} {class}: handed ");
        self.0.lines().filter_map(|l| l.trim().strip_prefix(&prefix)).fold((0, 0), |(h, r), rest| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            match f.as_slice() {
                [handed, "rate-limited", limited] => (
                    h + handed.parse::<u64>().expect("handed count"),
                    r + limited.parse::<u64>().expect("rate-limited count"),
                ),
                _ => panic!("unexpected kernel counters line {rest:?} in {}", self.0),
            }
        })
    }
}

/// One nginx in `ns` on the given `addr:port` pairs, with its files under
/// `dir` and its document root `dir/www` (see [`Topology::nginx`]); `id`
/// prefixes its label.
pub fn nginx_in(ns: &Netns, dir: &Path, id: &str, listens: &[String], keepalive: bool) -> Daemon {
    nginx_with_tls_in(ns, dir, id, listens, &[], keepalive)
}

/// As [`nginx_in`], also serving HTTPS on the `tls` pairs, with a self-signed RSA
/// certificate made for the test (`dir/c`, its key `dir/k`; CN `rs`, which no client
/// asks for).
pub fn nginx_with_tls_in(
    ns: &Netns,
    dir: &Path,
    id: &str,
    listens: &[String],
    tls: &[String],
    keepalive: bool,
) -> Daemon {
    let d = dir.display();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(dir.join("nginx-tmp")).unwrap();
    if !tls.is_empty() {
        let (key, cert) = (dir.join("k"), dir.join("c"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=rs", "-days", "1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success(), "openssl req: {}", String::from_utf8_lossy(&made.stderr));
    }
    let mut servers = String::new();
    let all = listens.iter().map(|a| (a, "")).chain(tls.iter().map(|a| (a, " ssl")));
    for (i, (addr, ssl)) in all.enumerate() {
        let n = i + 1;
        let certificate =
            if ssl.is_empty() { String::new() } else { format!(" ssl_certificate {d}/c; ssl_certificate_key {d}/k;") };
        servers += &format!(
            "  server {{ listen {addr}{ssl} backlog=4096; access_log {d}/rs{n}.access main;{certificate}\n\
             \x20   location = /who {{ return 200 \"rs{n}\\n\"; }}\n\
             \x20   location = /ready {{ access_log off; return 204; }}\n\
             \x20   location / {{ root {www}; }} }}\n",
            www = www.display()
        );
    }
    let keepalive_timeout = if keepalive { 60 } else { 0 };
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile 20000;\n\
         pid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 10000; }}\n\
         http {{\n  log_format main '$remote_addr $status $remote_port';\n  keepalive_timeout {keepalive_timeout};\n  \
         sendfile on;\n  client_body_temp_path {d}/nginx-tmp/b; proxy_temp_path {d}/nginx-tmp/p;\n  \
         fastcgi_temp_path {d}/nginx-tmp/f; uwsgi_temp_path {d}/nginx-tmp/u; scgi_temp_path {d}/nginx-tmp/s;\n\
         {servers}}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = ns.spawn(
        &format!("{id}-nginx"),
        "nginx",
        &["-c", path.to_str().unwrap(), "-p", &format!("{d}/"), "-e", &format!("{d}/nginx-error.log")],
    );
    wait_listening_in(ns, listens);
    wait_answering_in(ns, "https", tls);
    nginx
}

/// Python HTTP servers in `ns` on `rips` port 8080, serving from
/// directories under `dir` (see [`Topology::python_http`]); `id` prefixes
/// their labels.
pub fn python_http_in(ns: &Netns, dir: &Path, id: &str, rips: &[String]) -> Vec<Daemon> {
    let servers: Vec<Daemon> = rips
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let root = dir.join(format!("py-rs{}", i + 1));
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("index.html"), format!("rs{}\n", i + 1)).unwrap();
            ns.spawn(
                &format!("{id}-py-rs{}", i + 1),
                "python3",
                &["-m", "http.server", "8080", "--bind", addr, "--directory", root.to_str().unwrap()],
            )
        })
        .collect();
    let listens: Vec<String> = rips.iter().map(|r| format!("{r}:8080")).collect();
    wait_listening_in(ns, &listens);
    servers
}

/// Waits until every `addr:port` of `listens` answers HTTP inside `ns`
/// (see [`Topology::wait_listening`]).
pub fn wait_listening_in(ns: &Netns, listens: &[String]) {
    wait_answering_in(ns, "http", listens);
}

/// Waits until every `addr:port` of `listens` answers `scheme` (http, or https with
/// any certificate) inside `ns`.
fn wait_answering_in(ns: &Netns, scheme: &str, listens: &[String]) {
    for a in listens {
        assert!(
            wait_until(Duration::from_secs(10), || ns
                .output("curl", &["-s", "-k", "-o", "/dev/null", "--max-time", "1", &format!("{scheme}://{a}/ready")])
                .status
                .success()),
            "nothing listens on {a} in {}",
            ns.name()
        );
    }
}

/// One port of a configuration file.
pub(crate) struct PortConfig<'a> {
    pub device: &'a str,
    pub name: &'a str,
    /// The port's address, "10.0.0.254/24".
    pub cidr: &'a str,
    /// The port's kernel interface (`"kernel"`), if any.
    pub kernel: Option<&'a str>,
    /// The port's egress MTU (`"mtu"`; gatewayd's default 1500 when `None`).
    pub mtu: Option<u16>,
}

/// The EAL arguments of a gatewayd with `workers` worker lcores and
/// `vdevs` ("--vdev=..."); `prefix` keeps its runtime files apart.
pub(crate) fn eal_args(prefix: &str, workers: u16, vdevs: Vec<String>) -> Vec<String> {
    // Lcore 0 is the main (control) lcore, 1..=n the workers. They float
    // over the CPUs we may use, so the test runs on any machine size.
    let mut eal = vec![
        format!("--lcores=(0-{workers})@({})", allowed_cpus()),
        "--no-pci".into(),
        "--in-memory".into(),
        format!("--file-prefix={prefix}"),
        "--log-level=lib.eal:error".into(),
    ];
    eal.extend(vdevs);
    eal
}

/// The configuration file (JSON written by hand: the harness has no serde).
pub(crate) fn gatewayd_config(
    eal: &[String],
    ports: &[PortConfig],
    conn_capacity: u32,
    services: &[String],
    idle: &str,
    extra: &str,
) -> String {
    let quoted = |v: &[String]| v.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let extra = if extra.trim().is_empty() { String::new() } else { format!(",\n  {}", extra.trim()) };
    let ports: Vec<String> = ports
        .iter()
        .map(|p| {
            let kernel = p.kernel.map(|k| format!(", \"kernel\": \"{k}\"")).unwrap_or_default();
            let mtu = p.mtu.map(|m| format!(", \"mtu\": {m}")).unwrap_or_default();
            format!(r#"    {{"device": "{}", "name": "{}", "addrs": ["{}"]{kernel}{mtu}}}"#, p.device, p.name, p.cidr)
        })
        .collect();
    format!(
        r#"{{
  "eal": [{}],
  "ports": [
{}
  ],
  "conn_capacity": {conn_capacity},
  "idle": "{idle}",
  "services": [{}]{extra}
}}"#,
        quoted(eal),
        ports.join(",\n"),
        quoted(services)
    )
}

/// Starts gatewayd (inside `netns`, else in the root namespace) and waits
/// until it reports running.
pub(crate) fn spawn_gatewayd(
    label: &str,
    netns: Option<&Netns>,
    config: &Path,
    socket: &Path,
    env: &[(String, String)],
) -> Daemon {
    // `ip netns exec` execs the program: the daemon's pid is gatewayd's.
    let mut command = match netns {
        Some(ns) => ns.command(gatewayd_bin().to_str().expect("UTF-8 path")),
        None => Command::new(gatewayd_bin()),
    };
    command.arg("--config").arg(config).arg("--socket").arg(socket);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let mut gatewayd = Daemon::spawn(label, command);
    assert!(
        wait_until(Duration::from_secs(30), || gatewayd.log().contains("running") || !gatewayd.is_running()),
        "gatewayd did not start in 30 s"
    );
    assert!(gatewayd.is_running() && gatewayd.log().contains("running"), "gatewayd did not start:\n{}", gatewayd.log());
    gatewayd
}

/// Runs gwctl on the control socket `socket` with `stdin`, whatever its status.
pub fn gwctl_at(socket: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(gwctl_bin())
        .env("GATEWAYD_SOCKET", socket)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gwctl");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("gwctl stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write gwctl's stdin");
        }
    }
    child.wait_with_output().expect("gwctl output")
}

/// As [`gwctl_at`], panicking when gwctl fails; returns its standard output.
pub fn gwctl_ok(socket: &Path, args: &[&str]) -> String {
    let out = gwctl_at(socket, args, None);
    assert!(
        out.status.success(),
        "gwctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("gwctl prints UTF-8")
}

/// Turns an interface's transmit checksum offload on or off (`ethtool -K
/// IF tx off`, done with python3's ioctl: ethtool is not installed everywhere).
pub fn set_tx_checksum_offload(ns: &Netns, ifname: &str, on: bool) {
    // struct ethtool_value { u32 cmd; u32 data; }, ETHTOOL_STXCSUM = 0x17, SIOCETHTOOL = 0x8946.
    let script = format!(
        "import array, fcntl, socket, struct\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         ev = array.array('B', struct.pack('II', 0x17, {}))\n\
         ifr = struct.pack('16sP', b'{ifname}', ev.buffer_info()[0])\n\
         fcntl.ioctl(s.fileno(), 0x8946, ifr)\n",
        u32::from(on)
    );
    let out = ns.output("python3", &["-c", &script]);
    assert!(out.status.success(), "tx checksum offload of {ifname}: {}", String::from_utf8_lossy(&out.stderr));
}
