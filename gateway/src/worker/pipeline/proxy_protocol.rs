//! The packets of a connection that sends a PROXY protocol header, IPv4 or
//! IPv6: on the worker's out-of-line path (`Worker::forward_rare`,
//! `forward_rare6`), so the forwarding path of every other connection pays
//! one flag test for it, shared with the SYN proxy's handshake (3
//! instructions a packet, `measure_pipeline.sh`).
//!
//! [`crate::conn::proxy_protocol`] says what each segment gets (the header,
//! a shift, or nothing); this applies it together with the SYN proxy's
//! deltas (which shift the server's numbers, the header the client's: the
//! two never edit the same field), through the same translation as every
//! other packet, then puts the header in:
//! - in front of the segment's payload when it fits the egress MTU;
//! - else alone in a segment of its own, sent first, the client's segment
//!   following shifted past it (a first segment at full MSS). No frame for it:
//!   the client's segment is dropped and counted, and its retransmission
//!   tries again.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::egress::Resolved;
use super::{Arrival, Io, Leg, Worker};
use crate::conn::director::Director;
use crate::conn::key::Family;
use crate::conn::proxy_protocol::{repr, Inbound};
use crate::conn::{Direction, Proxy};
use crate::frame::Frame;
use crate::net::FamilyAddr;
use crate::wire::proxy_protocol::{ProxyAddr, MAX_LEN};
use crate::wire::{tcp, DropReason, Ipv4Meta, Ipv6Meta};
use crate::worker::counters::Discard;
use crate::xmit::proxy_header::{header_segment, insert_header, raise_ack, strip_payload, HeaderRefused, SegmentMeta};
use crate::xmit::{Egress, Endpoints, Shift, ToaOutcome, XmitError};

/// What the header's path takes of a family, implemented by its meta: the
/// family's director, its rewrite, and how a packet leaves or is refused
/// (IPv4's and IPv6's, [`super::ipv6`]). The path itself is one, each
/// family's a monomorphic copy.
pub(super) trait HeaderFamily: SegmentMeta {
    type Addr: Family + FamilyAddr + ProxyAddr;
    fn director<F: Frame>(w: &mut Worker<F>) -> &mut Director<Self::Addr>;
    fn translate<F: Frame>(
        endpoints: &Endpoints<Self::Addr>,
        frame: &mut F,
        meta: &mut Self,
        shift: Shift,
        egress: Egress,
    ) -> Result<ToaOutcome, XmitError>;
    fn send_resolved<F: Frame>(w: &mut Worker<F>, frame: F, out: Resolved<Self::Addr>, now: u32, io: &mut impl Io<F>);
    fn refuse<F: Frame>(w: &mut Worker<F>, frame: F, received: &Self, e: XmitError, at: Arrival, io: &mut impl Io<F>);
}

impl HeaderFamily for Ipv4Meta {
    type Addr = Ipv4Addr;
    #[inline(always)]
    fn director<F: Frame>(w: &mut Worker<F>) -> &mut Director<Ipv4Addr> {
        &mut w.director
    }
    #[inline(always)]
    fn translate<F: Frame>(
        endpoints: &Endpoints<Ipv4Addr>,
        frame: &mut F,
        meta: &mut Self,
        shift: Shift,
        egress: Egress,
    ) -> Result<ToaOutcome, XmitError> {
        endpoints.translate(frame, meta, shift, false, egress)
    }
    #[inline(always)]
    fn send_resolved<F: Frame>(w: &mut Worker<F>, frame: F, out: Resolved<Ipv4Addr>, now: u32, io: &mut impl Io<F>) {
        w.send_resolved(frame, out, now, io)
    }
    #[inline(always)]
    fn refuse<F: Frame>(w: &mut Worker<F>, frame: F, received: &Self, e: XmitError, at: Arrival, io: &mut impl Io<F>) {
        w.refuse(frame, received, e, at, io)
    }
}

impl HeaderFamily for Ipv6Meta {
    type Addr = Ipv6Addr;
    #[inline(always)]
    fn director<F: Frame>(w: &mut Worker<F>) -> &mut Director<Ipv6Addr> {
        &mut w.v6.director
    }
    #[inline(always)]
    fn translate<F: Frame>(
        endpoints: &Endpoints<Ipv6Addr>,
        frame: &mut F,
        meta: &mut Self,
        shift: Shift,
        egress: Egress,
    ) -> Result<ToaOutcome, XmitError> {
        endpoints.translate(frame, meta, shift, false, egress)
    }
    #[inline(always)]
    fn send_resolved<F: Frame>(w: &mut Worker<F>, frame: F, out: Resolved<Ipv6Addr>, now: u32, io: &mut impl Io<F>) {
        w.send_resolved6(frame, out, now, io)
    }
    #[inline(always)]
    fn refuse<F: Frame>(w: &mut Worker<F>, frame: F, received: &Self, e: XmitError, at: Arrival, io: &mut impl Io<F>) {
        w.refuse6(frame, received, e, at, io)
    }
}

impl<F: Frame> Worker<F> {
    /// Rewrites and sends a packet of a connection with a PROXY header, of
    /// either family (inlined into the out-of-line path of such connections).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn forward_with_header<M: HeaderFamily>(
        &mut self,
        mut frame: F,
        mut meta: M,
        Leg { id, dir }: Leg,
        proxy: Proxy,
        endpoints: Endpoints<M::Addr>,
        out: Resolved<M::Addr>,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let egress = out.egress;
        let mut shift = match proxy {
            Proxy::Deltas { seq, ts } => Shift::proxied(seq, ts.unwrap_or(0), dir),
            _ => Shift::NONE,
        };
        let Some((seq, ack)) = seq_and_ack(&frame, &meta) else {
            return self.discard(frame, DropReason::Truncated.into(), io);
        };
        let director = M::director(self);
        let c = director.conn(id);
        let (client, virtual_service) = ((c.client, c.cport), (c.vaddr, c.vport));
        let Some(h) = director.header_mut(id) else {
            // The flag is only set with the state in place.
            return self.discard(frame, Discard::NoConnection, io);
        };
        let (version, len) = (h.version(), h.len());
        let mut carry = false;
        match dir {
            Direction::In => match h.inbound(seq, meta.tcp_flags()) {
                // A SYN's data (TCP Fast Open) would reach the server before
                // the header: it goes without, and the client sends it again.
                Inbound::Pass if meta.l4_len() > tcp_header_len(&frame, &meta) => {
                    if strip_payload(&mut frame, &mut meta).is_err() {
                        return self.discard(frame, DropReason::Truncated.into(), io);
                    }
                    self.counters.proxy_syn_data_stripped.inc();
                }
                Inbound::Pass => {}
                Inbound::Shift(n) => shift.seq = n,
                Inbound::CarryHeader => carry = true,
            },
            Direction::Out => {
                let o = h.outbound(ack, meta.tcp_flags());
                shift.ack = o.ack_delta;
                if let Some(to) = o.raise_ack_to {
                    if raise_ack(&mut frame, &meta, to).is_err() {
                        return self.discard(frame, DropReason::Truncated.into(), io);
                    }
                }
            }
        }
        // Too long with the header in it (or no room in front): the header
        // goes alone and this segment follows it, shifted.
        let alone =
            carry && (meta.ip_total_len() + len as usize > usize::from(egress.mtu) || frame.headroom() < len as usize);
        if alone {
            shift.seq = len;
        }
        if let Err(e) = M::translate(&endpoints, &mut frame, &mut meta, shift, egress) {
            return M::refuse(self, frame, &meta, e, at, io);
        }
        if carry {
            let mut buf = [0; MAX_LEN];
            let n = repr(version, client, virtual_service).emit(&mut buf);
            let header = &buf[..n];
            if alone {
                let Some(mut own) = io.alloc() else {
                    self.counters.proxy_headers_refused_no_mbuf.inc();
                    return self.discard(frame, Discard::NoMbuf, io);
                };
                match header_segment(&frame, &meta, seq, header, &mut own) {
                    Ok(_) => {
                        self.counters.proxy_headers_alone.inc();
                        M::send_resolved(self, own, out, at.now, io);
                    }
                    Err(_) => {
                        io.free(own);
                        self.counters.proxy_headers_refused_no_mbuf.inc();
                        return self.discard(frame, Discard::NoMbuf, io);
                    }
                }
            } else {
                match insert_header(&mut frame, &mut meta, header, egress.mtu, egress.offload) {
                    Ok(()) => self.counters.proxy_headers_inserted.inc(),
                    // Checked above: the MTU and the headroom allow it.
                    Err(HeaderRefused::ExceedsMtu { .. } | HeaderRefused::NoHeadroom) => {
                        return self.discard(frame, DropReason::NoRoom.into(), io);
                    }
                    Err(HeaderRefused::Malformed) => return self.discard(frame, DropReason::Truncated.into(), io),
                }
            }
        }
        M::send_resolved(self, frame, out, at.now, io);
    }
}

/// The TCP header's length of the segment `meta` describes (0 if the frame
/// is too short to say: then nothing is taken for payload).
fn tcp_header_len<F: Frame, M: SegmentMeta>(frame: &F, meta: &M) -> usize {
    let at = meta.l4_offset() + tcp::offset::DATA_OFFSET;
    frame.data().get(at).map_or(meta.l4_len(), |b| usize::from(b >> 4) * 4)
}

/// The TCP sequence and acknowledgment numbers of the segment `meta` describes.
fn seq_and_ack<F: Frame, M: SegmentMeta>(frame: &F, meta: &M) -> Option<(u32, u32)> {
    let l4 = meta.l4_offset();
    let b = frame.data().get(l4 + tcp::offset::SEQ..l4 + tcp::offset::ACK + 4)?;
    Some((u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]])))
}
