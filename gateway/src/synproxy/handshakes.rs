//! The proxied handshakes one worker has open: from the client's validated
//! ACK until the real server answers the SYN the gateway sent for it.
//!
//! A slab preallocated to a fixed capacity with a free list, so opening and
//! closing a handshake never allocates; its slot number rides in the
//! connection entry (`conn::Proxy::Handshake`), so the server's SYN-ACK finds
//! it with the connection lookup it needs anyway. A full slab refuses new
//! handshakes (the client's ACK is dropped and counted; the client resends
//! it or its data, which carries the same cookie).
//!
//! Each handshake keeps a copy of the client's ACK: it is what the SYN to
//! the server is rebuilt from for a retransmission, and, shifted into the
//! server's numbering, the ACK that completes the server's handshake. Up to
//! [`HELD_PER_HANDSHAKE`] more client packets (data sent before the server
//! answered) wait with it.

use crate::conn::ConnId;
use crate::wire::Ipv4Meta;

use super::{ClientAck, Decoded};

/// Client packets one handshake holds besides the client's ACK.
pub const HELD_PER_HANDSHAKE: usize = 4;

/// A client packet and its classification (`M`: [`Ipv4Meta`] or
/// `Ipv6Meta`, so a slab holds one family's handshakes).
pub type Held<F, M = Ipv4Meta> = (F, M);

/// One proxied handshake waiting for the server.
pub struct Handshake<F, M = Ipv4Meta> {
    /// The connection; it names this slot in its entry (`conn::Proxy`)
    /// for as long as the handshake is open.
    pub conn: ConnId,
    /// What the client's ACK said and its cookie decoded to.
    pub ack: ClientAck,
    pub decoded: Decoded,
    /// The copy of the client's ACK.
    pub client_ack: Held<F, M>,
    /// The port the client's packets arrive on (where a RST to it leaves).
    pub in_port: u16,
    /// SYNs sent again so far, and the second the next one is due.
    pub retransmits: u8,
    pub due: u32,
    held: [Option<Held<F, M>>; HELD_PER_HANDSHAKE],
}

impl<F, M> Handshake<F, M> {
    /// A handshake whose SYN went out during second `now`, first resent at
    /// `now + 2`: the worker's clock counts whole seconds, so that is after
    /// one to two seconds (Linux's initial SYN timeout is one).
    pub fn new(conn: ConnId, ack: ClientAck, decoded: Decoded, client_ack: Held<F, M>, in_port: u16, now: u32) -> Self {
        Handshake {
            conn,
            ack,
            decoded,
            client_ack,
            in_port,
            retransmits: 0,
            due: now.saturating_add(2),
            held: Default::default(),
        }
    }

    /// Keeps a client packet until the server answers; gives it back when
    /// the handshake already holds as many as it may.
    pub fn hold(&mut self, packet: Held<F, M>) -> Result<(), Held<F, M>> {
        match self.held.iter_mut().find(|h| h.is_none()) {
            Some(free) => {
                *free = Some(packet);
                Ok(())
            }
            None => Err(packet),
        }
    }

    /// The client's ACK, then the held packets in the order they came.
    pub fn into_packets(self) -> impl Iterator<Item = Held<F, M>> {
        std::iter::once(self.client_ack).chain(self.held.into_iter().flatten())
    }

    /// Records a retransmission at `now` (a tick, at the turn of a second):
    /// the next is due after twice the previous wait (2, 4, 8 ... seconds,
    /// as a TCP SYN's).
    pub fn retransmitted(&mut self, now: u32) {
        self.retransmits = self.retransmits.saturating_add(1);
        self.due = now.saturating_add(1 << self.retransmits.min(16));
    }
}

/// The most handshakes a worker may keep open: each slot (a couple of
/// hundred bytes with its held SYN's handle) is allocated at start, so this
/// bounds that allocation at a few hundred MB per worker.
pub const MAX_HANDSHAKES: u32 = 1 << 20;

/// A worker's open handshakes.
pub struct Handshakes<F, M = Ipv4Meta> {
    slots: Vec<Option<Handshake<F, M>>>,
    free: Vec<u32>,
}

impl<F, M> Handshakes<F, M> {
    /// Room for `capacity` handshakes, allocated now.
    pub fn new(capacity: u32) -> Self {
        Handshakes { slots: (0..capacity).map(|_| None).collect(), free: (0..capacity).rev().collect() }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Files a handshake; a full slab gives it back.
    pub fn insert(&mut self, h: Handshake<F, M>) -> Result<u32, Handshake<F, M>> {
        let Some(slot) = self.free.pop() else { return Err(h) };
        self.slots[slot as usize] = Some(h);
        Ok(slot)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Handshake<F, M>> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    pub fn remove(&mut self, slot: u32) -> Option<Handshake<F, M>> {
        let h = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(h)
    }

    /// The slots whose retransmission is due at `now`, into `out` (cleared
    /// first; a buffer the caller keeps, so a tick does not allocate).
    pub fn due(&self, now: u32, out: &mut Vec<u32>) {
        out.clear();
        if self.is_empty() {
            return;
        }
        out.extend(
            self.slots
                .iter()
                .enumerate()
                .filter(|(_, h)| h.as_ref().is_some_and(|h| h.due <= now))
                .map(|(i, _)| i as u32),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::flags;
    use crate::xmit::test_support::{meta_of, tcp_frame, CLIENT, VIP};

    fn meta() -> Ipv4Meta {
        meta_of(&tcp_frame((CLIENT, 40000), (VIP, 80), 2, 3, flags::ACK, &[], b""))
    }

    fn handshake(conn: ConnId, now: u32) -> Handshake<u32> {
        let ack = ClientAck { isn: 1, cookie: 2, window: 3, timestamps: None };
        let decoded = Decoded { mss: 1460, wscale: None, sack_permitted: false, timestamps: false };
        Handshake::new(conn, ack, decoded, (100, meta()), 0, now)
    }

    #[test]
    fn slots_are_reused_and_a_full_slab_refuses() {
        let mut hs = Handshakes::new(2);
        let a = hs.insert(handshake(1, 0)).ok().unwrap();
        let b = hs.insert(handshake(2, 0)).ok().unwrap();
        assert_ne!(a, b);
        assert!(hs.is_full());
        assert_eq!(hs.insert(handshake(3, 0)).err().map(|h| h.conn), Some(3));
        assert_eq!(hs.remove(a).map(|h| h.conn), Some(1));
        assert_eq!(hs.remove(a).map(|h| h.conn), None, "a slot is removed once");
        assert_eq!(hs.insert(handshake(4, 0)).ok(), Some(a));
        assert_eq!(hs.get_mut(b).map(|h| h.conn), Some(2));
        assert!(hs.get_mut(7).is_none());
        assert_eq!(hs.len(), 2);
    }

    #[test]
    fn holds_a_bounded_number_of_packets_and_gives_them_back_in_order() {
        let mut h = handshake(1, 0);
        for i in 0..HELD_PER_HANDSHAKE as u32 {
            assert!(h.hold((i, meta())).is_ok());
        }
        assert_eq!(h.hold((99, meta())).map_err(|p| p.0), Err(99));
        let order: Vec<u32> = h.into_packets().map(|p| p.0).collect();
        assert_eq!(order, [100, 0, 1, 2, 3]);
    }

    #[test]
    fn retransmissions_back_off_and_come_due() {
        let mut hs = Handshakes::new(4);
        let slot = hs.insert(handshake(1, 10)).ok().unwrap();
        let mut due = Vec::new();
        hs.due(11, &mut due);
        assert!(due.is_empty(), "at least a whole second after the SYN");
        hs.due(12, &mut due);
        assert_eq!(due, [slot]);
        let h = hs.get_mut(slot).unwrap();
        h.retransmitted(12);
        assert_eq!((h.retransmits, h.due), (1, 14));
        h.retransmitted(14);
        assert_eq!((h.retransmits, h.due), (2, 18));
        hs.due(17, &mut due);
        assert!(due.is_empty());
        hs.due(18, &mut due);
        assert_eq!(due, [slot]);
    }
}
