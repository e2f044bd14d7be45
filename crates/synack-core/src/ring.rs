//! The allocation of a byte ring that is only as long as it has been
//! written, shared by the send buffer and the receive buffer: how it grows,
//! what a retired ring keeps, and how a new connection takes it over.
//!
//! A ring starts empty, grows by doubling from [`MIN_ALLOC`] bytes up to its
//! buffer's capacity as writes need room, and when its connection ends keeps
//! its allocation only if small ([`REUSE_MAX`] bytes or less), so that the
//! next connection can adopt it without a trip through the allocator while
//! a bulk transfer's megabytes go back at once.

use alloc::vec::Vec;

/// The largest allocation a retired buffer keeps for the next connection
/// (send or receive buffer), bytes.
pub(crate) const REUSE_MAX: usize = 512;

/// The smallest allocation of a ring, in bytes: from there it doubles as
/// data needs room, up to the buffer's capacity.
pub(crate) const MIN_ALLOC: usize = 64;

/// Makes indices below `need` (clamped to `capacity`) of `buf` exist: the
/// allocation doubles from [`MIN_ALLOC`] bytes and never goes past
/// `capacity`; new bytes are zero.
pub(crate) fn grow_ring(buf: &mut Vec<u8>, need: usize, capacity: usize) {
    let need = need.min(capacity);
    if buf.len() >= need {
        return;
    }
    if buf.capacity() < need {
        let target = need
            .max(buf.capacity().saturating_mul(2))
            .max(MIN_ALLOC)
            .min(capacity);
        buf.reserve_exact(target.saturating_sub(buf.len()));
    }
    buf.resize(need, 0);
}

/// Empties a retired ring, keeping its allocation only when small
/// ([`REUSE_MAX`] bytes or less) for [`adopt_ring`].
pub(crate) fn retire_ring(buf: &mut Vec<u8>) {
    buf.clear();
    if buf.capacity() > REUSE_MAX {
        *buf = Vec::new();
    }
}

/// Takes over the allocation of `old` (a retired ring) when `buf` has none
/// yet and it fits `capacity`: a new connection starts with the memory of
/// one that ended.
pub(crate) fn adopt_ring(buf: &mut Vec<u8>, old: &mut Vec<u8>, capacity: usize) {
    if buf.capacity() == 0 && old.capacity() <= capacity {
        *buf = core::mem::take(old);
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_doubling_from_min_alloc_up_to_capacity() {
        let mut buf = Vec::new();
        grow_ring(&mut buf, 10, 4096);
        assert_eq!((buf.len(), buf.capacity()), (10, MIN_ALLOC));
        assert!(buf.iter().all(|&b| b == 0), "new bytes are zero");
        grow_ring(&mut buf, MIN_ALLOC + 1, 4096);
        assert_eq!((buf.len(), buf.capacity()), (MIN_ALLOC + 1, 2 * MIN_ALLOC));
        grow_ring(&mut buf, 3000, 4096);
        assert_eq!(buf.len(), 3000);
        assert!(buf.capacity() >= 3000 && buf.capacity() <= 4096);
        grow_ring(&mut buf, 10_000, 4096);
        assert_eq!((buf.len(), buf.capacity()), (4096, 4096), "clamped");
    }

    #[test]
    fn growing_never_shrinks_or_clears() {
        let mut buf = Vec::new();
        grow_ring(&mut buf, 100, 1000);
        buf[99] = 7;
        grow_ring(&mut buf, 50, 1000);
        assert_eq!((buf.len(), buf[99]), (100, 7));
    }

    #[test]
    fn small_capacity_caps_the_first_allocation() {
        let mut buf = Vec::new();
        grow_ring(&mut buf, 5, 16);
        assert_eq!((buf.len(), buf.capacity()), (5, 16));
        let mut none = Vec::new();
        grow_ring(&mut none, 5, 0);
        assert_eq!(none.capacity(), 0, "a zero-capacity ring allocates nothing");
    }

    #[test]
    fn retire_keeps_only_small_allocations() {
        let mut small = Vec::new();
        grow_ring(&mut small, 100, REUSE_MAX);
        retire_ring(&mut small);
        assert!(small.is_empty());
        assert!(small.capacity() > 0 && small.capacity() <= REUSE_MAX);
        let mut big = Vec::new();
        grow_ring(&mut big, REUSE_MAX + 1, 1 << 20);
        retire_ring(&mut big);
        assert_eq!((big.len(), big.capacity()), (0, 0));
    }

    #[test]
    fn adopt_takes_a_fitting_allocation_once() {
        let mut old = Vec::new();
        grow_ring(&mut old, 100, 4096);
        retire_ring(&mut old);
        let kept = old.capacity();
        let mut new = Vec::new();
        adopt_ring(&mut new, &mut old, 4096);
        assert_eq!((new.len(), new.capacity(), old.capacity()), (0, kept, 0));
        // A ring that already has memory does not take another's.
        let mut other = Vec::with_capacity(64);
        adopt_ring(&mut new, &mut other, 4096);
        assert_eq!((new.capacity(), other.capacity()), (kept, 64));
    }

    #[test]
    fn adopt_refuses_an_allocation_beyond_capacity() {
        let mut old = Vec::with_capacity(256);
        let mut new = Vec::new();
        adopt_ring(&mut new, &mut old, 100);
        assert_eq!((new.capacity(), old.capacity()), (0, 256));
    }
}
