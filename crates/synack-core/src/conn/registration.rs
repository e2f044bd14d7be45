//! A connection's entries in the stack's shared queues: the timer wheel
//! (one registration of its earliest deadline) and the list of ACKs that
//! are sent at drain time, once a batch of segments is processed.

use super::Tcb;
use crate::Instant;

impl Tcb {
    /// The deadline to register in the wheel, if it is earlier than the
    /// one registered already (a later registration would be redundant:
    /// stale ones are skipped when they fire); it counts as registered.
    #[inline]
    pub(crate) fn wheel_registration(&mut self) -> Option<Instant> {
        let d = self.next_deadline()?;
        if self.wheel_at.is_none_or(|w| d < w) {
            self.wheel_at.set(d);
            return Some(d);
        }
        None
    }

    /// Whether a wheel entry firing at `now` is this connection's live
    /// registration (due by now), which it then no longer is; not a stale
    /// one left behind when the deadline moved.
    #[inline]
    pub(crate) fn wheel_fired(&mut self, now: Instant) -> bool {
        let due = self.wheel_at.is_some_and(|w| w <= now);
        if due {
            self.wheel_at.clear();
        }
        due
    }

    /// Whether the ACK this connection queued is still owed at drain time.
    /// Mostly it is not (a later segment of the batch carried it): then
    /// it leaves the queue here, and only the flags are touched.
    #[inline]
    pub(crate) fn queued_ack_owed(&mut self) -> bool {
        if self.ack_owed() {
            return true;
        }
        self.ack_queued = false;
        false
    }
}
