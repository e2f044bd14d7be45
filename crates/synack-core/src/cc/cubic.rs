//! CUBIC (RFC 9438): the window grows as a cubic function of the time since
//! the last congestion event, concave up to the window where loss last
//! struck (W_max), convex beyond it, and never slower than Reno would
//! (the Reno-friendly region). Slow start is HyStart++ (RFC 9406).
//!
//! Arithmetic is integer and saturating: windows in bytes (the RFC's
//! formulas count segments; a segment is `mss` bytes), times in µs, the
//! cubic in `u128`.

use super::hystart::HyStart;
use super::{initial_window, AckInfo, CongestionControl};
use crate::Instant;

/// RFC 9438 §4.1: C = 0.4 segments/s³, as a fraction.
const C_NUM: u128 = 2;
const C_DEN: u128 = 5;
/// RFC 9438 §4.6: β_cubic = 0.7, as a fraction.
const BETA_NUM: u32 = 7;
const BETA_DEN: u32 = 10;
/// RFC 9438 §4.3: α_cubic = 3(1 - β)/(1 + β) = 9/17.
const ALPHA_NUM: u64 = 9;
const ALPHA_DEN: u64 = 17;
/// µs³ in s³.
const US3_PER_S3: u128 = 1_000_000_000_000_000_000;
/// Beyond this distance from K (about 19 hours, µs) the cubic has long
/// saturated any window; the clamp keeps the cube inside `u128`.
const MAX_DT_US: u64 = 1 << 36;
/// `Cubic::epoch_start` outside congestion avoidance.
const NO_EPOCH: u64 = u64::MAX;

/// CUBIC congestion control with HyStart++ slow start.
#[derive(Clone, Debug)]
pub struct Cubic {
    cwnd: u32,
    ssthresh: u32,
    /// RFC 9438 W_max: the window before the last reduction, after fast
    /// convergence (§4.7); 0 when the next epoch takes its own start as
    /// W_max (K = 0: after an RTO, §4.8, or a slow start ended without
    /// loss).
    w_max: u32,
    /// RFC 9438 cwnd_prior: the window when ssthresh was last set.
    cwnd_prior: u32,
    /// RFC 9438 W_est: the window Reno would have now (§4.3).
    w_est: u32,
    /// RFC 9438 K (§4.2), µs.
    k_us: u32,
    /// Remainder of the per-ACK growth of cwnd, in bytes·bytes of cwnd.
    ca_rem: u32,
    /// The window, threshold and W_max before the last reduction, for
    /// [`undo`](CongestionControl::undo); `prior_cwnd` 0: nothing to undo.
    prior_cwnd: u32,
    prior_ssthresh: u32,
    prior_w_max: u32,
    /// RFC 9438 t_epoch (µs of [`Instant`]), `NO_EPOCH` until the first ACK
    /// in congestion avoidance after a reduction.
    epoch_start: u64,
    /// Remainder of W_est's growth, in 1/17 bytes·bytes of cwnd (saturated:
    /// beyond 250 MB of window a byte more or less does not matter).
    est_rem: u32,
    hystart: HyStart,
}

impl Cubic {
    /// CUBIC with the initial window of RFC 6928 for `mss`, or one segment
    /// when the SYN or SYN-ACK had to be retransmitted (5681-2).
    pub fn new(mss: u32, syn_lost: bool) -> Self {
        Cubic {
            cwnd: initial_window(mss, syn_lost),
            ssthresh: u32::MAX,
            w_max: 0,
            cwnd_prior: 0,
            w_est: 0,
            k_us: 0,
            ca_rem: 0,
            prior_cwnd: 0,
            prior_ssthresh: u32::MAX,
            prior_w_max: 0,
            epoch_start: NO_EPOCH,
            est_rem: 0,
            hystart: HyStart::new(),
        }
    }

    /// RFC 9438 §4.2 equation (1): W_cubic(t) = C·(t - K)³ + W_max, bytes,
    /// `t` µs into the epoch.
    fn w_cubic(&self, t_us: u64, mss: u32) -> u32 {
        let k = u64::from(self.k_us);
        let (dt, below) = if t_us >= k {
            (t_us - k, false)
        } else {
            (k - t_us, true)
        };
        let dt = u128::from(dt.min(MAX_DT_US));
        let cube = dt * dt * dt;
        let delta = (C_NUM * u128::from(mss)).saturating_mul(cube) / (C_DEN * US3_PER_S3);
        let delta = u32::try_from(delta).unwrap_or(u32::MAX);
        if below {
            self.w_max.saturating_sub(delta)
        } else {
            self.w_max.saturating_add(delta)
        }
    }

    /// RFC 9438 §4.2 equation (2): K = ∛((W_max - cwnd_epoch) / C), µs.
    fn k(w_max: u32, cwnd_epoch: u32, mss: u32) -> u32 {
        let diff = u128::from(w_max.saturating_sub(cwnd_epoch));
        let k3 = diff * C_DEN * US3_PER_S3 / (C_NUM * u128::from(mss.max(1)));
        u32::try_from(icbrt(k3)).unwrap_or(u32::MAX)
    }

    /// The first ACK in congestion avoidance after a reduction starts an
    /// epoch, from cwnd_epoch = cwnd (RFC 9438 §4.2, §4.8: with no W_max
    /// to return to, the window at hand is W_max and K = 0).
    fn start_epoch(&mut self, now: Instant, mss: u32) {
        self.epoch_start = now.micros().min(NO_EPOCH - 1);
        if self.w_max <= self.cwnd {
            self.w_max = self.cwnd;
        }
        self.k_us = Cubic::k(self.w_max, self.cwnd, mss);
        self.w_est = self.cwnd;
        self.ca_rem = 0;
        self.est_rem = 0;
    }

    /// RFC 9438 §4.3 equation (4): W_est += α·segments_acked/cwnd, with
    /// α = 1 once W_est reaches cwnd_prior.
    fn grow_w_est(&mut self, acked: u32, mss: u32) {
        let alpha = if self.w_est >= self.cwnd_prior {
            ALPHA_DEN
        } else {
            ALPHA_NUM
        };
        let den = ALPHA_DEN * u64::from(self.cwnd.max(1));
        let total = (alpha * u64::from(mss))
            .saturating_mul(u64::from(acked))
            .saturating_add(u64::from(self.est_rem));
        let inc = u32::try_from(total / den).unwrap_or(u32::MAX);
        self.est_rem = u32::try_from(total % den).unwrap_or(u32::MAX);
        self.w_est = self.w_est.saturating_add(inc);
    }

    /// Congestion avoidance for one ACK (RFC 9438 §4.2-§4.5).
    fn avoid(&mut self, acked: u32, mss: u32, ack: &AckInfo) {
        if self.epoch_start == NO_EPOCH {
            self.start_epoch(ack.now, mss);
        }
        let t = ack.now.micros().saturating_sub(self.epoch_start);
        let rtt = ack
            .srtt
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.grow_w_est(acked, mss);
        if self.w_cubic(t, mss) < self.w_est {
            // §4.3: the Reno-friendly region.
            self.cwnd = self.cwnd.max(self.w_est);
            return;
        }
        // §4.4, §4.5: concave or convex, toward W_cubic(t + RTT), at most
        // 1.5·cwnd, never shrinking.
        let cap = self.cwnd.saturating_add(self.cwnd / 2);
        let target = self
            .w_cubic(t.saturating_add(rtt), mss)
            .clamp(self.cwnd, cap);
        let total = u64::from(target - self.cwnd) * u64::from(acked) + u64::from(self.ca_rem);
        let cwnd = u64::from(self.cwnd.max(1));
        self.cwnd = self
            .cwnd
            .saturating_add(u32::try_from(total / cwnd).unwrap_or(u32::MAX));
        self.ca_rem = (total % cwnd) as u32;
    }

    /// RFC 9438 §4.6, §4.7: a congestion event. Remembers the state for an
    /// undo, applies fast convergence to W_max and sets ssthresh to
    /// β_cubic·cwnd (at least 2 segments).
    fn reduce(&mut self, mss: u32) {
        self.prior_cwnd = self.cwnd;
        self.prior_ssthresh = self.ssthresh;
        self.prior_w_max = self.w_max;
        self.cwnd_prior = self.cwnd;
        self.w_max = if self.cwnd < self.w_max {
            // §4.7: W_max = cwnd·(1 + β)/2.
            (u64::from(self.cwnd) * u64::from(BETA_DEN + BETA_NUM) / u64::from(2 * BETA_DEN)) as u32
        } else {
            self.cwnd
        };
        let beta = u64::from(self.cwnd) * u64::from(BETA_NUM) / u64::from(BETA_DEN);
        self.ssthresh = (beta as u32).max(mss.saturating_mul(2));
        self.epoch_start = NO_EPOCH;
        self.hystart.on_congestion();
    }
}

/// ⌊∛n⌋ by bisection (no floating point in the core).
fn icbrt(n: u128) -> u64 {
    let (mut lo, mut hi) = (0u64, 1u64 << 42);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let m = u128::from(mid);
        if m * m * m <= n {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

impl CongestionControl for Cubic {
    fn init(&mut self, mss: u32, syn_lost: bool) {
        *self = Cubic::new(mss, syn_lost);
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, mss: u32, ack: AckInfo) {
        if self.cwnd < self.ssthresh {
            // RFC 9438 §4.10 / RFC 9406: slow start by HyStart++.
            let g = self.hystart.on_ack(acked, mss, &ack);
            self.cwnd = self.cwnd.saturating_add(g.increase);
            if g.exit {
                self.ssthresh = self.cwnd;
            }
        } else {
            self.avoid(acked, mss, &ack);
        }
    }

    fn on_rto(&mut self, flight: u32, mss: u32) {
        let _ = flight;
        // RFC 5681 §3.1: a segment already resent by the timer keeps
        // ssthresh as it is (the window is already the loss window).
        if self.cwnd > mss {
            self.reduce(mss);
            // §4.8: the first epoch after a timeout starts from K = 0.
            self.w_max = 0;
        }
        self.cwnd = mss;
        self.epoch_start = NO_EPOCH;
    }

    fn on_enter_recovery(&mut self, flight: u32, mss: u32) {
        let _ = flight;
        self.reduce(mss);
        // The window during recovery is PRR's (RFC 6937), which paces
        // sending down to ssthresh.
        self.cwnd = self.ssthresh;
    }

    fn on_exit_recovery(&mut self, flight: u32, mss: u32) {
        let _ = (flight, mss);
        // RFC 6937 §3: cwnd = ssthresh at the end; an undo during the
        // recovery put back the larger window.
        self.cwnd = self.cwnd.min(self.ssthresh);
        self.epoch_start = NO_EPOCH;
    }

    fn undo(&mut self) {
        // RFC 9438 §4.9: a spurious congestion event is undone.
        if self.prior_cwnd == 0 {
            return;
        }
        self.cwnd = self.cwnd.max(self.prior_cwnd);
        self.ssthresh = self.prior_ssthresh;
        self.w_max = self.prior_w_max;
        self.prior_cwnd = 0;
        self.epoch_start = NO_EPOCH;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    const MSS: u32 = 1000;

    fn ack(now_ms: u64, srtt_ms: u64) -> AckInfo {
        AckInfo {
            now: Instant::from_millis(now_ms),
            rtt: Some(Duration::from_millis(srtt_ms)),
            srtt: Some(Duration::from_millis(srtt_ms)),
            flight: 0,
            min_rtt: None,
            paced: false,
        }
    }

    /// A CUBIC in congestion avoidance after a loss at `w_max` segments.
    fn after_loss(w_max: u32) -> Cubic {
        let mut c = Cubic::new(MSS, false);
        c.cwnd = w_max * MSS;
        c.on_enter_recovery(w_max * MSS, MSS);
        c.on_exit_recovery(w_max * MSS, MSS);
        c
    }

    #[test]
    fn icbrt_is_exact_on_cubes_and_floors_between() {
        assert_eq!(icbrt(0), 0);
        assert_eq!(icbrt(26), 2);
        assert_eq!(icbrt(27), 3);
        assert_eq!(icbrt(u128::from(u64::MAX)), 2_642_245);
        assert_eq!(icbrt(u128::MAX), 1 << 42, "the bisection's ceiling");
    }

    #[test]
    fn rfc9438_4_2_k() {
        // W_max = 100, cwnd_epoch = 70: K = ∛(30/0.4) = ∛75 = 4.2172 s.
        let k = Cubic::k(100 * MSS, 70 * MSS, MSS);
        assert!((4_217_100..=4_217_200).contains(&k), "{k}");
        assert_eq!(Cubic::k(70 * MSS, 100 * MSS, MSS), 0, "above W_max: K = 0");
    }

    #[test]
    fn rfc9438_4_6_beta_on_loss() {
        let c = after_loss(100);
        assert_eq!(c.ssthresh(), 70 * MSS, "β_cubic = 0.7");
        assert_eq!(c.cwnd(), 70 * MSS);
        assert_eq!(c.w_max, 100 * MSS);
        let mut c = Cubic::new(MSS, false);
        c.cwnd = 2 * MSS;
        c.on_enter_recovery(2 * MSS, MSS);
        assert_eq!(c.ssthresh(), 2 * MSS, "never below two segments");
    }

    #[test]
    fn rfc9438_4_2_w_cubic_at_given_times() {
        let mut c = after_loss(100);
        c.on_ack(MSS, MSS, ack(0, 0)); // starts the epoch at t = 0
        let k = u64::from(c.k_us);
        assert_eq!(
            c.k_us,
            Cubic::k(100 * MSS, 70 * MSS, MSS),
            "cwnd_epoch = 70"
        );
        // W_cubic(0) = W_max - C·K³ = cwnd_epoch (to rounding).
        assert!(c.w_cubic(0, MSS).abs_diff(70 * MSS) <= 1);
        // W_cubic(K) = W_max.
        assert_eq!(c.w_cubic(k, MSS), 100 * MSS);
        // W_cubic(K + 1 s) = W_max + 0.4 segments; K + 2 s: + 3.2 segments.
        assert_eq!(c.w_cubic(k + 1_000_000, MSS), 100 * MSS + 400);
        assert_eq!(c.w_cubic(k + 2_000_000, MSS), 100 * MSS + 3200);
        // Symmetric below K.
        assert_eq!(c.w_cubic(k - 2_000_000, MSS), 100 * MSS - 3200);
    }

    #[test]
    fn rfc9438_concave_then_plateau_then_convex() {
        let mut c = after_loss(100);
        // One ACK per segment, an RTT of 500 ms (long enough that Reno's
        // estimate stays below the cubic).
        let at = |c: &mut Cubic, until_ms: u64, now: &mut u64| {
            while *now < until_ms {
                let per_rtt = c.cwnd() / MSS;
                for i in 0..per_rtt {
                    c.on_ack(
                        MSS,
                        MSS,
                        ack(*now + u64::from(i) * 500 / u64::from(per_rtt), 500),
                    );
                }
                *now += 500;
            }
            c.cwnd()
        };
        let mut now = 0;
        let w1 = at(&mut c, 1_000, &mut now);
        let w2 = at(&mut c, 2_000, &mut now);
        let w4 = at(&mut c, 4_000, &mut now);
        let w42 = at(&mut c, 4_500, &mut now);
        let w7 = at(&mut c, 7_000, &mut now);
        // Concave: fast growth first, slowing as W_max nears.
        assert!(w1 - 70 * MSS > w2 - w1, "{w1} {w2}");
        assert!(w4 < 100 * MSS && w4 > 95 * MSS, "near W_max before K: {w4}");
        assert!(w42.abs_diff(100 * MSS) < 2 * MSS, "plateau at K: {w42}");
        // Convex beyond K: W_cubic(7 s) = 100 + 0.4·2.78³ ≈ 108.6 segments.
        assert!(w7 > 104 * MSS && w7 < 115 * MSS, "{w7}");
        assert!(w7 - w42 > w42 - w4, "growth speeds up again");
    }

    #[test]
    fn rfc9438_4_3_reno_friendly_region() {
        // A small W_max and a long RTT: Reno's estimate leads.
        let mut c = after_loss(10);
        let mut exp = f64::from(c.cwnd());
        for _ in 0..100 {
            // W_est += α·segments_acked/cwnd: α = 9/17 below cwnd_prior
            // (10 segments), 1 from there on.
            let alpha = if exp < 10_000.0 { 9.0 / 17.0 } else { 1.0 };
            let cwnd = f64::from(c.cwnd());
            c.on_ack(MSS, MSS, ack(10, 1000));
            exp += alpha * f64::from(MSS) * f64::from(MSS) / cwnd;
        }
        assert!(
            (f64::from(c.w_est) - exp).abs() <= 2.0,
            "{} vs {exp}",
            c.w_est
        );
        assert_eq!(c.cwnd(), c.w_est, "cwnd follows W_est");
        assert!(c.w_cubic(0, MSS) < c.w_est);
    }

    #[test]
    fn rfc9438_4_7_fast_convergence() {
        let mut c = after_loss(100);
        assert_eq!(c.w_max, 100 * MSS);
        // The next loss comes at 80 segments, below W_max: release.
        c.cwnd = 80 * MSS;
        c.on_enter_recovery(80 * MSS, MSS);
        assert_eq!(c.w_max, 68 * MSS, "80·(1 + 0.7)/2");
        assert_eq!(c.ssthresh(), 56 * MSS);
        // A loss above W_max takes the window as it is.
        c.cwnd = 90 * MSS;
        c.on_enter_recovery(90 * MSS, MSS);
        assert_eq!(c.w_max, 90 * MSS);
    }

    #[test]
    fn rfc9438_4_8_rto() {
        let mut c = Cubic::new(MSS, false);
        c.cwnd = 50 * MSS;
        c.on_rto(50 * MSS, MSS);
        assert_eq!(c.cwnd(), MSS, "the loss window");
        assert_eq!(c.ssthresh(), 35 * MSS, "β_cubic");
        // A second timeout for the same data keeps ssthresh.
        c.on_rto(50 * MSS, MSS);
        assert_eq!(c.ssthresh(), 35 * MSS);
        // Slow start up to ssthresh, then the epoch starts with K = 0 and
        // W_max the window at hand.
        for i in 0..34 {
            c.on_ack(MSS, MSS, ack(i, 10));
        }
        assert_eq!(c.cwnd(), 35 * MSS);
        c.on_ack(MSS, MSS, ack(40, 10));
        assert_eq!(c.k_us, 0);
        assert_eq!(c.w_max, 35 * MSS);
    }

    #[test]
    fn rfc9438_4_9_undo() {
        let mut c = Cubic::new(MSS, false);
        c.cwnd = 50 * MSS;
        c.on_rto(50 * MSS, MSS);
        c.undo();
        assert_eq!((c.cwnd(), c.ssthresh()), (50 * MSS, u32::MAX));
        let mut c = after_loss(100);
        c.undo();
        assert_eq!((c.cwnd(), c.ssthresh(), c.w_max), (100 * MSS, u32::MAX, 0));
        c.undo();
        assert_eq!(c.cwnd(), 100 * MSS, "a second undo does nothing");
    }

    #[test]
    fn slow_start_ends_on_an_rtt_rise() {
        let mut c = Cubic::new(MSS, false);
        let mut now = 0;
        let mut rtt = 20;
        while c.ssthresh() == u32::MAX {
            let n = c.cwnd() / MSS;
            for _ in 0..n {
                let a = AckInfo {
                    flight: n * MSS,
                    ..ack(now, rtt)
                };
                c.on_ack(MSS, MSS, a);
            }
            now += rtt;
            rtt += 5; // the queue builds
            assert!(now < 10_000, "HyStart++ must end slow start");
        }
        assert!(c.ssthresh() <= c.cwnd());
        assert!(c.cwnd() < 100 * MSS, "well before a loss: {}", c.cwnd());
    }

    #[test]
    fn nothing_panics_on_extremes() {
        let mut c = Cubic::new(u32::MAX, false);
        c.on_ack(u32::MAX, u32::MAX, ack(u64::MAX / 1000, u64::MAX / 1000));
        c.on_enter_recovery(u32::MAX, u32::MAX);
        c.on_exit_recovery(u32::MAX, u32::MAX);
        c.on_ack(u32::MAX, u32::MAX, ack(0, 0));
        c.on_ack(u32::MAX, u32::MAX, ack(u64::MAX / 1000, u64::MAX / 1000));
        c.on_rto(0, 1);
        c.on_ack(u32::MAX, 1, ack(1, 1));
        c.undo();
        assert!(c.cwnd() >= 1);
    }
}
