//! Fixed-capacity arrays on transparent huge pages, for the per-worker arrays that hold
//! millions of elements (the connection table's entries, index and PROXY header states).
//!
//! Why: a worker touches those arrays at random, one connection a packet. On 4 KiB pages a
//! table of 1M connections (~100 MB) spans 25 000 pages, ten times what the L2 TLB maps, so
//! nearly every lookup adds a page walk (itself a cache miss or two) to its two data
//! misses. On 2 MiB pages the same table is 50 pages, all in the TLB.
//!
//! How: an anonymous private mapping, its length rounded up to 2 MiB and its start 2 MiB
//! aligned (mapped 2 MiB longer, the ends unmapped), advised `MADV_HUGEPAGE`. The kernel
//! then backs each 2 MiB of it with one huge page at its first touch when transparent huge
//! pages are `always` or `madvise` (`/sys/kernel/mm/transparent_hugepage/enabled`), and
//! khugepaged collapses later what it could not get at fault time. Pages are still touched
//! as the array fills (a huge page's first touch zeroes 2 MiB: once per 32 768 IPv4
//! entries). Arrays under 2 MiB gain nothing and stay on the heap; if the mapping fails the
//! array is on the heap too, and if the advice is refused (a kernel without THP) on 4 KiB
//! pages: [`HugeVec::backing`] says which, and gatewayd logs it for each worker's tables.
//!
//! Why not `MAP_HUGETLB` (the reserved pool): those pages are DPDK's. Its mempools take
//! them at EAL init and what is left (~470 of 512 2 MiB pages on the reference machine) is
//! less than one worker's tables at 4M connections (~400 MB IPv4, ~650 MB IPv6). Tables
//! taking from the pool would fail at sizes that depend on what DPDK left, or, mapped
//! first, leave a later mempool (a port added at run time) without its memory; sizing the
//! reservation for them would pin gigabytes whether connections come or not. Transparent
//! huge pages need no reservation, fall back to small pages under memory fragmentation
//! instead of failing, and work the same in tests and CI.
//!
//! This is the only place the arrays' memory is handled raw; the rest of the gateway sees a
//! slice (`Deref<Target = [T]>`).

use std::alloc::{self, Layout};
use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

use rustix::mm::{self, Advice, MapFlags, ProtFlags};

/// A transparent huge page's size (x86-64, and arm64 with 4 KiB base pages).
pub const HUGE_PAGE: usize = 2 << 20;

/// Where a [`HugeVec`]'s memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// The global allocator: an array under [`HUGE_PAGE`], or one whose mapping failed.
    Heap,
    /// An anonymous mapping on 4 KiB pages: the kernel refused `MADV_HUGEPAGE` (built
    /// without transparent huge pages).
    Mapped,
    /// An anonymous mapping, 2 MiB aligned, advised `MADV_HUGEPAGE`: on huge pages as far
    /// as the kernel has them (none when THP is `never`, see [`transparent_huge_pages`]).
    HugePages,
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backing::Heap => "heap",
            Backing::Mapped => "4 KiB pages (MADV_HUGEPAGE refused)",
            Backing::HugePages => "transparent huge pages",
        })
    }
}

/// The system's transparent huge page mode (`always`, `madvise` or `never`: the selected
/// one of `/sys/kernel/mm/transparent_hugepage/enabled`), or `None` where the kernel has
/// none.
pub fn transparent_huge_pages() -> Option<String> {
    let modes = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = modes.find('[')? + 1;
    let end = start + modes[start..].find(']')?;
    Some(modes[start..end].to_string())
}

/// A fixed-capacity array: pushed into up to the capacity it was made with, never moved or
/// grown, dereferencing to the slice of what was pushed. Arrays of [`HUGE_PAGE`] bytes or
/// more are on transparent huge pages (see the module doc).
pub struct HugeVec<T> {
    ptr: NonNull<T>,
    len: usize,
    capacity: usize,
    /// With `capacity`, says what to free: the heap's layout, or the mapping's length
    /// ([`HugeVec::mapped`]).
    backing: Backing,
    _owns: PhantomData<T>,
}

// SAFETY: a HugeVec owns its elements like a Vec (nothing else points into its memory), so
// it may go to, or be shared with, another thread when its elements may.
unsafe impl<T: Send> Send for HugeVec<T> {}
// SAFETY: as for Send: `&HugeVec<T>` gives only `&T`.
unsafe impl<T: Sync> Sync for HugeVec<T> {}

impl<T> HugeVec<T> {
    /// An empty array of capacity 0, holding no memory.
    pub const fn new() -> HugeVec<T> {
        HugeVec { ptr: NonNull::dangling(), len: 0, capacity: 0, backing: Backing::Heap, _owns: PhantomData }
    }

    /// An empty array for `capacity` elements. Panics if they would not fit the address
    /// space; aborts, as `Vec` does, if the heap cannot hold a small one.
    pub fn with_capacity(capacity: usize) -> HugeVec<T> {
        let layout = Layout::array::<T>(capacity).expect("HugeVec capacity overflows the address space");
        let mut v = HugeVec::new();
        v.capacity = capacity;
        if layout.size() == 0 {
            return v;
        }
        if layout.size() >= HUGE_PAGE && layout.align() <= HUGE_PAGE {
            if let Some((ptr, backing)) = map(layout.size()) {
                (v.ptr, v.backing) = (ptr.cast(), backing);
                return v;
            }
        }
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { alloc::alloc(layout) };
        v.ptr = NonNull::new(ptr).unwrap_or_else(|| alloc::handle_alloc_error(layout)).cast();
        v
    }

    /// An array of `len` clones of `value`, full (its capacity is `len`).
    pub fn from_elem(value: T, len: usize) -> HugeVec<T>
    where
        T: Clone,
    {
        let mut v = HugeVec::with_capacity(len);
        for _ in 1..len {
            if v.push(value.clone()).is_err() {
                unreachable!("HugeVec::from_elem pushed past the capacity it made");
            }
        }
        if len > 0 && v.push(value).is_err() {
            unreachable!("HugeVec::from_elem pushed past the capacity it made");
        }
        v
    }

    /// Appends `value` and returns its index, or hands it back if the array is full.
    #[inline(always)]
    pub fn push(&mut self, value: T) -> Result<usize, T> {
        if self.len == self.capacity {
            return Err(value);
        }
        // SAFETY: `len < capacity`: the slot is inside the memory and holds no element;
        // `ptr` is aligned for T (the heap's layout, or a 2 MiB aligned mapping).
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(self.len - 1)
    }

    /// How many elements it can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Where its memory comes from.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// The bytes mapped at its start: its size rounded up to whole huge pages; 0 on the
    /// heap.
    fn mapped(&self) -> usize {
        match self.backing {
            Backing::Heap => 0,
            // Sized as `with_capacity` mapped it, which checked that it does not overflow.
            Backing::Mapped | Backing::HugePages => (size_of::<T>() * self.capacity).next_multiple_of(HUGE_PAGE),
        }
    }

    /// The address of its memory (for the tests, which look it up in `/proc/self/smaps`).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

/// Maps `bytes` rounded up to [`HUGE_PAGE`], aligned to it, and advises huge pages: the
/// start and the backing, or `None` if the mapping failed.
fn map(bytes: usize) -> Option<(NonNull<c_void>, Backing)> {
    let len = bytes.checked_next_multiple_of(HUGE_PAGE)?;
    let over = len.checked_add(HUGE_PAGE)?;
    // SAFETY: a new private anonymous mapping at an address the kernel picks: it replaces
    // nothing and nothing else refers to it.
    let base =
        unsafe { mm::mmap_anonymous(ptr::null_mut(), over, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE) }
            .ok()?;
    let head = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
    // SAFETY: `head < HUGE_PAGE`: the start stays inside the mapping of `over` bytes.
    let start = unsafe { base.cast::<u8>().add(head) }.cast::<c_void>();
    let tail = over - len - head;
    // Unmapping the ends cannot fail but by a kernel out of memory for its own accounting;
    // then they stay mapped, untouched, which costs address space only.
    if head > 0 {
        // SAFETY: the `head` bytes before `start`: page aligned (the kernel's `base` and
        // `head`, a difference of page multiples), part of the mapping just made, unused.
        let _ = unsafe { mm::munmap(base, head) };
    }
    if tail > 0 {
        // SAFETY: the `tail` bytes after the `len` kept: page aligned likewise, part of the
        // mapping just made, unused.
        let _ = unsafe { mm::munmap(start.cast::<u8>().add(len).cast(), tail) };
    }
    // SAFETY: advice on the `len` bytes kept of the mapping just made, which hold nothing.
    let backing = match unsafe { mm::madvise(start, len, Advice::LinuxHugepage) } {
        Ok(()) => Backing::HugePages,
        Err(_) => Backing::Mapped,
    };
    Some((NonNull::new(start)?, backing))
}

impl<T> Drop for HugeVec<T> {
    fn drop(&mut self) {
        // SAFETY: the first `len` elements are initialised and owned by `self`, which is
        // going: nothing reads them after this.
        unsafe { ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len)) };
        let mapped = self.mapped();
        if mapped > 0 {
            // SAFETY: the mapping `map` made for this array, whose elements are gone; a
            // failure (impossible for a whole mapping of ours) would only leak it.
            let _ = unsafe { mm::munmap(self.ptr.as_ptr().cast(), mapped) };
        } else if let Ok(layout) = Layout::array::<T>(self.capacity) {
            if layout.size() > 0 {
                // SAFETY: allocated by `with_capacity` with this very layout (the capacity
                // never changes).
                unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
            }
        }
    }
}

impl<T> Deref for HugeVec<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is non-null and aligned (dangling only with nothing to point at)
        // and its first `len` elements are initialised; the borrow of `self` covers them.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for HugeVec<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`, and the exclusive borrow of `self` makes this one unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Default for HugeVec<T> {
    fn default() -> HugeVec<T> {
        HugeVec::new()
    }
}

/// The shape, not the elements: the arrays hold millions.
impl<T> fmt::Debug for HugeVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HugeVec")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("backing", &self.backing)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[repr(C, align(64))]
    struct Line(#[allow(dead_code)] u64);
    #[repr(C, align(128))]
    struct TwoLines(#[allow(dead_code)] u64);

    #[test]
    fn pushes_up_to_capacity_and_refuses_beyond() {
        for capacity in [0, 1, 100, HUGE_PAGE / 8 + 1] {
            let mut v = HugeVec::<u64>::with_capacity(capacity);
            for i in 0..capacity {
                assert_eq!(v.push(i as u64), Ok(i));
            }
            assert_eq!(v.push(7), Err(7), "capacity {capacity}: full");
            assert_eq!(v.len(), capacity);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64), "capacity {capacity}: in order");
            v.iter_mut().for_each(|x| *x += 1);
            assert_eq!(v.last().copied(), capacity.checked_sub(1).map(|c| c as u64 + 1));
        }
    }

    #[test]
    fn small_arrays_stay_on_the_heap_large_ones_are_mapped_aligned() {
        assert_eq!(HugeVec::<u64>::with_capacity(1000).backing(), Backing::Heap);
        assert_eq!(HugeVec::<u64>::new().backing(), Backing::Heap);
        let v = HugeVec::<u64>::with_capacity(HUGE_PAGE / 8);
        assert_ne!(v.backing(), Backing::Heap, "a 2 MiB array is mapped");
        assert_eq!(v.addr() % HUGE_PAGE, 0, "on a huge page boundary");
        assert_eq!(v.mapped(), HUGE_PAGE);
        let v = HugeVec::<u64>::with_capacity(HUGE_PAGE / 8 + 1);
        assert_eq!(v.mapped(), 2 * HUGE_PAGE, "rounded up to whole huge pages");
    }

    #[test]
    fn elements_are_aligned_on_the_heap_and_mapped() {
        fn check<T>(v: &mut HugeVec<T>, make: impl Fn() -> T) {
            for _ in 0..3 {
                assert!(v.push(make()).is_ok());
            }
            for e in v.iter() {
                assert_eq!(e as *const T as usize % std::mem::align_of::<T>(), 0);
            }
        }
        for capacity in [3, 3 * HUGE_PAGE / 64] {
            check(&mut HugeVec::with_capacity(capacity), || Line(1));
            check(&mut HugeVec::with_capacity(capacity), || TwoLines(2));
        }
    }

    #[test]
    fn drop_runs_the_elements_destructors() {
        let counted = Arc::new(());
        for capacity in [10, HUGE_PAGE / 8] {
            let mut v = HugeVec::with_capacity(capacity);
            for _ in 0..10 {
                assert!(v.push(counted.clone()).is_ok());
            }
            // A refused element is handed back, not kept or dropped behind the caller's back.
            let mut full = HugeVec::with_capacity(1);
            assert!(full.push(counted.clone()).is_ok());
            let back = full.push(counted.clone()).expect_err("full");
            assert_eq!(Arc::strong_count(&counted), 13);
            drop((v, full, back));
            assert_eq!(Arc::strong_count(&counted), 1, "capacity {capacity}: every clone dropped");
        }
        let filled = HugeVec::from_elem(counted.clone(), 5);
        assert_eq!((filled.len(), filled.capacity(), Arc::strong_count(&counted)), (5, 5, 6));
        drop(filled);
        assert_eq!(Arc::strong_count(&counted), 1);
    }

    #[test]
    fn from_elem_fills() {
        let v = HugeVec::from_elem(u64::MAX, 3 * HUGE_PAGE / 8);
        assert_eq!(v.len(), 3 * HUGE_PAGE / 8);
        assert!(v.iter().all(|&s| s == u64::MAX));
        assert!(HugeVec::from_elem(1u8, 0).is_empty());
    }

    /// The kernel's view of the mapping at `addr` (its block of `/proc/self/smaps`).
    fn smaps_of(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut block: Option<String> = None;
        for line in smaps.lines() {
            let header = line
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?)));
            match (header, &mut block) {
                (Some((start, end)), _) => {
                    if block.is_some() {
                        break;
                    }
                    if (start..end).contains(&addr) {
                        block = Some(String::new());
                    }
                }
                (_, Some(b)) => {
                    b.push_str(line);
                    b.push('\n');
                }
                _ => {}
            }
        }
        block
    }

    fn field(block: &str, name: &str) -> Option<u64> {
        let line = block.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].trim_start_matches(':').split_whitespace().next()?.parse().ok()
    }

    /// What the kernel guarantees after `MADV_HUGEPAGE` on a 2 MiB aligned anonymous
    /// mapping when THP is not `never`: the region is eligible (`THPeligible: 1`). Whether
    /// a fault actually gets a huge page depends on free memory; with `always` or
    /// `madvise` on this machine it does, which is reported, not asserted.
    #[test]
    fn a_large_array_is_eligible_for_huge_pages() {
        let mode = transparent_huge_pages();
        let mut v = HugeVec::<u64>::with_capacity(4 * HUGE_PAGE / 8);
        match mode.as_deref() {
            None => {
                eprintln!("skipped: this kernel has no transparent huge pages");
                return;
            }
            Some("never") => {
                eprintln!("skipped: transparent huge pages are `never` here");
                return;
            }
            Some(_) => {}
        }
        assert_eq!(v.backing(), Backing::HugePages);
        for i in 0..v.capacity() {
            assert!(v.push(i as u64).is_ok());
        }
        let Some(block) = smaps_of(v.addr()) else {
            eprintln!("skipped: no /proc/self/smaps");
            return;
        };
        assert_eq!(field(&block, "THPeligible"), Some(1), "smaps of the array:\n{block}");
        eprintln!(
            "THP {}: AnonHugePages {} kB of {} kB",
            mode.unwrap_or_default(),
            field(&block, "AnonHugePages").unwrap_or(0),
            v.capacity() * 8 / 1024
        );
    }
}
