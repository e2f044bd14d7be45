//! Fast retransmit and NewReno fast recovery (RFC 5681 §3.2, RFC 6582):
//! the third duplicate ACK resends the first unacknowledged segment without
//! waiting for the RTO; partial ACKs during recovery resend the next hole.

use synack_wire::{Segment, TcpFlags};

use super::{Ctx, Tcb};
use crate::cc::CongestionControl;
use crate::seq::Seq;

/// Duplicate ACKs that trigger a fast retransmit.
const DUP_THRESH: u32 = 3;

impl Tcb {
    /// Is `seg` a duplicate ACK in RFC 5681's sense: ACK = SND.UNA with data
    /// outstanding, no payload, no SYN or FIN, and the same window?
    pub(crate) fn is_dupack(&self, seg: &Segment<'_>) -> bool {
        let t = &seg.tcp;
        Seq(t.ack) == self.snd_una
            && self.snd_max != self.snd_una
            && seg.payload.is_empty()
            && !t.flags.syn()
            && !t.flags.fin()
            && (u32::from(t.window) << self.snd_wscale) == self.snd_wnd
    }

    /// A duplicate ACK arrived (call before the window update).
    pub(crate) fn on_dupack(&mut self, ctx: &mut Ctx<'_>) {
        self.dupacks += 1;
        let flight = self.snd_max.since(self.snd_una);
        if self.recover.is_some() {
            self.cc.on_recovery_dupack(self.snd_mss);
        } else if self.dupacks == DUP_THRESH
            && self.recover_floor.is_none_or(|f| self.snd_una.gt(f))
        {
            // RFC 6582 §3.2 step 2: no new recovery before SND.UNA passes
            // the point of the last one.
            self.recover = Some(self.snd_max);
            ctx.out.stats.fast_recoveries += 1;
            self.cc.on_enter_recovery(flight, self.snd_mss);
            self.timing.clear();
            self.rtx_hole = self.snd_una;
            self.retransmit_next_hole(ctx);
        } else {
            return;
        }
        if self.recover.is_some() && self.dupacks > DUP_THRESH && self.sack_ok {
            // With SACK, each further duplicate can repair one more hole
            // below the highest SACKed byte (RFC 6675 §5, NextSeg rule 1).
            self.retransmit_next_hole(ctx);
        }
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
        self.rto_at.set(self.rto_deadline(ctx.now));
    }
}
