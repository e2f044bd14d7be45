//! Timeouts (RFC 9293 §3.10.8): retransmission (RFC 6298), delayed ACK,
//! the persist timer for zero windows, and the FIN-WAIT-2 timeout.

use super::{Ctx, Next, Tcb};
use crate::cc::CongestionControl;
use crate::{Error, Event, State};

impl Tcb {
    /// Runs every timer that is due at `ctx.now`.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Next {
        let now = ctx.now;
        if self.close_at.is_some_and(|t| t <= now) {
            self.close_at = None;
            if matches!(self.state, State::FinWait2 | State::TimeWait) {
                return self.close_with(ctx, None);
            }
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            let next = self.on_rto(ctx);
            if next != Next::Stay {
                return next;
            }
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            if self.in_flight() == 0 {
                // The first zero-window probe (MUST-36, SHLD-29): one byte
                // past the window, later ones back off on the RTO timer; or
                // the SWS override: send the short segment now.
                self.force_probe = true;
            }
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        self.output(ctx);
        self.force_probe = false;
        Next::Stay
    }

    /// The retransmission timer expired (RFC 6298 §5.4–§5.6).
    fn on_rto(&mut self, ctx: &mut Ctx<'_>) -> Next {
        self.retries += 1;
        self.timing = None;
        match self.state {
            State::SynSent | State::SynReceived => {
                let limit = if self.state == State::SynSent {
                    ctx.cfg.syn_retries
                } else {
                    ctx.cfg.synack_retries
                };
                if self.retries > limit {
                    if self.passive && self.state == State::SynReceived {
                        self.set_state(ctx, State::Closed);
                        return Next::ReturnToListen;
                    }
                    return self.close_with(ctx, Some(Error::TimedOut));
                }
                self.syn_retransmitted = true;
                self.rtt.backoff();
                self.send_syn(ctx, true);
                Next::Stay
            }
            _ => {
                if self.snd_una == self.snd_max {
                    return Next::Stay;
                }
                if self.retries > ctx.cfg.max_retries {
                    // R2 (MUST-20): give up.
                    return self.close_with(ctx, Some(Error::TimedOut));
                }
                if self.retries >= ctx.cfg.r1_retries && !self.trouble_reported {
                    // R1 (SHLD-9): tell the application, keep trying.
                    self.trouble_reported = true;
                    ctx.events.push_back(Event::DeliveryTrouble(ctx.id));
                }
                let flight = self.snd_max.since(self.snd_una);
                self.cc.on_rto(flight, self.snd_mss);
                self.rtt.backoff();
                // Go back to the earliest unacknowledged byte (RFC 6298 §5.4).
                self.snd_nxt = self.snd_una;
                self.force_probe = self.snd_wnd == 0;
                self.rto_at = Some(ctx.now + self.rto());
                self.output(ctx);
                self.force_probe = false;
                Next::Stay
            }
        }
    }
}
