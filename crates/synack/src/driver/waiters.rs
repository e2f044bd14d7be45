//! Who waits for what, behind the driver's lock: the stack with the
//! wake-ups of every socket ([`Inner`]), and the stack's events turned
//! into wake-ups ([`Inner::dispatch`]).

use std::collections::HashMap;
use std::sync::{Arc, Condvar};
use std::task::Waker;

use synack_core::{ConnId, Error, Event, Instant, ListenerId, Stack, TraceEvent, TraceKind};

use super::{DriverStats, Sink};
use crate::datagram::Delivery;
use crate::pcap::PcapWriter;
use crate::trace_json::TraceWriter;

/// Wake-ups of one connection.
#[derive(Default)]
pub(super) struct ConnWaiters {
    /// Blocking callers wait here (with the `Inner` lock).
    pub(super) cond: Arc<Condvar>,
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
        self.cond.notify_all();
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
    /// An async acceptor to wake.
    pub(super) accept: Option<Waker>,
}

impl ListenerWaiters {
    /// Wakes everyone waiting to accept.
    pub(super) fn wake(&mut self) {
        self.cond.notify_all();
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
}

impl Inner {
    /// Turns one of the stack's events into wake-ups.
    pub(super) fn dispatch(&mut self, ev: Event) {
        let conn = match ev {
            Event::Incoming(lid) => {
                if let Some(l) = self.listeners.get_mut(&lid) {
                    l.wake();
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
        if let Some(c) = self.conns.get_mut(&conn) {
            c.wake();
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
