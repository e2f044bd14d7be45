//! Loss detection and fast recovery: which ACKs are duplicates (RFC 5681
//! §2, RFC 6675 §2), when a segment is taken as lost (RACK, RFC 8985; the
//! duplicate count of RFC 5681 §3.2 without SACK), and recovery: the
//! lost segments resent first and the window set by PRR (RFC 6937), with
//! NewReno's partial ACKs (RFC 6582) where there is no SACK.

use synack_wire::{Segment, TcpFlags};

use super::{Ctx, Tcb, TimerKind};
use crate::cc::CongestionControl;
use crate::seq::Seq;

/// DupThresh (RFC 5681 §3.2, RFC 6675 §2): duplicate ACKs, or SACKed
/// segments above a hole, that mean loss rather than reordering.
pub(super) const DUP_THRESH: u32 = 3;

impl Tcb {
    /// Is `seg` a duplicate ACK? `sacked_new`: how many bytes its SACK
    /// blocks reported that the scoreboard did not hold. Call before the
    /// ACK and its window are processed.
    ///
    /// With SACK (RFC 6675 §2), an ACK whose SACK blocks report octets
    /// between HighACK and HighData not SACKed before, "even if it carries
    /// new data, changes the advertised window, or moves the cumulative
    /// acknowledgment point": a receiver that grows its window on every ACK
    /// (as Linux's receive autotuning does) still sends duplicates. In
    /// recovery an ACK that moves SND.UNA is a partial ACK instead (RFC
    /// 6582 §3.2 step 5; RFC 6675 §5 counts DupAcks only outside
    /// recovery). An ACK with no SACK block at all is judged as RFC 5681
    /// does, so that a peer that agreed to SACK but sends no blocks still
    /// gets fast retransmit.
    pub(crate) fn is_dupack(&self, seg: &Segment<'_>, sacked_new: u32) -> bool {
        let outstanding = self.snd_max != self.snd_una;
        if self.sack_ok && seg.tcp.options.sack_count > 0 {
            let cumulative = Seq(seg.tcp.ack).gt(self.snd_una);
            return sacked_new > 0 && outstanding && !(cumulative && self.recover.is_some());
        }
        self.is_rfc5681_dupack(seg)
    }

    /// RFC 5681 §2: (a) data outstanding, (b) no payload, (c) no SYN or
    /// FIN, (d) ACK = SND.UNA, (e) the same window as the last ACK.
    fn is_rfc5681_dupack(&self, seg: &Segment<'_>) -> bool {
        let t = &seg.tcp;
        Seq(t.ack) == self.snd_una
            && self.snd_max != self.snd_una
            && seg.payload.is_empty()
            && !t.flags.syn()
            && !t.flags.fin()
            && (u32::from(t.window) << self.snd_wscale) == self.snd_wnd
    }

    /// Loss detection on an ACK (RFC 8985 §6.2), after the scoreboard took
    /// its blocks, SND.UNA moved and RACK took the delivered segments
    /// (`delivered` bytes); `dupack` as [`Tcb::is_dupack`] judged it. RACK
    /// marks segments lost by time; without SACK information duplicate ACKs
    /// are counted (RFC 5681 §3.2). A loss starts recovery; in recovery PRR
    /// sets what may go (RFC 6937).
    pub(crate) fn detect_loss(&mut self, ctx: &mut Ctx<'_>, dupack: bool, mut delivered: u32) {
        if dupack {
            self.dupacks += 1;
            if !self.uses_rack() {
                // RFC 6937 §3: without SACK a duplicate counts one segment
                // delivered.
                delivered = delivered.max(self.snd_mss);
            }
        }
        if self.uses_rack() {
            self.rack_detect_loss(ctx.now);
        }
        self.on_loss_check(ctx, delivered);
    }

    /// Starts recovery if a loss shows, and in recovery sends what PRR
    /// allows for `delivered` bytes newly delivered.
    pub(crate) fn on_loss_check(&mut self, ctx: &mut Ctx<'_>, delivered: u32) {
        if self.recover.is_none() {
            if !(self.loss_detected() && self.may_start_recovery()) {
                return;
            }
            self.start_recovery(ctx);
        }
        self.prr_send(ctx, delivered);
    }

    /// Whether RACK detects losses here: SACK agreed and the peer has sent
    /// blocks (RFC 8985 §2 needs SACK); a peer that agreed and sends none
    /// gets RFC 5681's duplicate count.
    fn uses_rack(&self) -> bool {
        self.sack_ok && self.rack.as_deref().is_some_and(|r| r.sack_seen)
    }

    /// Is a segment taken as lost? The one place that decides when fast
    /// recovery starts: RACK marked one (RFC 8985 §6.2 step 5; its
    /// reordering window is zero once DupThresh segments are SACKed with
    /// no reordering seen, RFC 8985 §6.2 step 4), or without SACK
    /// information DupThresh duplicates arrived (RFC 5681 §3.2 step 2).
    fn loss_detected(&self) -> bool {
        if self.uses_rack() {
            return self.next_lost().is_some();
        }
        self.dupacks >= DUP_THRESH
    }

    /// RFC 6582 §3.2 step 2, RFC 6675 §5.1: no new recovery before the
    /// cumulative ACK covers more than the point of the last one (or of the
    /// last timeout). RFC 6582's "recover" is the highest sequence number
    /// sent, SND.MAX - 1, and the floor holds SND.MAX: "covers more than
    /// recover" is SND.UNA >= floor. (With `>` the first segment sent after
    /// the recovery point could not start a recovery when it was lost: it
    /// waited for the loss probe and then the RTO.)
    fn may_start_recovery(&self) -> bool {
        self.recover_floor.is_none_or(|f| self.snd_una.ge(f))
    }

    /// Fast recovery (RFC 6675 §5 step 4, RFC 6937 §3): RecoveryPoint =
    /// HighData, ssthresh from the controller, PRR's counters from zero.
    /// Without SACK the head is the segment to resend (RFC 5681 §3.2).
    fn start_recovery(&mut self, ctx: &mut Ctx<'_>) {
        let flight = self.snd_max.since(self.snd_una);
        if !self.uses_rack() {
            self.mark_head_lost();
        }
        self.rack_on_recovery_start();
        self.recover = Some(self.snd_max);
        ctx.out.stats.fast_recoveries += 1;
        if !self.ecn_window_reduced() {
            // RFC 3168 §6.1.2: once per window; an ECE reduction of this
            // window already set the ssthresh PRR now works down to.
            self.cc.on_enter_recovery(flight, self.snd_mss);
        }
        self.ecn_note_reduction();
        self.timing.clear();
        self.timers.clear(TimerKind::LossProbe);
    }

    /// PRR-SSRB (RFC 6937 §3.1) on an ACK in recovery that delivered
    /// `delivered` bytes: sndcnt from prr_delivered, prr_out, RecoverFS and
    /// ssthresh; lost segments go first (RFC 6675 NextSeg () rule 1), and
    /// what is left of sndcnt lets new data follow in the next output.
    fn prr_send(&mut self, ctx: &mut Ctx<'_>, delivered: u32) {
        let pipe = self.recovery_pipe();
        let ssthresh = self.cc.ssthresh();
        let mss = self.snd_mss.max(1);
        let Some(r) = self.rack.as_deref_mut() else {
            return;
        };
        r.prr_delivered = r.prr_delivered.saturating_add(delivered);
        let sndcnt = if pipe > ssthresh {
            // Proportional: ceil(prr_delivered * ssthresh / RecoverFS) - prr_out.
            let target = (u64::from(r.prr_delivered) * u64::from(ssthresh))
                .div_ceil(u64::from(r.recover_fs.max(1)));
            (target.min(u64::from(u32::MAX)) as u32).saturating_sub(r.prr_out)
        } else {
            // Slow-start reduction bound: at most one MSS above what was
            // delivered, never past ssthresh.
            let limit = r.prr_delivered.saturating_sub(r.prr_out).max(delivered) + mss;
            (ssthresh - pipe).min(limit)
        };
        // The fast retransmit goes whatever the count says (RFC 6937 §3).
        r.allowance = if r.prr_out == 0 {
            sndcnt.max(mss)
        } else {
            sndcnt
        };
        while self.rack.as_deref().is_some_and(|r| r.allowance > 0) {
            let Some((start, len)) = self.next_lost() else {
                break;
            };
            self.retransmit_range(ctx, start, len);
            if self.next_lost() == Some((start, len)) {
                break; // nothing went (the queue no longer holds it)
            }
        }
    }

    /// Pipe in recovery: RACK's marks with SACK; without, RecoverFS less
    /// what was delivered plus what went since (RFC 6937 §3's estimate).
    fn recovery_pipe(&self) -> u32 {
        if self.uses_rack() {
            return self.pipe();
        }
        self.rack.as_deref().map_or(0, |r| {
            r.recover_fs
                .saturating_sub(r.prr_delivered)
                .saturating_add(r.prr_out)
        })
    }

    /// New data was acknowledged; returns true while recovery goes on.
    pub(crate) fn recovery_on_ack(&mut self, _ctx: &mut Ctx<'_>, _acked: u32) -> bool {
        self.dupacks = 0;
        let Some(recover) = self.recover else {
            return false;
        };
        if self.snd_una.ge(recover) {
            // Full ACK: leave recovery; PRR left the flight at ssthresh.
            self.recover = None;
            self.recover_floor = Some(recover);
            let flight = self.snd_max.since(self.snd_una);
            self.cc.on_exit_recovery(flight, self.snd_mss);
            self.rack_on_recovery_end();
            return false;
        }
        true
    }

    /// Leaves recovery on a timeout (RFC 6582 §3.2 step 4 leaves "recover" set
    /// so duplicate ACKs for old data do not start another one).
    pub(crate) fn recovery_on_rto(&mut self, ctx: &mut Ctx<'_>) {
        ctx.out.stats.retransmission_timeouts += 1;
        self.dupacks = 0;
        self.recover = None;
        self.recover_floor = Some(self.snd_max);
        // RFC 2018 §8, RFC 6675 §5.1: after a timeout, start again from
        // SND.UNA and forget what the peer said it held (it may renege).
        self.sacked.clear();
        self.rack_on_rto();
    }

    /// RACK's part of the ACK step (RFC 8985 §6.2 steps 1-4 and §7.4),
    /// once SND.UNA moved from `old_una`: the delivered segments, the DSACK
    /// the ACK carried (and the undo it may prove, RFC 2883 §4.2), Eifel's
    /// judgment of a timeout (RFC 3522), the end of a loss probe, and the
    /// PTO restarted on an ACK of new data (§7.2). Returns the bytes
    /// delivered (RFC 6937 DeliveredData).
    pub(crate) fn rack_on_ack(
        &mut self,
        ctx: &mut Ctx<'_>,
        old_una: Seq,
        tsecr: Option<u32>,
        dsack: Option<(Seq, Seq)>,
    ) -> u32 {
        let delivered = self.rack_deliver(ctx.now, old_una, tsecr).bytes;
        if self.recover.is_some() && self.snd_una.gt(old_una) && !self.uses_rack() {
            // A partial ACK (RFC 6582 §3.2 step 5): without SACK information
            // the new head is lost too. With SACK, RACK judges it by time.
            self.mark_head_lost();
        }
        if let Some((l, r)) = dsack {
            self.rack_on_dsack(l, r);
            if self.take_dsack_undo() {
                // Every retransmission of the recovery arrived twice: the
                // reduction was needless.
                self.cc.undo();
            }
        }
        self.rack_end_dsack_round();
        if self.snd_una.gt(old_una) {
            if self.eifel_check(tsecr) {
                ctx.out.stats.spurious_timeouts += 1;
            }
            if self.take_tlp_loss() && self.recover.is_none() {
                // RFC 8985 §7.4.2: the probe repaired a loss; answer it as
                // a fast recovery would.
                let flight = self.snd_max.since(old_una);
                self.cc.on_enter_recovery(flight, self.snd_mss);
                self.cc.on_exit_recovery(flight, self.snd_mss);
                self.ecn_note_reduction();
            }
            self.arm_loss_probe(ctx.now);
        }
        delivered
    }

    /// Eifel detection (RFC 3522 §3.2) on the first ACK of new data after a
    /// timeout: if it echoes a timestamp older than our retransmission's,
    /// the original was delivered and the timeout was spurious. The
    /// response (RFC 4015 §2): the window as before, and no go-back: new
    /// data resumes from SND.MAX. Returns whether the timeout was spurious.
    fn eifel_check(&mut self, tsecr: Option<u32>) -> bool {
        let Some(tsv) = self.rack.as_deref_mut().and_then(|r| r.rto_tsval.take()) else {
            return false;
        };
        let spurious = tsecr.is_some_and(|e| e != 0 && (e.wrapping_sub(tsv) as i32) < 0);
        if spurious {
            self.cc.undo();
            if self.snd_nxt.lt(self.snd_max) {
                self.snd_nxt = self.snd_max;
            }
        }
        spurious
    }

    /// A timeout: Eifel keeps the TSval the first retransmission carries
    /// (RFC 3522 §3.1), and a recovery's undo is off (the timeout shows
    /// loss, or will be judged by Eifel).
    pub(crate) fn rack_note_rto(&mut self, now: crate::Instant) {
        self.forget_undo();
        if self.ts.is_some() {
            let tsv = self.ts_val(now);
            if let Some(r) = self.rack.as_deref_mut() {
                r.rto_tsval.get_or_insert(tsv);
            }
        }
    }

    /// The PTO fired (RFC 8985 §7.3): one segment of new data if the
    /// windows let it go, else the last segment again; then the RTO is
    /// restarted, and the probe waits for its ACK.
    pub(crate) fn on_loss_probe(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_max || self.recover.is_some() || !self.state.can_send_data() {
            return;
        }
        let data_end = self.data_end();
        let unsent = if self.snd_nxt == self.snd_max && self.snd_nxt.lt(data_end) {
            data_end.since(self.snd_nxt)
        } else {
            0
        };
        let len = unsent.min(self.snd_mss);
        let room = self.snd_wnd.saturating_sub(self.in_flight());
        if len > 0 && room >= len {
            let fin = self.fin_queued && self.snd_nxt.add(len) == data_end && !self.fin_acked();
            self.send_data_segment(ctx, len, fin, data_end);
            self.note_loss_probe(false);
        } else if let Some((start, len)) = self.last_sent() {
            self.retransmit_range(ctx, start, len);
            self.note_loss_probe(true);
        }
        self.timers.clear(TimerKind::LossProbe);
        self.timers
            .set(TimerKind::Retransmission, self.rto_deadline(ctx.now));
    }

    /// Resends `[start, start+len)` (clamped to one segment and to what is
    /// outstanding), leaving SND.NXT where it is.
    pub(crate) fn retransmit_range(&mut self, ctx: &mut Ctx<'_>, start: Seq, len: u32) {
        let data_end = self.data_end();
        // Only what was sent: bytes past SND.MAX would be new data that
        // SND.MAX does not count, and the peer's ACK of them would look
        // like an ACK of unsent data (when SND.UNA is not on a segment
        // boundary, one MSS from it reaches past SND.MAX).
        let sent_end = if self.snd_max.lt(data_end) {
            self.snd_max
        } else {
            data_end
        };
        let avail = if start.lt(sent_end) {
            sent_end.since(start)
        } else {
            0
        };
        let len = len.min(avail).min(self.snd_mss);
        let got = len.min(
            self.sendq
                .len()
                .saturating_sub(start.since(self.send_base()) as usize) as u32,
        );
        let mut flags = TcpFlags::ACK;
        let end = start.add(got);
        if self.fin_seq == Some(end) && self.snd_max.gt(end) {
            flags |= TcpFlags::FIN;
        }
        if got == 0 && !flags.fin() {
            return;
        }
        if got > 0 && end == data_end {
            flags |= TcpFlags::PSH;
        }
        self.send_from_queue(ctx, flags, start, got, true);
        self.timers
            .set(TimerKind::Retransmission, self.rto_deadline(ctx.now));
    }
}
