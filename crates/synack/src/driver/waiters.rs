//! Who waits for what, behind the driver's lock: the stack with the
//! wake-ups of every socket ([`Inner`]), and the stack's events turned
//! into wake-ups ([`Inner::dispatch`]).

use std::collections::HashMap;
use std::sync::{Arc, Condvar};
use std::task::Waker;

use synack_core::{ConnId, Error, Event, Instant, ListenerId, Stack, TraceEvent, TraceKind};

use super::shared::Wait;
use super::{DriverStats, Sink};
use crate::datagram::Delivery;
use crate::pcap::PcapWriter;
use crate::trace_json::TraceWriter;

/// Wake-ups of one connection.
#[derive(Default)]
pub(super) struct ConnWaiters {
    /// Blocking callers wait here (with the `Inner` lock).
    pub(super) cond: Arc<Condvar>,
    /// How many blocking callers sleep on `cond` (no wake-up call, a
    /// system call, when none does).
    pub(super) sleepers: u32,
    /// An async reader to wake.
    pub(super) read: Option<Waker>,
    /// An async writer (or connector) to wake.
    pub(super) write: Option<Waker>,
    /// Set once the connection reached CLOSED: why, when not orderly.
    pub(super) closed: Option<Option<Error>>,
    /// The last ICMP soft error reported for it.
    pub(super) soft_error: Option<Error>,
}

impl ConnWaiters {
    /// Wakes everyone waiting on the connection, blocking or async (each
    /// looks again at what it waits for; a wake-up too many costs a look).
    pub(super) fn wake(&mut self) {
        if self.sleepers > 0 {
            self.cond.notify_all();
        }
        if let Some(w) = self.read.take() {
            w.wake();
        }
        if let Some(w) = self.write.take() {
            w.wake();
        }
    }
}

/// Wake-ups of one listener.
#[derive(Default)]
pub(super) struct ListenerWaiters {
    /// Blocking acceptors wait here (with the `Inner` lock).
    pub(super) cond: Arc<Condvar>,
    /// How many blocking acceptors sleep on `cond`.
    pub(super) sleepers: u32,
    /// An async acceptor to wake.
    pub(super) accept: Option<Waker>,
}

impl ListenerWaiters {
    /// Wakes everyone waiting to accept.
    pub(super) fn wake(&mut self) {
        if self.sleepers > 0 {
            self.cond.notify_all();
        }
        if let Some(w) = self.accept.take() {
            w.wake();
        }
    }
}

/// Everything behind the lock.
pub(super) struct Inner {
    pub(super) stack: Stack,
    pub(super) conns: HashMap<ConnId, ConnWaiters>,
    pub(super) listeners: HashMap<ListenerId, ListenerWaiters>,
    /// Datagrams and packets for the application, and their waiters.
    pub(super) delivery: Delivery,
    pub(super) trace: Option<TraceWriter<Sink>>,
    pub(super) pcap: Option<PcapWriter<Sink>>,
    pub(super) stats: DriverStats,
    /// The deadline the driver thread is sleeping towards.
    pub(super) armed: Option<Instant>,
    /// What the socket thread leading the device waits for, while one
    /// does (`leader.rs`): it sleeps in `ppoll` on the device, not on a
    /// condition variable, and is woken through [`Inner::leader_kick`].
    pub(super) leader: Option<Wait>,
    /// The leader is running the stack itself (it sees what it waits for
    /// when it returns: no kick needed).
    pub(super) leader_busy: bool,
    /// The leader's wake-up eventfd (owned by `Shared`, which outlives
    /// this).
    pub(super) leader_kick: std::os::fd::RawFd,
}

impl Inner {
    /// Turns one of the stack's events into wake-ups.
    pub(super) fn dispatch(&mut self, ev: Event) {
        let conn = match ev {
            Event::Incoming(lid) | Event::Request(lid) => {
                if let Some(l) = self.listeners.get_mut(&lid) {
                    l.wake();
                }
                if matches!(self.leader, Some(Wait::Accept(l)) if l == lid) {
                    self.kick_leader();
                }
                return;
            }
            Event::Connected(id) | Event::Readable(id) | Event::Writable(id) => id,
            Event::Closed { id, error } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.closed = Some(error);
                }
                id
            }
            Event::SoftError { id, error } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.soft_error = Some(error);
                }
                return;
            }
            // Nobody waits for these: a reader of urgent data is woken by
            // `Readable`, and delivery trouble is advice to the IP layer.
            Event::Urgent(_) | Event::DeliveryTrouble(_) => return,
            // A kind of event added to the core later wakes nobody until
            // the driver learns what it means.
            _ => return,
        };
        self.wake_conn(conn);
    }

    /// Wakes everyone waiting on a connection, the leader among them.
    pub(super) fn wake_conn(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.wake();
        }
        if matches!(self.leader, Some(Wait::Read(c) | Wait::Write(c)) if c == id) {
            self.kick_leader();
        }
    }

    /// Counts a blocking caller going to sleep on what `on` waits for
    /// (`asleep`), or waking up.
    pub(super) fn sleeping(&mut self, on: Wait, asleep: bool) {
        let n = match on {
            Wait::Read(id) | Wait::Write(id) => self.conns.get_mut(&id).map(|c| &mut c.sleepers),
            Wait::Accept(id) => self.listeners.get_mut(&id).map(|l| &mut l.sleepers),
            Wait::Datagram | Wait::Packet => None,
        };
        if let Some(n) = n {
            *n = if asleep {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            };
        }
    }

    /// Wakes the socket thread leading the device, unless it is running
    /// the stack itself.
    pub(super) fn kick_leader(&self) {
        if self.leader.is_some() && !self.leader_busy {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to the leader's
            // eventfd, which `Shared` keeps open as long as this.
            let _ = unsafe { libc::write(self.leader_kick, one.as_ptr().cast(), 8) };
        }
    }

    /// Wakes every waiter (the driver is stopping).
    pub(super) fn wake_all(&mut self) {
        for c in self.conns.values_mut() {
            c.wake();
        }
        for l in self.listeners.values_mut() {
            l.wake();
        }
        self.delivery.wake_all();
        self.kick_leader();
    }

    /// Writes a `drop` trace event for an arriving packet the driver
    /// discarded (the counter is the caller's).
    pub(super) fn trace_drop(&mut self, now: Instant, reason: &'static str) {
        if let Some(w) = self.trace.as_mut() {
            let ev = TraceEvent {
                at: now,
                conn: None,
                kind: TraceKind::Drop { reason },
            };
            let _ = w.write_event(None, &ev);
        }
    }
}
