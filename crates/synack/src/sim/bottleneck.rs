//! A bottleneck: a link of a set rate in front of each receiving host, with
//! a drop-tail queue and optional ECN marking (RFC 3168 §5) above a
//! threshold.
//!
//! The queue is the router's output port toward a host: every packet
//! addressed to that host, from whichever sender, waits in the same queue
//! (so flows from several hosts to one receiver share it, as on a dumbbell).
//! A packet leaves when the packets ahead of it have been serialised at the
//! rate: departure = max(arrival, last departure) + size·8/rate. Time is
//! kept in nanoseconds so that serialisation times of odd sizes do not
//! accumulate rounding error.

use std::collections::VecDeque;

use core::time::Duration;

use synack_core::Instant;

/// How much a queue may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueLimit {
    /// At most this many bytes of IP packets waiting (including the one
    /// being serialised).
    Bytes(usize),
    /// At most this many packets waiting.
    Packets(usize),
}

impl QueueLimit {
    /// True when a queue of `packets` holding `bytes` may not take one more
    /// packet of `len` bytes.
    fn full(self, packets: usize, bytes: usize, len: usize) -> bool {
        match self {
            QueueLimit::Bytes(max) => bytes + len > max,
            QueueLimit::Packets(max) => packets + 1 > max,
        }
    }

    /// True when a queue of `packets` holding `bytes` is above this level.
    fn exceeded(self, packets: usize, bytes: usize) -> bool {
        match self {
            QueueLimit::Bytes(max) => bytes > max,
            QueueLimit::Packets(max) => packets > max,
        }
    }
}

/// Settings of the bottleneck in front of each host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bottleneck {
    /// Rate of each direction, bits per second (at least 1).
    pub rate_bps: u64,
    /// The drop-tail queue's size: a packet that does not fit is dropped.
    pub queue: QueueLimit,
    /// Congestion is signalled for packets that arrive while the queue holds
    /// more than this: an ECN-capable packet gets CE, any other is dropped
    /// (RFC 3168 §5: a router drops where it would mark a Not-ECT packet).
    /// `None`: drop-tail only.
    pub ce_threshold: Option<QueueLimit>,
}

impl Bottleneck {
    /// A bottleneck of `rate_bps` with a drop-tail queue of `queue`.
    pub fn new(rate_bps: u64, queue: QueueLimit) -> Self {
        Bottleneck {
            rate_bps,
            queue,
            ce_threshold: None,
        }
    }

    /// A bottleneck of `rate_bps` whose queue holds one bandwidth-delay
    /// product for a round trip of `rtt` (the classic buffer size), but at
    /// least `floor` bytes.
    pub fn with_bdp_queue(rate_bps: u64, rtt: Duration, floor: usize) -> Self {
        let mut b = Bottleneck::new(rate_bps, QueueLimit::Bytes(0));
        b.queue = QueueLimit::Bytes(b.bdp_bytes(rtt).max(floor));
        b
    }

    /// The bandwidth-delay product in bytes for a round-trip time `rtt`.
    pub fn bdp_bytes(&self, rtt: Duration) -> usize {
        (u128::from(self.rate_bps) * rtt.as_nanos() / 8 / 1_000_000_000) as usize
    }
}

/// What the queue does with an arriving packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The queue is full (or above the marking threshold and the packet is
    /// not ECN-capable): dropped.
    Dropped,
    /// Queued: it has left the bottleneck at `departs`; `ce` says it was
    /// marked Congestion Experienced on the way.
    Queued {
        /// When its last bit leaves the bottleneck.
        departs: Instant,
        /// Marked CE.
        ce: bool,
    },
}

/// The state of one queue: its backlog and when the link is next free.
#[derive(Clone, Debug, Default)]
pub struct Queue {
    /// When the last queued packet's last bit leaves, nanoseconds.
    busy_until_ns: u64,
    /// Departure (ns) and size of every packet still in the queue.
    backlog: VecDeque<(u64, usize)>,
    backlog_bytes: usize,
}

impl Queue {
    /// Offers a packet of `len` bytes arriving at `now`; `ect` says its ECN
    /// field is ECT(0), ECT(1) or CE (RFC 3168 §5), so that it may be marked
    /// rather than dropped above the threshold.
    pub fn admit(&mut self, cfg: &Bottleneck, now: Instant, len: usize, ect: bool) -> Admission {
        let now_ns = now.micros() * 1000;
        while let Some(&(departs, size)) = self.backlog.front() {
            if departs > now_ns {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= size;
        }
        let (packets, bytes) = (self.backlog.len(), self.backlog_bytes);
        if cfg.queue.full(packets, bytes, len) {
            return Admission::Dropped;
        }
        let congested = cfg.ce_threshold.is_some_and(|t| t.exceeded(packets, bytes));
        if congested && !ect {
            return Admission::Dropped;
        }
        let start = self.busy_until_ns.max(now_ns);
        let serialise = (len as u128 * 8 * 1_000_000_000).div_ceil(u128::from(cfg.rate_bps.max(1)));
        let departs_ns = start + serialise as u64;
        self.busy_until_ns = departs_ns;
        self.backlog.push_back((departs_ns, len));
        self.backlog_bytes += len;
        Admission::Queued {
            departs: Instant(departs_ns.div_ceil(1000)),
            ce: congested,
        }
    }

    /// Packets and bytes waiting at `now` (as of the last admission).
    pub fn backlog(&self) -> (usize, usize) {
        (self.backlog.len(), self.backlog_bytes)
    }
}

/// The ECN field of an IPv4 or IPv6 packet (RFC 3168 §5: 0 Not-ECT,
/// 1 ECT(1), 2 ECT(0), 3 CE), or `None` for anything else.
pub fn ecn_field(packet: &[u8]) -> Option<u8> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => packet.get(1).map(|tos| tos & 0x03),
        Some(6) => packet.get(1).map(|b| (b >> 4) & 0x03),
        _ => None,
    }
}

/// Sets the ECN field of an ECN-capable packet to CE (RFC 3168 §5) and, for
/// IPv4, mends the header checksum for the changed word (RFC 1624 eqn. 3).
/// IPv6 has no header checksum, and the TCP checksum does not cover the
/// traffic class. Packets that are Not-ECT (or not IP) are left alone: a
/// router must not mark them.
pub fn mark_ce(packet: &mut [u8]) {
    match ecn_field(packet) {
        Some(1..=2) => {}
        _ => return,
    }
    if packet[0] >> 4 == 6 {
        packet[1] |= 0x30;
        return;
    }
    if packet.len() < 20 {
        return;
    }
    let old = u16::from_be_bytes([packet[0], packet[1]]);
    packet[1] |= 0x03;
    let new = u16::from_be_bytes([packet[0], packet[1]]);
    let hc = u16::from_be_bytes([packet[10], packet[11]]);
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    packet[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use synack_wire::{emit_packet, internet_checksum, packet_len, parse_packet, TcpRepr};

    const MBIT: u64 = 1_000_000;

    fn departs(a: Admission) -> Instant {
        match a {
            Admission::Queued { departs, .. } => departs,
            Admission::Dropped => panic!("dropped"),
        }
    }

    /// Back-to-back packets leave one serialisation time apart, and an idle
    /// link starts a packet at once.
    #[test]
    fn packets_are_serialised_at_the_rate() {
        let cfg = Bottleneck::new(10 * MBIT, QueueLimit::Packets(100));
        let mut q = Queue::default();
        let t0 = Instant::from_millis(5);
        // 1500 bytes at 10 Mbit/s: 1.2 ms each.
        for k in 1..=10u64 {
            let d = departs(q.admit(&cfg, t0, 1500, false));
            assert_eq!(d.micros(), t0.micros() + k * 1200);
        }
        // After the queue drained, the link is idle: no wait.
        let later = Instant::from_secs(1);
        assert_eq!(
            departs(q.admit(&cfg, later, 125, false)).micros(),
            1_000_100
        );
        // Odd sizes do not drift: 1000 packets of 333 bytes at 7 Mbit/s.
        let cfg = Bottleneck::new(7 * MBIT, QueueLimit::Packets(10_000));
        let mut q = Queue::default();
        let mut last = Instant::ZERO;
        for _ in 0..1000 {
            last = departs(q.admit(&cfg, Instant::ZERO, 333, false));
        }
        // Exactly 380,571.43 µs; each packet's time is rounded up to the
        // nanosecond, so a thousand of them are at most 1 µs late.
        let exact_us = 1000 * 333 * 8 / 7;
        assert!(
            (exact_us..=exact_us + 2).contains(&last.micros()),
            "{last:?}"
        );
    }

    /// The queue takes exactly its configured size and drops the next
    /// packet; it takes packets again as they leave.
    #[test]
    fn queue_overflows_at_exactly_its_size() {
        let cfg = Bottleneck::new(MBIT, QueueLimit::Packets(8));
        let mut q = Queue::default();
        for _ in 0..8 {
            assert!(matches!(
                q.admit(&cfg, Instant::ZERO, 1000, false),
                Admission::Queued { .. }
            ));
        }
        assert_eq!(
            q.admit(&cfg, Instant::ZERO, 1000, false),
            Admission::Dropped
        );
        assert_eq!(q.backlog(), (8, 8000));
        // 1000 bytes at 1 Mbit/s is 8 ms: one has left at 8 ms.
        let t = Instant::from_millis(8);
        assert!(matches!(
            q.admit(&cfg, t, 1000, false),
            Admission::Queued { .. }
        ));
        assert_eq!(q.admit(&cfg, t, 1000, false), Admission::Dropped);

        let cfg = Bottleneck::new(MBIT, QueueLimit::Bytes(4500));
        let mut q = Queue::default();
        for _ in 0..3 {
            assert!(matches!(
                q.admit(&cfg, Instant::ZERO, 1500, false),
                Admission::Queued { .. }
            ));
        }
        assert_eq!(q.backlog(), (3, 4500), "exactly full");
        assert_eq!(q.admit(&cfg, Instant::ZERO, 1, false), Admission::Dropped);
    }

    /// Above the threshold an ECN-capable packet is marked and a Not-ECT one
    /// dropped; at or below it neither.
    #[test]
    fn congestion_is_signalled_above_the_threshold() {
        let cfg = Bottleneck {
            ce_threshold: Some(QueueLimit::Packets(2)),
            ..Bottleneck::new(MBIT, QueueLimit::Packets(10))
        };
        let mut q = Queue::default();
        let ce = |a: Admission| matches!(a, Admission::Queued { ce: true, .. });
        assert!(!ce(q.admit(&cfg, Instant::ZERO, 100, true)));
        assert!(!ce(q.admit(&cfg, Instant::ZERO, 100, true)));
        assert!(
            !ce(q.admit(&cfg, Instant::ZERO, 100, false)),
            "2 waiting: not above"
        );
        assert!(ce(q.admit(&cfg, Instant::ZERO, 100, true)));
        assert_eq!(q.admit(&cfg, Instant::ZERO, 100, false), Admission::Dropped);
        assert_eq!(q.backlog().0, 4);
    }

    fn packet(src: IpAddr, dst: IpAddr, tos: u8) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: 7,
            ..TcpRepr::default()
        };
        let mut p = vec![0u8; packet_len(src, &repr, 3)];
        let n = emit_packet(&mut p, src, dst, 64, tos, &repr, b"xyz").unwrap();
        p.truncate(n);
        p
    }

    /// CE goes into the ECN field of ECT packets only, the IPv4 header
    /// checksum still verifies, the DSCP bits are kept and the TCP segment
    /// still parses.
    #[test]
    fn ce_marking_keeps_the_packet_valid() {
        let v4 = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        for tos in [0x02u8, 0x01, 0xb8 | 0x02, 0x03, 0x00, 0xb8] {
            let mut p = packet(v4.0, v4.1, tos);
            mark_ce(&mut p);
            let want = if tos & 3 == 0 { tos } else { tos | 3 };
            assert_eq!(p[1], want, "tos {tos:#04x}");
            assert_eq!(internet_checksum(0, &p[..20]), 0, "header checksum");
            assert!(parse_packet(&p).is_ok());
        }
        let v6 = (
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        );
        for tc in [0x02u8, 0x01, 0x00, 0xb8 | 0x02] {
            let mut p = packet(v6.0, v6.1, tc);
            assert_eq!(ecn_field(&p), Some(tc & 3));
            mark_ce(&mut p);
            let want = if tc & 3 == 0 { tc & 3 } else { 3 };
            assert_eq!(ecn_field(&p), Some(want), "tc {tc:#04x}");
            assert!(parse_packet(&p).is_ok());
        }
    }

    #[test]
    fn bdp_of_a_path() {
        let b = Bottleneck::new(100 * MBIT, QueueLimit::Packets(1));
        assert_eq!(b.bdp_bytes(Duration::from_millis(50)), 625_000);
    }
}
