//! gatewayd's Prometheus exporter (`"metrics"` in the configuration file) as Prometheus
//! sees it: `/metrics` scraped with curl after real traffic through a FNAT service, parsed
//! by the Prometheus project's own Python parser (Debian's python3-prometheus-client),
//! and checked against what gwctl shows at the same moment. Also: an address that cannot
//! be bound stops gatewayd at start, and `--check-config` validates a file without
//! starting anything.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use gateway_e2e::topology::{fnat_rules, rip, Options, Topology, VIP};
use gateway_e2e::{gatewayd_bin, tag, wait_until};

/// Reads the exposition on stdin with prometheus_client's parser (which raises on
/// anything malformed), checks what the parser does not (HELP, types, `_total`, no
/// duplicate sample), and prints every sample as `name{labels sorted} TAB value`.
const PARSE: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
seen = set()
for family in text_string_to_metric_families(sys.stdin.read()):
    if not family.documentation:
        sys.exit(f"{family.name}: no HELP")
    if family.type not in ("counter", "gauge"):
        sys.exit(f"{family.name}: type {family.type}")
    for s in family.samples:
        if family.type == "counter" and not s.name.endswith("_total"):
            sys.exit(f"counter sample {s.name} does not end in _total")
        if not s.name.startswith("gateway_"):
            sys.exit(f"{s.name}: not in the gateway_ namespace")
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        key = f"{s.name}{{{labels}}}"
        if key in seen:
            sys.exit(f"duplicate sample {key}")
        seen.add(key)
        print(f"{key}\t{s.value!r}")
"#;

/// One scrape, parsed: sample (`name{label="value",...}`, labels sorted) to value.
#[derive(Debug, Clone, PartialEq)]
struct Samples(BTreeMap<String, f64>);

impl Samples {
    fn get(&self, key: &str) -> u64 {
        let v = self.0.get(key).unwrap_or_else(|| panic!("no sample {key} in {:#?}", self.0));
        assert!(v.fract() == 0.0 && *v >= 0.0, "{key} = {v}");
        *v as u64
    }

    fn named(&self, name: &str) -> Vec<(&str, f64)> {
        self.0
            .iter()
            .filter(|(k, _)| k.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')))
            .map(|(k, v)| (k.as_str(), *v))
            .collect()
    }
}

/// A GET of `url` from the root namespace (the exporter listens on loopback):
/// (status, content type, body).
fn http_get(url: &str, method: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-X", method, "-w", "\n%{http_code} %{content_type}", url])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (body, status) = text.rsplit_once('\n').expect("curl's status line");
    let (code, content_type) = status.split_once(' ').unwrap_or((status, ""));
    (code.parse().expect("a status code"), content_type.to_owned(), body.to_owned())
}

fn parse(exposition: &str) -> Samples {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run Debian's python3 (scripts/setup.sh installs python3-prometheus-client)");
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    Samples(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, v) = l.rsplit_once('\t').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect(),
    )
}

/// The exporter's URL, from gatewayd's log (the file asks for port 0: any free port).
fn metrics_url(topo: &Topology) -> String {
    let log = topo.gatewayd_log();
    // The line starts with the log's timestamp and level.
    let line = log
        .lines()
        .find_map(|l| l.split_once("gatewayd: metrics at ").map(|(_, url)| url))
        .unwrap_or_else(|| panic!("{log}"));
    line.trim().to_owned()
}

fn scrape(url: &str) -> (String, Samples) {
    let (status, content_type, body) = http_get(url, "GET");
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let samples = parse(&body);
    (body, samples)
}

/// The numbers after `prefix` on the line that starts with it.
fn numbers_after(text: &str, prefix: &str) -> Vec<u64> {
    let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"));
    line[prefix.len()..].split_whitespace().filter_map(|w| w.trim_end_matches(',').parse().ok()).collect()
}

/// What gwctl shows, as the samples the exporter should have for it.
fn gwctl_as_samples(topo: &Topology) -> BTreeMap<String, u64> {
    let service = format!("TCP {VIP}:80");
    let mut want = BTreeMap::new();
    let stats = topo.gwctl(&["-Ln", "--stats", "--exact"]);
    let listing = topo.gwctl(&["-Ln"]);
    let traffic = |want: &mut BTreeMap<String, u64>, what: &str, labels: &str, row: &[u64]| {
        want.insert(format!("gateway_{what}_connections_total{{{labels}}}"), row[0]);
        for (i, direction) in [(1, "in"), (2, "out")] {
            want.insert(format!("gateway_{what}_packets_total{{direction=\"{direction}\",{labels}}}"), row[i]);
            want.insert(format!("gateway_{what}_bytes_total{{direction=\"{direction}\",{labels}}}"), row[i + 2]);
        }
    };
    traffic(&mut want, "service", &format!("service=\"{service}\""), &numbers_after(&stats, &format!("TCP  {VIP}:80")));
    for i in 0..2 {
        let server = format!("{}:8080", rip(i));
        let labels = format!("server=\"{server}\",service=\"{service}\"");
        traffic(&mut want, "server", &labels, &numbers_after(&stats, &format!("  -> {server}")));
        // -Ln: "-> ADDR:PORT FullNat WEIGHT ACTIVE INACTIVE"
        let row = numbers_after(&listing, &format!("  -> {server}"));
        let (weight, active, inactive) = (row[row.len() - 3], row[row.len() - 2], row[row.len() - 1]);
        want.insert(format!("gateway_server_weight{{{labels}}}"), weight);
        want.insert(format!("gateway_server_active_connections{{{labels}}}"), active);
        want.insert(format!("gateway_server_inactive_connections{{{labels}}}"), inactive);
    }
    let workers = topo.gwctl(&["stats"]);
    let w = "worker=\"0\"";
    let rx = numbers_after(&workers, "    RX: packets");
    let tx = numbers_after(&workers, "    TX: packets");
    want.insert(format!("gateway_worker_rx_packets_total{{{w}}}"), rx[0]);
    want.insert(format!("gateway_worker_rx_bytes_total{{{w}}}"), rx[1]);
    want.insert(format!("gateway_worker_tx_packets_total{{{w}}}"), tx[0]);
    want.insert(
        format!("gateway_worker_connections_created_total{{{w}}}"),
        numbers_after(&workers, "    redirected out")[2],
    );
    let table = numbers_after(&workers, "    connection table");
    want.insert(format!("gateway_worker_connections{{{w}}}"), table[0]);
    want.insert(format!("gateway_worker_connection_capacity{{{w}}}"), table[1]);
    // gwctl link: "N: client: <UP> mtu 1500", then its link/ether, RX and TX lines.
    let links = topo.gwctl(&["link"]);
    let client = &links[links.find(": client: ").unwrap_or_else(|| panic!("no client port in\n{links}"))..];
    let port_rx = numbers_after(client, "    RX: packets");
    want.insert("gateway_port_rx_packets_total{port=\"client\"}".into(), port_rx[0]);
    want.insert("gateway_port_rx_bytes_total{port=\"client\"}".into(), port_rx[1]);
    want
}

#[test]
fn a_scrape_after_traffic_parses_and_matches_gwctl() {
    let services = fnat_rules("-s rr", &["", "-w 3"]);
    let topo = Topology::start(
        "met",
        Options { servers: 2, services, extra_config: r#""metrics": "127.0.0.1:0""#.into(), ..Options::default() },
    );
    let url = metrics_url(&topo);
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"), "{url}");
    let _servers = topo.python_http(&[rip(0), rip(1)]);
    let site = format!("http://{VIP}/");
    topo.wait_for_service(&site);
    topo.gwctl(&["-Z"]);
    assert_eq!(topo.curl_many(None, &site, 8).len(), 8);
    // The table's occupancy is refreshed once a second.
    assert!(
        wait_until(Duration::from_secs(3), || topo.worker_counter("connection table ") >= 8),
        "{}",
        topo.gwctl(&["stats"])
    );

    // gwctl between two scrapes that agree: then all three are of one moment
    // (stray packets, such as the namespaces' IPv6 router solicitations, may
    // move the worker and port counters between them: try again).
    let mut agreed = None;
    for _ in 0..20 {
        let (_, before) = scrape(&url);
        let want = gwctl_as_samples(&topo);
        let (text, after) = scrape(&url);
        let got = |s: &Samples| want.keys().map(|k| (k.clone(), s.get(k))).collect::<BTreeMap<_, _>>();
        if got(&before) == got(&after) {
            agreed = Some((text, after, want));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (text, samples, want) = agreed.expect("two scrapes around gwctl agreed");
    for (key, value) in &want {
        assert_eq!(samples.get(key), *value, "{key}: the exporter and gwctl differ\n{text}");
    }

    // The traffic itself: eight connections, rr over two servers; each counted both ways.
    let service = format!("service=\"TCP {VIP}:80\"");
    assert_eq!(samples.get(&format!("gateway_service_connections_total{{{service}}}")), 8, "{text}");
    for i in 0..2 {
        let labels = format!("server=\"{}:8080\",{service}", rip(i));
        assert_eq!(samples.get(&format!("gateway_server_connections_total{{{labels}}}")), 4, "{text}");
        assert!(samples.get(&format!("gateway_server_packets_total{{direction=\"out\",{labels}}}")) >= 4 * 3, "{text}");
    }
    assert_eq!(samples.get(&format!("gateway_server_weight{{server=\"{}:8080\",{service}}}", rip(1))), 3);
    assert_eq!(samples.get("gateway_worker_up{worker=\"0\"}"), 1);
    assert_eq!(samples.get("gateway_port_up{port=\"servers\"}"), 1);
    assert!(samples.get("gateway_worker_tx_bytes_total{worker=\"0\"}") > 0);
    // Every drop reason and SYN-proxy event is listed from the start, zero or not.
    assert!(samples.named("gateway_worker_dropped_packets_total").len() > 20, "{text}");
    assert_eq!(samples.get("gateway_synproxy_events_total{event=\"syn_acks_sent\",worker=\"0\"}"), 0, "{text}");
    assert!(samples.get("gateway_config_generation{}") >= 1);

    // A configuration change shows in the next scrape.
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {}:8080 -b -w 0", rip(0)));
    let (_, changed) = scrape(&url);
    assert_eq!(changed.get(&format!("gateway_server_weight{{server=\"{}:8080\",{service}}}", rip(0))), 0);
    assert!(changed.get("gateway_config_generation{}") > samples.get("gateway_config_generation{}"));

    // Only GET /metrics is served.
    let (status, _, body) = http_get(&url.replace("/metrics", "/"), "GET");
    assert_eq!((status, body.as_str()), (404, "gatewayd serves its metrics at /metrics\n"));
    let (status, _, _) = http_get(&url, "POST");
    assert_eq!(status, 405);
}

/// A work directory for a gatewayd this test runs by hand, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(name: &str) -> WorkDir {
        let dir = std::env::temp_dir().join(format!("gwt{}{name}", tag()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        WorkDir(dir)
    }

    /// A configuration file with `extra` members; its tap is named for the directory,
    /// so a gatewayd that opened it would show in `ip link`.
    fn config(&self, file: &str, extra: &str) -> PathBuf {
        let tap = format!("gwt{}mt", tag());
        let path = self.0.join(file);
        std::fs::write(
            &path,
            format!(
                r#"{{"eal": ["-l", "0-1", "--no-pci", "--in-memory", "--file-prefix={tap}", "--vdev=net_tap0,iface={tap}"],
                    "ports": [{{"device": "net_tap0", "name": "client", "addrs": ["10.9.0.254/24"]}}],
                    "services": ["-A -t 10.9.0.100:80 -s rr"]{extra}}}"#
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs gatewayd to its exit (bounded: it must refuse at once).
fn gatewayd(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(gatewayd_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gatewayd");
    if !wait_until(Duration::from_secs(20), || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("gatewayd {args:?} kept running:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_address_that_cannot_be_bound_stops_gatewayd_at_start() {
    let dir = WorkDir::new("mb");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = dir.config("taken.json", &format!(r#", "metrics": "{addr}""#));
    let socket = dir.0.join("gatewayd.sock");
    let out = gatewayd(&["--config".as_ref(), config.as_os_str(), "--socket".as_ref(), socket.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("gatewayd: metrics listener {addr}: Address already in use")), "{err}");
    assert!(!err.contains("EAL"), "refused before the EAL started: {err}");
    assert!(!socket.exists(), "the control socket is gone with the refused daemon");

    // An address that is no address is a bad configuration: exit code 2, key and value named.
    let config = dir.config("bad.json", r#", "metrics": "localhost:9469""#);
    let out = gatewayd(&["--config".as_ref(), config.as_os_str(), "--socket".as_ref(), socket.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("gatewayd: bad configuration: ")
            && err.contains(r#""metrics": "localhost:9469" is not an IP address and port (such as "127.0.0.1:9469")"#),
        "{err}"
    );
}

#[test]
fn check_config_validates_the_file_and_starts_nothing() {
    let dir = WorkDir::new("cc");
    let check = |config: &PathBuf| gatewayd(&["--check-config".as_ref(), "--config".as_ref(), config.as_os_str()]);

    // Valid, with an exporter address that is in use: checking binds nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let good = dir.config("good.json", &format!(r#", "metrics": "{}""#, taken.local_addr().unwrap()));
    let out = check(&good);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, format!("gatewayd: {}: configuration valid (1 port(s), 1 service rule(s))\n", good.display()));
    assert!(!stderr.contains("EAL"), "{stderr}");
    let tap = format!("gwt{}mt", tag());
    let link = Command::new("ip").args(["link", "show", &tap]).stderr(Stdio::null()).stdout(Stdio::null()).status();
    assert!(!link.unwrap().success(), "--check-config opened no port");

    // Invalid: exit code 2 and what is wrong, as the daemon would refuse it.
    let cases = [
        (r#", "metrics": "127.0.0.1""#, r#""metrics": "127.0.0.1" is not an IP address and port"#),
        (r#", "conn_capacity": 0"#, r#""conn_capacity": 0 is not in 1..="#),
        (r#", "timeouts": {"tcp": 99999999}"#, r#""timeouts": timeout 99999999 is out of range"#),
        (r#", "metric": "127.0.0.1:9469""#, "unknown field `metric`"),
    ];
    for (i, (extra, want)) in cases.into_iter().enumerate() {
        let bad = dir.config(&format!("bad{i}.json"), extra);
        let out = check(&bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.starts_with(&format!("gatewayd: bad configuration: {}: ", bad.display())), "{extra}: {err}");
        assert!(err.contains(want), "{extra}: expected {want:?} in {err}");
        assert!(out.stdout.is_empty(), "{extra}");
    }

    // --check-config checks a file: without --config it is a usage error.
    let out = gatewayd(&["--check-config".as_ref()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--config <FILE>"), "{err}");
}
