//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! All arithmetic is in whole microseconds (`u64`), saturating, so no input
//! can overflow or panic.

use core::time::Duration;

/// Clock granularity G (RFC 6298 section 2): 1 ms, in µs.
const GRANULARITY_US: u64 = 1_000;
/// The RTO to use after a lost SYN or SYN-ACK (RFC 6298 section 5.7): 3 s.
const SYN_LOSS_RTO_US: u64 = 3_000_000;
/// Backoffs beyond this many doublings cannot change the result.
const MAX_BACKOFFS: u32 = 64;

/// A duration in whole microseconds, saturating at `u64::MAX`.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `RttEstimator::srtt` before the first sample.
const NO_SAMPLE: u64 = u64::MAX;

/// The RFC 6298 estimator: smoothed RTT, RTT variation, and the resulting
/// retransmission timeout with exponential backoff.
///
/// The RTO is always within `[min_rto, max_rto]`. RFC 6298 (2.4) says the
/// minimum SHOULD be 1 s and (2.5) that a maximum MAY be applied provided it
/// is at least 60 s; the caller chooses both (tests and simulations may want
/// other values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RttEstimator {
    /// Lower clamp for the RTO, µs.
    min_rto: u64,
    /// Upper clamp for the RTO (also caps the backoff), µs.
    max_rto: u64,
    /// Smoothed RTT (SRTT), µs; `NO_SAMPLE` until the first sample
    /// (eight bytes where `Option<u64>` takes sixteen).
    srtt: u64,
    /// RTT variation (RTTVAR), µs; meaningful once `srtt` is set.
    rttvar: u64,
    /// The RTO before backoff, µs, already clamped.
    base_rto: u64,
    /// How many times the timer backed off since the last sample.
    backoffs: u32,
}

impl RttEstimator {
    /// A new estimator whose RTO, until the first sample, is `initial_rto`
    /// (RFC 6298 (2.1) says 1 s), clamped to `[min_rto, max_rto]`. If
    /// `max_rto` is below `min_rto`, `min_rto` is used for both.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        let min_rto = micros(min_rto);
        let max_rto = micros(max_rto).max(min_rto);
        RttEstimator {
            min_rto,
            max_rto,
            srtt: NO_SAMPLE,
            rttvar: 0,
            base_rto: micros(initial_rto).clamp(min_rto, max_rto),
            backoffs: 0,
        }
    }

    /// Feeds one RTT measurement `r` (RFC 6298 section 2) and clears any
    /// backoff: per Karn's algorithm (RFC 6298 section 3) the backed-off RTO
    /// is kept until a valid sample arrives, and callers must only sample
    /// segments that were not retransmitted.
    ///
    /// First sample (2.2): SRTT = R, RTTVAR = R/2. Later samples (2.3):
    /// RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R| using the old SRTT, then
    /// SRTT = 7/8 SRTT + 1/8 R. Then RTO = SRTT + max(G, 4 RTTVAR) with
    /// G = 1 ms, clamped to `[min_rto, max_rto]`.
    pub fn sample(&mut self, r: Duration) {
        let r = micros(r);
        let (srtt, rttvar) = match self.srtt {
            NO_SAMPLE => (r, r / 2),
            srtt => {
                let diff = srtt.abs_diff(r);
                // Both as u128 so the weighted sums cannot overflow; the
                // results are averages of u64 values and fit back.
                let rttvar = (3 * u128::from(self.rttvar) + u128::from(diff)) / 4;
                let srtt = (7 * u128::from(srtt) + u128::from(r)) / 8;
                (
                    u64::try_from(srtt).unwrap_or(u64::MAX),
                    u64::try_from(rttvar).unwrap_or(u64::MAX),
                )
            }
        };
        // The sentinel is never a sample: a smoothed RTT of half a million
        // years is clamped one microsecond short of it.
        self.srtt = srtt.min(NO_SAMPLE - 1);
        self.rttvar = rttvar;
        let rto = srtt.saturating_add(GRANULARITY_US.max(rttvar.saturating_mul(4)));
        self.base_rto = rto.clamp(self.min_rto, self.max_rto);
        self.backoffs = 0;
    }

    /// The current retransmission timeout: the base RTO doubled once per
    /// [`backoff`](Self::backoff) since the last sample, capped at `max_rto`.
    pub fn rto(&self) -> Duration {
        let mut rto = self.base_rto;
        for _ in 0..self.backoffs {
            if rto >= self.max_rto {
                break;
            }
            rto = rto.saturating_mul(2);
        }
        Duration::from_micros(rto.min(self.max_rto))
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 5.5),
    /// up to `max_rto`. Undone by the next [`sample`](Self::sample).
    pub fn backoff(&mut self) {
        self.backoffs = self.backoffs.saturating_add(1).min(MAX_BACKOFFS);
    }

    /// How many times the RTO has been doubled since the last sample.
    #[cfg(test)] // Read by the tests; the TCB needs only the RTO.
    pub fn backoffs(&self) -> u32 {
        self.backoffs
    }

    /// The smoothed RTT, or `None` before the first sample (RACK-TLP's
    /// reordering window and probe timeout are cut from it).
    pub fn srtt(&self) -> Option<Duration> {
        (self.srtt != NO_SAMPLE).then(|| Duration::from_micros(self.srtt))
    }

    /// The RTT variation, or `None` before the first sample (the loss
    /// probe's timeout for a lone segment takes four of it as its margin).
    pub fn rttvar(&self) -> Option<Duration> {
        (self.srtt != NO_SAMPLE).then(|| Duration::from_micros(self.rttvar))
    }

    /// Whether at least one sample has been taken.
    pub fn has_sample(&self) -> bool {
        self.srtt != NO_SAMPLE
    }

    /// RFC 6298 5.7: call when the handshake completes if the SYN or SYN-ACK
    /// had to be retransmitted. If there is no RTT sample yet and the RTO is
    /// below 3 s, it becomes 3 s (clamped to `[min_rto, max_rto]`); the
    /// handshake's backoff is cleared either way when there is no sample.
    /// With a sample, nothing changes.
    pub fn reset_for_syn_loss(&mut self) {
        if self.srtt == NO_SAMPLE {
            self.base_rto = self
                .base_rto
                .max(SYN_LOSS_RTO_US)
                .clamp(self.min_rto, self.max_rto);
            self.backoffs = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn rfc() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), Duration::from_secs(1), ms(60_000))
    }

    /// An estimator with a tiny minimum so the formulas show unclamped.
    fn raw() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), Duration::from_micros(1), ms(60_000))
    }

    #[test]
    fn rfc6298_2_1_initial_rto_is_one_second() {
        let e = rfc();
        assert_eq!(e.rto(), Duration::from_secs(1));
        assert!(!e.has_sample());
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), None);
    }

    #[test]
    fn rfc6298_2_2_first_sample_sets_srtt_and_half_rttvar() {
        let mut e = raw();
        e.sample(ms(100));
        assert!(e.has_sample());
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), Some(ms(50)));
        // RTO = 100 + max(1, 4*50) = 300 ms.
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn rfc6298_2_2_granularity_term_when_rttvar_tiny() {
        let mut e = raw();
        e.sample(Duration::from_micros(200));
        // RTTVAR = 100 µs, 4*RTTVAR = 400 µs < G = 1 ms.
        assert_eq!(e.rto(), Duration::from_micros(1_200));
    }

    #[test]
    fn rfc6298_2_3_rttvar_updated_before_srtt() {
        let mut e = raw();
        e.sample(ms(100));
        e.sample(ms(200));
        // RTTVAR = 3/4*50 + 1/4*|100-200| = 37.5 + 25 = 62.5 ms (old SRTT).
        // SRTT = 7/8*100 + 1/8*200 = 112.5 ms.
        // RTO = 112.5 + 4*62.5 = 362.5 ms.
        assert_eq!(e.rttvar(), Some(Duration::from_micros(62_500)));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(362_500));
        // Had SRTT been updated first, RTTVAR would be 59.375 ms.
        e.sample(ms(50));
        // RTTVAR = 3/4*62.5 + 1/4*62.5 = 62.5; SRTT = 98.4375 + 6.25 = 104.6875.
        assert_eq!(e.rttvar(), Some(Duration::from_micros(62_500)));
        assert_eq!(e.srtt(), Some(Duration::from_nanos(104_687_000)));
        assert_eq!(e.rto(), Duration::from_micros(104_687 + 250_000));
    }

    #[test]
    fn rfc6298_2_4_rto_clamped_to_minimum() {
        let mut e = rfc();
        e.sample(ms(10));
        assert_eq!(e.rto(), Duration::from_secs(1));
    }

    #[test]
    fn rfc6298_2_5_rto_clamped_to_maximum() {
        let mut e = rfc();
        e.sample(Duration::from_secs(100));
        assert_eq!(e.rto(), Duration::from_secs(60));
    }

    #[test]
    fn rfc6298_5_5_backoff_doubles_up_to_cap() {
        let mut e = rfc();
        let mut expected = 1;
        for _ in 0..5 {
            e.backoff();
            expected *= 2;
            assert_eq!(e.rto(), Duration::from_secs(expected));
        }
        // 32 s -> 60 s cap (RFC 2.5: a maximum, if any, is at least 60 s).
        for _ in 0..100 {
            e.backoff();
            assert_eq!(e.rto(), Duration::from_secs(60));
        }
        assert!(e.rto() >= Duration::from_secs(60));
    }

    #[test]
    fn rfc6298_5_5_sample_after_backoff_resets_it() {
        let mut e = rfc();
        e.backoff();
        e.backoff();
        assert_eq!(e.rto(), Duration::from_secs(4));
        assert_eq!(e.backoffs(), 2);
        e.sample(ms(10));
        assert_eq!(e.backoffs(), 0);
        assert_eq!(e.rto(), Duration::from_secs(1));
    }

    #[test]
    fn rfc6298_5_7_syn_loss_sets_three_seconds() {
        let mut e = rfc();
        e.backoff();
        e.reset_for_syn_loss();
        assert_eq!(e.rto(), Duration::from_secs(3));
        e.backoff();
        assert_eq!(e.rto(), Duration::from_secs(6));
        // With a sample the rule does not apply.
        let mut e = rfc();
        e.sample(ms(10));
        e.reset_for_syn_loss();
        assert_eq!(e.rto(), Duration::from_secs(1));
    }

    #[test]
    fn max_below_min_is_lifted() {
        let e = RttEstimator::new(ms(1), ms(500), ms(100));
        assert_eq!(e.rto(), ms(500));
    }

    proptest! {
        /// Whatever the samples and backoffs, the RTO stays in range and
        /// nothing panics.
        #[test]
        fn rto_always_within_bounds(
            ops in proptest::collection::vec(prop_oneof![
                any::<u64>().prop_map(Some),
                Just(None),
            ], 0..100),
            min in 0u64..2_000_000,
            max in 0u64..100_000_000,
        ) {
            let mut e = RttEstimator::new(
                Duration::from_secs(1),
                Duration::from_micros(min),
                Duration::from_micros(max),
            );
            for op in ops {
                match op {
                    Some(r) => e.sample(Duration::from_micros(r)),
                    None => e.backoff(),
                }
                let rto = micros(e.rto());
                prop_assert!(rto >= min && rto >= max.min(min));
                prop_assert!(rto <= max.max(min));
            }
            e.sample(Duration::MAX);
            prop_assert!(micros(e.rto()) <= max.max(min));
        }
    }
}
