//! The sync datagram: IPVS's sync protocol version 1 (the kernel's
//! `net/netfilter/ipvs/ip_vs_sync.c`), extended with options for FNAT and the SYN proxy.
//!
//! Keeping IPVS's layout means the format is documented and familiar, and that a kernel IPVS
//! backup in the same group installs the records it can carry (NAT, DR, tunnel) and skips the
//! ones it cannot (see the option numbers below).
//!
//! All fields are big-endian. A datagram is an 8-byte header and `nr_conns` connection records:
//!
//! ```text
//! header   0: reserved, 0 (a version-0 receiver reads it as the record count and drops the datagram)
//!          1: syncid (u8)      2: size (u16, the whole datagram, header and padding included)
//!          4: nr_conns (u8)    5: version, 1      6: spare (u16), 0
//! record   0: type (u8: 0 IPv4; bit 0 set, STYPE_F_INET6, IPv6, whatever the other bits say,
//!             as the kernel reads it)   1: protocol (u8)
//!          2: ver_size (u16: version in the top 4 bits, 0; the record's length, options
//!             included, padding not, in the low 12)
//!          4: flags (u32, IPVS's IP_VS_CONN_F_* bits: forwarding method in the low 3,
//!             0x0600 sequence adjustment, 0x1000 template, ...)  8: state (u16)
//!         10: cport  12: vport  14: dport (u16 each)   16: fwmark (u32)  20: timeout (u32, seconds)
//!   IPv4  24: caddr  28: vaddr  32: daddr (4 bytes each)        36: options
//!   IPv6  24: caddr  40: vaddr  56: daddr (16 bytes each)       72: options
//!   options: each `type (u8), length of the data (u8, not 0), data`, unaligned
//! ```
//!
//! The fixed parts are the kernel's `struct ip_vs_sync_v4` (36 bytes) and `struct
//! ip_vs_sync_v6` (72 bytes): the same first 24 bytes, then the three addresses as `__be32`
//! or `struct in6_addr`. A record's family is its own: one datagram may mix them. Records
//! start on 4-byte boundaries: after a record whose length is not a multiple of 4 the sender
//! writes zero bytes up to the next boundary before the next record (never after the last
//! one), and `size` counts them.
//!
//! Options (the kernel matches a type with its bit 0x40, `IPVS_OPT_F_PARAM`, masked off; an
//! unknown type with that bit set is skipped, an unknown one without it makes the receiver
//! skip the whole record):
//!
//! | type   | from  | length | data                                                                 |
//! |--------|-------|--------|----------------------------------------------------------------------|
//! | `1`    | IPVS  | 24     | `SEQ_DATA`: `in_seq` then `out_seq`, each `init_seq`, `delta`, `previous_delta` (u32) |
//! | `2`, `3` | IPVS | any   | `PE_DATA`, `PE_NAME`: a persistence engine's data (SIP); not supported, the record is skipped |
//! | `0x20` | ours  | 6, 18  | `FNAT_LOCAL`: the local address (4 bytes in an IPv4 record, 16 in an IPv6 one: the record's family) and local port (u16) the director talks to the real server from |
//! | `0x21` | ours  | 8      | `SYNPROXY`: the SYN proxy's sequence delta and timestamp delta (u32 each), as the connection entry holds them |
//! | `0x62` | ours  | 8      | `STAMP` (optional bit set), on a datagram's first record only: the sender's run (u32, the time it started, in seconds) and the datagram's number in that run (u32): a backup drops a datagram it has seen (a replay) or one of an earlier run |
//!
//! Why 0x20 and 0x21: IPVS numbers its options upwards from 1 (1 to 3 are taken; 7 is the bit
//! index of the 0x40 flag), so 0x20 leaves room for whatever IPVS adds next while staying
//! below 0x40. The 0x40 bit is left clear on purpose: an FNAT or SYN-proxied connection cannot
//! be carried without these options (no local address to rewrite to; sequence numbers off by
//! the delta), so a kernel backup must skip such a record, not install half of it. `STAMP`
//! is 0x22 with the 0x40 bit set: a kernel backup skips it and installs the record.
//!
//! The views ([`Header`], [`ConnRecord`]) follow [`crate::wire`]: field offsets in one `field`
//! module, `new_checked` checks every length a getter relies on. A record's values are a
//! [`ConnRepr`] of its family ([`SyncFamily`]: `Ipv4Addr` or `Ipv6Addr`, the connection
//! tables' own address types), and a [`Record`] is one of either family. [`parse`] walks a
//! received datagram record by record without allocating; [`DatagramWriter`] batches records
//! into a caller's buffer, also without allocating.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::wire::{be16, be32, put16, put32};

mod field {
    pub mod header {
        pub const RESERVED: usize = 0;
        pub const SYNCID: usize = 1;
        pub const SIZE: usize = 2;
        pub const NR_CONNS: usize = 4;
        pub const VERSION: usize = 5;
        pub const SPARE: usize = 6;
    }
    pub mod conn {
        pub const TYPE: usize = 0;
        pub const PROTOCOL: usize = 1;
        pub const VER_SIZE: usize = 2;
        pub const FLAGS: usize = 4;
        pub const STATE: usize = 8;
        pub const CPORT: usize = 10;
        pub const VPORT: usize = 12;
        pub const DPORT: usize = 14;
        pub const FWMARK: usize = 16;
        pub const TIMEOUT: usize = 20;
        /// The client's address; the virtual and the real server's follow it, each an
        /// address of the record's family long.
        pub const CADDR: usize = 24;
    }
    /// Offsets inside an option's data.
    pub mod seq_data {
        pub const IN_SEQ: usize = 0;
        pub const OUT_SEQ: usize = 12;
        // Inside each `struct ip_vs_seq`.
        pub const INIT_SEQ: usize = 0;
        pub const DELTA: usize = 4;
        pub const PREVIOUS_DELTA: usize = 8;
    }
    /// The port follows the address, of the record's family.
    pub mod fnat_local {
        pub const ADDR: usize = 0;
    }
    pub mod synproxy {
        pub const SEQ_DELTA: usize = 0;
        pub const TS_DELTA: usize = 4;
    }
    pub mod stamp {
        pub const RUN: usize = 0;
        pub const NUMBER: usize = 4;
    }
}

/// Length of the datagram header.
pub const HEADER_LEN: usize = 8;
/// The protocol version this module reads and writes (`SYNC_PROTO_VER`).
pub const VERSION: u8 = 1;
/// Length of an IPv4 record without options (`sizeof(struct ip_vs_sync_v4)`).
pub const CONN_V4_LEN: usize = 36;
/// Length of an IPv6 record without options (`sizeof(struct ip_vs_sync_v6)`).
pub const CONN_V6_LEN: usize = 72;
/// `nr_conns` is one byte.
pub const MAX_RECORDS: usize = u8::MAX as usize;
/// `size` is 16 bits.
pub const MAX_DATAGRAM_LEN: usize = u16::MAX as usize;

/// The record type's IPv6 bit (`STYPE_F_INET6`).
const TYPE_INET6: u8 = 0x01;
/// `ver_size`: the low 12 bits are the record length (`SVER_MASK`), the top 4 the version.
const SIZE_MASK: u16 = 0x0fff;
const RECORD_VERSION_SHIFT: u32 = 12;
/// Every option starts with a type byte and a length byte.
const OPTION_HEADER_LEN: usize = 2;

/// Option types (see the table in the module doc).
pub mod option {
    pub const SEQ_DATA: u8 = 1;
    pub const PE_DATA: u8 = 2;
    pub const PE_NAME: u8 = 3;
    pub const FNAT_LOCAL: u8 = 0x20;
    pub const SYNPROXY: u8 = 0x21;
    pub const STAMP: u8 = 0x22 | OPTIONAL;
    /// Set on an option a receiver that does not know it may skip (`IPVS_OPT_F_PARAM`).
    pub const OPTIONAL: u8 = 0x40;

    pub const SEQ_DATA_LEN: usize = 24;
    /// `FNAT_LOCAL` in an IPv4 record and in an IPv6 one: the address, then the port.
    pub const FNAT_LOCAL_V4_LEN: usize = 4 + 2;
    pub const FNAT_LOCAL_V6_LEN: usize = 16 + 2;
    pub const SYNPROXY_LEN: usize = 8;
    pub const STAMP_LEN: usize = 8;
}

/// The `flags` bits a record carries, as `include/uapi/linux/ip_vs.h` defines them.
pub mod conn_flags {
    /// The forwarding method is the low 3 bits.
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0x0000;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    /// Not established (counted as an inactive connection).
    pub const INACTIVE: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
    pub const IN_SEQ: u32 = 0x0400;
    /// A persistence template, not a connection.
    pub const TEMPLATE: u32 = 0x1000;
}

/// The part of a datagram a [`Error::Truncated`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Record,
    OptionHeader,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "sync header",
            Part::Record => "sync record",
            Part::OptionHeader => "sync option header",
        })
    }
}

/// Why bytes are not a sync datagram this gateway can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the part needs.
    Truncated { part: Part, needed: usize, len: usize },
    /// The reserved byte or the spare field is not zero: a version-0 datagram, or not sync at all.
    NotVersion1 { reserved: u8, spare: u16 },
    /// The header's version is not 1.
    BadVersion { version: u8 },
    /// The header's size is not the datagram's length.
    SizeMismatch { size: u16, len: usize },
    /// A record's version (top 4 bits of `ver_size`) is not 0.
    BadRecordVersion { version: u8 },
    /// A record's size is smaller than the fixed part of its type (36 bytes for IPv4, 72
    /// for IPv6).
    RecordTooShort { size: u16, needed: usize },
    /// A record's size runs past the end of the datagram.
    RecordPastDatagram { size: u16, left: usize },
    /// A record type other than IPv4 (0) or IPv6 (bit 0 set); or, from
    /// [`ConnRepr::parse`], a record of the other family than the one asked for.
    BadRecordType { kind: u8 },
    /// An option with a zero length (the kernel refuses these too).
    EmptyOption { kind: u8 },
    /// An option's length runs past the end of its record.
    OptionPastRecord { kind: u8, len: u8, left: usize },
    /// A known option with the wrong length.
    BadOptionLength { kind: u8, len: u8, expected: usize },
    /// The same option twice in one record.
    DuplicateOption { kind: u8 },
    /// An option type nobody defined, without the optional bit: the record must be skipped.
    UnknownOption { kind: u8 },
    /// IPVS's persistence-engine data or name: the gateway has no persistence engines.
    PersistenceEngineOption { kind: u8 },
}

impl Error {
    /// Whether the error leaves the rest of the datagram unreadable (as the kernel drops the
    /// whole buffer), rather than just this record (whose length is known, so the next record
    /// can still be read).
    pub fn drops_datagram(&self) -> bool {
        !matches!(self, Error::UnknownOption { .. } | Error::PersistenceEngineOption { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { part, needed, len } => {
                write!(f, "truncated {part}: needs {needed} bytes, {len} present")
            }
            Error::NotVersion1 { reserved, spare } => write!(
                f,
                "not a version-1 sync datagram: reserved byte {reserved} and spare {spare} must be 0 \
                 (version 0 is not supported)"
            ),
            Error::BadVersion { version } => write!(f, "bad sync version {version}, expected {VERSION}"),
            Error::SizeMismatch { size, len } => {
                write!(f, "sync header says the datagram is {size} bytes, {len} were received")
            }
            Error::BadRecordVersion { version } => write!(f, "bad sync record version {version}, expected 0"),
            Error::RecordTooShort { size, needed } => {
                write!(f, "sync record size {size} is shorter than its type's {needed}-byte fixed part")
            }
            Error::RecordPastDatagram { size, left } => {
                write!(f, "sync record size {size} runs past the datagram ({left} bytes left)")
            }
            Error::BadRecordType { kind } => write!(f, "bad sync record type {kind:#04x}"),
            Error::EmptyOption { kind } => write!(f, "sync option {kind:#04x} with length 0"),
            Error::OptionPastRecord { kind, len, left } => {
                write!(f, "sync option {kind:#04x} of {len} bytes runs past its record ({left} bytes left)")
            }
            Error::BadOptionLength { kind, len, expected } => {
                write!(f, "sync option {kind:#04x} has length {len}, expected {expected}")
            }
            Error::DuplicateOption { kind } => write!(f, "sync option {kind:#04x} appears twice in one record"),
            Error::UnknownOption { kind } => write!(f, "unknown mandatory sync option {kind:#04x}"),
            Error::PersistenceEngineOption { kind } => {
                write!(f, "sync option {kind:#04x} carries persistence-engine data, which is not supported")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Why a record does not fit the datagram being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// The buffer (or the 16-bit size field) has fewer bytes left than the record needs.
    NoRoom { needed: usize, left: usize },
    /// The datagram already holds [`MAX_RECORDS`] records.
    TooManyRecords,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EmitError::NoRoom { needed, left } => {
                write!(f, "no room in the sync datagram: needs {needed} bytes, {left} left")
            }
            EmitError::TooManyRecords => write!(f, "the sync datagram already holds {MAX_RECORDS} records"),
        }
    }
}

impl std::error::Error for EmitError {}

/// A view of a sync datagram's header (over the whole datagram, so the size can be checked).
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// Checks that the header's bytes are present.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated { part: Part::Header, needed: HEADER_LEN, len });
        }
        Ok(Header { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::header::RESERVED]
    }

    pub fn syncid(&self) -> u8 {
        self.buffer.as_ref()[field::header::SYNCID]
    }

    pub fn size(&self) -> u16 {
        be16(self.buffer.as_ref(), field::header::SIZE)
    }

    pub fn nr_conns(&self) -> u8 {
        self.buffer.as_ref()[field::header::NR_CONNS]
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::header::VERSION]
    }

    pub fn spare(&self) -> u16 {
        be16(self.buffer.as_ref(), field::header::SPARE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    pub fn set_reserved(&mut self, v: u8) {
        self.buffer.as_mut()[field::header::RESERVED] = v;
    }

    pub fn set_syncid(&mut self, v: u8) {
        self.buffer.as_mut()[field::header::SYNCID] = v;
    }

    pub fn set_size(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::header::SIZE, v);
    }

    pub fn set_nr_conns(&mut self, v: u8) {
        self.buffer.as_mut()[field::header::NR_CONNS] = v;
    }

    pub fn set_version(&mut self, v: u8) {
        self.buffer.as_mut()[field::header::VERSION] = v;
    }

    pub fn set_spare(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::header::SPARE, v);
    }
}

/// A sync header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    pub syncid: u8,
    /// The whole datagram's length.
    pub size: u16,
    pub nr_conns: u8,
}

impl HeaderRepr {
    /// Checks the version fields and that `size` is the length of the view's buffer (the
    /// received datagram), in the kernel's order.
    pub fn parse<T: AsRef<[u8]>>(header: &Header<T>) -> Result<Self, Error> {
        let len = header.buffer.as_ref().len();
        if usize::from(header.size()) != len {
            return Err(Error::SizeMismatch { size: header.size(), len });
        }
        if header.reserved() != 0 || header.spare() != 0 {
            return Err(Error::NotVersion1 { reserved: header.reserved(), spare: header.spare() });
        }
        if header.version() != VERSION {
            return Err(Error::BadVersion { version: header.version() });
        }
        Ok(HeaderRepr { syncid: header.syncid(), size: header.size(), nr_conns: header.nr_conns() })
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut Header<T>) {
        header.set_reserved(0);
        header.set_syncid(self.syncid);
        header.set_size(self.size);
        header.set_nr_conns(self.nr_conns);
        header.set_version(VERSION);
        header.set_spare(0);
    }
}

/// An address family a record can carry: the kernel's IPv4 record or its IPv6 one. Each
/// family's values come from its fixed part's length and the length of its addresses.
pub trait SyncFamily: crate::conn::Family {
    /// An address and a port of the family (`SocketAddrV4`, `SocketAddrV6`).
    type Socket: Copy + Eq + fmt::Debug + Send + 'static;
    /// The record's type byte.
    const TYPE: u8;
    /// The record's fixed part ([`CONN_V4_LEN`], [`CONN_V6_LEN`]).
    const CONN_LEN: usize;
    /// An address's bytes.
    const ADDR_LEN: usize;
    /// The data of `FNAT_LOCAL` in a record of the family.
    const FNAT_LOCAL_LEN: usize;

    /// The address at the start of `b` (at least [`SyncFamily::ADDR_LEN`] bytes).
    fn read(b: &[u8]) -> Self;
    /// Writes the address at the start of `b`.
    fn write(self, b: &mut [u8]);
    fn socket(self, port: u16) -> Self::Socket;
    /// The address and the port of `s`.
    fn split(s: Self::Socket) -> (Self, u16);
}

impl SyncFamily for Ipv4Addr {
    type Socket = SocketAddrV4;
    const TYPE: u8 = 0;
    const CONN_LEN: usize = CONN_V4_LEN;
    const ADDR_LEN: usize = 4;
    const FNAT_LOCAL_LEN: usize = option::FNAT_LOCAL_V4_LEN;

    fn read(b: &[u8]) -> Self {
        Ipv4Addr::from(be32(b, 0))
    }
    fn write(self, b: &mut [u8]) {
        put32(b, 0, u32::from(self));
    }
    fn socket(self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self, port)
    }
    fn split(s: SocketAddrV4) -> (Self, u16) {
        (*s.ip(), s.port())
    }
}

impl SyncFamily for Ipv6Addr {
    type Socket = SocketAddrV6;
    const TYPE: u8 = TYPE_INET6;
    const CONN_LEN: usize = CONN_V6_LEN;
    const ADDR_LEN: usize = 16;
    const FNAT_LOCAL_LEN: usize = option::FNAT_LOCAL_V6_LEN;

    fn read(b: &[u8]) -> Self {
        Ipv6Addr::from(crate::wire::ipv6::addr_at(b, 0))
    }
    fn write(self, b: &mut [u8]) {
        b[..16].copy_from_slice(&self.octets());
    }
    fn socket(self, port: u16) -> SocketAddrV6 {
        // A connection's ends are global or scoped by the port it came in on, never by
        // a flow label or a scope id of this host's.
        SocketAddrV6::new(self, port, 0, 0)
    }
    fn split(s: SocketAddrV6) -> (Self, u16) {
        (*s.ip(), s.port())
    }
}

/// A view of one connection record of either family, from its first byte (the buffer may go
/// on past it).
#[derive(Debug, Clone)]
pub struct ConnRecord<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ConnRecord<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        ConnRecord { buffer }
    }

    /// Checks the shortest fixed part (IPv4's), the record's version and type, that its size
    /// covers the fixed part of its type and fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < CONN_V4_LEN {
            return Err(Error::Truncated { part: Part::Record, needed: CONN_V4_LEN, len });
        }
        let record = ConnRecord { buffer };
        if record.version() != 0 {
            return Err(Error::BadRecordVersion { version: record.version() });
        }
        if record.kind() != 0 && !record.is_inet6() {
            return Err(Error::BadRecordType { kind: record.kind() });
        }
        let size = record.size();
        if usize::from(size) < record.fixed_len() {
            return Err(Error::RecordTooShort { size, needed: record.fixed_len() });
        }
        if usize::from(size) > len {
            return Err(Error::RecordPastDatagram { size, left: len });
        }
        Ok(record)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::conn::TYPE]
    }

    /// Whether the record is IPv6's (the type's bit 0, as the kernel tests it).
    pub fn is_inet6(&self) -> bool {
        self.kind() & TYPE_INET6 != 0
    }

    /// The fixed part of the record's family: where its options start.
    pub fn fixed_len(&self) -> usize {
        if self.is_inet6() {
            CONN_V6_LEN
        } else {
            CONN_V4_LEN
        }
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::conn::PROTOCOL]
    }

    pub fn version(&self) -> u8 {
        (be16(self.buffer.as_ref(), field::conn::VER_SIZE) >> RECORD_VERSION_SHIFT) as u8
    }

    /// The record's length, options included, padding not.
    pub fn size(&self) -> u16 {
        be16(self.buffer.as_ref(), field::conn::VER_SIZE) & SIZE_MASK
    }

    pub fn flags(&self) -> u32 {
        be32(self.buffer.as_ref(), field::conn::FLAGS)
    }

    pub fn state(&self) -> u16 {
        be16(self.buffer.as_ref(), field::conn::STATE)
    }

    pub fn cport(&self) -> u16 {
        be16(self.buffer.as_ref(), field::conn::CPORT)
    }

    pub fn vport(&self) -> u16 {
        be16(self.buffer.as_ref(), field::conn::VPORT)
    }

    pub fn dport(&self) -> u16 {
        be16(self.buffer.as_ref(), field::conn::DPORT)
    }

    pub fn fwmark(&self) -> u32 {
        be32(self.buffer.as_ref(), field::conn::FWMARK)
    }

    /// Seconds.
    pub fn timeout(&self) -> u32 {
        be32(self.buffer.as_ref(), field::conn::TIMEOUT)
    }

    /// The client's address, of a record of family `A` (see [`ConnRecord::is_inet6`]).
    pub fn caddr<A: SyncFamily>(&self) -> A {
        A::read(&self.buffer.as_ref()[field::conn::CADDR..])
    }

    /// The virtual address, of a record of family `A`.
    pub fn vaddr<A: SyncFamily>(&self) -> A {
        A::read(&self.buffer.as_ref()[field::conn::CADDR + A::ADDR_LEN..])
    }

    /// The real server's address, of a record of family `A`.
    pub fn daddr<A: SyncFamily>(&self) -> A {
        A::read(&self.buffer.as_ref()[field::conn::CADDR + 2 * A::ADDR_LEN..])
    }

    /// The options' bytes (from the fixed part to the record's size).
    pub fn options(&self) -> Options<'_> {
        Options { bytes: &self.buffer.as_ref()[self.fixed_len()..usize::from(self.size())] }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ConnRecord<T> {
    /// Writes the record's type: 0 for IPv4, [`SyncFamily::TYPE`] of its family.
    pub fn set_kind(&mut self, kind: u8) {
        self.buffer.as_mut()[field::conn::TYPE] = kind;
    }

    /// Writes version 0 and the record's length.
    pub fn set_size(&mut self, size: u16) {
        put16(self.buffer.as_mut(), field::conn::VER_SIZE, size & SIZE_MASK);
    }

    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::conn::PROTOCOL] = v;
    }

    pub fn set_flags(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::conn::FLAGS, v);
    }

    pub fn set_state(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::conn::STATE, v);
    }

    pub fn set_cport(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::conn::CPORT, v);
    }

    pub fn set_vport(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::conn::VPORT, v);
    }

    pub fn set_dport(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::conn::DPORT, v);
    }

    pub fn set_fwmark(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::conn::FWMARK, v);
    }

    pub fn set_timeout(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::conn::TIMEOUT, v);
    }

    pub fn set_caddr<A: SyncFamily>(&mut self, v: A) {
        v.write(&mut self.buffer.as_mut()[field::conn::CADDR..]);
    }

    pub fn set_vaddr<A: SyncFamily>(&mut self, v: A) {
        v.write(&mut self.buffer.as_mut()[field::conn::CADDR + A::ADDR_LEN..]);
    }

    pub fn set_daddr<A: SyncFamily>(&mut self, v: A) {
        v.write(&mut self.buffer.as_mut()[field::conn::CADDR + 2 * A::ADDR_LEN..]);
    }
}

/// A record's options as `(type, data)`, each length-checked before it is read.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u8, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        let result = match *self.bytes {
            [kind, len, ref rest @ ..] => match usize::from(len) {
                0 => Err(Error::EmptyOption { kind }),
                n if n > rest.len() => Err(Error::OptionPastRecord { kind, len, left: rest.len() }),
                n => {
                    self.bytes = &rest[n..];
                    return Some(Ok((kind, &rest[..n])));
                }
            },
            _ => Err(Error::Truncated { part: Part::OptionHeader, needed: OPTION_HEADER_LEN, len: self.bytes.len() }),
        };
        // A malformed option leaves nothing after it readable.
        self.bytes = &[];
        Some(result)
    }
}

/// One direction of IPVS's sequence adjustment (`struct ip_vs_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqAdjust {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// IPVS's `SEQ_DATA` option (`struct ip_vs_sync_conn_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqData {
    pub in_seq: SeqAdjust,
    pub out_seq: SeqAdjust,
}

/// Our `SYNPROXY` option: what the SYN proxy adds to the connection's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynProxyDeltas {
    pub seq_delta: u32,
    pub ts_delta: u32,
}

/// Our `STAMP` option: which run of the sender sent a datagram, and its number in that run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's start, in seconds since the Unix epoch: a later run has a larger one.
    pub run: u32,
    /// Counts the run's datagrams from 0, wrapping.
    pub number: u32,
}

impl Stamp {
    /// Whether a datagram stamped `self` comes after one stamped `last` from the same
    /// sender: a later run, or a later number in the same run (numbers compare with
    /// wrapping, as TCP sequence numbers do).
    pub fn follows(self, last: Stamp) -> bool {
        self.run > last.run || (self.run == last.run && (self.number.wrapping_sub(last.number) as i32) > 0)
    }
}

/// The stamp of a received datagram (on its first record), if it has one. Only for a
/// datagram [`parse`] accepted; anything unreadable reads as no stamp.
pub fn stamp_of(datagram: &[u8]) -> Option<Stamp> {
    let record = ConnRecord::new_checked(datagram.get(HEADER_LEN..)?).ok()?;
    record.options().filter_map(Result::ok).find_map(|(kind, data)| {
        (kind == option::STAMP && data.len() == option::STAMP_LEN)
            .then(|| Stamp { run: be32(data, field::stamp::RUN), number: be32(data, field::stamp::NUMBER) })
    })
}

/// A connection record of family `A` as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRepr<A: SyncFamily> {
    pub protocol: u8,
    /// IPVS's `IP_VS_CONN_F_*` bits (forwarding method, template, inactive, ...).
    pub flags: u32,
    pub state: u16,
    pub client: A::Socket,
    pub virtual_service: A::Socket,
    pub real_server: A::Socket,
    pub fwmark: u32,
    pub timeout_secs: u32,
    pub seq_data: Option<SeqData>,
    /// FNAT: the director's local address and port towards the real server.
    pub fnat_local: Option<A::Socket>,
    pub synproxy: Option<SynProxyDeltas>,
}

impl<A: SyncFamily> ConnRepr<A> {
    /// Reads a checked record of family `A` and its options ([`Error::BadRecordType`] for a
    /// record of the other family). Unknown options with [`option::OPTIONAL`] set are
    /// skipped; a known type is recognised with that bit set too, as the kernel does.
    pub fn parse<T: AsRef<[u8]>>(record: &ConnRecord<T>) -> Result<Self, Error> {
        if record.is_inet6() != (A::TYPE == TYPE_INET6) {
            return Err(Error::BadRecordType { kind: record.kind() });
        }
        let mut repr = ConnRepr {
            protocol: record.protocol(),
            flags: record.flags(),
            state: record.state(),
            client: A::socket(record.caddr(), record.cport()),
            virtual_service: A::socket(record.vaddr(), record.vport()),
            real_server: A::socket(record.daddr(), record.dport()),
            fwmark: record.fwmark(),
            timeout_secs: record.timeout(),
            seq_data: None,
            fnat_local: None,
            synproxy: None,
        };
        for item in record.options() {
            let (kind, data) = item?;
            let duplicate = match kind & !option::OPTIONAL {
                option::SEQ_DATA => {
                    let data = exact_len(kind, data, option::SEQ_DATA_LEN)?;
                    repr.seq_data
                        .replace(SeqData {
                            in_seq: seq_adjust(&data[field::seq_data::IN_SEQ..]),
                            out_seq: seq_adjust(&data[field::seq_data::OUT_SEQ..]),
                        })
                        .is_some()
                }
                option::FNAT_LOCAL => {
                    let data = exact_len(kind, data, A::FNAT_LOCAL_LEN)?;
                    let addr = A::read(&data[field::fnat_local::ADDR..]);
                    let port = be16(data, field::fnat_local::ADDR + A::ADDR_LEN);
                    repr.fnat_local.replace(A::socket(addr, port)).is_some()
                }
                option::SYNPROXY => {
                    let data = exact_len(kind, data, option::SYNPROXY_LEN)?;
                    let deltas = SynProxyDeltas {
                        seq_delta: be32(data, field::synproxy::SEQ_DELTA),
                        ts_delta: be32(data, field::synproxy::TS_DELTA),
                    };
                    repr.synproxy.replace(deltas).is_some()
                }
                option::PE_DATA | option::PE_NAME => return Err(Error::PersistenceEngineOption { kind }),
                _ if kind & option::OPTIONAL != 0 => false,
                _ => return Err(Error::UnknownOption { kind }),
            };
            if duplicate {
                return Err(Error::DuplicateOption { kind });
            }
        }
        Ok(repr)
    }

    /// The record's length with its options (padding not included).
    pub fn record_len(&self) -> usize {
        let option_len = |present: bool, len: usize| if present { OPTION_HEADER_LEN + len } else { 0 };
        A::CONN_LEN
            + option_len(self.seq_data.is_some(), option::SEQ_DATA_LEN)
            + option_len(self.fnat_local.is_some(), A::FNAT_LOCAL_LEN)
            + option_len(self.synproxy.is_some(), option::SYNPROXY_LEN)
    }

    /// Writes the record; the buffer must hold [`ConnRepr::record_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, record: &mut ConnRecord<T>) {
        // At most 72 + 26 + 20 + 10 bytes: always fits the 12-bit size.
        record.set_kind(A::TYPE);
        record.set_size(self.record_len() as u16);
        record.set_protocol(self.protocol);
        record.set_flags(self.flags);
        record.set_state(self.state);
        let ((caddr, cport), (vaddr, vport), (daddr, dport)) =
            (A::split(self.client), A::split(self.virtual_service), A::split(self.real_server));
        record.set_cport(cport);
        record.set_vport(vport);
        record.set_dport(dport);
        record.set_fwmark(self.fwmark);
        record.set_timeout(self.timeout_secs);
        record.set_caddr(caddr);
        record.set_vaddr(vaddr);
        record.set_daddr(daddr);
        let mut at = A::CONN_LEN;
        let b = record.buffer.as_mut();
        if let Some(seq) = self.seq_data {
            let data = start_option(b, &mut at, option::SEQ_DATA, option::SEQ_DATA_LEN);
            put_seq_adjust(&mut data[field::seq_data::IN_SEQ..], seq.in_seq);
            put_seq_adjust(&mut data[field::seq_data::OUT_SEQ..], seq.out_seq);
        }
        if let Some(local) = self.fnat_local {
            let (addr, port) = A::split(local);
            let data = start_option(b, &mut at, option::FNAT_LOCAL, A::FNAT_LOCAL_LEN);
            addr.write(&mut data[field::fnat_local::ADDR..]);
            put16(data, field::fnat_local::ADDR + A::ADDR_LEN, port);
        }
        if let Some(deltas) = self.synproxy {
            let data = start_option(b, &mut at, option::SYNPROXY, option::SYNPROXY_LEN);
            put32(data, field::synproxy::SEQ_DELTA, deltas.seq_delta);
            put32(data, field::synproxy::TS_DELTA, deltas.ts_delta);
        }
    }
}

/// A connection record of either family: what a datagram holds and the queues between the
/// workers and the daemon carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    V4(ConnRepr<Ipv4Addr>),
    V6(ConnRepr<Ipv6Addr>),
}

impl Record {
    /// Reads a checked record, of the family its type says.
    pub fn parse<T: AsRef<[u8]>>(record: &ConnRecord<T>) -> Result<Record, Error> {
        if record.is_inet6() {
            ConnRepr::parse(record).map(Record::V6)
        } else {
            ConnRepr::parse(record).map(Record::V4)
        }
    }

    /// The record's length with its options (padding not included).
    pub fn record_len(&self) -> usize {
        match self {
            Record::V4(r) => r.record_len(),
            Record::V6(r) => r.record_len(),
        }
    }

    /// Writes the record; the buffer must hold [`Record::record_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, record: &mut ConnRecord<T>) {
        match self {
            Record::V4(r) => r.emit(record),
            Record::V6(r) => r.emit(record),
        }
    }

    /// The client's port.
    pub fn client_port(&self) -> u16 {
        match self {
            Record::V4(r) => r.client.port(),
            Record::V6(r) => r.client.port(),
        }
    }

    /// FNAT's local port.
    pub fn local_port(&self) -> Option<u16> {
        match self {
            Record::V4(r) => r.fnat_local.map(|l| l.port()),
            Record::V6(r) => r.fnat_local.map(|l| l.port()),
        }
    }
}

impl From<ConnRepr<Ipv4Addr>> for Record {
    fn from(r: ConnRepr<Ipv4Addr>) -> Record {
        Record::V4(r)
    }
}

impl From<ConnRepr<Ipv6Addr>> for Record {
    fn from(r: ConnRepr<Ipv6Addr>) -> Record {
        Record::V6(r)
    }
}

fn exact_len(kind: u8, data: &[u8], expected: usize) -> Result<&[u8], Error> {
    if data.len() != expected {
        // Option data comes from a one-byte length.
        return Err(Error::BadOptionLength { kind, len: data.len() as u8, expected });
    }
    Ok(data)
}

fn seq_adjust(b: &[u8]) -> SeqAdjust {
    SeqAdjust {
        init_seq: be32(b, field::seq_data::INIT_SEQ),
        delta: be32(b, field::seq_data::DELTA),
        previous_delta: be32(b, field::seq_data::PREVIOUS_DELTA),
    }
}

fn put_seq_adjust(b: &mut [u8], seq: SeqAdjust) {
    put32(b, field::seq_data::INIT_SEQ, seq.init_seq);
    put32(b, field::seq_data::DELTA, seq.delta);
    put32(b, field::seq_data::PREVIOUS_DELTA, seq.previous_delta);
}

/// Writes an option's type and length at `*at` and returns its data, moving `*at` past it.
fn start_option<'b>(b: &'b mut [u8], at: &mut usize, kind: u8, len: usize) -> &'b mut [u8] {
    b[*at] = kind;
    b[*at + 1] = len as u8;
    let data_at = *at + OPTION_HEADER_LEN;
    *at = data_at + len;
    &mut b[data_at..data_at + len]
}

/// Records start on 4-byte boundaries.
fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads a received datagram's header and returns it with an iterator over its records.
pub fn parse(datagram: &[u8]) -> Result<(HeaderRepr, Records<'_>), Error> {
    let header = HeaderRepr::parse(&Header::new_checked(datagram)?)?;
    Ok((header, Records { datagram, at: HEADER_LEN, remaining: header.nr_conns }))
}

/// The records of a datagram, in order. A record-only error ([`Error::drops_datagram`] false)
/// is yielded and the walk goes on with the next record; any other error is yielded last.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    datagram: &'a [u8],
    at: usize,
    remaining: u8,
}

impl Iterator for Records<'_> {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let rest = self.datagram.get(self.at..).unwrap_or_default();
        let result = ConnRecord::new_checked(rest).and_then(|record| Record::parse(&record));
        match result {
            Err(e) if e.drops_datagram() => self.remaining = 0,
            // A record-only error comes after the size checks, so the size is sound.
            _ => self.at += padded(usize::from(be16(rest, field::conn::VER_SIZE) & SIZE_MASK)),
        }
        Some(result)
    }
}

/// Batches records into one datagram in a caller's buffer.
#[derive(Debug)]
pub struct DatagramWriter<'a> {
    buffer: &'a mut [u8],
    syncid: u8,
    len: usize,
    nr_conns: u8,
    /// Written on the first record.
    stamp: Option<Stamp>,
}

impl<'a> DatagramWriter<'a> {
    /// Starts a datagram for `syncid` (at most [`MAX_DATAGRAM_LEN`] of the buffer is used).
    pub fn new(buffer: &'a mut [u8], syncid: u8) -> Result<Self, EmitError> {
        if buffer.len() < HEADER_LEN {
            return Err(EmitError::NoRoom { needed: HEADER_LEN, left: buffer.len() });
        }
        Ok(DatagramWriter { buffer, syncid, len: HEADER_LEN, nr_conns: 0, stamp: None })
    }

    /// Stamps the datagram (see [`Stamp`]); call before the first [`DatagramWriter::push`].
    pub fn stamped(mut self, stamp: Stamp) -> Self {
        debug_assert_eq!(self.nr_conns, 0, "the stamp rides on the first record");
        self.stamp = Some(stamp);
        self
    }

    /// Appends a record (after the padding the previous one needs); on error the datagram is
    /// unchanged, so the caller can send it and start the next one.
    pub fn push(&mut self, conn: &Record) -> Result<(), EmitError> {
        if usize::from(self.nr_conns) == MAX_RECORDS {
            return Err(EmitError::TooManyRecords);
        }
        let start = padded(self.len);
        let stamp = self.stamp.filter(|_| self.nr_conns == 0);
        let stamp_len = if stamp.is_some() { OPTION_HEADER_LEN + option::STAMP_LEN } else { 0 };
        let record_len = conn.record_len() + stamp_len;
        let needed = start - self.len + record_len;
        let left = self.buffer.len().min(MAX_DATAGRAM_LEN) - self.len;
        if needed > left {
            return Err(EmitError::NoRoom { needed, left });
        }
        self.buffer[self.len..start].fill(0);
        let mut record = ConnRecord::new_unchecked(&mut self.buffer[start..start + record_len]);
        conn.emit(&mut record);
        if let Some(stamp) = stamp {
            // At most 72 + 26 + 20 + 10 + 10 bytes: still fits the 12-bit size.
            record.set_size(record_len as u16);
            let mut at = conn.record_len();
            let data = start_option(record.buffer, &mut at, option::STAMP, option::STAMP_LEN);
            put32(data, field::stamp::RUN, stamp.run);
            put32(data, field::stamp::NUMBER, stamp.number);
        }
        self.len = start + record_len;
        self.nr_conns += 1;
        Ok(())
    }

    pub fn nr_conns(&self) -> u8 {
        self.nr_conns
    }

    /// Writes the header and returns the datagram's length (the bytes to send are
    /// `buffer[..len]`).
    pub fn finish(self) -> usize {
        // `push` keeps `len` within MAX_DATAGRAM_LEN.
        let repr = HeaderRepr { syncid: self.syncid, size: self.len as u16, nr_conns: self.nr_conns };
        repr.emit(&mut Header::new_unchecked(&mut self.buffer[..HEADER_LEN]));
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram of one plain record, laid out by hand from `struct ip_vs_sync_mesg` and
    /// `struct ip_vs_sync_v4`.
    const ONE_RECORD: [u8; 44] = [
        0x00, // reserved: 0 (a version-0 receiver would read "0 records")
        0x05, // syncid 5
        0x00, 0x2c, // size: 44 = 8-byte header + 36-byte record
        0x01, // nr_conns: 1
        0x01, // version 1
        0x00, 0x00, // spare
        // record
        0x00, // type 0: IPv4
        0x06, // protocol: TCP
        0x00, 0x24, // ver_size: version 0, size 36 (no options)
        0x00, 0x00, 0x00, 0x03, // flags: 3, IP_VS_CONN_F_DROUTE
        0x00, 0x01, // state: 1, IP_VS_TCP_S_ESTABLISHED
        0xc3, 0x50, // cport 50000
        0x00, 0x50, // vport 80
        0x1f, 0x90, // dport 8080
        0x00, 0x00, 0x00, 0x07, // fwmark 7
        0x00, 0x00, 0x03, 0x84, // timeout: 900 s
        10, 0, 0, 1, // caddr 10.0.0.1
        192, 168, 1, 10, // vaddr 192.168.1.10
        10, 1, 0, 2, // daddr 10.1.0.2
    ];

    fn plain_conn() -> ConnRepr<Ipv4Addr> {
        ConnRepr {
            protocol: 6,
            flags: conn_flags::DROUTE,
            state: 1,
            client: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 50000),
            virtual_service: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 10), 80),
            real_server: SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 2), 8080),
            fwmark: 7,
            timeout_secs: 900,
            seq_data: None,
            fnat_local: None,
            synproxy: None,
        }
    }

    /// A record with all three options, laid out by hand: 36 + 26 + 8 + 10 = 80 bytes.
    const OPTIONS_RECORD: [u8; 80] = [
        0x00, 0x06, 0x00, 0x50, // type IPv4, TCP, version 0 and size 80
        0x00, 0x00, 0x06, 0x00, // flags: IP_VS_CONN_F_OUT_SEQ | IP_VS_CONN_F_IN_SEQ (masquerading)
        0x00, 0x01, 0xc3, 0x50, // state ESTABLISHED, cport 50000
        0x00, 0x50, 0x1f, 0x90, // vport 80, dport 8080
        0x00, 0x00, 0x00, 0x00, // fwmark 0
        0x00, 0x00, 0x03, 0x84, // timeout 900 s
        10, 0, 0, 1, 192, 168, 1, 10, 10, 1, 0, 2, // caddr, vaddr, daddr
        0x01, 0x18, // option SEQ_DATA, 24 bytes
        0x00, 0x00, 0x10, 0x00, // in_seq.init_seq 4096
        0x00, 0x00, 0x00, 0x05, // in_seq.delta 5
        0x00, 0x00, 0x00, 0x02, // in_seq.previous_delta 2
        0x80, 0x00, 0x00, 0x00, // out_seq.init_seq 2^31
        0xff, 0xff, 0xff, 0xfb, // out_seq.delta -5 (the kernel's u32 arithmetic wraps)
        0x00, 0x00, 0x00, 0x00, // out_seq.previous_delta 0
        0x20, 0x06, // option FNAT_LOCAL, 6 bytes
        10, 1, 0, 250, 0x04, 0x01, // local 10.1.0.250 port 1025
        0x21, 0x08, // option SYNPROXY, 8 bytes
        0x12, 0x34, 0x56, 0x78, // sequence delta
        0x00, 0x00, 0x00, 0x64, // timestamp delta 100
    ];

    fn options_conn() -> ConnRepr<Ipv4Addr> {
        ConnRepr {
            flags: conn_flags::OUT_SEQ | conn_flags::IN_SEQ | conn_flags::MASQ,
            fwmark: 0,
            seq_data: Some(SeqData {
                in_seq: SeqAdjust { init_seq: 4096, delta: 5, previous_delta: 2 },
                out_seq: SeqAdjust { init_seq: 1 << 31, delta: 5u32.wrapping_neg(), previous_delta: 0 },
            }),
            fnat_local: Some(SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 250), 1025)),
            synproxy: Some(SynProxyDeltas { seq_delta: 0x1234_5678, ts_delta: 100 }),
            ..plain_conn()
        }
    }

    fn write<R: Into<Record> + Copy>(records: &[R], syncid: u8) -> Vec<u8> {
        let mut buf = vec![0xaa; MAX_DATAGRAM_LEN];
        let mut writer = DatagramWriter::new(&mut buf, syncid).unwrap();
        for r in records {
            writer.push(&(*r).into()).unwrap();
        }
        let len = writer.finish();
        buf.truncate(len);
        buf
    }

    fn read(datagram: &[u8]) -> Result<(HeaderRepr, Vec<Result<Record, Error>>), Error> {
        parse(datagram).map(|(h, records)| (h, records.collect()))
    }

    #[test]
    fn reads_a_datagram_laid_out_by_hand() {
        let header = Header::new_checked(&ONE_RECORD[..]).unwrap();
        assert_eq!((header.syncid(), header.size(), header.nr_conns(), header.version()), (5, 44, 1, 1));
        let record = ConnRecord::new_checked(&ONE_RECORD[HEADER_LEN..]).unwrap();
        assert_eq!(
            (record.size(), record.timeout(), record.caddr::<Ipv4Addr>()),
            (36, 900, Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(record.options().count(), 0);
        let (h, records) = read(&ONE_RECORD).unwrap();
        assert_eq!(h, HeaderRepr { syncid: 5, size: 44, nr_conns: 1 });
        assert_eq!(records, vec![Ok(plain_conn().into())]);
    }

    #[test]
    fn writes_the_bytes_laid_out_by_hand() {
        assert_eq!(write(&[plain_conn()], 5), ONE_RECORD);
        let mut record = [0u8; 80];
        assert_eq!(options_conn().record_len(), 80);
        options_conn().emit(&mut ConnRecord::new_unchecked(&mut record[..]));
        assert_eq!(record, OPTIONS_RECORD);
        let parsed = ConnRepr::parse(&ConnRecord::new_checked(&OPTIONS_RECORD[..]).unwrap()).unwrap();
        assert_eq!(parsed, options_conn());
    }

    /// A datagram of one IPv6 FNAT record with SYN-proxy deltas, laid out by hand from
    /// `struct ip_vs_sync_mesg` and `struct ip_vs_sync_v6`: 8 + 72 + 20 + 10 = 110 bytes.
    const V6_RECORD: [u8; 110] = [
        0x00, 0x05, 0x00, 0x6e, 0x01, 0x01, 0x00, 0x00, // header: syncid 5, size 110, 1 record, version 1
        // record
        0x01, // type: STYPE_F_INET6
        0x06, // protocol: TCP
        0x00, 0x66, // ver_size: version 0, size 102 (72 and two options)
        0x00, 0x00, 0x00, 0x00, // flags: masquerading
        0x00, 0x01, // state: ESTABLISHED
        0xc3, 0x50, // cport 50000
        0x00, 0x50, // vport 80
        0x1f, 0x90, // dport 8080
        0x00, 0x00, 0x00, 0x00, // fwmark 0
        0x00, 0x00, 0x03, 0x84, // timeout 900 s
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // caddr 2001:db8::1 (at 24)
        0x20, 0x01, 0x0d, 0xb8, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // vaddr 2001:db8:1::10 (at 40)
        0x20, 0x01, 0x0d, 0xb8, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // daddr 2001:db8:2::2 (at 56)
        0x20, 0x12, // option FNAT_LOCAL, 18 bytes (at 72)
        0x20, 0x01, 0x0d, 0xb8, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe, // local 2001:db8:2::fe
        0x04, 0x01, // local port 1025
        0x21, 0x08, // option SYNPROXY, 8 bytes
        0x12, 0x34, 0x56, 0x78, // sequence delta
        0x00, 0x00, 0x00, 0x00, // timestamp delta 0
    ];

    fn v6(s: &str) -> SocketAddrV6 {
        s.parse().unwrap()
    }

    fn v6_conn() -> ConnRepr<Ipv6Addr> {
        ConnRepr {
            protocol: 6,
            flags: conn_flags::MASQ,
            state: 1,
            client: v6("[2001:db8::1]:50000"),
            virtual_service: v6("[2001:db8:1::10]:80"),
            real_server: v6("[2001:db8:2::2]:8080"),
            fwmark: 0,
            timeout_secs: 900,
            seq_data: None,
            fnat_local: Some(v6("[2001:db8:2::fe]:1025")),
            synproxy: Some(SynProxyDeltas { seq_delta: 0x1234_5678, ts_delta: 0 }),
        }
    }

    #[test]
    fn reads_and_writes_an_ipv6_record_laid_out_by_hand() {
        let record = ConnRecord::new_checked(&V6_RECORD[HEADER_LEN..]).unwrap();
        assert!(record.is_inet6());
        assert_eq!((record.size(), record.fixed_len(), record.cport(), record.timeout()), (102, 72, 50000, 900));
        assert_eq!(record.caddr::<Ipv6Addr>(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(record.vaddr::<Ipv6Addr>(), "2001:db8:1::10".parse::<Ipv6Addr>().unwrap());
        assert_eq!(record.daddr::<Ipv6Addr>(), "2001:db8:2::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(record.options().map(|o| o.unwrap().0).collect::<Vec<_>>(), vec![0x20, 0x21]);
        let (h, records) = read(&V6_RECORD).unwrap();
        assert_eq!(h, HeaderRepr { syncid: 5, size: 110, nr_conns: 1 });
        assert_eq!(records, vec![Ok(Record::V6(v6_conn()))]);
        assert_eq!(v6_conn().record_len(), 102);
        assert_eq!(write(&[v6_conn()], 5), V6_RECORD);
    }

    /// The kernel reads a record's first 24 bytes the same for both families (a union of
    /// `struct ip_vs_sync_v4` and `struct ip_vs_sync_v6`), then the addresses by the type.
    #[test]
    fn both_families_share_the_kernels_first_24_bytes() {
        let v4 = ConnRepr::<Ipv4Addr> {
            client: "10.0.0.1:50000".parse().unwrap(),
            virtual_service: "192.168.1.10:80".parse().unwrap(),
            real_server: "10.1.0.2:8080".parse().unwrap(),
            fnat_local: None,
            synproxy: None,
            ..plain_conn()
        };
        let v6 = ConnRepr { fnat_local: None, synproxy: None, flags: v4.flags, fwmark: v4.fwmark, ..v6_conn() };
        let (b4, b6) = (write(&[v4], 5), write(&[v6], 5));
        assert_eq!((b4.len(), b6.len()), (HEADER_LEN + CONN_V4_LEN, HEADER_LEN + CONN_V6_LEN));
        let (r4, r6) = (&b4[HEADER_LEN..], &b6[HEADER_LEN..]);
        assert_eq!((r4[0], r6[0]), (0, 1), "the type");
        assert_eq!(&r4[1..2], &r6[1..2], "the protocol");
        assert_eq!((&r4[2..4], &r6[2..4]), (&[0, 36][..], &[0, 72][..]), "each its own size");
        assert_eq!(&r4[4..24], &r6[4..24], "flags, state, ports, fwmark, timeout");
        assert_eq!(&r6[24..40], &V6_RECORD[HEADER_LEN + 24..HEADER_LEN + 40]);
    }

    #[test]
    fn one_datagram_mixes_the_families_each_record_aligned() {
        // 72 + 10 = 82 bytes: two zero bytes before the next record.
        let proxied = ConnRepr { fnat_local: None, ..v6_conn() };
        assert_eq!(proxied.record_len(), 82);
        let records = [Record::V6(proxied), Record::V4(plain_conn()), Record::V6(v6_conn())];
        let datagram = write(&records, 9);
        assert_eq!(datagram.len(), 8 + 84 + 36 + 102);
        assert_eq!(&datagram[8 + 82..8 + 84], &[0, 0]);
        assert_eq!(&datagram[8 + 84..8 + 88], &[0x00, 0x06, 0x00, 0x24], "an IPv4 record after the padding");
        assert_eq!(&datagram[8 + 120..8 + 124], &[0x01, 0x06, 0x00, 0x66]);
        let (_, got) = read(&datagram).unwrap();
        assert_eq!(got, records.map(Ok).to_vec());
    }

    /// `V6_RECORD` with `edit` applied to the bytes, sizes fixed up to the new length.
    fn read_v6_edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<Result<Record, Error>> {
        let mut bytes = V6_RECORD.to_vec();
        edit(&mut bytes);
        let size = bytes.len() as u16;
        Header::new_unchecked(&mut bytes[..]).set_size(size);
        read(&bytes).unwrap().1
    }

    #[test]
    fn refuses_bad_ipv6_records() {
        let err = |edit: fn(&mut Vec<u8>)| read_v6_edited(edit).pop().unwrap().unwrap_err();
        // A size under 72 (the kernel's `p > msg_end`), and bytes short of the fixed part.
        assert_eq!(err(|b| b[11] = 70), Error::RecordTooShort { size: 70, needed: 72 });
        assert_eq!(err(|b| b.truncate(8 + 60)), Error::RecordPastDatagram { size: 102, left: 60 });
        // An IPv4-sized FNAT_LOCAL in an IPv6 record, and the other way around.
        let four_byte_local = |b: &mut Vec<u8>| {
            b.truncate(8 + 72);
            b.extend_from_slice(&[0x20, 6, 10, 1, 0, 250, 4, 1]);
            b[11] = 80;
        };
        assert_eq!(err(four_byte_local), Error::BadOptionLength { kind: 0x20, len: 6, expected: 18 });
        let local = [[0x20, 18].as_slice(), &V6_RECORD[82..100]].concat();
        assert_eq!(with_option(&local), vec![Err(Error::BadOptionLength { kind: 0x20, len: 18, expected: 6 })]);
        // Any type with bit 0 set is IPv6, as the kernel reads it.
        assert_eq!(read_v6_edited(|b| b[8] = 0x03), vec![Ok(Record::V6(v6_conn()))]);
        assert_eq!(err(|b| b[8] = 0x04), Error::BadRecordType { kind: 4 });
        // Asked for the other family, a record is refused, never misread.
        let record = ConnRecord::new_checked(&V6_RECORD[HEADER_LEN..]).unwrap();
        assert_eq!(ConnRepr::<Ipv4Addr>::parse(&record), Err(Error::BadRecordType { kind: 1 }));
        let record = ConnRecord::new_checked(&ONE_RECORD[HEADER_LEN..]).unwrap();
        assert_eq!(ConnRepr::<Ipv6Addr>::parse(&record), Err(Error::BadRecordType { kind: 0 }));
    }

    #[test]
    fn an_ipv6_record_takes_the_stamp_first() {
        let mut buf = vec![0; 1500];
        let mut writer = DatagramWriter::new(&mut buf, 5).unwrap().stamped(Stamp { run: 1, number: 2 });
        writer.push(&Record::V6(v6_conn())).unwrap();
        let len = writer.finish();
        assert_eq!(len, 8 + 112);
        assert_eq!(&buf[8 + 2..8 + 4], &[0, 112], "ver_size counts the stamp");
        assert_eq!(stamp_of(&buf[..len]), Some(Stamp { run: 1, number: 2 }));
        assert_eq!(read(&buf[..len]).unwrap().1, vec![Ok(Record::V6(v6_conn()))]);
    }

    #[test]
    fn a_stamp_rides_on_the_first_record_and_leaves_the_records_as_they_were() {
        let mut buf = vec![0xaa; 1500];
        let stamp = Stamp { run: 0x6750_0000, number: 7 };
        let mut writer = DatagramWriter::new(&mut buf, 5).unwrap().stamped(stamp);
        writer.push(&plain_conn().into()).unwrap();
        writer.push(&plain_conn().into()).unwrap();
        let len = writer.finish();
        let datagram = &buf[..len];
        // 8 + (36 + 10, padded to 48) + 36.
        assert_eq!(len, 92);
        let first = &datagram[HEADER_LEN..HEADER_LEN + 46];
        assert_eq!(&first[2..4], &[0x00, 46], "ver_size counts the stamp");
        assert_eq!(&first[36..], &[0x62, 8, 0x67, 0x50, 0, 0, 0, 0, 0, 7], "type, length, run, number");
        let (h, records) = read(datagram).unwrap();
        assert_eq!(h.nr_conns, 2);
        assert_eq!(
            records,
            vec![Ok(plain_conn().into()), Ok(plain_conn().into())],
            "a receiver that does not know it skips it"
        );
        assert_eq!(stamp_of(datagram), Some(stamp));
        assert_eq!(stamp_of(&ONE_RECORD), None, "unstamped (a kernel IPVS master's)");
        assert_eq!(stamp_of(&ONE_RECORD[..20]), None, "unreadable reads as unstamped");
    }

    #[test]
    fn a_stamp_follows_another_of_an_earlier_run_or_an_earlier_number() {
        let at = |run, number| Stamp { run, number };
        assert!(at(10, 5).follows(at(10, 4)));
        assert!(!at(10, 4).follows(at(10, 4)), "the same datagram again: a replay");
        assert!(!at(10, 3).follows(at(10, 4)));
        assert!(at(11, 0).follows(at(10, 4)), "the sender restarted");
        assert!(!at(9, 1000).follows(at(10, 4)), "an earlier run");
        assert!(at(10, 2).follows(at(10, u32::MAX - 1)), "numbers wrap");
    }

    #[test]
    fn pads_records_to_four_bytes_between_them_not_after_the_last() {
        // 36 + 26 = 62 bytes: two zero bytes before the next record.
        let seq_only = ConnRepr { fnat_local: None, synproxy: None, ..options_conn() };
        assert_eq!(seq_only.record_len(), 62);
        let datagram = write(&[seq_only, plain_conn(), seq_only], 9);
        assert_eq!(datagram.len(), 8 + 62 + 2 + 36 + 62);
        assert_eq!(&datagram[70..72], &[0, 0]);
        assert_eq!(&datagram[72..76], &[0x00, 0x06, 0x00, 0x24]);
        let (h, records) = read(&datagram).unwrap();
        assert_eq!(h, HeaderRepr { syncid: 9, size: datagram.len() as u16, nr_conns: 3 });
        assert_eq!(records, vec![Ok(seq_only.into()), Ok(plain_conn().into()), Ok(seq_only.into())]);
    }

    #[test]
    fn refuses_bad_headers() {
        assert_eq!(read(&ONE_RECORD[..5]).unwrap_err(), Error::Truncated { part: Part::Header, needed: 8, len: 5 });
        assert_eq!(read(&ONE_RECORD[..43]).unwrap_err(), Error::SizeMismatch { size: 44, len: 43 });
        let mut v0 = ONE_RECORD;
        v0[0] = 1;
        assert_eq!(read(&v0).unwrap_err(), Error::NotVersion1 { reserved: 1, spare: 0 });
        let mut spare = ONE_RECORD;
        spare[7] = 1;
        assert_eq!(read(&spare).unwrap_err(), Error::NotVersion1 { reserved: 0, spare: 1 });
        let mut v2 = ONE_RECORD;
        v2[5] = 2;
        assert_eq!(read(&v2).unwrap_err(), Error::BadVersion { version: 2 });
    }

    /// Parses `ONE_RECORD` with `edit` applied to the bytes, size fixed up to the new length.
    fn read_edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<Result<Record, Error>> {
        let mut bytes = ONE_RECORD.to_vec();
        edit(&mut bytes);
        let size = bytes.len() as u16;
        Header::new_unchecked(&mut bytes[..]).set_size(size);
        read(&bytes).unwrap().1
    }

    #[test]
    fn refuses_bad_records() {
        let err = |edit: fn(&mut Vec<u8>)| read_edited(edit).pop().unwrap().unwrap_err();
        assert_eq!(err(|b| b.truncate(40)), Error::Truncated { part: Part::Record, needed: 36, len: 32 });
        assert_eq!(err(|b| b[10] = 0x10), Error::BadRecordVersion { version: 1 });
        assert_eq!(err(|b| b[11] = 35), Error::RecordTooShort { size: 35, needed: 36 });
        assert_eq!(err(|b| b[11] = 37), Error::RecordPastDatagram { size: 37, left: 36 });
        assert_eq!(err(|b| b[8] = 0x02), Error::BadRecordType { kind: 2 });
        // nr_conns says two, the bytes hold one.
        let records = read_edited(|b| b[4] = 2);
        assert_eq!(
            records,
            vec![Ok(plain_conn().into()), Err(Error::Truncated { part: Part::Record, needed: 36, len: 0 })]
        );
    }

    /// `ONE_RECORD` with `option` appended to its record.
    fn with_option(option: &[u8]) -> Vec<Result<Record, Error>> {
        let option = option.to_vec();
        read_edited(move |b| {
            b.extend_from_slice(&option);
            let size = (CONN_V4_LEN + option.len()) as u16;
            ConnRecord::new_unchecked(&mut b[HEADER_LEN..]).set_size(size);
        })
    }

    #[test]
    fn refuses_bad_options() {
        assert_eq!(with_option(&[0x20]), vec![Err(Error::Truncated { part: Part::OptionHeader, needed: 2, len: 1 })]);
        assert_eq!(with_option(&[0x20, 0]), vec![Err(Error::EmptyOption { kind: 0x20 })]);
        assert_eq!(with_option(&[0x20, 6, 1, 2]), vec![Err(Error::OptionPastRecord { kind: 0x20, len: 6, left: 2 })]);
        assert_eq!(
            with_option(&[0x21, 2, 1, 2]),
            vec![Err(Error::BadOptionLength { kind: 0x21, len: 2, expected: 8 })]
        );
        let fnat = [0x20, 6, 10, 1, 0, 250, 4, 1];
        assert_eq!(with_option(&[fnat, fnat].concat()), vec![Err(Error::DuplicateOption { kind: 0x20 })]);
        assert_eq!(with_option(&[0x05, 1, 0]), vec![Err(Error::UnknownOption { kind: 5 })]);
        assert_eq!(with_option(&[0x02, 1, 0]), vec![Err(Error::PersistenceEngineOption { kind: 2 })]);
    }

    #[test]
    fn skips_unknown_optional_options_and_knows_types_with_the_optional_bit() {
        let fnat = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 250), 1025);
        let expected = ConnRepr { fnat_local: Some(fnat), ..plain_conn() };
        assert_eq!(with_option(&[0x45, 2, 0xff, 0xff, 0x60, 6, 10, 1, 0, 250, 4, 1]), vec![Ok(expected.into())]);
    }

    #[test]
    fn a_record_only_error_skips_that_record_and_reads_the_next() {
        let mut bytes = write(&[plain_conn(), options_conn(), plain_conn()], 1);
        // Give the second record an unknown mandatory option.
        let second = HEADER_LEN + 36;
        bytes[second + 36] = 0x3f;
        let (_, records) = read(&bytes).unwrap();
        assert_eq!(
            records,
            vec![Ok(plain_conn().into()), Err(Error::UnknownOption { kind: 0x3f }), Ok(plain_conn().into())]
        );
        // A datagram-level error ends the walk.
        bytes[second + 36 + 1] = 0;
        let (_, records) = read(&bytes).unwrap();
        assert_eq!(records, vec![Ok(plain_conn().into()), Err(Error::EmptyOption { kind: 0x3f })]);
    }

    #[test]
    fn the_writer_refuses_what_does_not_fit_and_keeps_the_datagram_whole() {
        let mut small = [0u8; 7];
        assert_eq!(DatagramWriter::new(&mut small, 1).unwrap_err(), EmitError::NoRoom { needed: 8, left: 7 });
        let mut buf = [0u8; 8 + 62 + 36];
        let mut writer = DatagramWriter::new(&mut buf, 1).unwrap();
        let seq_only = ConnRepr { fnat_local: None, synproxy: None, ..options_conn() };
        writer.push(&seq_only.into()).unwrap();
        // The padding counts: 2 + 36 bytes needed, 36 left.
        assert_eq!(writer.push(&plain_conn().into()), Err(EmitError::NoRoom { needed: 38, left: 36 }));
        let len = writer.finish();
        assert_eq!(read(&buf[..len]).unwrap().1, vec![Ok(seq_only.into())]);

        let mut big = vec![0u8; MAX_DATAGRAM_LEN + 100];
        let mut writer = DatagramWriter::new(&mut big, 1).unwrap();
        for _ in 0..MAX_RECORDS {
            writer.push(&plain_conn().into()).unwrap();
        }
        assert_eq!(writer.push(&plain_conn().into()), Err(EmitError::TooManyRecords));
        assert_eq!(writer.nr_conns(), 255);
        let len = writer.finish();
        assert_eq!(len, 8 + 255 * 36);
        assert_eq!(read(&big[..len]).unwrap().1.len(), 255);
    }

    #[test]
    fn errors_say_what_and_which_value() {
        let cases = [
            (
                Error::Truncated { part: Part::Record, needed: 36, len: 20 },
                "truncated sync record: needs 36 bytes, 20 present",
            ),
            (Error::BadVersion { version: 3 }, "bad sync version 3, expected 1"),
            (Error::SizeMismatch { size: 44, len: 40 }, "sync header says the datagram is 44 bytes, 40 were received"),
            (
                Error::RecordTooShort { size: 70, needed: 72 },
                "sync record size 70 is shorter than its type's 72-byte fixed part",
            ),
            (Error::UnknownOption { kind: 5 }, "unknown mandatory sync option 0x05"),
            (
                Error::OptionPastRecord { kind: 0x20, len: 6, left: 2 },
                "sync option 0x20 of 6 bytes runs past its record (2 bytes left)",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
        assert_eq!(
            EmitError::NoRoom { needed: 38, left: 36 }.to_string(),
            "no room in the sync datagram: needs 38 bytes, 36 left"
        );
    }

    fn conn_strategy<A: SyncFamily>(
        addr: impl proptest::strategy::Strategy<Value = A::Socket> + Clone,
    ) -> impl proptest::strategy::Strategy<Value = ConnRepr<A>> {
        use proptest::prelude::*;
        let seq = || {
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(i, d, p)| SeqAdjust {
                init_seq: i,
                delta: d,
                previous_delta: p,
            })
        };
        (
            (
                any::<u8>(),
                any::<u32>(),
                any::<u16>(),
                addr.clone(),
                addr.clone(),
                addr.clone(),
                any::<u32>(),
                any::<u32>(),
            ),
            proptest::option::of((seq(), seq()).prop_map(|(in_seq, out_seq)| SeqData { in_seq, out_seq })),
            proptest::option::of(addr),
            proptest::option::of(
                (any::<u32>(), any::<u32>()).prop_map(|(seq_delta, ts_delta)| SynProxyDeltas { seq_delta, ts_delta }),
            ),
        )
            .prop_map(
                |(
                    (protocol, flags, state, client, virtual_service, real_server, fwmark, timeout_secs),
                    seq_data,
                    fnat_local,
                    synproxy,
                )| {
                    ConnRepr {
                        protocol,
                        flags,
                        state,
                        client,
                        virtual_service,
                        real_server,
                        fwmark,
                        timeout_secs,
                        seq_data,
                        fnat_local,
                        synproxy,
                    }
                },
            )
    }

    /// Records of both families.
    fn record_strategy() -> impl proptest::strategy::Strategy<Value = Record> {
        use proptest::prelude::*;
        let v4 = (any::<u32>(), any::<u16>()).prop_map(|(a, p)| SocketAddrV4::new(Ipv4Addr::from(a), p));
        let v6 = (any::<u128>(), any::<u16>()).prop_map(|(a, p)| SocketAddrV6::new(Ipv6Addr::from(a), p, 0, 0));
        prop_oneof![
            conn_strategy::<Ipv4Addr>(v4).prop_map(Record::V4),
            conn_strategy::<Ipv6Addr>(v6).prop_map(Record::V6)
        ]
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), fix_header: bool) {
            // Half the cases get a valid header, so the record walk sees arbitrary records.
            if fix_header && bytes.len() >= HEADER_LEN {
                let size = bytes.len() as u16;
                let mut header = Header::new_unchecked(&mut bytes[..]);
                header.set_size(size);
                header.set_reserved(0);
                header.set_spare(0);
                header.set_version(VERSION);
            }
            if let Ok((_, records)) = parse(&bytes) {
                for record in records {
                    let _ = record;
                }
            }
        }

        #[test]
        fn emit_then_parse_is_identity(conns in proptest::collection::vec(record_strategy(), 0..20), syncid: u8) {
            let datagram = write(&conns, syncid);
            let (header, records) = read(&datagram).unwrap();
            proptest::prop_assert_eq!(header, HeaderRepr { syncid, size: datagram.len() as u16, nr_conns: conns.len() as u8 });
            let records: Vec<Record> = records.into_iter().map(Result::unwrap).collect();
            proptest::prop_assert_eq!(records, conns);
        }
    }
}
