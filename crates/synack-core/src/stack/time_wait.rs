//! The stack's side of TIME-WAIT (RFC 9293 §3.10.7.4): a connection moves
//! from its TCB into the compact table (`crate::timewait`), segments for
//! it are answered from its entry, and its end is CLOSED (§3.10.8).

use synack_wire::Segment;

use super::Stack;
use crate::timewait::{TimeWaitEntry, TwAction};
use crate::{Config, ConnId, ConnTuple, Instant, State};

impl Stack {
    /// Moves a connection into the compact TIME-WAIT table. A full table
    /// (`Config::max_time_wait`) first recycles its oldest entry, the
    /// first to expire: that TIME-WAIT ends early, so the table stays
    /// bounded and the newest connection, whose old segments are the
    /// likeliest still in flight, is the one protected.
    pub(super) fn enter_time_wait(&mut self, now: Instant, id: ConnId) {
        let expires = now + t_twice_msl(&self.cfg);
        let Some(t) = self.tcb_mut(id) else { return };
        let (tuple, held) = (t.tuple, !t.released);
        let entry = t.time_wait_entry(expires);
        self.unlink_tuple(id);
        while self.time_wait.len() >= self.cfg.max_time_wait {
            let Some((oldest, _)) = self.time_wait.first() else {
                // No table at all (a maximum of 0): TIME-WAIT ends as it
                // begins.
                self.closed_after_time_wait(now, tuple, held.then_some(id));
                if !held {
                    self.free_if_unlinked(id);
                }
                return;
            };
            self.end_time_wait(now, oldest);
        }
        self.time_wait.insert(tuple, entry);
        if held {
            self.tw_owners.insert(tuple, id);
        } else {
            self.free_if_unlinked(id);
        }
    }

    /// The 2×MSL wait is over: CLOSED.
    fn end_time_wait(&mut self, now: Instant, tuple: ConnTuple) {
        if self.time_wait.remove(&tuple).is_some() {
            self.time_wait_ended(now, tuple);
        }
    }

    /// What follows the end of `tuple`'s TIME-WAIT, its entry removed.
    pub(super) fn time_wait_ended(&mut self, now: Instant, tuple: ConnTuple) {
        let owner = if self.tw_owners.is_empty() {
            None
        } else {
            self.tw_owners.remove(&tuple)
        };
        self.closed_after_time_wait(now, tuple, owner);
    }

    /// RFC 9293 §3.10.8, TIME-WAIT timeout: TIME-WAIT → CLOSED for
    /// `tuple`, traced, and the application told when it still holds the
    /// connection (`owner`).
    fn closed_after_time_wait(&mut self, now: Instant, tuple: ConnTuple, owner: Option<ConnId>) {
        self.out.state(now, tuple, State::TimeWait, State::Closed);
        if let Some(id) = owner {
            if let Some(t) = self.tcb_mut(id) {
                let closed = t.time_wait_over(id);
                self.events.push_back(closed);
            }
        }
    }

    /// A segment for a connection in TIME-WAIT.
    pub(super) fn time_wait_segment(
        &mut self,
        now: Instant,
        tuple: ConnTuple,
        entry: TimeWaitEntry,
        seg: &Segment<'_>,
    ) {
        self.out.recv(now, tuple, &seg.tcp, seg.payload.len());
        match entry.classify(seg) {
            TwAction::Drop(reason) => self.out.drop(now, Some(tuple), reason),
            TwAction::Ack { restart } => {
                let repr = entry.ack_repr(now, tuple.local.port(), tuple.remote.port());
                self.out
                    .send_with_tos(now, tuple.local, tuple.remote, entry.tos, &repr);
                if restart {
                    // RFC 9293 §3.10.7.4: restart the 2 MSL timeout.
                    let expires = now + t_twice_msl(&self.cfg);
                    self.time_wait.restart(&tuple, expires);
                }
            }
            TwAction::Reopen => {
                let lid = self.listener_for(tuple.local);
                match lid {
                    Some(lid) => {
                        self.end_time_wait(now, tuple);
                        // MAY-2: the new ISS lies above the old sequence space.
                        let floor = entry.snd_nxt.add(1 << 17);
                        self.listen_segment(now, lid, tuple, seg, Some(floor));
                    }
                    None => self.out.drop(now, Some(tuple), "SYN in TIME-WAIT"),
                }
            }
        }
    }
}

fn t_twice_msl(cfg: &Config) -> core::time::Duration {
    cfg.msl * 2
}
