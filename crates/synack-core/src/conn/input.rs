//! SEGMENT ARRIVES for a connection that has a TCB (RFC 9293 §3.10.7.3 and
//! §3.10.7.4), with the RFC 5961 and RFC 7323 checks folded in where those
//! RFCs place them.

use core::time::Duration;

use synack_wire::{Segment, TcpFlags, TcpOptions, TcpRepr};

use super::{our_mss, Ctx, Next, Tcb, Timestamps};
use crate::cc::{CongestionControl, Reno};
use crate::seq::Seq;
use crate::{Error, Event, State};

/// PAWS treats TS.Recent as invalid after this long idle (RFC 7323 §5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// Largest window scale shift (RFC 7323 §2.3).
const MAX_WSCALE: u8 = 14;

impl Tcb {
    /// Processes one verified segment addressed to this connection.
    pub(crate) fn on_segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Next {
        ctx.out
            .recv(ctx.now, self.tuple, &seg.tcp, seg.payload.len());
        self.last_recv = ctx.now;
        self.keepalive_sent = 0;
        let next = match self.state {
            State::SynSent => self.on_syn_sent(ctx, seg),
            State::Closed | State::Listen | State::TimeWait => {
                ctx.out.drop(ctx.now, Some(self.tuple), "connection closed");
                Next::Stay
            }
            _ => self.on_synchronized(ctx, seg),
        };
        if next == Next::Stay {
            self.output(ctx);
            if self.keepalive {
                self.rearm_keepalive(ctx);
            }
        }
        next
    }

    /// Sends `<SEQ=SEG.ACK><CTL=RST>`: the answer to an unacceptable ACK in
    /// SYN-SENT and SYN-RECEIVED (§3.10.7.3, §3.10.7.4 step 5).
    fn reset_for_ack(&mut self, ctx: &mut Ctx<'_>, ack: u32) {
        let repr = TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            seq: ack,
            flags: TcpFlags::RST,
            ..TcpRepr::default()
        };
        self.send_raw(ctx, &repr);
    }

    /// Takes the peer's SYN options: MSS (MUST-14, MUST-15, MUST-16), window
    /// scale (RFC 7323 §2) and timestamps (RFC 7323 §3).
    pub(crate) fn negotiate(&mut self, ctx: &Ctx<'_>, opts: &TcpOptions) {
        let v6 = self.tuple.local.is_ipv6();
        let peer_mss = opts
            .mss
            .map_or(super::default_peer_mss(v6), |m| u32::from(m).max(64));
        let mut mss = peer_mss.min(our_mss(ctx.cfg, v6));
        self.wscale_agreed = ctx.cfg.window_scaling && opts.window_scale.is_some();
        if self.wscale_agreed {
            // RFC 7323 §2.3: a shift above 14 is used as 14.
            self.snd_wscale = opts.window_scale.unwrap_or(0).min(MAX_WSCALE);
        } else {
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.sack_offered = opts.sack_permitted;
        self.sack_ok = ctx.cfg.sack && opts.sack_permitted;
        self.ts = match (ctx.cfg.timestamps, opts.timestamps) {
            (true, Some((tsval, _))) => Some(Timestamps {
                recent: tsval,
                recent_at: ctx.now,
            }),
            _ => None,
        };
        if self.ts.is_some() {
            // The timestamp option takes 12 bytes of every segment (MUST-16).
            mss = mss.saturating_sub(12).max(32);
        }
        self.snd_mss = mss;
        self.cc = Reno::new(mss, self.syn_retransmitted);
    }

    /// §3.10.7.3 SYN-SENT.
    fn on_syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Next {
        let t = &seg.tcp;
        let ack = Seq(t.ack);
        // First: check the ACK bit.
        if t.flags.ack() && (ack.le(self.iss) || ack.gt(self.snd_nxt)) {
            if !t.flags.rst() {
                self.reset_for_ack(ctx, t.ack);
            }
            ctx.out
                .drop(ctx.now, Some(self.tuple), "unacceptable ACK in SYN-SENT");
            return Next::Stay;
        }
        // Second: the RST bit. Only an RST that acknowledges our SYN counts.
        if t.flags.rst() {
            if t.flags.ack() {
                return self.close_with(ctx, Some(Error::Refused));
            }
            ctx.out
                .drop(ctx.now, Some(self.tuple), "RST without ACK in SYN-SENT");
            return Next::Stay;
        }
        // Fourth: the SYN bit.
        if !t.flags.syn() {
            ctx.out
                .drop(ctx.now, Some(self.tuple), "no SYN in SYN-SENT");
            return Next::Stay;
        }
        self.irs = Seq(t.seq);
        self.rcv_nxt = self.irs.add(1);
        self.rcv_adv = self.rcv_nxt;
        self.negotiate(ctx, &t.options);
        if t.flags.ack() {
            self.snd_una = ack;
        }
        if self.snd_una.gt(self.iss) {
            // Our SYN is acknowledged: ESTABLISHED. The window of a SYN
            // segment is never scaled (RFC 7323 §2.2).
            self.snd_wnd = u32::from(t.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = Seq(t.seq);
            self.snd_wl2 = ack;
            self.rto_at.clear();
            self.retries = 0;
            if let Some((_, at)) = self.timing.take() {
                if !self.syn_retransmitted {
                    self.rtt.sample(ctx.now - at);
                }
            }
            if self.syn_retransmitted && !self.rtt.has_sample() {
                self.rtt.reset_for_syn_loss();
            }
            self.set_state(ctx, State::Established);
            ctx.events.push_back(Event::Connected(ctx.id));
            // Data or FIN riding on the SYN-ACK (step 6 onward).
            let data_seq = Seq(t.seq).add(1);
            self.accept_text(ctx, data_seq, seg.payload, t.flags.fin());
            // §3.10.7.3: "form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT>
            // <CTL=ACK> and send it", at once: the third segment of the
            // handshake stands on its own, whatever the application sends.
            if self.state != State::Closed {
                self.send_ack(ctx);
            }
            match self.state {
                State::Closed => Next::Closed,
                _ => Next::Stay,
            }
        } else {
            // Simultaneous open (MUST-10): SYN-RECEIVED, answer with SYN-ACK.
            self.set_state(ctx, State::SynReceived);
            self.snd_wnd = u32::from(t.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = Seq(t.seq);
            self.retries = 0;
            self.send_syn(ctx, true);
            Next::Stay
        }
    }

    /// Sends a challenge ACK unless this connection used up its allowance
    /// for the current second (RFC 5961 §7, per connection so that one
    /// connection's flood neither starves others nor leaks a global count).
    fn challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.now - self.challenge_window >= Duration::from_secs(1) {
            self.challenge_window = ctx.now;
            self.challenge_count = 0;
        }
        if self.challenge_count < ctx.cfg.challenge_ack_limit {
            self.challenge_count += 1;
            ctx.out.stats.challenge_acks += 1;
            self.send_ack(ctx);
        } else {
            ctx.out
                .drop(ctx.now, Some(self.tuple), "challenge ACK rate limited");
        }
    }

    /// §3.10.7.4: SYN-RECEIVED and the synchronized states.
    fn on_synchronized(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Next {
        let t = &seg.tcp;
        let rst = t.flags.rst();
        let mut syn = t.flags.syn();
        let mut fin = t.flags.fin();
        let mut seq0 = Seq(t.seq);

        // Simultaneous open, RFC 9293 §3.5 Figure 8 line 6: the peer's
        // SYN-ACK repeats the SYN we already took and acknowledges ours. Take
        // it as the ACK that completes the handshake (as Linux does), not as
        // an old duplicate.
        if self.state == State::SynReceived
            && !self.passive
            && syn
            && t.flags.ack()
            && !rst
            && seq0 == self.irs
            && Seq(t.ack) == self.snd_max
        {
            syn = false;
            seq0 = seq0.add(1);
        }

        // A retransmitted SYN while our SYN-ACK is unanswered: send it again.
        if self.state == State::SynReceived && syn && !t.flags.ack() && !rst && seq0 == self.irs {
            self.send_syn(ctx, true);
            return Next::Stay;
        }

        // RFC 7323 §5.3 R1: PAWS, before the sequence check.
        if let Some(ts) = self.ts {
            if !rst {
                match t.options.timestamps {
                    None if !syn => {
                        // RFC 7323 §3.2 (7323-5): drop, never abort.
                        ctx.out.drop(ctx.now, Some(self.tuple), "missing timestamp");
                        return Next::Stay;
                    }
                    Some((tsval, _))
                        if (tsval.wrapping_sub(ts.recent) as i32) < 0
                            && ctx.now - ts.recent_at < PAWS_IDLE =>
                    {
                        self.ack_now = true;
                        ctx.out.drop(ctx.now, Some(self.tuple), "PAWS");
                        return Next::Stay;
                    }
                    _ => {}
                }
            }
        }

        // First: the sequence number (Table 5).
        let seg_len = seg.payload.len() as u32 + u32::from(syn) + u32::from(fin);
        let wnd = self.rcv_wnd();
        let nxt = self.rcv_nxt;
        let end = nxt.add(wnd);
        let acceptable = match (seg_len == 0, wnd == 0) {
            (true, true) => seq0 == nxt,
            (true, false) => seq0.in_range(nxt, end),
            // §3.10.7.4: with a zero window, special allowance is made so
            // that ACK, URG and RST of a segment at RCV.NXT are still
            // processed (MUST-66); its text is trimmed away below.
            (false, true) => seq0 == nxt && !syn,
            (false, false) => seq0.in_range(nxt, end) || seq0.add(seg_len - 1).in_range(nxt, end),
        };
        if !acceptable {
            if rst {
                ctx.out
                    .drop(ctx.now, Some(self.tuple), "RST outside the window");
            } else if syn && self.state != State::SynReceived {
                // RFC 5961 §4.2: a SYN gets a (rate-limited) challenge ACK
                // whatever its sequence number.
                self.challenge_ack(ctx);
            } else {
                self.ack_now = true;
                ctx.out
                    .drop(ctx.now, Some(self.tuple), "outside the window");
            }
            return Next::Stay;
        }

        // RFC 7323 §4.3: update TS.Recent from a segment that covers
        // Last.ACK.sent.
        if let (Some(ts), Some((tsval, _))) = (self.ts.as_mut(), t.options.timestamps) {
            if seq0.le(self.last_ack_sent) && (tsval.wrapping_sub(ts.recent) as i32) >= 0 {
                ts.recent = tsval;
                ts.recent_at = ctx.now;
            }
        }

        // Second: the RST bit (RFC 5961 §3.2).
        if rst {
            if seq0 != nxt {
                self.challenge_ack(ctx);
                return Next::Stay;
            }
            return match self.state {
                State::SynReceived if self.passive => {
                    self.set_state(ctx, State::Closed);
                    Next::ReturnToListen
                }
                State::SynReceived => self.close_with(ctx, Some(Error::Refused)),
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.close_with(ctx, Some(Error::Reset))
                }
                _ => self.close_with(ctx, None),
            };
        }

        // Fourth: the SYN bit (RFC 5961 §4.2).
        if syn {
            if self.state == State::SynReceived && self.passive {
                self.set_state(ctx, State::Closed);
                return Next::ReturnToListen;
            }
            self.challenge_ack(ctx);
            return Next::Stay;
        }

        // Fifth: the ACK field.
        if !t.flags.ack() {
            ctx.out.drop(ctx.now, Some(self.tuple), "no ACK");
            return Next::Stay;
        }
        let ack = Seq(t.ack);
        if self.state == State::SynReceived {
            if self.snd_una.lt(ack) && ack.le(self.snd_max) {
                self.set_state(ctx, State::Established);
                if self.syn_retransmitted {
                    // RFC 5681 §3.1: one-segment initial window after a lost
                    // SYN-ACK; RFC 6298 §5.7: 3 s RTO until a sample.
                    self.cc = Reno::new(self.snd_mss, true);
                    if !self.rtt.has_sample() {
                        self.rtt.reset_for_syn_loss();
                    }
                }
                self.snd_wnd = u32::from(t.window) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seq0;
                self.snd_wl2 = ack;
                if !self.passive {
                    ctx.events.push_back(Event::Connected(ctx.id));
                }
            } else {
                self.reset_for_ack(ctx, t.ack);
                ctx.out.drop(
                    ctx.now,
                    Some(self.tuple),
                    "unacceptable ACK in SYN-RECEIVED",
                );
                return Next::Stay;
            }
        }
        // RFC 5961 §5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
        if ack.gt(self.snd_max) {
            self.ack_now = true;
            ctx.out
                .drop(ctx.now, Some(self.tuple), "ACK of unsent data");
            return Next::Stay;
        }
        if ack.lt(self.snd_una.sub(self.max_snd_wnd)) {
            self.ack_now = true;
            ctx.out.drop(ctx.now, Some(self.tuple), "ACK too old");
            return Next::Stay;
        }
        // With no blocks and an empty scoreboard there is nothing to merge
        // or prune (nearly every segment).
        let sacked_new = if self.sack_ok && (t.options.sack_count > 0 || !self.sacked.is_empty()) {
            self.take_sack_blocks(t.options.sack())
        } else {
            0
        };
        // Judged before the ACK moves SND.UNA: with SACK an ACK can be both
        // cumulative and a duplicate (RFC 6675 §2).
        let dupack = self.state.is_synchronized() && self.is_dupack(seg, sacked_new);
        if ack.gt(self.snd_una) {
            self.on_new_ack(ctx, ack, t.options.timestamps);
        }
        self.detect_loss(ctx, dupack, sacked_new);
        if ack.ge(self.snd_una)
            && (self.snd_wl1.lt(seq0) || (self.snd_wl1 == seq0 && self.snd_wl2.le(ack)))
        {
            // Window update (§3.10.7.4, SND.WL1/SND.WL2 rule).
            let was_zero = self.snd_wnd == 0;
            self.snd_wnd = u32::from(t.window) << self.snd_wscale;
            self.snd_wl1 = seq0;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            if self.snd_wnd == 0 {
                // MUST-37: a peer that keeps answering probes is alive.
                self.retries = 0;
                self.una_since.set(ctx.now);
            } else if was_zero {
                self.persist_at.clear();
            }
        }
        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.set_state(ctx, State::FinWait2);
                if self.read_closed {
                    self.close_at.set(ctx.now + ctx.cfg.fin_timeout);
                }
            }
            State::Closing if self.fin_acked() => {
                self.set_state(ctx, State::TimeWait);
                return Next::TimeWait;
            }
            State::LastAck if self.fin_acked() => {
                return self.close_with(ctx, None);
            }
            _ => {}
        }

        // Sixth: the URG bit.
        if t.flags.urg() {
            self.on_urgent(ctx, seq0, t.urgent);
        }
        // Seventh and eighth: text and FIN.
        let mut seq = seq0;
        let mut payload = seg.payload;
        if seq.lt(nxt) {
            let skip = nxt.since(seq) as usize;
            if skip > payload.len() {
                // Only an old FIN precedes RCV.NXT: already processed.
                fin = fin && seq.add(payload.len() as u32) == nxt;
                payload = &[];
            } else {
                payload = &payload[skip..];
            }
            seq = nxt;
        }
        let room = self.rcv_wnd() as usize;
        if payload.len() > room || (fin && room == 0 && !payload.is_empty()) {
            payload = &payload[..room.min(payload.len())];
            fin = false;
            // Text was refused: tell the peer where we are.
            self.ack_now = true;
        }
        self.accept_text(ctx, seq, payload, fin);
        match self.state {
            State::TimeWait => Next::TimeWait,
            State::Closed => Next::Closed,
            _ => Next::Stay,
        }
    }

    /// Step 5 for an ACK that acknowledges new data.
    fn on_new_ack(&mut self, ctx: &mut Ctx<'_>, ack: Seq, ts: Option<(u32, u32)>) {
        let acked = ack.since(self.snd_una);
        let mut data = acked;
        if self.snd_una == self.iss {
            data = data.saturating_sub(1); // our SYN
        }
        if let Some(f) = self.fin_seq {
            if ack.gt(f) && !self.snd_una.gt(f) {
                data = data.saturating_sub(1); // our FIN
            }
        }
        self.sendq.ack(data as usize);
        self.snd_una = ack;
        if self.snd_up.is_some_and(|up| ack.ge(up)) {
            self.snd_up = None;
        }
        if self.snd_nxt.lt(ack) {
            self.snd_nxt = ack;
        }
        // RTT: from the echoed timestamp when there is one (RFC 7323 §4),
        // else from the timed segment (Karn's rule: never a retransmission).
        match (self.ts.is_some(), ts) {
            (true, Some((_, tsecr))) if tsecr != 0 => {
                let rtt = self.ts_val(ctx.now).wrapping_sub(tsecr);
                if rtt < 60_000 {
                    self.rtt.sample(Duration::from_millis(u64::from(rtt)));
                }
            }
            _ => {
                if let Some((end, at)) = self.timing.get() {
                    if ack.ge(end) {
                        self.rtt.sample(ctx.now - at);
                        self.timing.clear();
                    }
                }
            }
        }
        let in_recovery = self.recover.is_some();
        self.recovery_on_ack(ctx, acked);
        if !in_recovery {
            self.cc.on_ack(data, self.snd_mss);
        }
        self.retries = 0;
        self.una_since
            .assign((self.snd_una != self.snd_max).then_some(ctx.now));
        // A soft error is history once the path carries data again.
        self.soft_error = None;
        self.trouble_reported = false;
        if self.snd_una == self.snd_max {
            self.rto_at.clear();
        } else {
            // RFC 6298 §5.3: restart the timer on an ACK of new data.
            self.rto_at.set(self.rto_deadline(ctx.now));
        }
        if self.want_writable && self.sendq.free() > 0 {
            self.want_writable = false;
            ctx.events.push_back(Event::Writable(ctx.id));
        }
    }

    /// Steps 7 and 8: queue in-window text (already trimmed to start at or
    /// after RCV.NXT and to fit the window) and process the FIN.
    pub(crate) fn accept_text(&mut self, ctx: &mut Ctx<'_>, seq: Seq, payload: &[u8], fin: bool) {
        let receiving = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2 | State::SynReceived
        );
        if !payload.is_empty() && receiving && !self.fin_rcvd {
            if self.read_closed {
                // SHLD-3 / MAY-1: the application will never read this.
                self.send_rst(ctx);
                return self.finish_abort(ctx);
            }
            let had_gaps = self.recvq.has_ooo();
            let off = seq.since(self.rcv_nxt) as usize;
            let n = match self.preplaced.take() {
                // Already copied in while the checksum was verified.
                Some(len) if off == 0 && len as usize == payload.len() => {
                    self.recvq.commit(payload.len())
                }
                _ => self.recvq.write_at(off, payload),
            };
            if off > 0 {
                self.note_sack_arrival(seq, payload.len());
            }
            if off > 0 || had_gaps {
                // Out of order, or filling a gap: ACK at once (RFC 5681 §4.2).
                self.ack_now = true;
            }
            if n > 0 {
                self.rcv_nxt = self.rcv_nxt.add(n as u32);
                self.unacked_bytes = self.unacked_bytes.saturating_add(n as u32);
                if self.unacked_bytes >= 2 * self.rcv_mss {
                    // SHLD-19: at least every second full-sized segment.
                    self.ack_now = true;
                } else if self.delack_at.is_none() {
                    // SHLD-18, MUST-40: delay the ACK, under 0.5 s.
                    self.delack_at.set(ctx.now + ctx.cfg.delayed_ack);
                }
                self.signal_readable(ctx);
            }
        }
        if fin && self.state != State::Closed {
            let fin_seq = seq.add(payload.len() as u32);
            if fin_seq.ge(self.rcv_nxt) {
                self.peer_fin = Some(fin_seq);
            }
        }
        if let Some(f) = self.peer_fin {
            if f == self.rcv_nxt && !self.fin_rcvd {
                self.on_fin(ctx);
            }
        }
    }

    /// The peer's FIN is next in sequence (step 8).
    fn on_fin(&mut self, ctx: &mut Ctx<'_>) {
        self.fin_rcvd = true;
        self.peer_fin = None;
        self.rcv_nxt = self.rcv_nxt.add(1);
        self.ack_now = true;
        self.signal_readable(ctx);
        match self.state {
            State::SynReceived | State::Established => self.set_state(ctx, State::CloseWait),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.set_state(ctx, State::TimeWait);
                } else {
                    // Simultaneous close.
                    self.set_state(ctx, State::Closing);
                }
            }
            State::FinWait2 => self.set_state(ctx, State::TimeWait),
            _ => {}
        }
        if self.state == State::TimeWait {
            // The ACK of the FIN must leave before the TCB shrinks.
            self.send_ack(ctx);
        }
    }

    /// Tells the application once that it can read.
    pub(crate) fn signal_readable(&mut self, ctx: &mut Ctx<'_>) {
        if !self.readable_signalled && !self.released {
            self.readable_signalled = true;
            ctx.events.push_back(Event::Readable(ctx.id));
        }
    }

    /// Ends the connection after we sent an RST.
    fn finish_abort(&mut self, ctx: &mut Ctx<'_>) {
        self.close_with(ctx, Some(Error::Aborted));
    }
}
