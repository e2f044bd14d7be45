//! A simulated link: delay, and seeded loss, duplication, reordering and
//! corruption, plus scripted drops for scenarios.

use core::time::Duration;

use synack_wire::Segment;

use crate::record::HostId;

/// Fault settings of a link (both directions alike).
#[derive(Clone, Debug, Default)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Chance that a packet is lost (0 to 1).
    pub loss: f64,
    /// Chance that a packet is delivered twice.
    pub duplicate: f64,
    /// Chance that a packet is held back by up to `reorder_jitter`, so that
    /// later packets overtake it.
    pub reorder: f64,
    /// The extra delay a reordered packet may get.
    pub reorder_jitter: Duration,
    /// Chance that a bit of the packet is flipped on the way.
    pub corrupt: f64,
}

impl LinkConfig {
    /// A perfect link with this one-way delay.
    pub fn with_delay(delay: Duration) -> Self {
        LinkConfig {
            delay,
            ..Self::default()
        }
    }
}

/// A scripted fault: called for every packet that parses as TCP, with the
/// sending host; returning `true` drops the packet. Lets a scenario lose
/// exactly "the first SYN-ACK" or "the final ACK".
pub type DropRule = Box<dyn FnMut(HostId, &Segment<'_>) -> bool>;

/// A scripted hold-up: called for every packet that parses as TCP (and was
/// not dropped), with the sending host; `Some(extra)` delivers the packet
/// `extra` later than the link's delay would. Lets a scenario keep "the
/// first SYN" in the network until after its sender has forgotten it.
pub type HoldRule = Box<dyn FnMut(HostId, &Segment<'_>) -> Option<Duration>>;
