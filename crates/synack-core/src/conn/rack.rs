//! RACK-TLP (RFC 8985): time-based loss detection from per-segment send
//! times, its reordering window (adapted by DSACK, RFC 8985 §6.2 step 4),
//! and the state that recovery keeps beside it: PRR's counters (RFC 6937)
//! and what undo needs (RFC 2883 DSACKs, RFC 3522 Eifel timestamps).
//!
//! The state is boxed and allocated with the first segment of data sent:
//! a connection that never sends keeps one word for it.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::time::Duration;

use super::Tcb;
use crate::seq::Seq;
use crate::time::Instant;

/// Worst-case delayed-ACK time (RFC 8985 §7.2 WCDelAckT), µs.
const WC_DEL_ACK_US: u64 = 200_000;
/// Slack on the PTO with more than one segment in flight, µs: the clock
/// granularity G of RFC 6298 §2 that RFC 8985 §7.2's bare 2·SRTT leaves
/// out, as Linux adds TCP_TIMEOUT_MIN (2 ms). On a sub-millisecond path
/// (a TUN device, loopback) 2·SRTT is a few hundred µs, less than the
/// scheduling jitter of the peer's ACK: without it the probe fires while
/// the ACK is on its way, a spurious retransmission that, on a FIN, draws
/// a duplicate ACK after LAST-ACK has closed and an RST that ends the
/// peer's TIME-WAIT.
const PTO_SLACK_US: u64 = 2_000;
/// When to probe with one segment in flight (µs): `sent` is when that
/// segment left, `now` when the timer is armed, `srtt` and `rttvar` the
/// path's.
///
/// RFC 8985 §7.2 lets the sender inflate its 2·SRTT by TLP.max_ack_delay,
/// of an implementation's choosing, because the peer may hold its ACK of a
/// lone segment for its delayed-ACK timer; `now` + 2·SRTT + WCDelAckT is
/// the latest that needs. But the ACK is due one round trip after the
/// segment *left*, plus the peer's delay: `sent` + SRTT + WCDelAckT and
/// RFC 6298's clock granularity G ([`PTO_SLACK_US`]), or + 4·RTTVAR where
/// the path varies more (the RTO's margin, as Linux's SRTT + max(200 ms,
/// 4·RTTVAR)). The probe goes at the earlier of the two. Armed by the ACK
/// of segments sent with it (a lost tail), the lone segment may have left
/// a round trip before, and the probe goes about WCDelAckT after that ACK
/// instead of 2·SRTT + WCDelAckT; armed as it leaves, SRTT + WCDelAckT + G.
/// (Linux probes at SRTT + 200 ms from the ACK, by capping 2·SRTT + 200 ms
/// at its RTO, whose floor is 200 ms; synack's is RFC 6298's 1 s.)
fn lone_segment_probe_at(sent: u64, now: u64, srtt: u64, rttvar: u64) -> u64 {
    let latest = now.saturating_add(2 * srtt).saturating_add(WC_DEL_ACK_US);
    let wait = (WC_DEL_ACK_US + PTO_SLACK_US).max(4 * rttvar);
    let due = sent.min(now).saturating_add(srtt + wait);
    latest.min(due)
}

/// DSACK-free recoveries after which the reordering window returns to its
/// base (RFC 8985 §6.2 step 4: RACK.reo_wnd_persist).
const REO_WND_PERSIST: u8 = 16;
/// A queue that emptied keeps at most this many entries' allocation (24
/// bytes each): an idle connection keeps little, and a request-response
/// one does not allocate per burst.
const KEEP_CAPACITY: usize = 8;

/// One outstanding segment: where it ends, when it was last sent, and what
/// the sender knows of it. Its start is the previous one's end (the first
/// starts at SND.UNA).
#[derive(Clone, Copy, Debug)]
struct Sent {
    end: Seq,
    /// Its place in the order of transmissions: RACK_sent_after breaks a
    /// tie of send times by it, where RFC 8985 §6.2 uses the sequence
    /// number (a retransmission sent in the same microsecond as new data
    /// is after it, though its sequence number is lower).
    order: u32,
    /// Last (re)transmission, µs on the stack's clock.
    xmit: u64,
    /// Sent more than once (RFC 8985 Segment.retransmitted).
    rtx: bool,
    /// RACK marked it lost, and it was not resent since.
    lost: bool,
    /// The peer SACKed it.
    sacked: bool,
}

/// RACK-TLP, PRR and undo state of one connection.
#[derive(Debug)]
pub(crate) struct Rack {
    segs: VecDeque<Sent>,
    /// RACK.xmit_ts and (in place of RACK.end_seq) the transmission order
    /// of the most recently sent segment that was delivered (µs; 0 before
    /// any).
    xmit_ts: u64,
    xmit_order: u32,
    /// The order the next transmission takes.
    next_order: u32,
    /// Entries outstanding that were resent: with none, and nothing
    /// SACKed, no segment can have been sent before one delivered.
    rtx_out: u32,
    /// RACK.rtt: the RTT of that segment, µs.
    rtt: u64,
    /// RACK.min_RTT, µs (`u64::MAX` before a sample).
    min_rtt: u64,
    /// RACK.fack: the highest end of a segment delivered.
    fack: Seq,
    /// RACK.reordering_seen.
    reordering_seen: bool,
    /// RACK.reo_wnd_mult and RACK.reo_wnd_persist.
    reo_wnd_mult: u8,
    reo_wnd_persist: u8,
    /// RACK.dsack_round: no further growth until SND.UNA passes it.
    dsack_round: Option<Seq>,
    /// TLP.end_seq and TLP.is_retrans (RFC 8985 §7.4).
    tlp_end: Option<Seq>,
    tlp_rtx: bool,
    /// PRR (RFC 6937): RecoverFS, prr_delivered, prr_out, and what the
    /// last ACK allowed to send (sndcnt, less what went since).
    pub recover_fs: u32,
    pub prr_delivered: u32,
    pub prr_out: u32,
    pub allowance: u32,
    /// Segments resent in the last recovery, and how many of them the peer
    /// reported by DSACK as received twice (RFC 2883 §4.2: all of them
    /// means the recovery was needless).
    undo_retrans: u32,
    undo_dsacked: u32,
    /// A window reduction that `undo` may still take back.
    pub undo_pending: bool,
    /// Eifel (RFC 3522): the TSval our first retransmission after a
    /// timeout carried, until the first ACK of new data judges it.
    pub rto_tsval: Option<u32>,
    /// The peer has sent SACK blocks on this connection.
    pub sack_seen: bool,
    /// Receiver side: a duplicate segment to report in the first SACK
    /// block of the next ACK (a DSACK, RFC 2883 §4).
    pub dsack: Option<(Seq, Seq)>,
}

impl Rack {
    /// Fresh state; nothing is delivered above `una` yet.
    fn new(una: Seq) -> Self {
        Rack {
            segs: VecDeque::new(),
            xmit_ts: 0,
            xmit_order: 0,
            next_order: 0,
            rtx_out: 0,
            rtt: 0,
            min_rtt: u64::MAX,
            fack: una,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            tlp_end: None,
            tlp_rtx: false,
            recover_fs: 0,
            prr_delivered: 0,
            prr_out: 0,
            allowance: 0,
            undo_retrans: 0,
            undo_dsacked: 0,
            undo_pending: false,
            rto_tsval: None,
            sack_seen: false,
            dsack: None,
        }
    }

    /// RACK_sent_after (RFC 8985 §6.2): was (t1, o1) sent after (t2, o2)?
    fn sent_after(t1: u64, o1: u32, t2: u64, o2: u32) -> bool {
        t1 > t2 || (t1 == t2 && o1.wrapping_sub(o2) as i32 > 0)
    }
}

/// What one ACK told RACK.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Delivery {
    /// Bytes newly acknowledged or SACKed (RFC 6937 DeliveredData).
    pub bytes: u32,
}

impl Tcb {
    pub(crate) fn rack_mut(&mut self) -> &mut Rack {
        let una = self.snd_una;
        self.rack.get_or_insert_with(|| Box::new(Rack::new(una)))
    }

    /// A segment `[start, end)` (its FIN counted) went out at `now`:
    /// new data gets an entry per MSS; data sent before is marked resent
    /// with its new send time. In recovery it spends PRR's allowance.
    pub(crate) fn rack_on_send(&mut self, now: Instant, start: Seq, end: Seq) {
        if !end.gt(start) {
            return;
        }
        let (una, mss, recovering) = (self.snd_una, self.snd_mss.max(1), self.recover.is_some());
        let at = now.micros();
        let r = self.rack_mut();
        let order = r.next_order;
        r.next_order = order.wrapping_add(1);
        if recovering {
            r.prr_out = r.prr_out.saturating_add(end.since(start));
            r.allowance = r.allowance.saturating_sub(end.since(start));
        }
        let last = r.segs.back().map_or(una, |s| s.end);
        if start.lt(last) {
            // Sent before: a retransmission (the walk only then).
            let mut from = una;
            for s in r.segs.iter_mut() {
                if s.end.gt(start) && from.lt(end) {
                    s.xmit = at;
                    s.order = order;
                    r.rtx_out += u32::from(!s.rtx);
                    s.rtx = true;
                    s.lost = false;
                    if recovering {
                        r.undo_retrans = r.undo_retrans.saturating_add(1);
                    }
                }
                from = s.end;
            }
        }
        let mut at_seq = if start.gt(last) { start } else { last };
        while end.gt(at_seq) {
            let e = at_seq.add(end.since(at_seq).min(mss));
            r.segs.push_back(Sent {
                end: e,
                order,
                xmit: at,
                rtx: false,
                lost: false,
                sacked: false,
            });
            at_seq = e;
        }
    }

    /// Steps 1-3 of RFC 8985 §6.2 for an ACK that the scoreboard and
    /// SND.UNA already took: each segment newly delivered (cumulatively or
    /// by SACK) updates RACK.min_RTT, RACK.rtt, RACK.xmit_ts/end_seq and
    /// RACK.fack, and shows reordering when it lies below RACK.fack and
    /// was sent once. `tsecr` is the ACK's echoed timestamp.
    /// `old_una` is SND.UNA before this ACK.
    pub(crate) fn rack_deliver(
        &mut self,
        now: Instant,
        old_una: Seq,
        tsecr: Option<u32>,
    ) -> Delivery {
        let una = self.snd_una;
        let ts_now = self.ts_val(now);
        let Some(r) = self.rack.as_deref_mut() else {
            return Delivery::default();
        };
        let mut d = Delivery::default();
        let mut from = old_una;
        // Cumulatively acknowledged: off the front.
        while let Some(s) = r.segs.front().copied() {
            if !s.end.le(una) {
                break;
            }
            r.segs.pop_front();
            r.rtx_out -= u32::from(s.rtx);
            if !s.sacked {
                d.bytes = d.bytes.saturating_add(s.end.since(from));
                rack_update(r, s, now, tsecr, ts_now);
            }
            from = s.end;
        }
        if r.segs.is_empty() && r.segs.capacity() > KEEP_CAPACITY {
            r.segs = VecDeque::new();
        }
        let sacked = &self.sacked;
        if !sacked.is_empty() {
            let mut start = una;
            let mut i = 0;
            for idx in 0..r.segs.len() {
                let s = r.segs[idx];
                while i < sacked.len() && sacked[i].1.le(start) {
                    i += 1;
                }
                let covered = i < sacked.len() && sacked[i].0.le(start) && s.end.le(sacked[i].1);
                if covered && !s.sacked {
                    r.segs[idx].sacked = true;
                    d.bytes = d.bytes.saturating_add(s.end.since(start));
                    rack_update(r, s, now, tsecr, ts_now);
                }
                start = s.end;
            }
        }
        d
    }

    /// RACK.min_RTT, once a segment was delivered unambiguously.
    pub(crate) fn rack_min_rtt(&self) -> Option<Duration> {
        let r = self.rack.as_deref()?;
        (r.min_rtt != u64::MAX).then(|| Duration::from_micros(r.min_rtt))
    }

    /// RACK_update_reo_wnd (RFC 8985 §6.2 step 4), µs.
    fn reo_wnd(&self, r: &Rack) -> u64 {
        if !r.reordering_seen {
            let segs_sacked = r.segs.iter().filter(|s| s.sacked).count() as u32;
            if self.recover.is_some() || segs_sacked >= super::recovery::DUP_THRESH {
                return 0;
            }
        }
        let srtt = self.rtt.srtt().map_or(u64::MAX, |d| d.as_micros() as u64);
        if r.min_rtt == u64::MAX {
            return 0;
        }
        (u64::from(r.reo_wnd_mult) * r.min_rtt / 4).min(srtt)
    }

    /// RACK_detect_loss_and_arm_timer (RFC 8985 §6.2 step 5): marks lost
    /// every segment sent before the most recently delivered one whose
    /// time (RACK.rtt + the reordering window) has passed; arms the RACK
    /// reorder timer for the first one still waiting. Returns whether any
    /// segment is lost and not yet resent.
    pub(crate) fn rack_detect_loss(&mut self, now: Instant) -> bool {
        let Some(r) = self.rack.as_deref() else {
            return false;
        };
        if r.xmit_ts == 0 || (self.sacked.is_empty() && r.rtx_out == 0) {
            // Nothing outstanding was sent before a delivered segment.
            self.timers.clear(super::TimerKind::RackReorder);
            return false;
        }
        let reo = self.reo_wnd(r);
        let r = self.rack.as_deref_mut().expect("checked above");
        let (mut wait, mut any) = (0u64, false);
        let at = now.micros();
        for s in r.segs.iter_mut() {
            if s.sacked {
                continue;
            }
            if s.lost {
                any = true;
                continue;
            }
            if !Rack::sent_after(r.xmit_ts, r.xmit_order, s.xmit, s.order) {
                continue;
            }
            let due = s.xmit.saturating_add(r.rtt).saturating_add(reo);
            if due <= at {
                s.lost = true;
                any = true;
            } else {
                wait = wait.max(due - at);
            }
        }
        let timer = (wait > 0).then(|| Instant::from_micros(at + wait));
        self.timers.assign(super::TimerKind::RackReorder, timer);
        any
    }

    /// Segments outstanding in RACK's record (one per MSS sent).
    pub(crate) fn rack_outstanding(&self) -> usize {
        self.rack.as_deref().map_or(0, |r| r.segs.len())
    }

    /// The first segment RACK (or NewReno's partial-ACK rule) marked lost
    /// and that was not resent since: (start, length).
    pub(crate) fn next_lost(&self) -> Option<(Seq, u32)> {
        let r = self.rack.as_deref()?;
        let mut start = self.snd_una;
        for s in &r.segs {
            if s.lost && !s.sacked {
                return Some((start, s.end.since(start)));
            }
            start = s.end;
        }
        None
    }

    /// Marks the segment at SND.UNA lost (the NewReno rule without SACK:
    /// fast retransmit, and each partial ACK, resend the new head).
    pub(crate) fn mark_head_lost(&mut self) {
        if let Some(s) = self.rack.as_deref_mut().and_then(|r| r.segs.front_mut()) {
            s.lost = true;
        }
    }

    /// RFC 6675 pipe from RACK's marks: outstanding bytes neither SACKed
    /// nor lost (a lost segment resent counts again, as in flight).
    pub(crate) fn pipe(&self) -> u32 {
        let Some(r) = self.rack.as_deref() else {
            return 0;
        };
        let mut start = self.snd_una;
        let mut n = 0u32;
        for s in &r.segs {
            if !s.sacked && !s.lost {
                n = n.saturating_add(s.end.since(start));
            }
            start = s.end;
        }
        n
    }

    /// Forgets SACK and loss marks (after a timeout, RFC 6675 §5.1: the
    /// scoreboard is cleared and everything goes again from SND.UNA).
    pub(crate) fn rack_on_rto(&mut self) {
        if let Some(r) = self.rack.as_deref_mut() {
            for s in r.segs.iter_mut() {
                s.sacked = false;
                s.lost = false;
            }
            r.tlp_end = None;
        }
        self.timers.clear(super::TimerKind::RackReorder);
        self.timers.clear(super::TimerKind::LossProbe);
    }

    /// A DSACK (RFC 2883) reported `[l, r)` received twice: the reordering
    /// window grows by min_RTT/4 once per round trip that sees one (RFC
    /// 8985 §6.2 step 4), and the data it covers counts toward undoing the
    /// last recovery. A DSACK is taken as reordering seen: the original
    /// arrived after all, later than RACK allowed for.
    pub(crate) fn rack_on_dsack(&mut self, l: Seq, r_: Seq) {
        let (nxt, mss) = (self.snd_max, self.snd_mss.max(1));
        let r = self.rack_mut();
        if r.dsack_round.is_none() {
            r.dsack_round = Some(nxt);
            r.reo_wnd_mult = r.reo_wnd_mult.saturating_add(1);
            r.reo_wnd_persist = REO_WND_PERSIST;
        }
        r.reordering_seen = true;
        if r.undo_pending {
            r.undo_dsacked = r.undo_dsacked.saturating_add(r_.since(l).div_ceil(mss));
        }
        if r.tlp_rtx && r.tlp_end.is_some_and(|e| r_.le(e)) {
            // RFC 8985 §7.4.2: the probe's DSACK says nothing was lost.
            r.tlp_end = None;
        }
    }

    /// RACK.dsack_round ends once SND.UNA passes it (RFC 8985 §6.2 step 4).
    pub(crate) fn rack_end_dsack_round(&mut self) {
        let una = self.snd_una;
        if let Some(r) = self.rack.as_deref_mut() {
            if r.dsack_round.is_some_and(|d| una.ge(d)) {
                r.dsack_round = None;
            }
        }
    }

    /// A recovery ended: one more DSACK-free recovery counts down the
    /// reordering window's growth (RFC 8985 §6.2 step 4).
    pub(crate) fn rack_on_recovery_end(&mut self) {
        if let Some(r) = self.rack.as_deref_mut() {
            r.reo_wnd_persist = r.reo_wnd_persist.saturating_sub(1);
            if r.reo_wnd_persist == 0 {
                r.reo_wnd_mult = 1;
            }
        }
    }

    /// A recovery starts: PRR's counters (RFC 6937: RecoverFS = pipe) and
    /// the undo tally begin again; a tail loss probe in flight is done.
    pub(crate) fn rack_on_recovery_start(&mut self) {
        let pipe = self.pipe().max(self.snd_mss);
        let r = self.rack_mut();
        r.recover_fs = pipe;
        r.prr_delivered = 0;
        r.prr_out = 0;
        r.allowance = 0;
        r.undo_retrans = 0;
        r.undo_dsacked = 0;
        r.undo_pending = true;
        r.tlp_end = None;
    }

    /// Did DSACKs show every retransmission of the last recovery needless?
    /// (RFC 2883 §4.2.) Then the reduction is no longer pending.
    pub(crate) fn take_dsack_undo(&mut self) -> bool {
        let Some(r) = self.rack.as_deref_mut() else {
            return false;
        };
        let all = r.undo_pending && r.undo_retrans > 0 && r.undo_dsacked >= r.undo_retrans;
        if all {
            r.undo_pending = false;
        }
        all
    }

    /// Cancels any pending undo (a timeout, or a genuine loss shown).
    pub(crate) fn forget_undo(&mut self) {
        if let Some(r) = self.rack.as_deref_mut() {
            r.undo_pending = false;
        }
    }

    /// The PTO (RFC 8985 §7.2): when the sender may probe the tail, if it
    /// may: SACK in use, an RTT sample, no recovery, no probe in flight,
    /// data outstanding. 2·SRTT plus [`PTO_SLACK_US`] with more than one
    /// segment in flight; with one, [`lone_segment_probe_at`]; never past
    /// the RTO's deadline.
    pub(crate) fn arm_loss_probe(&mut self, now: Instant) {
        let at = self.loss_probe_deadline(now);
        self.timers.assign(super::TimerKind::LossProbe, at);
    }

    fn loss_probe_deadline(&self, now: Instant) -> Option<Instant> {
        let srtt = self.rtt.srtt()?.as_micros() as u64;
        let r = self.rack.as_deref()?;
        let flight = self.snd_max.since(self.snd_una);
        if !self.sack_ok || self.recover.is_some() || r.tlp_end.is_some() || flight == 0 {
            return None;
        }
        let now_us = now.micros();
        let at = if flight <= self.snd_mss {
            let rttvar = self.rtt.rttvar().map_or(0, |v| v.as_micros() as u64);
            let sent = r.segs.back().map_or(now_us, |s| s.xmit);
            lone_segment_probe_at(sent, now_us, srtt, rttvar)
        } else {
            now_us.saturating_add((2 * srtt).saturating_add(PTO_SLACK_US))
        };
        let at = Instant::from_micros(at.max(now_us + 1));
        Some(match self.timers.get(super::TimerKind::Retransmission) {
            Some(rto) => at.min(rto),
            None => at,
        })
    }

    /// Receiver: a DSACK waits to be sent.
    pub(crate) fn dsack_pending(&self) -> bool {
        self.rack.as_deref().is_some_and(|r| r.dsack.is_some())
    }

    /// In recovery, what PRR still lets go after the last ACK.
    pub(crate) fn prr_allowance(&self) -> Option<u32> {
        self.recover?;
        Some(self.rack.as_deref().map_or(0, |r| r.allowance))
    }

    /// The last segment sent: (start, length), what a probe resends when
    /// there is no new data (RFC 8985 §7.3).
    pub(crate) fn last_sent(&self) -> Option<(Seq, u32)> {
        let r = self.rack.as_deref()?;
        let n = r.segs.len();
        let last = r.segs.back()?;
        let start = if n >= 2 {
            r.segs[n - 2].end
        } else {
            self.snd_una
        };
        Some((start, last.end.since(start)))
    }

    /// A probe went out: TLP.end_seq = SND.MAX, TLP.is_retrans = `rtx`.
    pub(crate) fn note_loss_probe(&mut self, rtx: bool) {
        let nxt = self.snd_max;
        let r = self.rack_mut();
        r.tlp_end = Some(nxt);
        r.tlp_rtx = rtx;
    }

    /// RFC 8985 §7.4.2: once the ACK passes TLP.end_seq, a retransmitted
    /// probe that no DSACK reported repaired a loss, which congestion
    /// control must answer; returns true then. The episode ends either way.
    pub(crate) fn take_tlp_loss(&mut self) -> bool {
        let una = self.snd_una;
        let Some(r) = self.rack.as_deref_mut() else {
            return false;
        };
        match r.tlp_end {
            Some(e) if una.ge(e) => {
                r.tlp_end = None;
                r.tlp_rtx
            }
            _ => false,
        }
    }
}

/// RACK_update (RFC 8985 §6.2 steps 1-3) for one delivered segment `s`.
fn rack_update(r: &mut Rack, s: Sent, now: Instant, tsecr: Option<u32>, ts_now: u32) {
    let rtt = now.micros().saturating_sub(s.xmit);
    if s.rtx {
        // Which transmission was delivered is ambiguous: only an RTT under
        // min_RTT, or a timestamp older than the retransmission, tells.
        let echo_older = tsecr.is_some_and(|e| {
            let age_ms = (now.micros().saturating_sub(s.xmit) / 1000) as u32;
            let sent_ts = ts_now.wrapping_sub(age_ms);
            (e.wrapping_sub(sent_ts) as i32) < 0
        });
        if echo_older || rtt < r.min_rtt {
            return;
        }
    }
    r.min_rtt = r.min_rtt.min(rtt.max(1));
    r.rtt = rtt;
    if Rack::sent_after(s.xmit, s.order, r.xmit_ts, r.xmit_order) {
        r.xmit_ts = s.xmit;
        r.xmit_order = s.order;
    }
    if s.end.lt(r.fack) && !s.rtx {
        r.reordering_seen = true;
    }
    if s.end.gt(r.fack) {
        r.fack = s.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    #[test]
    fn rfc8985_7_2_a_lone_segment_is_probed_when_its_delayed_ack_is_overdue() {
        let now = 1_000 * MS;
        // A lost tail, armed by the ACK of the segments sent with it a
        // round trip ago (steady 50 ms path): WCDelAckT and the 2 ms floor
        // of the margin after that ACK, not 2·SRTT + WCDelAckT.
        assert_eq!(
            lone_segment_probe_at(now - 50 * MS, now, 50 * MS, 100),
            now + 202 * MS
        );
        // Armed as the segment leaves: a round trip and the delayed ACK
        // (with its 2 ms), the variance being smaller...
        assert_eq!(
            lone_segment_probe_at(now, now, 50 * MS, 5 * MS),
            now + 252 * MS
        );
        // ...or four RTTVAR when they are more: the RTO's margin.
        assert_eq!(
            lone_segment_probe_at(now, now, 50 * MS, 60 * MS),
            now + 290 * MS
        );
        // Never later than RFC 8985's 2·SRTT + WCDelAckT from now.
        assert_eq!(
            lone_segment_probe_at(now, now, 50 * MS, 80 * MS),
            now + 300 * MS
        );
        // A send time after `now` (a clock step) counts as now; on a
        // sub-millisecond path RFC 8985's 2·SRTT + WCDelAckT comes first.
        assert_eq!(
            lone_segment_probe_at(now + 5 * MS, now, 300, 0),
            now + 600 + 200 * MS
        );
    }
}
