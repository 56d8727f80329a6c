//! The end-to-end harness: network namespaces, processes and DPDK taps as
//! guards that always clean up, even when a test fails or panics.
//!
//! Every name the harness creates starts with `gwt` and carries the test
//! process's id, so concurrent runs never collide and leftovers are easy to
//! recognise. Test traffic stays inside the namespaces a test creates.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod ecmp;
pub mod health;
pub mod pair;
pub mod tcp;
pub mod topology;
pub use topology::{Link, Options, Stats, Topology};

/// A short unique tag for names of this test process (interface names are
/// limited to 15 bytes).
pub fn tag() -> String {
    format!("{:05}", std::process::id() % 100_000)
}

/// The SHA-256 of a file, as `sha256sum` prints it (64 hex digits): how the
/// tests compare a download with what the server sent.
pub fn sha256(path: &std::path::Path) -> String {
    let out = run("sha256sum", &[path.to_str().expect("UTF-8 path")]);
    let digest = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned();
    assert_eq!(digest.len(), 64, "sha256sum {}: {digest:?}", path.display());
    digest
}

/// Runs a command to completion, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is it installed? run scripts/setup.sh)"));
    if !out.status.success() {
        panic!(
            "{program} {args:?} failed with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Writes `len` random bytes to `path`: a transfer's payload, compared by
/// [`sha256`] at the other end. `len` in head(1)'s syntax: `20M` or a byte count.
pub fn random_file(path: &Path, len: &str) {
    run("sh", &["-c", &format!("head -c {len} /dev/urandom > {}", path.display())]);
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

/// The client ports tests may bind by number (see [`Netns::new`]); never
/// handed out as ephemeral ports in a test's namespaces.
pub const FIXED_CLIENT_PORTS: &str = "40000-45999";

/// A network namespace, deleted when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        // A leftover from a killed run of the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", name]).stderr(Stdio::null()).status();
        run("ip", &["netns", "add", name]);
        let ns = Netns { name: name.to_owned() };
        ns.ip(&["link", "set", "lo", "up"]);
        // The fixed client ports tests bind (`curl --local-port`) lie in
        // 40000..46000, inside Linux's ephemeral range: an earlier
        // connection's ephemeral port, still in TIME_WAIT, once took one
        // ("bind failed with errno 98"). Reserved, they are bound only when
        // asked for.
        ns.sysctl("net.ipv4.ip_local_reserved_ports", FIXED_CLIENT_PORTS);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NS ARGS...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command that will run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs a command inside the namespace and returns its output, whatever its status.
    pub fn output(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} in {}: {e}", self.name))
    }

    /// Runs a shell script inside the namespace and returns its output, whatever its status.
    pub fn sh(&self, script: &str) -> Output {
        self.output("sh", &["-c", script])
    }

    /// Sets a sysctl of this namespace (`net.ipv4.conf.all.rp_filter` style
    /// keys): /proc/sys/net shows the namespace of the process reading it.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let out = self.sh(&format!("echo {value} > {path}"));
        assert!(
            out.status.success(),
            "sysctl {key}={value} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Moves interface `ifname` (from the root namespace) into this one and
    /// gives it `cidr`.
    pub fn adopt(&self, ifname: &str, cidr: &str) {
        self.take(None, ifname);
        self.ip(&["addr", "add", cidr, "dev", ifname]);
        self.ip(&["link", "set", ifname, "up"]);
    }

    /// Moves interface `ifname` into this namespace from `from` (None: the
    /// root namespace), as it is: down, without addresses.
    pub fn take(&self, from: Option<&Netns>, ifname: &str) {
        match from {
            None => run("ip", &["link", "set", ifname, "netns", &self.name]),
            Some(ns) => ns.ip(&["link", "set", ifname, "netns", &self.name]),
        };
    }

    /// Starts a long-running program inside the namespace, killed when the
    /// returned guard drops.
    pub fn spawn(&self, label: &str, program: &str, args: &[&str]) -> Daemon {
        let mut c = self.command(program);
        c.args(args);
        Daemon::spawn(label, c)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A tcpdump capture inside a namespace, stopped when finished or dropped.
pub struct Capture {
    tcpdump: Daemon,
    file: PathBuf,
}

impl Netns {
    /// Starts capturing on `ifname` into `file` (pcap) with a tcpdump
    /// `filter`; returns once tcpdump listens.
    pub fn capture(&self, label: &str, ifname: &str, filter: &str, file: &Path) -> Capture {
        // --immediate-mode: packets reach tcpdump one by one, not in ring
        // blocks a SIGTERM would lose; -U writes each as it comes; -Z root
        // keeps the right to write `file`; -B 8192 (KiB) gives the kernel
        // room to hold a burst while a loaded machine schedules tcpdump late.
        let tcpdump = self.spawn(
            label,
            "tcpdump",
            &[
                "-i",
                ifname,
                "-nn",
                "-B",
                "8192",
                "--immediate-mode",
                "-U",
                "-Z",
                "root",
                "-w",
                file.to_str().expect("UTF-8 path"),
                filter,
            ],
        );
        assert!(
            wait_until(Duration::from_secs(10), || tcpdump.log().contains("listening on")),
            "tcpdump on {ifname} did not start:\n{}",
            tcpdump.log()
        );
        Capture { tcpdump, file: file.to_owned() }
    }
}

impl Capture {
    /// Stops the capture and returns one line per packet (`tcpdump -nn -r`).
    pub fn finish(mut self) -> Vec<String> {
        assert!(self.tcpdump.terminate(Duration::from_secs(5)).is_some(), "tcpdump stops on SIGTERM");
        let out = run("tcpdump", &["-nn", "-r", self.file.to_str().expect("UTF-8 path")]);
        let _ = std::fs::remove_file(&self.file);
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }

    /// Stops the capture and returns the captured frames, bytes as on the wire.
    pub fn frames(mut self) -> Vec<Vec<u8>> {
        assert!(self.tcpdump.terminate(Duration::from_secs(5)).is_some(), "tcpdump stops on SIGTERM");
        let bytes = std::fs::read(&self.file).expect("read the capture");
        let _ = std::fs::remove_file(&self.file);
        pcap_frames(&bytes)
    }
}

/// The frames of a classic pcap file (either byte order, micro- or
/// nanosecond timestamps), each cut to its captured length.
pub fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert!(bytes.len() >= 24, "a pcap file has a 24-byte header, got {} bytes", bytes.len());
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let big_endian = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
        _ => panic!("not a pcap file: magic {magic:02x?}"),
    };
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut frames = Vec::new();
    let mut at = 24;
    // A record header is 16 bytes: seconds, fraction, captured length, original length.
    while at + 16 <= bytes.len() {
        let caplen = u32_at(at + 8) as usize;
        let start = at + 16;
        // tcpdump stopped by a signal may leave a partial last record.
        let Some(frame) = bytes.get(start..start + caplen) else { break };
        frames.push(frame.to_vec());
        at = start + caplen;
    }
    frames
}

/// A child process whose output goes to a log file; stopped when dropped
/// (SIGTERM, then SIGKILL after two seconds).
pub struct Daemon {
    label: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn spawn(label: &str, mut command: Command) -> Daemon {
        // Several tests of one binary may use the same label: a counter keeps the logs apart.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("gwt-{}-{n}-{label}.log", tag()));
        let file = File::create(&log).expect("create log file");
        let err = file.try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        Daemon { label: label.to_owned(), child: Some(child), log }
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGKILL (a crash: no clean-up of its own) and returns the exit status.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() && self.terminate(Duration::from_secs(2)).is_none() {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("--- {} log ({}) ---\n{}", self.label, self.log.display(), self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What wrk reported at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrkSummary {
    /// Requests completed ("N requests in ...").
    pub requests: u64,
    /// Socket errors of every kind (connect, read, write, timeout), summed.
    pub socket_errors: u64,
    /// Answers with a status other than 2xx or 3xx.
    pub non_2xx: u64,
}

impl WrkSummary {
    /// Parses wrk's output; panics (showing it) when it has no summary.
    pub fn parse(out: &str) -> WrkSummary {
        let requests = out
            .lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no request count in wrk's output:\n{out}"));
        // "Socket errors: connect 0, read 0, write 0, timeout 0"
        let socket_errors = out.lines().find_map(|l| l.trim().strip_prefix("Socket errors:")).map_or(0, |rest| {
            rest.split(',')
                .map(|kv| {
                    kv.split_whitespace()
                        .nth(1)
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or_else(|| panic!("bad socket errors line in:\n{out}"))
                })
                .sum()
        });
        let non_2xx = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .map_or(0, |n| n.trim().parse().unwrap_or_else(|_| panic!("bad non-2xx line in:\n{out}")));
        WrkSummary { requests, socket_errors, non_2xx }
    }

    /// Requests that failed, one way or another.
    pub fn failed(&self) -> u64 {
        self.socket_errors + self.non_2xx
    }
}

/// A UDP echo server: answers each datagram with "NAME SOURCE-ADDRESS PAYLOAD".
pub const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"%s %s %s" % (sys.argv[3].encode(), peer[0].encode(), data), peer)
"#;

/// A UDP client: from `n` sockets (distinct source ports, so distinct
/// connections), one datagram each to ADDR:PORT; prints "FROM-ADDR:PORT REPLY"
/// per answer, or "timeout".
pub const UDP_CLIENT: &str = r#"
import socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"ping%d" % i, (addr, port))
    try:
        data, peer = s.recvfrom(2048)
        print("%s:%d %s" % (peer[0], peer[1], data.decode()))
    except socket.timeout:
        print("timeout")
"#;

/// The `gatewayd` binary: `$GATEWAYD_BIN`, or the one cargo built next to
/// this test in the same target directory.
pub fn gatewayd_bin() -> PathBuf {
    workspace_bin("gatewayd", "GATEWAYD_BIN", "cargo build -p gateway --bin gatewayd")
}

/// The plain L2 forwarder (the bench crate's `l2fwd`): `$L2FWD_BIN`, or the
/// one cargo built next to this test.
pub fn l2fwd_bin() -> PathBuf {
    workspace_bin("l2fwd", "L2FWD_BIN", "cargo build -p gwbench --bin l2fwd")
}

/// The `gwctl` binary: `$GWCTL_BIN`, or the one cargo built next to this test.
pub fn gwctl_bin() -> PathBuf {
    workspace_bin("gwctl", "GWCTL_BIN", "cargo build -p gwctl")
}

fn workspace_bin(name: &str, env: &str, build: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let bin = exe.parent().and_then(Path::parent).map(|d| d.join(name)).expect("target directory");
    assert!(bin.exists(), "{} not found: build it first ({build}) or set {env}", bin.display());
    bin
}
