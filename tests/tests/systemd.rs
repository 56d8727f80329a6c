//! gatewayd under systemd's `Type=notify` (packaging/gatewayd.service),
//! without systemd: the test binds the datagram socket systemd would, passes
//! it as $NOTIFY_SOCKET, and reads what gatewayd tells it: `READY=1` once it
//! runs (workers polling, gwctl served), `STOPPING=1` on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use gateway_e2e::topology::VIP;
use gateway_e2e::{tag, Options, Topology};

/// The next datagram, as text; panics after `timeout` with `what` was awaited.
fn receive(socket: &UnixDatagram, what: &str) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).unwrap_or_else(|e| panic!("no {what} from gatewayd on $NOTIFY_SOCKET: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn gatewayd_tells_notify_socket_ready_once_running_and_stopping_on_sigterm() {
    let path = std::env::temp_dir().join(format!("gwt{}-notify.sock", tag()));
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut topo = Topology::start(
        "ntf",
        Options { servers: 1, env: vec![("NOTIFY_SOCKET".into(), path.display().to_string())], ..Options::default() },
    );
    // Topology::start returned once the log said "running": READY=1 is sent then.
    let ready = receive(&socket, "READY=1");
    assert_eq!(ready.trim_end(), "READY=1", "{}", topo.gatewayd_log());
    // Ready means served: gwctl gets its answer.
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s rr"));
    assert!(topo.gwctl(&["-Ln"]).contains(&format!("TCP  {VIP}:80 rr")));

    let log = topo.stop();
    let stopping = receive(&socket, "STOPPING=1");
    assert_eq!(stopping.trim_end(), "STOPPING=1", "{log}");
    assert!(!log.contains("cannot notify systemd"), "{log}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn gatewayd_with_an_unreachable_notify_socket_says_so_and_runs() {
    // A path nothing listens on: the datagram is refused; gatewayd warns, and serves.
    let path = std::env::temp_dir().join(format!("gwt{}-nobody.sock", tag()));
    let _ = std::fs::remove_file(&path);
    let mut topo = Topology::start(
        "ntx",
        Options { servers: 1, env: vec![("NOTIFY_SOCKET".into(), path.display().to_string())], ..Options::default() },
    );
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s rr"));
    let log = topo.stop();
    assert!(log.contains("gatewayd: cannot notify systemd ($NOTIFY_SOCKET)"), "{log}");
}
