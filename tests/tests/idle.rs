//! `"idle": "sleep"`: an idle gatewayd gives its cores back, yet its
//! workers keep beating (a watchdog with a one-second stall time does not
//! stop it), answer at once when traffic comes, and take configuration
//! changes made while they rested.

use std::time::Duration;

use gateway_e2e::topology::{rip, Options, Topology, VIP};

/// Seconds of CPU (user and system) process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a /proc stat line").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let out = gateway_e2e::run("getconf", &["CLK_TCK"]);
    let hz: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("CLK_TCK");
    ticks as f64 / hz
}

#[test]
fn an_idle_sleeping_gateway_gives_its_cores_back_and_still_answers() {
    let mut topo = Topology::start(
        "idl",
        Options {
            workers: 2,
            servers: 2,
            idle: "sleep".into(),
            extra_config: r#""watchdog": {"stall_seconds": 1}"#.into(),
            ..Options::default()
        },
    );
    // Two busy-polling workers would use two cores' worth (or all the CPU
    // the machine's load leaves them); resting, they use a sliver.
    let pid = topo.gatewayd_pid();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_seconds(pid);
    let idle_for = Duration::from_secs(3);
    std::thread::sleep(idle_for);
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.25 * idle_for.as_secs_f64(),
        "gatewayd used {used:.2} s of CPU in {idle_for:?} idle: its workers do not rest"
    );
    assert!(topo.gatewayd_running(), "a resting worker counted as stalled:\n{}", topo.gatewayd_log());
    assert!(!topo.gwctl(&["stats"]).contains("stalled"), "{}", topo.gwctl(&["stats"]));

    // Traffic wakes them: every echo request to the gateway is answered.
    let out = topo.client.output("ping", &["-c", "20", "-i", "0.05", "-W", "1", "10.0.0.254"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("20 received"), "{text}");

    // A service added while they rested is served.
    topo.fnat_service("-s rr", &["", ""]);
    let _servers = topo.python_http(&[rip(0), rip(1)]);
    let url = format!("http://{VIP}/");
    topo.wait_for_service(&url);
    let answers = topo.curl_many(None, &url, 4);
    assert!(answers.len() == 4 && answers.iter().all(|a| a.starts_with("rs")), "{answers:?}");
}
