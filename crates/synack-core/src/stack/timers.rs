//! Time: one wheel for every connection's timers (RFC 9293 §3.10.8), each
//! connection registered once at its earliest deadline, and the TIME-WAIT
//! table's own expiry list (the registration is [`Stack::schedule`]'s).

use super::Stack;
use crate::{ConnId, Instant};

/// A connection timer registered in the wheel. Only the connection: when
/// it fires, the connection's own `wheel_at` says whether it is the live
/// registration (due now) or a stale one left behind when the deadline
/// moved (skipped). Sixteen bytes a wheel entry with its instant.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimerItem(pub(super) ConnId);

impl Stack {
    /// The instant at which [`Stack::handle_timeout`] should next be called.
    /// It may be early (nothing due yet), never late. Any `handle_*` call or
    /// user call can change it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tw = self.time_wait.first().map(|(_, at)| at);
        [self.wheel.next_deadline(), tw, self.requests.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(tuple) = self.time_wait.pop_expired(now) {
            self.time_wait_ended(now, tuple);
        }
        self.expire_requests(now);
        let mut expired = core::mem::take(&mut self.expired);
        self.wheel.poll_expired(now, &mut expired);
        for TimerItem(id) in expired.drain(..) {
            // Most entries outlived their connection: the compact array
            // of generations tells so without reading the slot.
            if !self.conns.is_current(id) {
                continue;
            }
            if self.tcb_mut(id).is_some_and(|t| t.wheel_fired(now)) {
                self.with_conn(now, id, |t, ctx| t.on_timer(ctx));
            }
        }
        self.expired = expired;
    }
}
