//! The application's hold on a connection: taken from a listener's accept
//! queue, let go of, and the per-connection settings it may change (Nagle,
//! MUST-17; the user timeout, MUST-21; the congestion controller).

use core::time::Duration;

use super::{Tcb, UserTimeout};
use crate::cc::{CongestionControlChoice, Controller};
use crate::{Error, State};

impl Tcb {
    /// ACCEPT took the connection from its listener's queue: it no longer
    /// belongs to the listener (which would reset it on closing).
    pub(crate) fn accepted(&mut self) {
        self.listener = None;
    }

    /// The application took this child of a listener from a connection
    /// request (`Stack::accept_request`) before its SYN-ACK, and holds it
    /// as after an active OPEN: told `Connected` at ESTABLISHED, and
    /// `Closed` with the error when the handshake fails (an RST is
    /// "refused", the SYN-ACK's retries spent "timed out") instead of
    /// returning to a LISTEN it was never queued in (MUST-11's LISTEN is
    /// the request table, which it has left).
    pub(crate) fn held_from_request(&mut self) {
        self.listener = None;
        self.passive = false;
    }

    /// The application lets go of its handle (CLOSE or ABORT): the TCB is
    /// freed once the connection reaches CLOSED. True when it has already
    /// left the state machine (TIME-WAIT is the table's, or CLOSED), so it
    /// can be freed now.
    pub(crate) fn release(&mut self) -> bool {
        self.released = true;
        self.state == State::TimeWait || self.state == State::Closed
    }

    /// Nobody will ever hold the connection: its listener closed before it
    /// was accepted. It is let go of, and the listener forgotten.
    pub(crate) fn orphan(&mut self) {
        self.listener = None;
        self.released = true;
    }

    /// Turns Nagle's algorithm off (`true`) or on (MUST-17).
    pub(crate) fn set_nodelay(&mut self, nodelay: bool) {
        self.nodelay = nodelay;
    }

    /// R2 as a time (MUST-21); `None` restores `Config::max_retries`.
    pub(crate) fn set_user_timeout(&mut self, limit: Option<Duration>) {
        self.user_timeout = UserTimeout::new(limit);
    }

    /// Puts the controller `choice` names in place, if no data has been
    /// sent yet (only the SYN: SND.MAX at most ISS + 1). It starts as a
    /// new connection's would: the initial window for the MSS now known,
    /// one segment if the SYN or SYN-ACK was lost.
    pub(crate) fn set_congestion_control(
        &mut self,
        choice: &CongestionControlChoice,
    ) -> Result<(), Error> {
        if self.snd_max.since(self.iss) > 1 || self.state == State::Closed {
            return Err(Error::InvalidState);
        }
        self.cc = Controller::new(choice, self.snd_mss, self.syn_retransmitted);
        Ok(())
    }
}
