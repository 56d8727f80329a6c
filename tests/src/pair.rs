//! Two directors side by side, each a gatewayd in a network namespace of its
//! own with kernel interfaces on both ports, sharing one L2 segment with the
//! client and one with the real servers (a Linux bridge in each of those
//! namespaces), as an active/backup pair is cabled:
//!
//! ```text
//!   client ns                      director ns 1 (gatewayd, gwk0, gwk1)       servers ns
//!   bridge 10.0.0.1 --tap-- client 10.0.0.251 | servers 192.168.1.251 --tap-- bridge 192.168.1.10..
//!                   --tap-- client 10.0.0.252 | servers 192.168.1.252 --tap--
//!                                  director ns 2 (gatewayd, gwk0, gwk1)
//!   floating, moved by keepalived: VIP 10.0.0.100 (gwk0)
//!   each director's own FNAT local address, on its gwk1 for good: 192.168.1.201, 192.168.1.202
//! ```
//!
//! The local addresses do not float: a director that takes over allocates
//! local ports from the start of the range, as the other did, and the real
//! servers may still hold the other director's connections on those very
//! (address, port) pairs (in flight when it died, or in TIME_WAIT): with one
//! shared local address, some of the new master's first connections fail.
//!
//! A data tap's kernel end carries its DPDK port's MAC; enslaved to a bridge
//! as it is, the bridge would take the frames addressed to the gateway for
//! itself. Each gets another MAC before it joins ([`tap_end_mac`]), and
//! the ports keep theirs ([`port_mac`], given to net_tap and checked in
//! `gwctl link`).
//!
//! Everything runs under the same process-wide lock as [`Topology`](crate::Topology)
//! and is torn down in `Drop`: keepalived first (it takes its addresses
//! away), then gatewayd, then the namespaces.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::MutexGuard;
use std::time::Duration;

use crate::topology::{
    eal_args, gatewayd_config, gwctl_at, gwctl_ok, nginx_in, python_http_in, serial, spawn_gatewayd, PortConfig, Stats,
    KERNEL_CLIENT, KERNEL_SERVERS, VIP,
};
use crate::{tag, wait_until, Daemon, Netns};

/// The VRRP router id of the pair's one instance.
pub const VRID: u8 = 51;

/// Director `n`'s (1 or 2) address on the client segment.
pub fn director_client_addr(n: u8) -> String {
    format!("10.0.0.{}", 250 + n)
}

/// Director `n`'s address on the servers' segment.
pub fn director_servers_addr(n: u8) -> String {
    format!("192.168.1.{}", 250 + n)
}

/// Director `n`'s own FNAT local address, on its servers-side kernel interface.
pub fn director_lip(n: u8) -> String {
    format!("192.168.1.{}", 200 + n)
}

/// The MAC of director `n`'s DPDK port `port` (0 client, 1 servers), and of
/// its kernel interface on that port.
pub fn port_mac(n: u8, port: u8) -> String {
    format!("02:00:00:00:{n:02x}:{port:02x}")
}

/// The MAC given to the kernel end of director `n`'s data tap `port` before it
/// joins a bridge.
pub fn tap_end_mac(n: u8, port: u8) -> String {
    format!("02:00:00:01:{n:02x}:{port:02x}")
}

#[derive(Debug, Clone)]
pub struct PairOptions {
    /// Real-server addresses on the servers' bridge: 192.168.1.10 ..
    /// 192.168.1.(10+n-1); 0 for none (real servers of the test's own).
    pub servers: u8,
    /// The `"services"` director `n` starts with (ipvsadm rules), given `n`.
    pub services: fn(u8) -> Vec<String>,
    /// Further top-level members of both configuration files (JSON text without braces).
    pub extra_config: String,
}

/// One of the pair's two L2 segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Client,
    Servers,
}

/// One director: its namespace, gatewayd and keepalived.
pub struct Director {
    /// 1 or 2.
    pub n: u8,
    keepalived: Option<Keepalived>,
    gatewayd: Option<Daemon>,
    pub ns: Netns,
    dir: PathBuf,
    socket: PathBuf,
    /// The data taps' names: client side, servers side.
    client_tap: String,
    servers_tap: String,
}

impl Director {
    /// gatewayd's pid (0 when it is not running).
    pub fn gatewayd_pid(&self) -> u32 {
        self.gatewayd.as_ref().map_or(0, Daemon::id)
    }

    pub fn gatewayd_log(&self) -> String {
        self.gatewayd.as_ref().map(Daemon::log).unwrap_or_default()
    }

    pub fn keepalived_log(&self) -> String {
        self.keepalived.as_ref().map(|k| k.daemon.log()).unwrap_or_default()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn gwctl_output(&self, args: &[&str]) -> Output {
        gwctl_at(&self.socket, args, None)
    }

    /// Runs gwctl on this director, panicking when it fails.
    pub fn gwctl(&self, args: &[&str]) -> String {
        gwctl_ok(&self.socket, args)
    }

    pub fn stats(&self) -> Stats {
        Stats(self.gwctl(&["stats"]))
    }

    /// The IPv4 addresses of `ifname` in this director's namespace (none
    /// while it does not exist: gatewayd is down).
    pub fn kernel_addrs(&self, ifname: &str) -> Vec<String> {
        let out = self.ns.output("ip", &["-4", "-o", "addr", "show", "dev", ifname]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
            .map(|cidr| cidr.split('/').next().unwrap_or(cidr).to_owned())
            .collect()
    }

    /// Whether `addr` is on this director's kernel interface `ifname`.
    pub fn carries(&self, ifname: &str, addr: &str) -> bool {
        self.kernel_addrs(ifname).iter().any(|a| a == addr)
    }
}

/// keepalived in a director's namespace, in the foreground, with its own
/// configuration and pid files.
struct Keepalived {
    daemon: Daemon,
    /// The VRRP child's pid file.
    vrrp_pid: PathBuf,
    conf: PathBuf,
}

impl Keepalived {
    /// The VRRP child's pid, while it runs with our configuration (a
    /// recycled pid is not ours).
    fn vrrp_child(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.vrrp_pid).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let conf = self.conf.to_str()?;
        String::from_utf8_lossy(&cmdline).contains(conf).then_some(pid)
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        // SIGTERM to the parent stops the VRRP child too; a child whose
        // parent was killed stops by itself. Whatever remains is killed.
        self.daemon.terminate(Duration::from_secs(5));
        if wait_until(Duration::from_secs(3), || self.vrrp_child().is_none()) {
            return;
        }
        if let Some(pid) = self.vrrp_child() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        drop(self.keepalived.take());
        drop(self.gatewayd.take());
    }
}

/// The running pair (see the module docs).
pub struct Pair {
    id: String,
    opts: PairOptions,
    pub directors: [Director; 2],
    pub client: Netns,
    pub servers: Netns,
    /// The bridges of the client and the servers' segments (in their namespaces).
    pub client_bridge: String,
    pub servers_bridge: String,
    dir: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Pair {
    /// Builds the pair with both gatewayd running (no keepalived yet);
    /// `short` (at most 3 characters) keeps its names apart from other tests.
    pub fn start(short: &str, opts: PairOptions) -> Pair {
        assert!(short.len() <= 3);
        let serial = serial();
        let id = format!("gwt{}{short}", tag());
        let dir = std::env::temp_dir().join(format!("{id}-work"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("work directory");
        let client = Netns::new(&format!("{id}-c"));
        let servers = Netns::new(&format!("{id}-s"));
        let (client_bridge, servers_bridge) = (format!("{id}cb"), format!("{id}sb"));
        for (ns, bridge) in [(&client, &client_bridge), (&servers, &servers_bridge)] {
            ns.ip(&["link", "add", bridge, "type", "bridge", "forward_delay", "0"]);
            ns.ip(&["link", "set", bridge, "up"]);
        }
        client.ip(&["addr", "add", "10.0.0.1/24", "dev", &client_bridge]);
        for i in 0..opts.servers {
            servers.ip(&["addr", "add", &format!("192.168.1.{}/24", 10 + i), "dev", &servers_bridge]);
        }
        let director = |n: u8| {
            let ddir = dir.join(format!("d{n}"));
            std::fs::create_dir_all(&ddir).expect("director directory");
            Director {
                n,
                keepalived: None,
                gatewayd: None,
                ns: Netns::new(&format!("{id}-d{n}")),
                socket: ddir.join("gatewayd.sock"),
                dir: ddir,
                client_tap: format!("{id}{n}c"),
                servers_tap: format!("{id}{n}s"),
            }
        };
        let directors = [director(1), director(2)];
        let mut pair =
            Pair { id, opts, directors, client, servers, client_bridge, servers_bridge, dir, _serial: serial };
        for n in [1, 2] {
            pair.start_gatewayd(n);
        }
        pair
    }

    pub fn director(&self, n: u8) -> &Director {
        &self.directors[usize::from(n - 1)]
    }

    fn director_mut(&mut self, n: u8) -> &mut Director {
        &mut self.directors[usize::from(n - 1)]
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A directory for files of this test, removed with the pair.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts director `n`'s gatewayd in its namespace and cables its data
    /// taps into the two segments; waits until the client reaches it.
    pub fn start_gatewayd(&mut self, n: u8) {
        self.start_gatewayd_with_env(n, &[]);
    }

    /// As [`Pair::start_gatewayd`], with environment variables for gatewayd
    /// (`FAILPOINTS` in a build with the gateway's `failpoints` feature).
    pub fn start_gatewayd_with_env(&mut self, n: u8, env: &[(String, String)]) {
        let d = self.director(n);
        assert!(d.gatewayd.is_none(), "director {n}'s gatewayd runs already");
        let (ct, st) = (d.client_tap.clone(), d.servers_tap.clone());
        let vdevs = vec![
            format!("--vdev=net_tap0,iface={ct},mac={}", port_mac(n, 0)),
            format!("--vdev=net_tap1,iface={st},mac={}", port_mac(n, 1)),
        ];
        let ports = [
            PortConfig {
                device: "net_tap0",
                name: "client",
                cidr: &format!("{}/24", director_client_addr(n)),
                kernel: Some(KERNEL_CLIENT),
                mtu: None,
            },
            PortConfig {
                device: "net_tap1",
                name: "servers",
                cidr: &format!("{}/24", director_servers_addr(n)),
                kernel: Some(KERNEL_SERVERS),
                mtu: None,
            },
        ];
        // Two directors, keepalived and the clients share a small machine:
        // idle workers sleep rather than spin.
        let config = gatewayd_config(
            &eal_args(&format!("{}d{n}", self.id), 1, vdevs),
            &ports,
            65536,
            &(self.opts.services)(n),
            "sleep",
            &self.opts.extra_config,
        );
        let path = d.dir.join("gatewayd.json");
        std::fs::write(&path, config).expect("write the configuration");
        let gatewayd = spawn_gatewayd(&format!("{}-d{n}-gatewayd", self.id), Some(&d.ns), &path, &d.socket, env);
        self.director_mut(n).gatewayd = Some(gatewayd);
        let d = self.director(n);
        for (port, tap, ns, bridge) in
            [(0, &ct, &self.client, &self.client_bridge), (1, &st, &self.servers, &self.servers_bridge)]
        {
            ns.take(Some(&d.ns), tap);
            ns.ip(&["link", "set", tap, "address", &tap_end_mac(n, port)]);
            ns.ip(&["link", "set", tap, "master", bridge]);
            ns.ip(&["link", "set", tap, "up"]);
        }
        // The DPDK ports kept their own MACs, and their kernel interfaces carry them.
        let links = d.gwctl(&["link"]);
        for port in [0, 1] {
            assert!(links.contains(&format!("link/ether {}", port_mac(n, port))), "director {n}: {links}");
        }
        for (port, kernel) in [(0, KERNEL_CLIENT), (1, KERNEL_SERVERS)] {
            let out = d.ns.ip(&["-o", "link", "show", "dev", kernel]);
            let line = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(line.contains(&format!("link/ether {}", port_mac(n, port))), "director {n}'s {kernel}: {line}");
        }
        // The director's own local address, held for good (as an operator's
        // `ExecStartPost=ip addr add ...` would).
        d.ns.ip(&["addr", "add", &format!("{}/32", director_lip(n)), "dev", KERNEL_SERVERS]);
        let addr = director_client_addr(n);
        assert!(
            wait_until(Duration::from_secs(15), || self
                .client
                .output("ping", &["-c", "1", "-W", "1", &addr])
                .status
                .success()),
            "the client does not reach director {n} at {addr}; gatewayd log:\n{}",
            d.gatewayd_log()
        );
    }

    /// Kills director `n`'s gatewayd with SIGKILL (a crash); its taps and
    /// kernel interfaces vanish with it.
    pub fn kill_gatewayd(&mut self, n: u8) -> Option<ExitStatus> {
        let mut gatewayd = self.director_mut(n).gatewayd.take().expect("gatewayd runs");
        gatewayd.kill()
    }

    /// Stops director `n`'s gatewayd with SIGTERM, asserting a clean exit.
    pub fn stop_gatewayd(&mut self, n: u8) -> String {
        let mut gatewayd = self.director_mut(n).gatewayd.take().expect("gatewayd runs");
        let status = gatewayd.terminate(Duration::from_secs(15)).expect("gatewayd stops on SIGTERM");
        let log = gatewayd.log();
        assert!(status.success(), "director {n}'s gatewayd exit status {status}:\n{log}");
        assert!(!log.contains("not returned"), "mbufs leaked:\n{log}");
        log
    }

    /// director `n`'s keepalived.conf: one VRRP instance on the client
    /// segment's kernel interface, whose `virtual_ipaddress` is the VIP there.
    pub fn keepalived_conf(n: u8, state: &str, priority: u8) -> String {
        format!(
            "global_defs {{\n    router_id director{n}\n}}\n\
             vrrp_instance gateway {{\n    state {state}\n    interface {KERNEL_CLIENT}\n    \
             virtual_router_id {VRID}\n    priority {priority}\n    advert_int 1\n    \
             virtual_ipaddress {{\n        {VIP}/32 dev {KERNEL_CLIENT}\n    }}\n}}\n"
        )
    }

    /// Starts keepalived in director `n`'s namespace with `conf`, in the
    /// foreground, logging to its console, with its own pid files.
    pub fn start_keepalived(&mut self, n: u8, conf: &str) {
        let d = self.director(n);
        assert!(d.keepalived.is_none(), "director {n}'s keepalived runs already");
        let path = |name: &str| d.dir.join(name).to_str().expect("UTF-8 path").to_owned();
        let (conf_path, pid, vrrp_pid, checkers_pid) =
            (path("keepalived.conf"), path("keepalived.pid"), path("vrrp.pid"), path("checkers.pid"));
        std::fs::write(&conf_path, conf).expect("write keepalived.conf");
        let _ = std::fs::remove_file(&vrrp_pid);
        let daemon = d.ns.spawn(
            &format!("{}-d{n}-keepalived", self.id),
            "keepalived",
            &["-n", "-l", "-D", "-f", &conf_path, "-p", &pid, "-r", &vrrp_pid, "-c", &checkers_pid],
        );
        let keepalived = Keepalived { daemon, vrrp_pid: PathBuf::from(vrrp_pid), conf: PathBuf::from(&conf_path) };
        assert!(
            wait_until(Duration::from_secs(10), || keepalived.vrrp_child().is_some()
                && keepalived.daemon.log().contains("Startup complete")),
            "director {n}'s keepalived did not start:\n{}",
            keepalived.daemon.log()
        );
        self.director_mut(n).keepalived = Some(keepalived);
    }

    /// Kills director `n`'s keepalived (its main process) with SIGKILL. Its
    /// VRRP child, told of its parent's death, gives up mastership (priority
    /// 0) and removes its addresses, as after any crash of keepalived's parent.
    pub fn kill_keepalived(&mut self, n: u8) {
        let mut k = self.director_mut(n).keepalived.take().expect("keepalived runs");
        k.daemon.kill();
        // The Drop of `k` waits for the VRRP child to finish.
    }

    /// Which directors carry the VIP on their kernel interface now.
    pub fn vip_carriers(&self) -> Vec<u8> {
        self.directors.iter().filter(|d| d.gatewayd.is_some() && d.carries(KERNEL_CLIENT, VIP)).map(|d| d.n).collect()
    }

    /// The MACs that answer ARP for `addr` on `segment` (arping from the
    /// client or a real server, three requests).
    pub fn arp_answers(&self, segment: Segment, addr: &str) -> Vec<String> {
        let (ns, bridge) = match segment {
            Segment::Client => (&self.client, &self.client_bridge),
            Segment::Servers => (&self.servers, &self.servers_bridge),
        };
        let out = ns.output("arping", &["-c", "3", "-w", "4", "-I", bridge, addr]);
        // "Unicast reply from 10.0.0.100 [02:00:00:00:01:00]  0.711ms"
        let mut macs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("reply from"))
            .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_ascii_lowercase()))
            .collect();
        macs.sort();
        macs.dedup();
        macs
    }

    /// The MAC the client's neighbour table holds for `addr`, if any.
    pub fn client_neighbour(&self, addr: &str) -> Option<String> {
        let out = self.client.ip(&["neigh", "show", addr, "dev", &self.client_bridge]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).map(str::to_owned)
    }

    /// Python HTTP servers on the first `n` real-server addresses, answering "rsN".
    pub fn python_http(&self, rips: &[String]) -> Vec<Daemon> {
        python_http_in(&self.servers, &self.dir, &self.id, rips)
    }

    /// One nginx on the real-server addresses `rips`, port 8080 (see
    /// [`Topology::nginx`](crate::Topology::nginx)); its files under [`Pair::www`].
    pub fn nginx(&self, rips: &[String], keepalive: bool) -> Daemon {
        let listens: Vec<String> = rips.iter().map(|r| format!("{r}:8080")).collect();
        nginx_in(&self.servers, &self.dir, &self.id, &listens, keepalive)
    }

    /// nginx's document root.
    pub fn www(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// curl from the client namespace with a `max_time` in seconds; the body,
    /// trimmed, or None when the request failed.
    pub fn curl(&self, url: &str, max_time: &str) -> Option<String> {
        let out = self.client.output("curl", &["-sS", "--max-time", max_time, url]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // The directors' daemons before the namespaces (fields drop in order);
        // the work directory after them.
        for d in &mut self.directors {
            drop(d.keepalived.take());
            drop(d.gatewayd.take());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
