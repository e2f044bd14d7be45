//! TIME-WAIT in compact form (RFC 9293 §3.10.7.4, "TIME-WAIT STATE"): what
//! is left of a connection while it waits 2×MSL, just enough to re-ACK a
//! retransmitted FIN, as Linux keeps its timewait minisockets.

use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::{IpAddr, SocketAddr};

use hashbrown::HashTable;
use synack_wire::{Segment, TcpFlags, TcpOptions, TcpRepr};

use crate::seq::Seq;
use crate::{ConnId, ConnTuple, Instant};

/// A connection in TIME-WAIT.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeWaitEntry {
    /// Our SND.NXT (one past our FIN).
    pub snd_nxt: Seq,
    /// Our RCV.NXT (one past the peer's FIN).
    pub rcv_nxt: Seq,
    /// When the 2×MSL wait ends.
    pub expires: Instant,
    /// RFC 7323: (our clock offset, TS.Recent) when timestamps were in use.
    pub ts: Option<(u32, u32)>,
    /// The window field to put in our ACKs.
    pub window: u16,
    /// The application's handle, while it still holds one.
    pub owner: Option<ConnId>,
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
    /// Decides what to do with `seg` (RFC 9293 §3.10.7.4 in TIME-WAIT, RFC 1337).
    pub fn classify(&self, seg: &Segment<'_>) -> TwAction {
        let t = &seg.tcp;
        let seq = Seq(t.seq);
        if t.flags.rst() {
            // RFC 1337 (TIME-WAIT assassination): ignore RSTs.
            return TwAction::Drop("RST in TIME-WAIT (RFC 1337)");
        }
        if t.flags.syn() && !t.flags.ack() {
            // MAY-2: a new incarnation must start above the old sequence
            // space; with timestamps, a newer TSval also proves it (SHLD-4).
            let newer_ts = match (self.ts, t.options.timestamps) {
                (Some((_, recent)), Some((tsval, _))) => (tsval.wrapping_sub(recent) as i32) > 0,
                _ => false,
            };
            if seq.gt(self.rcv_nxt) || newer_ts {
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

    /// The ACK we send from TIME-WAIT: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    pub fn ack_repr(&self, now: Instant, local_port: u16, remote_port: u16) -> TcpRepr {
        let mut options = TcpOptions::default();
        if let Some((offset, recent)) = self.ts {
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

/// A handle on a TIME-WAIT entry that timers hold: slot and generation,
/// so a timer of a freed and reused slot is recognised as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TwRef {
    index: u32,
    gen: u32,
}

struct TwSlot {
    gen: u32,
    item: Option<(TwKey, TimeWaitEntry)>,
}

/// The TIME-WAIT connections of a stack: a slab of compact entries and a
/// hash index of 4-byte slot numbers, so that a million of them cost well
/// under 128 bytes each (Linux's timewait minisockets in spirit).
pub(crate) struct TimeWaitTable<S> {
    slots: Vec<TwSlot>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: S,
}

impl<S: BuildHasher> TimeWaitTable<S> {
    pub fn new(hasher: S) -> Self {
        TimeWaitTable {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    fn find(&self, t: &ConnTuple) -> Option<u32> {
        let h = self.hasher.hash_one(t);
        let slots = &self.slots;
        self.index.find(h, |&i| key_is(slots, i, t)).copied()
    }

    pub fn contains_key(&self, t: &ConnTuple) -> bool {
        self.find(t).is_some()
    }

    pub fn get(&self, t: &ConnTuple) -> Option<&TimeWaitEntry> {
        let i = self.find(t)?;
        self.slots.get(i as usize)?.item.as_ref().map(|(_, e)| e)
    }

    pub fn get_mut(&mut self, t: &ConnTuple) -> Option<&mut TimeWaitEntry> {
        let i = self.find(t)?;
        self.slots
            .get_mut(i as usize)?
            .item
            .as_mut()
            .map(|(_, e)| e)
    }

    /// The handle of the entry for `t`.
    pub fn handle(&self, t: &ConnTuple) -> Option<TwRef> {
        let i = self.find(t)?;
        let gen = self.slots.get(i as usize)?.gen;
        Some(TwRef { index: i, gen })
    }

    /// The tuple and entry behind a timer's handle, if it is still live.
    pub fn resolve(&self, r: TwRef) -> Option<(ConnTuple, &TimeWaitEntry)> {
        let s = self.slots.get(r.index as usize)?;
        if s.gen != r.gen {
            return None;
        }
        s.item.as_ref().map(|(k, e)| (k.tuple(), e))
    }

    /// Adds (or replaces) the entry for `t`.
    pub fn insert(&mut self, t: ConnTuple, e: TimeWaitEntry) -> TwRef {
        if let Some(old) = self.get_mut(&t) {
            *old = e;
            return self.handle(&t).unwrap_or(TwRef {
                index: 0,
                gen: u32::MAX,
            });
        }
        let item = Some((TwKey::new(t), e));
        let index = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    s.item = item;
                }
                i
            }
            None => {
                self.slots.push(TwSlot { gen: 0, item });
                (self.slots.len() - 1) as u32
            }
        };
        let h = self.hasher.hash_one(t);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(h, index, |&i| {
            slots
                .get(i as usize)
                .and_then(|s| s.item.as_ref())
                .map_or(0, |(k, _)| hasher.hash_one(k.tuple()))
        });
        let gen = self.slots.get(index as usize).map_or(0, |s| s.gen);
        TwRef { index, gen }
    }

    /// Removes the entry for `t`.
    pub fn remove(&mut self, t: &ConnTuple) -> Option<TimeWaitEntry> {
        let h = self.hasher.hash_one(t);
        let slots = &self.slots;
        let found = self.index.find_entry(h, |&i| key_is(slots, i, t)).ok()?;
        let (i, _) = found.remove();
        let s = self.slots.get_mut(i as usize)?;
        let (_, e) = s.item.take()?;
        s.gen = s.gen.wrapping_add(1);
        self.free.push(i);
        Some(e)
    }
}

fn key_is(slots: &[TwSlot], i: u32, t: &ConnTuple) -> bool {
    slots
        .get(i as usize)
        .and_then(|s| s.item.as_ref())
        .is_some_and(|(k, _)| k.tuple() == *t)
}
