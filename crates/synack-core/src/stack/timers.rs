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

/// The wheel is never swept below this many entries.
pub(super) const SWEEP_FLOOR: usize = 1024;

impl Stack {
    /// Drops the wheel's entries of connections gone. Under churn most
    /// entries are theirs: a connection's first registration is its SYN's
    /// retransmission timeout, a second away, and it is often closed and
    /// in TIME-WAIT within a few round trips; each such entry would hold
    /// its 16 bytes (and its share of the slot's room) until its deadline,
    /// which at a high connection rate is more than a TIME-WAIT entry
    /// costs. The test is the compact array of generations alone, no TCB
    /// read: a live connection's entries stay, the stale ones too (left
    /// when its deadline moved earlier; they fire and are skipped), since
    /// telling them apart would read every idle connection's TCB. The next
    /// sweep waits until the wheel has doubled (and holds at least
    /// [`SWEEP_FLOOR`] entries), so that each entry costs O(1) amortised.
    pub(super) fn sweep_wheel(&mut self) {
        let conns = &self.conns;
        self.wheel.retain(|TimerItem(id)| conns.is_current(*id));
        self.wheel_sweep_at = (2 * self.wheel.len()).max(SWEEP_FLOOR);
    }

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

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::*;
    use crate::Config;

    /// Regression: each connection opened and aborted at once left its
    /// SYN's retransmission timeout in the wheel for a second, so a burst
    /// of short connections grew the wheel by one entry each (the memory
    /// benchmark's TIME-WAIT figure rose from 117 to 151 bytes when the
    /// loss probe added a second registration per connection).
    #[test]
    fn the_wheel_does_not_keep_the_entries_of_connections_gone() {
        let mut stack = Stack::new(Config::default(), [7; 16]);
        let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        stack.add_address(local);
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        let now = Instant::from_millis(1);
        for port in 0..20_000u16 {
            let from = SocketAddr::new(local, 10_000 + port);
            let id = stack.connect(now, Some(from), remote).unwrap();
            stack.abort(now, id).unwrap();
            while stack.poll_transmit().is_some() {}
        }
        assert_eq!(stack.connection_count(), 0);
        assert!(
            stack.wheel.len() <= 2 * SWEEP_FLOOR,
            "{} entries for no connection",
            stack.wheel.len()
        );
        // Live registrations survive a sweep: one connection left waiting
        // still gets its SYN retransmitted.
        let id = stack.connect(now, None, remote).unwrap();
        stack.sweep_wheel();
        assert_eq!(stack.wheel.len(), 1);
        stack.handle_timeout(Instant::from_secs(2));
        assert_eq!(stack.state(id), Ok(crate::State::SynSent));
        assert!(stack.stats().retransmissions >= 1);
    }
}
