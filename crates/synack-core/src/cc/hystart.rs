//! HyStart++ (RFC 9406): leave slow start when the round trip starts to
//! rise, before the queue overflows, through a phase of Conservative Slow
//! Start (CSS) that guards against a rise that was noise; and beside it
//! the original HyStart's ACK train, which Linux's CUBIC also runs, for the
//! deep drop-tail queue whose fill the delay test sees too late
//! ([`HyStart::train_is_long`]).
//!
//! Rounds are counted in acknowledged bytes: a round's bytes are those
//! that were in flight when it began (RFC 9406 §4.2 "windowEnd =
//! SND.NXT", measured from the acknowledged side). Once they are
//! acknowledged, the round ends with the ACK train they came in
//! ([`HyStart::track_round`]). Any controller can use it; [`super::Cubic`]
//! does.

use core::time::Duration;

use super::AckInfo;

/// RFC 9406 §4.3: the bounds of the RTT rise that counts (µs).
const MIN_RTT_THRESH_US: u32 = 4_000;
const MAX_RTT_THRESH_US: u32 = 16_000;
/// The rise must exceed the last round's minimum over this divisor.
const MIN_RTT_DIVISOR: u32 = 8;
/// RTT samples a round needs before it is compared.
const N_RTT_SAMPLE: u8 = 8;
/// CSS grows the window this many times slower than slow start.
const CSS_GROWTH_DIVISOR: u32 = 4;
/// Rounds of CSS before congestion avoidance.
const CSS_ROUNDS: u8 = 5;
/// The largest slow-start increase per ACK, in segments, for a sender that
/// does not pace (RFC 9406 §4.3: L = 8).
const L: u32 = 8;
/// "Infinity" for a round's minimum RTT.
const NONE_US: u32 = u32::MAX;
/// HyStart's ACK train (Ha and Rhee, "Taming the elephants: New TCP slow
/// start", Computer Networks 55(9), 2011): ACKs that come back no further
/// apart than this are one train, spaced by the bottleneck (Linux's
/// `hystart_ack_delta_us`).
const TRAIN_GAP_US: u32 = 2_000;
/// A round whose bytes are acknowledged inside a train ends at most this
/// fraction of the flight later when the ACKs come with no gap at all (a
/// saturated path, a paced sender).
const ROUND_OVERRUN_DIVISOR: u32 = 8;
/// The train is timed only with this many segments in flight (Linux's
/// `hystart_low_window`): a small window's few ACKs say nothing of the path.
const TRAIN_LOW_WINDOW: u32 = 16;

/// Where HyStart++ is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Standard slow start, watching the RTT.
    SlowStart,
    /// Conservative Slow Start after an RTT rise.
    Css,
    /// Slow start ended (a congestion event, or CSS ran its rounds): later
    /// slow starts (after an RTO) follow RFC 5681 alone.
    Done,
}

/// What slow start does with one ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Growth {
    /// Bytes to add to the congestion window.
    pub increase: u32,
    /// Slow start is over: set ssthresh to the (grown) window and continue
    /// in congestion avoidance (RFC 9406 §4.2, after CSS_ROUNDS).
    pub exit: bool,
}

/// The state of HyStart++ for one connection.
#[derive(Clone, Debug)]
pub struct HyStart {
    phase: Phase,
    /// RFC 9406 rttSampleCount, this round.
    samples: u8,
    /// Rounds completed in CSS.
    css_rounds: u8,
    /// The round's bytes are acknowledged; it ends with the train, and
    /// `round_left` counts down the overrun allowed when no gap comes.
    round_due: bool,
    /// Bytes still to be acknowledged before the current round ends.
    round_left: u32,
    /// RFC 9406 lastRoundMinRTT, currentRoundMinRTT, cssBaselineMinRtt (µs).
    last_round_min: u32,
    current_round_min: u32,
    css_baseline: u32,
    /// The ACK train: when the current one began, and its latest ACK (µs,
    /// the low 32 bits: only differences are taken, and a train is far
    /// shorter than the 71 minutes they wrap in).
    train_start: u32,
    train_last: u32,
}

impl Default for HyStart {
    fn default() -> Self {
        HyStart::new()
    }
}

impl HyStart {
    /// HyStart++ at the start of a connection, in slow start.
    pub const fn new() -> Self {
        HyStart {
            phase: Phase::SlowStart,
            samples: 0,
            css_rounds: 0,
            // The first ACK starts the first round, gap or none.
            round_due: true,
            round_left: 0,
            last_round_min: NONE_US,
            current_round_min: NONE_US,
            css_baseline: NONE_US,
            train_start: 0,
            train_last: 0,
        }
    }

    /// A congestion event (loss, RTO, ECN): HyStart++ ends (RFC 9406 §4.2:
    /// the controller's own response sets ssthresh).
    pub fn on_congestion(&mut self) {
        self.phase = Phase::Done;
    }

    /// Whether the connection is in Conservative Slow Start.
    #[cfg(test)] // Read by the tests; the controller needs only `on_ack`.
    pub fn in_css(&self) -> bool {
        self.phase == Phase::Css
    }

    /// An ACK of `acked` bytes arrived while cwnd < ssthresh: how much the
    /// window grows, and whether slow start ends here.
    pub fn on_ack(&mut self, acked: u32, mss: u32, ack: &AckInfo) -> Growth {
        let capped = acked.min(L.saturating_mul(mss));
        if self.phase == Phase::Done {
            // RFC 5681 §3.1: at most one SMSS per ACK.
            return Growth {
                increase: acked.min(mss),
                exit: false,
            };
        }
        let now = ack.now.micros() as u32;
        let gap = now.wrapping_sub(self.train_last) > TRAIN_GAP_US;
        self.train_last = now;
        if gap {
            self.train_start = now;
        }
        let mut exit = self.track_round(acked, ack.flight, gap);
        if let Some(rtt) = ack.rtt {
            self.sample(rtt);
        }
        self.check_rtt();
        // A long train ends slow start at once, with no CSS: it measures
        // the bottleneck's rate, where a rise of the RTT may be noise.
        exit |= self.phase == Phase::SlowStart && self.train_is_long(ack, mss);
        if exit {
            self.phase = Phase::Done;
        }
        let increase = match self.phase {
            Phase::Css => capped / CSS_GROWTH_DIVISOR,
            _ => capped,
        };
        Growth { increase, exit }
    }

    /// Counts acknowledged bytes; at a round's end starts the next one,
    /// whose bytes are those in flight now (RFC 9406 §4.2). Returns true
    /// when CSS has run its rounds.
    ///
    /// A round whose bytes are acknowledged in the middle of an ACK train
    /// ends with that train, at the first ACK after a gap (or, with no gap,
    /// [`ROUND_OVERRUN_DIVISOR`] of the flight later). RFC 9406 ends it at
    /// once, and so does Linux; but windowEnd is SND.NXT before this ACK's
    /// own segments are sent, so a round ends a little before its train
    /// does, and the next one a little more before (what the rest of a
    /// train sends doubles in slow start). Within a few rounds the boundary
    /// sits well inside a train, and the next round's first samples are
    /// the train's tail, which waited behind the queue the sender's own
    /// burst built: on a 100 Mbit/s, 50 ms path the rise passed 6.25 ms in
    /// the sixth round and CSS slowed the growth for 4 ms of ACKs before the
    /// next round's samples undid it, leaving the link idle 3 ms longer
    /// than Linux's. Ended with the train, each round's first samples are
    /// the next train's head, which finds the queue drained, as the
    /// comparison of minima assumes.
    fn track_round(&mut self, acked: u32, flight: u32, gap: bool) -> bool {
        if acked < self.round_left && !(self.round_due && gap) {
            self.round_left -= acked;
            return false;
        }
        if !self.round_due && !gap {
            self.round_due = true;
            self.round_left = (flight / ROUND_OVERRUN_DIVISOR).max(1);
            return false;
        }
        self.round_due = false;
        self.round_left = flight.max(1);
        self.last_round_min = self.current_round_min;
        self.current_round_min = NONE_US;
        self.samples = 0;
        if self.phase == Phase::Css {
            self.css_rounds = self.css_rounds.saturating_add(1);
            return self.css_rounds >= CSS_ROUNDS;
        }
        false
    }

    /// HyStart's ACK-train test, beside RFC 9406's delay test. The delay
    /// test alone cannot see a deep drop-tail queue fill: each round's
    /// first segments find the queue drained (the burst before it has
    /// left), so the round's minimum RTT stays flat until the window is
    /// about twice the path's BDP, and the overshoot then drops up to a
    /// window of data (on a 100 Mbit/s, 50 ms path with a one-BDP queue,
    /// 613 segments, against 20 with the train). ACKs that come back at
    /// most [`TRAIN_GAP_US`] apart are spaced by the bottleneck; once one
    /// train has lasted half the path's least RTT (RACK's min_RTT), the
    /// data it acknowledged is half a BDP, and the window, grown by as much, is
    /// about one: slow start ends there, as in Linux's CUBIC. A paced
    /// sender spreads its own ACKs, so its train must last the whole RTT.
    /// Not on paths under [`MIN_RTT_THRESH_US`]: there half a round trip
    /// is within the wake-up jitter of a busy host (a train of a TUN path's
    /// 50 µs would end slow start at sixteen segments), and an overshoot
    /// is repaired within milliseconds.
    fn train_is_long(&mut self, ack: &AckInfo, mss: u32) -> bool {
        let min_rtt = match ack.min_rtt {
            Some(r) => u32::try_from(r.as_micros()).unwrap_or(NONE_US),
            None => return false,
        };
        if ack.flight < TRAIN_LOW_WINDOW.saturating_mul(mss) || min_rtt < MIN_RTT_THRESH_US {
            return false;
        }
        let now = ack.now.micros() as u32;
        let needed = if ack.paced { min_rtt } else { min_rtt / 2 };
        now.wrapping_sub(self.train_start) > needed
    }

    fn sample(&mut self, rtt: Duration) {
        let us = u32::try_from(rtt.as_micros()).unwrap_or(NONE_US - 1);
        self.current_round_min = self.current_round_min.min(us);
        self.samples = self.samples.saturating_add(1);
    }

    /// RFC 9406 §4.2: in slow start, an RTT rise over the threshold enters
    /// CSS; in CSS, an RTT below the baseline returns to slow start.
    fn check_rtt(&mut self) {
        if self.samples < N_RTT_SAMPLE || self.current_round_min == NONE_US {
            return;
        }
        match self.phase {
            Phase::SlowStart if self.last_round_min != NONE_US => {
                let thresh = (self.last_round_min / MIN_RTT_DIVISOR)
                    .clamp(MIN_RTT_THRESH_US, MAX_RTT_THRESH_US);
                if self.current_round_min >= self.last_round_min.saturating_add(thresh) {
                    self.css_baseline = self.current_round_min;
                    self.css_rounds = 0;
                    self.phase = Phase::Css;
                }
            }
            Phase::Css if self.current_round_min < self.css_baseline => {
                // The rise was spurious: back to slow start.
                self.css_baseline = NONE_US;
                self.phase = Phase::SlowStart;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instant;

    const MSS: u32 = 1000;

    fn ack(rtt_ms: u64, flight: u32) -> AckInfo {
        AckInfo {
            now: Instant::ZERO,
            rtt: Some(Duration::from_millis(rtt_ms)),
            srtt: Some(Duration::from_millis(rtt_ms)),
            flight,
            min_rtt: Some(Duration::from_millis(rtt_ms)),
            paced: false,
        }
    }

    /// ACKs of one segment each with 20 segments in flight, every `every_us`
    /// from `from_us` for `span_us`, the path's RTT `rtt_ms`: whether one
    /// ended slow start.
    fn train(
        h: &mut HyStart,
        from_us: u64,
        span_us: u64,
        every_us: u64,
        rtt_ms: u64,
        paced: bool,
    ) -> bool {
        let mut t = from_us;
        let mut exit = false;
        while t <= from_us + span_us {
            let a = AckInfo {
                now: Instant::from_micros(t),
                paced,
                ..ack(rtt_ms, 20 * MSS)
            };
            exit |= h.on_ack(MSS, MSS, &a).exit;
            t += every_us;
        }
        exit
    }

    #[test]
    fn an_ack_train_of_half_the_rtt_ends_slow_start() {
        let mut h = HyStart::new();
        assert!(!train(&mut h, 0, 24_000, 500, 50, false), "24 ms < 25 ms");
        assert!(train(&mut h, 24_500, 1_000, 500, 50, false), "25.5 ms");
        assert_eq!(
            h.on_ack(5 * MSS, MSS, &ack(50, 0)).increase,
            MSS,
            "RFC 5681 after"
        );
    }

    #[test]
    fn a_gap_breaks_the_train() {
        let mut h = HyStart::new();
        assert!(!train(&mut h, 0, 20_000, 500, 50, false));
        // 2.5 ms of silence: the next ACK starts a new train.
        assert!(!train(&mut h, 22_500, 20_000, 500, 50, false));
        assert!(!h.in_css());
    }

    #[test]
    fn no_train_below_sixteen_segments_or_on_a_short_path() {
        let mut h = HyStart::new();
        for t in 0..100u64 {
            let a = AckInfo {
                now: Instant::from_micros(t * 500),
                ..ack(50, 15 * MSS)
            };
            assert!(!h.on_ack(MSS, MSS, &a).exit, "15 segments in flight");
        }
        let mut h = HyStart::new();
        assert!(!train(&mut h, 0, 40_000, 500, 3, false), "3 ms RTT");
    }

    #[test]
    fn a_paced_train_must_last_the_whole_rtt() {
        let mut h = HyStart::new();
        assert!(!train(&mut h, 0, 49_500, 500, 50, true));
        assert!(train(&mut h, 50_000, 1_000, 500, 50, true));
    }

    /// One round of `n` one-segment ACKs 100 µs apart from `*clock` (µs,
    /// moved on by an RTT), all with RTT `rtt_ms`, with `n` segments in
    /// flight: the sum of the growth, and whether it exited.
    fn round(h: &mut HyStart, clock: &mut u64, n: u32, rtt_ms: u64) -> (u32, bool) {
        let mut grown = 0;
        let mut exit = false;
        let start = *clock;
        *clock += rtt_ms * 1000;
        for i in 0..u64::from(n) {
            let a = AckInfo {
                now: Instant::from_micros(start + i * 100),
                ..ack(rtt_ms, n * MSS)
            };
            let g = h.on_ack(MSS, MSS, &a);
            grown += g.increase;
            exit |= g.exit;
        }
        (grown, exit)
    }

    #[test]
    fn rfc9406_slow_start_grows_by_acked_up_to_l() {
        let mut h = HyStart::new();
        assert_eq!(h.on_ack(3 * MSS, MSS, &ack(50, 0)).increase, 3 * MSS);
        assert_eq!(
            h.on_ack(20 * MSS, MSS, &ack(50, 0)).increase,
            8 * MSS,
            "L = 8"
        );
    }

    #[test]
    fn rfc9406_a_steady_rtt_stays_in_slow_start() {
        let mut h = HyStart::new();
        let mut t = 0;
        for _ in 0..10 {
            let (grown, exit) = round(&mut h, &mut t, 16, 50);
            assert_eq!(grown, 16 * MSS);
            assert!(!exit);
        }
        assert!(!h.in_css());
    }

    #[test]
    fn rfc9406_rtt_rise_enters_css_then_congestion_avoidance() {
        let mut h = HyStart::new();
        let mut t = 0;
        round(&mut h, &mut t, 16, 50);
        round(&mut h, &mut t, 16, 50);
        // Threshold: clamp(50/8, 4, 16) = 6.25 ms; 57 ms is a rise.
        let (grown, _) = round(&mut h, &mut t, 16, 57);
        assert!(h.in_css());
        assert!(grown < 16 * MSS, "CSS grows slower within the round");
        let (grown, exit) = round(&mut h, &mut t, 16, 57);
        assert_eq!(grown, 16 * MSS / CSS_GROWTH_DIVISOR);
        assert!(!exit);
        let mut rounds = 2;
        loop {
            let (_, exit) = round(&mut h, &mut t, 16, 57);
            rounds += 1;
            if exit {
                break;
            }
            assert!(rounds < 10, "CSS must end");
        }
        assert_eq!(rounds, 1 + usize::from(CSS_ROUNDS), "CSS_ROUNDS rounds");
        assert_eq!(
            h.on_ack(5 * MSS, MSS, &ack(57, 0)).increase,
            MSS,
            "RFC 5681 after"
        );
    }

    #[test]
    fn rfc9406_a_rise_under_the_threshold_is_not_one() {
        let mut h = HyStart::new();
        let mut t = 0;
        round(&mut h, &mut t, 16, 50);
        round(&mut h, &mut t, 16, 50);
        round(&mut h, &mut t, 16, 56); // 6 ms < 6.25 ms
        assert!(!h.in_css());
    }

    #[test]
    fn rfc9406_css_returns_to_slow_start_when_rtt_falls() {
        let mut h = HyStart::new();
        let mut t = 0;
        round(&mut h, &mut t, 16, 50);
        round(&mut h, &mut t, 16, 50);
        round(&mut h, &mut t, 16, 60);
        assert!(h.in_css());
        round(&mut h, &mut t, 16, 55); // below the 60 ms baseline
        assert!(!h.in_css());
        let (grown, _) = round(&mut h, &mut t, 16, 55);
        assert_eq!(grown, 16 * MSS);
    }

    #[test]
    fn rfc9406_few_samples_decide_nothing() {
        let mut h = HyStart::new();
        let mut t = 0;
        round(&mut h, &mut t, 4, 50);
        round(&mut h, &mut t, 4, 50);
        round(&mut h, &mut t, 4, 200);
        assert!(!h.in_css(), "fewer than N_RTT_SAMPLE samples a round");
    }

    /// Slow start on a path whose queue drains between rounds: each train
    /// of ACKs (one per segment, 50 µs apart, the window doubling) starts
    /// at the base RTT and rises by `tail_rise_ms` to its tail, the queue
    /// its own burst built. Each ACK reports the flight before the
    /// segments it releases are sent, as the stack calls it. In which
    /// train CSS was entered, if it was; slow start must not have ended.
    fn doubling_trains(tail_rise_ms: u64) -> Option<u32> {
        let mut h = HyStart::new();
        let mut t = 100_000u64;
        let mut n = 10u64;
        for k in 0..6 {
            for i in 0..n {
                let rtt = 50_000 + tail_rise_ms * 1000 * i / n;
                let a = AckInfo {
                    now: Instant::from_micros(t + i * 50),
                    rtt: Some(Duration::from_micros(rtt)),
                    min_rtt: Some(Duration::from_millis(50)),
                    ..ack(50, ((n - i - 1) + 2 * i) as u32 * MSS)
                };
                h.on_ack(MSS, MSS, &a);
                if h.in_css() {
                    return Some(k);
                }
            }
            t += 50_000;
            n *= 2;
        }
        assert_eq!(h.phase, Phase::SlowStart, "no train of half the RTT");
        None
    }

    #[test]
    fn a_round_ends_with_its_ack_train() {
        // 6 rounds, the last a train of 320 segments in 16 ms: 12 ms of
        // self-built queue at each tail never counts as an RTT rise (ended
        // when windowEnd is acknowledged, CSS began in the fourth train).
        assert_eq!(doubling_trains(12), None);
    }
}
