//! The benchmark driver (`gwbench all`): every figure next to its reference,
//! measured in the same run, then the exact instruction counts and the
//! connection-table figures from the existing scripts and benches, written
//! as JSON and a short table.
//!
//! A *scenario* is one device under test (the plain forwarder
//! `l2fwd --pair`, or `gatewayd --config` with a service configured by
//! `gwctl`) and one generator process (`gwbench gen`) on the other core,
//! connected by two memif links whose sockets live in a private temporary
//! directory. Every process the driver starts is stopped when the scenario
//! ends, also on failure and on SIGINT/SIGTERM (the [`Proc`] and
//! [`TempDir`] guards), and the directory is removed.
//!
//! The kernel peer (issue 9's figure 5) swaps memif for two veth pairs
//! between a generator namespace and a router namespace ([`VethTopo`]): the
//! router is Linux's own NAT (nftables) or gatewayd on `net_af_xdp`, and the
//! generator runs on `net_af_xdp` in its namespace. The namespaces, and with
//! them the veths, are deleted when the scenario ends.
//!
//! The machine is shared and noisy: scenarios are run in interleaved rounds
//! (forwarder, gateway, forwarder, gateway, ...) and each figure keeps its
//! best round; the ratio is taken between best rounds of the same run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use gateway::worker::idle::IdleMode;

use crate::result::GenResult;

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The IPv6 VIP; the clients are [`crate::packet::CLIENTS6`]'s, behind
/// [`GEN_CLIENT6`] (the generator's MAC, a static neighbour, as 10.0.0.1 is).
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
pub const GEN_CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const VPORT: u16 = 80;
pub const GW_CLIENT_MAC: &str = "02:00:00:00:01:01";
pub const GW_SERVER_MAC: &str = "02:00:00:00:02:01";
pub const GEN_CLIENT_MAC: &str = "02:00:00:00:01:02";
pub const GEN_SERVER_MAC: &str = "02:00:00:00:02:02";
/// Real servers the generator plays: 192.168.1.10 + i.
pub const REAL_SERVERS: u8 = 4;
/// Local addresses of the FNAT service: 192.168.1.100 + i; each gives the
/// worker [`PORTS_PER_LIP`] local ports.
pub const DEFAULT_LIPS: u8 = 32;
/// The local ports one address gives the single worker (the gateway's range).
pub const PORTS_PER_LIP: u32 =
    *gateway::model::laddr::DEFAULT_PORTS.end() as u32 - *gateway::model::laddr::DEFAULT_PORTS.start() as u32 + 1;

/// The local addresses a load of `flows` connections needs: at least
/// `configured` (`--lips`), more when their ports cannot hold every flow
/// (the 4M point of the sweep needs 64), at most 100 (192.168.1.100-199).
pub fn lips_for(flows: u32, configured: u8) -> u8 {
    let needed = flows.div_ceil(PORTS_PER_LIP).min(100) as u8;
    configured.max(needed)
}

/// The gatewayd `conn_capacity` for `flows` connections (one per flow, on
/// its one worker): twice the flows, to a power of two, between 64 Ki and
/// 4 Mi (at 4 Mi the worker's two tables, IPv4's and IPv6's, each fill a
/// 128 MiB index at start). 4M flows take 95 % of the entries; the index
/// is sized for the capacity, so its load stays below 7/8 all the same.
pub fn conn_capacity(flows: u32) -> u32 {
    (u64::from(flows) * 2).next_power_of_two().clamp(1 << 16, 1 << 22) as u32
}

/// How the gateway forwards to the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Fnat,
    Nat,
    Dr,
    Tun,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Fnat => "fnat",
            Method::Nat => "nat",
            Method::Dr => "dr",
            Method::Tun => "tun",
        }
    }

    /// The ipvsadm flag of the real servers.
    fn flag(self) -> &'static str {
        match self {
            Method::Fnat => "-b",
            Method::Nat => "-m",
            Method::Dr => "-g",
            Method::Tun => "-i",
        }
    }

    /// Replies bypass the director: only the client-to-server way is measured.
    pub fn oneway(self) -> bool {
        matches!(self, Method::Dr | Method::Tun)
    }
}

/// The device under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// `l2fwd --pair`: rx -> tx, no processing.
    Forwarder,
    /// `gatewayd --config` with one TCP service on the VIP; `sync`: with a
    /// connection-sync master running (`--start-daemon master`), its
    /// datagrams going to a veth pair of the run's own; `checked`: with a
    /// second service of [`CHECKED_SERVERS`] real servers, each checked every
    /// second (TCP), whose probes share the worker with the measured traffic;
    /// `proxy_protocol`: the service sends a PROXY protocol v2 header (FNAT);
    /// `v6`: the service, its local addresses, servers and clients are IPv6
    /// ([`gwctl_commands_v6`]).
    Gateway {
        method: Method,
        scheduler: String,
        synproxy: bool,
        #[serde(default)]
        sync: bool,
        #[serde(default)]
        checked: bool,
        #[serde(default)]
        proxy_protocol: bool,
        #[serde(default)]
        v6: bool,
    },
    /// The kernel peer: Linux's own NAT (nftables DNAT + SNAT, conntrack) in
    /// a router namespace between two veth pairs; the generator on
    /// `net_af_xdp` on the far ends.
    KernelNat,
    /// `gatewayd --config` (FNAT rr) on `net_af_xdp` on the router's veths.
    GatewayXdp,
    /// `l2fwd --pair` on `net_af_xdp` on the router's veths.
    ForwarderXdp,
}

impl Target {
    pub fn gateway(method: Method, scheduler: &str) -> Target {
        Target::gateway_with(method, scheduler, false, false, false)
    }

    /// [`Target::gateway`] with a connection-sync master running.
    pub fn gateway_syncing(method: Method, scheduler: &str) -> Target {
        Target::gateway_with(method, scheduler, true, false, false)
    }

    /// [`Target::gateway`] with [`CHECKED_SERVERS`] health-checked servers beside.
    pub fn gateway_checked(method: Method, scheduler: &str) -> Target {
        Target::gateway_with(method, scheduler, false, true, false)
    }

    /// [`Target::gateway`] sending a PROXY protocol v2 header on each connection.
    pub fn gateway_proxy_protocol(method: Method, scheduler: &str) -> Target {
        Target::gateway_with(method, scheduler, false, false, true)
    }

    /// [`Target::gateway`] over IPv6: VIP [`VIP6`], IPv6 clients, local
    /// addresses and servers.
    pub fn gateway_v6(method: Method, scheduler: &str) -> Target {
        match Target::gateway(method, scheduler) {
            Target::Gateway { method, scheduler, synproxy, sync, checked, proxy_protocol, .. } => {
                Target::Gateway { method, scheduler, synproxy, sync, checked, proxy_protocol, v6: true }
            }
            other => other,
        }
    }

    fn gateway_with(method: Method, scheduler: &str, sync: bool, checked: bool, proxy_protocol: bool) -> Target {
        Target::Gateway {
            method,
            scheduler: scheduler.into(),
            synproxy: false,
            sync,
            checked,
            proxy_protocol,
            v6: false,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Target::Forwarder => "forwarder".into(),
            Target::Gateway { method, scheduler, synproxy, sync, checked, proxy_protocol, v6 } => format!(
                "{} {scheduler}{}{}{}{}{}",
                method.name().to_uppercase(),
                if *v6 { " IPv6" } else { "" },
                if *synproxy { " synproxy" } else { "" },
                if *sync { " sync" } else { "" },
                if *checked { " +1000 checked" } else { "" },
                if *proxy_protocol { " proxy-protocol" } else { "" }
            ),
            Target::KernelNat => "kernel nftables".into(),
            Target::GatewayXdp => "FNAT rr af_xdp".into(),
            Target::ForwarderXdp => "forwarder af_xdp".into(),
        }
    }

    /// Runs on veths between namespaces (the kernel peer's set-up), not memif.
    pub fn on_veth(&self) -> bool {
        matches!(self, Target::KernelNat | Target::GatewayXdp | Target::ForwarderXdp)
    }
}

/// What the generator does in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// `established`, `connect` or `synflood`.
    pub mode: String,
    pub flows: u32,
    pub seconds: f64,
    pub window: u32,
    pub payload: u32,
    pub oneway: bool,
}

/// The gatewayd configuration file for a scenario on memif.
pub fn gateway_config(dir: &Path, file_prefix: &str, conn_capacity: u32) -> serde_json::Value {
    gateway_config_for(gateway_eal(dir, file_prefix), ["net_memif0", "net_memif1"], conn_capacity)
}

/// The gatewayd configuration file with `eal` and the two port devices
/// (client side, server side).
pub fn gateway_config_for(eal: Vec<String>, devices: [&str; 2], conn_capacity: u32) -> serde_json::Value {
    let mut neighbours = vec![json!({"addr": "10.0.0.1", "lladdr": GEN_CLIENT_MAC, "dev": "client"})];
    for i in 0..REAL_SERVERS {
        neighbours.push(json!({"addr": format!("192.168.1.{}", 10 + i), "lladdr": GEN_SERVER_MAC, "dev": "servers"}));
    }
    json!({
        "eal": eal,
        "ports": [
            {"device": devices[0], "name": "client", "addrs": ["10.0.0.254/24"]},
            {"device": devices[1], "name": "servers", "addrs": ["192.168.1.254/24"]}
        ],
        "routes": [{"dst": "0.0.0.0/0", "via": "10.0.0.1", "dev": "client"}],
        "neighbours": neighbours,
        "conn_capacity": conn_capacity,
    })
}

/// EAL arguments of the device under test: main lcore 0 (control), one
/// worker on lcore 1, memif servers.
pub fn gateway_eal(dir: &Path, file_prefix: &str) -> Vec<String> {
    vec![
        "-l".into(),
        "0-1".into(),
        "--no-pci".into(),
        "--in-memory".into(),
        format!("--file-prefix={file_prefix}"),
        "--log-level=lib.eal:error".into(),
        "--log-level=pmd.net.memif:error".into(),
        format!("--vdev=net_memif0,role=server,socket={},id=0,mac={GW_CLIENT_MAC}", dir.join("client.sock").display()),
        format!("--vdev=net_memif1,role=server,socket={},id=0,mac={GW_SERVER_MAC}", dir.join("server.sock").display()),
    ]
}

/// log2 of the memif ring size (the client side, the generator, sets it):
/// 4096 slots per direction, so a window of 4096 segments never overflows.
pub const MEMIF_RSIZE: u32 = 12;

/// EAL arguments of the generator: one lcore (0, the core the gateway's
/// worker does not use), memif clients. By default in zero-copy mode (the
/// gateway side reads and writes the generator's mbufs in place), which
/// halves the generator's copying so the device under test, not the
/// generator, is the slower side; that needs hugepages in single-file
/// segments. `copy` uses plain copying memif (and `--no-huge`).
pub fn generator_eal(dir: &Path, file_prefix: &str, copy: bool) -> Vec<String> {
    let mut eal: Vec<String> = vec!["-l".into(), "0".into(), "--no-pci".into()];
    let zc = if copy {
        eal.extend(["--no-huge".into(), "--no-shconf".into(), "-m".into(), "512".into()]);
        ""
    } else {
        eal.extend(["--in-memory".into(), "--single-file-segments".into()]);
        ",zero-copy=yes"
    };
    eal.extend([
        format!("--file-prefix={file_prefix}"),
        "--log-level=lib.eal:error".into(),
        "--log-level=pmd.net.memif:error".into(),
        format!(
            "--vdev=net_memif0,role=client,socket={},id=0,rsize={MEMIF_RSIZE}{zc},mac={GEN_CLIENT_MAC}",
            dir.join("client.sock").display()
        ),
        format!(
            "--vdev=net_memif1,role=client,socket={},id=0,rsize={MEMIF_RSIZE}{zc},mac={GEN_SERVER_MAC}",
            dir.join("server.sock").display()
        ),
    ]);
    eal
}

/// The gwctl command lines that set up the service for `target`.
pub fn gwctl_commands(method: Method, scheduler: &str, synproxy: bool, lips: u8) -> Vec<Vec<String>> {
    let svc = format!("{VIP}:{VPORT}");
    let mut cmds = vec![];
    let mut add = vec!["-A", "-t", &svc, "-s", scheduler].into_iter().map(String::from).collect::<Vec<_>>();
    if synproxy {
        add.extend(["-j".into(), "enable".into()]);
    }
    cmds.push(add);
    if method == Method::Fnat {
        for i in 0..lips {
            cmds.push(
                ["-P", "-t", &svc, "-z", &format!("192.168.1.{}", 100 + u32::from(i)), "-F", "servers"]
                    .map(String::from)
                    .to_vec(),
            );
        }
    }
    // DR and TUN keep the destination port; NAT and FNAT translate it.
    let rport = if method.oneway() { VPORT } else { 8080 };
    for i in 0..REAL_SERVERS {
        cmds.push(
            ["-a", "-t", &svc, "-r", &format!("192.168.1.{}:{rport}", 10 + i), method.flag()]
                .map(String::from)
                .to_vec(),
        );
    }
    cmds
}

/// The gwctl command lines that set up [`Target::Gateway`]'s `v6` service:
/// the gateway's IPv6 addresses (the configuration file's `addrs` take IPv4
/// only), the clients' route and the static neighbours (the generator
/// answers ARP, not neighbour discovery), then the service as
/// [`gwctl_commands`] sets up IPv4's: local addresses 2001:db8:1::100 + i,
/// servers 2001:db8:1::10 + i.
pub fn gwctl_commands_v6(method: Method, scheduler: &str, lips: u8) -> Vec<Vec<String>> {
    let line = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let gen_client6 = GEN_CLIENT6.to_string();
    let mut cmds = vec![
        line(&["addr", "add", "2001:db8::fe/64", "dev", "client"]),
        line(&["addr", "add", "2001:db8:1::fe/64", "dev", "servers"]),
        line(&["neigh", "add", &gen_client6, "lladdr", GEN_CLIENT_MAC, "dev", "client"]),
        line(&["route", "add", "default", "via", &gen_client6, "dev", "client"]),
    ];
    let server = |i: u8| Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10 + u16::from(i));
    for i in 0..REAL_SERVERS {
        cmds.push(line(&["neigh", "add", &server(i).to_string(), "lladdr", GEN_SERVER_MAC, "dev", "servers"]));
    }
    let svc = format!("[{VIP6}]:{VPORT}");
    cmds.push(line(&["-A", "-t", &svc, "-s", scheduler]));
    if method == Method::Fnat {
        for i in 0..lips {
            let lip = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100 + u16::from(i));
            cmds.push(line(&["-P", "-t", &svc, "-z", &lip.to_string(), "-F", "servers"]));
        }
    }
    let rport = if method.oneway() { VPORT } else { 8080 };
    for i in 0..REAL_SERVERS {
        cmds.push(line(&["-a", "-t", &svc, "-r", &format!("[{}]:{rport}", server(i)), method.flag()]));
    }
    cmds
}

/// The servers of [`Target::Gateway`]'s `checked` service.
pub const CHECKED_SERVERS: usize = 1000;

/// The `checked` service (VIP port 81, FNAT): [`CHECKED_SERVERS`] servers, 200
/// addresses of the servers' link with five ports each (the generator answers
/// ARP for any address and SYNs on any port), for `gwctl -R`; then its check,
/// each server every second.
pub fn checked_service() -> (String, Vec<String>) {
    let svc = format!("{VIP}:81");
    let mut rules = format!("-A -t {svc} -s rr\n-P -t {svc} -z 192.168.1.100 -F servers\n");
    for i in 0..CHECKED_SERVERS {
        rules += &format!("-a -t {svc} -r 192.168.1.{}:{} -b\n", 20 + i / 5, 9000 + i % 5);
    }
    let check = format!("--health -t {svc} --check tcp --delay-loop 1 --connect-timeout 1 --retry 1 --rise 1");
    (rules, check.split(' ').map(String::from).collect())
}

/// An interface for a sync master's datagrams: one end of a veth pair (the
/// kernels this runs on may lack the dummy driver), multicast on, an address
/// from the benchmarking range (RFC 2544) for their source; they end at the
/// pair's other end, where nothing listens. Removed, both ends, when dropped.
struct SyncLink {
    name: String,
}

impl SyncLink {
    fn create(name: &str) -> Result<SyncLink, String> {
        let peer = format!("{name}p");
        let _ = Command::new("ip").args(["link", "del", name]).output();
        sh(&["ip", "link", "add", name, "type", "veth", "peer", "name", &peer])?;
        let link = SyncLink { name: name.to_owned() };
        sh(&["ip", "link", "set", &peer, "up"])?;
        sh(&["ip", "link", "set", name, "multicast", "on", "up"])?;
        sh(&["ip", "addr", "add", "198.18.77.1/32", "dev", name])?;
        Ok(link)
    }
}

impl Drop for SyncLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.name]).output();
    }
}

/// Runs a command, failing with its output.
fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The kernel peer's set-up: a generator namespace and a router namespace
/// joined by two veth pairs (client side `c0`-`c1`, server side
/// `s0`-`s1`, with the same MACs as the memif set-up), torn down (both
/// namespaces, hence the veths) when dropped. For the kernel NAT, the router
/// namespace forwards with nftables DNAT to the four real servers (numgen
/// round robin) and SNAT to the 32 local addresses, conntrack liberal about
/// TCP windows, and RPS steering the router's receive processing to CPU 1,
/// the core a gateway worker gets.
pub struct VethTopo {
    pub gen_ns: String,
    pub router_ns: String,
    /// (client, server) veth names in the generator and router namespaces.
    pub gen_ifs: [String; 2],
    pub router_ifs: [String; 2],
}

impl VethTopo {
    pub fn create(tag: &str, kernel_nat: bool) -> Result<VethTopo, String> {
        let t = VethTopo {
            gen_ns: format!("{tag}g"),
            router_ns: format!("{tag}r"),
            gen_ifs: [format!("{tag}c0"), format!("{tag}s0")],
            router_ifs: [format!("{tag}c1"), format!("{tag}s1")],
        };
        t.delete();
        // From here on, Drop tears down whatever was made.
        let (g, r) = (t.gen_ns.as_str(), t.router_ns.as_str());
        sh(&["ip", "netns", "add", g])?;
        sh(&["ip", "netns", "add", r])?;
        for (i, (gen_mac, gw_mac)) in
            [(GEN_CLIENT_MAC, GW_CLIENT_MAC), (GEN_SERVER_MAC, GW_SERVER_MAC)].iter().enumerate()
        {
            sh(&[
                "ip",
                "link",
                "add",
                &t.gen_ifs[i],
                "netns",
                g,
                "address",
                gen_mac,
                "type",
                "veth",
                "peer",
                "name",
                &t.router_ifs[i],
                "netns",
                r,
                "address",
                gw_mac,
            ])?;
        }
        for (ns, ifs) in [(g, &t.gen_ifs), (r, &t.router_ifs)] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            for i in ifs.iter() {
                // No IPv6 chatter (router solicitations) into the measurement.
                sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", &format!("net.ipv6.conf.{i}.disable_ipv6=1")])?;
                sh(&["ip", "-n", ns, "link", "set", i, "up"])?;
            }
        }
        if kernel_nat {
            t.kernel_nat()?;
        }
        Ok(t)
    }

    fn kernel_nat(&self) -> Result<(), String> {
        let r = self.router_ns.as_str();
        let [c1, s1] = [self.router_ifs[0].as_str(), self.router_ifs[1].as_str()];
        let exec = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", r];
            v.extend_from_slice(args);
            sh(&v)
        };
        exec(&[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ])?;
        sh(&["ip", "-n", r, "addr", "add", "10.0.0.254/24", "dev", c1])?;
        sh(&["ip", "-n", r, "addr", "add", "192.168.1.254/24", "dev", s1])?;
        sh(&["ip", "-n", r, "route", "add", "default", "via", "10.0.0.1", "dev", c1])?;
        sh(&["ip", "-n", r, "neigh", "add", "10.0.0.1", "lladdr", GEN_CLIENT_MAC, "dev", c1, "nud", "permanent"])?;
        let servers: Vec<String> = (0..REAL_SERVERS).map(|i| format!("192.168.1.{}", 10 + i)).collect();
        for rs in &servers {
            sh(&["ip", "-n", r, "neigh", "add", rs, "lladdr", GEN_SERVER_MAC, "dev", s1, "nud", "permanent"])?;
        }
        let map: Vec<String> = servers.iter().enumerate().map(|(i, rs)| format!("{i} : {rs}")).collect();
        let rules = format!(
            "table ip gwbench {{\n\
             chain pre {{\n\
             type nat hook prerouting priority dstnat; policy accept;\n\
             ip daddr {VIP} tcp dport {VPORT} dnat to numgen inc mod {n} map {{ {map} }} : 8080\n\
             }}\n\
             chain post {{\n\
             type nat hook postrouting priority srcnat; policy accept;\n\
             oifname \"{s1}\" snat to 192.168.1.100-192.168.1.{last}\n\
             }}\n\
             }}\n",
            n = servers.len(),
            map = map.join(", "),
            last = 100 + u32::from(DEFAULT_LIPS) - 1,
        );
        let path = std::env::temp_dir().join(format!("{}.nft", self.router_ns));
        std::fs::write(&path, rules).map_err(|e| e.to_string())?;
        let loaded = exec(&["nft", "-f", path.to_str().unwrap_or_default()]);
        let _ = std::fs::remove_file(&path);
        loaded.map_err(|e| format!("{e} (is nftables installed? scripts/setup.sh installs it)"))?;
        // Window tracking would drop our windowed, never-retransmitting flows'
        // segments as out of window once the counters wrap; be liberal.
        exec(&["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_be_liberal=1"])?;
        exec(&["sysctl", "-qw", "net.netfilter.nf_conntrack_max=4194304"]).ok();
        for i in [c1, s1] {
            exec(&["sh", "-c", &format!("echo 2 > /sys/class/net/{i}/queues/rx-0/rps_cpus")])?;
        }
        Ok(())
    }

    /// `ip netns exec NS` + `args`.
    pub fn in_ns(ns: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    fn delete(&self) {
        for ns in [&self.gen_ns, &self.router_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
    }
}

impl Drop for VethTopo {
    fn drop(&mut self) {
        self.delete();
    }
}

/// EAL arguments for `net_af_xdp` ports on `ifaces` (one queue each).
pub fn af_xdp_eal(lcores: &str, file_prefix: &str, ifaces: &[String; 2]) -> Vec<String> {
    vec![
        "-l".into(),
        lcores.into(),
        "--no-pci".into(),
        "--in-memory".into(),
        format!("--file-prefix={file_prefix}"),
        "--log-level=lib.eal:error".into(),
        "--log-level=pmd.net.af_xdp:error".into(),
        format!("--vdev=net_af_xdp0,iface={}", ifaces[0]),
        format!("--vdev=net_af_xdp1,iface={}", ifaces[1]),
    ]
}

/// A temporary directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("gwbench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr in `log`.
    pub fn spawn(name: &str, cmd: Command, log: PathBuf) -> Result<Proc, String> {
        Self::spawn_with(name, cmd, log, Stdio::null())
    }

    /// As [`spawn`](Self::spawn), with `stdin`.
    pub fn spawn_with(name: &str, mut cmd: Command, log: PathBuf, stdin: Stdio) -> Result<Proc, String> {
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(stdin).stdout(file).stderr(err);
        let child = cmd.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc { child, name: name.into(), log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Closes the child's stdin (if it was piped).
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// SIGTERM, then waits up to `grace`; SIGKILL after that.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.close_stdin();
        if let Some(s) = self.exited() {
            return Some(s);
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// CPU seconds (user + system) of one thread or process, from its `stat`.
fn cpu_seconds(stat_path: &Path) -> Option<f64> {
    let s = std::fs::read_to_string(stat_path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The `stat` file of the worker lcore thread of `pid` (DPDK names it
/// `rte-worker-N`).
fn worker_thread_stat(pid: u32) -> Option<PathBuf> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim().starts_with("rte-worker") {
            return Some(t.path().join("stat"));
        }
    }
    None
}

pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub target: Target,
    pub target_label: String,
    pub load: Load,
    pub round: u32,
    pub result: Option<GenResult>,
    pub error: Option<String>,
    /// Share of a core the gateway's worker lcore thread got while the
    /// generator ran (it polls: 1.0 is a core of its own).
    pub worker_cpu_share: Option<f64>,
    /// 1-minute load average when the scenario started.
    pub load_average: f64,
    /// `gwctl stats` after the run (gateway targets).
    pub gateway_stats: Option<String>,
}

/// What the driver needs to know.
#[derive(Debug, Clone)]
pub struct Env {
    pub gatewayd: PathBuf,
    /// The plain forwarder, the reference (this crate's `l2fwd`).
    pub l2fwd: PathBuf,
    pub gwctl: PathBuf,
    pub gwbench: PathBuf,
    /// Copying memif (no hugepages) for the generator instead of zero-copy.
    pub copy_generator: bool,
    pub stop: Arc<AtomicBool>,
    pub lips: u8,
    pub verbose: bool,
    /// gatewayd's `"idle"`: what its worker does when a poll finds nothing.
    pub idle: IdleMode,
}

fn wait_for(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Env {
    fn gwctl(&self, socket: &Path, args: &[String]) -> Result<String, String> {
        self.gwctl_with_input(socket, args, "")
    }

    /// [`Self::gwctl`] with `input` on its standard input.
    fn gwctl_with_input(&self, socket: &Path, args: &[String], input: &str) -> Result<String, String> {
        let mut child = Command::new(&self.gwctl)
            .env("GATEWAYD_SOCKET", socket)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run gwctl: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(input.as_bytes()).map_err(|e| format!("gwctl's input: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("gwctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "gwctl {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs one scenario: starts the device under test, configures it, runs
    /// the generator against it, stops everything.
    pub fn run(&self, target: &Target, load: &Load, round: u32) -> Run {
        let mut run = Run {
            target: target.clone(),
            target_label: target.label(),
            load: load.clone(),
            round,
            result: None,
            error: None,
            worker_cpu_share: None,
            load_average: load_average(),
            gateway_stats: None,
        };
        match self.try_run(target, load, &mut run) {
            Ok(r) => run.result = Some(r),
            Err(e) => run.error = Some(e),
        }
        run
    }

    fn try_run(&self, target: &Target, load: &Load, run: &mut Run) -> Result<GenResult, String> {
        if self.stop.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        let tag = format!("{}-r{}", target.label().replace(' ', "-").to_lowercase(), run.round);
        let dir = TempDir::new(&tag).map_err(|e| format!("temporary directory: {e}"))?;
        let prefix = format!("gwb{}", std::process::id());
        let socket = dir.path().join("gatewayd.sock");
        // Declared before the processes, so it is torn down after they stop.
        let topo = if target.on_veth() {
            Some(VethTopo::create(&format!("gwb{}", std::process::id() % 100_000), *target == Target::KernelNat)?)
        } else {
            None
        };
        let capacity = conn_capacity(load.flows);
        let lips = lips_for(load.flows, self.lips);
        let write_config = |mut config: serde_json::Value| -> Result<PathBuf, String> {
            config["idle"] = json!(self.idle.to_string());
            let path = dir.path().join("gatewayd.json");
            std::fs::write(&path, serde_json::to_string_pretty(&config).expect("json")).map_err(|e| e.to_string())?;
            Ok(path)
        };
        // Bounded even if this driver dies without stopping it.
        let pair_args =
            |devs: &str| ["--seconds", "600", "--stats-interval", "3600", "--pair", devs, "--"].map(String::from);
        let mut dut = match (target, &topo) {
            (Target::Forwarder, _) => {
                let mut cmd = Command::new(&self.l2fwd);
                cmd.args(pair_args("net_memif0,net_memif1")).args(gateway_eal(dir.path(), &format!("{prefix}f")));
                Some(Proc::spawn("l2fwd", cmd, dir.path().join("dut.log"))?)
            }
            (Target::Gateway { .. }, _) => {
                let path = write_config(gateway_config(dir.path(), &format!("{prefix}g"), capacity))?;
                let mut cmd = Command::new(&self.gatewayd);
                cmd.arg("--config").arg(&path).arg("--socket").arg(&socket);
                Some(Proc::spawn("gatewayd", cmd, dir.path().join("dut.log"))?)
            }
            (Target::ForwarderXdp, Some(t)) => {
                let mut cmd = VethTopo::in_ns(&t.router_ns, &self.l2fwd);
                cmd.args(pair_args("net_af_xdp0,net_af_xdp1")).args(af_xdp_eal(
                    "0-1",
                    &format!("{prefix}f"),
                    &t.router_ifs,
                ));
                Some(Proc::spawn("l2fwd (af_xdp)", cmd, dir.path().join("dut.log"))?)
            }
            (Target::GatewayXdp, Some(t)) => {
                let eal = af_xdp_eal("0-1", &format!("{prefix}g"), &t.router_ifs);
                let path = write_config(gateway_config_for(eal, ["net_af_xdp0", "net_af_xdp1"], capacity))?;
                let mut cmd = VethTopo::in_ns(&t.router_ns, &self.gatewayd);
                cmd.arg("--config").arg(&path).arg("--socket").arg(&socket);
                Some(Proc::spawn("gatewayd (af_xdp)", cmd, dir.path().join("dut.log"))?)
            }
            _ => None,
        };
        if let Some(dut) = dut.as_mut() {
            let started =
                wait_for(Duration::from_secs(30), || dut.log_text().contains("running") || dut.exited().is_some());
            if !started || dut.exited().is_some() {
                return Err(format!("{} did not start:\n{}", dut.name, dut.log_text()));
            }
        }
        let sync_link = match target {
            Target::Gateway { sync: true, .. } => {
                Some(SyncLink::create(&format!("gwbs{}", std::process::id() % 100_000))?)
            }
            _ => None,
        };
        match target {
            Target::Gateway { method, scheduler, v6: true, .. } => {
                for args in gwctl_commands_v6(*method, scheduler, lips) {
                    self.gwctl(&socket, &args)?;
                }
            }
            Target::Gateway { method, scheduler, synproxy, checked, proxy_protocol, .. } => {
                for args in gwctl_commands(*method, scheduler, *synproxy, lips) {
                    self.gwctl(&socket, &args)?;
                }
                if *proxy_protocol {
                    let svc = format!("{VIP}:{VPORT}");
                    let edit = ["-E", "-t", &svc, "-s", scheduler, "--proxy-protocol", "v2"];
                    self.gwctl(&socket, &edit.map(String::from))?;
                }
                if *checked {
                    let (rules, check) = checked_service();
                    self.gwctl_with_input(&socket, &["-R".into()], &rules)?;
                    self.gwctl(&socket, &check)?;
                }
                if let Some(link) = &sync_link {
                    let start = ["--start-daemon", "master", "--mcast-interface", &link.name, "--syncid", "1"];
                    self.gwctl(&socket, &start.map(String::from))?;
                }
            }
            Target::GatewayXdp => {
                for args in gwctl_commands(Method::Fnat, "rr", false, lips) {
                    self.gwctl(&socket, &args)?;
                }
            }
            _ => {}
        }
        let worker_stat = dut.as_ref().and_then(|d| worker_thread_stat(d.pid()));
        let cpu0 = worker_stat.as_deref().and_then(cpu_seconds);
        let t0 = Instant::now();

        let mut cmd = match &topo {
            Some(t) => {
                let mut cmd = VethTopo::in_ns(&t.gen_ns, &self.gwbench);
                cmd.arg("gen").args(["--client", "net_af_xdp0", "--server", "net_af_xdp1"]);
                cmd
            }
            None => {
                let mut cmd = Command::new(&self.gwbench);
                cmd.arg("gen");
                cmd
            }
        };
        cmd.args(["--mode", &load.mode])
            .args(["--flows", &load.flows.to_string()])
            .args(["--seconds", &load.seconds.to_string()])
            .args(["--window", &load.window.to_string()])
            .args(["--payload", &load.payload.to_string()])
            .args(["--gateway-mac", GW_CLIENT_MAC, "--vport", &VPORT.to_string()]);
        let vip = if matches!(target, Target::Gateway { v6: true, .. }) { VIP6.to_string() } else { VIP.to_string() };
        cmd.args(["--vip", &vip]);
        if load.oneway {
            cmd.arg("--oneway");
        }
        // --hold: the generator keeps its links open after reporting until
        // we close its stdin, so the device under test (a memif server that
        // polls) stops first; a memif server whose peer leaves while it polls
        // can fault (see gen::run).
        cmd.arg("--hold");
        match &topo {
            Some(t) => cmd.arg("--").args(af_xdp_eal("0", &format!("{prefix}c"), &t.gen_ifs)),
            None => cmd.arg("--").args(generator_eal(dir.path(), &format!("{prefix}c"), self.copy_generator)),
        };
        let mut gen = Proc::spawn_with("gwbench gen", cmd, dir.path().join("gen.log"), Stdio::piped())?;
        // The generator bounds itself (handshakes 60 s, the measured phase,
        // drains); this is the backstop.
        let limit = Duration::from_secs_f64(load.seconds + 120.0);
        let reported = |gen: &Proc| gen.log_text().lines().any(|l| l.starts_with('{'));
        loop {
            if reported(&gen) {
                break;
            }
            if let Some(status) = gen.exited() {
                let dut_log = dut.as_ref().map(Proc::log_text).unwrap_or_default();
                return Err(format!(
                    "generator failed ({status}):\n{}\n--- device under test:\n{dut_log}",
                    gen.log_text()
                ));
            }
            if self.stop.load(Ordering::Relaxed) || t0.elapsed() > limit {
                return Err(if self.stop.load(Ordering::Relaxed) {
                    "interrupted".into()
                } else {
                    "generator timed out".into()
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let elapsed = t0.elapsed().as_secs_f64();
        if let (Some(a), Some(b)) = (cpu0, worker_stat.as_deref().and_then(cpu_seconds)) {
            run.worker_cpu_share = Some((b - a) / elapsed);
        }
        if let Some(dut) = dut.as_mut() {
            if let Some(status) = dut.exited() {
                return Err(format!("{} exited during the run ({status}):\n{}", dut.name, dut.log_text()));
            }
        }
        if matches!(target, Target::Gateway { .. } | Target::GatewayXdp) {
            let mut stats = self.gwctl(&socket, &["stats".into()]).unwrap_or_else(|e| e);
            if sync_link.is_some() {
                // What the sync master sent (records, datagrams, drops), beside the workers'.
                stats += &self.gwctl(&socket, &["sync".into()]).unwrap_or_else(|e| e);
            }
            if matches!(target, Target::Gateway { checked: true, .. }) {
                // How many of the checked servers the probes found up at the end.
                let listing = self.gwctl(&socket, &["--health".into(), "-L".into()]).unwrap_or_else(|e| e);
                let up = listing.lines().filter(|l| l.split_whitespace().nth(4) == Some("up")).count();
                stats += &format!("checked servers up at the end: {up} of {CHECKED_SERVERS}\n");
            }
            run.gateway_stats = Some(stats);
        }
        if *target == Target::KernelNat {
            if let Some(t) = &topo {
                let out = Command::new("ip")
                    .args(["netns", "exec", &t.router_ns, "cat", "/proc/sys/net/netfilter/nf_conntrack_count"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                run.gateway_stats = Some(format!("conntrack entries: {out}"));
            }
        }
        // The device under test stops first, then the generator.
        let dut_status = dut.as_mut().map(|d| d.stop(Duration::from_secs(10)));
        gen.close_stdin();
        let gen_status = gen.stop(Duration::from_secs(10));
        let log = gen.log_text();
        if self.verbose {
            eprintln!("{log}");
        }
        let line = log.lines().find(|l| l.starts_with('{'));
        let dut_log = dut.as_ref().map(Proc::log_text).unwrap_or_default();
        let result = match line.map(serde_json::from_str::<GenResult>) {
            Some(Ok(r)) => r,
            _ => return Err(format!("generator failed ({gen_status:?}):\n{log}\n--- device under test:\n{dut_log}")),
        };
        if let (Some(d), Some(status)) = (&dut, dut_status) {
            if !status.is_some_and(|s| s.success()) {
                run.error = Some(format!("{} exit status {status:?}:\n{dut_log}", d.name));
            }
        }
        drop(topo);
        Ok(result)
    }
}

/// One line of a figure: a measurement and its reference from the same run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub figure: String,
    pub name: String,
    pub flows: u32,
    /// Best round's rate (packets or connections per second).
    pub rate: f64,
    pub unit: String,
    /// Best round of the reference (the plain forwarder, same load).
    pub reference_rate: Option<f64>,
    pub ratio: Option<f64>,
    /// Packets the gateway forwards per answer (2 when both ways pass it).
    pub gateway_packets_per_answer: u32,
    pub lost: u64,
    pub rounds: u32,
    /// Median over the rounds, of the subject and of the reference.
    pub median_rate: f64,
    pub reference_median_rate: Option<f64>,
    /// Share of a core the device's worker thread got in the best round
    /// (it polls, so below 1.0 means other processes took its core).
    pub worker_cpu_share: Option<f64>,
    /// The generator's idle fraction in the best round (see
    /// `GenResult::gen_idle`): near 0 means the generator, not the device,
    /// set the rate.
    pub gen_idle: Option<f64>,
    /// Where the gateway's worker spent its cycles in the best round, from
    /// its `gwctl stats` (absent for the other devices and older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles: Option<PacketCycles>,
    pub note: String,
}

/// A received packet's cycles through the gateway's worker, over the run
/// (`gwctl stats`' `cycles a packet` line): in all, then in the pipeline, in
/// sending, and in receiving and the rest of the poll loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketCycles {
    pub total: u64,
    pub pipeline: u64,
    pub send: u64,
    pub rest: u64,
}

impl PacketCycles {
    /// The first worker's line in `gwctl stats` output, if it has one (the
    /// benchmark's gateway has one worker).
    pub fn from_stats(stats: &str) -> Option<PacketCycles> {
        let line = stats.lines().find_map(|l| l.trim().strip_prefix("cycles a packet "))?;
        let mut numbers = line.split(", ").map(|part| part.rsplit(' ').next()?.parse::<u64>().ok());
        let mut next = || numbers.next().flatten();
        let cycles = PacketCycles { total: next()?, pipeline: next()?, send: next()?, rest: next()? };
        numbers.next().is_none().then_some(cycles)
    }
}

/// Median rate of the successful runs for `target` and `load`.
pub fn median(runs: &[Run], target: &Target, load: &Load) -> Option<f64> {
    let mut rates: Vec<f64> = runs
        .iter()
        .filter(|r| &r.target == target && &r.load == load)
        .filter_map(|r| Some(r.result.as_ref()?.rate))
        .collect();
    if rates.is_empty() {
        return None;
    }
    rates.sort_by(f64::total_cmp);
    let n = rates.len();
    Some(if n % 2 == 1 { rates[n / 2] } else { (rates[n / 2 - 1] + rates[n / 2]) / 2.0 })
}

/// Best (highest-rate) successful run among `runs` for `target` and `load`.
pub fn best<'a>(runs: &'a [Run], target: &Target, load: &Load) -> Option<&'a Run> {
    runs.iter()
        .filter(|r| &r.target == target && &r.load == load && r.result.is_some())
        .max_by(|a, b| rate(a).total_cmp(&rate(b)))
}

fn rate(r: &Run) -> f64 {
    r.result.as_ref().map_or(0.0, |g| g.rate)
}

/// Exact instruction counts from the callgrind scripts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Instructions {
    /// measure_insns.sh: path -> (exact classify + rewrite, whole-program diff).
    pub xmit: BTreeMap<String, (u64, u64)>,
    /// measure_pipeline.sh: established, reply, new -> instructions/packet.
    pub pipeline: BTreeMap<String, u64>,
    /// measure_conn.sh: setup (per new connection), lookup, packet.
    pub conn: BTreeMap<String, u64>,
    pub raw: BTreeMap<String, String>,
}

/// Parses `measure_insns.sh` output.
pub fn parse_xmit_insns(text: &str) -> BTreeMap<String, (u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [path, exact, diff] => Some((path.to_string(), (exact.parse().ok()?, diff.parse().ok()?))),
                _ => None,
            }
        })
        .collect()
}

/// Parses `measure_pipeline.sh` output (`path: N instructions/packet`).
pub fn parse_pipeline_insns(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (path, rest) = l.split_once(':')?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            rest.contains("instructions/packet").then(|| (path.trim().to_string(), n))
        })
        .collect()
}

/// Parses `measure_conn.sh` output (`setup:  N instructions/connection` ...).
pub fn parse_conn_insns(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (what, rest) = l.split_once(':')?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            rest.contains("instructions").then(|| (what.trim().to_string(), n))
        })
        .collect()
}

/// The connection-table figures at one table size (conn_table bench report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableFigure {
    pub live: u64,
    pub bytes_per_conn: u64,
    pub lookups_mps: f64,
    pub burst_lookups_mps: f64,
    pub ns_per_insert: f64,
}

/// Parses the conn_table bench's report lines
/// (`  1000000 live: 72 bytes/conn (...), fill 0.31 s (310 ns/insert), 12.3 M lookups/s (...), in bursts of 32: 20.1 M/s (...)`).
pub fn parse_conn_table(text: &str) -> Vec<TableFigure> {
    let num_before = |s: &str, marker: &str| -> Option<f64> {
        let at = s.find(marker)?;
        s[..at].split_whitespace().last()?.trim_start_matches('(').parse().ok()
    };
    text.lines()
        .filter(|l| l.contains(" live: "))
        .filter_map(|l| {
            let live = l.split_whitespace().next()?.parse().ok()?;
            let burst = l.split("in bursts of 32:").nth(1)?;
            Some(TableFigure {
                live,
                bytes_per_conn: num_before(l, "bytes/conn")? as u64,
                lookups_mps: num_before(l, "M lookups/s")?,
                burst_lookups_mps: num_before(burst, "M/s")?,
                ns_per_insert: num_before(l, "ns/insert").unwrap_or(f64::NAN),
            })
        })
        .collect()
}

/// Runs a shell script of the repository and returns its stdout.
pub fn run_script(repo: &Path, script: &str, target_dir: &Path) -> Result<String, String> {
    let out = Command::new("sh")
        .arg(repo.join(script))
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{script}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{script} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs the conn_table bench's report.
pub fn run_conn_table(repo: &Path, target_dir: &Path) -> Result<String, String> {
    let mut child = Command::new("cargo")
        .args(["bench", "-p", "gateway", "--no-default-features", "--bench", "conn_table"])
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cargo bench conn_table: {e}"))?;
    let mut text = String::new();
    child.stdout.take().map(|mut s| s.read_to_string(&mut text));
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("cargo bench conn_table failed ({status})"));
    }
    Ok(text)
}

/// What the machine is.
pub fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model =
        cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("").trim();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let cmd = |c: &str, a: &[&str]| {
        Command::new(c)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": mem_kib / (1 << 20),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "dpdk": cmd("pkg-config", &["--modversion", "libdpdk"]),
        "hugepages": read("/proc/sys/vm/nr_hugepages").trim(),
        "link": "net_memif between two DPDK processes (no NIC)",
        "layout": "gatewayd: main lcore 0 (control), 1 worker on lcore 1; generator: 1 lcore on core 0",
        "date": cmd("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "commit": cmd("git", &["rev-parse", "--short", "HEAD"]),
    })
}

/// Formats rows as the short table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<14} {:>8} {:>13} {:>13} {:>6} {:>13} {:>6} {:>5} {:>5} {:>5} {:>9}",
        "figure",
        "subject",
        "flows",
        "best",
        "reference",
        "ratio",
        "median",
        "ratio",
        "lost",
        "cpu",
        "idle",
        "cyc/pipe"
    );
    let pct = |x: Option<f64>| x.map(|x| format!("{:.0}%", x * 100.0)).unwrap_or_else(|| "-".into());
    for r in rows {
        let (scale, unit) = if r.unit == "pps" { (1e6, "Mpps") } else { (1e3, "k/s") };
        let fmt = |v: f64| format!("{:.3} {unit}", v / scale);
        let _ = writeln!(
            out,
            "{:<22} {:<14} {:>8} {:>13} {:>13} {:>6} {:>13} {:>6} {:>5} {:>5} {:>5} {:>9}",
            r.figure,
            r.name,
            r.flows,
            fmt(r.rate),
            r.reference_rate.map(fmt).unwrap_or_else(|| "-".into()),
            pct(r.ratio),
            fmt(r.median_rate),
            pct(r.reference_median_rate.filter(|&m| m > 0.0).map(|m| r.median_rate / m)),
            r.lost,
            pct(r.worker_cpu_share),
            pct(r.gen_idle),
            r.cycles.map(|c| format!("{}/{}", c.total, c.pipeline)).unwrap_or_else(|| "-".into()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packets_cycles_are_read_from_gwctl_stats() {
        let stats = "worker 0 (lcore 1)\n    RX: packets 30 bytes 3000\n    \
                     poll busy 75.3 % of 4.8 s, bursts 427932 (32.0 packets a burst)\n    \
                     cycles a packet 645, pipeline 306, send 148, receive and the rest 190\n";
        assert_eq!(
            PacketCycles::from_stats(stats),
            Some(PacketCycles { total: 645, pipeline: 306, send: 148, rest: 190 })
        );
        // No line (a worker that received nothing), or one cut short or with more parts.
        assert_eq!(PacketCycles::from_stats("worker 0 (lcore 1)\n    RX: packets 0 bytes 0\n"), None);
        assert_eq!(PacketCycles::from_stats("    cycles a packet 645, pipeline 306, send 148\n"), None);
        assert_eq!(PacketCycles::from_stats("    cycles a packet 6, pipeline 3, send 1, rest 1, more 1\n"), None);
        assert_eq!(PacketCycles::from_stats("    cycles a packet x, pipeline 3, send 1, rest 1\n"), None);
    }

    #[test]
    fn fnat_setup_is_ipvsadm_syntax() {
        let cmds = gwctl_commands(Method::Fnat, "wlc", false, 2);
        let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(lines[0], "-A -t 10.0.0.100:80 -s wlc");
        assert_eq!(lines[1], "-P -t 10.0.0.100:80 -z 192.168.1.100 -F servers");
        assert_eq!(lines[3], "-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -b");
        assert_eq!(lines.len(), 1 + 2 + usize::from(REAL_SERVERS));
        let dr = gwctl_commands(Method::Dr, "mh", true, 2);
        assert_eq!(dr[0].join(" "), "-A -t 10.0.0.100:80 -s mh -j enable");
        assert_eq!(dr[1].join(" "), "-a -t 10.0.0.100:80 -r 192.168.1.10:80 -g");
    }

    #[test]
    fn ipv6_setup_adds_addresses_before_the_service() {
        let cmds = gwctl_commands_v6(Method::Fnat, "rr", 2);
        let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(lines[0], "addr add 2001:db8::fe/64 dev client");
        assert_eq!(lines[3], "route add default via 2001:db8::1 dev client");
        assert!(lines.contains(&"neigh add 2001:db8:1::13 lladdr 02:00:00:00:02:02 dev servers".to_string()));
        let service = lines.iter().position(|l| l == "-A -t [2001:db8::100]:80 -s rr").unwrap();
        assert!(lines[..service].iter().all(|l| !l.starts_with('-')));
        assert!(lines.contains(&"-P -t [2001:db8::100]:80 -z 2001:db8:1::101 -F servers".to_string()));
        assert_eq!(lines.last().unwrap(), "-a -t [2001:db8::100]:80 -r [2001:db8:1::13]:8080 -b");
        assert_eq!(Target::gateway_v6(Method::Fnat, "rr").label(), "FNAT rr IPv6");
    }

    /// Every point of the default sweep fits the gateway it runs against and
    /// the generator: a connection slot, a local port and a client address
    /// and port for each flow.
    #[test]
    fn the_sweeps_flows_fit_the_table_and_the_local_ports() {
        for flows in crate::suite::SuiteOptions::default().sweep {
            assert!(conn_capacity(flows) >= flows, "{flows} flows: capacity {}", conn_capacity(flows));
            let lips = lips_for(flows, DEFAULT_LIPS);
            assert!(u32::from(lips) * PORTS_PER_LIP >= flows, "{flows} flows: {lips} local addresses");
            assert!(u64::from(flows) <= crate::packet::Flows::CLIENTS.capacity(), "{flows} client addresses and ports");
        }
        assert_eq!(PORTS_PER_LIP, 63487);
        assert_eq!((conn_capacity(4_000_000), lips_for(4_000_000, DEFAULT_LIPS)), (1 << 22, 64));
        assert_eq!((conn_capacity(1_000_000), lips_for(1_000_000, DEFAULT_LIPS)), (1 << 21, DEFAULT_LIPS));
        assert_eq!((conn_capacity(1000), lips_for(1000, 2)), (1 << 16, 2), "--lips is kept when it is enough");
    }

    #[test]
    fn the_gateway_config_names_every_real_server() {
        let c = gateway_config(Path::new("/tmp/x"), "p", 65536);
        assert_eq!(c["neighbours"].as_array().unwrap().len(), 1 + usize::from(REAL_SERVERS));
        assert!(c["eal"][7].as_str().unwrap().contains("role=server,socket=/tmp/x/client.sock"));
        let g = generator_eal(Path::new("/tmp/x"), "q", false);
        assert!(g.iter().any(|a| a.contains("role=client,socket=/tmp/x/server.sock")));
    }

    #[test]
    fn script_outputs_parse() {
        let xmit = "path              exact   diff   (reset alone: 30)\nclassify             60     90\nfnat_in             247    280\n";
        assert_eq!(parse_xmit_insns(xmit)["fnat_in"], (247, 280));
        let pipe = "established: 520 instructions/packet (N=20000)\nnew: 2100 instructions/packet (N=20000)\n";
        assert_eq!(parse_pipeline_insns(pipe)["new"], 2100);
        let conn = "setup:  900 instructions/connection\nlookup: 60 instructions (loop 80, key generation 20)\n";
        let c = parse_conn_insns(conn);
        assert_eq!((c["setup"], c["lookup"]), (900, 60));
        let table = "entry: 64 bytes (IPv4), 88 bytes (IPv6)\n  1000000 live: 72 bytes/conn (entry 64 + index 8), fill 0.31 s (310 ns/insert), 12.3 M lookups/s (81.3 ns/lookup), in bursts of 32: 20.1 M/s (49.8 ns) [3]\n";
        assert_eq!(
            parse_conn_table(table),
            vec![TableFigure {
                live: 1_000_000,
                bytes_per_conn: 72,
                lookups_mps: 12.3,
                burst_lookups_mps: 20.1,
                ns_per_insert: 310.0
            }]
        );
    }

    #[test]
    fn medians_and_bests_pick_the_right_runs() {
        let load = Load { mode: "established".into(), flows: 10, seconds: 1.0, window: 1, payload: 6, oneway: false };
        let run = |rate: f64, target: Target| Run {
            target_label: target.label(),
            target,
            load: load.clone(),
            round: 0,
            result: Some(GenResult { rate, ..GenResult::default() }),
            error: None,
            worker_cpu_share: None,
            load_average: 0.0,
            gateway_stats: None,
        };
        let fnat = Target::gateway(Method::Fnat, "rr");
        let runs =
            vec![run(3.0, fnat.clone()), run(1.0, fnat.clone()), run(2.0, fnat.clone()), run(9.0, Target::Forwarder)];
        assert_eq!(median(&runs, &fnat, &load), Some(2.0));
        assert_eq!(best(&runs, &fnat, &load).and_then(|r| r.result.as_ref()).map(|g| g.rate), Some(3.0));
        assert_eq!(median(&runs[..2], &fnat, &load), Some(2.0));
        assert_eq!(median(&runs, &Target::gateway(Method::Nat, "rr"), &load), None);
    }

    #[test]
    fn temp_dirs_go_away() {
        let p = {
            let d = TempDir::new("unit").unwrap();
            std::fs::write(d.path().join("f"), "x").unwrap();
            d.path().to_path_buf()
        };
        assert!(!p.exists());
    }
}
