//! What a run records: the core's trace events, tagged with the host they
//! came from, and what the simulated link did to each packet.
//!
//! Records are the single source for every view of a run: the JSON Lines
//! trace (`--trace`), the terminal sequence diagram and the SVG.

use synack_core::{Instant, TraceEvent};

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
}

impl Record {
    /// The virtual time of the record.
    pub fn at(&self) -> Instant {
        match self {
            Record::Trace { event, .. } => event.at,
            Record::Link { at, .. } => *at,
        }
    }
}
