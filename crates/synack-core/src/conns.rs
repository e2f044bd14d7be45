//! The connections of a stack: TCBs held in place in a chunked slab, found
//! by handle ([`ConnId`]: slot index and generation) or by 4-tuple through a
//! hash index of 8-byte entries ([`TupleIndex`]).
//!
//! Why this shape: with a hundred thousand connections open, every segment
//! goes to a connection whose TCB is not in any cache. The index holds no
//! keys, only a 32-bit hash and the slot, so it stays small (a lookup
//! touches one cache line) and growing it never reads a TCB; the 4-tuple
//! is compared in the TCB itself, on the slot's first line, which the
//! segment is about to touch anyway. TCBs live in the slab's slots, not in boxes of
//! their own: no allocation per connection, one pointer less to chase, and
//! the most recently freed slot is the next one used (last in, first out,
//! so still in the cache when connections come and go together).

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::conn::Tcb;
use crate::tuple_index::TupleIndex;
use crate::{ConnId, ConnTuple};

/// Slots per chunk of the slab: the slab grows a chunk at a time and never
/// moves a TCB (no reallocation copies, no freed copy left behind).
const CHUNK: usize = 256;

/// The bit of an entry of `Conns::gens` that says the slot is live.
const LIVE: u32 = 1 << 31;

/// One slot: a TCB, the generation that tells a live handle from a stale
/// one, and whether (and under which hash) the TCB is indexed, so that
/// taking it out of the index needs no hashing. A freed slot keeps its
/// dead TCB, buffers emptied, so that the next connection in the slot
/// takes over their (small) allocations instead of asking the allocator.
/// The bookkeeping comes first (`repr(C)`), on the cache line where the
/// TCB starts: checking a handle then costs no line of its own. Slots are
/// aligned to cache lines, so that the TCB's hot fields (its first bytes)
/// take as few lines as they can.
#[repr(C, align(64))]
struct Slot {
    gen: u32,
    hash: u32,
    linked: bool,
    /// Whether `tcb` is a live connection's (else a dead one, or none).
    live: bool,
    tcb: Option<Tcb>,
}

/// Memory one connection takes in the tables, bytes: its slot (the TCB
/// and its bookkeeping), its generation and its index entry.
pub(crate) const SLOT_BYTES: usize = core::mem::size_of::<Slot>() + 4 + 8;

/// The 32 bits of a keyed 64-bit 4-tuple hash that the index keeps.
pub(crate) fn fold(hash: u64) -> u32 {
    (hash >> 32) as u32 ^ hash as u32
}

/// The slab of TCBs and the 4-tuple index over the connections in it.
pub(crate) struct Conns {
    chunks: Vec<Box<[Slot]>>,
    /// Slots ever used (the rest of the last chunk is not in use yet).
    used: u32,
    /// Free slots, the most recently freed last.
    free: Vec<u32>,
    /// TCBs held.
    live: usize,
    /// The generation of every slot (as in the slot) with the top bit set
    /// while the slot holds a live TCB: four bytes a connection, sixteen
    /// to a cache line, so that checking a handle that may be stale (a
    /// timer-wheel entry of a connection long gone) reads no slot.
    gens: Vec<u32>,
    index: TupleIndex,
}

impl Conns {
    /// No connections.
    pub fn new() -> Self {
        Conns {
            chunks: Vec::new(),
            used: 0,
            free: Vec::new(),
            live: 0,
            gens: Vec::new(),
            index: TupleIndex::new(),
        }
    }

    /// TCBs held (indexed or not).
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether `id` is the handle of a live connection, from the compact
    /// array of generations alone (no slot read).
    pub fn is_current(&self, id: ConnId) -> bool {
        self.gens
            .get(id.index as usize)
            .is_some_and(|&g| g == (id.gen & !LIVE) | LIVE)
    }

    fn slot(&self, index: u32) -> Option<&Slot> {
        let i = index as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot> {
        let i = index as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// The TCB of a live handle.
    pub fn get(&self, id: ConnId) -> Option<&Tcb> {
        let s = self.slot(id.index)?;
        (s.gen == id.gen && s.live).then_some(())?;
        s.tcb.as_ref()
    }

    /// The TCB of a live handle, to change.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Tcb> {
        let s = self.slot_mut(id.index)?;
        (s.gen == id.gen && s.live).then_some(())?;
        s.tcb.as_mut()
    }

    /// Stores a TCB (not indexed yet) and returns its handle.
    pub fn insert(&mut self, mut tcb: Tcb) -> ConnId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.used as usize == self.chunks.len() * CHUNK {
                    let chunk: Vec<Slot> = (0..CHUNK)
                        .map(|_| Slot {
                            gen: 0,
                            hash: 0,
                            linked: false,
                            live: false,
                            tcb: None,
                        })
                        .collect();
                    self.chunks.push(chunk.into_boxed_slice());
                }
                self.used += 1;
                self.gens.push(0);
                self.used - 1
            }
        };
        self.live += 1;
        match self.slot_mut(index) {
            Some(s) => {
                if let Some(dead) = s.tcb.as_mut() {
                    tcb.sendq.reuse(&mut dead.sendq);
                    tcb.recvq.reuse(&mut dead.recvq);
                }
                s.tcb = Some(tcb);
                s.live = true;
                let gen = s.gen;
                if let Some(g) = self.gens.get_mut(index as usize) {
                    *g = (gen & !LIVE) | LIVE;
                }
                ConnId { index, gen }
            }
            // Unreachable: the slot was just made or taken from the free list.
            None => ConnId { index, gen: 0 },
        }
    }

    /// Drops the TCB of `id` (taking it out of the index if it is there)
    /// and makes its handle stale.
    pub fn remove(&mut self, id: ConnId) {
        self.unlink(id);
        let Some(s) = self.slot_mut(id.index) else {
            return;
        };
        if s.gen != id.gen || !s.live {
            return;
        }
        if let Some(dead) = s.tcb.as_mut() {
            dead.sendq.retire();
            dead.recvq.retire();
            dead.sacked = Default::default();
        }
        s.live = false;
        s.gen = s.gen.wrapping_add(1);
        let gen = s.gen;
        if let Some(g) = self.gens.get_mut(id.index as usize) {
            *g = gen & !LIVE;
        }
        self.free.push(id.index);
        self.live -= 1;
    }

    /// Every TCB held, with its handle.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Tcb)> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .enumerate()
            .filter_map(|(i, s)| {
                let id = ConnId {
                    index: i as u32,
                    gen: s.gen,
                };
                s.tcb.as_ref().filter(|_| s.live).map(|t| (id, t))
            })
    }

    /// The connection indexed under `tuple`, whose 64-bit keyed hash is `hash`.
    #[inline]
    pub fn find(&self, hash: u64, tuple: &ConnTuple) -> Option<ConnId> {
        let h = fold(hash);
        let slot = self.index.find(h, |slot| {
            self.slot(slot)
                .is_some_and(|s| s.live && s.tcb.as_ref().is_some_and(|t| t.tuple == *tuple))
        })?;
        self.slot(slot).map(|s| ConnId {
            index: slot,
            gen: s.gen,
        })
    }

    /// Starts fetching, into the cache, the index line that the 4-tuple
    /// with 64-bit keyed hash `hash` is found through. A hint.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(fold(hash));
    }

    /// Starts fetching, into the cache, the first two lines of the slot
    /// that the 4-tuple with 64-bit keyed hash `hash` is likely indexed
    /// under (its bookkeeping, the tuple and the hottest fields of the
    /// TCB). A hint: the index line is read, nothing is changed.
    #[inline]
    pub fn prefetch_tcb(&self, hash: u64) {
        let Some(slot) = self.index.first_candidate(fold(hash)) else {
            return;
        };
        if let Some(s) = self.slot(slot) {
            synack_wire::prefetch(s, 9);
        }
    }

    /// Indexes `id` under its TCB's 4-tuple, whose 64-bit keyed hash is
    /// `hash` (no other connection is indexed under that tuple).
    pub fn link(&mut self, hash: u64, id: ConnId) {
        let h = fold(hash);
        match self.slot_mut(id.index) {
            Some(s) if s.gen == id.gen && s.live && !s.linked => {
                s.hash = h;
                s.linked = true;
            }
            _ => return,
        }
        self.index.insert(h, id.index);
    }

    /// Whether `id` is indexed under its 4-tuple.
    pub fn is_linked(&self, id: ConnId) -> bool {
        self.slot(id.index)
            .is_some_and(|s| s.gen == id.gen && s.linked)
    }

    /// Takes `id` out of the index; returns whether it was there.
    pub fn unlink(&mut self, id: ConnId) -> bool {
        let h = match self.slot_mut(id.index) {
            Some(s) if s.gen == id.gen && s.linked => {
                s.linked = false;
                s.hash
            }
            _ => return false,
        };
        self.index.remove(h, id.index)
    }
}

#[cfg(test)]
mod tests {
    use super::Slot;

    /// A slot is its TCB and eight bytes of bookkeeping rounded up to whole
    /// cache lines: eleven of them with a TCB of up to 688 bytes. A TCB
    /// eight bytes larger costs a twelfth line, 64 bytes per connection
    /// (the memory benchmark's ESTABLISHED figure shows it).
    #[test]
    fn a_slot_is_eleven_cache_lines() {
        assert_eq!(core::mem::size_of::<Slot>(), 11 * 64);
    }
}
