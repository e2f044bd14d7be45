//! The `Stack`: one per host. It owns the addresses, the connections (found
//! by a keyed hash of the 4-tuple), the listeners with their accept queues,
//! the compact TIME-WAIT table and one timer wheel for them all, and it is
//! the only thing a driver talks to.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::{IpAddr, SocketAddr};

use hashbrown::HashMap;
use siphasher::sip::SipHasher13;
use synack_wire::{
    checksum_is_valid, combine_sums, complete_checksum, gso_segment, gso_segment_count,
    parse_icmp_error, parse_packet_unverified_into, payload_sum, peek_tuple, IcmpError, Segment,
    TcpFlags, TcpRepr, WireError,
};

use crate::conn::{Ctx, Next, Tcb, UserTimeout};
use crate::conns::Conns;
use crate::isn::IsnGenerator;
use crate::outbox::{Outbox, Stats, Transmit};
use crate::seq::Seq;
use crate::timewait::{TimeWaitEntry, TimeWaitTable, TwAction};
use crate::wheel::TimerWheel;
use crate::{Config, ConnId, ConnTuple, Error, Event, Instant, ListenerId, State, TraceEvent};

/// Keyed SipHash for the connection tables, so that a remote host cannot
/// pick 4-tuples that collide (hash flooding).
#[derive(Clone)]
struct KeyedHash([u8; 16]);

impl BuildHasher for KeyedHash {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_key(&self.0)
    }
}

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

/// A passive OPEN (RFC 9293 §3.10.1) and its accept queue.
struct Listener {
    local: SocketAddr,
    backlog: usize,
    /// Children in SYN-RECEIVED.
    pending: usize,
    /// ESTABLISHED children waiting for `accept`.
    ready: VecDeque<ConnId>,
}

/// A connection timer registered in the wheel. Only the connection: when
/// it fires, the connection's own `wheel_at` says whether it is the live
/// registration (due now) or a stale one left behind when the deadline
/// moved (skipped). Sixteen bytes a wheel entry with its instant.
#[derive(Clone, Copy, Debug)]
struct TimerItem(ConnId);

/// One host's TCP: see the crate documentation for the `handle_*`/`poll_*`
/// protocol between a driver and the stack.
pub struct Stack {
    cfg: Config,
    addrs: Vec<IpAddr>,
    /// The same addresses, for a constant-time check on every packet.
    addr_set: hashbrown::HashSet<IpAddr, KeyedHash>,
    isn: IsnGenerator,
    /// The TCBs and their 4-tuple index.
    conns: Conns,
    /// The key of every 4-tuple hash (the connection index and TIME-WAIT
    /// share it, so a segment's tuple is hashed once).
    hasher: KeyedHash,
    time_wait: TimeWaitTable<KeyedHash>,
    /// Application handles still held on connections now in TIME-WAIT (rare).
    tw_owners: HashMap<ConnTuple, ConnId, KeyedHash>,
    listeners: Vec<Option<Listener>>,
    listen_map: HashMap<SocketAddr, ListenerId, KeyedHash>,
    wheel: TimerWheel<TimerItem>,
    expired: Vec<TimerItem>,
    out: Outbox,
    events: VecDeque<Event>,
    port_counter: u32,
    /// The latest instant any call handed in (for work done at drain time).
    now: Instant,
    /// The connection the last segment went to: a one-entry cache in front
    /// of the hash table (a bulk transfer hits it on every segment).
    last: Option<(ConnTuple, ConnId)>,
}

impl Stack {
    /// A stack with no addresses yet. `secret` keys the ISN generator
    /// (RFC 6528: take it from a real random source) and the hash tables.
    pub fn new(cfg: Config, secret: [u8; 16]) -> Self {
        let mut table_key = secret;
        table_key[0] ^= 0x5a;
        Stack {
            out: Outbox::new(cfg.trace, cfg.ttl, cfg.checksum_offload),
            cfg,
            addrs: Vec::new(),
            addr_set: hashbrown::HashSet::with_hasher(KeyedHash(table_key)),
            isn: IsnGenerator::new(secret),
            conns: Conns::new(),
            hasher: KeyedHash(table_key),
            time_wait: TimeWaitTable::new(KeyedHash(table_key)),
            tw_owners: HashMap::with_hasher(KeyedHash(table_key)),
            listeners: Vec::new(),
            listen_map: HashMap::with_hasher(KeyedHash(table_key)),
            wheel: TimerWheel::new(),
            expired: Vec::new(),
            events: VecDeque::new(),
            port_counter: 0,
            now: Instant::ZERO,
            last: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Adds a local address (IPv4 or IPv6).
    pub fn add_address(&mut self, addr: IpAddr) {
        if self.addr_set.insert(addr) {
            self.addrs.push(addr);
        }
    }

    /// Is `ip` one of ours? A scan for a few addresses (no hashing on the
    /// per-packet path), the hash set beyond that.
    fn is_local(&self, ip: IpAddr) -> bool {
        if self.addrs.len() <= 8 {
            self.addrs.contains(&ip)
        } else {
            self.addr_set.contains(&ip)
        }
    }

    /// The local addresses.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// Counters: packets, retransmissions, drops by reason.
    pub fn stats(&self) -> &Stats {
        &self.out.stats
    }

    /// Connections with a TCB (every state but compact TIME-WAIT).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Connections held in compact TIME-WAIT.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    // ----- the driver's side -------------------------------------------

    /// The next IP packet to put on the wire, complete: one segment with
    /// its checksum.
    ///
    /// ACKs owed for the segments handed in since the last drain are built
    /// here, once the whole batch has been processed (MUST-58, MUST-59).
    ///
    /// With `Config::gso_max_size` or `Config::checksum_offload` set, the
    /// stack's packets need a device's help; this does the device's part in
    /// software (cuts super-segments into segments, completes checksums),
    /// so it is always safe to call. A driver whose device offloads calls
    /// [`Stack::poll_transmit_meta`] instead.
    #[inline]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(p) = self.out.cut.pop_front() {
            return Some(p);
        }
        if !self.out.ack_pending.is_empty() {
            self.flush_acks();
        }
        loop {
            let front = self.out.packets.front()?;
            if front.segment_size.is_none() && !front.checksum_partial {
                // A complete packet already: nothing for a device to do.
                // Taken straight out of the queue into the result (no
                // `Transmit` in between, whose copy would read back the
                // stores just made and stall).
                return self.out.packets.pop_front().map(|t| t.packet);
            }
            let t = self.out.packets.pop_front()?;
            if let Some(p) = self.finish_in_software(t) {
                return Some(p);
            }
        }
    }

    /// The next IP packet to put on the wire, with what a device that
    /// offloads must do to it ([`Transmit`]): with `Config::gso_max_size`
    /// a TCP packet may carry several segments of the send MSS for the
    /// device to cut apart (TSO/GSO), and with `Config::checksum_offload`
    /// (and always for such packets) the TCP checksum is left for the
    /// device to complete. Without either it is [`Stack::poll_transmit`]
    /// with nothing more to do. Do not mix the two calls in one drain.
    #[inline]
    pub fn poll_transmit_meta(&mut self) -> Option<Transmit> {
        if !self.out.ack_pending.is_empty() {
            self.flush_acks();
        }
        self.out.packets.pop_front()
    }

    /// Does the device's part for a driver that wants plain packets.
    /// `None` only for a packet that cannot be finished (never one the
    /// stack built).
    #[inline(never)]
    fn finish_in_software(&mut self, mut t: Transmit) -> Option<Vec<u8>> {
        if let Some(mss) = t.segment_size {
            let mss = usize::from(mss);
            let count = gso_segment_count(&t.packet, mss).ok()?;
            let headers = t.header_len();
            for i in 0..count {
                let mut buf = self.out.take_buffer().unwrap_or_default();
                buf.resize(headers + mss, 0);
                match gso_segment(&t.packet, mss, i, &mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        self.out.cut.push_back(buf);
                    }
                    Err(e) => self.out.drop(self.now, None, e.reason()),
                }
            }
            self.out.recycle(t.packet);
            return self.out.cut.pop_front();
        }
        if t.checksum_partial {
            let start = t.checksum_start();
            complete_checksum(&mut t.packet, start, Transmit::CHECKSUM_OFFSET).ok()?;
        }
        Some(t.packet)
    }

    /// Sends the ACKs the connections queued.
    #[inline(never)]
    fn flush_acks(&mut self) {
        let pending = core::mem::take(&mut self.out.ack_pending);
        let now = self.now;
        for &id in &pending {
            // Most ACKs queued during a batch went out on a later segment
            // of the same connection (the application's reply, our FIN):
            // then there is nothing to send and nothing to re-arm, and
            // only the lines holding the flags are touched.
            match self.conns.get_mut(id) {
                Some(t) if !t.ack_owed() => t.ack_queued = false,
                Some(_) => self.with_conn(now, id, |t, ctx| {
                    t.flush_ack(ctx);
                    Next::Stay
                }),
                None => {}
            }
        }
        let mut pending = pending;
        pending.clear();
        if self.out.ack_pending.is_empty() {
            self.out.ack_pending = pending;
        }
    }

    /// Gives a packet buffer (from [`Stack::poll_transmit`], once written
    /// out) back to the stack, which reuses it instead of allocating.
    /// Optional; it only saves allocations.
    #[inline]
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.out.recycle(buf);
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next trace event (only with `Config::trace`).
    pub fn poll_trace(&mut self) -> Option<TraceEvent> {
        self.out.trace.pop_front()
    }

    /// The instant at which [`Stack::handle_timeout`] should next be called.
    /// It may be early (nothing due yet), never late. Any `handle_*` call or
    /// user call can change it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tw = self.time_wait.first().map(|(_, at)| at);
        match (self.wheel.next_deadline(), tw) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(tuple) = self.time_wait.pop_expired(now) {
            self.time_wait_ended(now, tuple);
        }
        let mut expired = core::mem::take(&mut self.expired);
        self.wheel.poll_expired(now, &mut expired);
        for TimerItem(id) in expired.drain(..) {
            // Most entries outlived their connection: the compact array
            // of generations tells so without reading the slot.
            if !self.conns.is_current(id) {
                continue;
            }
            let due = self
                .tcb(id)
                .is_some_and(|t| t.wheel_at.is_some_and(|w| w <= now));
            if due {
                if let Some(t) = self.tcb_mut(id) {
                    t.wheel_at.clear();
                }
                self.with_conn(now, id, |t, ctx| t.on_timer(ctx));
            }
        }
        self.expired = expired;
    }

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
        // not ours. MUST-63: nor are those from invalid sources.
        if !self.is_local(seg.dst) {
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
        let lid = self.find_listener(tuple.local);
        match lid {
            Some(lid) => self.listen_segment(now, lid, tuple, &seg, None),
            None => self.closed_segment(now, tuple, &seg),
        }
    }

    /// Copies in-order data for an open connection straight into its
    /// receive buffer (not yet readable) and returns the payload's checksum
    /// sum; `None` when the segment does not qualify (then nothing is copied).
    fn place_payload(&mut self, id: ConnId, seg: &Segment<'_>) -> Option<u64> {
        let t = self.tcb_mut(id)?;
        let f = seg.tcp.flags;
        let qualifies = t.state.accepts_segment_text()
            && !f.syn()
            && !f.rst()
            && !seg.payload.is_empty()
            && crate::seq::Seq(seg.tcp.seq) == t.rcv_nxt
            && !t.read_closed
            && !t.fin_rcvd
            && seg.payload.len() as u32 <= t.rcv_wnd();
        if !qualifies {
            return None;
        }
        t.recvq.place(seg.payload)
    }

    /// An ICMP or ICMPv6 error: find the connection from the quoted
    /// segment (MUST-54) and let it decide.
    fn handle_icmp(&mut self, now: Instant, e: &IcmpError) {
        let tuple = ConnTuple {
            local: e.quoted_src,
            remote: e.quoted_dst,
        };
        if !self.is_local(e.to) {
            self.out.drop(now, Some(tuple), "not our address");
            return;
        }
        match self.find_conn(&tuple) {
            Some(id) => self.with_conn(now, id, |t, ctx| t.on_icmp(ctx, e)),
            None => self.out.drop(now, Some(tuple), "ICMP for no connection"),
        }
    }

    // ----- the application's side --------------------------------------

    /// Passive OPEN (§3.10.1) on `local` (an unspecified IP listens on every
    /// address). MUST-41: a port already listened on is an error, and
    /// nothing else is disturbed.
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> Result<ListenerId, Error> {
        if local.port() == 0 {
            return Err(Error::InvalidAddress);
        }
        if !local.ip().is_unspecified() && !self.is_local(local.ip()) {
            return Err(Error::AddrNotAvailable);
        }
        if self.listen_map.contains_key(&local) {
            return Err(Error::AddrInUse);
        }
        let l = Listener {
            local,
            backlog: backlog.max(1),
            pending: 0,
            ready: VecDeque::new(),
        };
        let idx = match self.listeners.iter().position(Option::is_none) {
            Some(i) => {
                self.listeners[i] = Some(l);
                i
            }
            None => {
                self.listeners.push(Some(l));
                self.listeners.len() - 1
            }
        };
        let id = ListenerId(idx as u32);
        self.listen_map.insert(local, id);
        Ok(id)
    }

    /// The local address a listener listens on.
    pub fn listener_addr(&self, lid: ListenerId) -> Result<SocketAddr, Error> {
        self.listener(lid).map(|l| l.local)
    }

    /// Takes the next established connection from a listener's queue.
    pub fn accept(&mut self, lid: ListenerId) -> Result<ConnId, Error> {
        let l = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::InvalidHandle)?;
        let id = l.ready.pop_front().ok_or(Error::WouldBlock)?;
        if let Some(t) = self.tcb_mut(id) {
            t.listener = None;
        }
        Ok(id)
    }

    /// Closes a listener. Children not yet accepted are reset.
    pub fn close_listener(&mut self, now: Instant, lid: ListenerId) -> Result<(), Error> {
        let l = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::take)
            .ok_or(Error::InvalidHandle)?;
        self.listen_map.remove(&l.local);
        let children: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, t)| t.listener == Some(lid))
            .map(|(id, _)| id)
            .collect();
        for id in children {
            self.abort_orphan(now, id);
        }
        Ok(())
    }

    /// Active OPEN (§3.10.1): sends a SYN from `local` (or, when `None`, the
    /// first address of the remote's family and an ephemeral port) to
    /// `remote`. The result is known by `Event::Connected` or `Event::Closed`.
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<ConnId, Error> {
        // MUST-46: no broadcast, multicast or unspecified peers.
        if !valid_remote(remote.ip()) || remote.port() == 0 {
            return Err(Error::InvalidAddress);
        }
        let local_ip = match local.map(|l| l.ip()) {
            Some(ip) if !ip.is_unspecified() => {
                if !self.is_local(ip) {
                    return Err(Error::AddrNotAvailable);
                }
                ip
            }
            _ => *self
                .addrs
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(Error::AddrNotAvailable)?,
        };
        if local_ip.is_ipv4() != remote.is_ipv4() {
            return Err(Error::InvalidAddress);
        }
        let port = match local.map(|l| l.port()) {
            Some(p) if p != 0 => {
                let tuple = ConnTuple {
                    local: SocketAddr::new(local_ip, p),
                    remote,
                };
                let h = self.hasher.hash_one(tuple);
                if self.conns.find(h, &tuple).is_some()
                    || self.time_wait.contains_key_hashed(h, &tuple)
                {
                    return Err(Error::AddrInUse);
                }
                p
            }
            _ => self.ephemeral_port(local_ip, remote)?,
        };
        if self.conns.len() >= self.cfg.max_connections {
            return Err(Error::NoPorts);
        }
        let tuple = ConnTuple {
            local: SocketAddr::new(local_ip, port),
            remote,
        };
        let iss = Seq(self.isn.isn(now, tuple.local, tuple.remote));
        let tcb = self.new_tcb(tuple, iss, State::Closed);
        let id = self.insert_tcb(tcb);
        self.with_conn(now, id, |t, ctx| {
            t.set_state(ctx, State::SynSent);
            t.send_syn(ctx, false);
            t.timing.set(t.iss.add(1), ctx.now);
            Next::Stay
        });
        Ok(id)
    }

    /// SEND: queues bytes, returns how many were taken.
    pub fn send(&mut self, now: Instant, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.send(ctx, data))
    }

    /// SEND in place: `f` is handed the free space of the send buffer as
    /// two slices (in order; the second is often empty, both are when the
    /// buffer is full), writes the bytes to send from the start of it and
    /// returns how many it wrote. Saves the copy [`Stack::send`] makes.
    /// Results as for `send`: the bytes taken, `Err(WouldBlock)` when the
    /// buffer is full (filling it all asks for a `Writable` event).
    pub fn send_with(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.send_with(ctx, f))
    }

    /// SEND with URG (MUST-30): queue `data` and mark it urgent; the peer is
    /// told where its end lies. Legacy: new applications should not use
    /// urgent data (SHLD-13).
    pub fn send_urgent(&mut self, now: Instant, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.send_urgent(ctx, data))
    }

    /// Bytes still to read before the end of the peer's urgent data, or
    /// `None` when none is pending (MUST-33).
    pub fn urgent_mark(&mut self, id: ConnId) -> Result<Option<usize>, Error> {
        self.tcb_mut(id)
            .map(|t| t.urgent_mark())
            .ok_or(Error::InvalidHandle)
    }

    /// RECEIVE: `Ok(0)` is end of stream; `Err(WouldBlock)`: wait for `Readable`.
    pub fn recv(&mut self, now: Instant, id: ConnId, buf: &mut [u8]) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.recv(ctx, buf))
    }

    /// RECEIVE in place: `f` is handed the readable bytes as the receive
    /// ring's two slices (in order; the second is often empty) and returns
    /// how many it consumed, which leave the buffer. Saves the copy
    /// [`Stack::recv`] makes. Results as for `recv`: `Ok(0)` at the end of
    /// the stream, `Err(WouldBlock)` when nothing is there yet.
    pub fn recv_with(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.recv_with(ctx, f))
    }

    /// Half-close: sends FIN after the queued data, keeps reading.
    pub fn shutdown_write(&mut self, now: Instant, id: ConnId) -> Result<(), Error> {
        self.tcb(id).ok_or(Error::InvalidHandle)?;
        let mut res = Ok(());
        self.with_conn(now, id, |t, ctx| match t.close(ctx, false) {
            Ok(next) => next,
            Err(e) => {
                res = Err(e);
                Next::Stay
            }
        });
        res
    }

    /// CLOSE and let go of the handle: the stack finishes the orderly close
    /// (FIN, TIME-WAIT) on its own and then frees everything. Unread data
    /// turns it into a reset (SHLD-3). The handle is invalid afterwards.
    pub fn close(&mut self, now: Instant, id: ConnId) -> Result<(), Error> {
        let t = self.tcb_mut(id).ok_or(Error::InvalidHandle)?;
        t.released = true;
        let detached = t.state == State::TimeWait || t.state == State::Closed;
        if detached {
            self.free_if_unlinked(id);
            return Ok(());
        }
        self.with_conn(now, id, |t, ctx| t.close(ctx, true).unwrap_or(Next::Stay));
        Ok(())
    }

    /// ABORT (§3.10.5): RST, and the handle is invalid afterwards.
    pub fn abort(&mut self, now: Instant, id: ConnId) -> Result<(), Error> {
        let t = self.tcb_mut(id).ok_or(Error::InvalidHandle)?;
        t.released = true;
        if t.state == State::TimeWait || t.state == State::Closed {
            self.free_if_unlinked(id);
            return Ok(());
        }
        self.with_conn(now, id, |t, ctx| t.abort(ctx));
        Ok(())
    }

    /// The connection's state.
    pub fn state(&self, id: ConnId) -> Result<State, Error> {
        self.tcb(id).map(|t| t.state).ok_or(Error::InvalidHandle)
    }

    /// Why the connection ended, when it did not end in an orderly way.
    pub fn error(&self, id: ConnId) -> Result<Option<Error>, Error> {
        self.tcb(id).map(|t| t.error).ok_or(Error::InvalidHandle)
    }

    /// (local, remote) addresses.
    pub fn tuple(&self, id: ConnId) -> Result<ConnTuple, Error> {
        self.tcb(id).map(|t| t.tuple).ok_or(Error::InvalidHandle)
    }

    /// Bytes that can be read now.
    pub fn readable(&self, id: ConnId) -> Result<usize, Error> {
        self.tcb(id)
            .map(|t| t.recvq.readable())
            .ok_or(Error::InvalidHandle)
    }

    /// Room in the send buffer.
    pub fn send_capacity(&self, id: ConnId) -> Result<usize, Error> {
        self.tcb(id)
            .map(|t| t.sendq.free())
            .ok_or(Error::InvalidHandle)
    }

    /// Bytes queued and not yet acknowledged by the peer.
    pub fn unacked(&self, id: ConnId) -> Result<usize, Error> {
        self.tcb(id)
            .map(|t| t.sendq.len())
            .ok_or(Error::InvalidHandle)
    }

    /// Turns keep-alive probes on or off for one connection (MUST-24; off
    /// by default, MUST-25). Probes start after `Config::keepalive_idle`.
    pub fn set_keepalive(&mut self, now: Instant, id: ConnId, on: bool) -> Result<(), Error> {
        self.user_call(now, id, |t, ctx| {
            t.set_keepalive(ctx, on);
            Ok(())
        })
    }

    /// Sets this connection's R2 as a time (MUST-21): the connection is
    /// aborted once retransmissions have gone unanswered that long.
    /// `Some(Duration::MAX)` never gives up; `None` restores the default
    /// (`Config::max_retries`).
    pub fn set_user_timeout(
        &mut self,
        id: ConnId,
        timeout: Option<core::time::Duration>,
    ) -> Result<(), Error> {
        self.tcb_mut(id)
            .map(|t| t.user_timeout = UserTimeout::new(timeout))
            .ok_or(Error::InvalidHandle)
    }

    /// Turns Nagle's algorithm off (`true`) or on (MUST-17).
    pub fn set_nodelay(&mut self, id: ConnId, nodelay: bool) -> Result<(), Error> {
        self.tcb_mut(id)
            .map(|t| t.nodelay = nodelay)
            .ok_or(Error::InvalidHandle)
    }

    // ----- internals -----------------------------------------------------

    fn listener(&self, lid: ListenerId) -> Result<&Listener, Error> {
        self.listeners
            .get(lid.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(Error::InvalidHandle)
    }

    /// The listener for `local`: one bound to that address, else one bound
    /// to the unspecified address of its family on the same port.
    fn find_listener(&self, local: SocketAddr) -> Option<ListenerId> {
        self.listen_map.get(&local).copied().or_else(|| {
            let any = match local {
                SocketAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
            };
            self.listen_map
                .get(&SocketAddr::new(any, local.port()))
                .copied()
        })
    }

    /// A TCB with this stack's per-connection settings: the timestamp
    /// offset (RFC 7323 §5.4) and the window scale it will offer.
    fn new_tcb(&self, tuple: ConnTuple, iss: Seq, state: State) -> Tcb {
        let mut tcb = Tcb::new(&self.cfg, tuple, iss, state);
        tcb.ts_offset = self.isn.ts_offset(tuple.local, tuple.remote);
        tcb.rcv_wscale = if self.cfg.window_scaling {
            wscale_for(self.cfg.recv_buffer)
        } else {
            0
        };
        tcb
    }

    fn tcb(&self, id: ConnId) -> Option<&Tcb> {
        self.conns.get(id)
    }

    fn tcb_mut(&mut self, id: ConnId) -> Option<&mut Tcb> {
        self.conns.get_mut(id)
    }

    /// The connection (with a TCB) that `tuple` belongs to.
    fn find_conn(&self, tuple: &ConnTuple) -> Option<ConnId> {
        self.conns.find(self.hasher.hash_one(tuple), tuple)
    }

    /// Stores a TCB and indexes it under its 4-tuple.
    fn insert_tcb(&mut self, tcb: Tcb) -> ConnId {
        let hash = self.hasher.hash_one(tcb.tuple);
        let id = self.conns.insert(tcb);
        self.conns.link(hash, id);
        id
    }

    /// Takes `id` out of the 4-tuple index if it is there.
    fn unlink_tuple(&mut self, id: ConnId) {
        if self.conns.unlink(id) {
            self.last = None;
        }
    }

    /// Frees the TCB of `id` if it is no longer in the 4-tuple index.
    fn free_if_unlinked(&mut self, id: ConnId) {
        let Some(t) = self.tcb(id) else { return };
        let tuple = t.tuple;
        if self.conns.is_linked(id) {
            return;
        }
        // Rarely any: then no tuple is hashed for it.
        if !self.tw_owners.is_empty() && self.tw_owners.get(&tuple) == Some(&id) {
            self.tw_owners.remove(&tuple);
        }
        self.conns.remove(id);
    }

    /// Runs a user call that returns a value, then settles the connection.
    fn user_call<R>(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut Tcb, &mut Ctx<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.tcb(id).ok_or(Error::InvalidHandle)?;
        let mut res = Err(Error::InvalidHandle);
        self.with_conn(now, id, |t, ctx| {
            res = f(t, ctx);
            Next::Stay
        });
        res
    }

    /// Runs `f` on a connection with a context, then applies what it asks
    /// (state moves, accept queue, TIME-WAIT, freeing) and re-arms its timer.
    fn with_conn(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut Tcb, &mut Ctx<'_>) -> Next,
    ) {
        self.now = self.now.max(now);
        let Some(tcb) = self.conns.get_mut(id) else {
            return;
        };
        let before = tcb.state;
        let mut ctx = Ctx {
            now,
            cfg: &self.cfg,
            out: &mut self.out,
            events: &mut self.events,
            id,
        };
        let next = f(tcb, &mut ctx);
        self.settle(now, id, before, next);
    }

    /// Abort a connection whose application is gone.
    fn abort_orphan(&mut self, now: Instant, id: ConnId) {
        if let Some(t) = self.tcb_mut(id) {
            t.listener = None;
            t.released = true;
        }
        self.with_conn(now, id, |t, ctx| t.abort(ctx));
    }

    /// Applies what a handler asked for: the accept queue, unlinking,
    /// TIME-WAIT, freeing, and re-arming the timer.
    fn settle(&mut self, now: Instant, id: ConnId, before: State, next: Next) {
        let Some(tcb) = self.tcb(id) else { return };
        let after = tcb.state;
        let (passive, listener) = (tcb.passive, tcb.listener);
        // A passive child that reached ESTABLISHED joins the accept queue.
        if before == State::SynReceived && after.is_synchronized() && passive {
            if let Some(lid) = listener {
                match self
                    .listeners
                    .get_mut(lid.0 as usize)
                    .and_then(Option::as_mut)
                {
                    Some(l) => {
                        l.pending = l.pending.saturating_sub(1);
                        l.ready.push_back(id);
                        self.events.push_back(Event::Incoming(lid));
                    }
                    None => {
                        self.abort_orphan(now, id);
                        return;
                    }
                }
            }
        }
        match next {
            Next::Stay => self.schedule(id),
            Next::Closed | Next::ReturnToListen => {
                self.unlink(id, before == State::SynReceived);
                let released = self
                    .tcb(id)
                    .is_none_or(|t| t.released || next == Next::ReturnToListen);
                if released {
                    self.free_if_unlinked(id);
                }
            }
            Next::TimeWait => self.enter_time_wait(now, id),
        }
    }

    /// Removes a connection from the 4-tuple table and its listener's counts.
    fn unlink(&mut self, id: ConnId, was_pending: bool) {
        self.unlink_tuple(id);
        let lid = self.tcb(id).and_then(|t| t.listener);
        if let Some(l) = lid
            .and_then(|lid| self.listeners.get_mut(lid.0 as usize))
            .and_then(Option::as_mut)
        {
            if was_pending {
                l.pending = l.pending.saturating_sub(1);
            }
        }
    }

    /// Registers the connection's next deadline in the wheel when it is
    /// earlier than the one already registered (stale entries are skipped
    /// when they fire).
    fn schedule(&mut self, id: ConnId) {
        let Some(t) = self.tcb_mut(id) else { return };
        if let Some(d) = t.next_deadline() {
            if t.wheel_at.is_none_or(|w| d < w) {
                t.wheel_at.set(d);
                self.wheel.insert(d, TimerItem(id));
            }
        }
    }

    /// Moves a connection into the compact TIME-WAIT table.
    fn enter_time_wait(&mut self, now: Instant, id: ConnId) {
        let twice_msl = t_twice_msl(&self.cfg);
        let Some(t) = self.tcb_mut(id) else { return };
        let tuple = t.tuple;
        let entry = TimeWaitEntry {
            snd_nxt: t.snd_max,
            rcv_nxt: t.rcv_nxt,
            expires: now + twice_msl,
            ts_offset: t.ts_offset,
            ts_recent: t.ts.map_or(0, |ts| ts.recent),
            window: (t.recvq.window() as u32 >> t.rcv_wscale).min(0xFFFF) as u16,
            has_ts: t.ts.is_some(),
        };
        let held = !t.released;
        t.timers.stop_all();
        self.unlink_tuple(id);
        if self.time_wait.len() >= self.cfg.max_time_wait {
            // Table full: skip TIME-WAIT rather than grow without bound.
            self.out.state(now, tuple, State::TimeWait, State::Closed);
            self.free_if_unlinked(id);
            return;
        }
        self.time_wait.insert(tuple, entry);
        if held {
            self.tw_owners.insert(tuple, id);
        } else {
            self.free_if_unlinked(id);
        }
    }

    /// The 2×MSL wait is over: CLOSED.
    fn end_time_wait(&mut self, now: Instant, tuple: ConnTuple) {
        if self.time_wait.remove(&tuple).is_some() {
            self.time_wait_ended(now, tuple);
        }
    }

    /// What follows the end of `tuple`'s TIME-WAIT, its entry removed.
    fn time_wait_ended(&mut self, now: Instant, tuple: ConnTuple) {
        self.out.state(now, tuple, State::TimeWait, State::Closed);
        let owner = if self.tw_owners.is_empty() {
            None
        } else {
            self.tw_owners.remove(&tuple)
        };
        if let Some(id) = owner {
            if let Some(t) = self.tcb_mut(id) {
                t.state = State::Closed;
                self.events.push_back(Event::Closed { id, error: None });
            }
        }
    }

    /// A segment for a connection in TIME-WAIT.
    fn time_wait_segment(
        &mut self,
        now: Instant,
        tuple: ConnTuple,
        entry: TimeWaitEntry,
        seg: &Segment<'_>,
    ) {
        self.out.recv(now, tuple, &seg.tcp, seg.payload.len());
        match entry.classify(seg) {
            TwAction::Drop(reason) => self.out.drop(now, Some(tuple), reason),
            TwAction::Ack { restart } => {
                let repr = entry.ack_repr(now, tuple.local.port(), tuple.remote.port());
                self.out
                    .send(now, tuple.local, tuple.remote, &repr, &[], false);
                if restart {
                    // RFC 9293 §3.10.7.4: restart the 2 MSL timeout.
                    let expires = now + t_twice_msl(&self.cfg);
                    self.time_wait.restart(&tuple, expires);
                }
            }
            TwAction::Reopen => {
                let lid = self.find_listener(tuple.local);
                match lid {
                    Some(lid) => {
                        self.end_time_wait(now, tuple);
                        // MAY-2: the new ISS lies above the old sequence space.
                        let floor = entry.snd_nxt.add(1 << 17);
                        self.listen_segment(now, lid, tuple, seg, Some(floor));
                    }
                    None => self.out.drop(now, Some(tuple), "SYN in TIME-WAIT"),
                }
            }
        }
    }

    /// §3.10.7.2: a segment for a listener.
    fn listen_segment(
        &mut self,
        now: Instant,
        lid: ListenerId,
        tuple: ConnTuple,
        seg: &Segment<'_>,
        iss_floor: Option<Seq>,
    ) {
        let t = &seg.tcp;
        if t.flags.rst() {
            self.out.drop(now, Some(tuple), "RST to a listener");
            return;
        }
        if t.flags.ack() {
            self.out.recv(now, tuple, t, seg.payload.len());
            self.out.drop(now, Some(tuple), "ACK to a listener");
            self.reply_rst(now, tuple, seg);
            return;
        }
        if !t.flags.syn() {
            self.out.drop(now, Some(tuple), "no SYN to a listener");
            return;
        }
        let full = match self.listener(lid) {
            Ok(l) => l.pending + l.ready.len() >= l.backlog,
            Err(_) => true,
        };
        if full || self.conns.len() >= self.cfg.max_connections {
            self.out.drop(now, Some(tuple), "listen queue full");
            return;
        }
        let mut iss = Seq(self.isn.isn(now, tuple.local, tuple.remote));
        if let Some(floor) = iss_floor {
            if iss.lt(floor) {
                iss = floor;
            }
        }
        let mut tcb = self.new_tcb(tuple, iss, State::Listen);
        tcb.passive = true;
        tcb.listener = Some(lid);
        let id = self.insert_tcb(tcb);
        if let Ok(l) = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(())
        {
            l.pending += 1;
        }
        self.with_conn(now, id, |tcb, ctx| {
            ctx.out.recv(ctx.now, tuple, t, seg.payload.len());
            tcb.set_state(ctx, State::SynReceived);
            tcb.irs = Seq(t.seq);
            tcb.rcv_nxt = tcb.irs.add(1);
            tcb.rcv_adv = tcb.rcv_nxt;
            tcb.last_ack_sent = tcb.rcv_nxt;
            tcb.negotiate(ctx, &t.options);
            tcb.snd_wnd = u32::from(t.window);
            tcb.max_snd_wnd = tcb.snd_wnd;
            tcb.snd_wl1 = Seq(t.seq);
            tcb.send_syn(ctx, false);
            tcb.timing.set(tcb.iss.add(1), ctx.now);
            Next::Stay
        });
    }

    /// §3.10.7.1: a segment for no connection and no listener.
    fn closed_segment(&mut self, now: Instant, tuple: ConnTuple, seg: &Segment<'_>) {
        self.out.recv(now, tuple, &seg.tcp, seg.payload.len());
        self.out.drop(now, Some(tuple), "no such connection");
        if !seg.tcp.flags.rst() {
            self.reply_rst(now, tuple, seg);
        }
    }

    /// The RST answering a segment that has no place (§3.10.7.1): with ACK
    /// set, `<SEQ=SEG.ACK><CTL=RST>`; without, `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
    fn reply_rst(&mut self, now: Instant, tuple: ConnTuple, seg: &Segment<'_>) {
        let t = &seg.tcp;
        let mut repr = TcpRepr {
            src_port: tuple.local.port(),
            dst_port: tuple.remote.port(),
            ..TcpRepr::default()
        };
        if t.flags.ack() {
            repr.seq = t.ack;
            repr.flags = TcpFlags::RST;
        } else {
            let seg_len =
                seg.payload.len() as u32 + u32::from(t.flags.syn()) + u32::from(t.flags.fin());
            repr.seq = 0;
            repr.ack = t.seq.wrapping_add(seg_len);
            repr.flags = TcpFlags::RST | TcpFlags::ACK;
        }
        self.out
            .send(now, tuple.local, tuple.remote, &repr, &[], false);
    }

    /// Picks a free ephemeral port for (local_ip, remote), RFC 6056 style:
    /// a keyed starting point per destination, then the next free one.
    fn ephemeral_port(&mut self, local_ip: IpAddr, remote: SocketAddr) -> Result<u16, Error> {
        let lo = u32::from(self.cfg.ephemeral_low);
        let hi = u32::from(self.cfg.ephemeral_high.max(self.cfg.ephemeral_low));
        let range = hi - lo + 1;
        let start = self.isn.ephemeral_port_offset(local_ip, remote);
        self.port_counter = self.port_counter.wrapping_add(1);
        for i in 0..range {
            let port = (lo + start.wrapping_add(self.port_counter).wrapping_add(i) % range) as u16;
            let tuple = ConnTuple {
                local: SocketAddr::new(local_ip, port),
                remote,
            };
            if self.find_conn(&tuple).is_none()
                && !self.time_wait.contains_key(&tuple)
                && !self.listen_map.contains_key(&tuple.local)
            {
                self.port_counter = self.port_counter.wrapping_add(i);
                return Ok(port);
            }
        }
        Err(Error::NoPorts)
    }
}

fn t_twice_msl(cfg: &Config) -> core::time::Duration {
    cfg.msl * 2
}

/// Smallest window scale that lets `buffer` bytes be advertised (RFC 7323 §2.3).
fn wscale_for(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (buffer >> shift) > 0xFFFF {
        shift += 1;
    }
    shift
}

/// A remote address we may talk to: not unspecified, multicast or
/// broadcast (MUST-46, MUST-63).
fn valid_remote(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
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
