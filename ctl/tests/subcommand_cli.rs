//! The clap command line of gwctl's own subcommands, through the binary: the spellings it
//! accepts, its help, what it refuses (before any request is sent), and the shell
//! completions generated from it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Gateway, Output};

const TRY: &str = "Try `gwctl -h' or 'gwctl --help' for more information.\n";

/// A socket nothing listens on: a line that gets past the parser fails to connect, so
/// a usage error shows the line was refused before any request.
fn no_gateway() -> PathBuf {
    std::env::temp_dir().join(format!("gwctl-subcommand-cli-{}-absent.sock", std::process::id()))
}

fn gwctl(args: &[&str]) -> Output {
    common::gwctl_with(&no_gateway(), args.iter().copied(), "", &[])
}

fn expect(gw: &Gateway, args: &str, stdout: &str) {
    let o = gw.gwctl(args);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, stdout, ""), "gwctl {args}");
}

#[test]
fn options_keywords_and_aliases_configure_the_gateway() {
    let gw = Gateway::start("subcommand-cli");
    // The keyword pairs in any order, or as options.
    gw.ok("route add default dev dpdk0 via 10.0.0.254");
    gw.ok("addr add 10.0.0.1/24 --dev dpdk0");
    gw.ok("addr add 10.0.1.1/24 --dev=dpdk1");
    gw.ok("neigh add 10.0.0.254 dev dpdk0 lladdr 52:54:00:12:34:56");
    // An interface may be named like a keyword.
    gw.ok("addr add 10.0.2.1/24 dev via");
    gw.ok("mark add 7 --destination 10.0.0.1 --protocol udp --dport 53 --dports 5353-5354");
    expect(&gw, "addr ls", "inet 10.0.0.1/24 dev dpdk0\ninet 10.0.1.1/24 dev dpdk1\ninet 10.0.2.1/24 dev via\n");
    expect(&gw, "route list", "default via 10.0.0.254 dev dpdk0\n");
    expect(&gw, "neigh show", "10.0.0.254 dev dpdk0 lladdr 52:54:00:12:34:56 PERMANENT\n");
    expect(&gw, "mark", "7 -d 10.0.0.1/32 -p udp --dports 53,5353-5354\n");
    // The global options before or after the subcommand.
    let socket = gw.socket.to_str().unwrap();
    let elsewhere = no_gateway();
    let o = common::gwctl_with(&elsewhere, ["route", "show", "--socket", socket], "", &[]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "default via 10.0.0.254 dev dpdk0\n"), "{}", o.stderr);
    let o = common::gwctl_with(&elsewhere, [&format!("--socket={socket}"), "--json", "mark"], "", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["rules"][0]["mark"], 7, "{}", o.stdout);
}

#[test]
fn each_subcommand_has_its_help() {
    for (args, first_lines) in [
        (&["addr", "--help"][..], "The gateway's own addresses on its ports"),
        (&["addr", "add", "-h"], "Add an address to a port\n\nUsage: gwctl addr add ADDR[/LEN] dev IFNAME\n"),
        (&["route", "add", "--help"], "Add a route\n\nUsage: gwctl route add PREFIX|default [via GW] dev IFNAME\n"),
        (
            &["neigh", "add", "--help"],
            "Add a permanent neighbour\n\nUsage: gwctl neigh add ADDR lladdr MAC dev IFNAME\n",
        ),
        (&["link", "--help"], "The ports: state, MTU, MAC and counters per port and queue\n"),
        (&["stats", "--help"], "Per-worker packet, event and drop counters\n"),
        (&["sync", "--help"], "Connection sync: the daemons running (ipvsadm's --start-daemon) and the counters"),
        (&["mark", "add", "--help"], "Add a rule: packets to PREFIX"),
        (&["--socket", "/nowhere", "completions", "--help"], "Print gwctl's completion script for a shell"),
        (&["import-keepalived", "--help"], "Apply the virtual_server blocks of a keepalived.conf as services"),
    ] {
        let o = gwctl(args);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{args:?}");
        assert!(o.stdout.starts_with(first_lines), "{args:?}: {}", o.stdout);
    }
    let mark = gwctl(&["mark", "add", "--help"]).stdout;
    for option in ["-d, --destination <ADDR[/LEN]>", "-p, --protocol <PROTOCOL>", "--dports <P[,LO-HI]...>", "--json"] {
        assert!(mark.contains(option), "{option}: {mark}");
    }
    // ipvsadm's help names them.
    let o = gwctl(&["--help"]);
    assert!(
        o.stdout.contains("gwctl addr|route|neigh|link|stats|sync|mark|import-keepalived|completions --help"),
        "{}",
        o.stdout
    );
}

#[test]
fn bad_lines_are_refused_before_any_request() {
    for (args, stderr) in [
        (&["addr", "add", "10.0.0.1/33", "dev", "dpdk0"][..], "invalid prefix length \"33\" for 10.0.0.1\n".to_string()),
        (&["route", "add", "10.0.0.0/8", "via", "gw", "dev", "dpdk0"], "invalid address \"gw\"\n".into()),
        (&["neigh", "del", "10.0.0.300", "dev", "dpdk0"], "invalid address \"10.0.0.300\"\n".into()),
        (
            &["neigh", "add", "10.0.0.254", "lladdr", "52:54:00:12:34", "dev", "dpdk0"],
            "\"52:54:00:12:34\" is not a MAC address (aa:bb:cc:dd:ee:ff)\n".into(),
        ),
        (&["mark", "del", "0x10"], "invalid fwmark value `0x10' specified\n".into()),
        (&["mark", "add", "1", "-d", "10.0.0.1", "--dports", "70000"], "invalid port \"70000\"\n".into()),
        (
            &["route", "add", "default", "dev", "dpdk0", "metric", "5"],
            "unexpected argument 'metric' found\n\nUsage: gwctl route add PREFIX|default [via GW] dev IFNAME\n".into(),
        ),
        (
            &["addr", "add", "10.0.0.1/24", "dev"],
"a value is required for '--dev <IFNAME>' but none was supplied\n".into(),
        ),
        (
            &["neigh", "add", "10.0.0.254", "dev", "dpdk0"],
            "the following required arguments were not provided:\n  --lladdr <MAC>\n\nUsage: gwctl neigh add ADDR lladdr MAC dev IFNAME\n"
                .into(),
        ),
        (&["stats", "--zero"], "unexpected argument '--zero' found\n\nUsage: gwctl stats [OPTIONS] [COMMAND]\n".into()),
        (&["link", "set", "up"], "unrecognized subcommand 'set'\n\nUsage: gwctl link [OPTIONS] [COMMAND]\n".into()),
        (
            &["mark", "add", "1", "-d", "10.0.0.1", "-p", "sctp"],
            "invalid value 'sctp' for '--protocol <PROTOCOL>'\n  [possible values: tcp, udp]\n\n  tip: a similar value exists: 'tcp'\n"
                .into(),
        ),
        (
            &["completions", "cmd.exe"],
            "invalid value 'cmd.exe' for '<SHELL>'\n  [possible values: bash, elvish, fish, powershell, zsh]\n".into(),
        ),
    ] {
        let o = gwctl(args);
        assert_eq!((o.code, o.stdout.as_str(), o.stderr), (2, "", format!("{stderr}{TRY}")), "{args:?}");
    }
    // A line that parses does go to the gateway, which is not there.
    let o = gwctl(&["addr", "add", "10.0.0.1/24", "dev", "dpdk0"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with("gwctl: "), "{}", o.stderr);
    assert!(!o.stderr.contains(TRY), "{}", o.stderr);
}

#[test]
fn completions_generate_for_each_shell_and_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = gwctl(&["completions", shell]);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{shell}");
        for word in ["addr", "route", "neigh", "link", "stats", "mark", "completions", "lladdr", "dports"] {
            assert!(o.stdout.contains(word), "{shell} completion lacks {word}");
        }
        // ipvsadm's options, from its parser's table.
        for option in ["add-service", "fwmark-service", "persistent-conn", "synproxy"] {
            assert!(o.stdout.contains(option), "{shell} completion lacks --{option}");
        }
    }
}

/// bash, as a user's shell: the script loads, and completes subcommands, their verbs and
/// ipvsadm's options.
#[test]
fn bash_completes_with_the_generated_script() {
    let script = gwctl(&["completions", "bash"]).stdout;
    let complete = |words: &str| -> String {
        // The completion function's arguments: the command, the word being completed, the one before.
        let probe = format!(
            "{script}\nCOMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
             _gwctl gwctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("gwctl ne"), "neigh\n");
    assert_eq!(complete("gwctl --add-se"), "--add-service\n--add-server\n");
    let route = complete("gwctl route ''");
    for verb in ["add", "del", "show"] {
        assert!(route.lines().any(|l| l == verb), "{verb}: {route}");
    }
    assert_eq!(complete("gwctl mark add 1 --dp"), "--dport\n--dports\n");
}
