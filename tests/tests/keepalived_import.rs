//! `gwctl import-keepalived` into a running gatewayd: a keepalived.conf with two
//! virtual_servers (one HTTP_GET with a digest and a status, one TCP_CHECK, one MISC_CHECK
//! server, one SSL_GET of nginx over TLS) imports as the services `gwctl -Sn` saves and the checks `gwctl --health -L`
//! lists, and the checks run: a server whose nginx stops is inhibited (keepalived's
//! `inhibit_on_failure`) and comes back. A file with a keyword that does not map is refused
//! naming it, and the table is unchanged.
//!
//! The director has its own namespace and kernel interfaces, as in `tests/health.rs`: the
//! probes are sockets of that namespace and reach the servers by gwk1 and the DPDK port.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use gateway_e2e::topology::{nginx_in, nginx_with_tls_in, rip, Options, Topology, VIP};
use gateway_e2e::wait_until;

/// The health page and its MD5, as `genhash` prints it (`printf 'healthy\n' | md5sum`).
const HEALTH_PAGE: &str = "healthy\n";
const HEALTH_DIGEST: &str = "3b1fb749c971d7a2c6a517b37f735df2";

/// The slowest detection allowed: delay_loop x (retry + 1) plus the probes' time and slack
/// for a loaded test machine.
const DETECT: Duration = Duration::from_secs(6);

/// The weight `gwctl -Ln` shows for `rs` of `service` (`TCP  VIP:PORT`), or `None`.
fn listed_weight(topo: &Topology, service: &str, rs: &str) -> Option<u32> {
    let listing = topo.gwctl(&["-Ln"]);
    let mut in_service = false;
    listing.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.first().is_some_and(|p| *p == "TCP" || *p == "UDP") {
            in_service = f.get(1) == Some(&service);
        }
        (in_service && f.len() >= 4 && f[0] == "->" && f[1] == rs).then(|| f[3].parse().unwrap())
    })
}

#[test]
fn a_keepalived_conf_imports_and_its_checks_run() {
    let options = Options { servers: 2, director_netns: true, kernel: true, ..Options::default() };
    let topo = Topology::start("ka", options);
    let mut nginx = Vec::new();
    for i in 0..2 {
        let dir = topo.dir().join(format!("rs{i}"));
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("health.html"), HEALTH_PAGE).unwrap();
        // The first also speaks TLS on 8443, for the SSL_GET.
        let tls = if i == 0 { vec![format!("{}:8443", rip(i))] } else { Vec::new() };
        nginx.push(Some(nginx_with_tls_in(
            &topo.servers,
            &dir,
            &format!("{}-{i}", topo.id()),
            &[format!("{}:8080", rip(i))],
            &tls,
            true,
        )));
    }
    let script = topo.dir().join("check.sh");
    std::fs::write(&script, "#!/bin/sh\n[ \"$GW_SERVER_PORT\" = 8080 ] || exit 1\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (rs0, rs1) = (rip(0), rip(1));

    let conf = format!(
        r#"! keepalived.conf of the director this gateway replaces
global_defs {{
    router_id LVS_1
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {{
        {VIP}
    }}
}}

virtual_server {VIP} 80 {{
    delay_loop 0.5
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    inhibit_on_failure

    real_server {rs0} 8080 {{
        weight 2
        HTTP_GET {{
            url {{
                path /health.html
                digest {HEALTH_DIGEST}
                status_code 200
            }}
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }}
    }}
    real_server {rs1} 8080 {{
        weight 3
        TCP_CHECK {{
            connect_port 8080
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }}
    }}
}}

virtual_server {VIP} 443 {{
    delay_loop 0.5
    lvs_sched rr
    lvs_method NAT
    inhibit_on_failure
    real_server {rs0} 8443 {{
        SSL_GET {{
            url {{
                path /health.html
                digest {HEALTH_DIGEST}
            }}
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }}
    }}
}}

virtual_server {VIP} 8080 {{
    delay_loop 0.5
    lvs_sched wlc
    lvs_method NAT
    persistence_timeout 60
    real_server {rs0} 8080 {{
        MISC_CHECK {{
            misc_path "{script}"
            misc_timeout 2
        }}
    }}
}}
"#,
        script = script.display()
    );
    let file = topo.dir().join("keepalived.conf");
    std::fs::write(&file, &conf).unwrap();
    let file = file.to_str().unwrap();

    let out = topo.gwctl_output(&["import-keepalived", file], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("skipped vrrp_instance (line 5)"), "{stderr}");

    let saved = format!(
        "-A -t {VIP}:80 -s rr\n\
         -a -t {VIP}:80 -r {rs0}:8080 -m -w 2\n\
         -a -t {VIP}:80 -r {rs1}:8080 -m -w 3\n\
         -A -t {VIP}:443 -s rr\n\
         -a -t {VIP}:443 -r {rs0}:8443 -m -w 1\n\
         -A -t {VIP}:8080 -s wlc -p 60\n\
         -a -t {VIP}:8080 -r {rs0}:8080 -m -w 1\n"
    );
    assert_eq!(topo.gwctl(&["-Sn"]), saved);
    // Every server is checked as the file says, and the checks pass.
    let rows = |topo: &Topology| -> Vec<Vec<String>> {
        topo.gwctl(&["--health", "-L"])
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = rows(&topo);
            r.len() == 4 && r.iter().all(|row| row[7] == "ok")
        }),
        "{}\n{}",
        topo.gwctl(&["--health", "-L"]),
        topo.gatewayd_log()
    );
    let summary: Vec<String> = rows(&topo).iter().map(|r| r[1..7].join(" ")).collect();
    assert_eq!(
        summary,
        [
            format!("{VIP}:80 {rs0}:8080 http up 2 2"),
            format!("{VIP}:80 {rs1}:8080 tcp up 3 3"),
            format!("{VIP}:443 {rs0}:8443 https up 1 1"),
            format!("{VIP}:8080 {rs0}:8080 misc up 1 1"),
        ]
    );

    // The TCP_CHECK server's nginx stops: inhibited (weight 0, still listed), as
    // inhibit_on_failure says; back with its weight once it listens again.
    let web = format!("{VIP}:80");
    let rs1_port = format!("{rs1}:8080");
    drop(nginx[1].take());
    assert!(
        wait_until(DETECT, || listed_weight(&topo, &web, &rs1_port) == Some(0)),
        "{}\n{}",
        topo.gwctl(&["-Ln"]),
        topo.gwctl(&["--health", "-L"])
    );
    let dir = topo.dir().join("rs1");
    let _restarted = nginx_in(&topo.servers, &dir, &format!("{}-1b", topo.id()), std::slice::from_ref(&rs1_port), true);
    assert!(
        wait_until(DETECT, || listed_weight(&topo, &web, &rs1_port) == Some(3)),
        "{}\n{}",
        topo.gwctl(&["-Ln"]),
        topo.gwctl(&["--health", "-L"])
    );

    // A file with a keyword that does not map: named with its line, nothing applied.
    let bad = topo.dir().join("bad.conf");
    std::fs::write(
        &bad,
        format!(
            "virtual_server {VIP} 443 {{\n    lvs_method NAT\n    real_server {rs0} 443 {{\n        \
             SMTP_CHECK {{\n        }}\n    }}\n    hysteresis 2\n}}\n"
        ),
    )
    .unwrap();
    let out = topo.gwctl_output(&["import-keepalived", bad.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 4: `SMTP_CHECK' is not supported"), "{stderr}");
    assert!(stderr.contains("line 7: unknown keyword `hysteresis' in virtual_server"), "{stderr}");
    assert!(stderr.ends_with("cannot be imported; nothing was applied\n"), "{stderr}");
    assert_eq!(topo.gwctl(&["-Sn"]), saved);
}
