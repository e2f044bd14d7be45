//! Timeouts (RFC 9293 §3.10.8): retransmission (RFC 6298), delayed ACK,
//! the persist timer for zero windows, the FIN-WAIT-2 timeout and
//! keep-alives (§3.8.4). Their deadlines live in the connection's
//! [`Timers`](super::Timers) table.

use super::{Ctx, Disposition, OutputMode, Tcb, TimerKind};
use crate::cc::CongestionControl;
use crate::{Error, Event, State};

impl Tcb {
    /// Runs every timer that is due at `ctx.now`, in the order of
    /// [`TimerKind::ALL`], then sends what they made due.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        let mut mode = OutputMode::Normal;
        for kind in TimerKind::ALL {
            // Each is looked at only once those before it ran: a handler
            // may re-arm or clear the timers that follow it.
            if !self.timers.take_due(kind, ctx.now) {
                continue;
            }
            let next = match kind {
                TimerKind::Close => self.on_close_timeout(ctx),
                TimerKind::Retransmission => self.on_rto(ctx),
                TimerKind::RackReorder => {
                    // RFC 8985 §6.2 step 5: the reordering window passed.
                    self.rack_detect_loss(ctx.now);
                    self.on_loss_check(ctx, 0);
                    Disposition::Stay
                }
                TimerKind::LossProbe => {
                    self.on_loss_probe(ctx);
                    Disposition::Stay
                }
                TimerKind::Persist => {
                    if self.in_flight() == 0 {
                        // The first zero-window probe (MUST-36, SHLD-29):
                        // one byte past the window, later ones back off on
                        // the RTO timer; or the SWS override: send the
                        // short segment now.
                        mode = OutputMode::Probe;
                    }
                    Disposition::Stay
                }
                TimerKind::DelayedAck => {
                    self.ack_now = true;
                    Disposition::Stay
                }
                // The held segments go with the output below.
                TimerKind::Pacing => Disposition::Stay,
                TimerKind::KeepAlive => self.on_keepalive(ctx),
            };
            if next != Disposition::Stay {
                return next;
            }
        }
        self.output_as(ctx, mode);
        Disposition::Stay
    }

    /// The FIN-WAIT-2 timeout or the TIME-WAIT timeout (RFC 9293 §3.10.8):
    /// CLOSED. In any other state the timer is left over and does nothing.
    fn on_close_timeout(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        if self.state.fin_acked() {
            return self.close_with(ctx, None);
        }
        Disposition::Stay
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
        let at = self
            .keepalive_applies()
            .then(|| self.last_recv + ctx.cfg.keepalive_idle);
        self.timers.assign(TimerKind::KeepAlive, at);
    }

    /// Whether keep-alives are on and the connection is one they watch:
    /// synchronized with SEND still open (ESTABLISHED, CLOSE-WAIT). In the
    /// closing states the FIN's retransmissions and the FIN-WAIT-2 and
    /// TIME-WAIT timeouts watch the peer instead.
    fn keepalive_applies(&self) -> bool {
        self.keepalive && self.state.is_synchronized() && self.state.accepts_send()
    }

    /// The keep-alive timer expired (RFC 9293 §3.8.4).
    fn on_keepalive(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        if !self.keepalive_applies() {
            return Disposition::Stay;
        }
        if self.snd_una != self.snd_max {
            // MUST-26: not while data is outstanding; the RTO watches it.
            self.keepalive_sent = 0;
            self.last_recv = ctx.now;
            self.rearm_keepalive(ctx);
            return Disposition::Stay;
        }
        if self.keepalive_sent >= ctx.cfg.keepalive_probes {
            // MUST-29: only many unanswered probes mean a dead peer.
            let err = self.timeout_error();
            return self.close_with(ctx, Some(err));
        }
        // SHLD-12: no data, SEQ = SND.NXT - 1, so the peer must answer.
        self.keepalive_sent += 1;
        self.send_keepalive_probe(ctx);
        let at = ctx.now + ctx.cfg.keepalive_interval;
        self.timers.set(TimerKind::KeepAlive, at);
        Disposition::Stay
    }

    /// The retransmission timer expired (RFC 6298 §5.4–§5.6).
    fn on_rto(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
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
                        return Disposition::ReturnToListen;
                    }
                    let err = self.timeout_error();
                    return self.close_with(ctx, Some(err));
                }
                self.report_trouble(ctx);
                self.syn_retransmitted = true;
                self.rtt.backoff();
                self.send_syn(ctx, true);
                Disposition::Stay
            }
            _ => {
                if self.snd_una == self.snd_max {
                    return Disposition::Stay;
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
                self.rack_note_rto(ctx.now);
                self.cc.on_rto(flight, self.snd_mss);
                self.ecn_note_reduction();
                self.rtt.backoff();
                // Go back to the earliest unacknowledged byte (RFC 6298 §5.4).
                self.snd_nxt = self.snd_una;
                self.timers
                    .set(TimerKind::Retransmission, self.rto_deadline(ctx.now));
                // Into a zero window the go-back is a window probe.
                let mode = if self.snd_wnd == 0 {
                    OutputMode::Probe
                } else {
                    OutputMode::Normal
                };
                self.output_as(ctx, mode);
                Disposition::Stay
            }
        }
    }
}
