//! The packets of a connection that sends a PROXY protocol header: on the
//! worker's out-of-line path (`Worker::forward_rare`), so the forwarding path
//! of every other connection pays one flag test for it, shared with the SYN
//! proxy's handshake (3 instructions a packet, `measure_pipeline.sh`).
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

use super::{Arrival, Io, Leg, Worker};
use crate::conn::proxy_protocol::{repr, Inbound};
use crate::conn::{Direction, Proxy};
use crate::frame::Frame;
use crate::net::NextHop;
use crate::wire::proxy_protocol::MAX_LEN;
use crate::wire::{tcp, DropReason, Ipv4Meta};
use crate::worker::counters::Discard;
use crate::xmit::proxy_header::{header_segment, insert_header, raise_ack, strip_payload, HeaderRefused};
use crate::xmit::{Egress, Endpoints, Shift};

impl<F: Frame> Worker<F> {
    /// Rewrites and sends a packet of a connection with a PROXY header
    /// (inlined into the out-of-line path of such connections).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn forward_with_header(
        &mut self,
        mut frame: F,
        mut meta: Ipv4Meta,
        Leg { id, dir }: Leg,
        proxy: Proxy,
        endpoints: Endpoints,
        hop: NextHop,
        egress: Egress,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let mut shift = match proxy {
            Proxy::Deltas { seq, ts } => Shift::proxied(seq, ts.unwrap_or(0), dir),
            _ => Shift::NONE,
        };
        let Some((seq, ack)) = seq_and_ack(&frame, &meta) else {
            return self.discard(frame, DropReason::Truncated.into(), io);
        };
        let c = self.director.conn(id);
        let (client, virtual_service) = ((c.client, c.cport), (c.vaddr, c.vport));
        let Some(h) = self.director.header_mut(id) else {
            // The flag is only set with the state in place.
            return self.discard(frame, Discard::NoConnection, io);
        };
        let (version, len) = (h.version(), h.len());
        let mut carry = false;
        match dir {
            Direction::In => match h.inbound(seq, meta.tcp_flags) {
                // A SYN's data (TCP Fast Open) would reach the server before
                // the header: it goes without, and the client sends it again.
                Inbound::Pass if usize::from(meta.l4_len) > tcp_header_len(&frame, &meta) => {
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
                let o = h.outbound(ack, meta.tcp_flags);
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
        if let Err(e) = endpoints.translate(&mut frame, &mut meta, shift, false, egress) {
            return self.refuse(frame, &meta, e, at, io);
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
                        self.send_via(own, hop, at.now, io);
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
        self.send_via(frame, hop, at.now, io);
    }
}

/// The TCP header's length of the segment `meta` describes (0 if the frame
/// is too short to say: then nothing is taken for payload).
fn tcp_header_len<F: Frame>(frame: &F, meta: &Ipv4Meta) -> usize {
    let at = meta.l4_offset() + tcp::offset::DATA_OFFSET;
    frame.data().get(at).map_or(usize::from(meta.l4_len), |b| usize::from(b >> 4) * 4)
}

/// The TCP sequence and acknowledgment numbers of the segment `meta` describes.
fn seq_and_ack<F: Frame>(frame: &F, meta: &Ipv4Meta) -> Option<(u32, u32)> {
    let l4 = meta.l4_offset();
    let b = frame.data().get(l4 + tcp::offset::SEQ..l4 + tcp::offset::ACK + 4)?;
    Some((u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]])))
}
