//! The table of a connection's timers (RFC 9293 §3.8 and §3.10.8): one
//! deadline per kind, in the eight bytes of a [`Timer`] each, so that
//! stopping them all, or finding the earliest, cannot miss one.

use crate::time::{Instant, Timer};

/// The timers a connection runs. The order of the variants is the order in
/// which [`Tcb::on_timer`](super::Tcb::on_timer) services those that are
/// due at the same instant (see [`TimerKind::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The FIN-WAIT-2 timeout, or the 2 MSL of TIME-WAIT (RFC 9293
    /// §3.10.8 "TIME-WAIT TIMEOUT"): the connection ends when it fires.
    Close,
    /// The retransmission timer (RFC 9293 §3.10.8, RFC 6298 §5).
    Retransmission,
    /// The RACK reorder timer (RFC 8985 §6.2 step 5): a segment sent
    /// before one delivered is lost once its reordering window passes.
    RackReorder,
    /// The tail loss probe's timeout, PTO (RFC 8985 §7.2).
    LossProbe,
    /// The persist timer: the first zero-window probe (RFC 9293 §3.8.6.1,
    /// MUST-36) or the sender SWS override (§3.8.6.2.1).
    Persist,
    /// The delayed ACK (RFC 9293 §3.8.6.3, MUST-40: under 0.5 s).
    DelayedAck,
    /// The next paced segment may leave ([`super::pacing`]).
    Pacing,
    /// The next keep-alive probe (RFC 9293 §3.8.4).
    KeepAlive,
}

impl TimerKind {
    /// Every kind, in the order due timers are serviced: the end of the
    /// connection first, then retransmission (the timeout, then RACK's
    /// loss marks, then the probe that a timeout or a recovery makes moot),
    /// and what only affects the next output last.
    pub const ALL: [TimerKind; 8] = [
        TimerKind::Close,
        TimerKind::Retransmission,
        TimerKind::RackReorder,
        TimerKind::LossProbe,
        TimerKind::Persist,
        TimerKind::DelayedAck,
        TimerKind::Pacing,
        TimerKind::KeepAlive,
    ];
}

/// The deadlines of a connection's timers, one per [`TimerKind`]:
/// sixty-four bytes (one cache line) where the TCB keeps its hot fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timers([Timer; 8]);

impl Timers {
    /// No timer armed.
    pub const OFF: Timers = Timers([Timer::OFF; 8]);

    /// The deadline of `kind`, if armed.
    #[inline]
    pub fn get(&self, kind: TimerKind) -> Option<Instant> {
        self.0[kind as usize].get()
    }

    /// Whether `kind` is armed.
    #[inline]
    pub fn is_armed(&self, kind: TimerKind) -> bool {
        !self.0[kind as usize].is_none()
    }

    /// Arms `kind` for `at`, replacing any earlier deadline.
    #[inline]
    pub fn set(&mut self, kind: TimerKind, at: Instant) {
        self.0[kind as usize].set(at);
    }

    /// Arms `kind` for `at`, or disarms it with `None`.
    #[inline]
    pub fn assign(&mut self, kind: TimerKind, at: Option<Instant>) {
        self.0[kind as usize].assign(at);
    }

    /// Disarms `kind`.
    #[inline]
    pub fn clear(&mut self, kind: TimerKind) {
        self.0[kind as usize].clear();
    }

    /// Whether `kind` is armed for `now` or earlier.
    #[inline]
    pub fn is_due(&self, kind: TimerKind, now: Instant) -> bool {
        self.get(kind).is_some_and(|at| at <= now)
    }

    /// Disarms `kind` and returns true if it was due at `now`; leaves it
    /// as it was otherwise.
    #[inline]
    pub fn take_due(&mut self, kind: TimerKind, now: Instant) -> bool {
        let due = self.is_due(kind, now);
        if due {
            self.clear(kind);
        }
        due
    }

    /// Disarms every timer: the connection is CLOSED, or enters TIME-WAIT,
    /// where RFC 9293 §3.10.7.4 says "turn off the other timers" (the
    /// TIME-WAIT table keeps the 2 MSL deadline itself).
    #[inline]
    pub fn stop_all(&mut self) {
        *self = Timers::OFF;
    }

    /// The earliest deadline armed, if any.
    #[inline]
    pub fn next(&self) -> Option<Instant> {
        // Plain comparisons (an unset timer is later than any deadline):
        // this runs after every event on the connection.
        let [a, b, c, d, e, f, g, h] = self.0;
        (a.min(b).min(c.min(d))).min(e.min(f).min(g.min(h))).get()
    }
}

#[cfg(test)]
mod tests {
    use super::{TimerKind, Timers};
    use crate::time::Instant;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn kinds_are_independent() {
        let mut t = Timers::OFF;
        for (i, kind) in TimerKind::ALL.into_iter().enumerate() {
            t.set(kind, at(10 + i as u64));
        }
        for (i, kind) in TimerKind::ALL.into_iter().enumerate() {
            assert_eq!(t.get(kind), Some(at(10 + i as u64)), "{kind:?}");
        }
        t.clear(TimerKind::Persist);
        assert!(!t.is_armed(TimerKind::Persist));
        assert!(t.is_armed(TimerKind::DelayedAck));
        assert!(t.is_armed(TimerKind::Retransmission));
        t.assign(TimerKind::Persist, Some(at(3)));
        assert_eq!(t.get(TimerKind::Persist), Some(at(3)));
        t.assign(TimerKind::Persist, None);
        assert_eq!(t.get(TimerKind::Persist), None);
    }

    #[test]
    fn take_due_disarms_only_what_is_due() {
        let mut t = Timers::OFF;
        t.set(TimerKind::Retransmission, at(100));
        t.set(TimerKind::DelayedAck, at(40));
        assert!(!t.take_due(TimerKind::Retransmission, at(99)));
        assert!(t.is_armed(TimerKind::Retransmission));
        assert!(!t.take_due(TimerKind::KeepAlive, at(1000)), "never armed");
        assert!(
            t.is_due(TimerKind::DelayedAck, at(40)),
            "due at its deadline"
        );
        assert!(t.take_due(TimerKind::DelayedAck, at(40)));
        assert!(!t.is_armed(TimerKind::DelayedAck));
        assert!(!t.take_due(TimerKind::DelayedAck, at(40)), "fires once");
        assert!(t.take_due(TimerKind::Retransmission, at(250)));
    }

    #[test]
    fn next_is_the_earliest_deadline() {
        let mut t = Timers::OFF;
        assert_eq!(t.next(), None);
        t.set(TimerKind::KeepAlive, at(7_200_000));
        assert_eq!(t.next(), Some(at(7_200_000)));
        // Each kind in turn holds the earliest deadline.
        for kind in TimerKind::ALL {
            let mut u = t;
            u.set(kind, at(5));
            assert_eq!(u.next(), Some(at(5)), "{kind:?}");
        }
        t.set(TimerKind::Close, at(60_000));
        t.set(TimerKind::Retransmission, at(200));
        assert_eq!(t.next(), Some(at(200)));
        t.clear(TimerKind::Retransmission);
        assert_eq!(t.next(), Some(at(60_000)));
    }

    #[test]
    fn stop_all_leaves_nothing_armed() {
        let mut t = Timers::OFF;
        for kind in TimerKind::ALL {
            t.set(kind, at(1));
        }
        t.stop_all();
        for kind in TimerKind::ALL {
            assert!(!t.is_armed(kind), "{kind:?}");
        }
        assert_eq!(t.next(), None);
        assert_eq!(t, Timers::OFF);
    }

    #[test]
    fn the_table_is_eight_timers_wide() {
        assert_eq!(core::mem::size_of::<Timers>(), 8 * 8);
    }
}
