//! `gwctl import-keepalived` through the real binary against an in-process control server: a
//! keepalived.conf with two virtual_servers (HTTP_GET with a digest and a status, TCP_CHECK,
//! MISC_CHECK) imports as the services, servers and checks `-S` and `--health -L` list; a
//! file with a keyword that does not map, or one gatewayd refuses, changes nothing. The
//! checker's thread does not run here: the checks' behaviour is `tests/health.rs`'s.

mod common;

use std::path::PathBuf;

use common::Gateway;

/// Writes `text` beside the gateway's socket (removed with it).
fn conf(gw: &Gateway, name: &str, text: &str) -> PathBuf {
    let path = gw.socket.parent().unwrap().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const KEEPALIVED_CONF: &str = r#"! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.0.0.100
    }
}

virtual_server 10.0.0.100 80 {
    delay_loop 6
    lvs_sched wrr
    lvs_method NAT
    persistence_timeout 300
    protocol TCP
    inhibit_on_failure

    real_server 192.168.1.10 8080 {
        weight 3
        HTTP_GET {
            url {
              path /health.html
              digest 3b1fb749c971d7a2c6a517b37f735df2
              status_code 200
            }
            connect_timeout 3
            retry 3
            delay_before_retry 2
        }
    }
    real_server 192.168.1.11 8080 {
        weight 1
        TCP_CHECK {
            connect_port 8080
            connect_timeout 2
        }
    }
}

virtual_server 10.0.0.100 443 {
    lvs_sched rr
    lvs_method NAT
    real_server 192.168.1.12 443 {
        MISC_CHECK {
            misc_path /bin/true
            misc_timeout 4
            misc_dynamic
        }
    }
}
"#;

const SAVED: &str = "\
-A -t 10.0.0.100:80 -s wrr -p 300
-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -m -w 3
-a -t 10.0.0.100:80 -r 192.168.1.11:8080 -m -w 1
-A -t 10.0.0.100:443 -s rr
-a -t 10.0.0.100:443 -r 192.168.1.12:443 -m -w 1
";

#[test]
fn a_keepalived_conf_imports_as_services_servers_and_checks_in_one_change() {
    let gw = Gateway::start("keepalived-import");
    let file = conf(&gw, "keepalived.conf", KEEPALIVED_CONF);
    let file = file.to_str().unwrap();

    // The dry run prints what would be applied and applies nothing.
    let dry = gw.gwctl(&format!("import-keepalived {file} --dry-run"));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.starts_with(SAVED), "{}", dry.stdout);
    assert!(
        dry.stdout.contains(
            "--health -t 10.0.0.100:443 -r 192.168.1.12:443 --check misc --script /bin/true --dynamic --delay-loop 60 \
             --connect-timeout 4 --retry 0"
        ),
        "{}",
        dry.stdout
    );
    assert_eq!(gw.gwctl("-S -n").stdout, "");

    let imported = gw.gwctl(&format!("import-keepalived {file}"));
    assert_eq!((imported.code, imported.stdout.as_str()), (0, ""), "{}", imported.stderr);
    // The skipped blocks are said once each.
    assert_eq!(
        imported.stderr,
        format!(
            "gwctl: {file}: skipped global_defs (line 2): not the LVS part, left to keepalived\n\
             gwctl: {file}: skipped vrrp_instance (line 6): not the LVS part, left to keepalived\n"
        )
    );
    assert_eq!(gw.gwctl("-S -n").stdout, SAVED);
    assert_eq!(
        gw.gwctl("--health -L").stdout,
        "\
Prot LocalAddress:Port      RemoteAddress:Port          Check  State        Weight Config Result    Checks   Failed Trans   Since  Passive     Reason
TCP  10.0.0.100:80          192.168.1.10:8080           http   up                3      3 -              0        0     0       -  -
TCP  10.0.0.100:80          192.168.1.11:8080           tcp    up                1      1 -              0        0     0       -  -
TCP  10.0.0.100:443         192.168.1.12:443            misc   up                1      1 -              0        0     0       -  -
"
    );
    let json: serde_json::Value = serde_json::from_str(&gw.gwctl("--health -L --json").stdout).unwrap();
    assert_eq!(json[0]["check"]["kind"]["digest"], "3b1fb749c971d7a2c6a517b37f735df2");
    assert_eq!(json[0]["check"]["delay_loop_ms"], 6000);
    assert_eq!(json[0]["check"]["retry"], 3);
    assert_eq!(json[0]["check"]["on_failure"], "inhibit");
    // keepalived's defaults where the file says nothing: delay_loop 60, retry 1 (misc 0), and
    // a server without inhibit_on_failure is removed when it fails.
    assert_eq!(json[1]["check"]["connect_timeout_ms"], 2000);
    assert_eq!(json[1]["check"]["retry"], 1);
    assert_eq!(json[2]["check"]["delay_loop_ms"], 60_000);
    assert_eq!(json[2]["check"]["retry"], 0);
    assert_eq!(json[2]["check"]["on_failure"], "remove");
    assert_eq!(json[2]["check"]["kind"]["dynamic"], true);

    // Importing it again: gatewayd refuses the first service, and nothing of the file is
    // applied twice.
    let again = gw.gwctl(&format!("import-keepalived {file}"));
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.ends_with(&format!(
            "{file}: line 15: service TCP 10.0.0.100:80 already exists\ngwctl: gatewayd refused {file}; nothing was applied\n"
        )),
        "{}",
        again.stderr
    );
    assert_eq!(gw.gwctl("-S -n").stdout, SAVED);
}

#[test]
fn a_file_that_does_not_map_is_refused_by_keyword_and_changes_nothing() {
    let gw = Gateway::start("keepalived-refused");
    gw.ok("-A -t 10.0.0.1:80 -s rr");
    let before = gw.gwctl("-S -n").stdout;

    let unknown = conf(
        &gw,
        "unknown.conf",
        "virtual_server 10.0.0.100 80 {\n    lvs_method NAT\n    sorry_server 192.168.1.99 80\n    \
         real_server 192.168.1.10 80 {\n        SMTP_CHECK {\n            helo_name gw\n        }\n    }\n}\n",
    );
    let unknown = unknown.to_str().unwrap();
    let o = gw.gwctl(&format!("import-keepalived {unknown}"));
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr),
        (
            2,
            "",
            format!(
                "{unknown}: line 3: unknown keyword `sorry_server' in virtual_server\n\
                 {unknown}: line 5: `SMTP_CHECK' is not supported: gatewayd's checks are TCP_CHECK, HTTP_GET, \
                 SSL_GET and MISC_CHECK (and gwctl --health's udp)\n\
                 gwctl: {unknown} cannot be imported; nothing was applied\n"
            )
        )
    );
    assert_eq!(gw.gwctl("-S -n").stdout, before);

    let unbalanced = conf(&gw, "unbalanced.conf", "virtual_server 10.0.0.100 80 {\n    lvs_method NAT\n");
    let unbalanced = unbalanced.to_str().unwrap();
    let o = gw.gwctl(&format!("import-keepalived {unbalanced} --dry-run"));
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.starts_with(&format!(
            "{unbalanced}: line 1: the block of `virtual_server' is never closed (unbalanced braces)\n"
        )),
        "{}",
        o.stderr
    );

    // What only gatewayd judges (a scheduler it does not have, a script that is not there)
    // refuses the whole file: the first service, valid, is not applied either.
    let refused = conf(
        &gw,
        "refused.conf",
        "virtual_server 10.0.0.100 80 {\n    lvs_sched rr\n    real_server 192.168.1.10 80\n}\n\
         virtual_server 10.0.0.100 81 {\n    lvs_sched fancy\n}\n",
    );
    let refused = refused.to_str().unwrap();
    let o = gw.gwctl(&format!("import-keepalived {refused}"));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.starts_with(&format!("{refused}: line 5: ")), "{}", o.stderr);
    assert!(o.stderr.ends_with(&format!("gwctl: gatewayd refused {refused}; nothing was applied\n")), "{}", o.stderr);
    assert_eq!(gw.gwctl("-S -n").stdout, before);

    let o = gw.gwctl("import-keepalived /nonexistent/keepalived.conf");
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with("gwctl: cannot read /nonexistent/keepalived.conf: No such file"), "{}", o.stderr);
}

#[test]
fn dpvs_s_fullnat_imports_with_its_local_addresses() {
    let gw = Gateway::start("keepalived-fnat");
    let file = conf(
        &gw,
        "fnat.conf",
        "local_address_group laddr_g1 {\n    192.168.100.200 dpdk1\n}\n\
         virtual_server 10.0.0.100 80 {\n    lb_algo rr\n    lb_kind FNAT\n    syn_proxy\n    \
         laddr_group_name laddr_g1\n    real_server 192.168.1.10 8080 {\n        TCP_CHECK {\n        }\n    }\n}\n",
    );
    let o = gw.gwctl(&format!("import-keepalived {}", file.display()));
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(
        gw.gwctl("-S -n").stdout,
        "\
-A -t 10.0.0.100:80 -s rr -j enable
-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -b -w 1
-P -t 10.0.0.100:80 -z 192.168.100.200 -F dpdk1
"
    );
}

/// keepalived's IPv6 virtual_servers: the address and the real servers' as keepalived
/// writes them (bare, port apart), `persistence_granularity` as a prefix length, and
/// DPVS's fullnat with a v6 local address; the dry run prints them in the bracketed form
/// `gwctl -R` and `gwctl --health` read back.
#[test]
fn ipv6_virtual_servers_import_with_their_real_servers_and_local_addresses() {
    let gw = Gateway::start("keepalived-v6");
    let text = "\
local_address_group laddr_v6 {
    2001:db8:ff::1 dpdk1
}
virtual_server 2001:db8::1 80 {
    delay_loop 10
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 600
    persistence_granularity 64
    protocol TCP
    real_server 2001:db8::10 8080 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 2001:db8::11 8080 {
        weight 1
    }
}
virtual_server 2001:db8::2 443 {
    lb_algo rr
    lb_kind FNAT
    laddr_group_name laddr_v6
    real_server 2001:db8:1::20 8443 {
        TCP_CHECK {
        }
    }
}
virtual_server 2001:db8::53 53 {
    lb_algo sh
    lb_kind DR
    protocol UDP
    real_server 2001:db8:1::53 53
}
";
    let file = conf(&gw, "v6.conf", text);
    let file = file.to_str().unwrap();
    let saved = "\
-A -t [2001:db8::1]:80 -s wrr -p 600 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m -w 2
-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m -w 1
-A -t [2001:db8::2]:443 -s rr
-a -t [2001:db8::2]:443 -r [2001:db8:1::20]:8443 -b -w 1
-P -t [2001:db8::2]:443 -z 2001:db8:ff::1 -F dpdk1
-A -u [2001:db8::53]:53 -s sh
-a -u [2001:db8::53]:53 -r [2001:db8:1::53]:53 -g -w 1
";
    let dry = gw.gwctl(&format!("import-keepalived {file} --dry-run"));
    assert_eq!((dry.code, dry.stderr.as_str()), (0, ""));
    assert!(dry.stdout.starts_with(saved), "{}", dry.stdout);
    let health = "--health -t [2001:db8::1]:80 -r [2001:db8::10]:8080 --check tcp --delay-loop 10 --connect-timeout 3";
    assert!(dry.stdout.contains(health), "{}", dry.stdout);
    // The dry run's rules are what -R takes: restored, they save as the import does.
    let rules: String = dry.stdout.lines().filter(|l| !l.starts_with("--health")).map(|l| format!("{l}\n")).collect();
    let o = gw.gwctl_in("-R", &rules);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(gw.gwctl("-S -n").stdout, saved);
    // And its --health lines are what gwctl --health takes.
    let checks: Vec<&str> = dry.stdout.lines().filter(|l| l.starts_with("--health")).collect();
    assert_eq!(checks.len(), 2, "{}", dry.stdout);
    for line in &checks {
        gw.ok(line);
    }
    let restored_checks = gw.gwctl("--health -L").stdout;
    gw.ok("-C");

    let o = gw.gwctl(&format!("import-keepalived {file}"));
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
    assert_eq!(gw.gwctl("-S -n").stdout, saved);
    let listed = gw.gwctl("--health -L").stdout;
    assert!(listed.contains("TCP  [2001:db8::1]:80       [2001:db8::10]:8080         tcp    up"), "{listed}");
    assert!(listed.contains("TCP  [2001:db8::2]:443      [2001:db8:1::20]:8443       tcp    up"), "{listed}");
    assert_eq!(listed, restored_checks);

    // An IPv4 real server behind an IPv6 virtual_server: gatewayd refuses it by its line,
    // and nothing of the file is applied.
    gw.ok("-C");
    let mixed = conf(
        &gw,
        "mixed.conf",
        "virtual_server 2001:db8::5 80 {\n    lb_kind NAT\n    real_server 2001:db8::50 80\n    \
         real_server 192.168.1.50 80\n}\n",
    );
    let mixed = mixed.to_str().unwrap();
    let o = gw.gwctl(&format!("import-keepalived {mixed}"));
    assert_eq!(
        (o.code, o.stderr),
        (
            1,
            format!(
                "{mixed}: line 4: real server 192.168.1.50:80 is not of the same address family as service TCP \
                 [2001:db8::5]:80\ngwctl: gatewayd refused {mixed}; nothing was applied\n"
            )
        )
    );
    assert_eq!(gw.gwctl("-S -n").stdout, "");

    // A granularity that is not a prefix length, named with its line.
    let bad = conf(
        &gw,
        "granularity.conf",
        "virtual_server 2001:db8::6 80 {\n    persistence_timeout 60\n    persistence_granularity 255.255.255.0\n}\n",
    );
    let bad = bad.to_str().unwrap();
    let o = gw.gwctl(&format!("import-keepalived {bad}"));
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with(&format!("{bad}: line 3: ")), "{}", o.stderr);
    assert!(o.stderr.contains("a prefix length, 1 to 128"), "{}", o.stderr);
}
