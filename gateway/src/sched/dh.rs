//! Destination hashing (IPVS `ip_vs_dh.c`): 256 buckets, bucket `i` holding server
//! `i mod n` in list order; a connection goes to the bucket of its destination address,
//! `hash_32(addr, 8)`. The same destination always reaches the same server while the list is
//! unchanged. An unavailable server yields no server at all, as in IPVS: hashing must not
//! silently move a destination.

use std::net::IpAddr;

use super::hash::{addr_fold, hash_32};
use super::NO_DEST;
use crate::model::snapshot::Dest;

pub(super) const TAB_BITS: u32 = 8;
pub(super) const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug, Clone)]
pub struct DestHash {
    buckets: Box<[u16; TAB_SIZE]>,
}

impl DestHash {
    pub fn new(dests: &[Dest]) -> DestHash {
        let mut buckets = Box::new([NO_DEST; TAB_SIZE]);
        if !dests.is_empty() {
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = (i % dests.len()) as u16;
            }
        }
        DestHash { buckets }
    }

    pub fn bucket(&self, addr: IpAddr) -> u16 {
        self.buckets[hash_32(addr_fold(addr), TAB_BITS) as usize]
    }

    pub fn pick(&self, dests: &[Dest], dst: IpAddr) -> Option<usize> {
        let i = self.bucket(dst) as usize;
        dests.get(i).filter(|d| d.is_available()).map(|_| i)
    }
}

#[cfg(test)]
mod tests {
    use crate::conn::FlowKey;
    use crate::model::{Protocol, SchedulerKind};
    use crate::sched::testutil::*;
    use crate::sched::Scheduler;
    use std::net::Ipv4Addr;

    #[test]
    fn stable_mapping_by_destination() {
        let snap = service(SchedulerKind::Dh, &[1, 1, 1]);
        let svc = snap.service(0);
        let mut s = Scheduler::new(svc);
        let f = |dst: u32, src: u32| FlowKey {
            proto: Protocol::Tcp,
            src: Ipv4Addr::from(src),
            sport: 1000,
            dst: Ipv4Addr::from(dst),
            dport: 80,
        };
        // Bucket hash_32(0x0a000001, 8) holds server (bucket mod 3).
        let h = (0x0a00_0001u32.wrapping_mul(0x61c8_8647) >> 24) as usize;
        assert_eq!(s.pick(svc, &f(0x0a00_0001, 1), 0), Some(h % 3));
        for dst in 0..200u32 {
            let first = s.pick(svc, &f(dst, 1), 0);
            for src in 2..5 {
                assert_eq!(s.pick(svc, &f(dst, src), 0), first, "source does not matter");
            }
        }
        let used: std::collections::HashSet<_> = (0..200u32).filter_map(|d| s.pick(svc, &f(d * 7919, 1), 0)).collect();
        assert_eq!(used.len(), 3, "all servers used");
    }
}
