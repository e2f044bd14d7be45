//! SYN cookies on the stack's side (RFC 4987 §3.6; the cookie itself is
//! `crate::syncookie`): the SYN-ACK a listener with no room sends without
//! keeping anything, the ACK that brings a cookie back, and the memory
//! budget that decides, with the SYN queue, whether a passive open gets a
//! TCB.

use synack_wire::{Segment, TcpFlags, TcpOptions, TcpRepr};

use super::Stack;
use crate::conn::{default_peer_mss, offered_wscale, our_mss, synack_window};
use crate::conns::SLOT_BYTES;
use crate::seq::Seq;
use crate::syncookie::{self, PERIOD_SECS};
use crate::{ConnTuple, Instant, ListenerId};

impl Stack {
    /// Memory the connections have committed under `Config::memory_budget`:
    /// every TCB's slot, and the buffers that those past SYN-RECEIVED may
    /// grow to.
    pub fn memory_committed(&self) -> usize {
        let half = self.half_open_count();
        let full = self.conns.len().saturating_sub(half);
        let buffers = self.cfg.send_buffer.saturating_add(self.cfg.recv_buffer);
        self.conns
            .len()
            .saturating_mul(SLOT_BYTES)
            .saturating_add(full.saturating_mul(buffers))
    }

    /// Passive children in SYN-RECEIVED, over all listeners (their SYN
    /// queues).
    pub fn half_open_count(&self) -> usize {
        self.listeners.iter().flatten().map(|l| l.pending).sum()
    }

    /// Whether one more passive connection, buffers and all, fits in the
    /// memory budget.
    pub(super) fn admits_passive_open(&self) -> bool {
        if self.cfg.memory_budget == usize::MAX {
            return true;
        }
        let one = SLOT_BYTES + self.cfg.send_buffer + self.cfg.recv_buffer;
        self.memory_committed().saturating_add(one) <= self.cfg.memory_budget
    }

    /// RFC 4987 §3.6: answers a SYN with `<SEQ=cookie><ACK=SEG.SEQ+1>
    /// <CTL=SYN,ACK>` and keeps nothing. Data on the SYN is not kept either:
    /// the SYN-ACK acknowledges only the SYN, and the peer sends it again.
    /// An ECN-setup SYN is agreed to (ECE on the SYN-ACK, RFC 3168 §6.1.1)
    /// only where the timestamp can remember it.
    pub(super) fn send_cookie(
        &mut self,
        now: Instant,
        lid: ListenerId,
        tuple: ConnTuple,
        seg: &Segment<'_>,
    ) {
        let t = &seg.tcp;
        self.out.recv(now, tuple, t, seg.payload.len());
        let v6 = tuple.local.is_ipv6();
        let peer_mss = t.options.mss.map_or(default_peer_mss(v6), u32::from);
        let mut repr = TcpRepr {
            src_port: tuple.local.port(),
            dst_port: tuple.remote.port(),
            seq: syncookie::make(&self.isn, now, tuple, t.seq, peer_mss),
            ack: t.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: synack_window(&self.cfg),
            ..TcpRepr::default()
        };
        repr.options.mss = Some(our_mss(&self.cfg, v6).min(0xFFFF) as u16);
        // Window scaling and SACK only where the timestamp can remember
        // them (RFC 7323 §2.2, RFC 2018 §2: offered in the SYN-ACK or never).
        if let (true, Some((tsval, _))) = (self.cfg.timestamps, t.options.timestamps) {
            let wscale = t.options.window_scale.filter(|_| self.cfg.window_scaling);
            let sack = self.cfg.sack && t.options.sack_permitted;
            let ecn_setup = t.flags.contains(TcpFlags::ECE | TcpFlags::CWR);
            let ecn = self.cfg.ecn.accepts() && ecn_setup;
            let offset = self.isn.ts_offset(tuple.local, tuple.remote);
            let clock = ((now.micros() / 1000) as u32).wrapping_add(offset);
            let tsv = syncookie::ts_encode(clock, wscale, sack, ecn);
            repr.options.timestamps = Some((tsv, tsval));
            if ecn {
                repr.flags |= TcpFlags::ECE;
            }
            repr.options.window_scale = wscale.map(|_| offered_wscale(&self.cfg));
            repr.options.sack_permitted = sack;
        }
        // The listener's DSCP, as on the SYN-ACK of a stored child (MUST-48).
        let tos = self.listener(lid).map_or(self.out.tos, |l| l.dscp.tos(0));
        self.out
            .send_with_tos(now, tuple.local, tuple.remote, tos, &repr);
        self.out.stats.syn_cookies_sent += 1;
        if let Some(l) = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
        {
            l.cookie_at = Some(now);
        }
    }

    /// An ACK to listener `lid` with no TCB: if the listener sent cookies
    /// lately, is SEG.ACK-1 a valid cookie for this tuple and SEG.SEQ-1?
    /// Then the connection is built ESTABLISHED and queued for accept
    /// (true). A bad cookie is dropped and answered by a reset, as any ACK
    /// to a listener (true). False: no cookies lately, the caller treats
    /// the ACK as RFC 9293 §3.10.7.2 says.
    pub(super) fn ack_with_cookie(
        &mut self,
        now: Instant,
        lid: ListenerId,
        tuple: ConnTuple,
        seg: &Segment<'_>,
    ) -> bool {
        let Ok(l) = self.listener(lid) else {
            return false;
        };
        let recent = l
            .cookie_at
            .is_some_and(|at| now.saturating_since(at).as_secs() < 2 * PERIOD_SECS);
        if !recent {
            return false;
        }
        let accept_full = l.ready.len() >= l.backlog;
        let t = &seg.tcp;
        let cookie = t.ack.wrapping_sub(1);
        let Some(syn) = self.cookie_syn(now, tuple, seg) else {
            self.out.recv(now, tuple, t, seg.payload.len());
            self.out.drop(now, Some(tuple), "invalid SYN cookie");
            self.reply_rst(now, tuple, seg);
            return true;
        };
        // A valid cookie with no room: dropped without reply. The peer
        // thinks it is connected; its next segment brings the cookie again.
        let no_room = if accept_full {
            Some("accept queue full")
        } else if self.conns.len() >= self.cfg.max_connections {
            Some("connection limit")
        } else if !self.admits_passive_open() {
            Some("memory budget")
        } else {
            None
        };
        if let Some(reason) = no_room {
            self.out.recv(now, tuple, t, seg.payload.len());
            self.out.drop(now, Some(tuple), reason);
            return true;
        }
        let id = self.insert_passive(tuple, Seq(cookie), lid);
        self.out.stats.syn_cookies_accepted += 1;
        let (syn, ecn) = syn;
        self.with_conn(now, id, |tcb, ctx| {
            tcb.resume_from_cookie(ctx, seg, &syn, ecn)
        });
        self.with_conn(now, id, |tcb, ctx| tcb.on_segment(ctx, seg, None));
        true
    }

    /// The SYN's options as a valid cookie on this ACK kept them: the MSS
    /// from the cookie, window scale and SACK-Permitted from the TSecr,
    /// and the ACK's TSval as TS.Recent; with them, whether the cookie
    /// SYN-ACK agreed to ECN (from the TSecr too; never without
    /// timestamps). `None`: not a cookie of ours.
    fn cookie_syn(
        &self,
        now: Instant,
        tuple: ConnTuple,
        seg: &Segment<'_>,
    ) -> Option<(TcpOptions, bool)> {
        let t = &seg.tcp;
        let irs = t.seq.wrapping_sub(1);
        let mss = syncookie::check(&self.isn, now, tuple, irs, t.ack.wrapping_sub(1))?;
        let mut syn = TcpOptions {
            mss: Some(mss),
            ..TcpOptions::default()
        };
        let mut ecn = false;
        if let Some((tsval, tsecr)) = t.options.timestamps {
            let (wscale, sack, agreed) = syncookie::ts_decode(tsecr)?;
            syn.window_scale = wscale;
            syn.sack_permitted = sack;
            syn.timestamps = Some((tsval, 0));
            ecn = agreed;
        }
        Some((syn, ecn))
    }
}
