//! Selective acknowledgments (RFC 2018): the blocks a receiver reports and
//! the scoreboard a sender keeps of them (RFC 6675).

use synack_wire::{SackBlock, TcpOptions, MAX_SACK_BLOCKS};

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::recovery::DUP_THRESH;
use super::Tcb;
use crate::seq::Seq;

/// Most ranges the sender's scoreboard keeps (bounded memory whatever the
/// peer reports).
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

    /// Receiver: fills SACK blocks into an outgoing ACK, the island holding
    /// the latest arrival first (RFC 2018 §4), then the others in order.
    pub(crate) fn fill_sack_blocks(&mut self, options: &mut TcpOptions) {
        if !self.recvq.has_ooo() {
            self.sack_recent = None;
            return;
        }
        let nxt = self.rcv_nxt;
        let mut blocks = [SackBlock::default(); MAX_SACK_BLOCKS];
        let mut n = 0;
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
            blocks[0] = SackBlock {
                left: l.0,
                right: r.0,
            };
            n = 1;
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
    /// hold: an ACK that reports any is a duplicate (RFC 6675 §2), and so
    /// many bytes have left the network.
    pub(crate) fn take_sack_blocks(&mut self, blocks: &[SackBlock]) -> u32 {
        let mut new = 0u32;
        for b in blocks {
            let (l, r) = (Seq(b.left), Seq(b.right));
            if !(l.lt(r) && l.gt(self.snd_una) && r.le(self.snd_max)) {
                continue;
            }
            new = new.saturating_add(self.insert_sacked(l, r));
        }
        self.prune_sacked();
        new
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
        if self.sacked.len() < MAX_SACKED {
            self.sacked.insert(i, (l, r));
            return r.since(l).saturating_sub(known);
        }
        0
    }

    /// SACKed bytes above SND.UNA (an ACK that just moved SND.UNA may
    /// have passed ranges not pruned yet).
    pub(crate) fn sacked_bytes(&self) -> u32 {
        let una = self.snd_una;
        self.sacked
            .iter()
            .filter(|&&(_, b)| b.gt(una))
            .fold(0u32, |n, &(a, b)| n.saturating_add(b.since(a.max(una))))
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

    /// IsLost (SeqNum) (RFC 6675 §4) on this connection's scoreboard.
    pub(crate) fn is_lost(&self, seq: Seq) -> bool {
        is_lost(&self.sacked, seq, self.snd_mss)
    }

    /// The next un-SACKed piece at or after `from`: (start, length up to the
    /// next SACKed range). Without SACK information, the head of the queue
    /// (only when `from` is SND.UNA). `None` past the highest SACKed byte.
    pub(crate) fn next_hole(&self, from: Seq) -> Option<(Seq, u32)> {
        if self.sacked.is_empty() {
            return (from == self.snd_una && self.snd_max.gt(from)).then_some((from, self.snd_mss));
        }
        let mut at = from;
        for &(a, b) in self.sacked.iter() {
            if at.lt(a) {
                return Some((at, a.since(at)));
            }
            at = at.max(b);
        }
        None
    }
}

/// IsLost (SeqNum) (RFC 6675 §4): `seq` is not SACKed, and above it lie
/// DupThresh discontiguous SACKed ranges ("sequences"), or more than
/// (DupThresh - 1) * SMSS SACKed bytes. `sacked` is a scoreboard: sorted,
/// disjoint ranges. False with an empty scoreboard.
fn is_lost(sacked: &[(Seq, Seq)], seq: Seq, smss: u32) -> bool {
    let (mut ranges, mut bytes) = (0, 0u32);
    for &(a, b) in sacked {
        if b.le(seq) {
            continue;
        }
        if a.le(seq) {
            return false;
        }
        ranges += 1;
        bytes = bytes.saturating_add(b.since(a));
    }
    ranges >= DUP_THRESH || bytes > (DUP_THRESH - 1).saturating_mul(smss)
}

#[cfg(test)]
mod tests {
    use super::is_lost;
    use crate::seq::Seq;

    const MSS: u32 = 1000;

    fn board(ranges: &[(u32, u32)]) -> alloc::vec::Vec<(Seq, Seq)> {
        ranges.iter().map(|&(a, b)| (Seq(a), Seq(b))).collect()
    }

    /// 6675-1: DupThresh (3) discontiguous SACKed ranges above a sequence
    /// number make it lost, two do not, however small they are.
    #[test]
    fn rfc6675_1_is_lost_at_three_ranges_above() {
        let two = board(&[(2000, 2100), (3000, 3100)]);
        assert!(!is_lost(&two, Seq(1000), MSS));
        let three = board(&[(2000, 2100), (3000, 3100), (4000, 4100)]);
        assert!(is_lost(&three, Seq(1000), MSS));
        // Only what lies above counts.
        assert!(!is_lost(&three, Seq(2500), MSS));
    }

    /// 6675-1: more than (DupThresh - 1) * SMSS SACKed bytes above make it
    /// lost: 2 * SMSS exactly does not, one byte more does.
    #[test]
    fn rfc6675_1_is_lost_past_two_segments_of_bytes_above() {
        assert!(!is_lost(&board(&[(2000, 4000)]), Seq(1000), MSS));
        assert!(is_lost(&board(&[(2000, 4001)]), Seq(1000), MSS));
        assert!(is_lost(
            &board(&[(2000, 3000), (3500, 4501)]),
            Seq(1000),
            MSS
        ));
    }

    /// A SACKed sequence number is never lost; an empty scoreboard says
    /// nothing is; the comparisons hold across the wrap of sequence space.
    #[test]
    fn rfc6675_1_is_lost_edge_cases() {
        let b = board(&[(2000, 9000)]);
        assert!(!is_lost(&b, Seq(2000), MSS));
        assert!(!is_lost(&b, Seq(5000), MSS));
        assert!(!is_lost(&[], Seq(1000), MSS));
        let wrapped = board(&[(u32::MAX - 500, 100), (1000, 1100), (2000, 2100)]);
        assert!(is_lost(&wrapped, Seq(u32::MAX - 1000), MSS));
    }
}
