//! Two active directors behind an ECMP router, the VIPs announced by BGP
//! (BIRD 2 in every namespace), as README's "Several active directors behind
//! an ECMP router (BGP)" deploys them:
//!
//! ```text
//!   clients ns 172.16.0.10.. --veth-- router ns (BIRD, AS 65000, ECMP with the L4 hash)
//!                                       172.16.0.1 | bridge 10.0.0.1 | 192.168.1.1 (servers' segment)
//!   director ns n (gatewayd, "announce": "gwk0", BIRD AS 65001 on gwk0, n = 1, 2):
//!     client 10.0.0.25n (gwk0) | servers 192.168.1.25n (gwk1)
//!   real server ns i (i = 0, 1, 2): 192.168.1.1i, VIP_DR on lo, default route via the router
//! ```
//!
//! [`Pair`] cables the directors: its client segment is the router's
//! bridge (the pair's client namespace is the router), its servers'
//! segment a bridge the real servers, the directors and the router's third
//! leg join. Each gatewayd puts the VIPs it can serve on gwk0 (`"announce"`);
//! its BIRD exports gwk0's /32s to the router, which installs one route per
//! VIP with a next hop per director (`merge paths`), chosen per flow by
//! source and destination address and port (`fib_multipath_hash_policy=1`).
//!
//! Services, the same on both directors, all `mh`: [`VIP_DR`] port 80 (TCP)
//! and 5353 (UDP) by direct routing, [`VIP_NAT`] the same by NAT. A DR
//! server answers the client directly through the router. A NAT server must
//! answer through the director that sent it the flow, which holds the
//! connection: each server marks a connection by the MAC it came from (the
//! director's servers port) and routes what it sends on it back there
//! (nftables and policy routing, [`nat_return_rules`]).
//!
//! Everything is torn down in `Drop`, daemons before their namespaces.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::pair::{director_client_addr, director_servers_addr, port_mac, Pair, PairOptions};
use crate::{wait_until, Daemon, Netns, UDP_ECHO};

/// The DR service's address.
pub const VIP_DR: &str = "10.100.0.1";
/// The NAT service's address.
pub const VIP_NAT: &str = "10.100.0.2";
/// The UDP services' port (TCP is 80).
pub const UDP_PORT: u16 = 5353;
/// The router's address on the directors' segment, toward the clients and on the servers' segment.
pub const ROUTER: &str = "10.0.0.1";
pub const ROUTER_CLIENTS: &str = "172.16.0.1";
pub const ROUTER_SERVERS: &str = "192.168.1.1";
/// The clients' subnet, behind the router.
pub const CLIENTS_NET: &str = "172.16.0.0/24";
/// The router's AS and the directors' (one AS for all directors).
pub const ROUTER_AS: u32 = 65000;
pub const DIRECTORS_AS: u32 = 65001;
/// BGP timers of every session: without BFD, a director that dies silently
/// would be dropped by the router this long after its last keepalive
/// (BIRD's least hold time).
pub const HOLD_TIME: Duration = Duration::from_secs(3);
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(1);
/// BFD on every session (BIRD's `protocol bfd`, `bfd on`): a packet each
/// way every [`BFD_INTERVAL`], a peer silent for [`BFD_MULTIPLIER`] of them
/// is down, and its BGP session with it.
pub const BFD_INTERVAL: Duration = Duration::from_millis(200);
pub const BFD_MULTIPLIER: u32 = 5;
/// Real servers.
pub const SERVERS: usize = 3;

/// Real server `i`'s address (0-based).
pub fn rip(i: usize) -> String {
    format!("192.168.1.{}", 10 + i)
}

/// Client address `i` (0-based).
pub fn client_addr(i: usize) -> String {
    format!("172.16.0.{}", 10 + i)
}

/// The ipvsadm rules of both directors: TCP 80 and UDP 5353 on each VIP, mh
/// over the three servers, DR on [`VIP_DR`] and NAT on [`VIP_NAT`].
pub fn services() -> Vec<String> {
    let mut rules = Vec::new();
    for (vip, mode) in [(VIP_DR, "-g"), (VIP_NAT, "-m")] {
        for (flag, port) in [("-t", 80), ("-u", UDP_PORT)] {
            rules.push(format!("-A {flag} {vip}:{port} -s mh"));
            rules.extend((0..SERVERS).map(|i| format!("-a {flag} {vip}:{port} -r {}:{port} {mode}", rip(i))));
        }
    }
    rules
}

/// The sync id both directors' sync daemons use (each is a master and the
/// other's backup, on the servers' segment: [`Ecmp::start_sync`]).
pub const SYNCID: u8 = 9;

/// The size of the file each real server serves as `/blob` (the same bytes
/// on each), for downloads that outlive a director.
pub const BLOB_BYTES: usize = 3 << 20;

/// The top-level members both gatewayd configurations add: announce on
/// gwk0, the route back to the clients (NAT answers) through the router,
/// and a watchdog that keeps gatewayd running when a worker fails (so that
/// the withdrawal is the announcer's, not the end of the process).
pub fn extra_config() -> String {
    format!(
        r#""announce": "gwk0", "routes": [{{"dst": "{CLIENTS_NET}", "via": "{ROUTER}", "dev": "client"}}],
  "watchdog": {{"on_failure": "continue"}}"#
    )
}

/// The router's bird.conf: a passive-enough BGP session per director, every
/// learned route into the kernel, equal ones merged into one multipath route.
pub fn router_bird_conf() -> String {
    let sessions: String = [1u8, 2]
        .iter()
        .map(|&n| {
            format!(
                "protocol bgp director{n} from directors {{\n    neighbor {} as {DIRECTORS_AS};\n}}\n",
                director_client_addr(n)
            )
        })
        .collect();
    format!(
        "router id {ROUTER};\n\
         log stderr all;\n\
         protocol device {{\n    scan time 10;\n}}\n\
         protocol kernel {{\n    ipv4 {{ import none; export all; }};\n    merge paths on;\n}}\n\
         {}\
         template bgp directors {{\n    local {ROUTER} as {ROUTER_AS};\n{}    \
         ipv4 {{ import all; export none; }};\n}}\n{sessions}",
        bfd(),
        timers()
    )
}

/// Director `n`'s bird.conf: the /32s on gwk0 (the VIPs gatewayd announces)
/// exported to the router with the director as next hop; nothing imported.
pub fn director_bird_conf(n: u8) -> String {
    let me = director_client_addr(n);
    format!(
        "router id {me};\n\
         log stderr all;\n\
         protocol device {{\n    scan time 10;\n}}\n\
         protocol direct vips {{\n    ipv4;\n    interface \"gwk0\";\n}}\n\
         {}\
         protocol bgp uplink {{\n    local {me} as {DIRECTORS_AS};\n    neighbor {ROUTER} as {ROUTER_AS};\n{}    \
         ipv4 {{ import none; export where source = RTS_DEVICE && net.len = 32; }};\n}}\n",
        bfd(),
        timers()
    )
}

/// The BGP timers of every session (inside a `protocol bgp` block): BFD,
/// short hold and keepalive, and a quick retry after a failure (BIRD waits
/// a minute by default).
fn timers() -> String {
    format!(
        "    bfd on;\n    hold time {};\n    keepalive time {};\n    connect retry time 1;\n    error wait time 1, 2;\n",
        HOLD_TIME.as_secs(),
        KEEPALIVE_TIME.as_secs()
    )
}

/// The `protocol bfd` block of every BIRD.
fn bfd() -> String {
    let ms = BFD_INTERVAL.as_millis();
    format!(
        "protocol bfd {{\n    interface \"*\" {{\n        min rx interval {ms} ms;\n        min tx interval {ms} ms;\n        \
         multiplier {BFD_MULTIPLIER};\n    }};\n}}\n"
    )
}

/// A real server's return rules for NAT: what reaches it from director
/// `n`'s servers port (addressed to its own address: NAT, not DR's VIP) is
/// marked `n` in its connection, and what it sends on that connection goes
/// back to director `n`.
pub fn nat_return_rules() -> String {
    let marks: String = [1u8, 2]
        .iter()
        .map(|&n| format!("        ip daddr 192.168.1.0/24 ether saddr {} ct mark set {n}\n", port_mac(n, 1)))
        .collect();
    format!(
        "table ip nat_return {{\n    chain from_directors {{\n        type filter hook prerouting priority mangle;\n{marks}    }}\n    \
         chain to_directors {{\n        type route hook output priority mangle;\n        ct mark != 0 meta mark set ct mark\n    }}\n}}\n"
    )
}

/// The flows' client: `proto vip port addr:port...`; one line per flow,
/// "addr:port rsN" or "addr:port FAIL why", one flow after the other. TCP:
/// an HTTP/1.0 request from that source (the server closes first, so the
/// client keeps no TIME_WAIT and the same source can connect again); UDP: a
/// datagram, whose answer must come from the VIP.
pub const FLOWS_CLIENT: &str = r#"
import socket, sys
proto, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
for flow in sys.argv[4:]:
    addr, sport = flow.rsplit(":", 1)
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    try:
        s.bind((addr, int(sport)))
        if proto == "tcp":
            s.connect((vip, port))
            s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            answer = data.split(b"\r\n\r\n", 1)[-1].decode().strip()
        else:
            s.sendto(b"flow", (vip, port))
            data, peer = s.recvfrom(2048)
            answer = data.decode().split()[0] if peer == (vip, port) else "FAIL from %s:%d" % peer
        print(flow, answer or "FAIL empty")
    except OSError as e:
        print(flow, "FAIL", type(e).__name__)
    finally:
        s.close()
"#;

/// Long-lived UDP flows: `seconds addr:port>vip...`; every 100 ms each flow
/// sends a datagram to its VIP (port 5353) and prints every answer as
/// "UNIX-TIME FLOW-INDEX rsN" as it comes.
pub const SESSIONS_CLIENT: &str = r#"
import select, socket, sys, time
seconds = float(sys.argv[1])
socks = {}
for i, spec in enumerate(sys.argv[2:]):
    src, vip = spec.split(">")
    addr, sport = src.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(sport)))
    socks[s] = (i, (vip, 5353))
start = time.time()
tick = 0
while time.time() - start < seconds:
    for s, (i, dst) in socks.items():
        s.sendto(b"session", dst)
    tick += 1
    while True:
        left = start + tick * 0.1 - time.time()
        if left <= 0:
            break
        ready, _, _ = select.select(list(socks), [], [], left)
        for s in ready:
            data, peer = s.recvfrom(2048)
            if peer == socks[s][1]:
                print("%.3f %d %s" % (time.time(), socks[s][0], data.decode().split()[0]), flush=True)
"#;

/// A BIRD in a namespace, with its own configuration, control socket and pid file.
struct Bird {
    daemon: Daemon,
    socket: PathBuf,
}

/// The running topology (see the module docs).
pub struct Ecmp {
    // Fields drop in order: daemons before the namespaces they run in, the pair last.
    servers_daemons: Vec<Daemon>,
    birds: Vec<(String, Bird)>,
    pub real_servers: Vec<Netns>,
    pub clients: Netns,
    pub pair: Pair,
}

impl Ecmp {
    /// Builds everything, starts the daemons and waits until the router has
    /// both directors as next hops of both VIPs.
    pub fn start(short: &str) -> Ecmp {
        fn both(_: u8) -> Vec<String> {
            services()
        }
        let pair = Pair::start(short, PairOptions { servers: 0, services: both, extra_config: extra_config() });
        let id = pair.id().to_owned();
        let router = &pair.client;
        for key in ["net.ipv4.ip_forward", "net.ipv4.fib_multipath_hash_policy"] {
            router.sysctl(key, "1");
        }
        for key in ["all", "default"] {
            router.sysctl(&format!("net.ipv4.conf.{key}.rp_filter"), "0");
        }

        // The clients, behind the router.
        let clients = Netns::new(&format!("{id}-k"));
        let (rc, cc) = (format!("{id}rc"), format!("{id}cc"));
        router.ip(&["link", "add", &rc, "type", "veth", "peer", "name", &cc, "netns", clients.name()]);
        router.ip(&["addr", "add", &format!("{ROUTER_CLIENTS}/24"), "dev", &rc]);
        router.ip(&["link", "set", &rc, "up"]);
        clients.ip(&["link", "set", &cc, "up"]);
        for i in 0..4 {
            clients.ip(&["addr", "add", &format!("{}/24", client_addr(i)), "dev", &cc]);
        }
        clients.ip(&["route", "add", "default", "via", ROUTER_CLIENTS]);

        // The router's leg on the servers' segment (DR answers leave by it).
        let (rs, rb) = (format!("{id}rs"), format!("{id}rb"));
        router.ip(&["link", "add", &rs, "type", "veth", "peer", "name", &rb, "netns", pair.servers.name()]);
        router.ip(&["addr", "add", &format!("{ROUTER_SERVERS}/24"), "dev", &rs]);
        router.ip(&["link", "set", &rs, "up"]);
        for key in [rc.as_str(), rs.as_str(), pair.client_bridge.as_str()] {
            router.sysctl(&format!("net.ipv4.conf.{key}.rp_filter"), "0");
        }
        pair.servers.ip(&["link", "set", &rb, "master", &pair.servers_bridge]);
        pair.servers.ip(&["link", "set", &rb, "up"]);

        // The real servers, each in a namespace of its own (a DR server is
        // told apart by its MAC only), on the servers' segment.
        let mut real_servers = Vec::new();
        for i in 0..SERVERS {
            let ns = Netns::new(&format!("{id}-r{i}"));
            let (inner, outer) = (format!("{id}v{i}"), format!("{id}b{i}"));
            pair.servers.ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", ns.name()]);
            pair.servers.ip(&["link", "set", &outer, "master", &pair.servers_bridge]);
            pair.servers.ip(&["link", "set", &outer, "up"]);
            ns.ip(&["addr", "add", &format!("{}/24", rip(i)), "dev", &inner]);
            ns.ip(&["link", "set", &inner, "up"]);
            ns.ip(&["addr", "add", &format!("{VIP_DR}/32"), "dev", "lo"]);
            for key in ["all", "default", inner.as_str()] {
                ns.sysctl(&format!("net.ipv4.conf.{key}.arp_ignore"), "1");
                ns.sysctl(&format!("net.ipv4.conf.{key}.arp_announce"), "2");
                ns.sysctl(&format!("net.ipv4.conf.{key}.rp_filter"), "0");
            }
            ns.ip(&["route", "add", "default", "via", ROUTER_SERVERS]);
            let out = ns.command("nft").args(["-f", "-"]).output_with_stdin(&nat_return_rules());
            assert!(out.status.success(), "nft in {}: {}", ns.name(), String::from_utf8_lossy(&out.stderr));
            for n in [1u8, 2] {
                let table = (100 + u32::from(n)).to_string();
                ns.ip(&["rule", "add", "fwmark", &n.to_string(), "table", &table]);
                ns.ip(&["route", "add", "default", "via", &director_servers_addr(n), "table", &table]);
            }
            real_servers.push(ns);
        }

        let mut ecmp = Ecmp { servers_daemons: Vec::new(), birds: Vec::new(), real_servers, clients, pair };
        ecmp.start_servers();
        let router_conf = router_bird_conf();
        ecmp.start_bird("router", &router_conf);
        for n in [1u8, 2] {
            ecmp.start_bird(&format!("d{n}"), &director_bird_conf(n));
        }
        for vip in [VIP_DR, VIP_NAT] {
            ecmp.wait_next_hops(vip, &[1, 2], Duration::from_secs(20));
        }
        assert!(
            wait_until(Duration::from_secs(10), || ecmp.bfd_sessions_up() == 2),
            "the router's BFD sessions with both directors come up:\n{}\n{}",
            ecmp.birdc("router", &["show", "bfd", "sessions"]),
            ecmp.bird_logs()
        );
        ecmp
    }

    /// The router's BFD sessions that are up.
    pub fn bfd_sessions_up(&self) -> usize {
        let sessions = self.birdc("router", &["show", "bfd", "sessions"]);
        // "10.0.0.251      gwt123ecmcb   Up        22:40:01.123    0.100    0.500"
        sessions.lines().filter(|l| l.split_whitespace().nth(2) == Some("Up")).count()
    }

    /// On every real server: HTTP on port 80 (python's http.server: one
    /// connection per request) answering "rsN" and serving the same
    /// [`BLOB_BYTES`] as `/blob` ([`Ecmp::blob`]), and a UDP echo on the DR
    /// VIP and on its own address, port 5353, answering "rsN ...".
    fn start_servers(&mut self) {
        let dir = self.pair.dir().to_owned();
        let id = self.pair.id().to_owned();
        let blob = self.blob();
        crate::random_file(&blob, &BLOB_BYTES.to_string());
        for (i, ns) in self.real_servers.iter().enumerate() {
            let name = format!("rs{}", i + 1);
            let root = dir.join(format!("www-{name}"));
            std::fs::create_dir_all(&root).expect("document root");
            std::fs::write(root.join("index.html"), format!("{name}\n")).expect("index.html");
            std::fs::copy(&blob, root.join("blob")).expect("the blob");
            let root = root.to_str().expect("UTF-8 path").to_owned();
            self.servers_daemons.push(ns.spawn(
                &format!("{id}-{name}-http"),
                "python3",
                &["-m", "http.server", "80", "--bind", "0.0.0.0", "--directory", &root],
            ));
            for addr in [VIP_DR.to_owned(), rip(i)] {
                self.servers_daemons.push(ns.spawn(
                    &format!("{id}-{name}-udp-{addr}"),
                    "python3",
                    &["-c", UDP_ECHO, &addr, &UDP_PORT.to_string(), &name],
                ));
            }
        }
        for (i, ns) in self.real_servers.iter().enumerate() {
            let url = format!("http://{}/", rip(i));
            assert!(
                wait_until(Duration::from_secs(10), || ns
                    .output("curl", &["-s", "-o", "/dev/null", "--max-time", "1", &url])
                    .status
                    .success()),
                "real server {i} does not serve HTTP"
            );
        }
    }

    /// The namespace of `who`: "router", "d1" or "d2".
    fn ns_of(&self, who: &str) -> &Netns {
        match who {
            "router" => &self.pair.client,
            "d1" => &self.pair.director(1).ns,
            "d2" => &self.pair.director(2).ns,
            _ => panic!("no namespace {who}"),
        }
    }

    /// Starts BIRD in `who`'s namespace with `conf`, in the foreground.
    fn start_bird(&mut self, who: &str, conf: &str) {
        let dir = self.pair.dir().join(format!("bird-{who}"));
        std::fs::create_dir_all(&dir).expect("bird directory");
        let (conf_path, socket, pid) = (dir.join("bird.conf"), dir.join("bird.ctl"), dir.join("bird.pid"));
        std::fs::write(&conf_path, conf).expect("write bird.conf");
        let path = |p: &PathBuf| p.to_str().expect("UTF-8 path").to_owned();
        let daemon = self.ns_of(who).spawn(
            &format!("{}-bird-{who}", self.pair.id()),
            "bird",
            &["-f", "-c", &path(&conf_path), "-s", &path(&socket), "-P", &path(&pid)],
        );
        let bird = Bird { daemon, socket };
        assert!(
            wait_until(Duration::from_secs(10), || bird.daemon.log().contains("Started")),
            "{who}'s BIRD did not start:\n{}",
            bird.daemon.log()
        );
        self.birds.push((who.to_owned(), bird));
    }

    /// `birdc ARGS` of `who`'s BIRD: its output.
    pub fn birdc(&self, who: &str, args: &[&str]) -> String {
        let Some((_, bird)) = self.birds.iter().find(|(w, _)| w == who) else { return format!("no BIRD {who}") };
        let mut all = vec!["-s", bird.socket.to_str().unwrap_or_default()];
        all.extend_from_slice(args);
        let out = self.ns_of(who).output("birdc", &all);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `birdc show protocols` of `who` (for failure messages).
    pub fn bird_protocols(&self, who: &str) -> String {
        self.birdc(who, &["show", "protocols"])
    }

    /// Every BIRD's log (for failure messages).
    pub fn bird_logs(&self) -> String {
        self.birds.iter().map(|(who, b)| format!("--- {who}'s BIRD ---\n{}\n", b.daemon.log())).collect()
    }

    /// The directors (1, 2) the router's kernel route to `vip` leads to, sorted.
    pub fn next_hops(&self, vip: &str) -> Vec<u8> {
        let out = self.pair.client.output("ip", &["-o", "route", "show", "exact", &format!("{vip}/32")]);
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut hops: Vec<u8> = words
            .windows(2)
            .filter(|w| w[0] == "via")
            .filter_map(|w| [1u8, 2].into_iter().find(|&n| director_client_addr(n) == w[1]))
            .collect();
        hops.sort_unstable();
        hops.dedup();
        hops
    }

    /// Waits until the router's route to `vip` leads to exactly `directors`;
    /// how long it took. Panics with the BGP state after `timeout`.
    pub fn wait_next_hops(&self, vip: &str, directors: &[u8], timeout: Duration) -> Duration {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            if self.next_hops(vip) == directors {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "the router's route to {vip} leads to directors {:?}, not {directors:?}, after {timeout:?}\n\
                 router: {}\nd1: {}\nd2: {}\n{}",
                self.next_hops(vip),
                self.bird_protocols("router"),
                self.bird_protocols("d1"),
                self.bird_protocols("d2"),
                self.bird_logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `flows` ("addr:port" sources) one after the other in the clients'
    /// namespace against `vip`: TCP (an HTTP request to port 80) or UDP (a
    /// datagram to 5353). Each flow's answer: the server's name ("rs2"),
    /// or "FAIL ..." (no answer, or one from another address than the VIP).
    pub fn flows(&self, udp: bool, vip: &str, flows: &[String]) -> Vec<(String, String)> {
        let (proto, port) = if udp { ("udp", UDP_PORT) } else { ("tcp", 80) };
        let mut args = vec!["-c", FLOWS_CLIENT, proto, vip];
        let port = port.to_string();
        args.push(&port);
        args.extend(flows.iter().map(String::as_str));
        let out = self.clients.output("python3", &args);
        assert!(out.status.success(), "the flows' client failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(f, a)| (f.to_owned(), a.to_owned())))
            .collect()
    }

    /// Connection sync both ways: each director a master and the other's
    /// backup on gwk1, so a flow the router moves finds its connection on
    /// the other director.
    pub fn start_sync(&self) {
        for n in [1, 2] {
            for state in ["master", "backup"] {
                let syncid = SYNCID.to_string();
                self.pair.director(n).gwctl(&[
                    "--start-daemon",
                    state,
                    "--mcast-interface",
                    "gwk1",
                    "--syncid",
                    &syncid,
                ]);
            }
        }
    }

    /// Which director the router sends a TCP flow from `client` ("addr:port")
    /// to `vip`:80 to now (its multipath hash, as `ip route get` computes it).
    pub fn director_of(&self, client: &str, vip: &str) -> u8 {
        let (addr, port) = client.split_once(':').expect("addr:port");
        let iif = format!("{}rc", self.pair.id());
        let args = ["route", "get", vip, "from", addr, "iif", &iif, "ipproto", "tcp", "sport", port, "dport", "80"];
        let out = self.pair.client.ip(&args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match [1u8, 2].into_iter().find(|&n| text.contains(&format!("via {} ", director_client_addr(n)))) {
            Some(n) => n,
            None => panic!("ip route get {vip} from {client}: {text}{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// The bytes every real server serves as `/blob`.
    pub fn blob(&self) -> PathBuf {
        self.pair.dir().join("blob")
    }

    /// Director `n`'s connections (`gwctl -Lnc`), each as (UDP?, client
    /// "addr:port", virtual "addr:port").
    pub fn connections_of(&self, n: u8) -> BTreeSet<(bool, String, String)> {
        let listing = self.pair.director(n).gwctl(&["-Lnc"]);
        // pro expire state source virtual destination:
        // "TCP 01:58  TIME_WAIT   172.16.0.10:40001  10.100.0.1:80      192.168.1.10:80"
        listing
            .lines()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
                [proto @ ("TCP" | "UDP"), _, _, source, virtual_, _] => {
                    Some((*proto == "UDP", (*source).to_owned(), (*virtual_).to_owned()))
                }
                _ => None,
            })
            .collect()
    }
}

/// stdin for a command, as `Command::output` with a string written to it.
trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output;
}

impl OutputWithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child =
            self.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("wait")
    }
}
