//! Probes: how one check of one server is run. [`Prober`] is the seam: the checker asks it for
//! an [`Outcome`] and does not care how the probe travels.
//!
//! [`SocketProber`] probes with ordinary sockets of gatewayd's network namespace, addressed
//! to the server's own address and port, as keepalived does: in production they leave by the
//! kernel exception interface and the DPDK port. So a DR or TUN server is checked at RIP:port,
//! not through its forwarding path (a DR server that lost the VIP on `lo` still looks up);
//! probes generated in process and sent along each server's forwarding path are another
//! [`Prober`].
//!
//! Each probe is bounded by the check's `connect_timeout` as a whole (connection, request,
//! reply, a script's run), so a server that accepts and then stalls fails like one that does
//! not answer. A script runs in a process group of its own, which is killed whole at the
//! timeout and reaped, so neither it nor what it started outlives the probe.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gwapi::api::VirtualService;
use gwapi::health::CheckKind;

use super::check::Check;
use super::engine::{Outcome, ProbeJob};
use super::md5::md5_hex;

/// Runs one probe to its end (at most the check's timeout, plus a little for cleanup).
pub trait Prober: Send + Sync {
    fn probe(&self, job: &ProbeJob) -> Outcome;
}

/// Probes from gatewayd's own network namespace with kernel sockets.
#[derive(Debug, Default, Clone, Copy)]
pub struct SocketProber;

/// The largest HTTP reply read: a health page, not a download.
const MAX_HTTP_REPLY: usize = 1 << 20;

impl Prober for SocketProber {
    fn probe(&self, job: &ProbeJob) -> Outcome {
        let server = SocketAddr::new(job.key.addr, job.key.port);
        let check = &job.check;
        match check.kind() {
            CheckKind::Tcp => match TcpStream::connect_timeout(&server, check.timeout) {
                Ok(_) => Outcome::Up { weight: None },
                Err(e) => Outcome::Down(io_reason(&e, check.timeout)),
            },
            CheckKind::Http { path, host, status, .. } => http(server, path, host.as_deref(), *status, check),
            CheckKind::Udp { payload, expect } => udp(server, payload.as_bytes(), expect.as_deref(), check.timeout),
            CheckKind::Misc { script, dynamic } => misc(script, *dynamic, job, check.timeout),
        }
    }
}

/// An I/O error as a reason: its text without the `(os error N)` tail.
fn io_reason(e: &io::Error, timeout: Duration) -> String {
    if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) {
        return format!("timed out after {} s", timeout.as_secs_f64());
    }
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}

fn http(server: SocketAddr, path: &str, host: Option<&str>, expected: u16, check: &Check) -> Outcome {
    let deadline = Instant::now() + check.timeout;
    let mut stream = match TcpStream::connect_timeout(&server, check.timeout) {
        Ok(s) => s,
        Err(e) => return Outcome::Down(io_reason(&e, check.timeout)),
    };
    let host = match host {
        Some(h) => h.to_string(),
        None => match (server.ip(), server.port()) {
            (IpAddr::V4(a), 80) => a.to_string(),
            (IpAddr::V6(a), 80) => format!("[{a}]"),
            _ => server.to_string(),
        },
    };
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: gatewayd-health\r\nConnection: close\r\n\r\n");
    let mut reply = Vec::new();
    let exchanged = (|| -> io::Result<()> {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        stream.write_all(request.as_bytes())?;
        let mut buf = [0u8; 4096];
        loop {
            stream.set_read_timeout(Some(remaining(deadline)?))?;
            let n = stream.read(&mut buf)?;
            if n == 0 || reply.len() >= MAX_HTTP_REPLY {
                return Ok(());
            }
            reply.extend_from_slice(&buf[..n]);
        }
    })();
    if let Err(e) = exchanged {
        return Outcome::Down(io_reason(&e, check.timeout));
    }
    let Some(split) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Outcome::Down("no complete HTTP header in the reply".into());
    };
    let head = String::from_utf8_lossy(&reply[..split]);
    let mut body = &reply[split + 4..];
    let status = head
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("HTTP/"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok());
    let Some(status) = status else {
        return Outcome::Down("not an HTTP status line".into());
    };
    if status != expected {
        return Outcome::Down(format!("status {status}, expected {expected}"));
    }
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    if let Some(length) = length {
        body = &body[..length.min(body.len())];
    }
    if let Some(digest) = &check.digest {
        let got = md5_hex(body);
        let want: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if got != want {
            return Outcome::Down(format!("digest {got}, expected {want}"));
        }
    }
    Outcome::Up { weight: None }
}

/// The time left until `deadline`; a timeout error once it has passed.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::from(io::ErrorKind::TimedOut));
    }
    Ok(left)
}

fn udp(server: SocketAddr, payload: &[u8], expect: Option<&str>, timeout: Duration) -> Outcome {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = match UdpSocket::bind(local).and_then(|s| s.connect(server).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return Outcome::Down(io_reason(&e, timeout)),
    };
    if let Err(e) = socket.send(payload).and_then(|_| socket.set_read_timeout(Some(timeout))) {
        return Outcome::Down(io_reason(&e, timeout));
    }
    let mut buf = [0u8; 2048];
    match (socket.recv(&mut buf), expect) {
        (Ok(n), Some(pattern)) => {
            if contains(&buf[..n], pattern.as_bytes()) {
                Outcome::Up { weight: None }
            } else {
                Outcome::Down(format!("reply of {n} bytes does not contain {pattern:?}"))
            }
        }
        (Ok(_), None) => Outcome::Up { weight: None },
        (Err(e), _) if e.kind() == io::ErrorKind::ConnectionRefused => Outcome::Down("ICMP port unreachable".into()),
        (Err(e), None) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            Outcome::Up { weight: None }
        }
        (Err(e), _) => Outcome::Down(io_reason(&e, timeout)),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// How often a running script is looked at: its exit is noticed within this.
const SCRIPT_POLL: Duration = Duration::from_millis(10);

fn misc(script: &str, dynamic: bool, job: &ProbeJob, timeout: Duration) -> Outcome {
    let service = match job.key.service {
        VirtualService::Tcp { addr, port } => format!("tcp {}", SocketAddr::new(addr, port)),
        VirtualService::Udp { addr, port } => format!("udp {}", SocketAddr::new(addr, port)),
        VirtualService::Fwmark { mark } => format!("fwmark {mark}"),
    };
    let spawned = Command::new(script)
        .arg(job.key.addr.to_string())
        .arg(job.key.port.to_string())
        .env("GW_SERVER_ADDR", job.key.addr.to_string())
        .env("GW_SERVER_PORT", job.key.port.to_string())
        .env("GW_SERVICE", service)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Outcome::Down(format!("cannot run {script}: {}", io_reason(&e, timeout))),
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(SCRIPT_POLL),
            Ok(None) | Err(_) => break None,
        }
    };
    // Whatever the script started goes with it (its group shares its id).
    let group = rustix::process::Pid::from_child(&child);
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Outcome::Down(format!("timed out after {} s, killed", timeout.as_secs_f64()));
    };
    match (status.code(), dynamic) {
        (Some(0), _) => Outcome::Up { weight: None },
        (Some(code @ 2..=255), true) => Outcome::Up { weight: Some(code as u32 - 2) },
        (Some(code), _) => Outcome::Down(format!("exit {code}")),
        (None, _) => Outcome::Down(format!("killed by signal {}", status.signal().unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::engine::TargetKey;
    use gwapi::health::HealthCheckConfig;
    use std::net::TcpListener;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    fn job(kind: CheckKind, addr: SocketAddr, timeout_ms: u64) -> ProbeJob {
        let mut c = HealthCheckConfig::new(kind);
        c.connect_timeout_ms = timeout_ms;
        ProbeJob {
            key: TargetKey {
                service: VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 },
                addr: addr.ip(),
                port: addr.port(),
            },
            check: Arc::new(Check::new(&c).unwrap()),
            ticket: 1,
        }
    }

    /// A script in a temporary file, removed on drop.
    struct Script(std::path::PathBuf);
    impl Script {
        fn new(name: &str, body: &str) -> Script {
            let path = std::env::temp_dir().join(format!("gw-probe-{}-{name}.sh", std::process::id()));
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Script(path)
        }
        fn path(&self) -> String {
            self.0.to_str().unwrap().to_string()
        }
    }
    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn misc_outcome(body: &str, dynamic: bool, timeout_ms: u64) -> Outcome {
        static SCRIPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SCRIPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let script = Script::new(&n.to_string(), body);
        let kind = CheckKind::Misc { script: script.path(), dynamic };
        SocketProber.probe(&job(kind, "192.0.2.7:8080".parse().unwrap(), timeout_ms))
    }

    #[test]
    fn misc_exit_codes_as_keepalived_reads_them() {
        assert_eq!(misc_outcome("exit 0", false, 2000), Outcome::Up { weight: None });
        assert_eq!(misc_outcome("exit 1", false, 2000), Outcome::Down("exit 1".into()));
        assert_eq!(misc_outcome("exit 5", false, 2000), Outcome::Down("exit 5".into()), "not dynamic");
        assert_eq!(misc_outcome("exit 1 ", true, 2000), Outcome::Down("exit 1".into()));
        assert_eq!(misc_outcome("exit 3", true, 2000), Outcome::Up { weight: Some(1) });
        assert_eq!(misc_outcome("exit 2", true, 2000), Outcome::Up { weight: Some(0) });
        assert_eq!(misc_outcome("exit 255", true, 2000), Outcome::Up { weight: Some(253) });
        // The server is in the script's environment and arguments.
        let env = "[ \"$GW_SERVER_ADDR:$GW_SERVER_PORT $1 $2 $GW_SERVICE\" = \"192.0.2.7:8080 192.0.2.7 8080 tcp 10.0.0.100:80\" ]";
        assert_eq!(misc_outcome(env, false, 2000), Outcome::Up { weight: None });
    }

    #[test]
    fn a_hanging_script_is_killed_at_the_timeout_with_what_it_started() {
        let marker = std::env::temp_dir().join(format!("gw-probe-{}-child.pid", std::process::id()));
        let body = format!("sleep 30 & echo $! > {}\nwait", marker.display());
        let start = Instant::now();
        assert_eq!(misc_outcome(&body, false, 300), Outcome::Down("timed out after 0.3 s, killed".into()));
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        let child: i32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
        std::fs::remove_file(&marker).unwrap();
        // The background sleep went with the script's group: a SIGKILLed process may still
        // be running its exit for a moment, then lingers as the zombie of the shell's
        // reaper, never running again.
        let state = || {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()).unwrap_or("gone").to_owned()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while !matches!(state().as_str(), "gone" | "Z" | "X") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let state = state();
        assert!(matches!(state.as_str(), "gone" | "Z" | "X"), "the script's child is {state}");
    }

    #[test]
    fn tcp_and_http_against_a_local_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(SocketProber.probe(&job(CheckKind::Tcp, addr, 1000)), Outcome::Up { weight: None });
        let body = "hello health\n";
        /// Answers one request with `status` and `body`; returns the request.
        fn serve(listener: &TcpListener, status: &str, body: &str) -> String {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).unwrap();
            let reply = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            s.write_all(reply.as_bytes()).unwrap();
            String::from_utf8_lossy(&req[..n]).to_string()
        }
        let http = |digest: Option<&str>, status: u16| CheckKind::Http {
            path: "/health".into(),
            host: Some("www.example".into()),
            status,
            digest: digest.map(str::to_string),
        };
        let right = md5_hex(body.as_bytes());
        let t = std::thread::spawn(move || {
            // The tcp probe's connection, already closed.
            drop(listener.accept().unwrap());
            let req = serve(&listener, "200 OK", body);
            serve(&listener, "404 Not Found", body);
            serve(&listener, "200 OK", body);
            (req, listener)
        });
        let ok = SocketProber.probe(&job(http(Some(&right), 200), addr, 1000));
        let wrong_status = SocketProber.probe(&job(http(None, 200), addr, 1000));
        let wrong_digest = SocketProber.probe(&job(http(Some("00000000000000000000000000000000"), 200), addr, 1000));
        let (req, listener) = t.join().unwrap();
        assert_eq!(ok, Outcome::Up { weight: None });
        assert!(req.starts_with("GET /health HTTP/1.0\r\nHost: www.example\r\n"), "{req}");
        assert_eq!(wrong_status, Outcome::Down("status 404, expected 200".into()));
        assert_eq!(wrong_digest, Outcome::Down(format!("digest {right}, expected 00000000000000000000000000000000")));
        drop(listener);
        assert_eq!(SocketProber.probe(&job(CheckKind::Tcp, addr, 1000)), Outcome::Down("connection refused".into()));
    }

    #[test]
    fn udp_reply_pattern_and_port_unreachable() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let udp = |expect: Option<&str>| CheckKind::Udp { payload: "ping".into(), expect: expect.map(str::to_string) };
        let t = std::thread::spawn(move || {
            for _ in 0..2 {
                let mut buf = [0u8; 64];
                let (n, from) = server.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], b"ping");
                server.send_to(b"pong ok", from).unwrap();
            }
            server
        });
        assert_eq!(SocketProber.probe(&job(udp(Some("ok")), addr, 1000)), Outcome::Up { weight: None });
        assert_eq!(
            SocketProber.probe(&job(udp(Some("fine")), addr, 1000)),
            Outcome::Down("reply of 7 bytes does not contain \"fine\"".into())
        );
        let server = t.join().unwrap();
        // Nobody answers but nobody refuses: up without a pattern, down with one.
        assert_eq!(SocketProber.probe(&job(udp(None), addr, 200)), Outcome::Up { weight: None });
        assert_eq!(SocketProber.probe(&job(udp(Some("ok")), addr, 200)), Outcome::Down("timed out after 0.2 s".into()));
        drop(server);
        assert_eq!(SocketProber.probe(&job(udp(None), addr, 1000)), Outcome::Down("ICMP port unreachable".into()));
    }
}
