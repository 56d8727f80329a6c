//! The counter every per-worker statistic is made of.
//!
//! Each counter has exactly one writer (the worker that owns it), so an
//! increment is a relaxed load and a relaxed store: no locked
//! read-modify-write on the packet path. Readers on the control thread see a
//! value at most a few packets old.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Replaces the value (a gauge). Only the owning worker may call this.
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
