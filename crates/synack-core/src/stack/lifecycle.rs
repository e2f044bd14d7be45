//! A connection's life in the stack's tables: stored and indexed, its
//! handler run with a context, and what the handler returns applied (the
//! accept queue, unlinking, TIME-WAIT, freeing, the timer); freed once
//! neither the index nor the application holds it.

use core::hash::BuildHasher;

use super::timers::TimerItem;
use super::Stack;
use crate::conn::{Ctx, Disposition, Tcb};
use crate::{ConnId, Instant, State};

impl Stack {
    /// Stores a TCB and indexes it under its 4-tuple.
    pub(super) fn insert_tcb(&mut self, tcb: Tcb) -> ConnId {
        let hash = self.hasher.hash_one(tcb.tuple);
        let id = self.conns.insert(tcb);
        self.conns.link(hash, id);
        id
    }

    /// Takes `id` out of the 4-tuple index if it is there.
    pub(super) fn unlink_tuple(&mut self, id: ConnId) {
        if self.conns.unlink(id) {
            self.last = None;
        }
    }

    /// Frees the TCB of `id` if it is no longer in the 4-tuple index.
    pub(super) fn free_if_unlinked(&mut self, id: ConnId) {
        let Some(t) = self.tcb(id) else { return };
        let tuple = t.tuple;
        if self.conns.is_linked(id) {
            return;
        }
        // Rarely any: then no tuple is hashed for it.
        if !self.tw_owners.is_empty() && self.tw_owners.get(&tuple) == Some(&id) {
            self.tw_owners.remove(&tuple);
        }
        self.conns.remove(id);
    }

    /// Runs `f` on a connection with a context, then applies the
    /// disposition it returns ([`Stack::apply`]).
    pub(super) fn with_conn(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut Tcb, &mut Ctx<'_>) -> Disposition,
    ) {
        self.now = self.now.max(now);
        let Some(tcb) = self.conns.get_mut(id) else {
            return;
        };
        let before = tcb.state;
        // The window as the handler found it, to trace a change (only with
        // the trace on: two reads per handler, at most one event).
        let window = self.out.trace_on.then(|| (tcb.cwnd(), tcb.ssthresh()));
        let mut ctx = Ctx {
            now,
            cfg: &self.cfg,
            out: &mut self.out,
            events: &mut self.events,
            id,
        };
        let disposition = f(tcb, &mut ctx);
        if let Some(old) = window {
            let new = (tcb.cwnd(), tcb.ssthresh());
            if new != old || (!before.is_synchronized() && tcb.state.is_synchronized()) {
                self.out.cwnd(now, tcb.tuple, new.0, new.1);
            }
        }
        self.apply(now, id, before, disposition);
    }

    /// Abort a connection whose application is gone.
    pub(super) fn abort_orphan(&mut self, now: Instant, id: ConnId) {
        if let Some(t) = self.tcb_mut(id) {
            t.orphan();
        }
        self.with_conn(now, id, |t, ctx| t.abort(ctx));
    }

    /// Applies the disposition a handler returned, given the state the
    /// connection was in `before` it ran: the accept queue (a passive child
    /// now ESTABLISHED), unlinking, TIME-WAIT, freeing, or re-arming the
    /// timer of a connection that lives on.
    fn apply(&mut self, now: Instant, id: ConnId, before: State, disposition: Disposition) {
        let Some(tcb) = self.tcb(id) else { return };
        let after = tcb.state;
        let (passive, listener) = (tcb.passive, tcb.listener);
        self.request_opened(id, after);
        // A passive child that reached ESTABLISHED joins the accept queue.
        if before == State::SynReceived && after.is_synchronized() && passive {
            if let Some(lid) = listener {
                if !self.queue_for_accept(lid, id) {
                    self.abort_orphan(now, id);
                    return;
                }
            }
        }
        match disposition {
            Disposition::Stay => self.schedule(id),
            Disposition::Closed | Disposition::ReturnToListen => {
                self.unlink(id, before == State::SynReceived);
                let released = self
                    .tcb(id)
                    .is_none_or(|t| t.released || disposition == Disposition::ReturnToListen);
                if released {
                    self.free_if_unlinked(id);
                }
            }
            Disposition::TimeWait => self.enter_time_wait(now, id),
        }
    }

    /// Removes a connection from the 4-tuple table and its listener's counts.
    fn unlink(&mut self, id: ConnId, was_pending: bool) {
        self.unlink_tuple(id);
        if was_pending {
            if let Some(lid) = self.tcb(id).and_then(|t| t.listener) {
                self.pending_gone(lid);
            }
        }
    }

    /// Registers the connection's next deadline in the wheel when it is
    /// earlier than the one already registered (stale entries are skipped
    /// when they fire; those of connections gone are swept out each time
    /// the wheel doubles).
    fn schedule(&mut self, id: ConnId) {
        if let Some(d) = self.tcb_mut(id).and_then(Tcb::wheel_registration) {
            self.wheel.insert(d, TimerItem(id));
            if self.wheel.len() > self.wheel_sweep_at {
                self.sweep_wheel();
            }
        }
    }
}
