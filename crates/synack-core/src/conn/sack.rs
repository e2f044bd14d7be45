//! Selective acknowledgments (RFC 2018): the blocks a receiver reports and
//! the scoreboard a sender keeps of them (RFC 6675).

use synack_wire::{SackBlock, TcpOptions, MAX_SACK_BLOCKS};

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::Tcb;
use crate::seq::Seq;

/// Ranges the sender's scoreboard keeps at least; beyond this, one per
/// segment outstanding (see [`Tcb::sacked_limit`]).
const MAX_SACKED: usize = 32;

/// The sender's scoreboard: ranges above SND.UNA the peer reported
/// holding, sorted and disjoint. Boxed, and only once the first SACK
/// block arrives: one word of the TCB, where a `Vec` takes three, for
/// what most connections never need. Reads see it as a slice (empty
/// before any block).
#[derive(Debug, Default)]
#[allow(clippy::box_collection)] // Boxed on purpose: one word inline.
pub(crate) struct Scoreboard(Option<Box<Vec<(Seq, Seq)>>>);

impl core::ops::Deref for Scoreboard {
    type Target = [(Seq, Seq)];
    fn deref(&self) -> &[(Seq, Seq)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl core::ops::DerefMut for Scoreboard {
    fn deref_mut(&mut self) -> &mut [(Seq, Seq)] {
        match self.0.as_deref_mut() {
            Some(v) => v.as_mut_slice(),
            None => &mut [],
        }
    }
}

impl Scoreboard {
    /// Inserts a range at `i` (allocating on first use).
    fn insert(&mut self, i: usize, range: (Seq, Seq)) {
        self.0.get_or_insert_with(Default::default).insert(i, range);
    }

    /// Removes the range at `i`.
    fn remove(&mut self, i: usize) {
        if let Some(v) = self.0.as_mut() {
            if i < v.len() {
                v.remove(i);
            }
        }
    }

    /// Keeps the ranges `keep` accepts.
    fn retain(&mut self, keep: impl FnMut(&(Seq, Seq)) -> bool) {
        if let Some(v) = self.0.as_mut() {
            v.retain(keep);
        }
    }

    /// Forgets every range (keeps the allocation if there is one).
    pub fn clear(&mut self) {
        if let Some(v) = self.0.as_mut() {
            v.clear();
        }
    }
}

impl Tcb {
    /// Receiver: out-of-order data `[seq, seq+len)` just arrived.
    pub(crate) fn note_sack_arrival(&mut self, seq: Seq, len: usize) {
        self.sack_recent = Some((seq, seq.add(len as u32)));
    }

    /// Receiver: `len` bytes at `seq`, below RCV.NXT, arrived again: the
    /// next ACK reports them in a DSACK block (RFC 2883 §4), at once.
    pub(crate) fn note_duplicate(&mut self, seq: Seq, len: usize) {
        if self.sack_ok && len > 0 && seq.add(len as u32).le(self.rcv_nxt) {
            self.rack_mut().dsack = Some((seq, seq.add(len as u32)));
            self.ack_now = true;
        }
    }

    /// Receiver: fills SACK blocks into an outgoing ACK: a DSACK first if a
    /// duplicate arrived (RFC 2883 §4), then the island holding the latest
    /// arrival (RFC 2018 §4), then the others in order.
    pub(crate) fn fill_sack_blocks(&mut self, options: &mut TcpOptions) {
        let mut blocks = [SackBlock::default(); MAX_SACK_BLOCKS];
        let mut n = 0;
        if let Some((l, r)) = self.rack.as_deref_mut().and_then(|r| r.dsack.take()) {
            blocks[0] = SackBlock {
                left: l.0,
                right: r.0,
            };
            n = 1;
        }
        if !self.recvq.has_ooo() {
            self.sack_recent = None;
            options.sack_blocks = blocks;
            options.sack_count = n as u8;
            return;
        }
        let nxt = self.rcv_nxt;
        let recent = self.sack_recent;
        let islands = || {
            self.recvq
                .ooo_ranges()
                .map(move |(a, b)| (nxt.add(a as u32), nxt.add(b as u32)))
        };
        let mut first = None;
        for (l, r) in islands() {
            if recent.is_some_and(|(s, _)| s.ge(l) && s.lt(r)) {
                first = Some((l, r));
            }
        }
        if let Some((l, r)) = first {
            blocks[n] = SackBlock {
                left: l.0,
                right: r.0,
            };
            n += 1;
        }
        for (l, r) in islands() {
            if n == MAX_SACK_BLOCKS {
                break;
            }
            if Some((l, r)) != first {
                blocks[n] = SackBlock {
                    left: l.0,
                    right: r.0,
                };
                n += 1;
            }
        }
        options.sack_blocks = blocks;
        options.sack_count = n as u8;
    }

    /// Sender: merges the peer's SACK blocks into the scoreboard, keeping
    /// only what lies in (SND.UNA, SND.MAX] (RFC 2018 §8: a block outside
    /// is ignored). Returns how many bytes they reported that it did not
    /// hold (an ACK that reports any is a duplicate, RFC 6675 §2, and so
    /// many bytes have left the network), and the DSACK block if the first
    /// one is one (RFC 2883 §4: below the ACK's `ack`, or inside the
    /// second block).
    pub(crate) fn take_sack_blocks(
        &mut self,
        blocks: &[SackBlock],
        ack: Seq,
    ) -> (u32, Option<(Seq, Seq)>) {
        let dsack = blocks.first().and_then(|b| {
            let (l, r) = (Seq(b.left), Seq(b.right));
            let inside_second = blocks
                .get(1)
                .is_some_and(|c| Seq(c.left).le(l) && r.le(Seq(c.right)));
            (l.lt(r) && (r.le(ack) || inside_second)).then_some((l, r))
        });
        let mut new = 0u32;
        for b in blocks {
            let (l, r) = (Seq(b.left), Seq(b.right));
            if !(l.lt(r) && l.gt(self.snd_una) && r.le(self.snd_max)) {
                continue;
            }
            new = new.saturating_add(self.insert_sacked(l, r));
        }
        self.prune_sacked();
        (new, dsack)
    }

    /// Adds `[l, r)` to the scoreboard; returns how many of its bytes the
    /// scoreboard did not hold (none when it had no room for them).
    fn insert_sacked(&mut self, mut l: Seq, mut r: Seq) -> u32 {
        // The ranges are disjoint and never adjacent: a block that adds
        // nothing lies inside one of them.
        if self.sacked.iter().any(|&(a, b)| a.le(l) && r.le(b)) {
            return 0;
        }
        let (mut i, mut known) = (0, 0u32);
        while i < self.sacked.len() {
            let (a, b) = self.sacked[i];
            if b.lt(l) {
                i += 1;
                continue;
            }
            if r.lt(a) {
                break;
            }
            // Overlapping or adjacent: merge.
            known = known.saturating_add(b.since(a));
            l = if a.lt(l) { a } else { l };
            r = r.max(b);
            self.sacked.remove(i);
        }
        if self.sacked.len() < self.sacked_limit() {
            self.sacked.insert(i, (l, r));
            return r.since(l).saturating_sub(known);
        }
        0
    }

    /// How many ranges the scoreboard may hold: one per segment
    /// outstanding (no fewer than [`MAX_SACKED`]), so memory stays bounded
    /// by the flight (as RACK's per-segment record is) whatever the peer
    /// reports. A fixed small cap is not enough: a slow start that
    /// overflows a drop-tail queue leaves a hole every few segments, and
    /// blocks the scoreboard had no room for were never recorded, so RACK
    /// (RFC 8985 §6.2 step 5) and RFC 6675 §4 IsLost took segments the
    /// peer holds for lost and resent them (766 needless retransmissions
    /// on a 100 Mbit/s, 50 ms path with a queue of one BDP).
    fn sacked_limit(&self) -> usize {
        MAX_SACKED.max(self.rack_outstanding())
    }

    /// Drops scoreboard ranges the cumulative ACK has passed.
    pub(crate) fn prune_sacked(&mut self) {
        let una = self.snd_una;
        self.sacked.retain(|&(_, r)| r.gt(una));
        if let Some(first) = self.sacked.first_mut() {
            if first.0.lt(una) {
                first.0 = una;
            }
        }
    }
}
