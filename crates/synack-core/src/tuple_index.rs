//! The 4-tuple index of the connection slab: a hash table whose buckets
//! are single cache lines, each holding up to seven entries of a 32-bit
//! hash and a slab slot.
//!
//! Why not a general hash table: with a hundred thousand connections open
//! the index is not in the cache when a segment arrives, and a lookup is
//! a chain of dependent loads. A table with separate control bytes and
//! entries (hashbrown's) costs two misses before the TCB's own: the
//! control group, then the entry. Here the hash tags and the slots sit on
//! the same line, so a lookup costs one miss before the TCB, on every
//! segment of every connection.
//!
//! Collisions: an entry whose home bucket is full goes to the next bucket
//! with room, and the full bucket is marked as having overflowed, so that
//! a lookup that does not find its key at home knows whether to go on.
//! Removing entries does not clear the mark (another overflowed entry may
//! still be further on); marks are cleared when the table is rebuilt,
//! which happens when it grows and when too many buckets carry one. The
//! hashes come from a keyed SipHash, so a remote host cannot choose
//! tuples that pile into one bucket.

use alloc::vec::Vec;

/// Entries per bucket: seven of eight bytes, and the bucket's own eight
/// bytes of bookkeeping, fill one 64-byte line.
const WAYS: usize = 7;

/// One cache line of the table.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// The kept hash of each entry in use.
    hash: [u32; WAYS],
    /// The slab slot of each entry in use.
    slot: [u32; WAYS],
    /// Entries in use: the first `len`.
    len: u32,
    /// Whether an entry whose home is this bucket was put in a later one.
    overflowed: bool,
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        hash: [0; WAYS],
        slot: [0; WAYS],
        len: 0,
        overflowed: false,
    };
}

/// The index: entries (hash, slot) in buckets, a power of two of them.
pub(crate) struct TupleIndex {
    buckets: Vec<Bucket>,
    /// Entries held.
    len: usize,
    /// Buckets whose overflow mark is set.
    marked: usize,
    /// Removals since the last rebuild: a rebuild (which reads every
    /// bucket) waits for as many as there are buckets, so that its cost is
    /// spread over them whatever the marks do.
    removed: usize,
}

impl TupleIndex {
    /// An empty index (no memory until the first insert).
    pub fn new() -> Self {
        TupleIndex {
            buckets: Vec::new(),
            len: 0,
            marked: 0,
            removed: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The home bucket of `hash`: a multiplication spreads the 32 kept
    /// bits over the word, and the top bits choose the bucket.
    fn home(&self, hash: u32) -> usize {
        let spread = u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (spread >> 32) as usize & (self.buckets.len() - 1)
    }

    /// The slot of the entry with `hash` for which `is_it` says yes.
    #[inline]
    pub fn find(&self, hash: u32, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            let n = bucket.len as usize;
            for i in 0..n.min(WAYS) {
                if bucket.hash[i] == hash && is_it(bucket.slot[i]) {
                    return Some(bucket.slot[i]);
                }
            }
            if !bucket.overflowed {
                return None;
            }
            b = (b + 1) & mask;
        }
        None
    }

    /// Starts fetching the home bucket of `hash` into the cache.
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        if let Some(bucket) = self.buckets.get(self.home_checked(hash)) {
            synack_wire::prefetch(bucket, 1);
        }
    }

    /// The home bucket, or 0 with no buckets.
    fn home_checked(&self, hash: u32) -> usize {
        if self.buckets.is_empty() {
            0
        } else {
            self.home(hash)
        }
    }

    /// The slot of the first entry at home with `hash`, unconfirmed (the
    /// key is not compared): what a prefetch aims at.
    #[inline]
    pub fn first_candidate(&self, hash: u32) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let bucket = &self.buckets[self.home(hash)];
        let n = (bucket.len as usize).min(WAYS);
        (0..n)
            .find(|&i| bucket.hash[i] == hash)
            .map(|i| bucket.slot[i])
    }

    /// Adds the entry (`hash`, `slot`); the caller makes sure no entry for
    /// `slot` is in the index already.
    pub fn insert(&mut self, hash: u32, slot: u32) {
        // Grow at an average of four entries a bucket: with seven ways, few
        // buckets overflow.
        if (self.len + 1) * 7 > self.buckets.len() * WAYS * 4 {
            let size = (self.buckets.len() * 2).max(4);
            self.rebuild(size);
        }
        self.place(hash, slot);
        self.len += 1;
    }

    /// Puts an entry in the first bucket from its home with room, marking
    /// the full ones passed.
    fn place(&mut self, hash: u32, slot: u32) {
        let mask = self.buckets.len() - 1;
        let mut b = self.home(hash);
        loop {
            let bucket = &mut self.buckets[b];
            let n = bucket.len as usize;
            if n < WAYS {
                bucket.hash[n] = hash;
                bucket.slot[n] = slot;
                bucket.len += 1;
                return;
            }
            if !bucket.overflowed {
                bucket.overflowed = true;
                self.marked += 1;
            }
            b = (b + 1) & mask;
        }
    }

    /// Removes the entry (`hash`, `slot`); returns whether it was there.
    pub fn remove(&mut self, hash: u32, slot: u32) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let mask = self.buckets.len() - 1;
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            let n = (bucket.len as usize).min(WAYS);
            if let Some(i) = (0..n).find(|&i| bucket.slot[i] == slot && bucket.hash[i] == hash) {
                // The last entry takes the freed place.
                bucket.hash[i] = bucket.hash[n - 1];
                bucket.slot[i] = bucket.slot[n - 1];
                bucket.len -= 1;
                self.len -= 1;
                // Stale marks make lookups of absent keys walk further:
                // start afresh once an eighth of the buckets carry one (and
                // as many removals as buckets were made since the last time).
                self.removed += 1;
                if self.marked * 8 > self.buckets.len() && self.removed >= self.buckets.len() {
                    self.rebuild(self.buckets.len());
                }
                return true;
            }
            if !bucket.overflowed {
                return false;
            }
            b = (b + 1) & mask;
        }
        false
    }

    /// Moves every entry into `size` fresh buckets (no marks).
    fn rebuild(&mut self, size: usize) {
        let old = core::mem::replace(&mut self.buckets, alloc::vec![Bucket::EMPTY; size]);
        self.marked = 0;
        self.removed = 0;
        for bucket in &old {
            for i in 0..(bucket.len as usize).min(WAYS) {
                self.place(bucket.hash[i], bucket.slot[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// A deterministic stream of pseudo-random numbers (xorshift).
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(core::mem::size_of::<Bucket>(), 64);
        assert_eq!(core::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn finds_what_was_inserted_and_nothing_removed() {
        let mut ix = TupleIndex::new();
        let mut model: BTreeMap<u32, u32> = BTreeMap::new();
        let mut next = rng(7);
        // Few distinct hashes, so that buckets fill, overflow and chain.
        for _ in 0..200_000 {
            let r = next();
            let slot = (r % 5_000) as u32;
            let hash = ((r >> 20) % 300) as u32;
            match model.get(&slot).copied() {
                Some(h) => {
                    assert!(ix.remove(h, slot));
                    model.remove(&slot);
                    assert_eq!(ix.find(h, |s| s == slot), None);
                }
                None => {
                    ix.insert(hash, slot);
                    model.insert(slot, hash);
                }
            }
            assert_eq!(ix.len(), model.len());
        }
        for (&slot, &h) in &model {
            assert_eq!(ix.find(h, |s| s == slot), Some(slot));
        }
        assert!(!ix.remove(12345, 999_999));
    }

    #[test]
    fn a_full_neighbourhood_still_finds_every_entry() {
        // Every entry has the same hash: one home bucket, a long chain.
        let mut ix = TupleIndex::new();
        for slot in 0..100 {
            ix.insert(42, slot);
        }
        for slot in 0..100 {
            assert_eq!(ix.find(42, |s| s == slot), Some(slot));
        }
        for slot in (0..100).step_by(2) {
            assert!(ix.remove(42, slot));
        }
        for slot in 0..100 {
            let want = (slot % 2 == 1).then_some(slot);
            assert_eq!(ix.find(42, |s| s == slot), want);
        }
    }

    #[test]
    fn rebuilds_are_spread_over_as_many_removals_as_buckets() {
        // One hash for everything: every bucket on the chain is marked, so
        // the marks alone would ask for a rebuild at every removal.
        let mut ix = TupleIndex::new();
        for slot in 0..2_000 {
            ix.insert(7, slot);
        }
        let buckets = ix.buckets.len();
        let mut rebuilds = 0;
        for slot in 0..1_000 {
            let before = ix.removed;
            assert!(ix.remove(7, slot));
            if ix.removed < before {
                rebuilds += 1;
            }
        }
        assert!(
            rebuilds <= 1_000 / buckets + 1,
            "{rebuilds} rebuilds, {buckets} buckets"
        );
        for slot in 1_000..2_000 {
            assert_eq!(ix.find(7, |s| s == slot), Some(slot));
        }
    }

    #[test]
    fn stale_marks_are_cleared_by_a_rebuild() {
        let mut ix = TupleIndex::new();
        let mut next = rng(99);
        let mut live: Vec<(u32, u32)> = Vec::new();
        for round in 0..50_000u32 {
            let h = next() as u32;
            ix.insert(h, round);
            live.push((h, round));
            if live.len() > 1_000 {
                let (h, s) = live.remove(0);
                assert!(ix.remove(h, s));
            }
        }
        assert!(ix.marked * 8 <= ix.buckets.len());
        assert!(
            ix.buckets.len() <= 1024,
            "{} buckets for 1,000 entries",
            ix.buckets.len()
        );
        for &(h, s) in &live {
            assert_eq!(ix.find(h, |x| x == s), Some(s));
        }
    }
}
