//! `gwbench`: see the crate docs and PERFORMANCE.md.

use std::process::ExitCode;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use gateway::worker::idle::IdleMode;
use gwbench::driver::Env;
use gwbench::gen::{self, GenOptions, Mode};
use gwbench::suite::{self, SuiteOptions};

const USAGE: &str = "\
usage: gwbench gen [--mode established|connect|synflood] [--flows N] [--count N]
                   [--seconds S] [--handshake-seconds S] [--payload BYTES] [--window N]
                   [--oneway] [--hold] [--client DEV] [--server DEV] [--gateway-mac MAC]
                   [--vip ADDR] [--vport PORT] -- EAL_ARGS...
       gwbench summary RESULTS.json
       gwbench all [--quick] [--rounds N] [--seconds S] [--flows N] [--connect-flows N]
                   [--sweep N,N,...] [--sweep-rounds N] [--window N] [--payload BYTES]
                   [--figures established,connect,synflood,sweep,peer,insns,table]
                   [--out FILE] [--repo DIR] [--target-dir DIR] [--bin-dir DIR]
                   [--lips N] [--idle poll|sleep] [--copy-generator] [--verbose]

gen runs the traffic generator alone (one JSON result on stdout). all runs the
whole benchmark: the plain forwarder (l2fwd) and gatewayd as the gateway, each
figure next to its reference, writes the JSON (default
target/bench/results.json) and prints a short table. See PERFORMANCE.md.";

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC {s:?}"))?;
    parts.try_into().map_err(|_| format!("bad MAC {s:?}"))
}

fn parse_gen(args: &[String]) -> Result<GenOptions, String> {
    let mut o = GenOptions::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            o.eal = it.cloned().collect();
            break;
        }
        if arg == "--oneway" {
            o.oneway = true;
            continue;
        }
        if arg == "--hold" {
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let num = |what: &str| v.parse::<f64>().map_err(|_| format!("{what} {v:?}: not a number"));
        match arg.as_str() {
            "--mode" => o.mode = Mode::parse(v).ok_or_else(|| format!("--mode {v:?}"))?,
            "--flows" => o.flows = num("--flows")? as u32,
            "--count" => o.count = num("--count")? as u64,
            "--seconds" => o.seconds = num("--seconds")?,
            "--handshake-seconds" => o.handshake_seconds = num("--handshake-seconds")?,
            "--payload" => o.payload = num("--payload")? as usize,
            "--window" => o.window = num("--window")? as u32,
            "--client" => o.client_dev = v.clone(),
            "--server" => o.server_dev = v.clone(),
            "--gateway-mac" => o.gateway_mac = parse_mac(v)?,
            "--vip" => o.vip = v.parse().map_err(|_| format!("--vip {v:?}"))?,
            "--vport" => o.vport = num("--vport")? as u16,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if o.eal.is_empty() {
        return Err("no EAL arguments: put them after --".into());
    }
    Ok(o)
}

fn parse_all(args: &[String]) -> Result<(SuiteOptions, Env), String> {
    let mut o = SuiteOptions::default();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut bin_dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let mut env = Env {
        gatewayd: PathBuf::new(),
        l2fwd: PathBuf::new(),
        gwctl: PathBuf::new(),
        gwbench: exe.clone(),
        copy_generator: false,
        stop: Arc::new(AtomicBool::new(false)),
        lips: gwbench::driver::DEFAULT_LIPS,
        verbose: false,
        idle: IdleMode::Poll,
    };
    o.target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target"));
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                o.rounds = 1;
                o.seconds = 1.0;
                o.sweep = vec![1_000, 100_000];
                o.sweep_rounds = 1;
                o.connect_flows = 200_000;
                continue;
            }
            "--copy-generator" => {
                env.copy_generator = true;
                continue;
            }
            "--verbose" => {
                env.verbose = true;
                continue;
            }
            "-h" | "--help" => return Err(String::new()),
            _ => {}
        }
        let v = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let num = |what: &str| {
            v.parse::<f64>().ok().filter(|x| *x >= 0.0).ok_or_else(|| format!("{what} {v:?}: not a number"))
        };
        match arg.as_str() {
            "--rounds" => o.rounds = num(arg)?.max(1.0) as u32,
            "--seconds" => o.seconds = num(arg)?,
            "--flows" => o.flows = num(arg)?.max(1.0) as u32,
            "--connect-flows" => o.connect_flows = num(arg)?.max(1.0) as u32,
            "--sweep" => {
                o.sweep =
                    v.split(',').map(|x| x.parse().map_err(|_| format!("--sweep {v:?}"))).collect::<Result<_, _>>()?
            }
            "--sweep-rounds" => o.sweep_rounds = num(arg)?.max(1.0) as u32,
            "--window" => o.window = num(arg)? as u32,
            "--payload" => o.payload = num(arg)? as u32,
            "--figures" => o.figures = v.split(',').map(String::from).collect(),
            "--out" => o.out = PathBuf::from(v),
            "--repo" => o.repo = PathBuf::from(v),
            "--target-dir" => o.target_dir = PathBuf::from(v),
            "--bin-dir" => bin_dir = PathBuf::from(v),
            "--lips" => env.lips = num(arg)?.clamp(1.0, 100.0) as u8,
            "--idle" => {
                env.idle = IdleMode::parse(v)
                    .ok_or_else(|| format!("--idle {v:?}: not an idle mode (one of {})", IdleMode::NAMES.join(", ")))?
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    env.gatewayd = bin_dir.join("gatewayd");
    env.l2fwd = bin_dir.join("l2fwd");
    env.gwctl = bin_dir.join("gwctl");
    for p in [&env.gatewayd, &env.l2fwd, &env.gwctl] {
        if !p.exists() {
            return Err(format!(
                "{} not found: build with cargo build --release -p gateway -p gwctl -p gwbench --bins (or give --bin-dir)",
                p.display()
            ));
        }
    }
    Ok((o, env))
}

fn run_all(args: &[String]) -> ExitCode {
    let (opts, env) = match parse_all(args) {
        Ok(x) => x,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gwbench all: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, env.stop.clone()) {
            eprintln!("gwbench: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let doc = suite::run(&env, &opts);
    if let Some(dir) = opts.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&opts.out, serde_json::to_string_pretty(&doc).expect("json")) {
        eprintln!("gwbench: cannot write {}: {e}", opts.out.display());
        return ExitCode::FAILURE;
    }
    println!("{}", suite::summary(&doc));
    println!("results: {}", opts.out.display());
    if env.stop.load(std::sync::atomic::Ordering::Relaxed) {
        return ExitCode::from(130);
    }
    ExitCode::SUCCESS
}

/// `--hold` (before `--`): after printing the result, keep the links open
/// until stdin closes.
fn opts_hold(args: &[String]) -> bool {
    args.iter().take_while(|a| *a != "--").any(|a| a == "--hold")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let opts = match parse_gen(&args[1..]) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("gwbench gen: {e}\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            };
            let hold = opts_hold(&args[1..]);
            let report = |r: &gwbench::result::GenResult| {
                use std::io::{Read, Write};
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", serde_json::to_string(r).expect("serialisable"));
                let _ = out.flush();
                if hold {
                    // Keep the links open until the driver has stopped the
                    // device under test and closed our stdin.
                    let _ = std::io::stdin().read_to_end(&mut Vec::new());
                }
            };
            match gen::run(opts, report) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gwbench gen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("all") => run_all(&args[1..]),
        Some("summary") if args.len() == 2 => {
            let doc = std::fs::read_to_string(&args[1])
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
            match doc {
                Ok(doc) => {
                    println!("{}", suite::summary(&doc));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gwbench summary: {}: {e}", args[1]);
                    ExitCode::FAILURE
                }
            }
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
