//! Everything that arrives on the device and is not TCP for the stack:
//! UDP datagrams ([`Datagram`]) and other IP packets, queued for the
//! application ([`crate::Net::recv_datagram`], [`crate::Net::recv_packet`])
//! when it asked for them ([`crate::Net::deliver_datagrams`]).
//!
//! The queues are bounded (by count and by bytes): a datagram or packet
//! that arrives when its queue is full is dropped and counted, as a full
//! socket buffer drops it in a kernel. Waiting callers are woken through a
//! `Condvar` (blocking) or `Waker`s (async), under the driver's lock.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar};
use std::task::Waker;

use synack_wire::{emit_udp_packet, udp_packet_len, Ipv4Header, Ipv6Header};

/// Datagrams (and, separately, packets) queued for the application at most.
pub const QUEUE_PACKETS: usize = 1024;
/// Bytes of datagrams (and, separately, of packets) queued at most.
pub const QUEUE_BYTES: usize = 4 << 20;

/// A UDP datagram that arrived on the device (any destination), or one to
/// send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The sender's address and port.
    pub src: SocketAddr,
    /// The address and port it was sent to (any address: on a tunnel, the
    /// original destination).
    pub dst: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Something that takes room in a queue.
pub(crate) trait QueueItem {
    fn bytes(&self) -> usize;
}

impl QueueItem for Datagram {
    fn bytes(&self) -> usize {
        self.payload.len()
    }
}

impl QueueItem for Vec<u8> {
    fn bytes(&self) -> usize {
        self.len()
    }
}

/// A bounded queue for the application, with its waiters.
pub(crate) struct Queue<T> {
    items: VecDeque<T>,
    bytes: usize,
    /// Blocking receivers wait here (with the driver's lock).
    pub(crate) cond: Arc<Condvar>,
    /// Async receivers to wake.
    wakers: Vec<Waker>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            items: VecDeque::new(),
            bytes: 0,
            cond: Arc::default(),
            wakers: Vec::new(),
        }
    }
}

impl<T: QueueItem> Queue<T> {
    /// Queues `item` and wakes the receivers; `false` (the item dropped)
    /// when the queue is full.
    pub(crate) fn push(&mut self, item: T) -> bool {
        let n = item.bytes();
        if self.items.len() >= QUEUE_PACKETS || self.bytes + n > QUEUE_BYTES {
            return false;
        }
        self.bytes += n;
        self.items.push_back(item);
        self.wake();
        true
    }

    /// The oldest item, if any.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        self.bytes -= item.bytes();
        Some(item)
    }

    /// Keeps `waker` to wake when an item comes.
    #[cfg(feature = "tokio")]
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    /// Wakes every receiver.
    pub(crate) fn wake(&mut self) {
        self.cond.notify_all();
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Drops everything queued.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

/// What the driver delivers to the application, and whether it does.
#[derive(Default)]
pub(crate) struct Delivery {
    /// Off by default: then datagrams and packets are dropped and counted.
    pub(crate) on: bool,
    /// UDP datagrams.
    pub(crate) datagrams: Queue<Datagram>,
    /// Other IP packets, whole.
    pub(crate) packets: Queue<Vec<u8>>,
}

impl Delivery {
    /// Wakes every receiver (the driver is stopping).
    pub(crate) fn wake_all(&mut self) {
        self.datagrams.wake();
        self.packets.wake();
    }
}

/// The error `std::net::UdpSocket::send_to` gives for a datagram too large
/// for the path (`EMSGSIZE`).
fn too_large(len: usize, mtu: usize) -> io::Error {
    io::Error::new(
        io::Error::from_raw_os_error(libc::EMSGSIZE).kind(),
        format!("a UDP packet of {len} bytes does not fit the device's MTU of {mtu} (EMSGSIZE)"),
    )
}

/// The IP packet carrying a UDP datagram from `src` to `dst` (TTL `ttl`),
/// or the error a socket would give: `InvalidInput` for addresses of two
/// families, `EMSGSIZE` for a packet larger than `mtu` (IPv4 datagrams are
/// not fragmented here).
pub(crate) fn udp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    payload: &[u8],
    mtu: usize,
) -> io::Result<Vec<u8>> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a datagram from {src} to {dst}: addresses of two families"),
        ));
    }
    let len = udp_packet_len(src.ip(), payload.len());
    if len > mtu {
        return Err(too_large(len, mtu));
    }
    let mut p = vec![0u8; len];
    emit_udp_packet(&mut p, src, dst, ttl, payload).map_err(|e| too_large_or(e, len, mtu))?;
    Ok(p)
}

fn too_large_or(e: synack_wire::WireError, len: usize, mtu: usize) -> io::Error {
    match e {
        synack_wire::WireError::BufferTooSmall => too_large(len, mtu),
        e => io::Error::new(io::ErrorKind::InvalidInput, e.reason()),
    }
}

/// Checks a raw packet the application sends: an IPv4 or IPv6 packet
/// whose header parses and that fits the MTU.
pub(crate) fn check_packet(packet: &[u8], mtu: usize) -> io::Result<()> {
    if packet.len() > mtu {
        return Err(io::Error::new(
            io::Error::from_raw_os_error(libc::EMSGSIZE).kind(),
            format!(
                "a packet of {} bytes does not fit the device's MTU of {mtu} (EMSGSIZE)",
                packet.len()
            ),
        ));
    }
    ip_header_ok(packet).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an IP packet: {why}"),
        )
    })
}

/// `Ok` when `packet` starts with a well-formed IPv4 or IPv6 header that
/// fits it; else why not.
pub(crate) fn ip_header_ok(packet: &[u8]) -> Result<(), &'static str> {
    let r = match packet.first().map(|b| b >> 4) {
        Some(4) => Ipv4Header::parse(packet).map(|_| ()),
        Some(6) => Ipv6Header::parse(packet).map(|_| ()),
        _ => Err(synack_wire::WireError::BadIpVersion),
    };
    r.map_err(|e| e.reason())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn queues_are_bounded_by_count_and_bytes() {
        let mut q: Queue<Vec<u8>> = Queue::default();
        for _ in 0..QUEUE_PACKETS {
            assert!(q.push(vec![0; 1]));
        }
        assert!(!q.push(vec![0; 1]));
        q.clear();
        let big = QUEUE_BYTES / 4;
        for _ in 0..4 {
            assert!(q.push(vec![0; big]));
        }
        assert!(!q.push(vec![0; 1]));
        assert_eq!(q.pop().map(|p| p.len()), Some(big));
        assert!(q.push(vec![0; 1]));
    }

    #[test]
    fn datagrams_too_large_for_the_mtu_are_emsgsize() {
        let p = udp_packet(sa("10.0.0.1:53"), sa("10.0.0.2:5353"), 64, &[1; 1472], 1500).unwrap();
        assert_eq!(p.len(), 1500);
        let e =
            udp_packet(sa("10.0.0.1:53"), sa("10.0.0.2:5353"), 64, &[1; 1473], 1500).unwrap_err();
        assert!(e.to_string().contains("EMSGSIZE"), "{e}");
        assert_eq!(
            e.kind(),
            io::Error::from_raw_os_error(libc::EMSGSIZE).kind()
        );
        let e = udp_packet(sa("10.0.0.1:53"), sa("[::1]:53"), 64, b"", 1500).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = udp_packet(sa("[::1]:1"), sa("[::1]:2"), 64, &[0; 70_000], 1 << 20).unwrap_err();
        assert!(e.to_string().contains("EMSGSIZE"), "{e}");
    }

    #[test]
    fn raw_packets_must_be_ip() {
        let p = udp_packet(sa("[fd00::1]:1"), sa("[fd00::2]:2"), 64, b"x", 1500).unwrap();
        assert!(check_packet(&p, 1500).is_ok());
        assert!(check_packet(&p, 10).is_err());
        assert!(check_packet(&[], 1500).is_err());
        assert!(check_packet(&[0x45, 0, 0], 1500).is_err());
        assert_eq!(ip_header_ok(&[0x20; 40]), Err("bad IP version"));
    }
}
