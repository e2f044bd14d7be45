//! Listeners: the passive OPEN (RFC 9293 §3.10.1) and its accept queue,
//! SEGMENT ARRIVES in LISTEN (§3.10.7.2) and in CLOSED (§3.10.7.1), and
//! the RST that answers a segment with no place.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use synack_wire::{Dscp, Segment, TcpFlags, TcpRepr};

use super::Stack;
use crate::conn::Tcb;
use crate::seq::Seq;
use crate::{ConnId, ConnTuple, Error, Event, Instant, ListenerId};

/// A passive OPEN (RFC 9293 §3.10.1) and its accept queue.
pub(super) struct Listener {
    local: SocketAddr,
    backlog: usize,
    /// Children in SYN-RECEIVED.
    pending: usize,
    /// ESTABLISHED children waiting for `accept`.
    ready: VecDeque<ConnId>,
    /// The DSCP its connections start with, SYN-ACK included (MUST-48).
    pub(super) dscp: Dscp,
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
        let l = Listener {
            local,
            backlog: backlog.max(1),
            pending: 0,
            ready: VecDeque::new(),
            dscp: self.cfg.dscp,
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

    pub(super) fn listener(&self, lid: ListenerId) -> Result<&Listener, Error> {
        self.listeners
            .get(lid.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(Error::InvalidHandle)
    }

    /// The listener for `local`: one bound to that address, else one bound
    /// to the unspecified address of its family on the same port.
    pub(super) fn find_listener(&self, local: SocketAddr) -> Option<ListenerId> {
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
        let ts_offset = self.isn.ts_offset(tuple.local, tuple.remote);
        let mut tcb = Tcb::passive(&self.cfg, tuple, iss, ts_offset, lid);
        if let Ok(l) = self.listener(lid) {
            tcb.set_dscp(l.dscp);
        }
        let id = self.insert_tcb(tcb);
        if let Ok(l) = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(())
        {
            l.pending += 1;
        }
        self.with_conn(now, id, |tcb, ctx| tcb.on_listen_syn(ctx, seg));
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
}
