//! The exception path end to end: gatewayd runs in a director namespace of
//! its own with a kernel interface on each port (`"kernel": "gwk0"` on the
//! client port, `"gwk1"` on the servers' port). The gateway's own traffic that
//! the datapath does not consume (TCP and UDP to the gateway's address, the
//! kernel's own pings) reaches those interfaces, where ordinary Linux
//! programs (python, nc, tcpdump) serve and see it; VIP traffic stays on the
//! datapath and never shows there; a flood at the gateway's address is held
//! to the configured rate and counted, while the VIP and the control class
//! (BGP's port) keep working.
//!
//! With a kernel interface configured, the VIP and the local address are
//! served only while a kernel interface carries them: the tests put them on
//! gwk0 and gwk1 as keepalived would.
//!
//! A configuration without a kernel interface is the one every other e2e
//! test uses; they pass unchanged.

use std::time::{Duration, Instant};

use gateway_e2e::topology::{fnat_rules, rip, Options, Topology, GW_CLIENT, KERNEL_CLIENT, KERNEL_SERVERS, LIP, VIP};
use gateway_e2e::{wait_until, Daemon, UDP_CLIENT, UDP_ECHO};

/// A TCP echo server: answers each connection with "NAME PEER-ADDRESS"
/// followed by what it received, until the peer closes.
const TCP_ECHO: &str = r#"
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
def serve(c, peer):
    c.sendall(b"%s %s\n" % (sys.argv[3].encode(), peer[0].encode()))
    while True:
        data = c.recv(4096)
        if not data:
            break
        c.sendall(data)
    c.close()
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"#;

/// A director-namespace topology with kernel interfaces and a FNAT service
/// over two python servers.
fn start(short: &str, extra_config: &str) -> (Topology, Vec<Daemon>) {
    let topo = Topology::start(
        short,
        Options {
            servers: 2,
            services: fnat_rules("-s rr", &["", ""]),
            director_netns: true,
            kernel: true,
            extra_config: extra_config.to_owned(),
            ..Options::default()
        },
    );
    let servers = topo.python_http(&[rip(0), rip(1)]);
    (topo, servers)
}

/// Puts the VIP on gwk0 and the local address on gwk1 (as keepalived's
/// `virtual_ipaddress` would) and waits until the VIP serves.
fn hold_vip_and_lip(topo: &Topology) {
    topo.director().ip(&["addr", "add", &format!("{VIP}/32"), "dev", KERNEL_CLIENT]);
    topo.director().ip(&["addr", "add", &format!("{LIP}/32"), "dev", KERNEL_SERVERS]);
    topo.wait_for_service(&format!("http://{VIP}/"));
}

/// `gwctl link`'s kernel line of the port named `port`: (to kernel, from kernel).
fn link_kernel_counters(topo: &Topology, port: &str) -> (u64, u64) {
    let links = topo.gwctl(&["link"]);
    let block: Vec<&str> = links
        .lines()
        .skip_while(|l| !l.contains(&format!(": {port}: ")))
        .take_while(|l| l.starts_with(' ') || l.contains(&format!(": {port}: ")))
        .collect();
    // "    kernel gwk0: to kernel packets 7 from kernel packets 5 tap_full 0 ..."
    let line = block
        .iter()
        .find_map(|l| l.trim().strip_prefix("kernel "))
        .unwrap_or_else(|| panic!("no kernel line for {port} in\n{links}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    let number_after = |words: &[&str]| {
        f.windows(words.len() + 1)
            .find(|w| w[..words.len()] == *words)
            .and_then(|w| w[words.len()].parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {words:?} count in {line:?}"))
    };
    (number_after(&["to", "kernel", "packets"]), number_after(&["from", "kernel", "packets"]))
}

/// The port line and MAC of the port named `port` in `gwctl link`: (mtu, mac).
fn port_mtu_and_mac(topo: &Topology, port: &str) -> (String, String) {
    let links = topo.gwctl(&["link"]);
    let mut lines = links.lines().skip_while(|l| !l.contains(&format!(": {port}: ")));
    let head = lines.next().unwrap_or_else(|| panic!("no port {port} in\n{links}"));
    let mtu = head.split_whitespace().skip_while(|w| *w != "mtu").nth(1).expect("mtu").to_owned();
    let mac = lines
        .next()
        .and_then(|l| l.trim().strip_prefix("link/ether "))
        .unwrap_or_else(|| panic!("no MAC for {port} in\n{links}"))
        .to_owned();
    (mtu, mac)
}

#[test]
fn the_gateways_own_traffic_reaches_its_kernel_interface_and_vip_traffic_does_not() {
    let (mut topo, _servers) = start("exc", "");
    let director = topo.director();

    // gatewayd created both kernel interfaces in its namespace with the
    // port's MAC, MTU and address, and none in the root namespace.
    for (port, kernel, addr) in
        [("client", KERNEL_CLIENT, "10.0.0.254/24"), ("servers", KERNEL_SERVERS, "192.168.1.254/24")]
    {
        let (mtu, mac) = port_mtu_and_mac(&topo, port);
        let link = String::from_utf8_lossy(&director.ip(&["-o", "link", "show", "dev", kernel]).stdout).into_owned();
        assert!(link.contains(&format!("mtu {mtu} ")) && link.contains(&format!("link/ether {mac} ")), "{link}");
        assert!(link.contains(",UP"), "{kernel} is up: {link}");
        let addrs =
            String::from_utf8_lossy(&director.ip(&["-4", "-o", "addr", "show", "dev", kernel]).stdout).into_owned();
        assert!(addrs.contains(&format!("inet {addr} ")), "{kernel} carries {addr}: {addrs}");
        let root = std::process::Command::new("ip").args(["link", "show", "dev", kernel]).output().unwrap();
        assert!(!root.status.success(), "no {kernel} in the root namespace");
    }

    // Not carried by a kernel interface, the VIP is not served; carried, it is.
    assert_eq!(topo.curl_from(None, &format!("http://{VIP}/")), "", "the VIP serves only while held");
    hold_vip_and_lip(&topo);
    let director = topo.director();

    let pcap = topo.dir().join("gwk0.pcap");
    let capture = director.capture("gwk0", KERNEL_CLIENT, "ip", &pcap);
    let tcp = director.spawn("tcp-echo", "python3", &["-c", TCP_ECHO, GW_CLIENT, "2222", "director"]);
    let udp = director.spawn("udp-echo", "python3", &["-c", UDP_ECHO, GW_CLIENT, "5555", "director"]);
    let listening = |port: &str| {
        wait_until(Duration::from_secs(10), || {
            String::from_utf8_lossy(&director.output("ss", &["-Hlntu"]).stdout).contains(&format!("{GW_CLIENT}:{port}"))
        })
    };
    assert!(listening("2222") && listening("5555"), "the director's listeners bind");

    // TCP (an ssh-like session: a greeting, then what we type echoed back).
    let session = topo.client.sh(&format!("printf 'hello\\nworld\\n' | nc -N -w 5 {GW_CLIENT} 2222"));
    assert_eq!(
        String::from_utf8_lossy(&session.stdout),
        "director 10.0.0.1\nhello\nworld\n",
        "a TCP session with a listener on the kernel interface: {}",
        String::from_utf8_lossy(&session.stderr)
    );
    // UDP.
    let out = topo.client.output("python3", &["-c", UDP_CLIENT, GW_CLIENT, "5555", "3"]);
    let answers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    for a in &answers {
        assert!(
            a.starts_with(&format!("{GW_CLIENT}:5555 director 10.0.0.1 ping")),
            "UDP answered by the kernel: {answers:?}"
        );
    }
    // ICMP: the workers answer pings of the gateway's address themselves; the
    // kernel's own pings go out by the port and their replies come back to it.
    let ping = topo.client.output("ping", &["-c", "2", "-W", "2", GW_CLIENT]);
    assert!(ping.status.success(), "the gateway answers pings");
    let ping = director.output("ping", &["-c", "2", "-W", "2", "-I", KERNEL_CLIENT, "10.0.0.1"]);
    assert!(ping.status.success(), "the kernel's pings reach the client and the replies come back: {ping:?}");

    // VIP traffic keeps flowing.
    let answers = topo.curl_many(None, &format!("http://{VIP}/"), 6);
    assert_eq!(answers.len(), 6, "{answers:?}");
    assert!(answers.iter().all(|a| a == "rs1" || a == "rs2"), "{answers:?}");

    let packets = capture.finish();
    let seen = |pattern: &str| packets.iter().filter(|l| l.contains(pattern)).count();
    assert!(seen("> 10.0.0.254.2222: Flags [S]") >= 1, "the TCP session on gwk0: {packets:#?}");
    assert!(seen("10.0.0.254.2222 > 10.0.0.1.") >= 3, "the kernel's TCP answers on gwk0: {packets:#?}");
    assert_eq!(seen("> 10.0.0.254.5555: UDP"), 3, "the datagrams on gwk0: {packets:#?}");
    assert_eq!(seen("10.0.0.1 > 10.0.0.254: ICMP echo reply"), 2, "the replies to the kernel's pings: {packets:#?}");
    assert_eq!(
        seen("10.0.0.1 > 10.0.0.254: ICMP echo request"),
        0,
        "pings of the gateway are the workers': {packets:#?}"
    );
    assert_eq!(seen(VIP), 0, "no VIP traffic on the kernel interface: {packets:#?}");
    assert_eq!(seen(LIP), 0, "no local-address traffic on the kernel interface: {packets:#?}");

    // Counted: per worker and class in `gwctl stats`, per port in `gwctl link`.
    let stats = topo.stats();
    let (bulk, bulk_refused) = stats.kernel(0, "bulk");
    assert!(bulk >= 5 + 3 + 2, "the session's segments, the datagrams and the echo replies: {}", stats.0);
    assert_eq!(bulk_refused, 0, "nothing over the rate: {}", stats.0);
    let (to_kernel, from_kernel) = link_kernel_counters(&topo, "client");
    assert!(to_kernel >= bulk, "what the workers handed reached the interface: {to_kernel} < {bulk}");
    assert!(from_kernel >= 5 + 3 + 2, "the kernel's answers and pings left by the port: {from_kernel}");
    drop((tcp, udp));
    topo.stop();
}

#[test]
fn a_flood_at_the_gateways_address_is_rate_limited_and_counted_while_the_vip_and_bgp_keep_working() {
    const BULK_PPS: u64 = 200;
    const FLOOD: u64 = 6000;
    let (mut topo, _servers) = start("fld", &format!(r#""kernel_rate": {{"control": 1000, "bulk": {BULK_PPS}}}"#));
    hold_vip_and_lip(&topo);
    let director = topo.director();
    // A BGP speaker's port (control class) on the kernel interface.
    let bgp = director.spawn("bgp-echo", "python3", &["-c", TCP_ECHO, GW_CLIENT, "179", "bgpd"]);
    assert!(
        wait_until(Duration::from_secs(10), || String::from_utf8_lossy(&director.output("ss", &["-Hlnt"]).stdout)
            .contains(&format!("{GW_CLIENT}:179"))),
        "the BGP listener binds"
    );
    let before = topo.stats();
    let started = Instant::now();
    // SYNs at a closed port of the gateway's address: each one is the kernel's (bulk).
    let mut hping = topo.client.spawn(
        "hping3",
        "hping3",
        &["-q", "-S", "-p", "2223", "-c", &FLOOD.to_string(), "-i", "u300", GW_CLIENT],
    );
    // While it floods: the VIP serves, and a BGP session opens and talks.
    std::thread::sleep(Duration::from_millis(300));
    let answers = topo.curl_many(None, &format!("http://{VIP}/"), 10);
    assert_eq!(answers.len(), 10, "every VIP request answered during the flood: {answers:?}");
    assert!(answers.iter().all(|a| a == "rs1" || a == "rs2"), "{answers:?}");
    let session = topo.client.sh(&format!("printf 'open\\n' | nc -N -w 5 {GW_CLIENT} 179"));
    assert_eq!(String::from_utf8_lossy(&session.stdout), "bgpd 10.0.0.1\nopen\n", "BGP during the flood");
    assert!(hping.is_running(), "the flood went on during the checks (make it longer if this machine is fast)");
    let status = hping.wait(Duration::from_secs(60)).expect("hping3 finishes its count");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(status.success() || status.code() == Some(1), "hping3: {status}: {}", hping.log());

    let after = topo.stats();
    let (handed, refused) = {
        let (h0, r0) = before.kernel(0, "bulk");
        let (h1, r1) = after.kernel(0, "bulk");
        (h1 - h0, r1 - r0)
    };
    eprintln!("flood of {FLOOD} SYNs in {elapsed:.2} s: {handed} handed to gwk0, {refused} refused by the rate of {BULK_PPS} pps");
    // One second's worth of tokens to start with, then the rate.
    let allowed = (BULK_PPS as f64 * (elapsed + 2.0)) as u64;
    assert!(handed <= allowed, "at most {allowed} handed in {elapsed:.2} s, got {handed}: {}", after.0);
    assert!(
        refused > 0 && handed + refused >= FLOOD * 9 / 10,
        "the flood was counted: {handed} + {refused}: {}",
        after.0
    );
    assert_eq!(
        after.counter("drop kernel_rate_limited") - before.counter("drop kernel_rate_limited"),
        refused,
        "each refusal is a drop: {}",
        after.0
    );
    let (_, control_refused) = after.kernel(0, "control");
    assert_eq!(control_refused, 0, "the control class had its own tokens: {}", after.0);
    drop(bgp);
    topo.stop();
}
