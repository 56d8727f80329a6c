//! Source hashing (IPVS `ip_vs_sh.c`): 256 buckets filled in list order, each server taking
//! as many consecutive buckets as its weight per round (a weight-0 server still takes one,
//! and is then skipped at pick time, exactly as in IPVS); a connection goes to the bucket of
//! its source address, `hash_32(addr, 8)`. Like dh, an unavailable server yields no server.

use std::net::IpAddr;

use super::dh::{TAB_BITS, TAB_SIZE};
use super::hash::{addr_fold, hash_32};
use super::NO_DEST;
use crate::model::snapshot::Dest;

#[derive(Debug, Clone)]
pub struct SourceHash {
    buckets: Box<[u16; TAB_SIZE]>,
}

impl SourceHash {
    pub fn new(dests: &[Dest]) -> SourceHash {
        let mut buckets = Box::new([NO_DEST; TAB_SIZE]);
        if !dests.is_empty() {
            let (mut p, mut count) = (0usize, 0u32);
            for b in buckets.iter_mut() {
                *b = p as u16;
                count += 1;
                if count >= dests[p].weight() {
                    p = (p + 1) % dests.len();
                    count = 0;
                }
            }
        }
        SourceHash { buckets }
    }

    pub fn bucket(&self, addr: IpAddr) -> u16 {
        self.buckets[hash_32(addr_fold(addr), TAB_BITS) as usize]
    }

    pub fn pick(&self, dests: &[Dest], src: IpAddr) -> Option<usize> {
        let i = self.bucket(src) as usize;
        dests.get(i).filter(|d| d.is_available()).map(|_| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;
    use crate::sched::Prepared;

    #[test]
    fn weighted_buckets_and_stable_mapping() {
        let snap = service(SchedulerKind::Sh, &[3, 1]);
        let Some(Prepared::Sh(t)) = snap.service(0).prepared() else { panic!("no sh table") };
        // Weight 3 then 1: buckets 0,0,0,1,0,0,0,1,...
        assert_eq!(&t.buckets[..8], &[0, 0, 0, 1, 0, 0, 0, 1]);
        let share = t.buckets.iter().filter(|&&b| b == 0).count();
        assert_eq!(share, 192);
        let dests = snap.service(0).dests();
        for i in 0..100u32 {
            let a = IpAddr::V4(i.wrapping_mul(2_654_435_761).into());
            assert_eq!(t.pick(dests, a), t.pick(dests, a));
            assert_eq!(t.pick(dests, a), Some(t.bucket(a) as usize));
        }
    }
}
