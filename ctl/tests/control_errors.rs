//! Bad requests through the real gwctl binary and straight on the socket: each gets its
//! error text and exit status, the table is unchanged afterwards, and the worker keeps
//! running the configuration in force. Plus: no gateway, and a non-root client.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Gateway;
use gwapi::api::ErrorKind;
use gwapi::{Client, ClientError};

fn setup(gw: &Gateway) -> String {
    gw.ok("-A -t 192.168.0.200:80 -s rr");
    gw.ok("-a -t 192.168.0.200:80 -r 172.16.100.10 -m");
    gw.ok("-A -u 10.0.0.1:53 -s sh");
    let saved = gw.gwctl("-S -n");
    assert_eq!(saved.code, 0);
    saved.stdout
}

fn fails(gw: &Gateway, args: &str, code: i32, stderr: &str) {
    let o = gw.gwctl(args);
    assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (code, stderr, ""), "gwctl {args}");
}

#[test]
fn bad_command_lines_and_refused_changes_leave_the_table_unchanged() {
    let gw = Gateway::start("errors");
    let saved = setup(&gw);
    let generation = gw.running().generation();
    let try_help = "Try `gwctl -h' or 'gwctl --help' for more information.\n";

    // Command-line errors: exit 2, nothing sent.
    fails(&gw, "-A -t 10.0.0.2:80 --bogus", 2, &format!("--bogus: unknown option\n{try_help}"));
    fails(&gw, "-Lk", 2, &format!("-k: unknown option\n{try_help}"));
    fails(&gw, "-n", 2, try_help);
    fails(&gw, "-A -t 192.168.0.300:80", 2, "illegal virtual server address[:port] specified\n");
    fails(&gw, "-a -t 192.168.0.200:80 -r 172.16.100.300 -m", 2, "illegal real server address[:port] specified\n");
    fails(&gw, "-a -t 192.168.0.200:80 -r 172.16.100.11 -m -w 70000", 2, "illegal weight specified\n");
    fails(&gw, "-a -t 192.168.0.200:80 -r 172.16.100.11 -m -w -1", 2, "illegal weight specified\n");
    fails(&gw, "-A -t 10.0.0.2:80 -s rr -D", 2, "multiple commands specified\n");
    fails(
        &gw,
        "-a -t 192.168.0.200:80",
        2,
        "You need to supply the 'real-server' option for the 'add-server' command\n",
    );
    fails(&gw, "-D -t 10.0.0.2:80 -s rr", 2, "Illegal 'scheduler' option with the 'delete-service' command\n");
    fails(&gw, "-A -f 0", 2, "invalid fwmark value `0' specified\n");
    fails(&gw, "-A -u 10.0.0.2:53 -s rr -o", 2, "One-Packet Scheduling (-o) is not supported by this gateway\n");
    fails(&gw, "-E -u 10.0.0.1:53 -s sh --ops", 2, "One-Packet Scheduling (-o) is not supported by this gateway\n");
    fails(&gw, "--set 900 120", 2, "--set option requires 3 timeout values\n");

    // Refused by the gateway: ipvsadm's texts, exit 1.
    fails(&gw, "-a -t 10.9.9.9:80 -r 172.16.100.10 -m", 1, "Service not defined\n");
    fails(&gw, "-e -t 10.9.9.9:80 -r 172.16.100.10 -m", 1, "Service not defined\n");
    fails(&gw, "-D -t 10.9.9.9:80", 1, "No such service\n");
    fails(&gw, "-E -t 10.9.9.9:80 -s rr", 1, "No such service\n");
    fails(&gw, "-Z -t 10.9.9.9:80", 1, "No such service\n");
    fails(&gw, "-L -t 10.9.9.9:80", 1, "No such service\n");
    fails(&gw, "-A -t 192.168.0.200:80 -s wlc", 1, "Service already exists\n");
    fails(&gw, "-A -t 10.0.0.2:80 -s fastest", 1, "Scheduler not found\n");
    fails(&gw, "-a -t 192.168.0.200:80 -r 172.16.100.10 -m", 1, "Destination already exists\n");
    fails(&gw, "-d -t 192.168.0.200:80 -r 172.16.100.99", 1, "No such destination\n");
    fails(
        &gw,
        "-a -t 192.168.0.200:80 -r 172.16.100.11 -m -x 10 -y 20",
        1,
        "lower threshold 20 is higher than upper threshold 10\n",
    );
    // ipvsadm lets a tunnelled server of the other family through to the kernel (other
    // methods it refuses itself, tests/ipvsadm_ipv6.rs); the gateway refuses it.
    fails(
        &gw,
        "-a -t 192.168.0.200:80 -r [2001:db8::1]:80 -i",
        1,
        "real server [2001:db8::1]:80 is not of the same address family as service TCP 192.168.0.200:80\n",
    );
    fails(
        &gw,
        "-Q -t 192.168.0.200:80 -z 192.168.1.254",
        1,
        "local address 192.168.1.254 not found in service TCP 192.168.0.200:80\n",
    );
    // A VIP is never a FNAT local address too: its clients' packets would be taken for
    // replies to the gateway's connections.
    fails(
        &gw,
        "-P -t 192.168.0.200:80 -z 10.0.0.1 -F dpdk1",
        1,
        "10.0.0.1 cannot be both the address of virtual service UDP 10.0.0.1:53 and a local address of service \
         TCP 192.168.0.200:80: packets to a local address are taken for replies to the gateway's connections\n",
    );
    // The sync daemons: ipvsadm's texts for IPVS's ENODEV, ESRCH and EEXIST.
    fails(&gw, "--start-daemon master --mcast-interface nosuchif0", 1, "No such device\n");
    fails(&gw, "--stop-daemon backup", 1, "No daemon is running\n");
    fails(&gw, "--start-daemon backup --mcast-interface lo --syncid 256", 2, "illegal syncid specified\n");
    gw.ok("--start-daemon backup --mcast-interface lo --syncid 3");
    fails(&gw, "--start-daemon backup --mcast-interface lo", 1, "Daemon has already run\n");
    gw.ok("--stop-daemon backup");
    fails(&gw, "--stop-daemon backup", 1, "No daemon is running\n");

    // A restore with one bad line changes nothing, and says which line.
    let rules = "-A -t 10.0.0.3:80 -s rr\n-a -t 10.0.0.3:80 -r 10.1.1.1 -m\n-a -t 10.0.0.3:80 -r 10.1.1.1 -m\n";
    let o = gw.gwctl_in("-R", rules);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        "Destination already exists\nline 3: real server 10.1.1.1:80 already exists in service TCP 10.0.0.3:80; nothing was restored\n"
    );
    // The other way round: a service at a local address, refused whole.
    let rules = "-A -t 10.0.0.3:80 -s rr\n-P -t 10.0.0.3:80 -z 10.0.0.9 -F dpdk1\n-A -u 10.0.0.9:53 -s rr\n";
    let o = gw.gwctl_in("-R", rules);
    let refusal = "10.0.0.9 cannot be both the address of virtual service UDP 10.0.0.9:53 and a local address of \
                   service TCP 10.0.0.3:80: packets to a local address are taken for replies to the gateway's \
                   connections";
    assert_eq!((o.code, o.stderr), (1, format!("{refusal}\nline 3: {refusal}; nothing was restored\n")));
    let o = gw.gwctl_in("-R", "-A -u 10.0.0.5:53 -s rr -o\n");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (2, "One-Packet Scheduling (-o) is not supported by this gateway\nline 1: -A -u 10.0.0.5:53 -s rr -o; nothing was restored\n")
    );
    let o = gw.gwctl_in("-R", "-A -t 10.0.0.3:80 -s rr\n-A -t 10.0.0.4:80 --bogus\n");
    assert_eq!(o.code, 2);
    assert_eq!(o.stderr, "--bogus: unknown option\nline 2: -A -t 10.0.0.4:80 --bogus; nothing was restored\n");

    assert_eq!(gw.gwctl("-S -n").stdout, saved, "the table is unchanged");
    assert_eq!(gw.running().generation(), generation, "no configuration was published");
}

#[test]
fn raw_garbage_oversize_and_silent_clients_get_errors_and_change_nothing() {
    let gw = Gateway::start("raw");
    let saved = setup(&gw);
    let client = Client::new(&gw.socket);
    let refused = |frame: &[u8]| match client.call_raw(frame) {
        Err(ClientError::Refused(e)) => e.kind,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refused(b"\x16\x03\x01\x02\x00garbage bytes\xff\n"), ErrorKind::Malformed);
    assert_eq!(refused(&vec![b'{'; 10 << 20]), ErrorKind::TooLarge);
    assert_eq!(refused(b"{\"version\":99,\"request\":{\"command\":\"info\"}}\n"), ErrorKind::UnsupportedVersion);
    assert_eq!(refused(b"{\"version\":1,\"request\":{\"command\":\"shutdown\"}}\n"), ErrorKind::UnknownCommand);
    let weight = br#"{"version":1,"request":{"command":"apply","changes":[{"change":"add_server","service":{"tcp":{"addr":"192.168.0.200","port":80}},"server":{"addr":"172.16.100.11","port":80,"forwarding":"masq","weight":70000}}]}}"#;
    match client.call_raw(weight) {
        Err(ClientError::Refused(e)) => {
            assert_eq!(
                (e.kind, e.message.as_str(), e.change_index),
                (ErrorKind::InvalidArgument, "weight 70000 out of range 0..65535", Some(0))
            )
        }
        other => panic!("{other:?}"),
    }

    // A client that connects and sends nothing is answered with a timeout after the
    // server's deadline (5 s by default), and gwctl meanwhile waits its turn, not forever.
    let t = Instant::now();
    let mut silent = UnixStream::connect(&gw.socket).unwrap();
    let o = gw.gwctl("-S -n");
    assert_eq!(o.stdout, saved);
    let mut reply = String::new();
    silent.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("\"kind\":\"timeout\""), "{reply}");
    assert!(t.elapsed() < Duration::from_secs(15));

    assert_eq!(gw.gwctl("-S -n").stdout, saved);
}

#[test]
fn no_gateway_names_the_socket_it_tried() {
    let missing = std::env::temp_dir().join(format!("gwctl-none-{}.sock", std::process::id()));
    let o = common::gwctl_with(&missing, ["-Ln"], "", &[]);
    assert_eq!(o.code, 2);
    assert_eq!(
        o.stderr,
        format!(
            "gwctl: cannot connect to gatewayd at {}: No such file or directory (os error 2) (is gatewayd running? the socket path comes from --socket, then GATEWAYD_SOCKET)\n",
            missing.display()
        )
    );
    // --socket wins over the environment variable.
    let gw = Gateway::start("flag");
    let o = common::gwctl_with(&missing, ["--socket", gw.socket.to_str().unwrap(), "-L", "--timeout"], "", &[]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Timeout (tcp tcpfin udp): 900 120 300\n"));
    let o = common::gwctl_with(&missing, ["--socket", gw.socket.to_str().unwrap(), "route", "show"], "", &[]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
}

#[test]
fn a_non_root_client_is_refused() {
    if root_or_setpriv_missing() {
        return;
    }
    // Under /tmp, which every user can traverse ($TMPDIR might not be).
    let tmp = std::path::Path::new("/tmp");
    let gw = Gateway::start_in(tmp, "nonroot");
    setup(&gw);
    // A copy of the binary that the other user can surely execute (the build directory
    // may sit under a home directory it cannot enter).
    let shared = tmp.join(format!("gwctl-nonroot-{}", std::process::id()));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = shared.join("gwctl");
    std::fs::copy(env!("CARGO_BIN_EXE_gwctl"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        cmd.arg(&exe);
        cmd.args(args).env("GATEWAYD_SOCKET", &gw.socket);
        common::run(cmd, "", &[])
    };
    // The socket is 0600 in a 0700 directory: nobody cannot even reach it.
    let o = as_nobody(&["-Ln"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("Permission denied (os error 13)"), "{}", o.stderr);
    // Open the file modes (only root can): the peer-credential check still refuses, without
    // reading the request.
    let dir = gw.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&gw.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = as_nobody(&["-C"]);
    assert_eq!((o.code, o.stderr.as_str()), (1, "Permission denied (you must be root)\n"));
    let o = as_nobody(&["addr", "add", "10.0.0.1/24", "dev", "dpdk0"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Permission denied (you must be root): uid 65534 may not use the control socket\n")
    );
    // Root still can, and the table is intact.
    let _ = std::fs::remove_dir_all(&shared);
    let o = gw.gwctl("-S -n");
    assert!(o.stdout.contains("-A -t 192.168.0.200:80 -s rr\n"), "{}", o.stdout);
}

/// The refusal test needs root (to switch to another uid) and `setpriv`.
fn root_or_setpriv_missing() -> bool {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !(root && setpriv) {
        eprintln!("skipping: needs root and setpriv");
    }
    !(root && setpriv)
}
