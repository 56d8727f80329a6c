//! Probes: how one check of one server is run. [`Prober`] is the seam: the checker asks it for
//! an [`Outcome`] and does not care how the probe travels.
//!
//! gatewayd's prober is [`super::path::PathProber`], which sends probes generated in process
//! along each server's forwarding path (keepalived's checks, from kernel sockets, reach a DR
//! or TUN server at RIP:port and miss a server that lost the VIP). What judges a reply
//! (HTTP, UDP) and runs a MISC script is here, for any prober.
//!
//! Each probe is bounded by the check's `connect_timeout` as a whole (connection, request,
//! reply, a script's run), so a server that accepts and then stalls fails like one that does
//! not answer. A script runs in a process group of its own, which is killed whole at the
//! timeout and reaped, so neither it nor what it started outlives the probe.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gwapi::api::VirtualService;

use super::engine::{Outcome, ProbeJob};
use super::md5::md5_hex;

/// How one check of one server is run.
pub trait Prober: Send + Sync + 'static {
    /// Runs one probe to its end (at most the check's timeout, plus a little for cleanup).
    fn probe(&self, job: &ProbeJob) -> Outcome;

    /// Starts one probe; `done` gets its outcome, from whichever thread ends it. By
    /// default [`Prober::probe`] runs on a thread of its own (a blocking probe must not
    /// hold up the others); a prober that carries many probes itself finishes them from
    /// its own thread instead, and thousands of servers cost no thread each.
    fn start(self: Arc<Self>, job: ProbeJob, done: Completion) {
        on_own_thread(self, job, done);
    }
}

/// Runs `prober`'s blocking [`Prober::probe`] of `job` on a thread of its own, then
/// finishes `done`.
pub fn on_own_thread<P: Prober + ?Sized>(prober: Arc<P>, job: ProbeJob, done: Completion) {
    let key = job.key;
    let spawned = std::thread::Builder::new().name("gw-health-probe".into()).spawn(move || {
        let outcome = prober.probe(&job);
        done.finish(outcome);
    });
    if let Err(e) = spawned {
        // The closure, with `done` in it, was dropped: it reported the probe failed.
        log::warn!("gatewayd: health: no thread for a probe of {key:?}: {e}");
    }
}

/// Where a probe's outcome goes: called once. Dropped unfinished (the prober stopped, or
/// no thread could run the probe), it reports the probe failed, so no probe is ever lost
/// and its server is checked again.
pub struct Completion {
    done: Option<Box<dyn FnOnce(Outcome) + Send>>,
}

/// What a probe dropped unfinished reports (its prober stopped, or no thread could run it).
pub const NOT_ENDED: &str = "the probe was dropped before its end";

impl Completion {
    pub fn new(done: impl FnOnce(Outcome) + Send + 'static) -> Completion {
        Completion { done: Some(Box::new(done)) }
    }

    pub fn finish(mut self, outcome: Outcome) {
        if let Some(done) = self.done.take() {
            done(outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(Outcome::Down(NOT_ENDED.into()));
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.done.is_some() { "Completion(pending)" } else { "Completion(finished)" })
    }
}

/// The largest HTTP reply read: a health page, not a download.
pub(super) const MAX_HTTP_REPLY: usize = 1 << 20;

/// An I/O error as a reason: its text without the `(os error N)` tail.
fn io_reason(e: &io::Error, timeout: Duration) -> String {
    if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) {
        return timed_out(timeout);
    }
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}

/// The reason of a probe that ran out of time ("timed out after 2 s").
pub(super) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} s", timeout.as_secs_f64())
}

/// The HTTP check's request to `server` (the real server's address and port: the `Host`
/// when the check names none, as keepalived sends it).
pub(super) fn http_request(path: &str, host: Option<&str>, server: SocketAddr) -> String {
    let host = match host {
        Some(h) => h.to_string(),
        None => match (server.ip(), server.port()) {
            (IpAddr::V4(a), 80) => a.to_string(),
            (IpAddr::V6(a), 80) => format!("[{a}]"),
            _ => server.to_string(),
        },
    };
    format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: gatewayd-health\r\nConnection: close\r\n\r\n")
}

/// Judges an HTTP check's reply (everything the server sent until it closed, at most
/// [`MAX_HTTP_REPLY`] bytes): the status, and the body's MD5 when the check has a digest.
pub(super) fn judge_http(reply: &[u8], expected: u16, digest: Option<&[u8; 16]>) -> Outcome {
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
    if let Some(digest) = digest {
        let got = md5_hex(body);
        let want: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if got != want {
            return Outcome::Down(format!("digest {got}, expected {want}"));
        }
    }
    Outcome::Up { weight: None }
}

/// A UDP check's failure when the server's host refused the datagram.
pub(super) const PORT_UNREACHABLE: &str = "ICMP port unreachable";

/// Judges a UDP check by its reply, or by silence for the whole `timeout` (`None`): a
/// reply must hold the expected pattern, if any; silence without a refusal is up, unless
/// the check expects a reply.
pub(super) fn judge_udp(reply: Option<&[u8]>, expect: Option<&str>, timeout: Duration) -> Outcome {
    match (reply, expect) {
        (Some(reply), Some(pattern)) if !contains(reply, pattern.as_bytes()) => {
            Outcome::Down(format!("reply of {} bytes does not contain {pattern:?}", reply.len()))
        }
        (None, Some(_)) => Outcome::Down(timed_out(timeout)),
        _ => Outcome::Up { weight: None },
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// How often a running script is looked at: its exit is noticed within this.
const SCRIPT_POLL: Duration = Duration::from_millis(10);

/// Runs a MISC check's script for `job` (a MISC check is not a network probe: every
/// prober runs it this way).
pub(super) fn misc(script: &str, dynamic: bool, job: &ProbeJob, timeout: Duration) -> Outcome {
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
        return Outcome::Down(format!("{}, killed", timed_out(timeout)));
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
    use crate::health::check::Check;
    use gwapi::health::CheckKind;

    #[test]
    fn a_completion_reports_once_and_a_dropped_one_reports_the_probe_failed() {
        let (tx, rx) = std::sync::mpsc::channel();
        let done = |tx: std::sync::mpsc::Sender<Outcome>| Completion::new(move |o| tx.send(o).unwrap());
        done(tx.clone()).finish(Outcome::Up { weight: None });
        drop(done(tx));
        assert_eq!(rx.iter().collect::<Vec<_>>(), [Outcome::Up { weight: None }, Outcome::Down(NOT_ENDED.into())]);
    }
    use crate::health::engine::TargetKey;
    use gwapi::health::HealthCheckConfig;
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
        let job = job(kind, "192.0.2.7:8080".parse().unwrap(), timeout_ms);
        let CheckKind::Misc { script, dynamic } = job.check.kind() else { unreachable!() };
        misc(script, *dynamic, &job, job.check.timeout)
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
}
