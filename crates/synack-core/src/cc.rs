//! Congestion control (RFC 5681, RFC 6582): slow start, congestion
//! avoidance, the loss window after an RTO, and the reduction of fast
//! recovery. Loss detection (RACK-TLP) and the window during recovery
//! (PRR, RFC 6937, from `ssthresh`) live in the connection
//! (`conn/recovery.rs`); this trait is where CUBIC plugs in.

/// What a congestion controller must answer. One per connection.
pub(crate) trait CongestionControl {
    /// Congestion window, bytes.
    fn cwnd(&self) -> u32;
    /// Slow-start threshold, bytes.
    fn ssthresh(&self) -> u32;
    /// New data was cumulatively acknowledged.
    fn on_ack(&mut self, acked: u32, mss: u32);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, flight: u32, mss: u32);
    /// Fast recovery starts with `flight` bytes out: set ssthresh (RFC
    /// 5681 §3.2 step 2). During recovery PRR (RFC 6937) paces sending
    /// from `ssthresh`, not from `cwnd`.
    fn on_enter_recovery(&mut self, flight: u32, mss: u32);
    /// Recovery ended with a full ACK; `flight` bytes still out. PRR has
    /// brought the flight to ssthresh: cwnd = ssthresh (RFC 6937 §3).
    fn on_exit_recovery(&mut self, flight: u32, mss: u32);
    /// The slow-start threshold the last reduction set.
    fn ssthresh(&self) -> u32;
    /// The last window reduction was spurious (RFC 3522, RFC 2883): restore
    /// cwnd and ssthresh from before it.
    fn undo(&mut self);
}

/// RFC 5681 slow start and congestion avoidance with NewReno fast recovery.
#[derive(Clone, Debug)]
pub(crate) struct Reno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged toward the next +1 MSS in congestion avoidance.
    ca_acked: u32,
    /// cwnd and ssthresh before the last reduction, for `undo`.
    prior: (u32, u32),
}

impl Reno {
    /// Initial window per RFC 5681 §3.1: min(4·MSS, max(2·MSS, 4380)), or one
    /// segment when the SYN or SYN-ACK had to be retransmitted (5681-2).
    pub fn new(mss: u32, syn_lost: bool) -> Self {
        let iw = if syn_lost {
            mss
        } else {
            (4 * mss).min((2 * mss).max(4380))
        };
        Reno {
            cwnd: iw,
            ssthresh: u32::MAX,
            ca_acked: 0,
            prior: (iw, u32::MAX),
        }
    }
}

impl CongestionControl for Reno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, mss: u32) {
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
        self.prior = (self.cwnd, self.ssthresh);
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.ca_acked = 0;
    }

    fn on_enter_recovery(&mut self, flight: u32, mss: u32) {
        self.prior = (self.cwnd, self.ssthresh);
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = self.ssthresh;
        self.ca_acked = 0;
    }

    fn on_exit_recovery(&mut self, _flight: u32, _mss: u32) {
        // cwnd was set to ssthresh on entry; an undo during the recovery
        // put back the larger window, and ssthresh with it (perhaps
        // still "infinite": the window before is what stays).
        self.cwnd = self.cwnd.min(self.ssthresh);
        self.ca_acked = 0;
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn undo(&mut self) {
        // RFC 3522 §3.2 / Linux's undo: back to the window before the
        // reduction, never below what it grew to since.
        self.cwnd = self.cwnd.max(self.prior.0);
        self.ssthresh = self.ssthresh.max(self.prior.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5681_1_initial_window() {
        assert_eq!(Reno::new(1460, false).cwnd(), 4380);
        assert_eq!(Reno::new(536, false).cwnd(), 2144);
        assert_eq!(Reno::new(1460, true).cwnd(), 1460);
    }

    #[test]
    fn rfc5681_3_2_fast_recovery_window() {
        let mut r = Reno::new(1000, false);
        r.on_enter_recovery(20_000, 1000);
        assert_eq!(r.ssthresh(), 10_000, "FlightSize / 2");
        r.on_exit_recovery(4000, 1000);
        assert_eq!(r.cwnd(), 10_000, "RFC 6937: cwnd = ssthresh at the end");
    }

    /// `undo` restores the window and threshold from before a reduction.
    #[test]
    fn undo_restores_the_window_before_the_reduction() {
        let mut r = Reno::new(1000, false);
        for _ in 0..16 {
            r.on_ack(1000, 1000);
        }
        assert_eq!(r.cwnd(), 20_000);
        r.on_rto(20_000, 1000);
        assert_eq!((r.cwnd(), r.ssthresh()), (1000, 10_000));
        r.undo();
        assert_eq!((r.cwnd(), r.ssthresh()), (20_000, u32::MAX));
        r.on_enter_recovery(20_000, 1000);
        r.on_exit_recovery(20_000, 1000);
        assert_eq!(r.cwnd(), 10_000);
        r.undo();
        assert_eq!((r.cwnd(), r.ssthresh()), (20_000, u32::MAX));
        // Undone during the recovery: its end keeps the window from before.
        r.on_enter_recovery(20_000, 1000);
        r.undo();
        r.on_exit_recovery(20_000, 1000);
        assert_eq!(r.cwnd(), 20_000);
    }

    #[test]
    fn rfc5681_slow_start_then_avoidance() {
        let mut r = Reno::new(1000, false);
        r.on_ack(4000, 1000); // stretch ACK counts one SMSS
        assert_eq!(r.cwnd(), 5000);
        r.on_rto(10_000, 1000);
        assert_eq!(r.cwnd(), 1000);
        for _ in 0..4 {
            r.on_ack(1000, 1000);
        }
        assert_eq!(r.cwnd(), 5000); // reached ssthresh = 5000
        r.on_ack(1000, 1000);
        assert_eq!(r.cwnd(), 5000);
        for _ in 0..4 {
            r.on_ack(1000, 1000);
        }
        assert_eq!(r.cwnd(), 6000, "one SMSS per window in CA");
    }
}
