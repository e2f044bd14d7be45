//! SEGMENT ARRIVES for a connection that has a TCB (RFC 9293 §3.10.7.3 and
//! §3.10.7.4), with the RFC 5961 and RFC 7323 checks folded in where those
//! RFCs place them.

use core::ops::ControlFlow;
use core::time::Duration;

use synack_wire::{Segment, TcpFlags, TcpOptions, TcpRepr};

use super::{our_mss, Ctx, Disposition, Tcb, TimerKind, Timestamps};
use crate::cc::{AckInfo, CongestionControl};
use crate::seq::Seq;
use crate::{Error, Event, State};

/// A segment as the steps of §3.10.7.4 see it: the header as it arrived,
/// and the parts that the steps adjust as they go.
struct Arrival<'a, 'p> {
    /// The segment as it arrived.
    seg: &'a Segment<'p>,
    /// SEG.SEQ; one further when a simultaneous open's SYN-ACK repeats the
    /// SYN already taken, and RCV.NXT once the text is trimmed to it.
    seq: Seq,
    /// The SYN bit, unless that repeated SYN was taken off.
    syn: bool,
    /// The FIN bit, unless the text step refused it.
    fin: bool,
    /// The segment text, trimmed by the seventh step to the window.
    text: &'p [u8],
}

impl<'a, 'p> Arrival<'a, 'p> {
    /// `seg`, before any step looked at it.
    fn of(seg: &'a Segment<'p>) -> Self {
        Arrival {
            seg,
            seq: Seq(seg.tcp.seq),
            syn: seg.tcp.flags.syn(),
            fin: seg.tcp.flags.fin(),
            text: seg.payload,
        }
    }
}

/// PAWS treats TS.Recent as invalid after this long idle (RFC 7323 §5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// Largest window scale shift (RFC 7323 §2.3).
const MAX_WSCALE: u8 = 14;

impl Tcb {
    /// Processes one verified segment addressed to this connection.
    /// `preplaced` says that its payload, this many bytes, was already
    /// copied to RCV.NXT in the receive buffer while its checksum was
    /// verified: accepting it then only commits them.
    pub(crate) fn on_segment(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &Segment<'_>,
        preplaced: Option<u32>,
    ) -> Disposition {
        ctx.out
            .recv(ctx.now, self.tuple, &seg.tcp, seg.payload.len());
        self.last_recv = ctx.now;
        self.keepalive_sent = 0;
        let next = match self.state {
            State::SynSent => self.on_syn_sent(ctx, seg),
            State::Closed | State::Listen | State::TimeWait => {
                ctx.out.drop(ctx.now, Some(self.tuple), "connection closed");
                Disposition::Stay
            }
            _ => match self.on_synchronized(ctx, seg, preplaced) {
                ControlFlow::Break(next) => next,
                ControlFlow::Continue(()) => self.disposition(),
            },
        };
        if next == Disposition::Stay {
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
        self.cc.init(mss, self.syn_retransmitted);
    }

    /// §3.10.7.3 SYN-SENT.
    fn on_syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Disposition {
        let t = &seg.tcp;
        let ack = Seq(t.ack);
        // First: check the ACK bit.
        if t.flags.ack() && (ack.le(self.iss) || ack.gt(self.snd_nxt)) {
            if !t.flags.rst() {
                self.reset_for_ack(ctx, t.ack);
            }
            ctx.out
                .drop(ctx.now, Some(self.tuple), "unacceptable ACK in SYN-SENT");
            return Disposition::Stay;
        }
        // Second: the RST bit. Only an RST that acknowledges our SYN counts.
        if t.flags.rst() {
            if t.flags.ack() {
                return self.close_with(ctx, Some(Error::Refused));
            }
            ctx.out
                .drop(ctx.now, Some(self.tuple), "RST without ACK in SYN-SENT");
            return Disposition::Stay;
        }
        // Fourth: the SYN bit.
        if !t.flags.syn() {
            ctx.out
                .drop(ctx.now, Some(self.tuple), "no SYN in SYN-SENT");
            return Disposition::Stay;
        }
        self.irs = Seq(t.seq);
        self.rcv_nxt = self.irs.add(1);
        self.rcv_adv = self.rcv_nxt;
        self.negotiate(ctx, &t.options);
        if t.flags.ack() {
            self.snd_una = ack;
            self.ecn_on_syn_ack(t.flags);
        } else {
            // A simultaneous open runs without ECN (RFC 3168 §6.1.1
            // defines only the SYN / SYN-ACK exchange).
            self.ecn_on_syn_ack(synack_wire::TcpFlags::empty());
        }
        if self.snd_una.gt(self.iss) {
            // Our SYN is acknowledged: ESTABLISHED. The window of a SYN
            // segment is never scaled (RFC 7323 §2.2).
            self.snd_wnd = u32::from(t.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = Seq(t.seq);
            self.snd_wl2 = ack;
            self.timers.clear(TimerKind::Retransmission);
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
            if let ControlFlow::Break(next) = self.queue_text(ctx, data_seq, seg.payload, None) {
                return next;
            }
            let end = data_seq.add(seg.payload.len() as u32);
            self.check_fin(ctx, end, t.flags.fin());
            // §3.10.7.3: "form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT>
            // <CTL=ACK> and send it". Owed at once, so it leaves when the
            // driver drains this batch's output (`output` queues it), on
            // the application's first data when that is queued by then (a
            // data segment with ACK is that ACK), alone otherwise: never
            // later than a lone ACK sent now would reach the wire.
            self.ack_now = true;
            Disposition::Stay
        } else {
            // Simultaneous open (MUST-10): SYN-RECEIVED, answer with SYN-ACK.
            self.set_state(ctx, State::SynReceived);
            self.snd_wnd = u32::from(t.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = Seq(t.seq);
            self.retries = 0;
            self.send_syn(ctx, true);
            Disposition::Stay
        }
    }

    /// Sends a challenge ACK unless this connection used up its allowance
    /// for the current second (RFC 5961 §7, per connection so that one
    /// connection's flood neither starves others nor leaks a global count).
    fn challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        if self.take_ack_allowance(ctx) {
            ctx.out.stats.challenge_acks += 1;
            self.send_ack(ctx);
        } else {
            ctx.out
                .drop(ctx.now, Some(self.tuple), "challenge ACK rate limited");
        }
    }

    /// RFC 5961 §7: ACKs sent in answer to segments that fail a check are
    /// throttled, at most `Config::challenge_ack_limit` a second for the
    /// connection. True: one may go now.
    fn take_ack_allowance(&mut self, ctx: &Ctx<'_>) -> bool {
        if ctx.now - self.challenge_window >= Duration::from_secs(1) {
            self.challenge_window = ctx.now;
            self.challenge_count = 0;
        }
        if self.challenge_count < ctx.cfg.challenge_ack_limit {
            self.challenge_count += 1;
            true
        } else {
            false
        }
    }

    /// The ACK that answers an unacceptable segment (RFC 9293 §3.10.7.4
    /// first check, RFC 5961 §5.2). A segment with text, SYN or FIN is
    /// answered at once: it may be a retransmission whose sender waits
    /// for that ACK (and its DSACK) to recover. A bare ACK is answered
    /// within the allowance of RFC 5961 §7, as Linux's out-of-window
    /// limit does, so that a storm of blind ACKs draws a few answers, not
    /// one each; a keep-alive (one every many seconds) is still answered.
    fn ack_unacceptable(&mut self, ctx: &mut Ctx<'_>, a: &Arrival<'_, '_>) {
        let f = a.seg.tcp.flags;
        let bare = a.seg.payload.is_empty() && !f.syn() && !f.fin();
        if !bare || self.take_ack_allowance(ctx) {
            self.ack_now = true;
        } else {
            ctx.out.stats.acks_rate_limited += 1;
        }
    }

    /// §3.10.7.4: a segment for SYN-RECEIVED or a synchronized state, taken
    /// through the RFC's steps in the RFC's order. Each step returns
    /// `Break` with the disposition when it ends the processing (the
    /// segment dropped, or the connection ended); `Continue` means every
    /// step ran.
    fn on_synchronized(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &Segment<'_>,
        preplaced: Option<u32>,
    ) -> ControlFlow<Disposition> {
        let a = &mut Arrival::of(seg);
        self.check_handshake_repeat(ctx, a)?;
        self.check_sequence_number(ctx, a)?;
        // RFC 3168 §6.1.3: CE and CWR of an acceptable segment.
        self.ecn_on_arrival(seg);
        self.check_rst(ctx, a)?;
        // Third, check security: the IP security compartment is an IP
        // option this stack neither sends nor keeps, so there is nothing
        // to compare (RFC 9293 Appendix A.1: such resets are an attack
        // vector).
        self.check_syn(ctx, a)?;
        self.check_ack(ctx, a)?;
        self.check_urg(ctx, a);
        self.process_segment_text(ctx, a, preplaced)?;
        self.check_fin(ctx, a.seq.add(a.text.len() as u32), a.fin);
        ControlFlow::Continue(())
    }

    /// What the state a segment left the connection in asks of the stack.
    fn disposition(&self) -> Disposition {
        match self.state {
            State::TimeWait => Disposition::TimeWait,
            State::Closed => Disposition::Closed,
            _ => Disposition::Stay,
        }
    }

    /// Drops the segment, counted under `reason`, and stops processing it.
    fn drop_segment(&self, ctx: &mut Ctx<'_>, reason: &'static str) -> ControlFlow<Disposition> {
        ctx.out.drop(ctx.now, Some(self.tuple), reason);
        ControlFlow::Break(Disposition::Stay)
    }

    /// Before the first step, in SYN-RECEIVED: the SYN of the handshake
    /// arriving again. A retransmitted SYN (no ACK) gets our SYN-ACK again.
    /// In a simultaneous open (RFC 9293 §3.5 Figure 8 line 6) the peer's
    /// SYN-ACK repeats the SYN we already took and acknowledges ours: it is
    /// taken as the ACK that completes the handshake (as Linux does), not
    /// as an old duplicate, so its SYN is taken off.
    fn check_handshake_repeat(
        &mut self,
        ctx: &mut Ctx<'_>,
        a: &mut Arrival<'_, '_>,
    ) -> ControlFlow<Disposition> {
        let t = &a.seg.tcp;
        if self.state != State::SynReceived || !a.syn || t.flags.rst() || a.seq != self.irs {
            return ControlFlow::Continue(());
        }
        if !t.flags.ack() {
            self.send_syn(ctx, true);
            return ControlFlow::Break(Disposition::Stay);
        }
        if !self.passive && Seq(t.ack) == self.snd_max {
            a.syn = false;
            a.seq = a.seq.add(1);
        }
        ControlFlow::Continue(())
    }

    /// First, check sequence number (RFC 9293 §3.10.7.4): the segment must
    /// overlap the receive window by the four cases of Table 6; "If an
    /// incoming segment is not acceptable, an acknowledgment should be
    /// sent in reply (unless the RST bit is set, if so drop the segment and
    /// return)". Folded in: PAWS before the test (RFC 7323 §5.3 R1), a
    /// challenge ACK for a SYN whatever its sequence number (RFC 5961
    /// §4.2), and after the test the update of TS.Recent (RFC 7323 §4.3).
    fn check_sequence_number(
        &mut self,
        ctx: &mut Ctx<'_>,
        a: &Arrival<'_, '_>,
    ) -> ControlFlow<Disposition> {
        self.check_paws(ctx, a)?;
        if !self.in_receive_window(a) {
            if a.seg.tcp.flags.rst() {
                return self.drop_segment(ctx, "RST outside the window");
            }
            if a.syn && self.state != State::SynReceived {
                self.challenge_ack(ctx);
                return ControlFlow::Break(Disposition::Stay);
            }
            self.ack_unacceptable(ctx, a);
            self.note_duplicate(a.seq, a.text.len());
            return self.drop_segment(ctx, "outside the window");
        }
        self.update_ts_recent(ctx, a);
        ControlFlow::Continue(())
    }

    /// RFC 7323 §5.3 R1, before the sequence check: with timestamps
    /// agreed, a segment without one is dropped (§3.2: never an abort),
    /// and one whose TSval is older than TS.Recent is an old duplicate
    /// (PAWS, unless TS.Recent aged out after 24 days idle): acknowledged
    /// and dropped. An RST is exempt.
    fn check_paws(&mut self, ctx: &mut Ctx<'_>, a: &Arrival<'_, '_>) -> ControlFlow<Disposition> {
        let Some(ts) = self.ts else {
            return ControlFlow::Continue(());
        };
        if a.seg.tcp.flags.rst() {
            return ControlFlow::Continue(());
        }
        match a.seg.tcp.options.timestamps {
            None if !a.syn => self.drop_segment(ctx, "missing timestamp"),
            Some((tsval, _))
                if (tsval.wrapping_sub(ts.recent) as i32) < 0
                    && ctx.now - ts.recent_at < PAWS_IDLE =>
            {
                // RFC 7323 §5.3 R1: "send an acknowledgment in reply".
                self.ack_unacceptable(ctx, a);
                self.drop_segment(ctx, "PAWS")
            }
            _ => ControlFlow::Continue(()),
        }
    }

    /// The acceptability test of Table 6 (RFC 9293 §3.10.7.4).
    fn in_receive_window(&self, a: &Arrival<'_, '_>) -> bool {
        let seg_len = a.text.len() as u32 + u32::from(a.syn) + u32::from(a.fin);
        let wnd = self.rcv_wnd();
        let nxt = self.rcv_nxt;
        let end = nxt.add(wnd);
        let seq = a.seq;
        match (seg_len == 0, wnd == 0) {
            (true, true) => seq == nxt,
            (true, false) => seq.in_range(nxt, end),
            // §3.10.7.4: with a zero window, special allowance is made so
            // that ACK, URG and RST of a segment at RCV.NXT are still
            // processed (MUST-66); its text is trimmed away in the seventh
            // step.
            (false, true) => seq == nxt && !a.syn,
            (false, false) => seq.in_range(nxt, end) || seq.add(seg_len - 1).in_range(nxt, end),
        }
    }

    /// RFC 7323 §4.3: TS.Recent takes the TSval of an acceptable segment
    /// that covers Last.ACK.sent.
    fn update_ts_recent(&mut self, ctx: &Ctx<'_>, a: &Arrival<'_, '_>) {
        if let (Some(ts), Some((tsval, _))) = (self.ts.as_mut(), a.seg.tcp.options.timestamps) {
            if a.seq.le(self.last_ack_sent) && (tsval.wrapping_sub(ts.recent) as i32) >= 0 {
                ts.recent = tsval;
                ts.recent_at = ctx.now;
            }
        }
    }

    /// Second, check the RST bit (RFC 9293 §3.10.7.4, with the checks of
    /// RFC 5961 §3.2): an RST that "exactly matches the next expected
    /// sequence number (RCV.NXT)" resets the connection as its state says;
    /// one elsewhere in the window gets a challenge ACK and is dropped. In
    /// SYN-RECEIVED from a passive OPEN, "return this connection to LISTEN
    /// state" (MUST-11); from an active OPEN, "connection refused"; where
    /// data could still flow, "connection reset"; else just CLOSED.
    fn check_rst(&mut self, ctx: &mut Ctx<'_>, a: &Arrival<'_, '_>) -> ControlFlow<Disposition> {
        if !a.seg.tcp.flags.rst() {
            return ControlFlow::Continue(());
        }
        if a.seq != self.rcv_nxt {
            self.challenge_ack(ctx);
            return ControlFlow::Break(Disposition::Stay);
        }
        ControlFlow::Break(match self.state {
            State::SynReceived if self.passive => {
                self.set_state(ctx, State::Closed);
                Disposition::ReturnToListen
            }
            State::SynReceived => self.close_with(ctx, Some(Error::Refused)),
            s if s.is_open() => self.close_with(ctx, Some(Error::Reset)),
            _ => self.close_with(ctx, None),
        })
    }

    /// Fourth, check the SYN bit (RFC 9293 §3.10.7.4, with RFC 5961 §4.2):
    /// in SYN-RECEIVED from a passive OPEN, "return this connection to the
    /// LISTEN state and return"; otherwise, "irrespective of the sequence
    /// number, TCP endpoints MUST send a 'challenge ACK'" and drop the
    /// segment.
    fn check_syn(&mut self, ctx: &mut Ctx<'_>, a: &Arrival<'_, '_>) -> ControlFlow<Disposition> {
        if !a.syn {
            return ControlFlow::Continue(());
        }
        if self.state == State::SynReceived && self.passive {
            self.set_state(ctx, State::Closed);
            return ControlFlow::Break(Disposition::ReturnToListen);
        }
        self.challenge_ack(ctx);
        ControlFlow::Break(Disposition::Stay)
    }

    /// Fifth, check the ACK field (RFC 9293 §3.10.7.4): "if the ACK bit is
    /// off, drop the segment and return". In SYN-RECEIVED an acceptable ACK
    /// completes the handshake. Folded in: the range check of RFC 5961
    /// §5.2, the SACK blocks (RFC 2018) and duplicate ACKs (RFC 5681 §3.2).
    /// Then the send window is updated, and FIN-WAIT-1, CLOSING and
    /// LAST-ACK move on once our FIN is acknowledged.
    fn check_ack(&mut self, ctx: &mut Ctx<'_>, a: &Arrival<'_, '_>) -> ControlFlow<Disposition> {
        let t = &a.seg.tcp;
        if !t.flags.ack() {
            return self.drop_segment(ctx, "no ACK");
        }
        let ack = Seq(t.ack);
        if self.state == State::SynReceived {
            self.ack_syn_received(ctx, a, ack)?;
        }
        self.check_ack_range(ctx, a, ack)?;
        // With no blocks and an empty scoreboard there is nothing to merge
        // or prune (nearly every segment).
        let (sacked_new, dsack) =
            if self.sack_ok && (t.options.sack_count > 0 || !self.sacked.is_empty()) {
                self.take_sack_blocks(t.options.sack(), ack)
            } else {
                (0, None)
            };
        // Judged before the ACK moves SND.UNA: with SACK an ACK can be both
        // cumulative and a duplicate (RFC 6675 §2).
        let dupack = self.state.is_synchronized() && self.is_dupack(a.seg, sacked_new);
        if t.options.sack_count > 0 {
            if let Some(r) = self.rack.as_deref_mut() {
                r.sack_seen = true;
            }
        }
        let old_una = self.snd_una;
        let tsecr = t.options.timestamps.map(|(_, e)| e);
        if ack.gt(self.snd_una) {
            self.on_new_ack(ctx, ack, t.options.timestamps);
        }
        if self.rack.is_some() {
            let delivered = self.rack_on_ack(ctx, old_una, tsecr, dsack);
            self.detect_loss(ctx, dupack, delivered);
        }
        self.ecn_on_ack(ctx, t.flags);
        self.update_send_window(a, ack);
        self.check_fin_acked(ctx)
    }

    /// The ACK step in SYN-RECEIVED: "If SND.UNA < SEG.ACK =< SND.NXT, then
    /// enter ESTABLISHED state and continue processing" with SND.WND,
    /// SND.WL1 and SND.WL2 from the segment; otherwise "form a reset
    /// segment <SEQ=SEG.ACK><CTL=RST> and send it".
    fn ack_syn_received(
        &mut self,
        ctx: &mut Ctx<'_>,
        a: &Arrival<'_, '_>,
        ack: Seq,
    ) -> ControlFlow<Disposition> {
        if !(self.snd_una.lt(ack) && ack.le(self.snd_max)) {
            self.reset_for_ack(ctx, ack.0);
            return self.drop_segment(ctx, "unacceptable ACK in SYN-RECEIVED");
        }
        self.set_state(ctx, State::Established);
        if self.syn_retransmitted {
            // RFC 5681 §3.1: one-segment initial window after a lost
            // SYN-ACK; RFC 6298 §5.7: 3 s RTO until a sample.
            self.cc.init(self.snd_mss, true);
            if !self.rtt.has_sample() {
                self.rtt.reset_for_syn_loss();
            }
        }
        self.snd_wnd = u32::from(a.seg.tcp.window) << self.snd_wscale;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = a.seq;
        self.snd_wl2 = ack;
        if !self.passive {
            ctx.events.push_back(Event::Connected(ctx.id));
        }
        ControlFlow::Continue(())
    }

    /// RFC 5961 §5.2 (MAY-12): an ACK is acceptable only in
    /// ((SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT); "All incoming
    /// segments whose ACK value doesn't satisfy the above condition MUST
    /// be discarded and an ACK sent back".
    fn check_ack_range(
        &mut self,
        ctx: &mut Ctx<'_>,
        a: &Arrival<'_, '_>,
        ack: Seq,
    ) -> ControlFlow<Disposition> {
        if ack.gt(self.snd_max) {
            self.ack_unacceptable(ctx, a);
            return self.drop_segment(ctx, "ACK of unsent data");
        }
        if ack.lt(self.snd_una.sub(self.max_snd_wnd)) {
            self.ack_unacceptable(ctx, a);
            return self.drop_segment(ctx, "ACK too old");
        }
        ControlFlow::Continue(())
    }

    /// The window update of the ACK step: "If SND.UNA =< SEG.ACK =<
    /// SND.NXT ... If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2
    /// =< SEG.ACK)), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and
    /// set SND.WL2 <- SEG.ACK". A window that opens stops the persist
    /// timer.
    fn update_send_window(&mut self, a: &Arrival<'_, '_>, ack: Seq) {
        let seq = a.seq;
        let newer = self.snd_wl1.lt(seq) || (self.snd_wl1 == seq && self.snd_wl2.le(ack));
        if !(ack.ge(self.snd_una) && newer) {
            return;
        }
        let was_zero = self.snd_wnd == 0;
        self.snd_wnd = u32::from(a.seg.tcp.window) << self.snd_wscale;
        self.snd_wl1 = seq;
        self.snd_wl2 = ack;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        if self.snd_wnd == 0 {
            // MUST-26, MUST-37: a peer that keeps answering probes is
            // alive, and R2 (the retry count) never ends the connection.
            // The user timeout's clock (`una_since`) runs on: answering a
            // probe acknowledges no data, and an application that set a
            // user timeout (MUST-21) asked for the connection to end when
            // its data waits that long, as Linux's TCP_USER_TIMEOUT ends
            // zero-window probing. Without one, the window may stay
            // closed forever.
            self.retries = 0;
        } else if was_zero {
            self.timers.clear(TimerKind::Persist);
        }
    }

    /// The closing states of the ACK step, once our FIN is acknowledged:
    /// FIN-WAIT-1 enters FIN-WAIT-2 "and continue processing in that
    /// state"; CLOSING enters TIME-WAIT; in LAST-ACK, "delete the TCB,
    /// enter the CLOSED state, and return".
    fn check_fin_acked(&mut self, ctx: &mut Ctx<'_>) -> ControlFlow<Disposition> {
        match self.state {
            State::FinWait1 | State::Closing | State::LastAck if self.fin_acked() => {}
            _ => return ControlFlow::Continue(()),
        }
        match self.state {
            State::FinWait1 => {
                self.set_state(ctx, State::FinWait2);
                if self.read_closed {
                    // Nobody will read the peer's FIN: do not wait for it
                    // forever.
                    self.timers
                        .set(TimerKind::Close, ctx.now + ctx.cfg.fin_timeout);
                }
                ControlFlow::Continue(())
            }
            State::Closing => {
                self.set_state(ctx, State::TimeWait);
                ControlFlow::Break(Disposition::TimeWait)
            }
            State::LastAck => ControlFlow::Break(self.close_with(ctx, None)),
            _ => ControlFlow::Continue(()),
        }
    }

    /// Sixth, check the URG bit (RFC 9293 §3.10.7.4): "RCV.UP <-
    /// max(RCV.UP,SEG.UP), and signal the user" (see [`Tcb::on_urgent`]).
    fn check_urg(&mut self, ctx: &mut Ctx<'_>, a: &Arrival<'_, '_>) {
        if a.seg.tcp.flags.urg() {
            self.on_urgent(ctx, a.seq, a.seg.tcp.urgent);
        }
    }

    /// Seventh, process the segment text (RFC 9293 §3.10.7.4). The text is
    /// first cut to "the idealized segment that begins at RCV.NXT and does
    /// not exceed the window" (first step): what precedes RCV.NXT was
    /// processed before, and what the window refuses is answered with an
    /// ACK (a FIN behind refused text waits for it). The rest is queued.
    fn process_segment_text(
        &mut self,
        ctx: &mut Ctx<'_>,
        a: &mut Arrival<'_, '_>,
        preplaced: Option<u32>,
    ) -> ControlFlow<Disposition> {
        let nxt = self.rcv_nxt;
        if a.seq.lt(nxt) {
            let skip = nxt.since(a.seq) as usize;
            self.note_duplicate(a.seq, skip.min(a.text.len()));
            if skip > a.text.len() {
                // Only an old FIN precedes RCV.NXT: already processed.
                a.fin = a.fin && a.seq.add(a.text.len() as u32) == nxt;
                a.text = &[];
            } else {
                a.text = &a.text[skip..];
            }
            a.seq = nxt;
        }
        let room = self.rcv_wnd() as usize;
        if a.text.len() > room || (a.fin && room == 0 && !a.text.is_empty()) {
            a.text = &a.text[..room.min(a.text.len())];
            a.fin = false;
            // Text was refused: tell the peer where we are.
            self.ack_now = true;
        }
        self.queue_text(ctx, a.seq, a.text, preplaced)
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
        let sample = match (self.ts.is_some(), ts) {
            (true, Some((_, tsecr))) if tsecr != 0 => {
                let rtt = self.ts_val(ctx.now).wrapping_sub(tsecr);
                (rtt < 60_000).then(|| Duration::from_millis(u64::from(rtt)))
            }
            _ => match self.timing.get() {
                Some((end, at)) if ack.ge(end) => {
                    self.timing.clear();
                    Some(ctx.now - at)
                }
                _ => None,
            },
        };
        if let Some(r) = sample {
            self.rtt.sample(r);
        }
        let in_recovery = self.recover.is_some();
        self.recovery_on_ack(ctx, acked);
        if !in_recovery {
            let info = AckInfo {
                now: ctx.now,
                rtt: sample,
                srtt: self.rtt.srtt(),
                flight: self.snd_max.since(self.snd_una),
                min_rtt: self.rack_min_rtt(),
                paced: ctx.cfg.pacing,
            };
            self.cc.on_ack(data, self.snd_mss, info);
        }
        self.retries = 0;
        self.una_since
            .assign((self.snd_una != self.snd_max).then_some(ctx.now));
        // A soft error is history once the path carries data again.
        self.soft_error = None;
        self.trouble_reported = false;
        if self.snd_una == self.snd_max {
            self.timers.clear(TimerKind::Retransmission);
        } else {
            // RFC 6298 §5.3: restart the timer on an ACK of new data.
            self.timers
                .set(TimerKind::Retransmission, self.rto_deadline(ctx.now));
        }
        if self.want_writable && self.sendq.free() > 0 {
            self.want_writable = false;
            ctx.events.push_back(Event::Writable(ctx.id));
        }
    }

    /// Queues in-window text at `seq` (already trimmed to start at or after
    /// RCV.NXT and to fit the window) where the seventh step takes it,
    /// advances RCV.NXT over what became in order and schedules its ACK.
    /// With `preplaced`, the payload was copied in already (see
    /// [`Tcb::on_segment`]). Text for an application that stopped reading
    /// resets the connection (SHLD-3).
    fn queue_text(
        &mut self,
        ctx: &mut Ctx<'_>,
        seq: Seq,
        payload: &[u8],
        preplaced: Option<u32>,
    ) -> ControlFlow<Disposition> {
        if payload.is_empty() || !self.state.accepts_segment_text() || self.fin_rcvd {
            return ControlFlow::Continue(());
        }
        if self.read_closed {
            // SHLD-3 / MAY-1: the application will never read this.
            self.send_rst(ctx);
            return ControlFlow::Break(self.close_with(ctx, Some(Error::Aborted)));
        }
        let had_gaps = self.recvq.has_ooo();
        let off = seq.since(self.rcv_nxt) as usize;
        if self.recvq.refuses(off, payload.len()) {
            // Reassembly is bounded (SHLD-31 with a budget): a segment that
            // would open yet another hole-separated range is dropped (the
            // sender will resend it) and answered with the ACK that shows
            // where the holes are.
            ctx.out
                .drop(ctx.now, Some(self.tuple), "out-of-order range limit");
            self.ack_now = true;
            return ControlFlow::Continue(());
        }
        let n = match preplaced {
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
            } else if !self.timers.is_armed(TimerKind::DelayedAck) {
                // SHLD-18, MUST-40: delay the ACK, under 0.5 s.
                let at = ctx.now + ctx.cfg.delayed_ack;
                self.timers.set(TimerKind::DelayedAck, at);
            }
            self.signal_readable(ctx);
        }
        ControlFlow::Continue(())
    }

    /// Eighth, check the FIN bit (RFC 9293 §3.10.7.4), for a segment whose
    /// text ends at `end`: a FIN is taken once RCV.NXT reaches it ("Do not
    /// process the FIN if the state is CLOSED"); one beyond a gap is kept
    /// until the gap fills.
    #[inline]
    fn check_fin(&mut self, ctx: &mut Ctx<'_>, end: Seq, fin: bool) {
        if fin && self.state != State::Closed && end.ge(self.rcv_nxt) {
            self.peer_fin = Some(end);
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
}
