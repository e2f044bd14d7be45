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
