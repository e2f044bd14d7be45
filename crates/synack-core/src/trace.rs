//! Trace events: what the core reports about itself, as values.
//!
//! Drivers turn these into JSON Lines (`--trace`), sequence diagrams and
//! statistics. The shape follows `shared/CONTRACT.md` ("The trace").

use core::net::SocketAddr;

use synack_wire::TcpFlags;

use crate::{Instant, State};

/// The connection an event concerns: (local, remote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnTuple {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

impl core::hash::Hash for ConnTuple {
    /// Feeds the 4-tuple to the hasher as one packed run of bytes: one
    /// `write` instead of a dozen small ones (this is on every segment's
    /// demultiplexing path), 13 bytes for IPv4 (two SipHash blocks) and 37
    /// otherwise. Equal tuples give equal bytes; the last byte tells the
    /// forms apart.
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        if let (SocketAddr::V4(l), SocketAddr::V4(r)) = (self.local, self.remote) {
            let mut key = [0u8; 13];
            key[0..4].copy_from_slice(&l.ip().octets());
            key[4..8].copy_from_slice(&r.ip().octets());
            key[8..10].copy_from_slice(&l.port().to_be_bytes());
            key[10..12].copy_from_slice(&r.port().to_be_bytes());
            state.write(&key);
            return;
        }
        let mut key = [0u8; 37];
        let mut put = |at: usize, addr: &SocketAddr| {
            match addr {
                SocketAddr::V4(a) => key[at..at + 4].copy_from_slice(&a.ip().octets()),
                SocketAddr::V6(a) => key[at..at + 16].copy_from_slice(&a.ip().octets()),
            }
            key[at + 16..at + 18].copy_from_slice(&addr.port().to_be_bytes());
        };
        put(0, &self.local);
        put(18, &self.remote);
        key[36] = 1;
        state.write(&key);
    }
}

/// One trace event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// When it happened.
    pub at: Instant,
    /// The connection; `None` when a packet was too broken to name one.
    pub conn: Option<ConnTuple>,
    /// What happened.
    pub kind: TraceKind,
}

/// A segment as the trace shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Control bits.
    pub flags: TcpFlags,
    /// Raw sequence number.
    pub seq: u32,
    /// Raw acknowledgment number.
    pub ack: u32,
    /// Payload bytes.
    pub len: u32,
    /// Window field as on the wire (unscaled).
    pub win: u16,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// The connection changed state.
    State {
        /// Old state.
        from: State,
        /// New state.
        to: State,
    },
    /// A segment was handed to the driver to send.
    Send {
        /// The segment.
        seg: SegmentInfo,
        /// True when it resends sequence space sent before.
        rtx: bool,
    },
    /// A valid segment arrived for this connection (or listener).
    Recv {
        /// The segment.
        seg: SegmentInfo,
    },
    /// An arriving packet was discarded.
    Drop {
        /// Why (a short stable phrase).
        reason: &'static str,
    },
    /// The sender's congestion window or slow-start threshold changed
    /// (traced at most once per segment or timer handled, after it).
    Cwnd {
        /// Congestion window, bytes.
        cwnd: u32,
        /// Slow-start threshold, bytes (`u32::MAX` before the first loss).
        ssthresh: u32,
    },
}
