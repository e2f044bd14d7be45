//! Time as the driver hands it in: a monotonic count of microseconds.

use core::time::Duration;

/// A point in time, in microseconds since an epoch the driver chose (the start
/// of the simulation, or of the process). The core never reads a clock itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);

    /// From microseconds since the epoch.
    pub const fn from_micros(us: u64) -> Self {
        Instant(us)
    }
    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms * 1000)
    }
    /// From seconds since the epoch.
    pub const fn from_secs(s: u64) -> Self {
        Instant(s * 1_000_000)
    }
    /// Microseconds since the epoch.
    pub const fn micros(self) -> u64 {
        self.0
    }
    /// Seconds since the epoch, as a float (for traces).
    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(d.as_micros().min(u64::MAX as u128) as u64),
        )
    }
}

impl core::ops::AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl core::ops::Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

/// A connection timer's deadline in eight bytes: an [`Instant`] or unset
/// (`Option<Instant>` takes sixteen, and a TCB holds several of them on
/// the cache lines every segment reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timer(u64);

impl Timer {
    /// Not armed.
    pub const OFF: Timer = Timer(u64::MAX);

    /// The deadline, if armed.
    #[inline]
    pub fn get(self) -> Option<Instant> {
        (self.0 != u64::MAX).then_some(Instant(self.0))
    }

    /// Arms the timer for `at` (the last microsecond of time stands in for
    /// a deadline beyond it: never reached either way).
    #[inline]
    pub fn set(&mut self, at: Instant) {
        self.0 = at.0.min(u64::MAX - 1);
    }

    /// Arms the timer for `at`, or disarms it with `None`.
    #[inline]
    pub fn assign(&mut self, at: Option<Instant>) {
        match at {
            Some(at) => self.set(at),
            None => self.clear(),
        }
    }

    /// Disarms the timer.
    #[inline]
    pub fn clear(&mut self) {
        *self = Timer::OFF;
    }

    /// Whether the timer is disarmed.
    #[inline]
    pub fn is_none(self) -> bool {
        self.0 == u64::MAX
    }

    /// Whether the timer is armed for a deadline satisfying `f`.
    #[inline]
    pub fn is_some_and(self, f: impl FnOnce(Instant) -> bool) -> bool {
        self.get().is_some_and(f)
    }

    /// Whether the timer is disarmed or armed for a deadline satisfying `f`.
    #[inline]
    pub fn is_none_or(self, f: impl FnOnce(Instant) -> bool) -> bool {
        self.get().is_none_or(f)
    }

    /// The earlier of two timers (an unset one is later than any deadline).
    #[inline]
    pub fn min(self, other: Timer) -> Timer {
        Timer(self.0.min(other.0))
    }
}
