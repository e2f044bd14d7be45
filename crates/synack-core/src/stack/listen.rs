//! Listeners: the passive OPEN (RFC 9293 §3.10.1) and its accept queue,
//! SEGMENT ARRIVES in LISTEN (§3.10.7.2) and in CLOSED (§3.10.7.1), and
//! the RST that answers a segment with no place.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use synack_wire::{Dscp, Segment, TcpFlags, TcpRepr};

use super::{Handshake, Stack};
use crate::conn::Tcb;
use crate::seq::Seq;
use crate::{ConnId, ConnTuple, Error, Event, Instant, ListenerId, RequestId};

/// A passive OPEN (RFC 9293 §3.10.1), its SYN queue and its accept queue.
pub(super) struct Listener {
    local: SocketAddr,
    /// Bound of the accept queue (`listen`'s backlog, as on Linux).
    pub(super) backlog: usize,
    /// Children in SYN-RECEIVED: the SYN queue, bounded by
    /// `Config::max_syn_backlog`.
    pub(super) pending: usize,
    /// ESTABLISHED children waiting for `accept`.
    pub(super) ready: VecDeque<ConnId>,
    /// The DSCP its connections start with, SYN-ACK included (MUST-48).
    pub(super) dscp: Dscp,
    /// When this listener last sent a SYN cookie: only then are ACKs to it
    /// checked for one (two clock ticks), so that a listener never flooded
    /// gives forgers nothing to guess at.
    pub(super) cookie_at: Option<Instant>,
    /// `Some` for the transparent listener: how it answers SYNs.
    pub(super) handshake: Option<Handshake>,
    /// Its pending connection requests ([`Handshake::Defer`]), which count
    /// with `pending` against `Config::max_syn_backlog`.
    pub(super) requests: usize,
    /// Requests not yet handed out by `poll_request`, oldest first (some
    /// may have expired meanwhile: skipped then).
    pub(super) unpolled: VecDeque<RequestId>,
}

impl Stack {
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
        let id = self.add_listener(local, backlog, None);
        self.listen_map.insert(local, id);
        Ok(id)
    }

    /// Stores a new listener in the first free slot.
    pub(super) fn add_listener(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        handshake: Option<Handshake>,
    ) -> ListenerId {
        let l = Listener {
            local,
            backlog: backlog.max(1),
            pending: 0,
            ready: VecDeque::new(),
            dscp: self.cfg.dscp,
            cookie_at: None,
            handshake,
            requests: 0,
            unpolled: VecDeque::new(),
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
        ListenerId(idx as u32)
    }

    /// The local address a listener listens on (`[::]:0` for the
    /// transparent one, which has none of its own).
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
            t.accepted();
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
        if self.transparent == Some(lid) {
            self.transparent = None;
        } else {
            self.listen_map.remove(&l.local);
        }
        self.refuse_requests_of(now, lid);
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

    pub(super) fn listener(&self, lid: ListenerId) -> Result<&Listener, Error> {
        self.listeners
            .get(lid.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(Error::InvalidHandle)
    }

    pub(super) fn listener_mut(&mut self, lid: ListenerId) -> Option<&mut Listener> {
        self.listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
    }

    /// The listener a segment for `local` (no connection's) goes to: on one
    /// of our addresses an ordinary listener of it, else the transparent
    /// one.
    pub(super) fn listener_for(&self, local: SocketAddr) -> Option<ListenerId> {
        let ordinary = if self.listen_map.is_empty() || !self.is_local(local.ip()) {
            None
        } else {
            self.find_listener(local)
        };
        ordinary.or(self.transparent)
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

    /// A passive child of `lid` reached ESTABLISHED (RFC 9293 §3.10.7.4,
    /// SYN-RECEIVED): it leaves the listener's count of SYN-RECEIVED
    /// children for its accept queue, and the application is told. False
    /// when the listener is gone: nobody will accept the connection.
    pub(super) fn queue_for_accept(&mut self, lid: ListenerId, id: ConnId) -> bool {
        match self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
        {
            Some(l) => {
                l.pending = l.pending.saturating_sub(1);
                l.ready.push_back(id);
                self.events.push_back(Event::Incoming(lid));
                true
            }
            None => false,
        }
    }

    /// A SYN-RECEIVED child of `lid` is gone (reset, timed out): it no
    /// longer counts against the backlog.
    pub(super) fn pending_gone(&mut self, lid: ListenerId) {
        if let Some(l) = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
        {
            l.pending = l.pending.saturating_sub(1);
        }
    }

    /// §3.10.7.2: a segment for a listener.
    pub(super) fn listen_segment(
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
            // RFC 4987 §3.6: the third segment of a handshake answered with
            // a cookie finds no TCB; the cookie it returns may make one.
            if !t.flags.syn() && self.ack_with_cookie(now, lid, tuple, seg) {
                return;
            }
            self.out.recv(now, tuple, t, seg.payload.len());
            self.out.drop(now, Some(tuple), "ACK to a listener");
            self.reply_rst(now, tuple, seg);
            return;
        }
        if !t.flags.syn() {
            self.out.drop(now, Some(tuple), "no SYN to a listener");
            return;
        }
        let Ok(l) = self.listener(lid) else {
            self.out.drop(now, Some(tuple), "listen queue full");
            return;
        };
        // As Linux: with the accept queue full a SYN is dropped, cookie or
        // not (the peer retransmits it; the application is behind). The
        // requests a Defer listener has not handed out yet are its queue.
        let handshake = l.handshake;
        let queued = match handshake {
            Some(Handshake::Defer) => l.unpolled.len(),
            _ => l.ready.len(),
        };
        if queued >= l.backlog {
            self.out.recv(now, tuple, t, seg.payload.len());
            self.out.drop(now, Some(tuple), "accept queue full");
            return;
        }
        let half_open = l.pending + l.requests < self.cfg.max_syn_backlog;
        let slots = self.conns.len() + self.requests.len() < self.cfg.max_connections;
        let room = half_open && slots && self.admits_passive_open();
        if !room && handshake.is_some() {
            // A limit the tool set: the client is refused at once and
            // cleanly, as by a closed port (§3.10.7.1); nothing already
            // open is touched. No cookies: a Defer listener must decide
            // before answering, and a tool wants its limit kept.
            self.out.recv(now, tuple, t, seg.payload.len());
            let reason = if half_open {
                "connection limit reached"
            } else {
                "half-open limit reached"
            };
            self.out.drop(now, Some(tuple), reason);
            self.out.stats.syns_refused_at_limit += 1;
            self.reply_rst(now, tuple, seg);
            return;
        }
        if !room {
            if self.cfg.syn_cookies {
                self.send_cookie(now, lid, tuple, seg);
            } else {
                self.out.recv(now, tuple, t, seg.payload.len());
                self.out.drop(now, Some(tuple), "listen queue full");
            }
            return;
        }
        if handshake == Some(Handshake::Defer) {
            self.defer_syn(now, lid, tuple, seg, iss_floor);
        } else {
            self.open_half(now, lid, tuple, seg, iss_floor);
        }
    }

    /// A SYN with room in the SYN queue: a TCB in SYN-RECEIVED answers it
    /// (§3.10.7.2).
    fn open_half(
        &mut self,
        now: Instant,
        lid: ListenerId,
        tuple: ConnTuple,
        seg: &Segment<'_>,
        iss_floor: Option<Seq>,
    ) {
        let mut iss = Seq(self.isn.isn(now, tuple.local, tuple.remote));
        if let Some(floor) = iss_floor {
            if iss.lt(floor) {
                iss = floor;
            }
        }
        let id = self.insert_passive(tuple, iss, lid);
        self.with_conn(now, id, |tcb, ctx| tcb.on_listen_syn(ctx, seg));
    }

    /// Stores a passive child of `lid` in LISTEN and counts it in the
    /// listener's SYN queue.
    pub(super) fn insert_passive(&mut self, tuple: ConnTuple, iss: Seq, lid: ListenerId) -> ConnId {
        let ts_offset = self.isn.ts_offset(tuple.local, tuple.remote);
        let mut tcb = Tcb::passive(&self.cfg, tuple, iss, ts_offset, lid);
        if let Ok(l) = self.listener(lid) {
            tcb.set_dscp(l.dscp);
        }
        let id = self.insert_tcb(tcb);
        if let Some(l) = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
        {
            l.pending += 1;
        }
        id
    }

    /// §3.10.7.1: a segment for no connection and no listener.
    pub(super) fn closed_segment(&mut self, now: Instant, tuple: ConnTuple, seg: &Segment<'_>) {
        self.out.recv(now, tuple, &seg.tcp, seg.payload.len());
        self.out.drop(now, Some(tuple), "no such connection");
        if !seg.tcp.flags.rst() {
            self.reply_rst(now, tuple, seg);
        }
    }

    /// The RST answering a segment that has no place (§3.10.7.1): with ACK
    /// set, `<SEQ=SEG.ACK><CTL=RST>`; without, `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
    pub(super) fn reply_rst(&mut self, now: Instant, tuple: ConnTuple, seg: &Segment<'_>) {
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
}
