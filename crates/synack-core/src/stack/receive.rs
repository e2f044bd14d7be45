//! The receive path: one packet or a batch of them (fetching ahead what
//! each needs), the checksum (MUST-3) and address checks, and the way to
//! the connection, TIME-WAIT entry, listener or CLOSED port it is for;
//! ICMP errors go to the connection they quote (MUST-54).

use core::hash::BuildHasher;
use core::net::SocketAddr;

use synack_wire::{
    checksum_is_valid, combine_sums, parse_icmp_error, parse_packet_unverified_into, payload_sum,
    peek_tuple, IcmpError, Segment, TcpFlags, WireError,
};

use super::{valid_remote, Stack};
use crate::{ConnId, ConnTuple, Instant};

/// How many packets ahead [`Stack::handle_packets`] starts fetching what a
/// packet needs (in three stages: its bytes, its index line, its TCB).
/// Each stage has a third of it, three packets' processing, for its lines
/// to arrive (one packet takes about as long as a memory access, and
/// fetches within a stage overlap), and the lines in flight are few enough
/// to be still in the cache when used. With 100,000 connections open, 6,
/// 9 and 12 measured alike, within this machine's noise.
///
/// Batches of at most this many packets, or of one flow (first, middle and
/// last packets alike), skip the stages: only each next packet is fetched.
pub const PREFETCH_AHEAD: usize = 9;

/// What the device already did about an arriving packet's TCP checksum:
/// see [`Stack::handle_packet_offloaded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxChecksum {
    /// Nothing: the stack verifies it (MUST-3). What [`Stack::handle_packet`]
    /// assumes.
    Unverified,
    /// The device (or the kernel behind it) verified it: Linux
    /// `CHECKSUM_UNNECESSARY`, virtio `DATA_VALID`.
    Verified,
    /// The packet was made or already checked on this host and its checksum
    /// was left to a device: the field holds only the pseudo-header sum
    /// (Linux `CHECKSUM_PARTIAL`, virtio `NEEDS_CSUM`; a large receive
    /// offload's merged segments come this way too). There is nothing to
    /// verify, and the field is not a checksum.
    Partial,
}

impl Stack {
    /// Processes one IP packet from the network.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.input(now, packet, RxChecksum::Unverified, None);
    }

    /// Processes a batch of IP packets from the network, in order: the
    /// same as handing each to [`Stack::handle_packet`], only faster with
    /// many connections open, when neither the packets nor their TCBs are
    /// in the cache. The memory each packet needs is fetched in stages
    /// while earlier packets are processed: its bytes [`PREFETCH_AHEAD`]
    /// packets ahead, the index line of its 4-tuple two thirds of that
    /// ahead (the tuple hashed once, kept for the packet's turn), and its
    /// TCB's hot lines a third ahead. Results are exactly those of the
    /// packets handed in one by one.
    pub fn handle_packets<P: AsRef<[u8]>>(&mut self, now: Instant, packets: &[P]) {
        self.input_batch(now, packets.len(), |i| {
            (packets[i].as_ref(), RxChecksum::Unverified)
        });
    }

    /// [`Stack::handle_packets`] for a device that may have dealt with the
    /// packets' TCP checksums already: each packet with what the device
    /// did ([`Stack::handle_packet_offloaded`]).
    pub fn handle_packets_offloaded<P: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        packets: &[(P, RxChecksum)],
    ) {
        self.input_batch(now, packets.len(), |i| {
            (packets[i].0.as_ref(), packets[i].1)
        });
    }

    /// The batch of `n` packets that `packet(i)` gives, in order, fetching
    /// ahead as [`Stack::handle_packets`] says.
    fn input_batch<'p>(
        &mut self,
        now: Instant,
        n: usize,
        packet: impl Fn(usize) -> (&'p [u8], RxChecksum),
    ) {
        const STAGE: usize = PREFETCH_AHEAD / 3;
        let tuple_of = |i: usize| peek_tuple(packet(i).0);
        // A few packets, or a batch of one flow (its first, middle and last
        // packets alike: a bulk transfer): few connections, already in the
        // cache after the first packet; the staged fetching would cost more
        // than it saves, and only the packets themselves are fetched ahead.
        let one_flow = || {
            let first = tuple_of(0);
            first == tuple_of(n / 2) && first == tuple_of(n - 1)
        };
        if n <= PREFETCH_AHEAD || one_flow() {
            for i in 0..n {
                // The next packet, whole (its TCB is this one's): packet
                // buffers sit at unrelated addresses, which no hardware
                // prefetcher guesses, and a full segment is 23 lines.
                if i + 1 < n {
                    synack_wire::prefetch(packet(i + 1).0, 32);
                }
                let (p, csum) = packet(i);
                self.input(now, p, csum, None);
            }
            return;
        }
        let mut hashed: [Option<(ConnTuple, u64)>; PREFETCH_AHEAD] = [None; PREFETCH_AHEAD];
        // Start the pipeline: the stages of the first packets, as far as
        // they can go without waiting.
        for i in 0..PREFETCH_AHEAD.min(n) {
            synack_wire::prefetch(packet(i).0, 2);
        }
        for i in 0..(2 * STAGE).min(n) {
            hashed[i % PREFETCH_AHEAD] = self.hash_packet(packet(i).0);
        }
        for i in 0..STAGE.min(n) {
            if let Some((_, h)) = hashed[i % PREFETCH_AHEAD] {
                self.conns.prefetch_tcb(h);
            }
        }
        for i in 0..n {
            if i + PREFETCH_AHEAD < n {
                synack_wire::prefetch(packet(i + PREFETCH_AHEAD).0, 2);
            }
            if i + 2 * STAGE < n {
                let later = self.hash_packet(packet(i + 2 * STAGE).0);
                hashed[(i + 2 * STAGE) % PREFETCH_AHEAD] = later;
            }
            if i + STAGE < n {
                if let Some((_, h)) = hashed[(i + STAGE) % PREFETCH_AHEAD] {
                    self.conns.prefetch_tcb(h);
                }
            }
            let mine = hashed[i % PREFETCH_AHEAD].take();
            let (p, csum) = packet(i);
            self.input(now, p, csum, mine);
        }
    }

    /// Hashes a packet's 4-tuple and starts fetching the index line it is
    /// found through; the hash is kept for the packet's turn.
    fn hash_packet(&self, packet: &[u8]) -> Option<(ConnTuple, u64)> {
        let (src, dst) = peek_tuple(packet)?;
        let tuple = ConnTuple {
            local: dst,
            remote: src,
        };
        if self.last.is_some_and(|(t, _)| t == tuple) {
            // Most likely the connection of the packet before: nothing to
            // fetch, and (as now) nothing to hash.
            return None;
        }
        let hash = self.hasher.hash_one(tuple);
        self.conns.prefetch_index(hash);
        if carries_fin(packet) {
            // The connection may be about to enter TIME-WAIT, whose index
            // takes the same hash.
            self.time_wait.prefetch_index(hash);
        }
        Some((tuple, hash))
    }

    /// Processes one IP packet from a device that may have dealt with its
    /// TCP checksum already ([`RxChecksum`]): with `Verified` or `Partial`
    /// the stack trusts the device and does not verify it (the device
    /// answers for MUST-3). Everything else is as [`Stack::handle_packet`],
    /// whatever the segment's length: a device that merges segments (GRO,
    /// LRO) may hand in one far longer than the MSS, and it is taken as
    /// any segment is, as far as the receive window reaches (RFC 9293 has
    /// no rule about the length of an arriving segment).
    pub fn handle_packet_offloaded(&mut self, now: Instant, packet: &[u8], csum: RxChecksum) {
        self.input(now, packet, csum, None);
    }

    /// One arriving packet; `hashed` is its 4-tuple with the tuple's hash
    /// when already computed (by [`Stack::handle_packets`]).
    fn input(
        &mut self,
        now: Instant,
        packet: &[u8],
        csum: RxChecksum,
        hashed: Option<(ConnTuple, u64)>,
    ) {
        self.out.stats.packets_in += 1;
        // Parsed in place (no copy of the segment out of a `Result`).
        let mut seg = Segment::EMPTY;
        let partial = match parse_packet_unverified_into(packet, &mut seg) {
            Ok(partial) => partial,
            Err(WireError::NotTcp) => {
                match parse_icmp_error(packet) {
                    Ok(e) => self.handle_icmp(now, &e),
                    Err(_) => self.out.drop(now, None, WireError::NotTcp.reason()),
                }
                return;
            }
            Err(e) => {
                let conn = peek_tuple(packet).map(|(src, dst)| ConnTuple {
                    local: dst,
                    remote: src,
                });
                self.out.drop(now, conn, e.reason());
                return;
            }
        };
        let tuple = ConnTuple {
            local: SocketAddr::new(seg.dst, seg.tcp.dst_port),
            remote: SocketAddr::new(seg.src, seg.tcp.src_port),
        };
        let cached = self.last.filter(|(t, _)| *t == tuple).map(|(_, id)| id);
        let mut hash = None;
        let conn = cached.or_else(|| {
            let h = match hashed {
                Some((t, h)) if t == tuple => h,
                _ => self.hasher.hash_one(tuple),
            };
            hash = Some(h);
            self.conns.find(h, &tuple)
        });
        // MUST-3: verify the checksum before anything in the segment counts.
        // In-order data for an open connection is verified while it is
        // copied into the receive buffer (one pass), and only made readable
        // later if the rest of the segment is accepted.
        let verify = csum == RxChecksum::Unverified;
        let placed = conn
            .filter(|_| verify)
            .and_then(|id| self.place_payload(id, &seg));
        if verify {
            let total = match placed {
                Some(sum) => combine_sums(partial, sum, false),
                None => combine_sums(partial, payload_sum(seg.payload), false),
            };
            if !checksum_is_valid(total) {
                self.out
                    .drop(now, Some(tuple), WireError::BadChecksum.reason());
                return;
            }
        }
        // MUST-57: segments to broadcast or multicast (or anyone else) are
        // not ours. MUST-63: nor are those from invalid sources. A
        // connection's own address was checked when it was made.
        if conn.is_none() && !self.accepts_destination(seg.dst) {
            self.out.drop(now, Some(tuple), "not our address");
            return;
        }
        // A loopback source is only valid to a loopback destination.
        let martian = seg.src.is_loopback() && !seg.dst.is_loopback();
        if martian || !valid_remote(seg.src) || seg.tcp.src_port == 0 || seg.tcp.dst_port == 0 {
            self.out.drop(now, Some(tuple), "invalid source address");
            return;
        }
        if let Some(id) = conn {
            self.last = Some((tuple, id));
            let preplaced = placed.map(|_| seg.payload.len() as u32);
            self.with_conn(now, id, |t, ctx| t.on_segment(ctx, &seg, preplaced));
            return;
        }
        let hash = hash.unwrap_or_else(|| self.hasher.hash_one(tuple));
        if let Some(entry) = self.time_wait.get_hashed(hash, &tuple).copied() {
            self.time_wait_segment(now, tuple, entry, &seg);
            return;
        }
        if let Some(rid) = self.requests.find(&tuple) {
            self.request_segment(now, rid, tuple, &seg);
            return;
        }
        let lid = self.listener_for(tuple.local);
        match lid {
            Some(lid) => self.listen_segment(now, lid, tuple, &seg, None),
            None => self.closed_segment(now, tuple, &seg),
        }
    }

    /// Copies in-order data for an open connection straight into its
    /// receive buffer (not yet readable) and returns the payload's checksum
    /// sum; `None` when the segment does not qualify (then nothing is copied).
    fn place_payload(&mut self, id: ConnId, seg: &Segment<'_>) -> Option<u64> {
        self.tcb_mut(id)?.place_in_order(seg)
    }

    /// An ICMP or ICMPv6 error: find the connection from the quoted
    /// segment (MUST-54) and let it decide.
    fn handle_icmp(&mut self, now: Instant, e: &IcmpError) {
        let tuple = ConnTuple {
            local: e.quoted_src,
            remote: e.quoted_dst,
        };
        if !self.accepts_destination(e.to) {
            self.out.drop(now, Some(tuple), "not our address");
            return;
        }
        match self.find_conn(&tuple) {
            Some(id) => self.with_conn(now, id, |t, ctx| t.on_icmp(ctx, e)),
            None => self.out.drop(now, Some(tuple), "ICMP for no connection"),
        }
    }
}

/// Whether a packet is an IPv4 or IPv6 (without extension headers) TCP
/// segment with FIN set: a hint only, read without parsing the packet.
fn carries_fin(packet: &[u8]) -> bool {
    let tcp = match packet.first() {
        Some(&b) if b >> 4 == 4 => usize::from(b & 0x0f) * 4,
        Some(&b) if b >> 4 == 6 && packet.get(6) == Some(&6) => 40,
        _ => return false,
    };
    packet
        .get(tcp + 13)
        .is_some_and(|&flags| flags & TcpFlags::FIN.0 != 0)
}
