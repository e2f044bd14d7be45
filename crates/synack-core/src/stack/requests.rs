//! Transparent listening and deferred handshakes: a listener for every
//! destination that arrives (as tun2socks-style tools need), and SYNs held
//! unanswered as connection requests until the application completes the
//! handshake or refuses it (RST as RFC 9293 §3.10.7.1 forms it, an ICMP
//! destination unreachable, or silence).
//!
//! A pending request keeps what the SYN said (its header, as
//! §3.10.7.2 would take it into a TCB) and nothing else: no TCB, no
//! buffers. Requests are bounded with the SYN-RECEIVED children by
//! `Config::max_syn_backlog`, with the connections by
//! `Config::max_connections`, and expire after `Config::request_timeout`.

use alloc::collections::VecDeque;
use alloc::vec;
use core::hash::BuildHasher;
use core::net::{IpAddr, SocketAddr};

use hashbrown::HashMap;
use synack_wire::{emit_icmp_error, emit_packet, icmp_error_len, packet_len, IcmpKind, Segment};
use synack_wire::{TcpFlags, TcpRepr};

use super::{KeyedHash, Stack};
use crate::conn::Tcb;
use crate::seq::Seq;
use crate::{ConnId, ConnTuple, Error, Event, Instant, ListenerId, RequestId, State};

/// How a transparent listener ([`Stack::listen_transparent`]) treats a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Handshake {
    /// Answer with a SYN-ACK at once; established connections queue for
    /// [`Stack::accept`], as with [`Stack::listen`].
    Complete,
    /// Answer nothing yet: the SYN becomes a [`ConnectionRequest`]
    /// ([`crate::Event::Request`]), and the application decides with
    /// [`Stack::accept_request`] or [`Stack::refuse_request`].
    Defer,
}

/// A SYN held by a [`Handshake::Defer`] listener, waiting for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionRequest {
    /// Its handle, for [`Stack::accept_request`] and [`Stack::refuse_request`].
    pub id: RequestId,
    /// The address and port the client asked for: the original destination.
    pub local: SocketAddr,
    /// The client's address and port.
    pub remote: SocketAddr,
}

/// How [`Stack::refuse_request`] answers a connection request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// An RST (RFC 9293 §3.10.7.1, `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`):
    /// the client sees "connection refused", as from a closed port.
    Reset,
    /// An ICMP (IPv4) or ICMPv6 destination unreachable from the original
    /// destination, quoting the SYN: the client sees the error it names.
    Unreachable(Unreachable),
    /// Nothing: the client retransmits its SYN and times out, as behind a
    /// host that is down or a firewall that drops. The refusal answers the
    /// SYN held; each retransmission arrives as a new request, for the
    /// application to refuse again (or accept, if its upstream came up).
    Silent,
}

/// The destination unreachable code of a [`Refusal::Unreachable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unreachable {
    /// No route to the network (ICMPv4 code 0, ICMPv6 code 0 "no route").
    Network,
    /// The host cannot be reached (ICMPv4 code 1, ICMPv6 code 3 "address
    /// unreachable").
    Host,
    /// Nothing listens on the port (ICMPv4 code 3, ICMPv6 code 4): TCP
    /// clients take it as a refusal (RFC 1122 §4.2.3.9).
    Port,
    /// Administratively prohibited (ICMPv4 code 13, ICMPv6 code 1).
    AdminProhibited,
}

impl Unreachable {
    /// The code of the message for this IP version (RFC 792, RFC 1812
    /// §5.2.7.1, RFC 4443 §3.1).
    fn code(self, v6: bool) -> u8 {
        match (self, v6) {
            (Unreachable::Network, _) => 0,
            (Unreachable::Host, false) => 1,
            (Unreachable::Host, true) => 3,
            (Unreachable::Port, false) => 3,
            (Unreachable::Port, true) => 4,
            (Unreachable::AdminProhibited, false) => 13,
            (Unreachable::AdminProhibited, true) => 1,
        }
    }
}

/// What a pending request keeps of its SYN.
#[derive(Clone, Copy, Debug)]
struct Pending {
    lid: ListenerId,
    tuple: ConnTuple,
    /// The SYN's header (sequence number, window, options, flags).
    syn: TcpRepr,
    /// Its payload length (SEG.LEN counts it), and IP TTL and TOS, to
    /// quote it in an ICMP error and hand it to the TCB as it came.
    payload_len: u32,
    ttl: u8,
    tos: u8,
    /// The least ISS of a connection reopened from TIME-WAIT (MAY-2).
    iss_floor: Option<Seq>,
}

/// Every pending request of the stack, and the connections made from one
/// still in SYN-RECEIVED (they count as half-open for their listener).
pub(super) struct Requests {
    by_id: HashMap<RequestId, Pending, KeyedHash>,
    by_tuple: HashMap<ConnTuple, RequestId, KeyedHash>,
    /// Expiry order: requests all live `Config::request_timeout`, so the
    /// order of arrival is the order of expiry. Decided requests are
    /// skipped when they come to the front.
    expiry: VecDeque<(Instant, RequestId)>,
    next: u64,
    /// Accepted requests not yet past SYN-RECEIVED, with their listener.
    pub(super) opening: HashMap<ConnId, ListenerId, KeyedHash>,
}

impl Requests {
    pub(super) fn new(hasher: KeyedHash) -> Self {
        Requests {
            by_id: HashMap::with_hasher(hasher.clone()),
            by_tuple: HashMap::with_hasher(hasher.clone()),
            expiry: VecDeque::new(),
            next: 0,
            opening: HashMap::with_hasher(hasher),
        }
    }

    /// Pending requests.
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The pending request of `tuple`, if any.
    #[inline]
    pub(super) fn find(&self, tuple: &ConnTuple) -> Option<RequestId> {
        if self.by_id.is_empty() {
            return None;
        }
        self.by_tuple.get(tuple).copied()
    }

    /// When the oldest pending request expires (perhaps early: a decided
    /// one may still be at the front).
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.expiry.front().map(|&(at, _)| at)
    }

    fn insert(&mut self, p: Pending, expires: Instant) -> RequestId {
        let id = RequestId(self.next);
        self.next += 1;
        self.by_tuple.insert(p.tuple, id);
        self.by_id.insert(id, p);
        self.expiry.push_back((expires, id));
        id
    }

    fn remove(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.by_id.remove(&id)?;
        self.by_tuple.remove(&p.tuple);
        // Keep the front live, so that the next expiry is a real one.
        while let Some(&(_, front)) = self.expiry.front() {
            if self.by_id.contains_key(&front) {
                break;
            }
            self.expiry.pop_front();
        }
        Some(p)
    }

    /// The next request due at `now`.
    fn pop_expired(&mut self, now: Instant) -> Option<RequestId> {
        while let Some(&(at, id)) = self.expiry.front() {
            if !self.by_id.contains_key(&id) {
                self.expiry.pop_front();
                continue;
            }
            return (at <= now).then_some(id);
        }
        None
    }
}

impl Stack {
    /// A listener for every destination address and port that arrives
    /// (IPv4 and IPv6): "transparent", as tun2socks tools need. Each
    /// connection's local address is the destination its client asked
    /// for. Ordinary listeners and connections on the stack's own addresses
    /// keep precedence; broadcast, multicast, unspecified and loopback
    /// destinations are never taken (MUST-57). At most one per stack
    /// (`Error::AddrInUse`). `backlog` bounds the accept queue
    /// ([`Handshake::Complete`]) or the requests not yet polled
    /// ([`Handshake::Defer`]).
    ///
    /// Once a stack has had a transparent listener it keeps taking
    /// segments to any address, so that connections accepted through it
    /// outlive it; a SYN that then finds no listener is refused with an RST
    /// as at a closed port.
    pub fn listen_transparent(
        &mut self,
        backlog: usize,
        handshake: Handshake,
    ) -> Result<ListenerId, Error> {
        if self.transparent.is_some() {
            return Err(Error::AddrInUse);
        }
        let any = SocketAddr::new(IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED), 0);
        let id = self.add_listener(any, backlog, Some(handshake));
        self.transparent = Some(id);
        self.any_destination = true;
        Ok(id)
    }

    /// The next connection request of a [`Handshake::Defer`] listener not
    /// yet handed out (each is handed out once).
    pub fn poll_request(&mut self, lid: ListenerId) -> Option<ConnectionRequest> {
        loop {
            let l = self
                .listeners
                .get_mut(lid.0 as usize)
                .and_then(Option::as_mut)?;
            let id = l.unpolled.pop_front()?;
            // Expired or withdrawn meanwhile: skipped.
            if let Some(p) = self.requests.by_id.get(&id) {
                return Some(ConnectionRequest {
                    id,
                    local: p.tuple.local,
                    remote: p.tuple.remote,
                });
            }
        }
    }

    /// Pending connection requests, over all listeners.
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// Completes the handshake of a request: the SYN-ACK leaves now and the
    /// connection, in SYN-RECEIVED, is the caller's (as after
    /// [`Stack::connect`]: it does not go to the accept queue). It raises
    /// [`Event::Connected`] on reaching ESTABLISHED, or `Event::Closed`
    /// with the error (`Refused` when the client resets it, `TimedOut`
    /// when the SYN-ACK's retransmissions run out).
    pub fn accept_request(&mut self, now: Instant, id: RequestId) -> Result<ConnId, Error> {
        let p = *self.requests.by_id.get(&id).ok_or(Error::InvalidHandle)?;
        let h = self.hasher.hash_one(p.tuple);
        if self.conns.find(h, &p.tuple).is_some() || self.time_wait.contains_key_hashed(h, &p.tuple)
        {
            // Only a connection opened meanwhile from our own address.
            return Err(Error::AddrInUse);
        }
        self.take_request(id);
        self.out.stats.requests_accepted += 1;
        let mut iss = Seq(self.isn.isn(now, p.tuple.local, p.tuple.remote));
        if let Some(floor) = p.iss_floor.filter(|&f| iss.lt(f)) {
            iss = floor;
        }
        let ts_offset = self.isn.ts_offset(p.tuple.local, p.tuple.remote);
        let mut tcb = Tcb::passive(&self.cfg, p.tuple, iss, ts_offset, p.lid);
        if let Ok(l) = self.listener(p.lid) {
            tcb.set_dscp(l.dscp);
        }
        tcb.held_from_request();
        let conn = self.insert_tcb(tcb);
        if let Some(l) = self.listener_mut(p.lid) {
            l.pending += 1;
        }
        self.requests.opening.insert(conn, p.lid);
        let seg = Segment {
            src: p.tuple.remote.ip(),
            dst: p.tuple.local.ip(),
            ttl: p.ttl,
            tos: p.tos,
            tcp: p.syn,
            payload: &[],
        };
        // RFC 9293 §3.10.7.2, as if the SYN arrived now.
        self.with_conn(now, conn, |tcb, ctx| tcb.on_listen_syn(ctx, &seg));
        Ok(conn)
    }

    /// Refuses a request: with an RST, an ICMP destination unreachable, or
    /// silence ([`Refusal`]). The request is gone either way.
    pub fn refuse_request(
        &mut self,
        now: Instant,
        id: RequestId,
        how: Refusal,
    ) -> Result<(), Error> {
        let p = self.take_request(id).ok_or(Error::InvalidHandle)?;
        self.now = self.now.max(now);
        self.out.stats.requests_refused += 1;
        match how {
            Refusal::Reset => self.rst_for(now, p.tuple, &p.syn, p.payload_len),
            Refusal::Unreachable(u) => self.send_unreachable(&p, u),
            Refusal::Silent => {}
        }
        Ok(())
    }

    /// A SYN with room for one more request on Defer listener `lid`.
    pub(super) fn defer_syn(
        &mut self,
        now: Instant,
        lid: ListenerId,
        tuple: ConnTuple,
        seg: &Segment<'_>,
        iss_floor: Option<Seq>,
    ) {
        self.out.recv(now, tuple, &seg.tcp, seg.payload.len());
        let p = Pending {
            lid,
            tuple,
            syn: seg.tcp,
            payload_len: seg.payload.len() as u32,
            ttl: seg.ttl,
            tos: seg.tos,
            iss_floor,
        };
        let id = self.requests.insert(p, now + self.cfg.request_timeout);
        self.out.stats.requests_deferred += 1;
        if let Some(l) = self.listener_mut(lid) {
            l.requests += 1;
            l.unpolled.push_back(id);
        }
        self.events.push_back(Event::Request(lid));
    }

    /// A segment for a pending request's 4-tuple. A SYN again (the client
    /// retransmits while the application decides) is absorbed; a new
    /// sequence number replaces the SYN kept (the client started over, and
    /// the answer must be to the SYN it now waits on). An RST at the SYN's
    /// next sequence number withdraws the request (RFC 5961 §3.2's exact
    /// match: the client has no other number to use). Anything else is
    /// what a listener gets (§3.10.7.2: ACKs are reset, the rest dropped).
    pub(super) fn request_segment(
        &mut self,
        now: Instant,
        id: RequestId,
        tuple: ConnTuple,
        seg: &Segment<'_>,
    ) {
        let t = &seg.tcp;
        let Some(p) = self.requests.by_id.get_mut(&id) else {
            return;
        };
        if t.flags.syn() && !t.flags.ack() && !t.flags.rst() {
            p.syn = *t;
            p.payload_len = seg.payload.len() as u32;
            self.out.recv(now, tuple, t, seg.payload.len());
            self.out.stats.request_syns_absorbed += 1;
            self.out
                .drop(now, Some(tuple), "SYN for a pending connection request");
            return;
        }
        if t.flags.rst() {
            self.out.recv(now, tuple, t, seg.payload.len());
            if t.seq == p.syn.seq.wrapping_add(1) {
                self.take_request(id);
                self.out.stats.requests_reset += 1;
            } else {
                self.out
                    .drop(now, Some(tuple), "RST outside a connection request");
            }
            return;
        }
        let lid = p.lid;
        self.listen_segment(now, lid, tuple, seg, None);
    }

    /// Drops every request whose time is up, unanswered (the client sees a
    /// SYN that went unanswered).
    pub(super) fn expire_requests(&mut self, now: Instant) {
        while let Some(id) = self.requests.pop_expired(now) {
            if let Some(p) = self.take_request(id) {
                self.out.stats.requests_expired += 1;
                self.out
                    .drop(now, Some(p.tuple), "connection request expired");
            }
        }
    }

    /// Refuses, with RSTs, every pending request of a listener that closes.
    pub(super) fn refuse_requests_of(&mut self, now: Instant, lid: ListenerId) {
        let ids: alloc::vec::Vec<RequestId> = self
            .requests
            .by_id
            .iter()
            .filter(|(_, p)| p.lid == lid)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let _ = self.refuse_request(now, id, Refusal::Reset);
        }
        self.requests.opening.retain(|_, l| *l != lid);
    }

    /// A connection made by `accept_request` left SYN-RECEIVED (or never
    /// will): it no longer counts as half-open.
    #[inline]
    pub(super) fn request_opened(&mut self, id: ConnId, state: State) {
        if self.requests.opening.is_empty() || state == State::SynReceived {
            return;
        }
        if let Some(lid) = self.requests.opening.remove(&id) {
            self.pending_gone(lid);
        }
    }

    /// Removes a request from the table and its listener's count.
    fn take_request(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.requests.remove(id)?;
        if let Some(l) = self.listener_mut(p.lid) {
            l.requests = l.requests.saturating_sub(1);
        }
        Some(p)
    }

    /// Sends an ICMP or ICMPv6 destination unreachable from the request's
    /// original destination to its client, quoting the SYN (its IP and TCP
    /// headers as they arrived, rebuilt from what the request kept; RFC 792
    /// asks for the IP header and 64 bits, RFC 4443 §3.1 for as much as
    /// fits: the whole header is well within both).
    fn send_unreachable(&mut self, p: &Pending, u: Unreachable) {
        let (client, dest) = (p.tuple.remote.ip(), p.tuple.local.ip());
        let mut quoted = vec![0u8; packet_len(client, &p.syn, 0)];
        let Ok(n) = emit_packet(&mut quoted, client, dest, p.ttl, p.tos, &p.syn, &[]) else {
            return;
        };
        quoted.truncate(n);
        let kind = IcmpKind::DestinationUnreachable(u.code(dest.is_ipv6()));
        let mut buf = vec![0u8; icmp_error_len(dest, quoted.len())];
        match emit_icmp_error(&mut buf, dest, client, self.cfg.ttl, kind, &quoted) {
            Ok(len) => {
                buf.truncate(len);
                self.out.stats.icmp_unreachable_sent += 1;
                self.out.send_raw(buf);
            }
            Err(e) => self.out.drop(self.now, Some(p.tuple), e.reason()),
        }
    }

    /// The RST that answers a segment without ACK (§3.10.7.1):
    /// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
    fn rst_for(&mut self, now: Instant, tuple: ConnTuple, t: &TcpRepr, payload_len: u32) {
        let seg_len = payload_len + u32::from(t.flags.syn()) + u32::from(t.flags.fin());
        let repr = TcpRepr {
            src_port: tuple.local.port(),
            dst_port: tuple.remote.port(),
            seq: 0,
            ack: t.seq.wrapping_add(seg_len),
            flags: TcpFlags::RST | TcpFlags::ACK,
            ..TcpRepr::default()
        };
        self.out
            .send(now, tuple.local, tuple.remote, &repr, &[], false);
    }
}
