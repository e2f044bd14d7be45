//! Leaving the TCB for TIME-WAIT (RFC 9293 §3.10.7.4, "TIME-WAIT STATE")
//! and the end of the wait (§3.10.8): what the compact TIME-WAIT table
//! keeps of a connection, and the TCB an application still holds
//! afterwards.

use super::Tcb;
use crate::timewait::TimeWaitEntry;
use crate::{ConnId, Event, Instant, State};

impl Tcb {
    /// A connection that entered TIME-WAIT hands the 2×MSL wait (MUST-13)
    /// to the compact table: the entry that re-ACKs a retransmitted FIN
    /// until `expires`. The TCB's own timers stop; it is kept only while
    /// the application holds its handle.
    pub(crate) fn time_wait_entry(&mut self, expires: Instant) -> TimeWaitEntry {
        let entry = TimeWaitEntry {
            snd_nxt: self.snd_max,
            rcv_nxt: self.rcv_nxt,
            expires,
            ts_offset: self.ts_offset,
            ts_recent: self.ts.map_or(0, |ts| ts.recent),
            window: (self.recvq.window() as u32 >> self.rcv_wscale).min(0xFFFF) as u16,
            has_ts: self.ts.is_some(),
            tos: self.tos(),
        };
        self.timers.stop_all();
        entry
    }

    /// RFC 9293 §3.10.8, TIME-WAIT timeout: the 2×MSL wait is over;
    /// delete the TCB, enter CLOSED. The stack traced the change; a handle
    /// still held on the connection `id` sees CLOSED, and the returned
    /// event tells the application.
    pub(crate) fn time_wait_over(&mut self, id: ConnId) -> Event {
        self.state = State::Closed;
        Event::Closed { id, error: None }
    }
}
