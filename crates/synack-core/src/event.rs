//! What the core tells the application.

use crate::Error;

/// Handle of a connection inside a [`crate::Stack`]. Stale handles (of a
/// connection that was closed and released) are detected, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

/// Handle of a listener inside a [`crate::Stack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub(crate) u32);

/// Handle of a connection request held by a [`crate::Handshake::Defer`]
/// listener (see [`crate::Stack::poll_request`]). Never reused: a request
/// decided, expired or reset leaves its handle stale for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

/// An application-visible event, drained with [`crate::Stack::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A connection is waiting in the listener's accept queue.
    Incoming(ListenerId),
    /// A connection request is waiting on a [`crate::Handshake::Defer`]
    /// listener: take it with [`crate::Stack::poll_request`].
    Request(ListenerId),
    /// An active open completed, or a connection made by
    /// [`crate::Stack::accept_request`]: the connection is ESTABLISHED.
    Connected(ConnId),
    /// New data (or the peer's FIN, read as end of stream) can be read.
    Readable(ConnId),
    /// Room opened in the send buffer after a send that did not fit.
    Writable(ConnId),
    /// The connection reached CLOSED; `error` says why when it did not end
    /// in an orderly close (refused, reset, timed out).
    Closed {
        /// The connection.
        id: ConnId,
        /// Why, when not orderly.
        error: Option<Error>,
    },
    /// The peer's urgent pointer appeared or advanced (MUST-32): see
    /// [`crate::Stack::urgent_mark`].
    Urgent(ConnId),
    /// An ICMP soft error arrived for the connection (MUST-47, SHLD-25): it
    /// stays open; the error is what a later timeout reports.
    SoftError {
        /// The connection.
        id: ConnId,
        /// What the ICMP message said.
        error: Error,
    },
    /// Retransmissions passed the R1 threshold: delivery trouble, the
    /// connection is still open (RFC 9293 §3.8.3, SHLD-9).
    DeliveryTrouble(ConnId),
}
