//! Persistence templates (`-p timeout -M netmask`): a client, taken at the netmask's
//! granularity, keeps reaching the real server it was first given while its template lives.
//!
//! IPVS semantics: the template is keyed by the service (so a port-0 service's template
//! covers every port of the VIP) and the masked client address; each connection made through
//! it pushes its expiry to `now + timeout`; it does not expire while connections it created
//! are alive; it dies early if its real server leaves the service. Quiescent (weight 0) and
//! overloaded servers keep their persistent clients, as in IPVS, whose templates only check
//! that the server still exists: weight 0 means "no *new* clients".
//!
//! Templates are per worker, like everything on the packet path (DESIGN.md invariant 1).
//! Persistence across a client's connections therefore holds when they reach the same
//! worker; configure RSS on the client side to hash addresses only (not ports) for
//! persistent services so that they do. The table is a preallocated slab with the same lazy
//! timer wheel as connections; its index is a `HashMap` preallocated to the capacity and
//! keyed with a random SipHash key, since clients choose their addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::counters::DestCounters;
use super::types::ServiceKey;
use crate::conn::timer::{Link, Timed, TimerWheel, NIL};

/// Index of a template in its worker's table.
pub type TemplateId = u32;

/// What a template is found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    pub service: ServiceKey,
    /// The client address under the service's netmask.
    pub client: IpAddr,
}

impl TemplateKey {
    /// The key for `client` of `service` with persistence netmask `netmask` (same family as
    /// the client; a mask of the other family keeps the whole address).
    pub fn new(service: ServiceKey, client: IpAddr, netmask: IpAddr) -> TemplateKey {
        let client = match (client, netmask) {
            (IpAddr::V4(c), IpAddr::V4(m)) => IpAddr::V4((u32::from(c) & u32::from(m)).into()),
            (IpAddr::V6(c), IpAddr::V6(m)) => IpAddr::V6((u128::from(c) & u128::from(m)).into()),
            (c, _) => c,
        };
        TemplateKey { service, client }
    }
}

#[derive(Debug, Clone)]
struct Template {
    key: TemplateKey,
    dest_addr: IpAddr,
    dest_port: u16,
    counters: Option<Arc<DestCounters>>,
    expires: u32,
    timeout: u32,
    /// Live connections created through this template.
    controlled: u32,
    /// Taken out of the index (its server left); freed when its connections are gone.
    orphan: bool,
    link: Link,
}

impl Timed for Template {
    fn link(&self) -> &Link {
        &self.link
    }
    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistStats {
    pub created: u64,
    pub expired: u64,
    /// Templates not created because the table was full (the connection goes on without).
    pub refused_full: u64,
}

#[derive(Debug)]
pub struct PersistTable {
    index: HashMap<TemplateKey, TemplateId>,
    slots: Vec<Template>,
    capacity: u32,
    free: u32,
    wheel: TimerWheel,
    stats: PersistStats,
}

impl PersistTable {
    pub fn new(capacity: u32, now: u32) -> PersistTable {
        PersistTable {
            index: HashMap::with_capacity(capacity as usize),
            slots: Vec::with_capacity(capacity as usize),
            capacity,
            free: NIL,
            wheel: TimerWheel::new(now),
            stats: PersistStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn stats(&self) -> PersistStats {
        self.stats
    }

    /// The live template of `key`, if any.
    pub fn find(&mut self, key: &TemplateKey, now: u32) -> Option<TemplateId> {
        let id = *self.index.get(key)?;
        let t = &self.slots[id as usize];
        if t.expires <= now && t.controlled == 0 {
            // Due but not yet reaped by `expire`: it is gone for the client already.
            self.wheel.disarm(&mut self.slots, id);
            self.free_slot(id);
            return None;
        }
        Some(id)
    }

    /// The real server a template points at.
    pub fn dest(&self, id: TemplateId) -> (IpAddr, u16) {
        let t = &self.slots[id as usize];
        (t.dest_addr, t.dest_port)
    }

    /// A new connection goes through template `id`: it now controls one more connection and
    /// lives at least `timeout` more seconds.
    pub fn hold(&mut self, id: TemplateId, timeout: u32, now: u32) {
        let t = &mut self.slots[id as usize];
        t.controlled += 1;
        t.timeout = timeout;
        t.expires = now.saturating_add(timeout);
    }

    /// A connection made through template `id` ended.
    pub fn release(&mut self, id: TemplateId) {
        let t = &mut self.slots[id as usize];
        t.controlled = t.controlled.saturating_sub(1);
    }

    /// Creates a template for `key` pointing at the server `dest_addr:dest_port`, expiring
    /// `timeout` seconds after its last use; `None` (counted) when the table is full. The
    /// caller then [`hold`](Self::hold)s it for the connection it creates.
    pub fn create(
        &mut self,
        key: TemplateKey,
        dest_addr: IpAddr,
        dest_port: u16,
        counters: &Arc<DestCounters>,
        timeout: u32,
        now: u32,
    ) -> Option<TemplateId> {
        if let Some(&old) = self.index.get(&key) {
            self.forget(old, now);
        }
        let t = Template {
            key,
            dest_addr,
            dest_port,
            counters: Some(Arc::clone(counters)),
            expires: now.saturating_add(timeout),
            timeout,
            controlled: 0,
            orphan: false,
            link: Link::default(),
        };
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.slots[id as usize].link.next;
            self.slots[id as usize] = t;
            id
        } else if (self.slots.len() as u32) < self.capacity {
            self.slots.push(t);
            self.slots.len() as u32 - 1
        } else {
            self.stats.refused_full += 1;
            return None;
        };
        counters.bind_template();
        self.index.insert(key, id);
        self.wheel.arm(&mut self.slots, id, now.saturating_add(timeout));
        self.stats.created += 1;
        Some(id)
    }

    /// Drops template `id` from the index (its server left the service); it is freed once
    /// the connections it created have ended.
    pub fn forget(&mut self, id: TemplateId, now: u32) {
        let t = &mut self.slots[id as usize];
        if t.orphan {
            return;
        }
        t.orphan = true;
        t.expires = now;
        let key = t.key;
        if self.index.get(&key) == Some(&id) {
            self.index.remove(&key);
        }
        self.wheel.advance_deadline(&mut self.slots, id, now);
    }

    /// Frees due templates that control no connection (at most `budget`); due templates
    /// still controlling connections are re-armed for another timeout, as IPVS does.
    pub fn expire(&mut self, now: u32, budget: usize) -> usize {
        let mut gone = 0;
        while gone < budget {
            let Some(id) = self.wheel.pop_due(&mut self.slots, now) else { break };
            let t = &mut self.slots[id as usize];
            if t.expires > now {
                let at = t.expires;
                self.wheel.arm(&mut self.slots, id, at);
            } else if t.controlled > 0 {
                t.expires = now.saturating_add(t.timeout.max(1));
                let at = t.expires;
                self.wheel.arm(&mut self.slots, id, at);
            } else {
                self.free_slot(id);
                gone += 1;
            }
        }
        self.stats.expired += gone as u64;
        gone
    }

    fn free_slot(&mut self, id: TemplateId) {
        let t = &mut self.slots[id as usize];
        if let Some(c) = t.counters.take() {
            c.unbind_template();
        }
        let key = t.key;
        if !t.orphan && self.index.get(&key) == Some(&id) {
            self.index.remove(&key);
        }
        t.link = Link { next: self.free, prev: NIL, armed: 0 };
        self.free = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn masked_key() {
        let svc = ServiceKey::tcp(ip("10.0.0.1"), 0);
        let a = TemplateKey::new(svc, ip("1.2.3.4"), ip("255.255.255.0"));
        let b = TemplateKey::new(svc, ip("1.2.3.200"), ip("255.255.255.0"));
        assert_eq!(a, b);
        assert_eq!(a.client, ip("1.2.3.0"));
        let v6 = TemplateKey::new(svc, ip("2001:db8::1:2"), ip("ffff:ffff:ffff:ffff::"));
        assert_eq!(v6.client, ip("2001:db8::"));
    }

    #[test]
    fn lives_while_used_or_controlling() {
        let c = Arc::new(DestCounters::default());
        let mut p = PersistTable::new(4, 0);
        let key = TemplateKey::new(ServiceKey::Fwmark(1), ip("1.2.3.4"), ip("255.255.255.255"));
        let id = p.create(key, ip("192.168.1.2"), 80, &c, 300, 0).unwrap();
        p.hold(id, 300, 0);
        assert_eq!(c.persistent(), 1);
        assert_eq!(p.find(&key, 100), Some(id));
        p.hold(id, 300, 100); // a second connection at 100: expiry 400
        assert_eq!(p.expire(399, 10), 0);
        assert_eq!(p.expire(1000, 10), 0, "still controls two connections");
        p.release(id);
        p.release(id);
        assert_eq!(p.find(&key, 1001), Some(id), "re-armed to 1300 when it came due at 1000");
        assert_eq!(p.expire(1300, 10), 1);
        assert_eq!(p.find(&key, 1300), None);
        assert_eq!(c.persistent(), 0);
    }

    #[test]
    fn forget_frees_after_connections_and_full_is_counted() {
        let c = Arc::new(DestCounters::default());
        let mut p = PersistTable::new(1, 0);
        let key = TemplateKey::new(ServiceKey::Fwmark(1), ip("1.2.3.4"), ip("255.255.255.255"));
        let other = TemplateKey { client: ip("5.6.7.8"), ..key };
        let id = p.create(key, ip("192.168.1.2"), 80, &c, 300, 0).unwrap();
        p.hold(id, 300, 0);
        assert_eq!(p.create(other, ip("192.168.1.2"), 80, &c, 300, 0), None);
        assert_eq!(p.stats().refused_full, 1);
        p.forget(id, 10);
        assert_eq!(p.find(&key, 10), None);
        assert_eq!(p.expire(20, 10), 0, "its connection is alive");
        p.release(id);
        assert_eq!(p.expire(400, 10), 1);
        assert!(p.create(other, ip("192.168.1.2"), 80, &c, 300, 400).is_some(), "slot reused");
        assert_eq!(c.persistent(), 1);
    }
}
