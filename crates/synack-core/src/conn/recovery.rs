//! Loss detection and fast recovery: which ACKs are duplicates (RFC 5681
//! §2, RFC 6675 §2), when the segment at SND.UNA is taken as lost (RFC 6675
//! §5 steps 1-2), fast retransmit (RFC 5681 §3.2), and NewReno recovery
//! (RFC 6582): partial ACKs resend the next hole, and with SACK further
//! duplicates repair the holes the scoreboard shows lost.

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

    /// Loss detection on an ACK, after the scoreboard took its blocks and
    /// any cumulative part of it was processed, before the window update;
    /// `dupack` as [`Tcb::is_dupack`] judged it, `sacked_new` the bytes its
    /// blocks SACKed anew. A duplicate goes through RFC 6675 §5. Any other
    /// ACK still starts recovery when the scoreboard shows SND.UNA lost
    /// and recovery may start: the case of a hole that a recovery just
    /// ended by this ACK left behind, or that the recovery point kept from
    /// being repaired. Everything above it is SACKed already, so no
    /// duplicate would ever report it, and only the RTO would.
    pub(crate) fn detect_loss(&mut self, ctx: &mut Ctx<'_>, dupack: bool, sacked_new: u32) {
        if dupack {
            self.on_dupack(ctx, sacked_new);
        } else if self.recover.is_none() && self.loss_detected() && self.may_start_recovery() {
            self.start_recovery(ctx);
        }
    }

    /// A duplicate ACK arrived; its blocks SACKed `sacked_new` bytes not
    /// SACKed before.
    fn on_dupack(&mut self, ctx: &mut Ctx<'_>, sacked_new: u32) {
        self.dupacks += 1;
        if self.recover.is_some() {
            // One duplicate may SACK many segments (Linux compresses its
            // SACKs): each one has left the network.
            let left = (sacked_new / self.snd_mss.max(1)).max(1);
            self.segments_left(ctx, left);
        } else if self.loss_detected() && self.may_start_recovery() {
            self.start_recovery(ctx);
        }
    }

    /// In recovery, `n` more segments have left the network: each lets one
    /// go out (RFC 6675 §5 step (C), as pipe shrinks by what is SACKed),
    /// the next hole the scoreboard shows lost first (NextSeg () rule 1),
    /// else new data, for which the window inflates by a segment (RFC 5681
    /// §3.2 step 4).
    fn segments_left(&mut self, ctx: &mut Ctx<'_>, n: u32) {
        for _ in 0..n {
            if self.sack_ok && self.next_hole_is_lost() {
                self.retransmit_next_hole(ctx);
            } else {
                self.cc.on_recovery_dupack(self.snd_mss);
            }
        }
    }

    /// Is the segment at SND.UNA taken as lost? The one place that decides
    /// when fast recovery starts, so that a time-based detector (RFC 8985
    /// RACK) can take its place. RFC 6675 §5 steps (1) and (2): DupAcks
    /// reached DupThresh, or IsLost (HighACK + 1); without SACK only the
    /// count (RFC 5681 §3.2 step 2).
    fn loss_detected(&self) -> bool {
        self.dupacks >= DUP_THRESH || (self.sack_ok && self.is_lost(self.snd_una))
    }

    /// RFC 6582 §3.2 step 2, RFC 6675 §5: no new recovery before SND.UNA
    /// passes the point of the last one (or of the last timeout).
    fn may_start_recovery(&self) -> bool {
        self.recover_floor.is_none_or(|f| self.snd_una.gt(f))
    }

    /// Fast retransmit (RFC 6675 §5 step 4, RFC 5681 §3.2 steps 2-3):
    /// RecoveryPoint = HighData, halve the window, resend the segment at
    /// HighACK + 1.
    fn start_recovery(&mut self, ctx: &mut Ctx<'_>) {
        let flight = self.snd_max.since(self.snd_una);
        self.recover = Some(self.snd_max);
        ctx.out.stats.fast_recoveries += 1;
        self.cc.on_enter_recovery(flight, self.snd_mss);
        self.timing.clear();
        self.rtx_hole = self.snd_una;
        self.retransmit_next_hole(ctx);
        // `on_enter_recovery` counts the three segments RFC 5681 §3.2 step
        // 3 takes as gone; the scoreboard may show more.
        let sacked = self.sacked_bytes() / self.snd_mss.max(1);
        self.segments_left(ctx, sacked.saturating_sub(DUP_THRESH));
    }

    /// Does the next hole to resend (at or after `rtx_hole`: RFC 6675's
    /// HighRxt) pass IsLost ()? NextSeg () rule 1.
    fn next_hole_is_lost(&self) -> bool {
        self.next_hole(self.rtx_hole.max(self.snd_una))
            .is_some_and(|(start, _)| self.is_lost(start))
    }

    /// New data was acknowledged; returns true while recovery goes on.
    pub(crate) fn recovery_on_ack(&mut self, ctx: &mut Ctx<'_>, acked: u32) -> bool {
        self.dupacks = 0;
        let Some(recover) = self.recover else {
            return false;
        };
        if self.snd_una.ge(recover) {
            // Full ACK: leave recovery, deflate the window.
            self.recover = None;
            self.recover_floor = Some(recover);
            let flight = self.snd_max.since(self.snd_una);
            self.cc.on_exit_recovery(flight, self.snd_mss);
            return false;
        }
        // Partial ACK: the next hole is lost too; resend it now.
        self.cc.on_partial_ack(acked, self.snd_mss);
        self.rtx_hole = self.rtx_hole.max(self.snd_una);
        if !self.retransmit_next_hole(ctx) && self.sacked.is_empty() {
            // Without SACK information NewReno resends the new head.
            self.rtx_hole = self.snd_una;
            self.retransmit_next_hole(ctx);
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
    }

    /// Resends the next segment-sized piece at or after `rtx_hole` that the
    /// peer has not SACKed (without SACK: the head). Returns false when
    /// there is no such hole below the highest SACKed byte.
    pub(crate) fn retransmit_next_hole(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some((start, len)) = self.next_hole(self.rtx_hole.max(self.snd_una)) else {
            return false;
        };
        self.retransmit_range(ctx, start, len);
        self.rtx_hole = start.add(len);
        true
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
        if end == data_end {
            flags |= TcpFlags::PSH;
        }
        self.send_from_queue(ctx, flags, start, got, true);
        self.timers
            .set(TimerKind::Retransmission, self.rto_deadline(ctx.now));
    }
}
