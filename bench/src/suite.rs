//! `gwbench all`: the whole benchmark, in the order of issue 9's figures.
//!
//! 1. Established-flow Mpps on one worker: FNAT and NAT against the plain
//!    forwarder (both ways through the device), DR and TUN against the
//!    forwarder one way (their replies bypass the director).
//! 2. New connections per second (SYN, SYN-ACK, ACK through the device):
//!    FNAT with wlc and with mh against the forwarder.
//!    Also a SYN flood (spoofed sources): SYN-ACKs per second.
//! 3. Mpps against live connections (FNAT and forwarder at each size).
//! 4. Instructions per packet and per connection (callgrind scripts).
//! 5. The kernel peer: nftables NAT against gatewayd on af_xdp, same veths.
//! 6. Bytes per connection and lookups per second at 1M and 10M (conn_table).
//!
//! Every scenario of a figure runs once per round, the rounds interleaved,
//! and each keeps its best round (the machine is shared: the best round is
//! the least disturbed one).

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde_json::json;

use crate::driver::{self, best, median, Env, Instructions, Load, Method, PacketCycles, Row, Run, Target};

#[derive(Debug, Clone)]
pub struct SuiteOptions {
    pub rounds: u32,
    pub seconds: f64,
    /// Flows of figure 1.
    pub flows: u32,
    /// Connections offered in figure 2 (bounded by `seconds` too).
    pub connect_flows: u32,
    pub sweep: Vec<u32>,
    pub sweep_rounds: u32,
    pub window: u32,
    pub payload: u32,
    pub figures: Vec<String>,
    pub out: PathBuf,
    pub repo: PathBuf,
    pub target_dir: PathBuf,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            rounds: 3,
            seconds: 3.0,
            flows: 10_000,
            connect_flows: 1_000_000,
            sweep: vec![1_000, 10_000, 100_000, 1_000_000, 4_000_000],
            sweep_rounds: 3,
            window: 4096,
            payload: 6,
            figures: ["established", "connect", "synflood", "sweep", "peer", "insns", "table"]
                .map(String::from)
                .to_vec(),
            out: PathBuf::from("target/bench/results.json"),
            repo: PathBuf::from("."),
            target_dir: PathBuf::from("target"),
        }
    }
}

fn load(o: &SuiteOptions, mode: &str, flows: u32, oneway: bool) -> Load {
    Load { mode: mode.into(), flows, seconds: o.seconds, window: o.window, payload: o.payload, oneway }
}

/// Runs `pairs` (target, load) once per round, interleaved, logging each.
fn rounds(env: &Env, pairs: &[(Target, Load)], n: u32, runs: &mut Vec<Run>) {
    for round in 0..n {
        for (t, l) in pairs {
            if env.stop.load(Ordering::Relaxed) {
                return;
            }
            let r = env.run(t, l, round);
            match (&r.result, &r.error) {
                (Some(g), _) => eprintln!(
                    "  round {round} {:<20} {:<11} flows {:>8}: {:>10.0}/s  sent {} received {} lost {}{}",
                    t.label(),
                    l.mode,
                    l.flows,
                    g.rate,
                    g.sent,
                    g.received,
                    g.lost,
                    r.worker_cpu_share
                        .map(|s| format!("  (worker got {:.0}% of a core)", s * 100.0))
                        .unwrap_or_default()
                ),
                (None, Some(e)) => eprintln!("  round {round} {} {}: FAILED: {e}", t.label(), l.mode),
                _ => {}
            }
            if let (Some(_), Some(e)) = (&r.result, &r.error) {
                eprintln!("    note: {e}");
            }
            runs.push(r);
        }
    }
}

/// A row to compute once every scenario has run: rounds of the same load
/// from other figures count too (figure 1 and the sweep share 10k flows).
struct RowSpec {
    figure: &'static str,
    target: Target,
    load: Load,
    reference: Option<(Target, Load)>,
    note: String,
}

fn spec(
    figure: &'static str,
    target: &Target,
    load: &Load,
    reference: Option<(&Target, &Load)>,
    note: &str,
) -> RowSpec {
    RowSpec {
        figure,
        target: target.clone(),
        load: load.clone(),
        reference: reference.map(|(t, l)| (t.clone(), l.clone())),
        note: note.into(),
    }
}

fn row(runs: &[Run], s: &RowSpec) -> Option<Row> {
    let (t, l) = (&s.target, &s.load);
    let b = best(runs, t, l)?;
    let g = b.result.as_ref()?;
    let reference_run = s.reference.as_ref().and_then(|(rt, rl)| best(runs, rt, rl));
    let reference_rate = reference_run.and_then(|r| r.result.as_ref()).map(|r| r.rate);
    let n = runs.iter().filter(|r| &r.target == t && &r.load == l && r.result.is_some()).count() as u32;
    Some(Row {
        figure: s.figure.into(),
        name: t.label(),
        flows: l.flows,
        rate: g.rate,
        unit: if l.mode == "established" { "pps".into() } else { "conn/s".into() },
        reference_rate,
        ratio: reference_rate.filter(|&x| x > 0.0).map(|x| g.rate / x),
        gateway_packets_per_answer: match (l.mode.as_str(), l.oneway) {
            ("established", false) => 2,
            ("established", true) => 1,
            ("connect", false) => 3,
            ("connect", true) => 2,
            _ => 2,
        },
        lost: g.lost,
        rounds: n,
        median_rate: median(runs, t, l).unwrap_or(0.0),
        reference_median_rate: s.reference.as_ref().and_then(|(rt, rl)| median(runs, rt, rl)),
        worker_cpu_share: b.worker_cpu_share,
        gen_idle: g.gen_idle,
        cycles: b.gateway_stats.as_deref().and_then(PacketCycles::from_stats),
        note: s.note.clone(),
    })
}

/// Runs the figures `o.figures` names; returns the results document.
pub fn run(env: &Env, o: &SuiteOptions) -> serde_json::Value {
    let want = |f: &str| o.figures.iter().any(|x| x == f);
    let started = std::time::Instant::now();
    let machine = driver::machine();
    let load_before = driver::load_average();
    let mut runs: Vec<Run> = Vec::new();
    let mut specs: Vec<RowSpec> = Vec::new();
    let fwd = Target::Forwarder;

    if want("established") {
        eprintln!("figure 1: established flows, {} flows, {} rounds of {} s", o.flows, o.rounds, o.seconds);
        let two = load(o, "established", o.flows, false);
        let one = load(o, "established", o.flows, true);
        let fnat = Target::gateway(Method::Fnat, "rr");
        let fnat_sync = Target::gateway_syncing(Method::Fnat, "rr");
        let fnat_checked = Target::gateway_checked(Method::Fnat, "rr");
        let fnat_pp = Target::gateway_proxy_protocol(Method::Fnat, "rr");
        let nat = Target::gateway(Method::Nat, "rr");
        let dr = Target::gateway(Method::Dr, "rr");
        let tun = Target::gateway(Method::Tun, "rr");
        let fnat6 = Target::gateway_v6(Method::Fnat, "rr");
        let pairs = [
            (fwd.clone(), two.clone()),
            (fnat.clone(), two.clone()),
            (fnat6.clone(), two.clone()),
            (fnat_sync.clone(), two.clone()),
            (fnat_checked.clone(), two.clone()),
            (fnat_pp.clone(), two.clone()),
            (nat.clone(), two.clone()),
            (fwd.clone(), one.clone()),
            (dr.clone(), one.clone()),
            (tun.clone(), one.clone()),
        ];
        rounds(env, &pairs, o.rounds, &mut runs);
        let f = "1 established";
        specs.push(spec(f, &fwd, &two, None, "reference: rx->tx, both ways"));
        specs.push(spec(f, &fnat, &two, Some((&fwd, &two)), "answers/s; the gateway forwards 2 packets per answer"));
        specs.push(spec(
            f,
            &fnat6,
            &two,
            Some((&fwd, &two)),
            "the same over IPv6: IPv6 clients, VIP, local addresses and servers",
        ));
        specs.push(spec(f, &fnat_sync, &two, Some((&fwd, &two)), "the same with a connection-sync master running"));
        specs.push(spec(
            f,
            &fnat_checked,
            &two,
            Some((&fwd, &two)),
            "the same beside 1000 servers health-checked every second through the worker",
        ));
        specs.push(spec(
            f,
            &fnat_pp,
            &two,
            Some((&fwd, &two)),
            "the same sending a PROXY protocol v2 header: every packet shifted by its length",
        ));
        specs.push(spec(f, &nat, &two, Some((&fwd, &two)), "answers/s; 2 packets per answer"));
        specs.push(spec(f, &fwd, &one, None, "reference: rx->tx, one way"));
        specs.push(spec(f, &dr, &one, Some((&fwd, &one)), "one way: replies bypass the director"));
        specs.push(spec(f, &tun, &one, Some((&fwd, &one)), "one way: replies bypass the director"));
    }

    if want("connect") {
        eprintln!("figure 2: new connections, up to {} per run, {} rounds", o.connect_flows, o.rounds);
        let l = load(o, "connect", o.connect_flows, false);
        let wlc = Target::gateway(Method::Fnat, "wlc");
        let wlc_sync = Target::gateway_syncing(Method::Fnat, "wlc");
        let mh = Target::gateway(Method::Fnat, "mh");
        let wlc6 = Target::gateway_v6(Method::Fnat, "wlc");
        rounds(
            env,
            &[
                (fwd.clone(), l.clone()),
                (wlc.clone(), l.clone()),
                (wlc6.clone(), l.clone()),
                (wlc_sync.clone(), l.clone()),
                (mh.clone(), l.clone()),
            ],
            o.rounds,
            &mut runs,
        );
        let f = "2 new connections";
        specs.push(spec(f, &fwd, &l, None, "reference: SYN, SYN-ACK, ACK through rx->tx"));
        specs.push(spec(f, &wlc, &l, Some((&fwd, &l)), "handshakes/s (SYN, SYN-ACK, ACK through the gateway)"));
        specs.push(spec(f, &wlc6, &l, Some((&fwd, &l)), "the same over IPv6"));
        specs.push(spec(f, &wlc_sync, &l, Some((&fwd, &l)), "the same with a connection-sync master: a record each"));
        specs.push(spec(f, &mh, &l, Some((&fwd, &l)), "handshakes/s"));
    }

    let mut synflood_note = String::new();
    if want("synflood") {
        eprintln!("SYN flood: spoofed sources, {} rounds", o.rounds);
        let l = load(o, "synflood", o.connect_flows, false);
        let proxied = Target::Gateway {
            method: Method::Fnat,
            scheduler: "rr".into(),
            synproxy: true,
            sync: false,
            checked: false,
            proxy_protocol: false,
            v6: false,
        };
        // Is the SYN proxy there? gwctl must accept -j and the servers must
        // see no SYN (the gateway answers them itself).
        let probe = env.run(&proxied, &load(o, "synflood", 1000, false), 0);
        let target = match (&probe.error, &probe.result) {
            (None, Some(g)) if g.server_seen == 0 && g.received > 0 => {
                synflood_note = "SYN proxy on (gwctl -j enable): SYN-ACKs are the gateway's cookies".into();
                proxied
            }
            (None, Some(_)) => {
                synflood_note = "gwctl -j enable accepted but the dataplane forwards the SYNs (no SYN proxy yet): \
                                 each SYN is a new connection, the real servers answer"
                    .into();
                Target::gateway(Method::Fnat, "rr")
            }
            (Some(e), _) => {
                synflood_note = format!(
                    "no SYN proxy (gwctl -j refused: {}); each SYN is a new connection",
                    e.lines().next().unwrap_or("")
                );
                Target::gateway(Method::Fnat, "rr")
            }
            _ => Target::gateway(Method::Fnat, "rr"),
        };
        eprintln!("  {synflood_note}");
        rounds(env, &[(fwd.clone(), l.clone()), (target.clone(), l.clone())], o.rounds, &mut runs);
        let f = "SYN flood";
        specs.push(spec(f, &fwd, &l, None, "reference: SYNs reflected through rx->tx"));
        specs.push(spec(f, &target, &l, Some((&fwd, &l)), &synflood_note));
    }

    if want("sweep") {
        eprintln!("figure 3: Mpps against live connections {:?}, {} rounds", o.sweep, o.sweep_rounds);
        let fnat = Target::gateway(Method::Fnat, "rr");
        for &n in &o.sweep {
            let l = load(o, "established", n, false);
            rounds(env, &[(fwd.clone(), l.clone()), (fnat.clone(), l.clone())], o.sweep_rounds, &mut runs);
            let f = "3 Mpps vs live conns";
            specs.push(spec(f, &fwd, &l, None, "reference"));
            specs.push(spec(f, &fnat, &l, Some((&fwd, &l)), ""));
        }
    }

    if want("peer") {
        eprintln!("figure 5: the kernel peer on veths (nftables DNAT+SNAT vs gatewayd on af_xdp), {} rounds", o.rounds);
        // af_xdp rings hold 2048 descriptors: a smaller window.
        let l = Load { window: o.window.min(1024), ..load(o, "established", o.flows, false) };
        let (fx, kn, gx) = (Target::ForwarderXdp, Target::KernelNat, Target::GatewayXdp);
        rounds(env, &[(fx.clone(), l.clone()), (kn.clone(), l.clone()), (gx.clone(), l.clone())], o.rounds, &mut runs);
        let f = "5 kernel peer (veth)";
        specs.push(spec(f, &fx, &l, None, "reference: l2fwd on af_xdp, rx->tx"));
        specs.push(spec(f, &kn, &l, Some((&fx, &l)), "Linux nftables DNAT+SNAT, conntrack, RPS to CPU 1"));
        specs.push(spec(f, &gx, &l, Some((&kn, &l)), "ratio to the kernel peer (goal >= 5x)"));
        specs.push(spec(f, &gx, &l, Some((&fx, &l)), "ratio to the forwarder on the same veths"));
    }

    let mut insns = Instructions::default();
    if want("insns") && !env.stop.load(Ordering::Relaxed) {
        eprintln!("figure 4: instructions (callgrind; a few minutes)");
        for (name, script) in [
            ("xmit", "gateway/benches/measure_insns.sh"),
            ("pipeline", "gateway/benches/measure_pipeline.sh"),
            ("conn", "gateway/benches/measure_conn.sh"),
        ] {
            match driver::run_script(&o.repo, script, &o.target_dir) {
                Ok(text) => {
                    eprint!("{text}");
                    match name {
                        "xmit" => insns.xmit = driver::parse_xmit_insns(&text),
                        "pipeline" => insns.pipeline = driver::parse_pipeline_insns(&text),
                        _ => insns.conn = driver::parse_conn_insns(&text),
                    }
                    insns.raw.insert(name.into(), text);
                }
                Err(e) => {
                    eprintln!("  {e}");
                    insns.raw.insert(name.into(), format!("FAILED: {e}"));
                }
            }
        }
    }

    let mut table = Vec::new();
    let mut table_raw = String::new();
    if want("table") && !env.stop.load(Ordering::Relaxed) {
        eprintln!("figure 6: connection table at 1M and 10M (cargo bench conn_table; a minute or two)");
        match driver::run_conn_table(&o.repo, &o.target_dir) {
            Ok(text) => {
                eprint!("{text}");
                table = driver::parse_conn_table(&text);
                table_raw = text;
            }
            Err(e) => {
                eprintln!("  {e}");
                table_raw = format!("FAILED: {e}");
            }
        }
    }

    let rows: Vec<Row> = specs.iter().filter_map(|s| row(&runs, s)).collect();
    let fnat_est = rows.iter().find(|r| r.figure.starts_with("1 ") && r.name.starts_with("FNAT"));
    let per_packet = insns.xmit.get("fnat_in").map(|x| x.0);
    let bytes = table.iter().map(|t| t.bytes_per_conn).max();
    let peer = rows.iter().find(|r| r.figure.starts_with("5 ") && r.name == Target::GatewayXdp.label());
    let goals = json!({
        "fnat_vs_forwarder": {"goal": ">= 0.70", "value": fnat_est.and_then(|r| r.ratio),
                               "met": fnat_est.and_then(|r| r.ratio).map(|x| x >= 0.70)},
        "instructions_per_established_fnat_packet": {"goal": "<= 150", "value": per_packet,
            "met": per_packet.map(|x| x <= 150),
            "what": "classify + FNAT rewrite (measure_insns.sh fnat_in, exact); the whole pipeline is pipeline.established"},
        "bytes_per_connection": {"goal": "<= 128", "value": bytes, "met": bytes.map(|x| x <= 128)},
        "vs_kernel_nat_peer": {"goal": ">= 5x", "value": peer.and_then(|r| r.ratio), "met": peer.and_then(|r| r.ratio).map(|x| x >= 5.0),
            "what": "FNAT on af_xdp / nftables NAT, same veths, same generator"},
    });
    json!({
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": driver::load_average(),
        "duration_seconds": started.elapsed().as_secs_f64(),
        "options": {
            "rounds": o.rounds, "seconds": o.seconds, "flows": o.flows, "connect_flows": o.connect_flows,
            "sweep": o.sweep, "sweep_rounds": o.sweep_rounds, "window": o.window, "payload": o.payload,
            "idle": env.idle.to_string(),
        },
        "rows": rows,
        "instructions": insns,
        "conn_table": table,
        "conn_table_raw": table_raw,
        "synflood_note": synflood_note,
        "goals": goals,
        "runs": runs,
    })
}

/// The short table printed at the end (and kept in the JSON's rows).
pub fn summary(doc: &serde_json::Value) -> String {
    let rows: Vec<Row> = serde_json::from_value(doc["rows"].clone()).unwrap_or_default();
    let mut out = driver::table(&rows);
    let insns: Instructions = serde_json::from_value(doc["instructions"].clone()).unwrap_or_default();
    if !insns.xmit.is_empty() || !insns.pipeline.is_empty() || !insns.conn.is_empty() {
        out += "\ninstructions (callgrind, exact):\n";
        if let Some((e, _)) = insns.xmit.get("fnat_in") {
            out += &format!("  established FNAT packet, classify + rewrite: {e}\n");
        }
        for (k, v) in &insns.pipeline {
            out += &format!("  whole pipeline, {k}: {v} per packet\n");
        }
        if let Some(v) = insns.conn.get("setup") {
            out += &format!("  new connection setup (schedule + port + insert): {v}\n");
        }
        if let Some(v) = insns.conn.get("lookup") {
            out += &format!("  connection lookup (100k table): {v}\n");
        }
        match insns.xmit.get("synack") {
            Some((e, _)) => out += &format!("  SYN cookie reply (synproxy SYN -> SYN-ACK): {e}\n"),
            None => out += "  SYN cookie reply: n/a (measure_insns.sh has no synack path)\n",
        }
    }
    let table: Vec<driver::TableFigure> = serde_json::from_value(doc["conn_table"].clone()).unwrap_or_default();
    if !table.is_empty() {
        out += "\nconnection table:\n";
        for t in &table {
            out += &format!(
                "  {:>9} live: {} bytes/conn, {:.1} M lookups/s ({:.1} M/s in bursts of 32)\n",
                t.live, t.bytes_per_conn, t.lookups_mps, t.burst_lookups_mps
            );
        }
    }
    out += "\ngoals (issue 9):\n";
    if let Some(goals) = doc["goals"].as_object() {
        for (name, g) in goals {
            let verdict = match g["met"].as_bool() {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "not measured",
            };
            let value = match &g["value"] {
                serde_json::Value::Null => "-".to_string(),
                v => v
                    .as_f64()
                    .map(|x| if x.fract() == 0.0 { format!("{x}") } else { format!("{x:.2}") })
                    .unwrap_or_else(|| v.to_string()),
            };
            out += &format!("  {name:<42} goal {:<7} value {value:<8} {verdict}\n", g["goal"].as_str().unwrap_or(""));
        }
    }
    out
}
