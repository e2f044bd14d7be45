//! Where the core puts what it wants the driver to do: packets to send and
//! trace events, plus the counters that every drop updates.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::SocketAddr;

use synack_wire::{emit_packet_with, packet_len, HeaderTemplate, TcpChecksum, TcpRepr};

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
    /// Retransmission timeouts of data (RFC 6298 §5.4-§5.6; not of SYNs):
    /// each one rewound the sender to SND.UNA.
    pub retransmission_timeouts: u64,
    /// Loss recoveries started by fast retransmit (RFC 5681 §3.2,
    /// RFC 6675 §5 step 4).
    pub fast_recoveries: u64,
    /// Discarded arriving packets, by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// ACKs not sent in answer to unacceptable bare ACKs, past the RFC 5961
    /// §7 allowance (the segments themselves are counted in `drops`).
    pub acks_rate_limited: u64,
    /// Resets sent.
    pub resets_sent: u64,
    /// Packets out that carried more than one segment, for the device to
    /// cut up (with `Config::gso_max_size`).
    pub super_segments: u64,
    /// SYN-ACKs sent with a SYN cookie (RFC 4987 §3.6).
    pub syn_cookies_sent: u64,
    /// Connections opened from a valid SYN cookie.
    pub syn_cookies_accepted: u64,
    /// SYNs held unanswered as connection requests (`Handshake::Defer`).
    pub requests_deferred: u64,
    /// Connection requests the application accepted (SYN-ACK sent).
    pub requests_accepted: u64,
    /// Connection requests the application refused (RST, ICMP or silence).
    pub requests_refused: u64,
    /// Connection requests dropped undecided after `Config::request_timeout`.
    pub requests_expired: u64,
    /// Connection requests the client withdrew with an RST.
    pub requests_reset: u64,
    /// Retransmitted SYNs for a pending connection request, absorbed (the
    /// request stays one).
    pub request_syns_absorbed: u64,
    /// SYNs to a transparent listener refused with RST because a limit was
    /// reached (`Config::max_connections`, `Config::max_syn_backlog`,
    /// `Config::memory_budget`).
    pub syns_refused_at_limit: u64,
    /// ICMP or ICMPv6 destination unreachable messages sent (refused
    /// connection requests).
    pub icmp_unreachable_sent: u64,
}

/// A packet for the device, with what a device that offloads checksums and
/// segmentation must know about it: see [`crate::Stack::poll_transmit_meta`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The IP packet (IPv4 without options, or IPv6 without extension
    /// headers, carrying TCP).
    pub packet: Vec<u8>,
    /// `Some(mss)` when the TCP payload is longer than one segment: the
    /// device must send it as segments of `mss` payload bytes each (the last
    /// may be shorter), as TSO/GSO does. Only with `Config::gso_max_size`.
    pub segment_size: Option<u16>,
    /// The TCP checksum field holds only the pseudo-header sum
    /// ([`synack_wire::TcpChecksum::Partial`]): the device must sum the packet
    /// from [`Transmit::checksum_start`] to its end and store the complement
    /// at `checksum_start + Transmit::CHECKSUM_OFFSET`. Always set with a
    /// `segment_size`; otherwise only with `Config::checksum_offload`.
    pub checksum_partial: bool,
}

impl Transmit {
    /// Offset of the TCP checksum field in the TCP header.
    pub const CHECKSUM_OFFSET: usize = 16;

    /// Where the TCP header starts: the IP header's length.
    pub fn checksum_start(&self) -> usize {
        match self.packet.first().map(|b| b >> 4) {
            Some(6) => 40,
            _ => 20,
        }
    }

    /// Length of the IP and TCP headers together (what each segment cut
    /// from this packet repeats).
    pub fn header_len(&self) -> usize {
        let start = self.checksum_start();
        let tcp = self
            .packet
            .get(start + 12)
            .map_or(20, |b| usize::from(b >> 4) * 4);
        start + tcp
    }
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

/// The most packet-buffer capacity the pool keeps for reuse, bytes.
const POOL_BYTES: usize = 16 << 20;

/// Output queues shared by the stack and its connections.
pub(crate) struct Outbox {
    pub packets: VecDeque<Transmit>,
    /// Segments cut in software from a super-segment for a driver that
    /// asked for plain packets ([`crate::Stack::poll_transmit`]), in order.
    pub cut: VecDeque<Vec<u8>>,
    /// Leave TCP checksums partial (`Config::checksum_offload`).
    pub csum_offload: bool,
    /// Packet buffers handed back by the driver, reused before allocating.
    pool: Vec<Vec<u8>>,
    /// Bytes of capacity held in `pool` (bounded by [`POOL_BYTES`]).
    pool_bytes: usize,
    /// Connections owing an ACK, sent when the driver drains the output.
    pub ack_pending: Vec<crate::ConnId>,
    pub trace: VecDeque<TraceEvent>,
    pub trace_on: bool,
    pub ttl: u8,
    /// The TOS (traffic class) of packets built without a template or a
    /// TOS of their own: the stack's default DSCP (`Config::dscp`).
    pub tos: u8,
    pub stats: Stats,
}

impl Outbox {
    pub fn new(trace_on: bool, ttl: u8, tos: u8, csum_offload: bool) -> Self {
        Outbox {
            packets: VecDeque::new(),
            cut: VecDeque::new(),
            csum_offload,
            pool: Vec::new(),
            pool_bytes: 0,
            ack_pending: Vec::new(),
            trace: VecDeque::new(),
            trace_on,
            ttl,
            tos,
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
        let tos = self.tos;
        self.push(now, None, tos, local, remote, repr, payload, rtx, u32::MAX);
    }

    /// As [`Outbox::send`], a segment without data whose IP TOS (traffic
    /// class) is `tos` rather than the stack's default: a connection's
    /// control segment sent without its template (from TIME-WAIT).
    pub fn send_with_tos(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        tos: u8,
        repr: &TcpRepr,
    ) {
        self.push(now, None, tos, local, remote, repr, &[], false, u32::MAX);
    }

    /// Queues a complete IP packet that is not TCP (an ICMP error the
    /// stack built): nothing for a device to finish.
    pub fn send_raw(&mut self, packet: Vec<u8>) {
        self.stats.packets_out += 1;
        self.packets.push_back(Transmit {
            packet,
            segment_size: None,
            checksum_partial: false,
        });
    }

    /// As [`Outbox::send`], for a payload that may span several segments of
    /// `mss` bytes (a super-segment for a device that segments). With the
    /// connection's header template (`hdr`, for `local` and `remote` with
    /// the outbox's TTL and the connection's TOS) the packet is built from it.
    #[allow(clippy::too_many_arguments)]
    pub fn send_segments(
        &mut self,
        now: Instant,
        hdr: Option<&HeaderTemplate>,
        local: SocketAddr,
        remote: SocketAddr,
        repr: &TcpRepr,
        payload: &[&[u8]],
        rtx: bool,
        mss: u32,
    ) {
        let tos = self.tos;
        self.push(now, hdr, tos, local, remote, repr, payload, rtx, mss);
    }

    /// Builds and queues the packet: from `hdr` when given, else from the
    /// outbox's TTL and `tos`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn push(
        &mut self,
        now: Instant,
        hdr: Option<&HeaderTemplate>,
        tos: u8,
        local: SocketAddr,
        remote: SocketAddr,
        repr: &TcpRepr,
        payload: &[&[u8]],
        rtx: bool,
        mss: u32,
    ) {
        let payload_len: usize = payload.iter().map(|p| p.len()).sum();
        let segment_size = (payload_len > mss as usize).then(|| mss.min(0xFFFF) as u16);
        let partial = self.csum_offload || segment_size.is_some();
        let mode = if partial {
            TcpChecksum::Partial
        } else {
            TcpChecksum::Full
        };
        let len = match hdr {
            Some(h) => h.packet_len(repr, payload_len),
            None => packet_len(local.ip(), repr, payload_len),
        };
        // A reused buffer is not zeroed: emit writes every byte. A new one
        // has room for any small segment, so that it can be reused for one.
        let mut buf = self
            .take_buffer()
            .unwrap_or_else(|| Vec::with_capacity(len.max(MIN_PACKET_CAPACITY)));
        if buf.len() < len {
            buf.resize(len, 0);
        } else {
            buf.truncate(len);
        }
        let emitted = match hdr {
            Some(h) => h.emit(&mut buf, repr, payload, mode),
            None => emit_packet_with(
                &mut buf,
                local.ip(),
                remote.ip(),
                self.ttl,
                tos,
                repr,
                payload,
                mode,
            ),
        };
        match emitted {
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
        if segment_size.is_some() {
            self.stats.super_segments += 1;
        }
        self.packets.push_back(Transmit {
            packet: buf,
            segment_size,
            checksum_partial: partial,
        });
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

    /// A packet buffer from the pool, if it holds one (the one handed back
    /// last: the likeliest still in the cache).
    #[inline]
    pub fn take_buffer(&mut self) -> Option<Vec<u8>> {
        let buf = self.pool.pop()?;
        self.pool_bytes -= buf.capacity();
        Some(buf)
    }

    /// Takes back a packet buffer for reuse. The pool is bounded by the
    /// bytes it holds, not by a count: a burst of a whole 4 MiB window is
    /// about 2,900 full-size buffers, one SYN to each of 100,000 peers is
    /// 100,000 small ones, and a super-segment's buffer can be 64 KiB.
    /// Every buffer past the bound is freed (and the next one allocated
    /// anew); the bytes kept after a burst are at most the burst's own.
    #[inline]
    pub fn recycle(&mut self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap >= 64 && self.pool_bytes + cap <= POOL_BYTES {
            self.pool_bytes += cap;
            self.pool.push(buf);
        }
    }

    /// Records an arriving segment in the trace (inlined, so that without a
    /// trace the connection's tuple is not even copied).
    #[inline]
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

    /// Traces a change of the congestion window or slow-start threshold.
    pub fn cwnd(&mut self, now: Instant, conn: ConnTuple, cwnd: u32, ssthresh: u32) {
        if self.trace_on {
            self.trace.push_back(TraceEvent {
                at: now,
                conn: Some(conn),
                kind: TraceKind::Cwnd { cwnd, ssthresh },
            });
        }
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
