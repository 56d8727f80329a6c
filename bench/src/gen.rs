//! The traffic generator: one DPDK process, one lcore, two links.
//!
//! On the *client* link it plays the clients: SYNs, handshake ACKs and data
//! segments from many addresses and ports toward the VIP, and it counts the
//! answers that come back. On the *server* link it plays the real servers:
//! every segment the gateway forwards is answered by TCP's rules
//! ([`packet::answer`]: SYN -> SYN-ACK, data -> ACK) with addresses and
//! ports swapped, so the gateway reverse-rewrites the answer and it returns on
//! the client link. With `oneway` (DR and TUN, whose replies bypass the
//! director) the server side only counts what arrives.
//!
//! Traffic is *windowed*: at most `window` segments are in flight (sent and
//! not yet answered), so nothing is lost to queue overflow and the rate is
//! that of the slowest stage, gateway or generator. `window = 0` is open
//! loop: send whenever the link takes packets. Every loop is bounded both by
//! a packet count and by time.
//!
//! The generator never drops a packet it means to send: what a tx queue
//! refuses waits (in order) and is retried, and the server side stops
//! receiving while its answers cannot leave. So `sent - received` is what the
//! device under test lost (or still held when the drain timed out).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use gateway::dpdk::{self, Burst, Eal, Mbuf, Mempool, Port, PortConfig, RxQueue, TxQueue, MBUF_DEFAULT_BUF_SIZE};
use gateway::frame::Frame;
use gateway::net::probe::is_probe_port;

use crate::packet::{self, answer, arp_reply, client_isn, flags, parse, write_answer, Answer, Flows, TcpTemplate};
use crate::result::{GenResult, LinkCounters, Phase};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Handshake `flows` connections, then data segments round-robin over them.
    Established,
    /// New connections: SYN, then the ACK once the SYN-ACK is back; per second.
    Connect,
    /// SYNs from spoofed sources that never complete; SYN-ACKs counted.
    SynFlood,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Established => "established",
            Mode::Connect => "connect",
            Mode::SynFlood => "synflood",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "established" => Some(Mode::Established),
            "connect" => Some(Mode::Connect),
            "synflood" => Some(Mode::SynFlood),
            _ => None,
        }
    }
}

/// Everything the generator needs.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub eal: Vec<String>,
    pub client_dev: String,
    pub server_dev: String,
    /// The gateway's MAC on the client link (destination of client frames).
    pub gateway_mac: [u8; 6],
    /// The VIP; an IPv6 one makes the clients IPv6 ([`packet::CLIENTS6`]).
    pub vip: IpAddr,
    pub vport: u16,
    pub mode: Mode,
    /// Flows (established, connect) or spoofed SYNs (synflood).
    pub flows: u32,
    /// Data segments to send (established).
    pub count: u64,
    /// Time bound of the measured phase.
    pub seconds: f64,
    /// Time bound of the handshakes before an established run.
    pub handshake_seconds: f64,
    pub payload: usize,
    pub window: u32,
    pub oneway: bool,
    /// How long to wait for both links to come up.
    pub link_timeout: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            eal: Vec::new(),
            client_dev: "net_memif0".into(),
            server_dev: "net_memif1".into(),
            gateway_mac: [0x02, 0, 0, 0, 0x01, 0x01],
            vip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            vport: 80,
            mode: Mode::Established,
            flows: 1000,
            count: u64::MAX,
            seconds: 3.0,
            handshake_seconds: 60.0,
            payload: 6,
            window: 1024,
            oneway: false,
            link_timeout: 15.0,
        }
    }
}

/// One link: its queues and what waits to be sent on it, in order.
struct Link {
    rx: RxQueue,
    tx: TxQueue,
    out: Burst,
    backlog: VecDeque<Mbuf>,
    mac: [u8; 6],
}

impl Link {
    fn queue(&mut self, m: Mbuf) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(m);
            return;
        }
        if let Err(m) = self.out.push(m) {
            self.flush();
            if let Err(m) = self.out.push(m) {
                self.backlog.push_back(m);
            }
        }
    }

    /// Sends what the queue takes; returns how many it took.
    fn flush(&mut self) -> usize {
        let mut taken = 0;
        loop {
            while !self.out.is_full() {
                match self.backlog.pop_front() {
                    Some(m) => {
                        let _ = self.out.push(m);
                    }
                    None => break,
                }
            }
            if self.out.is_empty() {
                return taken;
            }
            let n = self.tx.tx_burst(&mut self.out);
            taken += n;
            if n == 0 || !self.out.is_empty() {
                return taken;
            }
        }
    }

    fn pending(&self) -> usize {
        self.out.len() + self.backlog.len()
    }

    /// Frees what is still waiting; returns how many.
    fn discard(&mut self) -> usize {
        let n = self.pending();
        self.out.clear();
        self.backlog.clear();
        n
    }
}

/// Clock from the time-stamp counter.
#[derive(Clone, Copy)]
struct Clock {
    hz: f64,
}

impl Clock {
    fn now(self) -> u64 {
        dpdk::rdtsc()
    }

    fn after(self, seconds: f64) -> u64 {
        self.now().saturating_add((seconds.max(0.0) * self.hz) as u64)
    }

    fn seconds(self, from: u64, to: u64) -> f64 {
        to.saturating_sub(from) as f64 / self.hz
    }
}

/// Bits for flows 0..n.
struct FlowSet {
    bits: Vec<u64>,
    count: u64,
}

impl FlowSet {
    fn new(n: u32) -> FlowSet {
        FlowSet { bits: vec![0; (n as usize).div_ceil(64)], count: 0 }
    }

    /// Marks flow `i`; true when it was not marked before (and is in range).
    fn insert(&mut self, i: u32) -> bool {
        let Some(w) = self.bits.get_mut(i as usize / 64) else { return false };
        let bit = 1u64 << (i % 64);
        if *w & bit != 0 {
            return false;
        }
        *w |= bit;
        self.count += 1;
        true
    }

    fn contains(&self, i: u32) -> bool {
        self.bits.get(i as usize / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Counters of the running phase.
#[derive(Default, Clone, Copy)]
struct Counts {
    /// Client segments queued (SYNs or data; not the handshake ACKs).
    sent: u64,
    /// Answers counted: data ACKs (established), handshakes (connect),
    /// SYN-ACKs (synflood).
    received: u64,
    acks_sent: u64,
    /// Handshake ACKs that reached the server side (they are not answered;
    /// counting them keeps them inside the window).
    acks_arrived: u64,
    /// In-flight segments written off (lost SYNs sent again, ACKs lost in
    /// an earlier phase), so the window does not shrink for good.
    forgiven: u64,
    server_seen: u64,
    server_answered: u64,
    unexpected: u64,
    arp_answered: u64,
    /// Frames received or handed to a tx queue, loop iterations, and the
    /// iterations in which nothing moved (the generator waited).
    moved: u64,
    polls: u64,
    idle_polls: u64,
}

struct Generator {
    opts: GenOptions,
    pool: Mempool,
    client: Link,
    server: Link,
    clock: Clock,
    syn: TcpTemplate,
    data: TcpTemplate,
    flows: Flows,
    /// Flows whose handshake completed (or, flooding, whose SYN-ACK came).
    done: FlowSet,
    /// Whether the phase being run counts data answers (vs handshakes).
    pumping: bool,
    c: Counts,
    rx: Burst,
}

impl Generator {
    /// The packet answering a handshake event of flow `i`: the client's ACK.
    fn handshake_event(&mut self, i: u32) {
        if !self.done.insert(i) {
            return;
        }
        if !self.pumping {
            self.c.received += 1;
        }
        if self.opts.mode == Mode::SynFlood {
            return;
        }
        // The ACK completing the handshake, from the template (in one-way
        // runs the client never sees the SYN-ACK).
        if let Some(m) =
            self.build(&self.syn, i, client_isn(i).wrapping_add(1), packet::SERVER_ISN.wrapping_add(1), flags::ACK)
        {
            self.client.queue(m);
            self.c.acks_sent += 1;
        }
    }

    fn build(&self, t: &TcpTemplate, i: u32, seq: u32, ack: u32, tcp_flags: u8) -> Option<Mbuf> {
        let mut m = self.pool.alloc()?;
        m.append(t.len()).ok()?;
        let (src, sport) = self.flows.addr(i);
        t.write(m.data_mut(), src, sport, seq, ack, tcp_flags);
        Some(m)
    }

    /// Receives on the server link: answers as the real servers, or counts
    /// (one-way).
    fn poll_server(&mut self) {
        self.c.moved += self.server.flush() as u64;
        if self.server.pending() > 2 * dpdk::BURST_SIZE {
            return;
        }
        let n = self.server.rx.rx_burst(&mut self.rx);
        if n == 0 {
            return;
        }
        self.c.moved += n as u64;
        let mut burst = std::mem::take(&mut self.rx);
        for mut m in burst.drain() {
            if let Some(n) = arp_reply(m.data_mut(), self.server.mac) {
                let len = m.len();
                let _ = m.trim(len - n);
                self.c.arp_answered += 1;
                self.server.queue(m);
                continue;
            }
            let Some(s) = parse(m.data()) else {
                self.c.unexpected += 1;
                continue;
            };
            if is_probe_port(s.sport) {
                // The gateway's health probe of a real server: answered as a
                // server would, and no part of the measured traffic.
                if let Answer::Reply { seq, ack, flags: f } = answer(&s) {
                    let n = write_answer(m.data_mut(), &s, seq, ack, f);
                    let len = m.len();
                    let _ = m.trim(len - n);
                    self.server.queue(m);
                }
                continue;
            }
            self.c.server_seen += 1;
            let pure_ack = s.flags & (flags::SYN | flags::FIN | flags::RST) == 0 && s.payload == 0;
            if pure_ack {
                self.c.acks_arrived += 1;
            }
            if self.opts.oneway {
                if let Some(i) = self.flows.index(s.src, s.sport) {
                    if s.flags & flags::SYN != 0 {
                        self.handshake_event(i);
                    } else if self.pumping && s.payload > 0 {
                        self.c.received += 1;
                    }
                }
                continue;
            }
            if s.tunnelled {
                self.c.unexpected += 1;
                continue;
            }
            if let Answer::Reply { seq, ack, flags: f } = answer(&s) {
                let n = write_answer(m.data_mut(), &s, seq, ack, f);
                let len = m.len();
                let _ = m.trim(len - n);
                self.c.server_answered += 1;
                self.server.queue(m);
            }
        }
        self.rx = burst;
        self.c.moved += self.server.flush() as u64;
    }

    /// Receives on the client link and counts the answers.
    fn poll_client(&mut self) {
        let n = self.client.rx.rx_burst(&mut self.rx);
        if n == 0 {
            return;
        }
        self.c.moved += n as u64;
        // Over IPv6 the segment holds the addresses' low 32 bits.
        let vip = match self.opts.vip {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(a) => u128::from(a) as u32,
        };
        let mut burst = std::mem::take(&mut self.rx);
        for mut m in burst.drain() {
            if let Some(n) = arp_reply(m.data_mut(), self.client.mac) {
                let len = m.len();
                let _ = m.trim(len - n);
                self.c.arp_answered += 1;
                self.client.queue(m);
                continue;
            }
            let seg = parse(m.data()).filter(|s| s.src == vip && s.sport == self.opts.vport);
            let Some(s) = seg else {
                self.c.unexpected += 1;
                continue;
            };
            let Some(i) = self.flows.index(s.dst, s.dport) else {
                self.c.unexpected += 1;
                continue;
            };
            if s.flags & flags::SYN != 0 && s.flags & flags::ACK != 0 {
                if !self.opts.oneway {
                    self.handshake_event(i);
                }
            } else if self.pumping && s.flags & flags::ACK != 0 {
                self.c.received += 1;
            } else {
                self.c.unexpected += 1;
            }
        }
        self.rx = burst;
    }

    fn poll(&mut self) {
        let before = self.c.moved;
        self.c.moved += self.client.flush() as u64;
        self.poll_server();
        self.poll_client();
        self.c.moved += self.client.flush() as u64;
        self.c.polls += 1;
        if self.c.moved == before {
            self.c.idle_polls += 1;
        }
    }

    /// Fraction of loop iterations since `(polls, idle)` in which nothing
    /// moved.
    fn idle_since(&self, polls: u64, idle: u64) -> Option<f64> {
        let n = self.c.polls - polls;
        (n > 0).then(|| (self.c.idle_polls - idle) as f64 / n as f64)
    }

    fn in_flight(&self) -> u64 {
        (self.c.sent + self.c.acks_sent).saturating_sub(self.c.received + self.c.acks_arrived + self.c.forgiven)
    }

    /// How many client segments may be queued now.
    fn room(&self) -> usize {
        if self.client.pending() >= dpdk::BURST_SIZE {
            return 0;
        }
        let room = dpdk::BURST_SIZE - self.client.pending();
        if self.opts.window == 0 {
            return room;
        }
        room.min(u64::from(self.opts.window).saturating_sub(self.in_flight()) as usize)
    }

    /// SYNs for flows `0..n` not yet done, windowed; then up to `retries`
    /// more passes over the flows still missing. Ends when every flow is done,
    /// at `deadline`, or when a pass gets no answer for `idle` seconds.
    fn syn_phase(&mut self, n: u32, deadline: u64, retries: u32) -> Phase {
        let start = self.clock.now();
        let idle = (0.3 * self.clock.hz) as u64;
        let mut pass = 0;
        let mut next = 0u32;
        let mut last_progress = start;
        let mut last_done = self.done.count;
        let mut end_of_sending = None;
        loop {
            let now = self.clock.now();
            if now >= deadline || self.done.count >= u64::from(n) {
                break;
            }
            let mut room = self.room();
            while room > 0 && next < n {
                if !self.done.contains(next) {
                    let Some(m) = self.build(&self.syn, next, client_isn(next), 0, flags::SYN) else { break };
                    self.client.queue(m);
                    self.c.sent += 1;
                    room -= 1;
                }
                next += 1;
            }
            self.poll();
            if self.done.count != last_done {
                last_done = self.done.count;
                last_progress = now;
            }
            if next >= n {
                end_of_sending.get_or_insert(now);
                if now.saturating_sub(last_progress) > idle {
                    if pass >= retries {
                        break;
                    }
                    // Lost SYNs: send the missing flows again; the window
                    // starts afresh for them.
                    pass += 1;
                    next = 0;
                    self.c.forgiven += self.in_flight();
                    last_progress = now;
                }
            }
        }
        let end = self.clock.now();
        Phase { seconds: self.clock.seconds(start, end), done: self.done.count, passes: pass + 1 }
    }

    /// Data segments round-robin over the established flows.
    fn pump(&mut self, deadline: u64) -> (u64, u64, f64) {
        let established: Vec<u32> = if self.done.count == u64::from(self.opts.flows) {
            Vec::new()
        } else {
            (0..self.opts.flows).filter(|&i| self.done.contains(i)).collect()
        };
        let nflows = if established.is_empty() { self.opts.flows } else { established.len() as u32 };
        if nflows == 0 || self.done.count == 0 {
            return (0, 0, 0.0);
        }
        self.pumping = true;
        self.c.sent = 0;
        self.c.received = 0;
        self.c.forgiven = 0;
        self.c.forgiven = self.in_flight();
        let payload = self.data.len() - packet::HDR_LEN;
        let (mut pos, mut round) = (0u32, 0u32);
        let start = self.clock.now();
        let mut end;
        loop {
            end = self.clock.now();
            if end >= deadline || self.c.sent >= self.opts.count {
                break;
            }
            let room = (self.room() as u64).min(self.opts.count - self.c.sent);
            for _ in 0..room {
                let i = if established.is_empty() { pos } else { established[pos as usize] };
                let seq = client_isn(i).wrapping_add(1).wrapping_add(round.wrapping_mul(payload as u32));
                let Some(m) =
                    self.build(&self.data, i, seq, packet::SERVER_ISN.wrapping_add(1), flags::ACK | flags::PSH)
                else {
                    break;
                };
                self.client.queue(m);
                self.c.sent += 1;
                pos += 1;
                if pos == nflows {
                    pos = 0;
                    round = round.wrapping_add(1);
                }
            }
            self.poll();
        }
        let received_in_window = self.c.received;
        (self.c.sent, received_in_window, self.clock.seconds(start, end))
    }

    /// Polls until every answer is in or `seconds` pass.
    fn drain(&mut self, seconds: f64) {
        let until = self.clock.after(seconds);
        while self.clock.now() < until
            && (self.in_flight() > 0 || self.client.pending() > 0 || self.server.pending() > 0)
        {
            self.poll();
        }
        // Answers still trickling in after the count is complete.
        let quiet = self.clock.after(0.02);
        while self.clock.now() < quiet {
            self.poll();
        }
    }
}

fn open_link(eal: &Eal, dev: &str, pool: &Mempool) -> Result<(Port, Link), String> {
    let config = PortConfig { rss: false, checksum_offload: false, promiscuous: true, ..PortConfig::default() };
    let (port, mut rx, mut tx) = Port::open(eal, dev, &config, pool).map_err(|e| format!("{dev}: {e}"))?;
    let mac = port.mac_addr().map_err(|e| e.to_string())?;
    let link = Link {
        rx: rx.pop().ok_or("no rx queue")?,
        tx: tx.pop().ok_or("no tx queue")?,
        out: Burst::new(),
        backlog: VecDeque::with_capacity(8192),
        mac,
    };
    Ok((port, link))
}

fn counters(port: &Port) -> LinkCounters {
    let s = port.stats().unwrap_or_default();
    LinkCounters {
        ipackets: s.ipackets,
        opackets: s.opackets,
        imissed: s.imissed,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`
/// (10 ms ticks).
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / 100.0)
}

/// Runs the generator as `opts` says; the EAL is initialised here (once per
/// process) and released before returning.
///
/// `report` gets the result while the links are still open: a driver that
/// stops the device under test first (see [`GenOptions`] and the driver's
/// notes on memif) has `report` wait for that. A memif server whose peer
/// disconnects unmaps the shared regions from its interrupt thread while its
/// lcores may still be polling them (DPDK 22.11), so the peer that polls
/// must go first.
pub fn run(opts: GenOptions, report: impl FnOnce(&GenResult)) -> Result<GenResult, String> {
    if opts.payload > packet::MAX_PAYLOAD {
        return Err(format!("payload {} > {}", opts.payload, packet::MAX_PAYLOAD));
    }
    let flows = if opts.mode == Mode::SynFlood { Flows::SPOOFED } else { Flows::CLIENTS };
    if u64::from(opts.flows) > flows.capacity() {
        return Err(format!("{} flows: the addressing scheme has {}", opts.flows, flows.capacity()));
    }
    let eal = Eal::init(&opts.eal).map_err(|e| e.to_string())?;
    // Room for memif's rx rings (4096 each in zero-copy), a full window
    // on both links and the bursts in between.
    let pool = Mempool::new(&eal, "gwbench_pool", 32767, 256, MBUF_DEFAULT_BUF_SIZE).map_err(|e| e.to_string())?;
    let outcome = (|| {
        let (cport, client) = open_link(&eal, &opts.client_dev, &pool)?;
        let (sport, server) = open_link(&eal, &opts.server_dev, &pool)?;
        let clock = Clock { hz: dpdk::tsc_hz() as f64 };
        let up_by = clock.after(opts.link_timeout);
        while !(cport.link().is_ok_and(|l| l.up) && sport.link().is_ok_and(|l| l.up)) {
            if clock.now() >= up_by {
                return Err(format!("links not up after {} s (is the gateway running?)", opts.link_timeout));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let template = |payload| match opts.vip {
            IpAddr::V4(vip) => TcpTemplate::new(client.mac, opts.gateway_mac, vip, opts.vport, payload),
            IpAddr::V6(vip) => TcpTemplate::new_v6(client.mac, opts.gateway_mac, vip, opts.vport, payload),
        };
        let (syn, data) = (template(0), template(opts.payload));
        let mut g = Generator {
            done: FlowSet::new(opts.flows),
            opts: opts.clone(),
            pool: pool.clone(),
            client,
            server,
            clock,
            syn,
            data,
            flows,
            pumping: false,
            c: Counts::default(),
            rx: Burst::new(),
        };
        // Let both ends settle (the device's far side may come up a little
        // after ours), answering ARP meanwhile.
        let settle = clock.after(0.2);
        while clock.now() < settle {
            g.poll();
        }
        g.c = Counts::default();
        let cpu_start = cpu_seconds();
        let mut r = GenResult {
            mode: opts.mode.name().into(),
            oneway: opts.oneway,
            flows: opts.flows,
            window: opts.window,
            payload: opts.payload as u32,
            ..GenResult::default()
        };
        match opts.mode {
            Mode::Established => {
                let hs = g.syn_phase(opts.flows, clock.after(opts.handshake_seconds), 3);
                g.drain(0.05);
                r.handshake = Some(hs);
                let cpu = cpu_seconds();
                let (polls, idle) = (g.c.polls, g.c.idle_polls);
                let (sent, in_window, seconds) = g.pump(clock.after(opts.seconds));
                r.gen_idle = g.idle_since(polls, idle);
                if let (Some(a), Some(b)) = (cpu, cpu_seconds()) {
                    r.gen_cpu_share = Some((b - a) / seconds.max(1e-9));
                }
                g.drain(1.0);
                r.sent = sent;
                r.received_in_window = in_window;
                r.seconds = seconds;
            }
            Mode::Connect | Mode::SynFlood => {
                let cpu = cpu_seconds();
                let (polls, idle) = (g.c.polls, g.c.idle_polls);
                let ph = g.syn_phase(opts.flows, clock.after(opts.seconds), 0);
                r.gen_idle = g.idle_since(polls, idle);
                if let (Some(a), Some(b)) = (cpu, cpu_seconds()) {
                    r.gen_cpu_share = Some((b - a) / ph.seconds.max(1e-9));
                }
                r.received_in_window = g.c.received;
                r.seconds = ph.seconds;
                g.drain(1.0);
                r.sent = g.c.sent;
            }
        }
        if r.gen_cpu_share.is_none() {
            r.gen_cpu_share = match (cpu_start, cpu_seconds()) {
                (Some(a), Some(b)) if r.seconds > 0.0 => Some((b - a) / r.seconds),
                _ => None,
            };
        }
        r.received = g.c.received;
        r.lost = r.sent.saturating_sub(r.received);
        r.rate = if r.seconds > 0.0 { r.received_in_window as f64 / r.seconds } else { 0.0 };
        r.mpps = r.rate / 1e6;
        r.acks_sent = g.c.acks_sent;
        r.server_seen = g.c.server_seen;
        r.server_answered = g.c.server_answered;
        r.unexpected = g.c.unexpected;
        r.arp_answered = g.c.arp_answered;
        r.unsent = (g.client.discard() + g.server.discard()) as u64;
        r.client_link = counters(&cport);
        r.server_link = counters(&sport);
        report(&r);
        drop(g);
        drop(cport);
        drop(sport);
        Ok(r)
    })();
    // memif in zero-copy mode keeps the mbufs of its rx rings after the
    // port closes (DPDK 22.11); the process ends here, so that is no leak
    // worth a message. Anything else is.
    // net_af_xdp likewise keeps the mbufs of its fill ring.
    let zero_copy = opts.eal.iter().any(|a| a.contains("zero-copy=yes") || a.contains("net_af_xdp"));
    if !pool.is_full() && !zero_copy {
        eprintln!("gwbench: {} mbufs not returned to the pool", pool.in_use_count());
    }
    drop(pool);
    if let Err((_, e)) = eal.cleanup() {
        if !zero_copy {
            eprintln!("gwbench: {e}");
        }
    }
    outcome
}
