//! Where the core puts what it wants the driver to do: packets to send and
//! trace events, plus the counters that every drop updates.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::SocketAddr;

use synack_wire::{emit_packet_parts, packet_len, TcpRepr};

use crate::{ConnTuple, Instant, SegmentInfo, TraceEvent, TraceKind};

/// Counters of a stack, for tests, benchmarks and the command line.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Packets handed to `handle_packet`.
    pub packets_in: u64,
    /// Packets produced by `poll_transmit`.
    pub packets_out: u64,
    /// Segments that resent sequence space.
    pub retransmissions: u64,
    /// Discarded arriving packets, by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Resets sent.
    pub resets_sent: u64,
}

impl Stats {
    /// Total number of dropped packets.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// The least capacity of a new packet buffer: room for the headers and
/// options of any segment without data (and a little data), so that every
/// buffer handed back can be reused for the next segment.
const MIN_PACKET_CAPACITY: usize = 128;

/// Output queues shared by the stack and its connections.
pub(crate) struct Outbox {
    pub packets: VecDeque<Vec<u8>>,
    /// Packet buffers handed back by the driver, reused before allocating.
    pub pool: Vec<Vec<u8>>,
    /// Connections owing an ACK, sent when the driver drains the output.
    pub ack_pending: Vec<crate::ConnId>,
    pub trace: VecDeque<TraceEvent>,
    pub trace_on: bool,
    pub ttl: u8,
    pub stats: Stats,
}

impl Outbox {
    pub fn new(trace_on: bool, ttl: u8) -> Self {
        Outbox {
            packets: VecDeque::new(),
            pool: Vec::new(),
            ack_pending: Vec::new(),
            trace: VecDeque::new(),
            trace_on,
            ttl,
            stats: Stats::default(),
        }
    }

    /// Builds and queues one segment from `local` to `remote`; its payload
    /// is the concatenation of `payload`'s parts (copied once, straight
    /// into the packet).
    pub fn send(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        repr: &TcpRepr,
        payload: &[&[u8]],
        rtx: bool,
    ) {
        let payload_len: usize = payload.iter().map(|p| p.len()).sum();
        let len = packet_len(local.ip(), repr, payload_len);
        // A reused buffer is not zeroed: emit writes every byte. A new one
        // has room for any small segment, so that it can be reused for one.
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(len.max(MIN_PACKET_CAPACITY)));
        if buf.len() < len {
            buf.resize(len, 0);
        } else {
            buf.truncate(len);
        }
        match emit_packet_parts(
            &mut buf,
            local.ip(),
            remote.ip(),
            self.ttl,
            0,
            repr,
            payload,
        ) {
            Ok(n) => buf.truncate(n),
            // Only reachable with mixed address families, which the stack
            // never pairs; count it rather than panic.
            Err(e) => {
                self.count_drop(e.reason());
                return;
            }
        }
        self.stats.packets_out += 1;
        if rtx {
            self.stats.retransmissions += 1;
        }
        if repr.flags.rst() {
            self.stats.resets_sent += 1;
        }
        self.packets.push_back(buf);
        if self.trace_on {
            self.trace.push_back(TraceEvent {
                at: now,
                conn: Some(ConnTuple { local, remote }),
                kind: TraceKind::Send {
                    seg: info(repr, payload_len),
                    rtx,
                },
            });
        }
    }

    /// Takes back a packet buffer for reuse (bounded, so the pool never
    /// holds more than a burst's worth).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        const MAX_POOL: usize = 256;
        if self.pool.len() < MAX_POOL && buf.capacity() >= 64 {
            self.pool.push(buf);
        }
    }

    /// Records an arriving segment in the trace.
    pub fn recv(&mut self, now: Instant, conn: ConnTuple, repr: &TcpRepr, len: usize) {
        if self.trace_on {
            self.trace.push_back(TraceEvent {
                at: now,
                conn: Some(conn),
                kind: TraceKind::Recv {
                    seg: info(repr, len),
                },
            });
        }
    }

    /// Counts a dropped packet and traces it.
    pub fn drop(&mut self, now: Instant, conn: Option<ConnTuple>, reason: &'static str) {
        self.count_drop(reason);
        if self.trace_on {
            self.trace.push_back(TraceEvent {
                at: now,
                conn,
                kind: TraceKind::Drop { reason },
            });
        }
    }

    fn count_drop(&mut self, reason: &'static str) {
        *self.stats.drops.entry(reason).or_insert(0) += 1;
    }

    /// Traces a state change.
    pub fn state(&mut self, now: Instant, conn: ConnTuple, from: crate::State, to: crate::State) {
        if self.trace_on && from != to {
            self.trace.push_back(TraceEvent {
                at: now,
                conn: Some(conn),
                kind: TraceKind::State { from, to },
            });
        }
    }
}

fn info(repr: &TcpRepr, len: usize) -> SegmentInfo {
    SegmentInfo {
        flags: repr.flags,
        seq: repr.seq,
        ack: repr.ack,
        len: len as u32,
        win: repr.window,
    }
}
