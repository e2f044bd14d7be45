//! TIME-WAIT in compact form (RFC 9293 §3.10.7.4, "TIME-WAIT STATE"): what
//! is left of a connection while it waits 2×MSL, just enough to re-ACK a
//! retransmitted FIN, as Linux keeps its timewait minisockets.

use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::{IpAddr, SocketAddr};

use synack_wire::{Segment, TcpFlags, TcpOptions, TcpRepr};

use crate::conns::fold;
use crate::seq::Seq;
use crate::tuple_index::TupleIndex;
use crate::{ConnTuple, Instant};

/// A connection in TIME-WAIT.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeWaitEntry {
    /// Our SND.NXT (one past our FIN).
    pub snd_nxt: Seq,
    /// Our RCV.NXT (one past the peer's FIN).
    pub rcv_nxt: Seq,
    /// When the 2×MSL wait ends.
    pub expires: Instant,
    /// RFC 7323: our clock offset (meaningful with `has_ts`).
    pub ts_offset: u32,
    /// RFC 7323: TS.Recent (meaningful with `has_ts`).
    pub ts_recent: u32,
    /// The window field to put in our ACKs.
    pub window: u16,
    /// Timestamps were in use.
    pub has_ts: bool,
    /// The connection's last TOS / Traffic Class byte, for our ACKs
    /// (MUST-48: every segment of the connection carries its DSCP).
    pub tos: u8,
}

/// What TIME-WAIT does with an arriving segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TwAction {
    /// Re-ACK (a retransmitted FIN also restarts the 2×MSL timer).
    Ack { restart: bool },
    /// A new SYN that may reopen the connection (MAY-2, SHLD-4).
    Reopen,
    /// Discard with this reason.
    Drop(&'static str),
}

impl TimeWaitEntry {
    /// RFC 7323: (our clock offset, TS.Recent) when timestamps were in use.
    pub fn ts(&self) -> Option<(u32, u32)> {
        self.has_ts.then_some((self.ts_offset, self.ts_recent))
    }

    /// Decides what to do with `seg` (RFC 9293 §3.10.7.4 in TIME-WAIT, RFC 1337).
    pub fn classify(&self, seg: &Segment<'_>) -> TwAction {
        let t = &seg.tcp;
        let seq = Seq(t.seq);
        if t.flags.rst() {
            // RFC 1337 (TIME-WAIT assassination): ignore RSTs.
            return TwAction::Drop("RST in TIME-WAIT (RFC 1337)");
        }
        if t.flags.syn() && !t.flags.ack() {
            if self.syn_is_new(seq, t.options.timestamps) {
                return TwAction::Reopen;
            }
            return TwAction::Ack { restart: false };
        }
        let seg_end = seq.add(seg.payload.len() as u32 + u32::from(t.flags.fin()));
        if t.flags.fin() && seg_end == self.rcv_nxt {
            // The peer's FIN again: our last ACK was lost. ACK it and
            // restart the 2×MSL timeout.
            return TwAction::Ack { restart: true };
        }
        if seg.payload.is_empty() && !t.flags.fin() {
            return TwAction::Drop("in TIME-WAIT");
        }
        TwAction::Ack { restart: false }
    }

    /// Whether a SYN at `seq` belongs to a new incarnation (SHLD-4, RFC 6191
    /// §2; MAY-2). With timestamps on the old incarnation and in the SYN,
    /// the TSval decides: newer reopens, older never does (whatever the
    /// sequence number: it may be an old duplicate with a wrapped one),
    /// and only on a tie does the sequence number decide. Without
    /// timestamps on either, the SYN must start above the old sequence
    /// space (RFC 9293 §3.6.1, MAY-2).
    fn syn_is_new(&self, seq: Seq, ts: Option<(u32, u32)>) -> bool {
        match (self.ts(), ts) {
            (Some((_, recent)), Some((tsval, _))) => {
                let newer = tsval.wrapping_sub(recent) as i32;
                newer > 0 || (newer == 0 && seq.gt(self.rcv_nxt))
            }
            _ => seq.gt(self.rcv_nxt),
        }
    }

    /// The ACK we send from TIME-WAIT: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    pub fn ack_repr(&self, now: Instant, local_port: u16, remote_port: u16) -> TcpRepr {
        let mut options = TcpOptions::default();
        if let Some((offset, recent)) = self.ts() {
            let ms = (now.micros() / 1000) as u32;
            options.timestamps = Some((ms.wrapping_add(offset), recent));
        }
        TcpRepr {
            src_port: local_port,
            dst_port: remote_port,
            seq: self.snd_nxt.0,
            ack: self.rcv_nxt.0,
            flags: TcpFlags::ACK,
            window: self.window,
            urgent: 0,
            options,
        }
    }
}

/// A 4-tuple stored compactly: 12 bytes inline for IPv4, boxed for IPv6
/// (rare enough in TIME-WAIT that the indirection does not matter).
#[derive(Clone, Debug)]
enum TwKey {
    V4 {
        local: [u8; 4],
        remote: [u8; 4],
        lport: u16,
        rport: u16,
    },
    V6(alloc::boxed::Box<ConnTuple>),
}

impl TwKey {
    fn new(t: ConnTuple) -> Self {
        match (t.local, t.remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => TwKey::V4 {
                local: l.ip().octets(),
                remote: r.ip().octets(),
                lport: l.port(),
                rport: r.port(),
            },
            _ => TwKey::V6(alloc::boxed::Box::new(t)),
        }
    }

    fn tuple(&self) -> ConnTuple {
        match self {
            TwKey::V4 {
                local,
                remote,
                lport,
                rport,
            } => ConnTuple {
                local: SocketAddr::new(IpAddr::from(*local), *lport),
                remote: SocketAddr::new(IpAddr::from(*remote), *rport),
            },
            TwKey::V6(t) => **t,
        }
    }
}

/// No slot (the end of the expiry list).
const NIL: u32 = u32::MAX;

/// Slots per chunk of the slab: the slab grows a chunk at a time and never
/// moves, so growing it leaves no freed copy behind.
const CHUNK: usize = 4096;

struct TwSlot {
    item: Option<(TwKey, TimeWaitEntry)>,
    /// Neighbours in the expiry list (earlier, later), or [`NIL`].
    prev: u32,
    next: u32,
}

impl TwSlot {
    const EMPTY: TwSlot = TwSlot {
        item: None,
        prev: NIL,
        next: NIL,
    };
}

/// The TIME-WAIT connections of a stack, in the spirit of Linux's timewait
/// minisockets: compact entries in a chunked slab, a hash index of 4-byte
/// slot numbers, and the entries linked in expiry order. Every TIME-WAIT
/// lasts the same 2×MSL, so appending at the tail keeps the list sorted and
/// no timer per entry is needed; a restart moves its entry to the tail.
pub(crate) struct TimeWaitTable<S> {
    chunks: Vec<alloc::boxed::Box<[TwSlot]>>,
    used: u32,
    free: Vec<u32>,
    /// (32 bits of the tuple's hash, slot), a cache line a bucket: growing
    /// the index reads no slot, a slot is only read when the stored hash
    /// matches, and the line of a tuple can be fetched ahead.
    index: TupleIndex,
    /// The slot after the head and its tuple's kept hash, computed ahead
    /// by [`TimeWaitTable::pop_expired`] (to fetch its index line).
    next_hash: Option<(u32, u32)>,
    head: u32,
    tail: u32,
    hasher: S,
}

impl<S: BuildHasher> TimeWaitTable<S> {
    pub fn new(hasher: S) -> Self {
        TimeWaitTable {
            chunks: Vec::new(),
            used: 0,
            free: Vec::new(),
            index: TupleIndex::new(),
            next_hash: None,
            head: NIL,
            tail: NIL,
            hasher,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    fn slot(&self, i: u32) -> Option<&TwSlot> {
        let i = i as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn slot_mut(&mut self, i: u32) -> Option<&mut TwSlot> {
        let i = i as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    fn find(&self, t: &ConnTuple) -> Option<u32> {
        self.find_hashed(self.hasher.hash_one(t), t)
    }

    fn find_hashed(&self, h: u64, t: &ConnTuple) -> Option<u32> {
        self.index.find(fold(h), |i| self.key_is(i, t))
    }

    fn key_is(&self, i: u32, t: &ConnTuple) -> bool {
        self.slot(i)
            .and_then(|s| s.item.as_ref())
            .is_some_and(|(k, _)| k.tuple() == *t)
    }

    pub fn contains_key(&self, t: &ConnTuple) -> bool {
        self.find(t).is_some()
    }

    /// Whether `t` is in TIME-WAIT, its hash (with this table's hasher)
    /// already computed.
    pub fn contains_key_hashed(&self, h: u64, t: &ConnTuple) -> bool {
        self.find_hashed(h, t).is_some()
    }

    /// The entry of `t`, its hash (with this table's hasher) already computed.
    pub fn get_hashed(&self, h: u64, t: &ConnTuple) -> Option<&TimeWaitEntry> {
        let i = self.find_hashed(h, t)?;
        self.slot(i)?.item.as_ref().map(|(_, e)| e)
    }

    /// The entry that expires first: its tuple and expiry.
    pub fn first(&self) -> Option<(ConnTuple, Instant)> {
        let (k, e) = self.slot(self.head)?.item.as_ref()?;
        Some((k.tuple(), e.expires))
    }

    /// Starts fetching the index line of the tuple whose 64-bit keyed hash
    /// (with this table's hasher) is `h`: a hint, for a connection about to
    /// enter TIME-WAIT.
    pub fn prefetch_index(&self, h: u64) {
        self.index.prefetch(fold(h));
    }

    /// Adds the entry for `t` (or replaces it) at the tail of the expiry list.
    pub fn insert(&mut self, t: ConnTuple, e: TimeWaitEntry) {
        // The list changes: the hash kept by pop_expired may no longer be
        // its next entry's (that slot may even hold another tuple).
        self.next_hash = None;
        let h = self.hasher.hash_one(t);
        if let Some(i) = self.find_hashed(h, &t) {
            if let Some((_, old)) = self.slot_mut(i).and_then(|s| s.item.as_mut()) {
                *old = e;
            }
            self.unlink(i);
            self.link_tail(i);
            return;
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.used as usize == self.chunks.len() * CHUNK {
                    let chunk: Vec<TwSlot> = (0..CHUNK).map(|_| TwSlot::EMPTY).collect();
                    self.chunks.push(chunk.into_boxed_slice());
                }
                self.used += 1;
                self.used - 1
            }
        };
        if let Some(s) = self.slot_mut(i) {
            s.item = Some((TwKey::new(t), e));
        }
        self.link_tail(i);
        self.index.insert(fold(h), i);
    }

    /// Sets a new expiry for `t` and moves it to the tail (a restart).
    pub fn restart(&mut self, t: &ConnTuple, expires: Instant) {
        // The list changes: the hash kept by pop_expired may no longer be
        // its next entry's (that slot may even hold another tuple).
        self.next_hash = None;
        let Some(i) = self.find(t) else { return };
        if let Some((_, e)) = self.slot_mut(i).and_then(|s| s.item.as_mut()) {
            e.expires = expires;
        }
        self.unlink(i);
        self.link_tail(i);
    }

    /// Removes the entry that expires first, if it has expired by `now`,
    /// and returns its tuple. The list is walked one entry at a time, and
    /// with a million entries each would wait for memory; so each call
    /// starts fetching the slot two entries on (the next one's was started
    /// by the call before).
    pub fn pop_expired(&mut self, now: Instant) -> Option<ConnTuple> {
        let i = self.head;
        let s = self.slot(i)?;
        let (k, e) = s.item.as_ref()?;
        if e.expires > now {
            return None;
        }
        let tuple = k.tuple();
        let next = s.next;
        let f = match self.next_hash.take() {
            Some((slot, f)) if slot == i => f,
            _ => fold(self.hasher.hash_one(tuple)),
        };
        // The next entry's slot was fetched by the call before: hash its
        // tuple now and fetch its index line, and fetch the slot after it.
        let mut next_hash = None;
        if let Some(n) = self.slot(next) {
            if let Some((k, _)) = n.item.as_ref() {
                let nf = fold(self.hasher.hash_one(k.tuple()));
                self.index.prefetch(nf);
                next_hash = Some((next, nf));
            }
            if let Some(after) = self.slot(n.next) {
                synack_wire::prefetch(after, 1);
            }
        }
        self.next_hash = next_hash;
        if !self.index.remove(f, i) {
            // Only if the kept hash was not this tuple's: take it out under
            // its own, so the index never keeps an entry for a freed slot.
            self.index.remove(fold(self.hasher.hash_one(tuple)), i);
        }
        self.unlink(i);
        if let Some(s) = self.slot_mut(i) {
            s.item = None;
        }
        self.free.push(i);
        Some(tuple)
    }

    /// Removes the entry for `t`.
    pub fn remove(&mut self, t: &ConnTuple) -> Option<TimeWaitEntry> {
        // The list changes: the hash kept by pop_expired may no longer be
        // its next entry's (that slot may even hold another tuple).
        self.next_hash = None;
        let f = fold(self.hasher.hash_one(t));
        let i = self.index.find(f, |i| self.key_is(i, t))?;
        self.index.remove(f, i);
        self.unlink(i);
        let (_, e) = self.slot_mut(i)?.item.take()?;
        self.free.push(i);
        Some(e)
    }

    fn link_tail(&mut self, i: u32) {
        let tail = self.tail;
        if let Some(s) = self.slot_mut(i) {
            s.prev = tail;
            s.next = NIL;
        }
        match self.slot_mut(tail) {
            Some(t) => t.next = i,
            None => self.head = i,
        }
        self.tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let Some(s) = self.slot(i) else { return };
        let (prev, next) = (s.prev, s.next);
        match self.slot_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slot_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        if let Some(s) = self.slot_mut(i) {
            s.prev = NIL;
            s.next = NIL;
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[derive(Clone)]
    struct Fixed;
    impl BuildHasher for Fixed {
        type Hasher = siphasher::sip::SipHasher13;
        fn build_hasher(&self) -> Self::Hasher {
            siphasher::sip::SipHasher13::new_with_key(&[3; 16])
        }
    }

    fn tuple(port: u16) -> ConnTuple {
        ConnTuple {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port),
            remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80),
        }
    }

    fn entry(expires: u64) -> TimeWaitEntry {
        TimeWaitEntry {
            snd_nxt: Seq(1),
            rcv_nxt: Seq(1),
            expires: Instant::from_micros(expires),
            ts_offset: 0,
            ts_recent: 0,
            window: 0,
            has_ts: false,
            tos: 0,
        }
    }

    /// SHLD-4 (RFC 6191 §2) and MAY-2: which SYNs reopen a TIME-WAIT
    /// connection whose peer's last TSval was 1000 and whose RCV.NXT is 5000.
    #[test]
    fn shld_4_rfc6191_timestamps_decide_then_the_sequence_number() {
        let with_ts = TimeWaitEntry {
            rcv_nxt: Seq(5000),
            ts_recent: 1000,
            has_ts: true,
            ..entry(0)
        };
        let cases = [
            // (SYN's seq, SYN's TSval, new incarnation?)
            (4000, Some(1001), true), // newer TSval, whatever the seq
            (9000, Some(999), false), // older TSval: never, even above
            (5001, Some(1000), true), // a tie: the seq decides
            (5000, Some(1000), false),
            (4999, Some(1000), false),
            (5001, None, true), // no TSopt in the SYN: the seq
            (4000, None, false),
        ];
        for (seq, tsval, new) in cases {
            let ts = tsval.map(|v| (v, 0));
            assert_eq!(with_ts.syn_is_new(Seq(seq), ts), new, "{seq} {tsval:?}");
        }
        // The TSval comparison wraps (RFC 7323 §5.2).
        let wrapped = TimeWaitEntry {
            ts_recent: 0xFFFF_FFF0,
            ..with_ts
        };
        assert!(wrapped.syn_is_new(Seq(1), Some((5, 0))));
        assert!(!wrapped.syn_is_new(Seq(9000), Some((0xFFFF_FF00, 0))));
        // Without timestamps on the old incarnation the seq alone decides.
        let no_ts = TimeWaitEntry {
            rcv_nxt: Seq(5000),
            ..entry(0)
        };
        assert!(!no_ts.syn_is_new(Seq(4000), Some((1 << 30, 0))));
        assert!(no_ts.syn_is_new(Seq(6000), Some((1, 0))));
    }

    #[test]
    fn a_slot_fits_a_cache_line() {
        // The TIME-WAIT target (at most 128 bytes a connection) counts on
        // it: the slot and about 17 bytes of index per entry.
        assert!(core::mem::size_of::<TwSlot>() <= 64);
    }

    #[test]
    fn the_hash_kept_for_the_next_entry_does_not_outlive_a_change() {
        // pop_expired keeps the hash of the next entry's tuple; the entry is
        // then removed (a SYN reopened it) and its slot reused by another
        // tuple, which becomes the head. Its expiry must take it out of the
        // index under its own hash.
        let mut tw = TimeWaitTable::new(Fixed);
        tw.insert(tuple(1), entry(10));
        tw.insert(tuple(2), entry(20));
        assert_eq!(tw.pop_expired(Instant::from_micros(15)), Some(tuple(1)));
        assert!(tw.remove(&tuple(2)).is_some());
        tw.insert(tuple(3), entry(30));
        assert_eq!(tw.len(), 1);
        assert_eq!(tw.pop_expired(Instant::from_micros(35)), Some(tuple(3)));
        assert_eq!(tw.len(), 0, "nothing left in the index");
        assert!(!tw.contains_key(&tuple(3)));
        assert_eq!(tw.pop_expired(Instant::from_micros(99)), None);
    }

    #[test]
    fn expiry_takes_entries_in_order_and_leaves_the_rest() {
        let mut tw = TimeWaitTable::new(Fixed);
        for p in 1..=100 {
            tw.insert(tuple(p), entry(u64::from(p)));
        }
        tw.restart(&tuple(10), Instant::from_micros(1_000));
        let mut out = Vec::new();
        while let Some(t) = tw.pop_expired(Instant::from_micros(50)) {
            out.push(t.local.port());
        }
        let want: Vec<u16> = (1..=50).filter(|&p| p != 10).collect();
        assert_eq!(out, want);
        assert_eq!(tw.len(), 51);
        assert!(tw.contains_key(&tuple(10)) && tw.contains_key(&tuple(51)));
    }
}
