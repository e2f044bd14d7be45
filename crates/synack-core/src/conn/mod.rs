//! One TCP connection: its Transmission Control Block (RFC 9293 §3.3.1) and
//! the transitions of §3.10, split by concern:
//!
//! - [`open`]: OPEN, active and passive (§3.10.1, §3.10.7.2),
//! - [`input`]: SEGMENT ARRIVES (§3.10.7.3, §3.10.7.4),
//! - [`output`]: what to send now (data, FIN, ACKs, window updates),
//! - [`user`]: SEND, RECEIVE, CLOSE, ABORT (§3.10.2–§3.10.5),
//! - [`timers`]: retransmission, delayed ACK, persist, FIN-WAIT-2 (§3.10.8),
//!   their deadlines kept in one table ([`timer_table`]),
//! - [`time_wait`]: the hand-over to the compact TIME-WAIT table and its end,
//! - [`handle`]: the application's hold on the connection (accept, release),
//! - [`place`], [`registration`]: the stack's fast path into the receive
//!   buffer, and the connection's entries in the stack's timer wheel and
//!   ACK list.

mod diffserv;
mod ecn;
mod handle;
mod icmp;
mod input;
mod open;
mod output;
mod pacing;
mod place;
mod rack;
mod recovery;
mod registration;
mod sack;
mod time_wait;
mod timer_table;
mod timers;
mod urgent;
mod user;

pub(crate) use open::{offered_wscale, synack_window};
pub(crate) use output::OutputMode;
pub(crate) use sack::Scoreboard;
pub(crate) use timer_table::{TimerKind, Timers};

use alloc::collections::VecDeque;
use core::net::SocketAddr;
use core::time::Duration;

use synack_wire::HeaderTemplate;

use crate::cc::{CongestionControl, Controller};
use crate::outbox::Outbox;
use crate::recv_buf::RecvBuffer;
use crate::rtt::RttEstimator;
use crate::send_buf::SendBuffer;
use crate::seq::Seq;
use crate::time::Timer;
use crate::{Config, ConnId, ConnTuple, Error, Event, Instant, ListenerId, State};

/// Everything a connection handler may touch besides its own TCB.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub cfg: &'a Config,
    pub out: &'a mut Outbox,
    pub events: &'a mut VecDeque<Event>,
    pub id: ConnId,
}

/// What the stack must do with a connection after a handler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Nothing: the connection lives on.
    Stay,
    /// It reached CLOSED: unlink it (and free it once the application let go).
    Closed,
    /// It entered TIME-WAIT: move it to the compact TIME-WAIT table.
    TimeWait,
    /// A passive SYN-RECEIVED connection was reset: forget it, the listener
    /// stays (RFC 9293 §3.10.7.4, MUST-11).
    ReturnToListen,
}

/// RFC 7323 timestamp state of a connection that negotiated timestamps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timestamps {
    /// TS.Recent: the peer's TSval to echo.
    pub recent: u32,
    /// When TS.Recent was last updated (PAWS ages it out after 24 days).
    pub recent_at: Instant,
}

/// A connection's user timeout (MUST-21) in eight bytes: whole
/// microseconds, or none (`Option<Duration>` takes sixteen). The longest,
/// `Duration::MAX`, is kept as about 584,000 years: never reached either.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserTimeout(u64);

impl UserTimeout {
    /// No user timeout: `Config::max_retries` decides.
    pub const NONE: UserTimeout = UserTimeout(u64::MAX);

    /// From the application's setting.
    pub fn new(limit: Option<Duration>) -> Self {
        match limit {
            Some(d) => UserTimeout(
                u64::try_from(d.as_micros()).map_or(u64::MAX - 1, |us| us.min(u64::MAX - 1)),
            ),
            None => UserTimeout::NONE,
        }
    }

    /// The setting, if any.
    pub fn get(self) -> Option<Duration> {
        (self.0 != u64::MAX).then(|| Duration::from_micros(self.0))
    }
}

/// The segment being timed for an RTT sample: its end sequence number and
/// when it was sent, or none (sixteen bytes where `Option<(Seq, Instant)>`
/// takes twenty-four).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    end: Seq,
    at: Timer,
}

impl Timing {
    /// No segment is being timed.
    pub const OFF: Timing = Timing {
        end: Seq(0),
        at: Timer::OFF,
    };

    /// The timed segment's end and send time, if one is being timed.
    pub fn get(self) -> Option<(Seq, Instant)> {
        self.at.get().map(|at| (self.end, at))
    }

    /// Whether no segment is being timed.
    pub fn is_none(self) -> bool {
        self.at.is_none()
    }

    /// Times the segment ending at `end`, sent at `at`.
    pub fn set(&mut self, end: Seq, at: Instant) {
        self.end = end;
        self.at.set(at);
    }

    /// Stops timing.
    pub fn clear(&mut self) {
        self.at.clear();
    }

    /// The timed segment, if any, and stops timing.
    pub fn take(&mut self) -> Option<(Seq, Instant)> {
        let timed = self.get();
        self.clear();
        timed
    }
}

/// The Transmission Control Block.
#[repr(C)]
pub(crate) struct Tcb {
    // ----- Hot: what nearly every segment, output and timer check reads or
    // writes, packed together from the first byte (`repr(C)` keeps this
    // order). With a hundred thousand connections open, every visit to a
    // TCB starts from memory, so each cache line the common path touches
    // counts. The 4-tuple comes first: a lookup compares it on the line
    // the slot's own bookkeeping is on. Then the flags and window shifts
    // (a byte each), the sequence variables (RFC 9293 §3.3.1), the timers,
    // the buffers and the prebuilt header.
    pub tuple: ConnTuple,
    pub state: State,
    /// Reached SYN-RECEIVED from a passive OPEN (MUST-11).
    pub passive: bool,
    /// Both SYNs carried a window scale option (RFC 7323 §2.2).
    pub wscale_agreed: bool,
    /// Both SYNs carried SACK-Permitted (RFC 2018 §2).
    pub sack_ok: bool,
    /// The peer's SYN offered SACK-Permitted (for our SYN-ACK).
    pub sack_offered: bool,
    /// The application asked to send FIN (CLOSE or shutdown of writing).
    pub fin_queued: bool,
    /// The peer's FIN has been received in sequence.
    pub fin_rcvd: bool,
    /// The application called close(): it reads no more (MAY-1).
    pub read_closed: bool,
    /// The application dropped its handle: free the TCB at CLOSED.
    pub released: bool,
    /// Turn Nagle off (MUST-17).
    pub nodelay: bool,
    /// SYN or SYN-ACK had to be retransmitted (RFC 6298 §5.7, RFC 5681 §3.1).
    pub syn_retransmitted: bool,
    /// Send an ACK at the next output.
    pub ack_now: bool,
    /// This connection is in the outbox's list of ACKs to send at drain time.
    pub ack_queued: bool,
    /// A Readable event is outstanding (cleared when the application reads).
    pub readable_signalled: bool,
    /// The application saw a full send buffer: tell it when room opens.
    pub want_writable: bool,
    /// Delivery trouble was reported for the current run of retransmissions.
    pub trouble_reported: bool,
    /// Keep-alives on (MUST-24, off by default: MUST-25).
    pub keepalive: bool,
    /// ECN (RFC 3168): negotiated, CE to echo, CWR to send ([`ecn`]).
    pub ecn: ecn::EcnFlags,
    /// Shift applied to window fields we receive.
    pub snd_wscale: u8,
    /// Shift applied to window fields we send.
    pub rcv_wscale: u8,
    pub iss: Seq,
    pub snd_una: Seq,
    pub snd_nxt: Seq,
    /// Highest sequence number sent so far (SND.NXT before a go-back).
    pub snd_max: Seq,
    pub snd_wnd: u32,
    pub snd_wl1: Seq,
    pub snd_wl2: Seq,
    /// Largest window the peer ever offered (RFC 5961 §5.2 ACK check).
    pub max_snd_wnd: u32,
    /// Effective send MSS (MUST-16), payload bytes per segment.
    pub snd_mss: u32,
    pub irs: Seq,
    pub rcv_nxt: Seq,
    /// Right edge of the window we last advertised (SHLD-14: never moves left).
    pub rcv_adv: Seq,
    /// Our receive MSS, for ACK-every-second-segment (SHLD-19).
    pub rcv_mss: u32,
    /// RCV.NXT as carried by the last ACK we sent (RFC 7323 Last.ACK.sent).
    pub last_ack_sent: Seq,
    /// Our RFC 7323 clock offset for this connection (kept from the SYN on).
    pub ts_offset: u32,
    /// Bytes received since the last ACK we sent.
    pub unacked_bytes: u32,
    /// Consecutive retransmissions of the same data.
    pub retries: u32,
    /// Consecutive duplicate ACKs (RFC 5681 §3.2).
    pub dupacks: u32,
    /// Probes sent since the peer was last heard from.
    pub keepalive_sent: u32,
    /// The deadlines of the connection's timers (retransmission, delayed
    /// ACK, persist, FIN-WAIT-2 or TIME-WAIT, keep-alive).
    pub timers: Timers,
    /// The earliest deadline currently registered in the stack's timer
    /// wheel: the stack's bookkeeping of `timers.next()`, not a timer of
    /// the connection (so [`Timers::stop_all`] leaves it, and the wheel's
    /// stale entry is recognized when it fires).
    pub wheel_at: Timer,
    /// Since when the oldest unacknowledged data has waited: set when data
    /// goes out with nothing outstanding, moved on by every ACK of new data
    /// (the clock of the user timeout, MUST-21).
    pub una_since: Timer,
    /// When the next data segment may leave under pacing ([`pacing`]).
    pub pace_next: Timer,
    /// When a segment last arrived from the peer.
    pub last_recv: Instant,
    /// Per-connection R2 as a time (MUST-21): `Some(Duration::MAX)` never
    /// gives up; `None` uses `Config::max_retries`.
    pub user_timeout: UserTimeout,
    /// Sequence number of our FIN once its place is known.
    pub fin_seq: Option<Seq>,
    /// Sequence number of a FIN seen beyond RCV.NXT, kept until the gap fills.
    pub peer_fin: Option<Seq>,
    /// In fast recovery until SND.UNA passes this point (RFC 6582 "recover").
    pub recover: Option<Seq>,
    /// Our urgent pointer: the sequence number after the last urgent byte
    /// sent with `send_urgent`, until it is acknowledged (MUST-30, MUST-62).
    pub snd_up: Option<Seq>,
    pub ts: Option<Timestamps>,
    /// Segment being timed for an RTT sample: (end sequence, sent at).
    pub timing: Timing,
    /// The congestion controller (RFC 9438 CUBIC unless configured).
    pub cc: Controller,
    /// The listener that spawned it, until accepted.
    pub listener: Option<ListenerId>,
    /// Receiver side: the out-of-order island the latest segment landed in,
    /// as offsets from RCV.NXT (RFC 2018 §4: it goes first).
    pub sack_recent: Option<(Seq, Seq)>,
    pub sendq: SendBuffer,
    pub recvq: RecvBuffer,
    pub rtt: RttEstimator,
    /// The packet header of this connection's segments, prebuilt, with the
    /// connection's TOS / Traffic Class ([`diffserv`]) (`None` only for a
    /// tuple of mixed address families, which no connection has: then each
    /// packet is built in full).
    pub hdr: Option<HeaderTemplate>,

    // ----- Cold: the SACK scoreboard, recovery limits, the peer's urgent
    // pointer, challenge-ACK limits and errors, touched only in such cases.
    /// Sender side: ranges above SND.UNA the peer reported holding, sorted
    /// and disjoint (the scoreboard).
    pub sacked: Scoreboard,
    /// No fast recovery may start until SND.UNA passes this point (set at
    /// the end of a recovery or on a timeout: RFC 6582 §3.2 steps 2 and 4).
    pub recover_floor: Option<Seq>,
    /// ECN: ECE is not answered until SND.UNA passes this point, SND.MAX
    /// at the last window reduction (RFC 3168 §6.1.2: once per window).
    pub ecn_floor: Option<Seq>,
    /// RACK-TLP, PRR and undo state (RFC 8985, RFC 6937, RFC 2883, RFC
    /// 3522): boxed, and only once data is sent.
    pub rack: Option<alloc::boxed::Box<rack::Rack>>,

    /// The peer's urgent pointer, while the application has not read past it.
    pub rcv_up: Option<Seq>,
    /// Challenge-ACK rate limit window start and count (RFC 5961 §7).
    pub challenge_window: Instant,
    pub challenge_count: u32,
    pub error: Option<Error>,
    /// The last ICMP soft error, reported if the connection then times out.
    pub soft_error: Option<Error>,
}

impl Tcb {
    /// A fresh TCB for `tuple` with initial send sequence number `iss`.
    pub fn new(cfg: &Config, tuple: ConnTuple, iss: Seq, state: State) -> Self {
        let v6 = tuple.local.is_ipv6();
        let rcv_mss = our_mss(cfg, v6);
        Tcb {
            state,
            tuple,
            passive: false,
            listener: None,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_wscale: 0,
            snd_mss: default_peer_mss(v6),
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            rcv_wscale: 0,
            rcv_mss,
            last_ack_sent: Seq(0),
            ts: None,
            ts_offset: 0,
            wscale_agreed: false,
            sack_ok: false,
            sack_offered: false,
            sack_recent: None,
            sacked: Scoreboard::default(),
            sendq: SendBuffer::new(cfg.send_buffer),
            recvq: RecvBuffer::new(cfg.recv_buffer),
            fin_queued: false,
            fin_seq: None,
            fin_rcvd: false,
            peer_fin: None,
            read_closed: false,
            released: false,
            nodelay: false,
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            timing: Timing::OFF,
            retries: 0,
            syn_retransmitted: false,
            cc: Controller::new(&cfg.congestion_control, default_peer_mss(v6), false),
            timers: Timers::OFF,
            wheel_at: Timer::OFF,
            pace_next: Timer::OFF,
            ack_now: false,
            ack_queued: false,
            unacked_bytes: 0,
            challenge_window: Instant::ZERO,
            challenge_count: 0,
            error: None,
            readable_signalled: false,
            want_writable: false,
            trouble_reported: false,
            keepalive: false,
            keepalive_sent: 0,
            last_recv: Instant::ZERO,
            user_timeout: UserTimeout::NONE,
            una_since: Timer::OFF,
            soft_error: None,
            snd_up: None,
            rcv_up: None,
            dupacks: 0,
            recover: None,
            rack: None,
            hdr: HeaderTemplate::new(tuple.local, tuple.remote, cfg.ttl, cfg.dscp.tos(0)).ok(),
            recover_floor: None,
            ecn: ecn::EcnFlags::default(),
            ecn_floor: None,
        }
    }

    /// Moves to `to`, tracing the change.
    pub fn set_state(&mut self, ctx: &mut Ctx<'_>, to: State) {
        ctx.out.state(ctx.now, self.tuple, self.state, to);
        self.state = to;
    }

    /// Ends the connection in CLOSED with `error`, telling the application.
    pub fn close_with(&mut self, ctx: &mut Ctx<'_>, error: Option<Error>) -> Disposition {
        self.set_state(ctx, State::Closed);
        if self.error.is_none() {
            self.error = error;
        }
        self.timers.stop_all();
        if !self.released && (self.listener.is_none() || !self.passive) {
            ctx.events.push_back(Event::Closed {
                id: ctx.id,
                error: self.error,
            });
        }
        Disposition::Closed
    }

    /// The earliest instant any timer of this connection wants service.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Sequence number one past the last byte the application queued.
    pub fn data_end(&self) -> Seq {
        // SND.UNA counts our SYN until it is acknowledged.
        let base = if self.snd_una == self.iss {
            self.iss.add(1)
        } else {
            self.snd_una
        };
        // Once the FIN is acknowledged SND.UNA has passed the data by one.
        match self.fin_seq {
            Some(f) if self.snd_una.gt(f) => f,
            _ => base.add(self.sendq.len() as u32),
        }
    }

    /// True once our FIN has been acknowledged.
    pub fn fin_acked(&self) -> bool {
        matches!(self.fin_seq, Some(f) if self.snd_una.gt(f))
    }

    /// Bytes sent and not yet acknowledged.
    pub fn in_flight(&self) -> u32 {
        self.snd_nxt.since(self.snd_una)
    }

    /// Congestion window.
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd()
    }

    /// Slow-start threshold.
    pub fn ssthresh(&self) -> u32 {
        self.cc.ssthresh()
    }

    /// Our timestamp clock: milliseconds plus the per-connection offset.
    pub fn ts_val(&self, now: Instant) -> u32 {
        let ms = (now.micros() / 1000) as u32;
        ms.wrapping_add(self.ts_offset)
    }

    /// The retransmission timeout now in force.
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// When the retransmission timer armed at `now` should fire: one RTO
    /// later, or earlier when the user timeout runs out first (MUST-21).
    pub fn rto_deadline(&self, now: Instant) -> Instant {
        let at = now + self.rto();
        match (self.user_timeout.get(), self.una_since.get()) {
            (Some(limit), Some(since)) => at.min((since + limit).max(now)),
            _ => at,
        }
    }

    /// Notes that data is going out; starts the user-timeout clock when
    /// nothing was outstanding.
    pub fn note_sending(&mut self, now: Instant) {
        if self.snd_una == self.snd_max {
            self.una_since.set(now);
        }
    }
}

/// Our MSS for this link (MUST-67, SHLD-5): MTU less the IP and TCP headers.
pub(crate) fn our_mss(cfg: &Config, v6: bool) -> u32 {
    let ip = if v6 { 40 } else { 20 };
    (cfg.mtu.saturating_sub(ip + 20)).clamp(64, 65535) as u32
}

/// MSS assumed when the peer sent none (MUST-15).
pub(crate) fn default_peer_mss(v6: bool) -> u32 {
    if v6 {
        1220
    } else {
        536
    }
}

/// The address pair of a connection as (local, remote) socket addresses.
#[allow(dead_code)]
pub(crate) fn tuple_of(local: SocketAddr, remote: SocketAddr) -> ConnTuple {
    ConnTuple { local, remote }
}

#[cfg(test)]
mod tests {
    use super::{Tcb, Timers};
    use core::mem::{offset_of, size_of};

    /// A hundred thousand open connections each read their TCB from
    /// memory: it must not grow by accident. Nine cache lines (576 bytes)
    /// with Reno's 12 bytes of state; CUBIC and HyStart++ (72 bytes more),
    /// the default controller, and RACK-TLP's two timers and state pointer
    /// bring it to at most eleven (704).
    #[test]
    fn the_tcb_does_not_grow() {
        assert!(size_of::<Tcb>() <= 704, "{} bytes", size_of::<Tcb>());
    }

    /// The timer table sits with the hot fields, in the first four cache
    /// lines that nearly every segment and timer check touches.
    #[test]
    fn the_timers_are_hot() {
        assert!(offset_of!(Tcb, timers) + size_of::<Timers>() <= 4 * 64);
    }
}
