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
            self.close_at.clear();
            if matches!(self.state, State::FinWait2 | State::TimeWait) {
                return self.close_with(ctx, None);
            }
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at.clear();
            let next = self.on_rto(ctx);
            if next != Next::Stay {
                return next;
            }
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at.clear();
            if self.in_flight() == 0 {
                // The first zero-window probe (MUST-36, SHLD-29): one byte
                // past the window, later ones back off on the RTO timer; or
                // the SWS override: send the short segment now.
                self.force_probe = true;
            }
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at.clear();
            self.ack_now = true;
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at.clear();
            let next = self.on_keepalive(ctx);
            if next != Next::Stay {
                return next;
            }
        }
        self.output(ctx);
        self.force_probe = false;
        Next::Stay
    }

    /// What a timeout reports: the last ICMP soft error when there was one
    /// (SHLD-25: "host unreachable" says more than "timed out").
    fn timeout_error(&self) -> Error {
        self.soft_error.unwrap_or(Error::TimedOut)
    }

    /// True once the oldest unacknowledged data has waited the user timeout.
    fn user_timeout_expired(&self, now: crate::Instant) -> bool {
        match (self.user_timeout.get(), self.una_since.get()) {
            (Some(limit), Some(since)) => now - since >= limit,
            _ => false,
        }
    }

    /// R1 (SHLD-9, MUST-22 for SYNs too): tell the application once per run
    /// of retransmissions that delivery is in trouble.
    fn report_trouble(&mut self, ctx: &mut Ctx<'_>) {
        if self.retries >= ctx.cfg.r1_retries && !self.trouble_reported {
            self.trouble_reported = true;
            // A half-open passive connection has no application yet.
            let unaccepted = self.passive && self.listener.is_some();
            if !self.released && !unaccepted {
                ctx.events.push_back(Event::DeliveryTrouble(ctx.id));
            }
        }
    }

    /// Turns keep-alives on or off (MUST-24).
    pub(crate) fn set_keepalive(&mut self, ctx: &mut Ctx<'_>, on: bool) {
        self.keepalive = on;
        self.keepalive_sent = 0;
        self.last_recv = self.last_recv.max(ctx.now);
        self.rearm_keepalive(ctx);
    }

    /// Sets the keep-alive deadline from the last time the peer was heard.
    pub(crate) fn rearm_keepalive(&mut self, ctx: &Ctx<'_>) {
        let live = matches!(self.state, State::Established | State::CloseWait);
        self.keepalive_at
            .assign((self.keepalive && live).then(|| self.last_recv + ctx.cfg.keepalive_idle));
    }

    /// The keep-alive timer expired (RFC 9293 §3.8.4).
    fn on_keepalive(&mut self, ctx: &mut Ctx<'_>) -> Next {
        if !self.keepalive || !matches!(self.state, State::Established | State::CloseWait) {
            return Next::Stay;
        }
        if self.snd_una != self.snd_max {
            // MUST-26: not while data is outstanding; the RTO watches it.
            self.keepalive_sent = 0;
            self.last_recv = ctx.now;
            self.rearm_keepalive(ctx);
            return Next::Stay;
        }
        if self.keepalive_sent >= ctx.cfg.keepalive_probes {
            // MUST-29: only many unanswered probes mean a dead peer.
            let err = self.timeout_error();
            return self.close_with(ctx, Some(err));
        }
        // SHLD-12: no data, SEQ = SND.NXT - 1, so the peer must answer.
        self.keepalive_sent += 1;
        self.send_keepalive_probe(ctx);
        self.keepalive_at.set(ctx.now + ctx.cfg.keepalive_interval);
        Next::Stay
    }

    /// The retransmission timer expired (RFC 6298 §5.4–§5.6).
    fn on_rto(&mut self, ctx: &mut Ctx<'_>) -> Next {
        self.retries += 1;
        self.timing.clear();
        match self.state {
            State::SynSent | State::SynReceived => {
                let limit = if self.state == State::SynSent {
                    ctx.cfg.syn_retries
                } else {
                    ctx.cfg.synack_retries
                };
                let expired = self.user_timeout_expired(ctx.now);
                if self.retries > limit || expired {
                    if self.passive && self.state == State::SynReceived {
                        self.set_state(ctx, State::Closed);
                        return Next::ReturnToListen;
                    }
                    let err = self.timeout_error();
                    return self.close_with(ctx, Some(err));
                }
                self.report_trouble(ctx);
                self.syn_retransmitted = true;
                self.rtt.backoff();
                self.send_syn(ctx, true);
                Next::Stay
            }
            _ => {
                if self.snd_una == self.snd_max {
                    return Next::Stay;
                }
                let give_up = match self.user_timeout.get() {
                    // MUST-21: the application's R2, as a time.
                    Some(_) => self.user_timeout_expired(ctx.now),
                    // R2 (MUST-20).
                    None => self.retries > ctx.cfg.max_retries,
                };
                if give_up {
                    let err = self.timeout_error();
                    return self.close_with(ctx, Some(err));
                }
                // R1 (SHLD-9): tell the application, keep trying.
                self.report_trouble(ctx);
                let flight = self.snd_max.since(self.snd_una);
                self.recovery_on_rto(ctx);
                self.cc.on_rto(flight, self.snd_mss);
                self.rtt.backoff();
                // Go back to the earliest unacknowledged byte (RFC 6298 §5.4).
                self.snd_nxt = self.snd_una;
                self.force_probe = self.snd_wnd == 0;
                self.rto_at.set(self.rto_deadline(ctx.now));
                self.output(ctx);
                self.force_probe = false;
                Next::Stay
            }
        }
    }
}
