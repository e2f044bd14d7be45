//! Deciding what to send: SYN and SYN-ACK, data under the send, congestion
//! and Nagle limits, FIN, ACKs and window updates.

use synack_wire::{TcpFlags, TcpRepr};

use super::{Ctx, Tcb, TimerKind};
use crate::seq::Seq;
use crate::State;

/// How [`Tcb::output_as`] treats the rules that hold a segment back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputMode {
    /// As the windows, Nagle and SWS avoidance allow.
    Normal,
    /// The persist timer (or the SWS override, or a retransmission timeout
    /// into a zero window) fired: the first segment goes out whatever
    /// Nagle and SWS avoidance say, and into a zero window it is a
    /// one-byte probe (RFC 9293 §3.8.6.1, MUST-36).
    Probe,
}

/// The sender SWS override timeout (RFC 9293 §3.8.6.2.1: 0.1 to 1 s).
const SWS_OVERRIDE: core::time::Duration = core::time::Duration::from_millis(200);

impl Tcb {
    /// Sequence number of the first byte held in the send buffer.
    pub(crate) fn send_base(&self) -> Seq {
        if self.snd_una == self.iss {
            self.iss.add(1)
        } else {
            self.snd_una
        }
    }

    /// The window field to send and the right edge it advertises, never
    /// moving the edge left (SHLD-14) and moving it right only in steps of
    /// min(MSS, buffer/2) (receiver SWS avoidance, MUST-39).
    fn advertise(&mut self, syn: bool) -> u16 {
        let shift = if syn { 0 } else { self.rcv_wscale };
        let room = self.recvq.window() as u32;
        let fresh = self.rcv_nxt.add(room);
        let step = self.rcv_mss.min(self.recvq.capacity() as u32 / 2).max(1);
        let old = self.rcv_adv.max(self.rcv_nxt);
        let field = if fresh.gt(old) && (fresh.since(old) >= step || old == self.rcv_nxt) {
            let f = (room >> shift).min(0xFFFF);
            let edge = self.rcv_nxt.add(f << shift);
            if edge.gt(old) {
                self.rcv_adv = edge;
                f
            } else {
                self.keep_edge(old, shift)
            }
        } else {
            self.keep_edge(old, shift)
        };
        field as u16
    }

    /// The window field that keeps the right edge at `old`: rounded up to
    /// the scale, so that it never appears to shrink (SHLD-14). The edge
    /// the peer then sees may lie a few bytes (less than `1 << shift`) past
    /// `old`; it becomes RCV.ADV, or a later segment would advertise `old`
    /// again and move the peer's edge left. As Linux does
    /// (`tcp_select_window`), the few bytes may exceed the buffer: they are
    /// trimmed on arrival and sent again.
    fn keep_edge(&mut self, old: Seq, shift: u8) -> u32 {
        let field = old.since(self.rcv_nxt).div_ceil(1 << shift).min(0xFFFF);
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt.add(field << shift));
        field
    }

    /// The receive window as last advertised (RCV.WND of §3.3.1).
    pub(crate) fn rcv_wnd(&self) -> u32 {
        if self.rcv_adv.gt(self.rcv_nxt) {
            self.rcv_adv.since(self.rcv_nxt)
        } else {
            0
        }
    }

    /// The header of a segment at `seq` with `flags`: our ports, the ACK
    /// (RCV.NXT) when `flags` has ACK, the window to advertise, the urgent
    /// pointer, timestamps and SACK blocks as negotiated.
    fn base_repr(&mut self, ctx: &Ctx<'_>, flags: TcpFlags, seq: Seq) -> TcpRepr {
        let mut repr = TcpRepr::default();
        self.base_repr_into(ctx, flags, seq, &mut repr);
        repr
    }

    /// [`Tcb::base_repr`] written into `repr`, which must hold
    /// `TcpRepr::default()`: every field is stored once where the caller
    /// keeps it. Built apart and moved, the header would be copied by byte
    /// ranges that read back the narrow stores just made (a
    /// store-forwarding stall on every segment).
    fn base_repr_into(&mut self, ctx: &Ctx<'_>, flags: TcpFlags, seq: Seq, repr: &mut TcpRepr) {
        let syn = flags.syn();
        repr.window = self.advertise(syn);
        repr.ack = if flags.ack() { self.rcv_nxt.0 } else { 0 };
        (repr.flags, repr.urgent) = self.urgent_field(flags, seq);
        repr.src_port = self.tuple.local.port();
        repr.dst_port = self.tuple.remote.port();
        repr.seq = seq.0;
        if let Some(ts) = self.ts {
            repr.options.timestamps = Some((self.ts_val(ctx.now), ts.recent));
        }
        if flags.ack() && !syn {
            // RFC 3168 §6.1.3: ECE on every ACK until the peer's CWR.
            repr.flags |= self.ecn_ack_flags();
        }
        if flags.ack() && !syn && self.sack_ok {
            if self.recvq.has_ooo() || self.dsack_pending() {
                self.fill_sack_blocks(&mut repr.options);
            } else {
                // What fill_sack_blocks does with nothing out of order.
                self.sack_recent = None;
            }
        }
    }

    /// Hands one segment to the outbox and does the bookkeeping every
    /// sent ACK implies.
    fn emit(&mut self, ctx: &mut Ctx<'_>, repr: &TcpRepr, payload: &[u8], rtx: bool) {
        self.note_ack_sent(repr.flags);
        ctx.out.send_segments(
            ctx.now,
            self.hdr.as_ref(),
            self.tuple.local,
            self.tuple.remote,
            repr,
            &[payload],
            rtx,
            u32::MAX,
            None,
        );
    }

    /// The bookkeeping every ACK we send implies: the delayed ACK is done.
    fn note_ack_sent(&mut self, flags: TcpFlags) {
        if flags.ack() {
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
            self.unacked_bytes = 0;
            self.timers.clear(TimerKind::DelayedAck);
        }
    }

    /// Sends `len` bytes of the send queue starting at `seq`, straight from
    /// the queue into the packet (no intermediate copy). Returns how many
    /// bytes went.
    pub(crate) fn send_from_queue(
        &mut self,
        ctx: &mut Ctx<'_>,
        flags: TcpFlags,
        seq: Seq,
        len: u32,
        rtx: bool,
    ) -> u32 {
        let mut repr = TcpRepr::default();
        self.base_repr_into(ctx, flags, seq, &mut repr);
        let off = seq.since(self.send_base()) as usize;
        let avail = self.sendq.len().saturating_sub(off).min(len as usize) as u32;
        let (ecn, ecn_flags) = self.ecn_for_data(seq, avail);
        repr.flags |= ecn_flags;
        let (a, b) = self.sendq.slices_from(off, len as usize);
        let got = (a.len() + b.len()) as u32;
        ctx.out.send_segments(
            ctx.now,
            self.hdr.as_ref(),
            self.tuple.local,
            self.tuple.remote,
            &repr,
            &[a, b],
            rtx,
            self.snd_mss,
            ecn,
        );
        self.note_ack_sent(flags);
        let end = seq.add(got + u32::from(flags.fin()));
        self.rack_on_send(ctx.now, seq, end);
        got
    }

    /// Sends our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) with the options
    /// we offer: MSS always (MAY-3, MUST-14), window scale and timestamps
    /// and SACK-Permitted when configured (and, in a SYN-ACK, only when the
    /// peer's SYN offered them: RFC 7323 §1.3, RFC 2018 §2).
    pub(crate) fn send_syn(&mut self, ctx: &mut Ctx<'_>, rtx: bool) {
        let synack = self.state == State::SynReceived;
        let flags = if synack {
            TcpFlags::SYN | TcpFlags::ACK
        } else {
            TcpFlags::SYN
        };
        let mut repr = self.base_repr(ctx, flags, self.iss);
        // RFC 3168 §6.1.1: the ECN-setup SYN or SYN-ACK (never ECT itself).
        repr.flags |= self.ecn_syn_flags(ctx.cfg, synack, rtx);
        repr.options.mss = Some(self.rcv_mss.min(0xFFFF) as u16);
        if synack {
            if self.snd_wscale_offered() {
                repr.options.window_scale = Some(self.rcv_wscale);
            }
            if let Some(ts) = self.ts {
                repr.options.timestamps = Some((self.ts_val(ctx.now), ts.recent));
            }
            repr.options.sack_permitted = ctx.cfg.sack && self.sack_offered;
        } else {
            repr.options.sack_permitted = ctx.cfg.sack;
            if ctx.cfg.window_scaling {
                repr.options.window_scale = Some(self.rcv_wscale);
            }
            if ctx.cfg.timestamps {
                repr.options.timestamps = Some((self.ts_val(ctx.now), 0));
            }
        }
        if self.una_since.is_none() {
            self.una_since.set(ctx.now);
        }
        self.emit(ctx, &repr, &[], rtx);
        self.snd_nxt = self.iss.add(1);
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if !self.timers.is_armed(TimerKind::Retransmission) || rtx {
            let at = self.rto_deadline(ctx.now);
            self.timers.set(TimerKind::Retransmission, at);
        }
    }

    /// In SYN-RECEIVED: did both sides agree to scale windows?
    fn snd_wscale_offered(&self) -> bool {
        self.wscale_agreed
    }

    /// Sends a bare ACK now (§3.10.7.4: the reply to unacceptable segments,
    /// window updates, delayed ACKs).
    ///
    /// The sequence number is the highest ever sent (SND.NXT before any
    /// go-back after a timeout), as BSD does: a bare ACK carrying a rewound
    /// SND.NXT would look old to the peer, be answered by another ACK, and
    /// two ends that both rewound would trade such ACKs forever.
    pub(crate) fn send_ack(&mut self, ctx: &mut Ctx<'_>) {
        let repr = self.base_repr(ctx, TcpFlags::ACK, self.snd_max);
        self.emit(ctx, &repr, &[], false);
    }

    /// A keep-alive probe: `<SEQ=SND.NXT-1><ACK=RCV.NXT><CTL=ACK>`, no data.
    pub(crate) fn send_keepalive_probe(&mut self, ctx: &mut Ctx<'_>) {
        let repr = self.base_repr(ctx, TcpFlags::ACK, self.snd_max.sub(1));
        self.emit(ctx, &repr, &[], false);
    }

    /// Sends `<SEQ=SND.NXT><CTL=RST>` (ABORT, §3.10.5; SHLD-3).
    pub(crate) fn send_rst(&mut self, ctx: &mut Ctx<'_>) {
        let mut repr = self.base_repr(ctx, TcpFlags::RST, self.snd_max);
        repr.window = 0;
        repr.ack = 0;
        self.send_raw(ctx, &repr);
    }

    /// Sends a control segment exactly as given, with none of the ACK
    /// bookkeeping of [`Tcb::emit`] (from the connection's header, so with
    /// its DSCP: MUST-48).
    pub(crate) fn send_raw(&mut self, ctx: &mut Ctx<'_>, repr: &TcpRepr) {
        ctx.out.send_segments(
            ctx.now,
            self.hdr.as_ref(),
            self.tuple.local,
            self.tuple.remote,
            repr,
            &[],
            false,
            u32::MAX,
            None,
        );
    }

    /// Sends what the windows, Nagle and the state allow: new data, a
    /// retransmission after a go-back, our FIN, and else a pending ACK.
    pub(crate) fn output(&mut self, ctx: &mut Ctx<'_>) {
        self.output_as(ctx, OutputMode::Normal);
    }

    /// [`Tcb::output`], with a forced segment in [`OutputMode::Probe`].
    pub(crate) fn output_as(&mut self, ctx: &mut Ctx<'_>, mode: OutputMode) {
        let mut sent = false;
        if self.state.can_send_data() {
            sent = self.output_data(ctx, mode);
        }
        if !sent && self.ack_owed() {
            // MUST-58, MUST-59: the ACK waits until the driver drains the
            // output, so that every segment of the batch it is handing in
            // is processed first and one cumulative ACK covers them all.
            if !self.ack_queued {
                self.ack_queued = true;
                ctx.out.ack_pending.push(ctx.id);
            }
        }
    }

    /// Whether an ACK is still owed: [`Tcb::flush_ack`] would send one.
    pub(crate) fn ack_owed(&self) -> bool {
        self.ack_now && self.state.can_acknowledge()
    }

    /// Sends the ACK queued by [`Tcb::output`], if one is still owed.
    pub(crate) fn flush_ack(&mut self, ctx: &mut Ctx<'_>) {
        self.ack_queued = false;
        if self.ack_owed() {
            self.send_ack(ctx);
        }
    }

    /// The most payload one packet may carry: one MSS, or with segmentation
    /// offload (`Config::gso_max_size`) as many whole segments of the MSS
    /// as fit the device's limit and the IP length field, with room for
    /// the largest TCP header.
    fn gso_cap(&self, ctx: &Ctx<'_>) -> u32 {
        let mss = self.snd_mss.max(1);
        let Some(limit) = ctx.cfg.gso_max_size else {
            return mss;
        };
        let ip = if self.tuple.local.is_ipv6() { 40 } else { 20 };
        let room = limit.min(0xFFFF).saturating_sub(ip + 60) as u32;
        (room / mss).max(1) * mss
    }

    /// The payload of a super-segment starting at SND.NXT, when at least one
    /// full segment may go: exactly the bytes that the loop of
    /// [`Tcb::output_data`] would send one MSS at a time, back to back,
    /// with nothing arriving in between, up to `cap`. So: the whole
    /// segments that the windows allow, and a short last one only when the
    /// rules for short segments (Nagle, SWS avoidance, FIN, retransmission)
    /// would let it follow them at once.
    fn super_segment_len(&self, unsent: u32, usable: u32, in_flight: u32, cap: u32) -> u32 {
        let mss = self.snd_mss.max(1);
        let total = unsent.min(usable).min(cap);
        let full = total / mss * mss;
        let tail = total - full;
        if tail == 0 || total == cap {
            return full;
        }
        // The tail would be a short segment of its own: does it go at once?
        let empties = tail == unsent - full;
        let nagle_ok = self.nodelay || in_flight + full == 0;
        let half_window = tail >= self.max_snd_wnd / 2;
        let retransmitting = self.snd_nxt.add(full).lt(self.snd_max);
        let fin = self.fin_queued && empties && !self.fin_acked();
        if (empties && nagle_ok) || half_window || retransmitting || fin {
            total
        } else {
            full
        }
    }

    /// Where the RTT sample of a packet of `got` bytes at `seq` (ending at
    /// `end`, its FIN counted) should end, when the loop that sends one MSS
    /// at a time would time one of its segments: the first that carries
    /// only new data (RFC 6298 §3, Karn: never a retransmission).
    fn timed_end(&self, seq: Seq, got: u32, end: Seq, snd_max: Seq) -> Option<Seq> {
        let mss = self.snd_mss.max(1);
        let first_new = if seq.lt(snd_max) {
            let behind = snd_max.since(seq);
            behind.div_ceil(mss).checked_mul(mss)?
        } else {
            0
        };
        if first_new >= got.max(1) {
            return None;
        }
        let start = seq.add(first_new);
        Some(if first_new + mss >= got {
            end
        } else {
            start.add(mss)
        })
    }

    /// Sends data and FIN as the windows allow (RFC 9293 §3.8.6), one
    /// segment (or super-segment) at a time from SND.NXT, then arms the
    /// persist timer if something is left waiting. Returns whether anything
    /// went out.
    fn output_data(&mut self, ctx: &mut Ctx<'_>, mode: OutputMode) -> bool {
        // Nothing queued and no FIN to send (a receiver's every segment):
        // the loop below would stop at once, and with nothing waiting no
        // timer is due either.
        if !self.fin_queued && !self.snd_nxt.lt(self.data_end()) {
            return false;
        }
        let gso_cap = self.pacing_super_segment_cap(ctx, self.gso_cap(ctx));
        let mut force = mode == OutputMode::Probe;
        let mut sent = false;
        let mut sws_blocked = false;
        loop {
            let data_end = self.data_end();
            let unsent = if self.snd_nxt.lt(data_end) {
                data_end.since(self.snd_nxt)
            } else {
                0
            };
            let in_flight = self.in_flight();
            let wnd = self.snd_wnd.min(self.cwnd());
            // MUST-34: a shrunk window makes this negative; never wrap.
            let mut usable = wnd.saturating_sub(in_flight);
            if let Some(sndcnt) = self.prr_allowance() {
                // In recovery PRR, not cwnd, says how much may go.
                usable = self.snd_wnd.saturating_sub(in_flight).min(sndcnt);
            }
            // A forced send (the persist or SWS override timer fired) goes
            // out whatever Nagle and SWS avoidance say; into a zero window
            // it is a one-byte probe.
            let probing = force && unsent > 0;
            if probing {
                force = false;
                usable = usable.max(1);
            }
            let mut len = unsent.min(usable).min(self.snd_mss);
            if len == self.snd_mss && !probing && gso_cap > self.snd_mss {
                len = self.super_segment_len(unsent, usable, in_flight, gso_cap);
            }
            let fin_now = self.fin_queued
                && self.snd_nxt.add(len) == data_end
                && (self.fin_seq.is_none() || self.snd_nxt.le(data_end))
                && !self.fin_acked();
            if len == 0 && !fin_now {
                break;
            }
            if len > 0 && len < self.snd_mss && !fin_now && !probing {
                if let Some(sws) = self.holds_short_segment(len, unsent, in_flight) {
                    sws_blocked = sws;
                    break;
                }
            }
            if !probing {
                if let Some(at) = self.pacing_hold(ctx) {
                    self.pacing_wait(at);
                    break;
                }
            }
            let got = self.send_data_segment(ctx, len, fin_now, data_end);
            self.pacing_sent(ctx, got.max(1));
            sent = true;
            if fin_now || got == 0 {
                break;
            }
        }
        self.arm_persist(ctx, sws_blocked);
        sent
    }

    /// Nagle (SHLD-7, MUST-17) and sender SWS avoidance (MUST-38) for a
    /// short segment of `len` bytes: it goes only when it empties the queue
    /// and nothing is in flight (or Nagle is off), or it fills at least half
    /// the largest window the peer offered, or it is a retransmission.
    /// `Some` when it is held back, with whether SWS avoidance (rather than
    /// Nagle alone) held it, so that the override timer applies.
    fn holds_short_segment(&self, len: u32, unsent: u32, in_flight: u32) -> Option<bool> {
        let empties = len == unsent;
        let nagle_ok = self.nodelay || in_flight == 0;
        let half_window = len >= self.max_snd_wnd / 2;
        let retransmitting = self.snd_nxt.lt(self.snd_max);
        if (empties && nagle_ok) || half_window || retransmitting {
            None
        } else {
            Some(!empties || nagle_ok)
        }
    }

    /// Sends `len` bytes at SND.NXT, with our FIN after them when `fin`
    /// (`data_end` is where the queued data ends), and does the sender's
    /// bookkeeping: SND.NXT and SND.MAX, the RTT sample, the retransmission
    /// timer. Returns how many bytes went.
    pub(crate) fn send_data_segment(
        &mut self,
        ctx: &mut Ctx<'_>,
        len: u32,
        fin: bool,
        data_end: Seq,
    ) -> u32 {
        let seq = self.snd_nxt;
        let mut flags = TcpFlags::ACK;
        if len > 0 && seq.add(len) == data_end {
            // MUST-61: PSH on the segment that empties the queue.
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
            self.fin_seq = Some(data_end);
        }
        let rtx = seq.lt(self.snd_max);
        let snd_max = self.snd_max;
        self.note_sending(ctx.now);
        let got = self.send_from_queue(ctx, flags, seq, len, rtx);
        let adv = got + u32::from(fin);
        self.snd_nxt = seq.add(adv);
        if self.timing.is_none() && self.ts.is_none() {
            // Time one segment per RTT; Karn's rule clears it on a
            // retransmission (RFC 6298 §3, MUST-18). Of a super-segment,
            // the segment that would have been timed if sent alone.
            if let Some(end) = self.timed_end(seq, got, self.snd_nxt, snd_max) {
                self.timing.set(end, ctx.now);
            }
        }
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if !self.timers.is_armed(TimerKind::Retransmission) {
            let at = self.rto_deadline(ctx.now);
            self.timers.set(TimerKind::Retransmission, at);
        }
        self.timers.clear(TimerKind::Persist);
        if !rtx {
            // RFC 8985 §7.2: (re)start the PTO after new data.
            self.arm_loss_probe(ctx.now);
        }
        got
    }

    /// After sending: a zero window with data waiting and nothing in
    /// flight arms the persist timer, whose first probe goes after one RTO
    /// (SHLD-29, MUST-36); a short segment held back by SWS avoidance with
    /// nothing in flight arms the override timeout (RFC 9293 §3.8.6.2.1:
    /// 0.1 to 1 s).
    fn arm_persist(&mut self, ctx: &Ctx<'_>, sws_blocked: bool) {
        let waiting = self.snd_nxt.lt(self.data_end());
        let persist_off = !self.timers.is_armed(TimerKind::Persist);
        if waiting && self.snd_wnd == 0 && self.in_flight() == 0 && persist_off {
            self.timers.set(TimerKind::Persist, ctx.now + self.rto());
        }
        if sws_blocked && self.in_flight() == 0 && !self.timers.is_armed(TimerKind::Persist) {
            self.timers.set(TimerKind::Persist, ctx.now + SWS_OVERRIDE);
        }
    }
}
