//! Congestion control: the [`CongestionControl`] trait every controller
//! implements, the built-in controllers ([`Cubic`], RFC 9438 with HyStart++,
//! the default; [`Reno`], RFC 5681 with NewReno's recovery arithmetic), the
//! initial window both start from (RFC 6928), and the per-connection
//! [`Controller`] that dispatches to them.
//!
//! Loss detection (RACK-TLP, RFC 8985) and the window during recovery
//! (PRR, RFC 6937) live in the connection (`conn/recovery.rs`,
//! `conn/rack.rs`); a controller only answers how large the window is and
//! how it moves when the connection reports what happened.

mod cubic;
mod hystart;
mod reno;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

use crate::Instant;

pub use cubic::Cubic;
pub use reno::Reno;

/// What the connection knows about one ACK of new data, beyond the byte
/// count: the time and the path's round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckInfo {
    /// When the ACK arrived (the stack's clock, as given to the call that
    /// delivered it).
    pub now: Instant,
    /// The RTT sample this ACK gave (RFC 6298, from the echoed timestamp or
    /// the timed segment; never from a retransmission, Karn's rule), if any.
    pub rtt: Option<Duration>,
    /// The smoothed RTT (RFC 6298 SRTT) after this ACK, once there is one.
    pub srtt: Option<Duration>,
    /// Bytes sent and not yet acknowledged after this ACK (RFC 5681
    /// FlightSize).
    pub flight: u32,
    /// The least RTT the connection has measured (RFC 8985 RACK.min_RTT,
    /// from the send times of segments delivered unambiguously): the
    /// path's propagation delay, once known.
    pub min_rtt: Option<Duration>,
    /// The connection paces its data ([`crate::Config`]'s `pacing`): the
    /// ACKs come back spread by its pacing, not only by the path.
    pub paced: bool,
}

/// A congestion controller: one per connection, owned by its TCB.
///
/// # Contract
///
/// Units: windows, byte counts and `flight` are bytes of sequence space
/// (payload; SYN and FIN are not counted); `mss` is the connection's send
/// MSS (RFC 9293 SMSS), payload bytes per segment, always at least 1.
///
/// The stack calls, always from the one thread that drives the connection,
/// and only from its own entry points (`Stack::handle_packet`,
/// `Stack::handle_timeout` and the user calls):
///
/// - [`init`](Self::init) when the connection's MSS becomes known (the
///   handshake completed), and again if the application picks a controller
///   before data flows; nothing else is called before the first `init`
///   except [`cwnd`](Self::cwnd).
/// - [`cwnd`](Self::cwnd) whenever it decides how much may be sent: the
///   stack never has more than `min(cwnd, peer window)` bytes outstanding
///   (RFC 5681 §3.1). A value below `mss` is treated as `mss`.
/// - [`on_ack`](Self::on_ack) for each ACK of new data outside recovery.
/// - [`on_enter_recovery`](Self::on_enter_recovery) when loss is detected
///   (at most once per window of data; a loss a tail loss probe repaired
///   calls it and [`on_exit_recovery`](Self::on_exit_recovery) back to
///   back), then [`on_exit_recovery`](Self::on_exit_recovery) once,
///   unless an RTO ends the recovery first. In between, PRR decides what
///   is sent, from `ssthresh`.
/// - [`on_rto`](Self::on_rto) when the retransmission timer expires.
/// - [`on_ecn_echo`](Self::on_ecn_echo) when an ECN-capable connection's
///   peer echoes a Congestion Experienced mark (RFC 3168 §6.1.2), at most
///   once per window of data and never during a recovery or in the window
///   a loss or timeout already reduced.
/// - [`undo`](Self::undo) when the stack learns that the last reduction
///   (a recovery or an RTO) was spurious (DSACK, F-RTO or timestamps).
///
/// The stack guarantees `now` never goes backwards between calls. It
/// expects every method to be cheap (they run per ACK), never to panic
/// whatever the arguments (use saturating arithmetic), not to allocate on
/// the per-ACK path, and `cwnd` to be at least one `mss` after `init`.
/// The core is `no_std`: a controller has `core` and `alloc`, no clock
/// of its own (time comes in [`AckInfo::now`]) and no floating-point
/// functions beyond the basic operations.
pub trait CongestionControl {
    /// Start afresh for a connection whose send MSS is `mss`: the initial
    /// window, no history. `syn_lost`: the SYN or SYN-ACK had to be
    /// retransmitted (RFC 5681 §3.1: the initial window is then one
    /// segment).
    fn init(&mut self, mss: u32, syn_lost: bool);
    /// Congestion window, bytes.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold the last reduction set, bytes (`u32::MAX`
    /// before the first).
    fn ssthresh(&self) -> u32;
    /// `acked` bytes of new data were cumulatively acknowledged, outside
    /// recovery.
    fn on_ack(&mut self, acked: u32, mss: u32, ack: AckInfo);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, flight: u32, mss: u32);
    /// Loss detected (RACK-TLP or duplicate ACKs) with `flight` bytes out:
    /// set ssthresh (RFC 5681 §3.2 step 2, RFC 9438 §4.6). During the
    /// recovery that follows the stack paces sending with PRR (RFC 6937)
    /// from [`ssthresh`](Self::ssthresh) and does not read `cwnd`.
    fn on_enter_recovery(&mut self, flight: u32, mss: u32);
    /// Recovery ended; `flight` bytes still out. PRR has brought the flight
    /// to ssthresh: cwnd becomes ssthresh (RFC 6937 §3), or stays the
    /// larger window an [`undo`](Self::undo) during the recovery restored.
    fn on_exit_recovery(&mut self, flight: u32, mss: u32);
    /// The peer echoed congestion (ECN-Echo, RFC 3168 §6.1.2) with `flight`
    /// bytes out: nothing was lost and nothing is resent, but the window
    /// must shrink as for a loss (RFC 3168 §6.1.2, RFC 9438 §4.6: "a
    /// congestion event"). The default is a loss repaired at once:
    /// [`on_enter_recovery`](Self::on_enter_recovery) then
    /// [`on_exit_recovery`](Self::on_exit_recovery), which leaves cwnd at
    /// the new ssthresh. [`undo`](Self::undo) never follows it: a mark is
    /// never spurious.
    fn on_ecn_echo(&mut self, flight: u32, mss: u32) {
        self.on_enter_recovery(flight, mss);
        self.on_exit_recovery(flight, mss);
    }
    /// The last window reduction was spurious: restore the window and the
    /// slow-start threshold from before it. A second call before the next
    /// reduction does nothing.
    fn undo(&mut self);
}

/// Makes a controller for a new connection (see
/// [`CongestionControlChoice::Custom`]).
pub type ControllerFactory = Arc<dyn Fn() -> Box<dyn CongestionControl + Send> + Send + Sync>;

/// Which congestion controller a connection runs ([`crate::Config`]'s
/// `congestion_control` for the stack, `Stack::set_congestion_control` for
/// one connection).
#[derive(Clone, Default)]
pub enum CongestionControlChoice {
    /// CUBIC (RFC 9438) with HyStart++ (RFC 9406), the default (as Linux's).
    #[default]
    Cubic,
    /// Reno (RFC 5681) with NewReno's recovery (RFC 6582).
    Reno,
    /// The application's own: the factory is called once per connection
    /// and the controller it returns is [`init`](CongestionControl::init)ed
    /// before use.
    Custom(ControllerFactory),
}

impl fmt::Debug for CongestionControlChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CongestionControlChoice::Cubic => "Cubic",
            CongestionControlChoice::Reno => "Reno",
            CongestionControlChoice::Custom(_) => "Custom",
        })
    }
}

/// RFC 6928 §2: the initial window, min(10·MSS, max(2·MSS, 14600)), or one
/// segment when the SYN or SYN-ACK had to be retransmitted (RFC 5681 §3.1,
/// RFC 6928 §2; 5681-2).
pub fn initial_window(mss: u32, syn_lost: bool) -> u32 {
    let mss = mss.max(1);
    if syn_lost {
        mss
    } else {
        mss.saturating_mul(10)
            .min(mss.saturating_mul(2).max(14_600))
    }
}

/// A connection's controller: the built-ins inline (static dispatch, no
/// allocation), an application's behind a box.
pub(crate) enum Controller {
    Reno(Reno),
    Cubic(Cubic),
    Custom(Box<dyn CongestionControl + Send>),
}

impl Controller {
    /// The controller `choice` names, initialised for `mss`.
    pub fn new(choice: &CongestionControlChoice, mss: u32, syn_lost: bool) -> Self {
        let mut c = match choice {
            CongestionControlChoice::Cubic => Controller::Cubic(Cubic::new(mss, syn_lost)),
            CongestionControlChoice::Reno => Controller::Reno(Reno::new(mss, syn_lost)),
            CongestionControlChoice::Custom(make) => Controller::Custom(make()),
        };
        if let Controller::Custom(c) = &mut c {
            c.init(mss, syn_lost);
        }
        c
    }
}

/// Forwards a trait call to whichever controller is inside.
macro_rules! dispatch {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            Controller::Reno($c) => $call,
            Controller::Cubic($c) => $call,
            Controller::Custom($c) => $call,
        }
    };
}

impl CongestionControl for Controller {
    #[inline]
    fn init(&mut self, mss: u32, syn_lost: bool) {
        dispatch!(self, c => c.init(mss, syn_lost))
    }
    #[inline]
    fn cwnd(&self) -> u32 {
        dispatch!(self, c => c.cwnd())
    }
    #[inline]
    fn ssthresh(&self) -> u32 {
        dispatch!(self, c => c.ssthresh())
    }
    #[inline]
    fn on_ack(&mut self, acked: u32, mss: u32, ack: AckInfo) {
        dispatch!(self, c => c.on_ack(acked, mss, ack))
    }
    #[inline]
    fn on_rto(&mut self, flight: u32, mss: u32) {
        dispatch!(self, c => c.on_rto(flight, mss))
    }
    #[inline]
    fn on_enter_recovery(&mut self, flight: u32, mss: u32) {
        dispatch!(self, c => c.on_enter_recovery(flight, mss))
    }
    #[inline]
    fn on_exit_recovery(&mut self, flight: u32, mss: u32) {
        dispatch!(self, c => c.on_exit_recovery(flight, mss))
    }
    #[inline]
    fn on_ecn_echo(&mut self, flight: u32, mss: u32) {
        dispatch!(self, c => c.on_ecn_echo(flight, mss))
    }
    #[inline]
    fn undo(&mut self) {
        dispatch!(self, c => c.undo())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6928_initial_window() {
        assert_eq!(initial_window(1460, false), 14_600);
        assert_eq!(initial_window(1448, false), 14_480);
        assert_eq!(initial_window(536, false), 5360, "10 MSS below 14600");
        assert_eq!(initial_window(9000, false), 18_000, "2 MSS above 14600");
        assert_eq!(
            initial_window(1460, true),
            1460,
            "one segment after a lost SYN"
        );
        assert_eq!(initial_window(0, false), 10, "never zero");
    }

    #[test]
    fn choice_builds_the_controller_it_names() {
        let c = Controller::new(&CongestionControlChoice::default(), 1000, false);
        assert!(matches!(c, Controller::Cubic(_)));
        assert_eq!(c.cwnd(), 10_000);
        let c = Controller::new(&CongestionControlChoice::Reno, 1000, true);
        assert!(matches!(c, Controller::Reno(_)));
        assert_eq!(c.cwnd(), 1000);
    }

    /// An application's controller: a fixed window, counting the calls.
    struct Fixed(u32, u32);
    impl CongestionControl for Fixed {
        fn init(&mut self, mss: u32, _: bool) {
            self.0 = 3 * mss;
        }
        fn cwnd(&self) -> u32 {
            self.0
        }
        fn ssthresh(&self) -> u32 {
            u32::MAX
        }
        fn on_ack(&mut self, _: u32, _: u32, _: AckInfo) {
            self.1 += 1;
        }
        fn on_rto(&mut self, _: u32, _: u32) {}
        fn on_enter_recovery(&mut self, _: u32, _: u32) {}
        fn on_exit_recovery(&mut self, _: u32, _: u32) {}
        fn undo(&mut self) {}
    }

    #[test]
    fn custom_controller_is_initialised_and_called() {
        let choice = CongestionControlChoice::Custom(Arc::new(|| Box::new(Fixed(0, 0))));
        let mut c = Controller::new(&choice, 500, false);
        assert_eq!(c.cwnd(), 1500, "init ran");
        let ack = AckInfo {
            now: Instant::ZERO,
            rtt: None,
            srtt: None,
            flight: 0,
            min_rtt: None,
            paced: false,
        };
        c.on_ack(500, 500, ack);
        assert_eq!(alloc::format!("{choice:?}"), "Custom");
    }
}
