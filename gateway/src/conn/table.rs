//! The per-worker connection table.
//!
//! Layout, and why:
//!
//! - **Entries** live in one slab preallocated to the configured capacity (a [`HugeVec`],
//!   whose capacity is fixed when made; pages are touched as slots are first used). A free list threads through unused entries, so insert and remove are O(1) and
//!   never allocate. An IPv4 entry is 64 bytes and 64-byte aligned: one cache line holds the
//!   whole rewrite, so a lookup costs one miss in the index and one in the entry.
//! - **The index** is an open-addressing table of `u64` slots with linear probing, holding
//!   two slots per connection, one per direction's 5-tuple. A slot packs 36 bits of the
//!   key's hash, the direction and the entry's index (27 bits: at most 134 million entries),
//!   so a probe rejects nearly every foreign slot without touching its entry, and eight slots
//!   share a cache line, so a probe sequence rarely leaves the first line. It is sized to a
//!   power of two holding the two keys per entry at load factor at most 7/8 (between 0.44 and
//!   0.88 depending on rounding). Deletion shifts the following slots back (no tombstones),
//!   so a table churning through millions of connections never degrades.
//!   Chained hashing (IPVS, DPVS) would cost a pointer chase per bucket plus per chain step.
//! - **Huge pages**: the entries, the index and the PROXY header states are
//!   [`HugeVec`]s, on transparent huge pages once 2 MiB or larger (see
//!   [`crate::dpdk::hugemem`]): at 1M connections the ~100 MB they take are 50 TLB entries
//!   instead of 25 000, so a lookup's two misses are not joined by page walks
//!   ([`ConnTable::backing`] says how they came out).
//! - **Timers** are the lazy wheel of [`super::timer`]: a packet stores the new deadline in
//!   the entry and re-files nothing unless the deadline moved earlier. There are two
//!   wheels: half-open connections (SYN_RECV) are filed in their own, so the oldest of them
//!   is at hand in O(1) ([`super::timer::TimerWheel::pop_earliest`]) without a list through
//!   the entries (which would cost the entry its single cache line). A connection is filed
//!   by its state whenever it is (re-)filed; one that completes its handshake stays where
//!   it is until the wheel reaches it, when it moves over (the lazy re-filing that happens
//!   anyway), so the packet path pays nothing for the split. A flag bit says which wheel
//!   holds an entry.
//! - **A full table** ([`ConnTable::make_room`]) first reclaims a connection already past
//!   its deadline that expiry has not reached yet, else sheds the oldest half-open one (a
//!   SYN flood's entries: each gets the table's whole capacity divided by the flood's
//!   rate to complete its handshake), and never an established one: then the new
//!   connection is refused. Pressure means full: shedding earlier would end handshakes
//!   that could still complete, for nothing, since an insert into a full table sheds in
//!   O(1) anyway. Everything is counted ([`TableStats`]).
//! - **Counters**: the entry holds an `Arc` of its real server's counters; the table keeps
//!   active/inactive in step with the TCP state and unbinds when the entry goes, even if
//!   the server left the configuration meanwhile.
//! - **Passive health detection** (DPVS's `dest-check`): the table tells the server's
//!   [`crate::model::counters::PassiveCounters`] how each new connection's handshake ended, once per
//!   connection, on branches the established path never takes:
//!   - success: the connection became ESTABLISHED (TCP), or its first reply came (UDP);
//!   - refused: the server answered the handshake with a RST (SYN_RECV -> CLOSE by a
//!     server packet; NAT and FNAT, whose replies pass here);
//!   - timed out: a TCP connection expired half-open (SYN_RECV). With NAT and FNAT only if
//!     the server never sent its SYN-ACK: a client that never completes a handshake the
//!     server answered (a spoofed SYN flood) is not the server's failure. DR and TUN never
//!     show the server's packets, so there it counts only if the client sent its SYN again
//!     past the first deadline (seen when expiry re-files the connection): a real client
//!     retransmits to a silent server, a spoofed SYN is sent once;
//!   - unanswered: a UDP connection (NAT, FNAT) expired without one reply.
//!
//!   The mark is one flag bit (`FLAG_ANSWERED`). A packet that changes the state or
//!   carries a SYN (a few per connection) goes out of line (`Conn::tcp_event`), where the
//!   state change, the mark and the counting happen; an established packet pays the SYN
//!   test of the flags byte it already holds (`measure_pipeline.sh`: established 782 -> 786
//!   instructions a packet, reply 767 -> 766). Connections removed before their deadline
//!   (shed by a full table, flushed with their server) say nothing about the server and
//!   are not counted.
//!
//! Time is a parameter (`now`, seconds from the worker's clock, read once per burst); the
//! table never reads a clock, so tests are deterministic.

use std::sync::Arc;

use super::key::{Family, FlowKey, HashSeed};
use super::proxy_protocol::HeaderState;
use super::state::{stays_established, tcp_transition, Direction, State, Timeouts};
use super::timer::{Link, Timed, TimerWheel, NIL};
use crate::dpdk::hugemem::{Backing, HugeVec};
use crate::model::counters::ConnFailure;
use crate::model::{DestCounters, ForwardMethod, Protocol};

/// A key's hash as the index files it ([`ConnTable::hash_of`]). It depends on the key
/// and the table's seed only, so it stays true while the table changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyHash(u64);

/// Index of a connection in its worker's table.
pub type ConnId = u32;

/// "No persistence template" in [`Conn::template`].
pub const NO_TEMPLATE: u32 = u32::MAX;

const FLAG_LIVE: u8 = 1;
const FLAG_ACTIVE: u8 = 2;
/// A SYN-proxied connection waiting for its server's SYN-ACK; `proxy_seq` holds the
/// worker's handshake slot.
const FLAG_PROXY_HANDSHAKE: u8 = 4;
/// A SYN-proxied connection past its server handshake: `proxy_seq` is the sequence delta.
const FLAG_PROXIED: u8 = 8;
/// ... and both ends use timestamps: `proxy_ts` is the timestamp delta.
const FLAG_PROXY_TS: u8 = 16;
/// Filed in the half-open wheel (else in the other).
const FLAG_HALF_OPEN_WHEEL: u8 = 32;
/// A record of the connection went to the sync daemon ([`crate::sync`]): its later state
/// changes and refreshes follow it.
const FLAG_SYNCED: u8 = 64;
/// The connection sends a PROXY protocol header: its state is in the table's side array
/// ([`ConnTable::header_mut`], see [`super::proxy_protocol`]).
const FLAG_PROXY_HEADER: u8 = 128;
/// Passive detection's mark, on a connection the SYN proxy does not carry (whose
/// `FLAG_PROXY_TS` bit it takes: the byte is full, and that bit means something only
/// with `FLAG_PROXIED`): the server answered (NAT and FNAT TCP: it sent its SYN-ACK;
/// UDP, which the SYN proxy never carries: a reply came). Of a SYN-proxied connection,
/// the server answered once its handshake is no longer open ([`Conn::answered`]).
const FLAG_ANSWERED: u8 = FLAG_PROXY_TS;
/// DR and TUN TCP (whose server packets never pass here, and which the SYN proxy never
/// carries), the same bit: the client's handshake was extended past its first deadline
/// (it sent its SYN again).
const FLAG_RETRIED: u8 = FLAG_ANSWERED;

/// Where a connection stands with the SYN proxy (`crate::synproxy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    /// Not proxied: packets pass with their own numbering.
    Off,
    /// Opened to the server from a validated cookie; the server has not answered yet.
    /// The worker keeps the handshake (held packets, retransmission) in this slot.
    Handshake(u32),
    /// Established on both sides: the server's sequence numbers (and TSvals) are shifted
    /// into the client's view by these deltas ([`crate::synproxy::ProxyDeltas`]).
    Deltas { seq: u32, ts: Option<u32> },
}

/// One connection: everything the rewrite needs, copied at creation so it survives the
/// removal of its service or real server.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Conn<A> {
    // Each direction's key lies together, addresses then ports, as a packet
    // gives them (source first): the lookup compares both addresses with one
    // load and both ports with another ([`Conn::holds`]).
    pub client: A,
    pub vaddr: A,
    pub cport: u16,
    pub vport: u16,
    pub raddr: A,
    /// FNAT: the local address packets to the real server come from. NAT, DR, TUN: the
    /// client address (the real server answers the client).
    pub laddr: A,
    pub rport: u16,
    pub lport: u16,
    pub proto: Protocol,
    pub method: ForwardMethod,
    state: State,
    flags: u8,
    /// Tick after which the connection is gone unless a packet extends it.
    expires: u32,
    link: Link,
    /// The persistence template this connection holds, or [`NO_TEMPLATE`].
    pub template: u32,
    dest: Option<Arc<DestCounters>>,
    /// SYN proxy: the handshake slot, then the sequence delta (see [`Proxy`]).
    proxy_seq: u32,
    /// SYN proxy: the timestamp delta.
    proxy_ts: u32,
}

impl<A> Timed for Conn<A> {
    fn link(&self) -> &Link {
        &self.link
    }
    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

impl<A: Family> Conn<A> {
    pub fn state(&self) -> State {
        self.state
    }
    pub fn expires(&self) -> u32 {
        self.expires
    }
    pub fn is_active(&self) -> bool {
        self.flags & FLAG_ACTIVE != 0
    }
    pub fn dest(&self) -> Option<&Arc<DestCounters>> {
        self.dest.as_ref()
    }
    /// Counts a packet going `dir` to its real server's numbers, in worker `worker`'s
    /// slot: `ip_len()` bytes, the packet's IP length as it arrived (IPVS counts it
    /// before the rewrite changes it). The length is asked for only with a server to
    /// count it to: passed as a value, the compiler read it before the test and kept it
    /// across (`measure_pipeline.sh`: an established packet 3 instructions more).
    #[inline(always)]
    pub fn count_to_dest(&self, worker: u16, dir: Direction, ip_len: impl FnOnce() -> usize) {
        if let Some(d) = &self.dest {
            let bytes = ip_len() as u64;
            match dir {
                Direction::In => d.count_inbound(worker, 1, bytes),
                Direction::Out => d.count_outbound(worker, 1, bytes),
            }
        }
    }
    /// Whether the entry holds a connection (it may be free, between connections).
    pub fn is_live(&self) -> bool {
        self.flags & FLAG_LIVE != 0
    }
    /// Moves to `state`, keeping the real server's active and inactive counts in step;
    /// returns whether the connection is active now.
    #[inline(always)]
    fn enter(&mut self, state: State) -> bool {
        self.state = state;
        let active = state.is_active();
        if active != self.is_active() {
            self.flags ^= FLAG_ACTIVE;
            if let Some(d) = &self.dest {
                d.set_active(active);
            }
        }
        active
    }
    /// How its handshake failed, if it did, for a connection that expires now (see the
    /// module doc, passive health detection).
    fn failed_at_expiry(&self) -> Option<ConnFailure> {
        let marked = self.answered();
        if self.flags & FLAG_SYNCED != 0 {
            // Installed or recorded for the connection sync: its handshake ran on another
            // director, or got past its start here.
            return None;
        }
        match (self.proto, self.method.sees_replies()) {
            (Protocol::Tcp, _) if !self.state.is_half_open() => None,
            (Protocol::Tcp, true) => (!marked).then_some(ConnFailure::TimedOut),
            (Protocol::Tcp, false) => (self.flags & FLAG_RETRIED != 0).then_some(ConnFailure::TimedOut),
            (Protocol::Udp, true) => (!marked).then_some(ConnFailure::Unanswered),
            (Protocol::Udp, false) => None,
        }
    }
    /// Whether its server answered (see [`FLAG_ANSWERED`]).
    fn answered(&self) -> bool {
        match self.flags & (FLAG_PROXY_HANDSHAKE | FLAG_PROXIED) {
            0 => self.flags & FLAG_ANSWERED != 0,
            proxy => proxy == FLAG_PROXIED,
        }
    }
    /// A reply of a UDP connection the sync has not recorded or that had none before: the
    /// first one is its success (passive detection). Returns whether the sync wants a
    /// record of it.
    #[cold]
    #[inline(never)]
    fn udp_reply(&mut self) -> bool {
        if self.flags & FLAG_ANSWERED == 0 {
            self.flags |= FLAG_ANSWERED;
            if let Some(d) = &self.dest {
                d.passive().succeed();
            }
        }
        self.flags & FLAG_SYNCED == 0
    }
    /// A TCP packet going `dir` with `tcp_flags` that moves the connection to `state` or
    /// carries a SYN: enters the state; notes the server's SYN-ACK; counts how a handshake
    /// ended when it leaves its half-open state (ESTABLISHED a success, the server's RST a
    /// refusal). Returns whether the sync wants a record of it.
    #[cold]
    #[inline(never)]
    fn tcp_event(&mut self, state: State, dir: Direction, tcp_flags: u8) -> bool {
        use crate::wire::tcp::flags::{RST, SYN};
        if tcp_flags & SYN != 0 && dir == Direction::Out && self.flags & (FLAG_PROXY_HANDSHAKE | FLAG_PROXIED) == 0 {
            self.flags |= FLAG_ANSWERED;
        }
        if state == self.state {
            return false;
        }
        let handshake = self.state.is_half_open();
        let active = self.enter(state);
        if let (true, Some(d)) = (handshake, &self.dest) {
            if active {
                d.passive().succeed();
            } else if dir == Direction::Out && tcp_flags & RST != 0 {
                d.passive().fail(ConnFailure::Refused);
            }
        }
        active || (self.flags & FLAG_SYNCED != 0 && !state.is_half_open())
    }
    /// Whether its packets take the worker's rare path: in the SYN proxy's handshake, or
    /// sending a PROXY protocol header. One test of the flags for both.
    #[inline(always)]
    pub fn is_rare(&self) -> bool {
        self.flags & (FLAG_PROXY_HANDSHAKE | FLAG_PROXY_HEADER) != 0
    }
    /// Whether neither the SYN proxy (its handshake or its deltas) nor a PROXY header
    /// touches the connection's packets: they are rewritten for its mode alone.
    #[inline(always)]
    pub fn is_plain(&self) -> bool {
        self.flags & (FLAG_PROXY_HANDSHAKE | FLAG_PROXIED | FLAG_PROXY_HEADER) == 0
    }
    /// Whether the connection sends a PROXY protocol header (its service asked for one).
    #[inline(always)]
    pub fn has_proxy_header(&self) -> bool {
        self.flags & FLAG_PROXY_HEADER != 0
    }
    /// Whether a record of it went to the sync daemon.
    #[inline(always)]
    pub fn is_synced(&self) -> bool {
        self.flags & FLAG_SYNCED != 0
    }
    /// Notes that a record of it went to the sync daemon.
    pub fn mark_synced(&mut self) {
        self.flags |= FLAG_SYNCED;
    }
    /// Where the connection stands with the SYN proxy.
    #[inline(always)]
    pub fn proxy(&self) -> Proxy {
        if self.flags & (FLAG_PROXY_HANDSHAKE | FLAG_PROXIED) == 0 {
            Proxy::Off
        } else if self.flags & FLAG_PROXY_HANDSHAKE != 0 {
            Proxy::Handshake(self.proxy_seq)
        } else {
            Proxy::Deltas { seq: self.proxy_seq, ts: (self.flags & FLAG_PROXY_TS != 0).then_some(self.proxy_ts) }
        }
    }
    /// Whether packets of `dir` carry `key`: `self.key(dir) == *key`, with
    /// the two addresses compared as one value and the two ports as another
    /// (field by field, the compiler compared five fields through four
    /// pointers: `measure_pipeline.sh`, an established packet and a reply 10
    /// instructions more).
    #[inline(always)]
    pub fn holds(&self, dir: Direction, key: &FlowKey<A>) -> bool {
        let ports = |sport: u16, dport: u16| u32::from(sport) | u32::from(dport) << 16;
        let (addrs, ports_held) = match dir {
            Direction::In => (A::pair(self.client, self.vaddr), ports(self.cport, self.vport)),
            Direction::Out => (A::pair(self.raddr, self.laddr), ports(self.rport, self.lport)),
        };
        addrs == A::pair(key.src, key.dst) && ports_held == ports(key.sport, key.dport) && self.proto == key.proto
    }
    /// The 5-tuple packets of `dir` carry.
    pub fn key(&self, dir: Direction) -> FlowKey<A> {
        let proto = self.proto;
        match dir {
            Direction::In => FlowKey { proto, src: self.client, sport: self.cport, dst: self.vaddr, dport: self.vport },
            Direction::Out => FlowKey { proto, src: self.raddr, sport: self.rport, dst: self.laddr, dport: self.lport },
        }
    }
}

/// What the dataplane knows when it creates a connection.
#[derive(Debug, Clone)]
pub struct NewConn<A> {
    pub proto: Protocol,
    pub client: A,
    pub cport: u16,
    pub vaddr: A,
    pub vport: u16,
    pub laddr: A,
    pub lport: u16,
    pub raddr: A,
    pub rport: u16,
    pub method: ForwardMethod,
    pub dest: Arc<DestCounters>,
    pub template: u32,
    /// Its PROXY protocol header, when its service sends one.
    pub proxy_header: Option<HeaderState>,
}

/// Why an insert was refused. The table is unchanged either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// Every preallocated entry is in use.
    Full,
    /// One of the two 5-tuples already belongs to a live connection.
    Exists,
}

/// Counters of one table (per worker, plain integers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub inserted: u64,
    /// Inserts refused: full, with nothing expired to reclaim and no half-open to shed.
    pub refused_full: u64,
    /// Inserts refused because a key belongs to a live connection: at once, or, for a
    /// reply key held back ([`ConnTable::defer_reply_keys`]), when it is indexed (the
    /// connection then goes).
    pub refused_exists: u64,
    /// Removed by expiry (and by [`ConnTable::remove_now`]).
    pub expired: u64,
    /// Past their deadline but not yet expired, removed to admit a new connection.
    pub reclaimed: u64,
    /// Half-open connections removed before their deadline to admit a new connection.
    pub shed: u64,
    /// Connections not noted for the connection sync: the note list was full.
    pub sync_due_dropped: u64,
}

/// Where a table's arrays are ([`ConnTable::backing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableBacking {
    pub entries: Backing,
    pub index: Backing,
}

impl std::fmt::Display for TableBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.entries == self.index {
            write!(f, "entries and index on {}", self.entries)
        } else {
            write!(f, "entries on {}, index on {}", self.entries, self.index)
        }
    }
}

const EMPTY: u64 = u64::MAX;
const IDX_BITS: u32 = 27;
/// The largest capacity: entry indices are 27 bits and index `2^27 - 1` is reserved so no
/// slot can equal `EMPTY`.
pub const MAX_CAPACITY: u32 = (1 << IDX_BITS) - 2;
const HASH_BITS: u32 = 36;

#[derive(Debug)]
pub struct ConnTable<A> {
    entries: HugeVec<Conn<A>>,
    capacity: u32,
    free: u32,
    len: u32,
    index: HugeVec<u64>,
    /// What a key's hash is shifted right by to give its home slot: the
    /// hash's bits beyond the index's.
    home_shift: u32,
    seed: HashSeed,
    /// Every connection that is not in `half_open`.
    wheel: TimerWheel,
    /// Half-open connections ([`State::is_half_open`]), oldest first.
    half_open: TimerWheel,
    timeouts: Timeouts,
    stats: TableStats,
    /// Connections a packet moved to where the connection sync may want them
    /// ([`ConnTable::drain_sync_due`]), noted on `on_packet`'s rare branches.
    sync_due: Vec<ConnId>,
    /// The PROXY header state of the connections that send one, by connection id; empty
    /// until some service asks for it ([`ConnTable::enable_proxy_headers`]).
    headers: HugeVec<HeaderState>,
    /// New FNAT connections whose reply key is not in the index yet
    /// ([`ConnTable::defer_reply_keys`]).
    deferred: DeferredReplies,
}

/// The most reply keys [`ConnTable::defer_reply_keys`] holds back: a staged burst's
/// new connections. An insert past them indexes its reply key at once.
pub const DEFERRED_REPLY_KEYS: usize = 32;

/// Reply keys held back, by connection, with their hashes.
#[derive(Debug)]
struct DeferredReplies {
    /// Whether inserts hold their reply keys back.
    on: bool,
    len: usize,
    ids: [ConnId; DEFERRED_REPLY_KEYS],
    hashes: [u64; DEFERRED_REPLY_KEYS],
}

impl DeferredReplies {
    /// Whether connection `id`'s reply key is held back; if so, it is no longer.
    fn take_out(&mut self, id: ConnId) -> bool {
        let Some(i) = self.ids[..self.len].iter().position(|&d| d == id) else { return false };
        self.len -= 1;
        self.ids.copy_within(i + 1..=self.len, i);
        self.hashes.copy_within(i + 1..=self.len, i);
        true
    }
}

/// The most connections [`ConnTable::drain_sync_due`] holds between two calls: more state
/// changes than one loop iteration's packets can make.
pub const SYNC_DUE_CAPACITY: usize = 512;

impl<A: Family> ConnTable<A> {
    /// A table for `capacity` connections (at most [`MAX_CAPACITY`]), its timers starting
    /// at tick `now`, hashing with random seeds.
    pub fn new(capacity: u32, now: u32) -> ConnTable<A> {
        ConnTable::with_seed(capacity, now, HashSeed::random())
    }

    pub fn with_seed(capacity: u32, now: u32, seed: HashSeed) -> ConnTable<A> {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        // Two keys per entry at load factor <= 7/8.
        let keys = 2 * capacity as u64;
        let slots = (keys * 8).div_ceil(7).next_power_of_two().max(16);
        ConnTable {
            entries: HugeVec::with_capacity(capacity as usize),
            capacity,
            free: NIL,
            len: 0,
            index: HugeVec::from_elem(EMPTY, slots as usize),
            home_shift: HASH_BITS - slots.trailing_zeros(),
            seed,
            wheel: TimerWheel::new(now),
            half_open: TimerWheel::new(now),
            timeouts: Timeouts::default(),
            stats: TableStats::default(),
            sync_due: Vec::with_capacity(SYNC_DUE_CAPACITY),
            deferred: DeferredReplies {
                on: false,
                len: 0,
                ids: [0; DEFERRED_REPLY_KEYS],
                hashes: [0; DEFERRED_REPLY_KEYS],
            },
            headers: HugeVec::new(),
        }
    }

    /// Makes room for the PROXY header state of every connection the table can hold
    /// (8 bytes each), once: called when a snapshot first has a service sending the
    /// header, off the packet path. Until then, and on gateways with no such service, the
    /// table holds none (see [`super::proxy_protocol`]).
    pub fn enable_proxy_headers(&mut self) {
        if self.headers.is_empty() {
            self.headers = HugeVec::from_elem(HeaderState::default(), self.capacity as usize);
        }
    }

    /// The PROXY header state of connection `id` (one with [`Conn::has_proxy_header`]).
    #[inline(always)]
    pub fn header_mut(&mut self, id: ConnId) -> Option<&mut HeaderState> {
        self.headers.get_mut(id as usize)
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }
    /// Half-open connections (SYN_RECV), at most: one that completed its handshake counts
    /// until the wheel moves it over.
    pub fn half_open(&self) -> usize {
        self.half_open.len()
    }
    pub fn stats(&self) -> TableStats {
        self.stats
    }
    /// Memory the table holds per connection of capacity: entry plus index share, plus the
    /// PROXY header state once some service uses it.
    pub fn bytes_per_conn(&self) -> usize {
        let headers = if self.headers.is_empty() { 0 } else { std::mem::size_of::<HeaderState>() };
        std::mem::size_of::<Conn<A>>() + self.index.len() * 8 / self.capacity as usize + headers
    }

    /// How the entries and the index are backed: on transparent huge pages when large
    /// enough and the kernel took the advice (see [`crate::dpdk::hugemem`]).
    pub fn backing(&self) -> TableBacking {
        TableBacking { entries: self.entries.backing(), index: self.index.backing() }
    }

    /// Timeouts for later packets (from the snapshot; `--set`). Running connections pick
    /// them up at their next packet.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    pub fn get(&self, id: ConnId) -> &Conn<A> {
        &self.entries[id as usize]
    }

    /// Finds the connection a packet belongs to, and which way the packet goes.
    #[inline]
    pub fn lookup(&self, key: &FlowKey<A>) -> Option<(ConnId, Direction)> {
        self.probe(key, self.hash(key)).ok().map(|(id, dir, _)| (id, dir))
    }

    /// Looks up a burst of keys (`out[i]` for `keys[i]`). Same answers as
    /// [`ConnTable::lookup`], faster on large tables: the stages a worker runs over a
    /// received burst ([`ConnTable::hash_of`], [`ConnTable::prefetch_slot`],
    /// [`ConnTable::prefetch_entry`], [`ConnTable::lookup_hashed`]), each over the whole
    /// burst, so its cache misses overlap.
    pub fn lookup_burst(&self, keys: &[FlowKey<A>], out: &mut [Option<(ConnId, Direction)>]) {
        const BURST: usize = 32;
        for (kc, oc) in keys.chunks(BURST).zip(out.chunks_mut(BURST)) {
            let mut hs = [KeyHash(0); BURST];
            for (h, k) in hs.iter_mut().zip(kc) {
                *h = self.hash_of(k);
                self.prefetch_slot(*h);
            }
            for &h in &hs[..kc.len()] {
                self.prefetch_entry(h);
            }
            for ((k, o), &h) in kc.iter().zip(oc.iter_mut()).zip(&hs) {
                *o = self.lookup_hashed(k, h);
            }
        }
    }

    /// The hash the index files `key` under: a burst's first stage computes it once
    /// for the prefetches and the lookup.
    #[inline(always)]
    pub fn hash_of(&self, key: &FlowKey<A>) -> KeyHash {
        KeyHash(self.hash(key))
    }

    /// Starts loading the index line where the walk for hash `h` starts.
    #[inline(always)]
    pub fn prefetch_slot(&self, h: KeyHash) {
        crate::dpdk::prefetch::prefetch(self.index.as_ptr().wrapping_add(self.home(h.0)));
    }

    /// Starts loading the entry the home slot of hash `h` points at, if it holds one
    /// (most lookups end there): call once [`ConnTable::prefetch_slot`]'s line has had
    /// time to arrive.
    #[inline(always)]
    pub fn prefetch_entry(&self, h: KeyHash) {
        let s = self.index[self.home(h.0)];
        if s != EMPTY {
            let id = (s & ((1 << IDX_BITS) - 1)) as usize;
            crate::dpdk::prefetch::prefetch(self.entries.as_ptr().wrapping_add(id));
        }
    }

    /// [`ConnTable::lookup`] with the key's hash computed earlier ([`ConnTable::hash_of`]).
    #[inline(always)]
    pub fn lookup_hashed(&self, key: &FlowKey<A>, h: KeyHash) -> Option<(ConnId, Direction)> {
        self.probe(key, h.0).ok().map(|(id, dir, _)| (id, dir))
    }

    /// [`ConnTable::lookup_hashed`] with the connection found, for a caller that reads it
    /// at once: the probe's own reference, not the entries indexed (and bounds-checked)
    /// again.
    #[inline(always)]
    pub fn find_hashed(&self, key: &FlowKey<A>, h: KeyHash) -> Option<(ConnId, Direction, &Conn<A>)> {
        self.probe(key, h.0).ok()
    }

    #[inline]
    fn hash(&self, key: &FlowKey<A>) -> u64 {
        key.hash(self.seed) >> (64 - HASH_BITS)
    }

    /// Walks `key`'s probe sequence: the connection holding it, or the empty slot the walk
    /// ended at, which is exactly where linear probing would insert it.
    #[inline]
    fn probe(&self, key: &FlowKey<A>, h: u64) -> Result<(ConnId, Direction, &Conn<A>), usize> {
        let mask = self.index.len() - 1;
        let mut pos = self.home(h);
        loop {
            let s = self.index[pos];
            if s == EMPTY {
                return Err(pos);
            }
            if s >> (IDX_BITS + 1) == h {
                let id = (s & ((1 << IDX_BITS) - 1)) as u32;
                let dir = if s >> IDX_BITS & 1 == 0 { Direction::In } else { Direction::Out };
                let c = &self.entries[id as usize];
                if c.holds(dir, key) {
                    return Ok((id, dir, c));
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Adds a connection in state SYN_RECV (TCP) or UDP, bound to its real server's counters
    /// (inactive, as IPVS starts them). A full table or a 5-tuple already in use refuses it
    /// and counts the refusal; existing connections are untouched (a caller that would
    /// rather shed than refuse calls [`ConnTable::make_room`] first).
    ///
    /// TCP starts in SYN_RECV, not NONE: a TCP connection is only ever created by its
    /// client's SYN (IPVS's rule), whose transition NONE -> SYN_RECV would move the deadline
    /// from NONE's 2 s to SYN_RECV's, later, which the lazy wheel would leave filed at 2 s.
    /// Filed at its real deadline from the start, the half-open wheel stays in age order.
    pub fn insert(&mut self, c: NewConn<A>, now: u32) -> Result<ConnId, InsertError> {
        self.insert_new(c, None, now)
    }

    /// [`ConnTable::insert`] with the hash of the client's key (the packet's, as
    /// received) computed already ([`ConnTable::hash_of`]): the lookup that missed
    /// computed it, and a new connection's packet need not pay for it twice.
    // One caller (the director's new-connection path), which it is inlined into.
    #[inline(always)]
    pub fn insert_hashed(&mut self, c: NewConn<A>, hin: KeyHash, now: u32) -> Result<ConnId, InsertError> {
        self.insert_new(c, Some(hin), now)
    }

    /// From here until [`ConnTable::index_reply_keys`], a new FNAT connection's reply
    /// key is held back from the index, up to [`DEFERRED_REPLY_KEYS`] of them: its
    /// index line is prefetched, and written when the burst's other packets have
    /// been through (the staged pipeline, `worker/pipeline/burst.rs`). With millions
    /// of connections that line is a cache miss which no earlier stage can start (the
    /// key holds the local port the new connection takes), and held back, the misses
    /// of a burst's new connections overlap.
    ///
    /// Meanwhile a lookup of such a reply key finds nothing, which is right: the real
    /// server has not had the connection's first packet yet, so nothing it sends
    /// answers it. The client's key is indexed at once, so the client's packets find
    /// it, and removing the connection removes what was indexed.
    ///
    /// The insert does not look for the reply key first, as it does otherwise: its
    /// local port, which the worker's port pool lends to one connection at a time,
    /// makes it unique. [`ConnTable::index_reply_keys`] checks all the same.
    #[inline(always)]
    pub fn defer_reply_keys(&mut self) {
        self.deferred.on = true;
    }

    /// Indexes the reply keys held back since [`ConnTable::defer_reply_keys`], and
    /// holds no more back. A reply key found in the index already (a local port
    /// lent twice: a bug elsewhere) cannot be indexed: its connection is removed,
    /// `on_clash` called with it just before (to release its port and template),
    /// and counted as refused. Returns how many clashed.
    pub fn index_reply_keys(&mut self, mut on_clash: impl FnMut(&Conn<A>)) -> usize {
        self.deferred.on = false;
        let n = std::mem::take(&mut self.deferred.len);
        let mut clashes = 0;
        for i in 0..n {
            let (id, h) = (self.deferred.ids[i], self.deferred.hashes[i]);
            match self.probe(&self.entries[id as usize].key(Direction::Out), h) {
                Err(slot) => self.index[slot] = h << (IDX_BITS + 1) | 1 << IDX_BITS | id as u64,
                Ok(_) => {
                    clashes += 1;
                    self.stats.refused_exists += 1;
                    self.unfile(id);
                    on_clash(&self.entries[id as usize]);
                    self.remove_unreplied(id);
                }
            }
        }
        clashes
    }

    #[inline(always)]
    fn insert_new(&mut self, c: NewConn<A>, hin: Option<KeyHash>, now: u32) -> Result<ConnId, InsertError> {
        let state = match c.proto {
            Protocol::Tcp => State::SynRecv,
            Protocol::Udp => State::Udp,
        };
        let expires = now.saturating_add(self.timeouts.of(state));
        self.insert_as(c, hin, state, expires)
    }

    /// Adds a connection another director carries, as its sync record describes it: in
    /// `state` (its real server counts it active if that is ESTABLISHED), until `expires`,
    /// with the SYN proxy's deltas. It counts as synced (its changes are synced on if this
    /// director becomes a master). Refused as [`ConnTable::insert`] refuses.
    pub fn install(&mut self, c: NewConn<A>, state: State, expires: u32, proxy: Proxy) -> Result<ConnId, InsertError> {
        let id = self.insert_as(c, None, state, expires)?;
        let e = &mut self.entries[id as usize];
        e.flags |= FLAG_SYNCED;
        if state.is_active() {
            e.flags |= FLAG_ACTIVE;
            if let Some(d) = &e.dest {
                d.set_active(true);
            }
        }
        self.set_proxy(id, proxy);
        Ok(id)
    }

    /// Moves connection `id` to what a newer sync record says: `state` (keeping its real
    /// server's active and inactive counts in step, as a packet would), `expires`, and the
    /// SYN proxy's deltas.
    pub fn refresh(&mut self, id: ConnId, state: State, expires: u32, proxy: Proxy) {
        let e = &mut self.entries[id as usize];
        if !e.is_live() {
            return;
        }
        if state != e.state {
            e.enter(state);
        }
        e.flags |= FLAG_SYNCED;
        e.expires = expires;
        if expires < e.link.armed {
            self.refile(id, expires);
        }
        if !matches!(self.entries[id as usize].proxy(), Proxy::Handshake(_)) {
            self.set_proxy(id, proxy);
        }
    }

    /// Adds `c` in `state` until `expires`; `hin` is its client key's hash if the
    /// caller has it.
    #[inline(always)]
    fn insert_as(
        &mut self,
        c: NewConn<A>,
        hin: Option<KeyHash>,
        state: State,
        expires: u32,
    ) -> Result<ConnId, InsertError> {
        let conn = Conn {
            client: c.client,
            vaddr: c.vaddr,
            laddr: c.laddr,
            raddr: c.raddr,
            cport: c.cport,
            vport: c.vport,
            lport: c.lport,
            rport: c.rport,
            proto: c.proto,
            method: c.method,
            state,
            flags: FLAG_LIVE,
            expires,
            link: Link::default(),
            template: c.template,
            dest: None,
            proxy_seq: 0,
            proxy_ts: 0,
        };
        // DR and TUN replies bypass the gateway: their reply key is never looked up,
        // so only the client's key is indexed.
        let both_ways = conn.method.sees_replies();
        // Only FNAT's reply key waits: its local port makes it unique (see
        // `defer_reply_keys`). A NAT connection's reply key is the client's
        // address and port toward the server, which another client connection
        // may hold: that clash must refuse the connection before its packet goes.
        let defer =
            self.deferred.on && conn.method == ForwardMethod::FullNat && self.deferred.len < DEFERRED_REPLY_KEYS;
        let (kin, kout) = (conn.key(Direction::In), conn.key(Direction::Out));
        let hin = match hin {
            Some(h) => {
                debug_assert_eq!(h, self.hash_of(&kin), "the client key's hash, given");
                h.0
            }
            None => self.hash(&kin),
        };
        let hout = if both_ways { self.hash(&kout) } else { 0 };
        let pin = self.probe(&kin, hin);
        let pout = if both_ways && !defer { self.probe(&kout, hout) } else { Err(0) };
        let (Err(pin), Err(pout)) = (pin, pout) else {
            self.stats.refused_exists += 1;
            return Err(InsertError::Exists);
        };
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.entries[id as usize].link.next;
            self.entries[id as usize] = conn;
            id
        } else {
            match self.entries.push(conn) {
                Ok(id) => id as u32,
                // Moved out here, the refused entry is dropped in this arm
                // alone: matched by reference, the whole result went to a
                // drop call on every insert.
                Err(refused) => {
                    drop(refused);
                    self.stats.refused_full += 1;
                    return Err(InsertError::Full);
                }
            }
        };
        c.dest.bind();
        if let Some(h) = c.proxy_header {
            self.enable_proxy_headers();
            self.headers[id as usize] = h;
            self.entries[id as usize].flags |= FLAG_PROXY_HEADER;
        }
        let e = &mut self.entries[id as usize];
        e.dest = Some(c.dest);
        let expires = e.expires;
        self.index[pin] = hin << (IDX_BITS + 1) | id as u64;
        if defer {
            let d = &mut self.deferred;
            (d.ids[d.len], d.hashes[d.len]) = (id, hout);
            d.len += 1;
            crate::dpdk::prefetch::prefetch(self.index.as_ptr().wrapping_add(self.home(hout)));
        } else if both_ways {
            // The in key may have taken the slot the out key's walk ended at: walk on.
            let mask = self.index.len() - 1;
            let mut pout = pout;
            while self.index[pout] != EMPTY {
                pout = (pout + 1) & mask;
            }
            self.index[pout] = hout << (IDX_BITS + 1) | 1 << IDX_BITS | id as u64;
        }
        self.file(id, expires);
        self.len += 1;
        self.stats.inserted += 1;
        Ok(id)
    }

    /// Accounts a packet of connection `id` going `dir`: moves the TCP state (`tcp_flags`
    /// is the header's flags byte; ignored for UDP), keeps the real server's active and
    /// inactive counts in step, and extends the deadline by the new state's timeout.
    // Inlined into the forwarding path: as a call it costs ~25 instructions a packet.
    #[inline(always)]
    pub fn on_packet(&mut self, id: ConnId, dir: Direction, tcp_flags: u8, now: u32) -> State {
        let e = &mut self.entries[id as usize];
        // Most packets: the state stays and the sync wants nothing. Apart, so that no
        // value of the general case's is tested on this path (merged, the compiler
        // carried the state and `sync_due` as values and tested them:
        // `measure_pipeline.sh`, an established packet 9 instructions more, a reply 10).
        if e.proto == Protocol::Tcp && stays_established(e.state, tcp_flags) {
            let expires = now.saturating_add(self.timeouts.of(State::Established));
            e.expires = expires;
            if expires < e.link.armed {
                self.on_packet_rare(id, expires, true, false);
            }
            return State::Established;
        }
        // Whether the connection sync wants a record now (see `drain_sync_due`): decided on
        // the branches a packet rarely takes.
        let mut sync_due = false;
        let state = if e.proto == Protocol::Tcp {
            let state = tcp_transition(e.state, dir, e.method.sees_replies(), tcp_flags);
            // A new state, or a handshake's packet (only those carry a SYN): a few per
            // connection, out of line.
            if (state != e.state) | (tcp_flags & crate::wire::tcp::flags::SYN != 0) {
                sync_due = e.tcp_event(state, dir, tcp_flags);
            }
            state
        } else {
            if dir == Direction::Out && e.flags & (FLAG_ANSWERED | FLAG_SYNCED) != FLAG_ANSWERED | FLAG_SYNCED {
                // A UDP connection's first reply (no longer a one-packet flow), or one the
                // sync has not recorded yet.
                sync_due = e.udp_reply();
            }
            e.state
        };
        let expires = now.saturating_add(self.timeouts.of(state));
        e.expires = expires;
        // The common case is a later deadline: one store, re-filed lazily at expiry.
        let refile = expires < e.link.armed;
        if refile | sync_due {
            self.on_packet_rare(id, expires, refile, sync_due);
        }
        state
    }

    /// What a packet rarely needs: filing the connection earlier, noting it for the sync.
    #[cold]
    #[inline(never)]
    fn on_packet_rare(&mut self, id: ConnId, expires: u32, refile: bool, sync_due: bool) {
        if sync_due {
            self.note_sync_due(id);
        }
        if refile {
            self.refile(id, expires);
        }
    }

    /// Files connection `id` (not filed) in the wheel of its state, to be looked at by
    /// `deadline`.
    #[inline(always)]
    fn file(&mut self, id: ConnId, deadline: u32) {
        let e = &mut self.entries[id as usize];
        let wheel = if e.state.is_half_open() {
            e.flags |= FLAG_HALF_OPEN_WHEEL;
            &mut self.half_open
        } else {
            e.flags &= !FLAG_HALF_OPEN_WHEEL;
            &mut self.wheel
        };
        wheel.arm(&mut self.entries, id, deadline);
    }

    /// Takes connection `id` out of the wheel holding it.
    fn unfile(&mut self, id: ConnId) {
        let wheel = if self.entries[id as usize].flags & FLAG_HALF_OPEN_WHEEL != 0 {
            &mut self.half_open
        } else {
            &mut self.wheel
        };
        wheel.disarm(&mut self.entries, id);
    }

    /// Files connection `id` again, by `deadline` (earlier than where it is filed).
    #[inline(never)]
    fn refile(&mut self, id: ConnId, deadline: u32) {
        self.unfile(id);
        self.file(id, deadline);
    }

    fn note_sync_due(&mut self, id: ConnId) {
        if self.sync_due.len() < SYNC_DUE_CAPACITY {
            self.sync_due.push(id);
        } else {
            self.stats.sync_due_dropped += 1;
        }
    }

    /// Hands `f` each connection packets moved to where the connection sync wants a record
    /// since the last call (see [`crate::sync`]): a TCP connection that became ESTABLISHED
    /// or changed state after a record of it went, a UDP connection's first reply. Noted on
    /// the packet path's rare branches, so the common path pays nothing for the sync; a
    /// connection may come twice, or have ended since (check [`Conn::is_live`]).
    pub fn drain_sync_due(&mut self, mut f: impl FnMut(&mut Conn<A>)) {
        for &id in &self.sync_due {
            f(&mut self.entries[id as usize]);
        }
        self.sync_due.clear();
    }

    /// Sets where connection `id` stands with the SYN proxy.
    pub fn set_proxy(&mut self, id: ConnId, proxy: Proxy) {
        let e = &mut self.entries[id as usize];
        e.flags &= !(FLAG_PROXY_HANDSHAKE | FLAG_PROXIED | FLAG_PROXY_TS);
        (e.proxy_seq, e.proxy_ts) = match proxy {
            Proxy::Off => (0, 0),
            Proxy::Handshake(slot) => {
                e.flags |= FLAG_PROXY_HANDSHAKE;
                (slot, 0)
            }
            Proxy::Deltas { seq, ts } => {
                e.flags |= FLAG_PROXIED | if ts.is_some() { FLAG_PROXY_TS } else { 0 };
                (seq, ts.unwrap_or(0))
            }
        };
    }

    /// Makes connection `id` expire at the next [`ConnTable::expire`] (an explicit expiry
    /// policy, e.g. flushing the connections of a removed real server).
    pub fn expire_now(&mut self, id: ConnId, now: u32) {
        let e = &mut self.entries[id as usize];
        if e.is_live() {
            e.expires = now;
            if now < e.link.armed {
                self.refile(id, now);
            }
        }
    }

    /// Removes connection `id` at once (its timer too), calling `on_remove` with it just
    /// before it goes, as [`ConnTable::expire`] does.
    pub fn remove_now(&mut self, id: ConnId, on_remove: impl FnOnce(&Conn<A>)) {
        if !self.entries[id as usize].is_live() {
            return;
        }
        self.unfile(id);
        on_remove(&self.entries[id as usize]);
        self.remove(id);
        self.stats.expired += 1;
    }

    /// Removes connections whose deadline is at or before `now`, calling `on_expire` with
    /// each just before it goes so the caller can release its local port and persistence
    /// template. Looks at most at `budget` connections (expired, or re-filed because a
    /// packet extended them), bounding the time one call takes; a caller that calls again
    /// (every burst) catches up with any backlog at that pace. Returns how many went.
    pub fn expire(&mut self, now: u32, budget: usize, on_expire: impl FnMut(&Conn<A>)) -> usize {
        self.expire_refiling(now, budget, on_expire, |_| {})
    }

    /// [`ConnTable::expire`], calling `on_refile` with each connection that is filed again
    /// because a packet moved its deadline since it was filed (the connection sync's
    /// refresh: at most once per timeout, for a connection with traffic).
    pub fn expire_refiling(
        &mut self,
        now: u32,
        budget: usize,
        mut on_expire: impl FnMut(&Conn<A>),
        mut on_refile: impl FnMut(&mut Conn<A>),
    ) -> usize {
        let mut gone = 0;
        let mut seen = 0;
        // Both wheels in turn, so neither starves the other.
        while seen < budget {
            let mut any = false;
            for half_open in [true, false] {
                if seen == budget {
                    break;
                }
                let wheel = if half_open { &mut self.half_open } else { &mut self.wheel };
                let Some(id) = wheel.pop_due(&mut self.entries, now) else { continue };
                any = true;
                seen += 1;
                if self.expire_or_refile(id, now, &mut on_expire) {
                    gone += 1;
                } else {
                    on_refile(&mut self.entries[id as usize]);
                }
            }
            if !any {
                break;
            }
        }
        self.stats.expired += gone as u64;
        gone
    }

    /// Connection `id`, just taken out of its wheel, goes if its deadline has passed, else
    /// is filed again by its deadline and state. Returns whether it went.
    #[inline]
    fn expire_or_refile(&mut self, id: ConnId, now: u32, on_expire: &mut impl FnMut(&Conn<A>)) -> bool {
        let e = &mut self.entries[id as usize];
        let expires = e.expires;
        if expires > now {
            // A DR/TUN handshake a packet extended: the client sent its SYN again.
            if e.state.is_half_open() && !e.method.sees_replies() {
                e.flags |= FLAG_RETRIED;
            }
            self.file(id, expires);
            return false;
        }
        if let (Some(how), Some(d)) = (e.failed_at_expiry(), &e.dest) {
            d.passive().fail(how);
        }
        on_expire(&self.entries[id as usize]);
        self.remove(id);
        true
    }

    /// Frees one entry of a full table for a new connection, removing (and calling
    /// `on_remove` with, as [`ConnTable::expire`] does) the one whose loss costs least: a
    /// connection past its deadline that expiry has not reached yet (counted
    /// `reclaimed`), else the half-open connection idle longest (counted `shed`). Never an
    /// established one: with no candidate it returns `false` and counts `refused_full`.
    /// Amortised O(1): each step either frees the entry or re-files a connection whose
    /// deadline a packet moved, work its expiry would do anyway; a call takes a bounded
    /// number of steps.
    pub fn make_room(&mut self, now: u32, mut on_remove: impl FnMut(&Conn<A>)) -> bool {
        const STEPS: usize = 16;
        for _ in 0..STEPS {
            let Some(id) =
                self.half_open.pop_due(&mut self.entries, now).or_else(|| self.wheel.pop_due(&mut self.entries, now))
            else {
                break;
            };
            if self.expire_or_refile(id, now, &mut on_remove) {
                self.stats.reclaimed += 1;
                return true;
            }
        }
        for _ in 0..STEPS {
            let Some((id, tick)) = self.half_open.pop_earliest(&mut self.entries) else { break };
            let e = &self.entries[id as usize];
            // Moved on (established), or extended by a packet since it was filed: filed
            // again where it belongs, and the next oldest is looked at.
            if !e.state.is_half_open() || self.half_open.slot_tick(e.expires) > tick {
                let expires = e.expires;
                self.file(id, expires);
                continue;
            }
            on_remove(&self.entries[id as usize]);
            self.remove(id);
            self.stats.shed += 1;
            return true;
        }
        self.stats.refused_full += 1;
        false
    }

    /// Live connections, for listings (`-lnc`) and flushing; not for the packet path.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<A>)> {
        self.entries.iter().enumerate().filter(|(_, e)| e.is_live()).map(|(i, e)| (i as u32, e))
    }

    /// Live connections from entry `start` on, in entry order: a listing pages through the
    /// table with it, a bounded number of entries at a time.
    pub fn iter_from(&self, start: ConnId) -> impl Iterator<Item = (ConnId, &Conn<A>)> {
        let start = (start as usize).min(self.entries.len());
        self.entries[start..].iter().enumerate().filter(|(_, e)| e.is_live()).map(move |(i, e)| ((start + i) as u32, e))
    }

    fn remove(&mut self, id: ConnId) {
        // A connection removed in the burst that made it may have its reply key
        // held back still: then it is not in the index.
        let deferred = self.deferred.len != 0 && self.deferred.take_out(id);
        self.remove_keyed(id, !deferred);
    }

    /// [`ConnTable::remove`] for a connection whose reply key is not in the index.
    fn remove_unreplied(&mut self, id: ConnId) {
        self.remove_keyed(id, false);
    }

    /// Removes connection `id`, its reply key from the index too if `reply_indexed`.
    fn remove_keyed(&mut self, id: ConnId, reply_indexed: bool) {
        let (kin, kout, both_ways) = {
            let e = &self.entries[id as usize];
            (e.key(Direction::In), e.key(Direction::Out), e.method.sees_replies())
        };
        self.index_remove(&kin, id);
        if both_ways && reply_indexed {
            self.index_remove(&kout, id);
        }
        let e = &mut self.entries[id as usize];
        if let Some(d) = e.dest.take() {
            d.unbind(e.is_active());
        }
        e.flags = 0;
        e.link = Link { next: self.free, prev: NIL, armed: 0 };
        self.free = id;
        self.len -= 1;
    }

    #[inline]
    fn home(&self, h: u64) -> usize {
        (h >> self.home_shift) as usize
    }

    /// Removes the slot of `id` under `key` and shifts the rest of its cluster back so
    /// that every slot stays reachable from its home without tombstones.
    fn index_remove(&mut self, key: &FlowKey<A>, id: ConnId) {
        let h = self.hash(key);
        let mask = self.index.len() - 1;
        let mut i = self.home(h);
        loop {
            let s = self.index[i];
            debug_assert_ne!(s, EMPTY, "removing a key that is not in the index");
            if s == EMPTY {
                return;
            }
            if s & ((1 << IDX_BITS) - 1) == id as u64 && s >> (IDX_BITS + 1) == h {
                break;
            }
            i = (i + 1) & mask;
        }
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.index[j];
            if s == EMPTY {
                break;
            }
            let k = self.home(s >> (IDX_BITS + 1));
            // Slot j may move to the hole at i only if its home is not cyclically in (i, j].
            let stays = if i <= j { i < k && k <= j } else { i < k || k <= j };
            if !stays {
                self.index[i] = s;
                i = j;
            }
        }
        self.index[i] = EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::state::tcp_flags::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn conn(client: u32, cport: u16, lport: u16, dest: &Arc<DestCounters>) -> NewConn<Ipv4Addr> {
        NewConn {
            proto: Protocol::Tcp,
            client: Ipv4Addr::from(client),
            cport,
            vaddr: Ipv4Addr::new(10, 0, 0, 1),
            vport: 80,
            laddr: Ipv4Addr::new(192, 168, 1, 254),
            lport,
            raddr: Ipv4Addr::new(192, 168, 1, 2),
            rport: 8080,
            method: ForwardMethod::FullNat,
            dest: Arc::clone(dest),
            template: NO_TEMPLATE,
            proxy_header: None,
        }
    }

    /// `holds` is the comparison with `key`: each direction's key and no
    /// other, down to each field, for both families.
    #[test]
    fn a_connection_holds_its_keys_and_no_other() {
        fn check<A: Family>(c: &Conn<A>, others: [A; 2]) {
            for dir in [Direction::In, Direction::Out] {
                let key = c.key(dir);
                assert!(c.holds(dir, &key), "{dir:?}");
                let changed = [
                    FlowKey { proto: Protocol::Udp, ..key },
                    FlowKey { src: others[0], ..key },
                    FlowKey { dst: others[1], ..key },
                    FlowKey { sport: key.sport ^ 1, ..key },
                    FlowKey { dport: key.dport ^ 0x100, ..key },
                    FlowKey { src: key.dst, dst: key.src, ..key },
                    FlowKey { sport: key.dport, dport: key.sport, ..key },
                ];
                for other in changed.iter().filter(|k| **k != key) {
                    assert!(!c.holds(dir, other), "{dir:?} {other:?}");
                }
            }
            assert!(!c.holds(Direction::In, &c.key(Direction::Out)));
            assert!(!c.holds(Direction::Out, &c.key(Direction::In)));
        }
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::<Ipv4Addr>::new(16, 0);
        let id = t.insert(conn(0x0a00_0007, 4000, 5000, &dest), 0).unwrap();
        check(t.get(id), [Ipv4Addr::new(10, 0, 0, 8), Ipv4Addr::new(10, 0, 0, 2)]);
        let mut t6 = ConnTable::<Ipv6Addr>::new(16, 0);
        let v6 = |last: u16| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last);
        let c6 = NewConn {
            proto: Protocol::Tcp,
            client: v6(7),
            cport: 4000,
            vaddr: v6(0x100),
            vport: 80,
            laddr: v6(0x200),
            lport: 5000,
            raddr: v6(0x10),
            rport: 8080,
            method: ForwardMethod::FullNat,
            dest: Arc::clone(&dest),
            template: NO_TEMPLATE,
            proxy_header: None,
        };
        let id = t6.insert(c6, 0).unwrap();
        check(t6.get(id), [v6(8), v6(0x101)]);
    }

    #[test]
    fn dr_and_tun_index_only_the_client_key() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::<Ipv4Addr>::new(16, 0);
        // NAT, DR and TUN keep the client address as the "local" one: two clients'
        // ports toward two VIPs on the same real server give the same reply key.
        let dr = |vip: u8, method| NewConn {
            vaddr: Ipv4Addr::new(10, 0, 0, vip),
            laddr: Ipv4Addr::from(7),
            lport: 4000,
            method,
            ..conn(7, 4000, 4000, &dest)
        };
        for (vip, method) in [(1, ForwardMethod::DirectRoute), (2, ForwardMethod::Tunnel)] {
            let id = t.insert(dr(vip, method), 0).expect("same reply key, but it is never indexed");
            let c = t.get(id);
            assert_eq!(t.lookup(&c.key(Direction::In)), Some((id, Direction::In)));
            assert_eq!(t.lookup(&c.key(Direction::Out)), None, "replies bypass the gateway");
        }
        // Expiry removes exactly what was indexed.
        assert_eq!(t.expire(1_000_000, usize::MAX, |_| {}), 2);
        assert!(t.is_empty());
        let id = t.insert(dr(1, ForwardMethod::DirectRoute), 1_000_000).unwrap();
        assert_eq!(t.lookup(&t.get(id).key(Direction::In)), Some((id, Direction::In)));
    }

    #[test]
    fn proxy_states_round_trip_and_start_off() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(16, 0);
        let id = t.insert(conn(0x0101_0101, 40000, 1025, &dest), 0).unwrap();
        assert_eq!(t.get(id).proxy(), Proxy::Off);
        for p in [
            Proxy::Handshake(7),
            Proxy::Deltas { seq: 0xdead_beef, ts: None },
            Proxy::Deltas { seq: 0, ts: Some(0) },
            Proxy::Deltas { seq: 1, ts: Some(u32::MAX) },
            Proxy::Off,
        ] {
            t.set_proxy(id, p);
            assert_eq!(t.get(id).proxy(), p);
            assert!(t.get(id).is_live(), "the proxy bits leave the others alone");
        }
        // A recycled slot starts unproxied.
        t.set_proxy(id, Proxy::Handshake(3));
        t.remove_now(id, |_| {});
        let again = t.insert(conn(0x0101_0101, 40000, 1025, &dest), 0).unwrap();
        assert_eq!(t.get(again).proxy(), Proxy::Off);
    }

    #[test]
    fn entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Conn<Ipv4Addr>>(), 64);
        assert_eq!(std::mem::align_of::<Conn<Ipv4Addr>>(), 64);
        let mut t = ConnTable::<Ipv4Addr>::new(1 << 20, 0);
        let without = t.bytes_per_conn();
        assert!(without <= 128, "{without}");
        // The PROXY header state is beside the entries, only once a service uses it.
        t.enable_proxy_headers();
        assert_eq!(t.bytes_per_conn(), without + 8);
        assert_eq!(std::mem::size_of::<Conn<Ipv4Addr>>(), 64);
        // IPv6's entry, in its own table: the four 16-byte addresses take two lines.
        assert_eq!(std::mem::size_of::<Conn<std::net::Ipv6Addr>>(), 128);
        let t6 = ConnTable::<std::net::Ipv6Addr>::new(1 << 20, 0);
        eprintln!("bytes per connection at 1M: IPv4 {without}, IPv6 {}", t6.bytes_per_conn());
        assert!(t6.bytes_per_conn() <= 192, "{}", t6.bytes_per_conn());
    }

    #[test]
    fn a_connection_with_a_proxy_header_has_its_state_and_the_next_in_its_slot_none() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::<Ipv4Addr>::new(16, 0);
        let v2 = HeaderState::new(
            crate::wire::proxy_protocol::Version::V2,
            (Ipv4Addr::new(1, 1, 1, 1), 40000),
            (Ipv4Addr::new(10, 0, 0, 1), 80),
        );
        let id = t.insert(NewConn { proxy_header: Some(v2), ..conn(0x0101_0101, 40000, 1025, &dest) }, 0).unwrap();
        assert!(t.get(id).has_proxy_header() && t.get(id).is_rare());
        assert_eq!(t.header_mut(id).copied(), Some(v2));
        t.remove_now(id, |_| {});
        let again = t.insert(conn(0x0101_0101, 40000, 1025, &dest), 0).unwrap();
        assert_eq!(again, id, "the same slot");
        assert!(!t.get(again).has_proxy_header() && !t.get(again).is_rare());
    }

    #[test]
    fn lookup_both_directions_state_and_counters() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(16, 0);
        let id = t.insert(conn(0x0101_0101, 40000, 1025, &dest), 0).unwrap();
        assert_eq!(dest.inactive(), 1);
        let c = t.get(id).clone();
        assert_eq!(t.lookup(&c.key(Direction::In)), Some((id, Direction::In)));
        assert_eq!(t.lookup(&c.key(Direction::Out)), Some((id, Direction::Out)));
        assert_eq!(t.on_packet(id, Direction::In, SYN, 1), State::SynRecv);
        assert_eq!(t.on_packet(id, Direction::Out, SYN | ACK, 1), State::SynRecv);
        assert_eq!(t.on_packet(id, Direction::In, ACK, 1), State::Established);
        assert_eq!((dest.active(), dest.inactive()), (1, 0));
        assert_eq!(t.get(id).expires(), 1 + 900);
        assert_eq!(t.on_packet(id, Direction::In, RST, 2), State::Close);
        assert_eq!((dest.active(), dest.inactive()), (0, 1));
        assert_eq!(t.expire(11, usize::MAX, |_| {}), 0, "CLOSE lives 10 s");
        assert_eq!(t.expire(12, usize::MAX, |_| {}), 1, "re-filed early despite ESTABLISHED's 900 s");
        assert_eq!((dest.active(), dest.inactive()), (0, 0));
        assert!(t.is_empty());
        assert_eq!(t.lookup(&c.key(Direction::In)), None);
    }

    /// An established connection's ACKs, the packets the table's fast path takes, extend
    /// its deadline by ESTABLISHED's timeout either way, and re-file it when a shorter
    /// timeout set meanwhile brings the deadline before the one it is filed at.
    #[test]
    fn an_established_connections_acks_extend_it_and_a_shorter_timeout_refiles_it() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(16, 0);
        let id = t.insert(conn(0x0101_0101, 40000, 1025, &dest), 0).unwrap();
        t.on_packet(id, Direction::In, SYN, 1);
        t.on_packet(id, Direction::Out, SYN | ACK, 1);
        assert_eq!(t.on_packet(id, Direction::In, ACK, 1), State::Established);
        assert_eq!(t.on_packet(id, Direction::Out, ACK | PSH, 100), State::Established);
        assert_eq!(t.get(id).expires(), 100 + 900);
        // Past SYN_RECV's deadline: found alive, filed again at 1000.
        assert_eq!(t.expire(150, usize::MAX, |_| {}), 0);
        let mut timeouts = Timeouts::default();
        timeouts.set(5, 0, 0);
        t.set_timeouts(timeouts);
        assert_eq!(t.on_packet(id, Direction::In, ACK, 200), State::Established);
        assert_eq!(t.get(id).expires(), 205);
        assert_eq!((dest.active(), dest.inactive()), (1, 0), "still the one active connection");
        assert_eq!(t.expire(204, usize::MAX, |_| {}), 0);
        assert_eq!(t.expire(205, usize::MAX, |_| {}), 1, "re-filed at the shorter deadline");
        assert!(t.is_empty());
    }

    #[test]
    fn find_gives_the_lookups_answer_and_its_entry() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(64, 0);
        for i in 0..20 {
            let id = t.insert(conn(i, 7, i as u16, &dest), 0).unwrap();
            for dir in [Direction::In, Direction::Out] {
                let key = t.get(id).key(dir);
                let (found, way, c) = t.find_hashed(&key, t.hash_of(&key)).unwrap();
                assert_eq!((found, way), (id, dir));
                assert!(std::ptr::eq(c, t.get(id)));
            }
            let absent = FlowKey { sport: 9, ..t.get(id).key(Direction::In) };
            assert!(t.find_hashed(&absent, t.hash_of(&absent)).is_none());
        }
    }

    #[test]
    fn burst_lookup_agrees_with_lookup() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(1000, 0);
        let mut keys = vec![];
        for i in 0..100 {
            let id = t.insert(conn(i, 7, i as u16, &dest), 0).unwrap();
            keys.push(t.get(id).key(if i % 2 == 0 { Direction::In } else { Direction::Out }));
            keys.push(FlowKey { sport: 9, ..t.get(id).key(Direction::In) }); // absent
        }
        let mut out = vec![None; keys.len()];
        t.lookup_burst(&keys, &mut out);
        for (k, o) in keys.iter().zip(&out) {
            assert_eq!(*o, t.lookup(k));
        }
        assert_eq!(out.iter().filter(|o| o.is_some()).count(), 100);
    }

    #[test]
    fn udp_has_one_state_and_its_own_timeout() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(4, 0);
        let mut timeouts = Timeouts::default();
        timeouts.set(0, 0, 30);
        t.set_timeouts(timeouts);
        let id = t.insert(NewConn { proto: Protocol::Udp, ..conn(1, 53, 53, &dest) }, 0).unwrap();
        assert_eq!(t.get(id).state(), State::Udp);
        assert_eq!(t.on_packet(id, Direction::In, SYN | FIN, 10), State::Udp, "flags ignored");
        assert_eq!(t.on_packet(id, Direction::Out, 0, 20), State::Udp);
        assert_eq!((dest.active(), dest.inactive()), (0, 1), "UDP counts as inactive (IPVS)");
        assert_eq!(t.expire(49, 10, |_| {}), 0);
        assert_eq!(t.expire(50, 10, |_| {}), 1, "30 s after the last packet");
    }

    #[test]
    fn full_table_refuses_and_keeps_existing() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(2, 0);
        let a = t.insert(conn(1, 1, 1, &dest), 0).unwrap();
        t.insert(conn(2, 2, 2, &dest), 0).unwrap();
        assert_eq!(t.insert(conn(3, 3, 3, &dest), 0), Err(InsertError::Full));
        assert_eq!(t.insert(conn(1, 1, 9, &dest), 0), Err(InsertError::Exists));
        assert_eq!(t.insert(conn(9, 9, 1, &dest), 0), Err(InsertError::Exists), "out key taken");
        assert_eq!(t.stats().refused_full, 1);
        assert_eq!(t.stats().refused_exists, 2);
        assert_eq!(dest.inactive(), 2, "refusals bind nothing");
        let k = t.get(a).key(Direction::In);
        assert_eq!(t.lookup(&k), Some((a, Direction::In)));
    }

    #[test]
    fn connection_outlives_its_dest_and_expire_now() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(4, 0);
        let id = t.insert(conn(1, 1, 1, &dest), 0).unwrap();
        let weak = Arc::downgrade(&dest);
        drop(dest); // the server left the configuration
        assert_eq!(weak.upgrade().unwrap().inactive(), 1);
        t.expire_now(id, 5);
        let mut seen = vec![];
        t.expire(5, 10, |c| seen.push(c.lport));
        assert_eq!(seen, vec![1]);
        assert!(weak.upgrade().is_none(), "last handle dropped with the connection");
    }

    #[test]
    fn budget_bounds_one_expire_call() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(100, 0);
        for i in 0..100 {
            t.insert(conn(i, 1, i as u16, &dest), 0).unwrap();
        }
        assert_eq!(t.expire(59, 1000, |_| {}), 0);
        assert_eq!(t.expire(60, 30, |_| {}), 30, "a new TCP connection is SYN_RECV: 60 s");
        assert_eq!(t.expire(60, 1000, |_| {}), 70);
        assert_eq!(dest.inactive(), 0);
    }

    /// Expiry looks at a bounded number of connections per call, re-filed ones included,
    /// and the next call carries on where it stopped.
    #[test]
    fn budget_counts_refiled_connections_too() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(100, 0);
        for i in 0..100 {
            let id = t.insert(conn(i, 1, i as u16, &dest), 0).unwrap();
            t.on_packet(id, Direction::In, SYN, 30); // extended lazily: filed at 60, due at 90
        }
        assert_eq!(t.expire(60, 40, |_| {}), 0, "40 looked at and re-filed, none due");
        assert_eq!(t.expire(60, 1000, |_| {}), 0);
        assert_eq!(t.expire(90, 1000, |_| {}), 100);
    }

    fn establish(t: &mut ConnTable<Ipv4Addr>, id: ConnId, now: u32) {
        t.on_packet(id, Direction::In, SYN, now);
        t.on_packet(id, Direction::Out, SYN | ACK, now);
        assert_eq!(t.on_packet(id, Direction::In, ACK, now), State::Established);
    }

    /// A full table of connections past their deadline admits new ones at once, each
    /// reclaiming one (and its resources), before any expiry runs.
    #[test]
    fn full_table_of_expired_admits_at_once() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(100, 0);
        for i in 0..100 {
            t.insert(conn(i, 1, i as u16, &dest), 0).unwrap();
        }
        assert_eq!(t.insert(conn(1000, 1, 1000, &dest), 61), Err(InsertError::Full));
        let mut released = vec![];
        for i in 0..100 {
            assert!(t.make_room(61, |c| released.push(c.lport)));
            t.insert(conn(1000 + i, 1, 1000 + i as u16, &dest), 61).unwrap();
        }
        released.sort();
        assert_eq!(released, (0..100).collect::<Vec<u16>>(), "every expired one went once");
        assert_eq!(t.stats().reclaimed, 100);
        assert_eq!((t.stats().shed, t.stats().expired), (0, 0));
        assert_eq!(dest.inactive(), 100, "unbound as they went, the new ones bound");
        assert_eq!(t.expire(61, usize::MAX, |_| {}), 0, "nothing left to expire");
    }

    /// A table full of half-open connections admits a new one by shedding the oldest
    /// (by the second it was last refreshed); established ones are never shed.
    #[test]
    fn full_table_sheds_oldest_half_open_never_established() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(6, 0);
        let est: Vec<ConnId> = (0..2).map(|i| t.insert(conn(i, 1, i as u16, &dest), 0).unwrap()).collect();
        for &id in &est {
            establish(&mut t, id, 0);
        }
        for i in 2..6 {
            t.insert(conn(i, 1, i as u16, &dest), i).unwrap();
        }
        assert!(t.is_full());
        let mut gone = vec![];
        for now in 10..14 {
            assert!(t.make_room(now, |c| gone.push(c.lport)));
            t.insert(conn(100 + now, 1, 100 + now as u16, &dest), now).unwrap();
        }
        assert_eq!(gone, vec![2, 3, 4, 5], "oldest first");
        assert_eq!(t.stats().shed, 4);
        // Full again, of two established and four half-open newcomers: those go next.
        assert!(t.make_room(14, |c| gone.push(c.lport)));
        assert_eq!(gone[4], 110);
        t.insert(conn(200, 1, 200, &dest), 14).unwrap();
        for &id in &est {
            assert_eq!((t.get(id).state(), t.get(id).lport), (State::Established, id as u16));
        }
        // Only established ones: refused, counted, untouched.
        let mut t = ConnTable::new(2, 0);
        for i in 0..2 {
            let id = t.insert(conn(i, 1, i as u16, &dest), 0).unwrap();
            establish(&mut t, id, 0);
        }
        assert!(!t.make_room(500, |_| panic!("an established connection went")));
        assert_eq!((t.stats().refused_full, t.stats().shed, t.len()), (1, 0, 2));
    }

    /// The arrays of a table of 2 MiB or more are mapped on huge pages (advised, as far as
    /// the kernel has them), a small table's are on the heap; lookups and inserts work the
    /// same on either.
    #[test]
    fn large_tables_are_mapped_for_huge_pages_small_ones_stay_on_the_heap() {
        use crate::dpdk::hugemem::transparent_huge_pages;
        let dest = Arc::new(DestCounters::default());
        let small = ConnTable::<Ipv4Addr>::new(1000, 0);
        assert_eq!(small.backing(), TableBacking { entries: Backing::Heap, index: Backing::Heap });
        // 64 bytes x 100,000 entries, and 2^18 index slots of 8 bytes: 2 MiB.
        let mut large = ConnTable::<Ipv4Addr>::new(100_000, 0);
        let want = if transparent_huge_pages().is_some() { Backing::HugePages } else { Backing::Mapped };
        assert_eq!(large.backing(), TableBacking { entries: want, index: want });
        for t in [&mut ConnTable::<Ipv4Addr>::new(1000, 0), &mut large] {
            let id = t.insert(conn(7, 1000, 2000, &dest), 0).unwrap();
            assert_eq!(t.lookup(&t.get(id).key(Direction::Out)), Some((id, Direction::Out)));
        }
    }

    /// A million connections churn through a 50,000-entry table; afterwards every slot is
    /// free, the index is empty and the counters are back to zero.
    #[test]
    fn million_connection_churn_leaks_nothing() {
        let dest = Arc::new(DestCounters::default());
        let cap = 50_000u32;
        let mut t = ConnTable::new(cap, 0);
        let mut now = 0;
        let mut next = 0u32;
        while next < 1_000_000 {
            for _ in 0..25_000 {
                let c = conn(next, (next % 50_000) as u16 + 1, (next % 60_000) as u16, &dest);
                let id = t.insert(c, now).unwrap();
                t.on_packet(id, Direction::In, SYN, now);
                next += 1;
            }
            now += 31; // SYN_RECV lives 60 s: each batch goes two batches later
            t.expire(now, usize::MAX, |_| {});
        }
        t.expire(now + 1000, usize::MAX, |_| {});
        assert!(t.is_empty());
        assert_eq!(t.entries.len(), 50_000, "slots were reused, never beyond capacity");
        assert!(t.index.iter().all(|&s| s == EMPTY));
        assert_eq!((dest.active(), dest.inactive()), (0, 0));
        assert_eq!(t.stats().inserted, 1_000_000);
        assert_eq!(t.stats().expired, 1_000_000);
    }

    /// (refused, timed out, unanswered, succeeded, streak) of `dest`.
    fn passive(dest: &DestCounters) -> (u64, u64, u64, u64, u32) {
        let r = dest.passive().read();
        (r.refused, r.timed_out, r.unanswered, r.succeeded, r.streak)
    }

    #[test]
    fn passive_a_server_rst_to_the_syn_is_refused_once() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(16, 0);
        for method in [ForwardMethod::FullNat, ForwardMethod::Masq] {
            let id = t.insert(NewConn { method, ..conn(1, 1, 1, &dest) }, 0).unwrap();
            t.on_packet(id, Direction::In, SYN, 0);
            assert_eq!(t.on_packet(id, Direction::Out, RST | ACK, 0), State::Close);
            // The client's RST after it, and the connection's expiry, add nothing.
            t.on_packet(id, Direction::In, RST, 0);
            t.expire(100, usize::MAX, |_| {});
        }
        assert_eq!(passive(&dest), (2, 0, 0, 0, 2));
    }

    #[test]
    fn passive_a_handshake_the_server_never_answered_times_out() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(16, 0);
        // The client sends its SYN three times; the server says nothing.
        let silent = t.insert(conn(1, 1, 1, &dest), 0).unwrap();
        for now in [0, 1, 3] {
            t.on_packet(silent, Direction::In, SYN, now);
        }
        // A server that sent its SYN-ACK to a client that never came back (a spoofed SYN):
        // not the server's failure.
        let spoofed = t.insert(conn(2, 2, 2, &dest), 0).unwrap();
        t.on_packet(spoofed, Direction::In, SYN, 0);
        t.on_packet(spoofed, Direction::Out, SYN | ACK, 0);
        assert_eq!(t.expire(62, usize::MAX, |_| {}), 1, "the spoofed one at 60 s");
        assert_eq!(passive(&dest), (0, 0, 0, 0, 0));
        assert_eq!(t.expire(63, usize::MAX, |_| {}), 1, "the silent one 60 s after its last SYN");
        assert_eq!(passive(&dest), (0, 1, 0, 0, 1));
    }

    #[test]
    fn passive_a_syn_proxied_handshake_is_answered_once_it_is_no_longer_open() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(16, 0);
        // As the SYN proxy runs it: its SYN to the server, then the handshake open.
        let mut proxied = |client: u16| {
            let id = t.insert(conn(u32::from(client), client, client, &dest), 0).unwrap();
            t.on_packet(id, Direction::In, SYN, 0);
            t.set_proxy(id, Proxy::Handshake(u32::from(client)));
            id
        };
        let (_silent, answered) = (proxied(1), proxied(2));
        // The server answers the second: the deltas (no timestamps), then its SYN-ACK,
        // which must not set the timestamp flag the mark shares a bit with.
        t.set_proxy(answered, Proxy::Deltas { seq: 9, ts: None });
        t.on_packet(answered, Direction::Out, SYN | ACK, 0);
        assert_eq!(t.get(answered).proxy(), Proxy::Deltas { seq: 9, ts: None });
        // Neither client's side completes: only the silent server timed out.
        t.expire(1000, usize::MAX, |_| {});
        assert_eq!(passive(&dest), (0, 1, 0, 0, 1));
    }

    #[test]
    fn passive_direct_routing_times_out_only_a_retried_handshake() {
        let dest = Arc::new(DestCounters::default());
        for method in [ForwardMethod::DirectRoute, ForwardMethod::Tunnel] {
            let mut t = ConnTable::new(16, 0);
            let dr = |client| NewConn { method, laddr: Ipv4Addr::from(client), ..conn(client, 5, 5, &dest) };
            // One SYN and nothing more (a spoofed SYN, or a server whose RST went to the
            // client directly): nothing counted.
            let once = t.insert(dr(1), 0).unwrap();
            t.on_packet(once, Direction::In, SYN, 0);
            // A client sending its SYN again and again: the server is silent.
            let retried = t.insert(dr(2), 0).unwrap();
            for now in [0, 1, 3, 7] {
                t.on_packet(retried, Direction::In, SYN, now);
            }
            // The client's ACK: the server answered it.
            let ok = t.insert(dr(3), 0).unwrap();
            t.on_packet(ok, Direction::In, SYN, 0);
            assert_eq!(t.on_packet(ok, Direction::In, ACK, 0), State::Established);
            for now in (0..=1000).step_by(10) {
                t.expire(now, usize::MAX, |_| {});
            }
            assert!(t.is_empty());
        }
        assert_eq!(passive(&dest), (0, 2, 0, 2, 1), "the last timeout after the last success");
    }

    #[test]
    fn passive_udp_without_a_reply_is_unanswered_and_a_reply_succeeds() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(16, 0);
        let udp = |client| NewConn { proto: Protocol::Udp, ..conn(client, 53, client as u16, &dest) };
        let one_way = t.insert(udp(1), 0).unwrap();
        t.on_packet(one_way, Direction::In, 0, 0);
        t.on_packet(one_way, Direction::In, 0, 1);
        let answered = t.insert(udp(2), 0).unwrap();
        t.on_packet(answered, Direction::In, 0, 0);
        for _ in 0..3 {
            t.on_packet(answered, Direction::Out, 0, 0);
        }
        assert_eq!(passive(&dest), (0, 0, 0, 1, 0), "one success for three replies");
        // DR replies never pass here: nothing to conclude from their silence.
        let dr = t.insert(NewConn { method: ForwardMethod::DirectRoute, ..udp(3) }, 0).unwrap();
        t.on_packet(dr, Direction::In, 0, 0);
        assert_eq!(t.expire(1000, usize::MAX, |_| {}), 3);
        assert_eq!(passive(&dest), (0, 0, 1, 1, 1));
    }

    #[test]
    fn passive_a_success_ends_the_streak_and_removals_before_the_deadline_say_nothing() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(4, 0);
        for client in 0..3 {
            let id = t.insert(conn(client, 1, client as u16, &dest), 0).unwrap();
            t.on_packet(id, Direction::In, SYN, 0);
            t.on_packet(id, Direction::Out, RST, 0);
        }
        assert_eq!(passive(&dest).4, 3);
        t.expire(100, usize::MAX, |_| {});
        let id = t.insert(conn(9, 1, 9, &dest), 100).unwrap();
        establish(&mut t, id, 100);
        assert_eq!(passive(&dest), (3, 0, 0, 1, 0));
        // Still ESTABLISHED after more packets: counted once.
        t.on_packet(id, Direction::In, ACK, 100);
        t.on_packet(id, Direction::Out, ACK, 100);
        assert_eq!(passive(&dest).3, 1);
        // Flushed (remove_now) or shed half-open: the server is not to blame.
        let flushed = t.insert(conn(10, 1, 10, &dest), 100).unwrap();
        t.remove_now(flushed, |_| {});
        for client in 11..14 {
            t.insert(conn(client, 1, client as u16, &dest), 100).unwrap();
        }
        assert!(t.make_room(101, |_| {}));
        assert_eq!(t.stats().shed, 1);
        assert_eq!(passive(&dest), (3, 0, 0, 1, 0));
    }

    #[test]
    fn passive_a_synced_connection_is_not_judged() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::new(4, 0);
        t.install(conn(1, 1, 1, &dest), State::SynRecv, 10, Proxy::Off).unwrap();
        t.expire(100, usize::MAX, |_| {});
        assert_eq!(passive(&dest), (0, 0, 0, 0, 0));
    }

    #[test]
    fn a_held_back_reply_key_is_found_once_indexed() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::<Ipv4Addr>::new(16, 0);
        t.defer_reply_keys();
        let id = t.insert(conn(1, 1, 1000, &dest), 0).unwrap();
        let (kin, kout) = (t.get(id).key(Direction::In), t.get(id).key(Direction::Out));
        assert_eq!(t.lookup(&kin), Some((id, Direction::In)), "the client's key at once");
        assert_eq!(t.lookup(&kout), None, "the reply key held back");
        assert_eq!(t.deferred.len, 1);
        assert_eq!(t.index_reply_keys(|_| panic!("no clash")), 0);
        assert_eq!(t.lookup(&kout), Some((id, Direction::Out)));
        assert_eq!(t.deferred.len, 0);
        // No longer deferring: the next insert indexes both keys.
        let id = t.insert(conn(2, 1, 1001, &dest), 0).unwrap();
        assert_eq!(t.lookup(&t.get(id).key(Direction::Out)), Some((id, Direction::Out)));
        assert_eq!(dest.inactive(), 2);
    }

    #[test]
    fn a_nat_reply_key_is_never_held_back_so_its_clash_refuses_at_once() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::<Ipv4Addr>::new(16, 0);
        // NAT keeps the client's address and port toward the server: two VIPs on
        // one server give two connections the same reply key.
        let nat = |vip: u8| NewConn {
            vaddr: Ipv4Addr::new(10, 0, 0, vip),
            laddr: Ipv4Addr::from(7),
            lport: 4000,
            method: ForwardMethod::Masq,
            ..conn(7, 4000, 4000, &dest)
        };
        t.defer_reply_keys();
        let id = t.insert(nat(1), 0).unwrap();
        assert_eq!(t.lookup(&t.get(id).key(Direction::Out)), Some((id, Direction::Out)));
        assert_eq!(t.insert(nat(2), 0), Err(InsertError::Exists));
        assert_eq!(t.deferred.len, 0);
        assert_eq!(t.index_reply_keys(|_| panic!("no clash")), 0);
        assert_eq!(dest.inactive(), 1);
    }

    #[test]
    fn a_held_back_reply_key_that_clashes_removes_its_connection() {
        let dest = Arc::new(DestCounters::default());
        let mut t = ConnTable::<Ipv4Addr>::new(16, 0);
        let first = t.insert(conn(1, 1, 1000, &dest), 0).unwrap();
        t.defer_reply_keys();
        // Local port 1000 lent twice: the insert cannot tell while it defers.
        let second = t.insert(conn(2, 1, 1000, &dest), 0).unwrap();
        let kin = t.get(second).key(Direction::In);
        let mut released = vec![];
        assert_eq!(t.index_reply_keys(|c| released.push((c.client, c.lport))), 1);
        assert_eq!(released, [(Ipv4Addr::from(2), 1000)]);
        assert_eq!(t.lookup(&kin), None, "the clashing connection is gone");
        let kout = t.get(first).key(Direction::Out);
        assert_eq!(t.lookup(&kout), Some((first, Direction::Out)), "the first keeps its reply key");
        assert_eq!((t.len(), t.stats().refused_exists, dest.inactive()), (1, 1, 1));
        // Its timer went too: nothing of it expires later.
        assert_eq!(t.expire(1000, usize::MAX, |c| assert_eq!(c.client, Ipv4Addr::from(1))), 1);
        assert_eq!(t.len(), 0);
    }

    #[derive(Debug, Clone)]
    enum Held {
        Defer,
        Index,
        Insert(u8, u8),
        Remove(u8),
    }

    fn held() -> impl Strategy<Value = Held> {
        prop_oneof![
            1 => Just(Held::Defer),
            1 => Just(Held::Index),
            6 => (0u8..40, 0u8..24).prop_map(|(c, l)| Held::Insert(c, l)),
            2 => (0u8..40).prop_map(Held::Remove),
        ]
    }

    proptest! {
        /// Reply keys held back ([`ConnTable::defer_reply_keys`]) against a model:
        /// the client's key is found at once, the reply key only once indexed, a
        /// connection removed meanwhile leaves nothing behind (its id reused or not),
        /// and a reply key that clashes when indexed removes its own connection.
        #[test]
        fn held_back_reply_keys_are_indexed_or_their_connection_removed(ops in proptest::collection::vec(held(), 1..200)) {
            let dest = Arc::new(DestCounters::default());
            let mut t = ConnTable::<Ipv4Addr>::new(32, 0);
            // client -> (lport, id, reply key indexed)
            let mut model: HashMap<u8, (u16, ConnId, bool)> = HashMap::new();
            // Clients whose reply keys are held back, in insert order.
            let mut held: Vec<u8> = vec![];
            let mut deferring = false;
            for op in ops {
                match op {
                    Held::Defer => {
                        t.defer_reply_keys();
                        deferring = true;
                    }
                    Held::Index => {
                        let mut removed = vec![];
                        let clashes = t.index_reply_keys(|c| removed.push(u32::from(c.client) as u8));
                        let mut want = vec![];
                        for c in held.drain(..) {
                            let lport = model[&c].0;
                            if model.values().any(|v| v.2 && v.0 == lport) {
                                want.push(c);
                                model.remove(&c);
                            } else {
                                model.get_mut(&c).unwrap().2 = true;
                            }
                        }
                        prop_assert_eq!(clashes, want.len());
                        prop_assert_eq!(removed, want);
                        deferring = false;
                    }
                    Held::Insert(c, l) => {
                        let lport = 1000 + u16::from(l);
                        let r = t.insert(conn(u32::from(c), 1, lport, &dest), 0);
                        // Held back, the reply key is not looked for.
                        let taken = |indexed_only: bool| model.values().any(|v| v.0 == lport && (v.2 || !indexed_only));
                        let clash = model.contains_key(&c) || (!deferring && taken(false)) || (held.len() == DEFERRED_REPLY_KEYS && taken(true));
                        match r {
                            Ok(id) => {
                                prop_assert!(!clash && model.len() < 32, "{:?}", op);
                                let held_back = deferring && held.len() < DEFERRED_REPLY_KEYS;
                                model.insert(c, (lport, id, !held_back));
                                if held_back {
                                    held.push(c);
                                }
                            }
                            Err(InsertError::Exists) => prop_assert!(clash),
                            Err(InsertError::Full) => prop_assert!(!clash && model.len() == 32),
                        }
                    }
                    Held::Remove(c) => {
                        if let Some((_, id, _)) = model.remove(&c) {
                            t.remove_now(id, |_| {});
                            held.retain(|&h| h != c);
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert_eq!(dest.inactive() as usize, model.len());
                prop_assert_eq!(t.deferred.len, held.len());
                for (&c, &(lport, id, indexed)) in &model {
                    let e = t.get(id);
                    prop_assert_eq!((u32::from(e.client) as u8, e.lport), (c, lport));
                    prop_assert_eq!(t.lookup(&e.key(Direction::In)), Some((id, Direction::In)));
                    let reply = t.lookup(&e.key(Direction::Out));
                    if indexed {
                        prop_assert_eq!(reply, Some((id, Direction::Out)));
                    } else {
                        // Not found, or a clash's other connection.
                        prop_assert!(reply.is_none_or(|(other, _)| other != id));
                    }
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u8),
        Packet(u8, u8),
        Tick(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u8>()).prop_map(|(c, l)| Op::Insert(c, l)),
            (any::<u8>(), any::<u8>()).prop_map(|(c, f)| Op::Packet(c, f)),
            (0u8..20).prop_map(Op::Tick),
        ]
    }

    proptest! {
        /// The table against a model (a map of live connections with their deadlines):
        /// inserts, packets in both directions, expiry and slot reuse.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..300)) {
            let dest = Arc::new(DestCounters::default());
            let mut t = ConnTable::new(64, 0);
            // client -> (lport, id, expires)
            let mut model: HashMap<u8, (u16, ConnId, u32)> = HashMap::new();
            let mut now = 0u32;
            for op in ops {
                match op {
                    Op::Insert(c, l) => {
                        let lport = l as u16 % 32;
                        let r = t.insert(conn(c as u32, 1, lport, &dest), now);
                        let clash = model.contains_key(&c) || model.values().any(|v| v.0 == lport);
                        match r {
                            Ok(id) => {
                                prop_assert!(!clash && model.len() < 64);
                                model.insert(c, (lport, id, now + 60));
                            }
                            Err(InsertError::Exists) => prop_assert!(clash),
                            Err(InsertError::Full) => prop_assert!(!clash && model.len() == 64),
                        }
                    }
                    Op::Packet(c, f) => {
                        if let Some(&(lport, id, _)) = model.get(&c) {
                            let dir = if f & 1 == 0 { Direction::In } else { Direction::Out };
                            let key = t.get(id).key(dir);
                            prop_assert_eq!(t.lookup(&key), Some((id, dir)));
                            prop_assert_eq!(t.get(id).lport, lport);
                            let s = t.on_packet(id, dir, f & 0x17, now);
                            model.get_mut(&c).unwrap().2 = now + t.timeouts.of(s);
                        }
                    }
                    Op::Tick(d) => {
                        now += d as u32;
                        let mut gone = vec![];
                        t.expire(now, usize::MAX, |e| gone.push(u32::from(e.client) as u8));
                        let mut want: Vec<u8> =
                            model.iter().filter(|(_, v)| v.2 <= now).map(|(&c, _)| c).collect();
                        gone.sort();
                        want.sort();
                        prop_assert_eq!(&gone, &want);
                        model.retain(|_, v| v.2 > now);
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                let counted = dest.active() + dest.inactive();
                prop_assert_eq!(counted as usize, model.len());
            }
            for (&c, &(_, id, _)) in &model {
                let e = t.get(id);
                prop_assert_eq!(u32::from(e.client) as u8, c);
                prop_assert_eq!(t.lookup(&e.key(Direction::In)), Some((id, Direction::In)));
            }
        }
    }
}
