//! Reno (RFC 5681): slow start, congestion avoidance, the loss window after
//! an RTO, and NewReno's fast-recovery window (RFC 6582).

use super::{initial_window, AckInfo, CongestionControl};

/// RFC 5681 slow start and congestion avoidance with NewReno fast recovery.
#[derive(Clone, Debug)]
pub struct Reno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged toward the next +1 MSS in congestion avoidance.
    ca_acked: u32,
    /// The window and threshold before the last reduction, for
    /// [`undo`](CongestionControl::undo); `prior_cwnd` 0: nothing to undo.
    prior_cwnd: u32,
    prior_ssthresh: u32,
}

impl Reno {
    /// Reno with the initial window of RFC 6928 for `mss`, or one segment
    /// when the SYN or SYN-ACK had to be retransmitted (5681-2).
    pub fn new(mss: u32, syn_lost: bool) -> Self {
        Reno {
            cwnd: initial_window(mss, syn_lost),
            ssthresh: u32::MAX,
            ca_acked: 0,
            prior_cwnd: 0,
            prior_ssthresh: u32::MAX,
        }
    }

    /// RFC 5681 §3.1 equation (4): ssthresh = max(FlightSize / 2, 2·SMSS),
    /// remembering what it replaces for an undo.
    fn reduce(&mut self, flight: u32, mss: u32) {
        self.prior_cwnd = self.cwnd;
        self.prior_ssthresh = self.ssthresh;
        self.ssthresh = (flight / 2).max(mss.saturating_mul(2));
        self.ca_acked = 0;
    }
}

impl CongestionControl for Reno {
    fn init(&mut self, mss: u32, syn_lost: bool) {
        *self = Reno::new(mss, syn_lost);
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, mss: u32, _: AckInfo) {
        if self.cwnd < self.ssthresh {
            // Slow start: at most one SMSS per ACK (RFC 5681 §3.1, 5681-3).
            self.cwnd = self.cwnd.saturating_add(acked.min(mss));
        } else {
            // Congestion avoidance: one SMSS per cwnd of acknowledged data (5681-4).
            self.ca_acked = self.ca_acked.saturating_add(acked);
            if self.ca_acked >= self.cwnd {
                self.ca_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_rto(&mut self, flight: u32, mss: u32) {
        // RFC 5681 §3.1 equation (4) and the loss window (5681-5, 5681-6).
        self.reduce(flight, mss);
        self.cwnd = mss;
    }

    fn on_enter_recovery(&mut self, flight: u32, mss: u32) {
        // RFC 5681 §3.2 step 2; the window during recovery is PRR's
        // (RFC 6937), which paces sending down to ssthresh.
        self.reduce(flight, mss);
        self.cwnd = self.ssthresh;
    }

    fn on_exit_recovery(&mut self, _flight: u32, _mss: u32) {
        // RFC 6937 §3: cwnd = ssthresh at the end; an undo during the
        // recovery put back the larger window, and ssthresh with it.
        self.cwnd = self.cwnd.min(self.ssthresh);
        self.ca_acked = 0;
    }

    fn undo(&mut self) {
        if self.prior_cwnd == 0 {
            return;
        }
        self.cwnd = self.cwnd.max(self.prior_cwnd);
        self.ssthresh = self.prior_ssthresh;
        self.prior_cwnd = 0;
        self.ca_acked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instant;

    fn ack() -> AckInfo {
        AckInfo {
            now: Instant::ZERO,
            rtt: None,
            srtt: None,
            flight: 0,
            min_rtt: None,
            paced: false,
        }
    }

    #[test]
    fn rfc6928_initial_window() {
        assert_eq!(Reno::new(1460, false).cwnd(), 14_600);
        assert_eq!(Reno::new(536, false).cwnd(), 5360);
        assert_eq!(Reno::new(1460, true).cwnd(), 1460);
    }

    #[test]
    fn rfc5681_3_2_fast_recovery_window() {
        let mut r = Reno::new(1000, false);
        r.on_enter_recovery(20_000, 1000);
        assert_eq!(r.ssthresh(), 10_000);
        assert_eq!(r.cwnd(), 10_000, "PRR paces down to ssthresh");
        r.on_exit_recovery(4000, 1000);
        assert_eq!(r.cwnd(), 10_000, "RFC 6937: cwnd = ssthresh at the end");
    }

    #[test]
    fn rfc5681_slow_start_then_avoidance() {
        let mut r = Reno::new(1000, true);
        r.on_ack(4000, 1000, ack()); // stretch ACK counts one SMSS
        assert_eq!(r.cwnd(), 2000);
        r.on_rto(10_000, 1000);
        assert_eq!(r.cwnd(), 1000);
        for _ in 0..4 {
            r.on_ack(1000, 1000, ack());
        }
        assert_eq!(r.cwnd(), 5000); // reached ssthresh = 5000
        r.on_ack(1000, 1000, ack());
        assert_eq!(r.cwnd(), 5000);
        for _ in 0..4 {
            r.on_ack(1000, 1000, ack());
        }
        assert_eq!(r.cwnd(), 6000, "one SMSS per window in CA");
    }

    #[test]
    fn undo_restores_the_window_and_threshold_once() {
        let mut r = Reno::new(1000, false);
        r.on_rto(20_000, 1000);
        assert_eq!((r.cwnd(), r.ssthresh()), (1000, 10_000));
        r.undo();
        assert_eq!((r.cwnd(), r.ssthresh()), (10_000, u32::MAX));
        r.on_enter_recovery(30_000, 1000);
        r.on_exit_recovery(10_000, 1000);
        assert_eq!(
            (r.cwnd(), r.ssthresh()),
            (15_000, 15_000),
            "PRR: cwnd = ssthresh"
        );
        r.undo();
        assert_eq!((r.cwnd(), r.ssthresh()), (15_000, u32::MAX));
        r.undo();
        assert_eq!(
            (r.cwnd(), r.ssthresh()),
            (15_000, u32::MAX),
            "second undo: no-op"
        );
    }
}
