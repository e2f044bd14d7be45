//! Pacing: a window's segments spread over the round trip at a rate
//! derived from the congestion window, instead of leaving back to back
//! whenever an ACK opens the window.
//!
//! The rate is the one Linux uses when it paces: the window per smoothed
//! RTT, times 2 in slow start (the window doubles within the round) and
//! 1.2 in congestion avoidance (room for the window's growth and for ACK
//! compression), so that pacing shapes bursts and never holds a flow below
//! its window. A flight under the initial window is never held, and a
//! super-segment (segmentation offload) carries about a millisecond of the
//! rate, at least two segments, as Linux sizes its TSO packets.
//!
//! What it does on a real path (`synack bench path`: 100 Mbit/s, 50 ms,
//! a one-BDP drop-tail queue; docs/BENCHMARKS.md, "Pacing, measured"):
//! nothing for the better. Goodput at 0% loss stayed within 0.02% of the
//! unpaced flow's, paced flows resent more of what the full queue dropped
//! (744-843 against 426-576 packets in 30 s runs), and a lost last segment took longer to repair (the loss probe
//! follows the last paced segment). Hence `Config::pacing` is off by
//! default. In the simulator, which sends one segment per packet, slow
//! start's overshoot is the same either way: the ACK clock, not pacing,
//! sets the rate of each round.

use core::time::Duration;

use super::{Ctx, Tcb, TimerKind};
use crate::cc::CongestionControl;
use crate::Instant;

/// The pacing rate over the window per SRTT, in percent, in slow start
/// and in congestion avoidance.
const SLOW_START_RATIO: u64 = 200;
const AVOIDANCE_RATIO: u64 = 120;
/// How far ahead of its paced time a segment may leave: the timer's
/// granularity on a real host, and a burst that costs a queue little. Not
/// less on a short path: there SRTT comes from timestamps of millisecond
/// granularity and overstates the round trip many times, so the rate
/// understates what the window allows, and a finer slack held a TUN flow
/// to 16 Gbit/s where it ran at 21 unpaced.
const SLACK: Duration = Duration::from_millis(1);
/// Segments in flight below which nothing is held: the RFC 6928 initial
/// window (Linux's fq qdisc, which paces Linux's flows, lets a new flow
/// send as much before pacing it).
const UNPACED_FLIGHT: u32 = 10;
/// The most a super-segment carries, in time at the pacing rate (Linux
/// sizes its TSO packets to about a millisecond of the rate too): longer
/// ones would arrive at the bottleneck as the bursts pacing avoids.
const SUPER_SEGMENT_TIME_US: u64 = 1_000;

impl Tcb {
    /// The pacing rate in bytes per second, or `None` when the connection
    /// is not paced (pacing off, or no RTT measured yet).
    fn pacing_rate(&self, ctx: &Ctx<'_>) -> Option<u64> {
        if !ctx.cfg.pacing {
            return None;
        }
        let srtt = u64::try_from(self.rtt.srtt()?.as_micros()).ok()?.max(1);
        let cwnd = u64::from(self.cc.cwnd());
        let ratio = if cwnd < u64::from(self.cc.ssthresh()) / 2 {
            SLOW_START_RATIO
        } else {
            AVOIDANCE_RATIO
        };
        Some((cwnd * ratio * 10_000 / srtt).max(1))
    }

    /// When the next segment may leave, if it must wait: `None` sends now.
    /// A connection with less than [`UNPACED_FLIGHT`] segments in flight
    /// never waits: the initial window, the first segments after idle or
    /// the go-back of a timeout are bursts no queue minds, and they carry
    /// the RTT samples the rate needs.
    pub(crate) fn pacing_hold(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        let next = self.pace_next.get()?;
        if self.in_flight() < UNPACED_FLIGHT.saturating_mul(self.snd_mss) {
            return None;
        }
        (next > ctx.now + SLACK).then_some(next)
    }

    /// A segment of `len` bytes left at `ctx.now`: the next may leave
    /// `len` / rate later.
    pub(crate) fn pacing_sent(&mut self, ctx: &Ctx<'_>, len: u32) {
        let Some(rate) = self.pacing_rate(ctx) else {
            self.pace_next.clear();
            return;
        };
        let start = match self.pace_next.get() {
            Some(next) if next > ctx.now => next,
            _ => ctx.now,
        };
        let gap = u64::from(len) * 1_000_000 / rate;
        self.pace_next.set(start + Duration::from_micros(gap));
    }

    /// Arms the pacing timer for `at`: the held segments go then.
    pub(crate) fn pacing_wait(&mut self, at: Instant) {
        self.timers.set(TimerKind::Pacing, at);
    }

    /// The most payload one super-segment may carry under pacing: about a
    /// millisecond at the pacing rate, at least two segments, never more
    /// than `cap`.
    pub(crate) fn pacing_super_segment_cap(&self, ctx: &Ctx<'_>, cap: u32) -> u32 {
        let Some(rate) = self.pacing_rate(ctx) else {
            return cap;
        };
        let mss = self.snd_mss.max(1);
        let quantum = rate.saturating_mul(SUPER_SEGMENT_TIME_US) / 1_000_000;
        let quantum = u32::try_from(quantum).unwrap_or(u32::MAX);
        let whole = (quantum / mss).max(2).saturating_mul(mss);
        whole.min(cap)
    }
}
