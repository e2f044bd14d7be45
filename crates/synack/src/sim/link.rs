//! A simulated link: delay, and seeded loss, duplication, reordering and
//! corruption, optionally a bottleneck (rate, queue, ECN marking) and
//! bursts of loss, plus scripted drops for scenarios.

use core::time::Duration;

use synack_wire::Segment;

use super::{Bottleneck, BurstLoss};
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
    /// A rate limit with a queue in front of each receiving host (see
    /// [`Bottleneck`]); `None`: packets cross in no time but the delay.
    pub bottleneck: Option<Bottleneck>,
    /// Bursts of loss (see [`BurstLoss`]), on top of `loss`; `None`: losses
    /// are independent.
    pub burst_loss: Option<BurstLoss>,
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
/// A scripted rewrite of the TCP window field: called for every packet that
/// parses as TCP (after the drop rule), with the sending host; `Some(w)`
/// puts `w` in the window field and mends the checksum. Lets a test play a
/// receiver whose window changes on every ACK, as Linux's receive-buffer
/// autotuning grows it.
pub type WindowRule = Box<dyn FnMut(HostId, &Segment<'_>) -> Option<u16>>;

/// Puts `window` in the TCP window field of an IPv4 or IPv6 packet and
/// updates the TCP checksum to match (RFC 1624 eqn. 3:
/// HC' = ~(~HC + ~m + m')). Packets too short to hold a TCP header are left
/// alone.
pub(crate) fn rewrite_window(packet: &mut [u8], window: u16) {
    let tcp = match packet.first().map(|b| b >> 4) {
        Some(4) => usize::from(packet[0] & 0x0f) * 4,
        Some(6) => 40,
        _ => return,
    };
    let Some(field) = packet.get_mut(tcp + 14..tcp + 18) else {
        return;
    };
    let old = u16::from_be_bytes([field[0], field[1]]);
    let hc = u16::from_be_bytes([field[2], field[3]]);
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(window);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    field[..2].copy_from_slice(&window.to_be_bytes());
    field[2..].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::rewrite_window;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use synack_wire::{emit_packet, packet_len, parse_packet, TcpFlags, TcpRepr};

    /// The rewritten packet still parses, checksum and all, with the new
    /// window, for both IP versions and whatever the old window was.
    #[test]
    fn rewritten_window_keeps_the_checksum_valid() {
        let v4 = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        let v6 = (
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        );
        for (src, dst) in [v4, v6] {
            for (old, new) in [(0u16, 1u16), (65535, 0), (1234, 65535), (7, 7)] {
                let repr = TcpRepr {
                    src_port: 1,
                    dst_port: 2,
                    seq: 5,
                    ack: 9,
                    flags: TcpFlags::ACK,
                    window: old,
                    ..TcpRepr::default()
                };
                let payload = b"abc";
                let mut p = vec![0u8; packet_len(src, &repr, payload.len())];
                let n = emit_packet(&mut p, src, dst, 64, 0, &repr, payload).unwrap();
                p.truncate(n);
                rewrite_window(&mut p, new);
                let seg = parse_packet(&p).expect("still valid");
                assert_eq!(seg.tcp.window, new);
                assert_eq!(seg.payload, payload);
            }
        }
    }
}
