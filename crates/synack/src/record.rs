//! What a run records: the core's trace events, tagged with the host they
//! came from, and what the simulated link did to each packet.
//!
//! Records are the single source for every view of a run: the JSON Lines
//! trace (`--trace`), the terminal sequence diagram and the SVG.

use core::time::Duration;

use synack_core::{Instant, State, TraceEvent, TraceKind};

/// Index of a host in a simulation (0 is the client in `demo`, 1 the server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub usize);

/// What the link did to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkFate {
    /// Dropped: it never arrives.
    Lost,
    /// Delivered twice.
    Duplicated,
    /// Delivered with flipped bits (the receiver should drop it as a bad checksum).
    Corrupted,
    /// Held in the network this much longer than the link's delay.
    Delayed(Duration),
}

/// One line of a run's history, in the order things happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A trace event from a host's stack.
    Trace {
        /// Which host.
        host: HostId,
        /// The event (its `at` is the virtual time).
        event: TraceEvent,
    },
    /// The link's verdict on the packet that `from` sent last: always
    /// follows that packet's `Send` trace record from the same host.
    Link {
        /// When the packet left.
        at: Instant,
        /// The sending host.
        from: HostId,
        /// What happened to it.
        fate: LinkFate,
    },
    /// What a scenario or the simulator says about a host at a point of the
    /// run (a restart, or why the next segment matters): drawn as a note on
    /// the host's lifeline; it is not part of the stack's trace.
    Note {
        /// When.
        at: Instant,
        /// The host it concerns.
        host: HostId,
        /// The note, one short line.
        text: String,
    },
}

impl Record {
    /// The virtual time of the record.
    pub fn at(&self) -> Instant {
        match self {
            Record::Trace { event, .. } => event.at,
            Record::Link { at, .. } | Record::Note { at, .. } => *at,
        }
    }
}

/// The states a host's connections went through, in order, starting with
/// the first `from` state (one list across all its connections).
pub fn states(records: &[Record], host: HostId) -> Vec<State> {
    let mut out = Vec::new();
    for r in records {
        if let Record::Trace { host: h, event } = r {
            if *h != host {
                continue;
            }
            if let TraceKind::State { from, to } = event.kind {
                if out.is_empty() {
                    out.push(from);
                }
                out.push(to);
            }
        }
    }
    out
}
