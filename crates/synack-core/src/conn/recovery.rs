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
        } else if self.dupacks == DUP_THRESH {
            // RFC 6582 §3.2 step 2: no new recovery before SND.UNA passes
            // the point of the last one.
            self.recover = Some(self.snd_max);
            self.cc.on_enter_recovery(flight, self.snd_mss);
            self.timing = None;
            self.retransmit_head(ctx);
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
            let flight = self.snd_max.since(self.snd_una);
            self.cc.on_exit_recovery(flight, self.snd_mss);
            return false;
        }
        // Partial ACK: the next hole is lost too; resend it now.
        self.cc.on_partial_ack(acked, self.snd_mss);
        self.retransmit_head(ctx);
        true
    }

    /// Leaves recovery on a timeout (RFC 6582 §3.2 step 4 leaves "recover" set
    /// so duplicate ACKs for old data do not start another one).
    pub(crate) fn recovery_on_rto(&mut self) {
        self.dupacks = 0;
        self.recover = None;
    }

    /// Resends one segment from SND.UNA, leaving SND.NXT where it is.
    pub(crate) fn retransmit_head(&mut self, ctx: &mut Ctx<'_>) {
        let data_end = self.data_end();
        let outstanding = if self.snd_una.lt(data_end) {
            data_end.since(self.snd_una)
        } else {
            0
        };
        let len = outstanding.min(self.snd_mss);
        let mut payload = alloc::vec![0u8; len as usize];
        let got = self.sendq.copy_range(0, &mut payload);
        payload.truncate(got);
        let mut flags = TcpFlags::ACK;
        let end = self.snd_una.add(got as u32);
        if self.fin_seq == Some(end) && self.snd_max.gt(end) {
            flags |= TcpFlags::FIN;
        }
        if got == 0 && !flags.fin() {
            return;
        }
        if end == data_end {
            flags |= TcpFlags::PSH;
        }
        self.send_segment(ctx, flags, self.snd_una, &payload, true);
        self.rto_at = Some(ctx.now + self.rto());
    }
}
