//! smoltcp in the same harness: an `Interface` and a `SocketSet` per host,
//! over a [`smoltcp::phy::Device`] that reads and writes the same [`Link`]
//! queues, with smoltcp's clock driven by the same virtual clock.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use smoltcp::iface::{
    Config as IfaceConfig, Interface, PollIngressSingleResult, PollResult, SocketSet,
};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};

use crate::pipe::{earliest, Link};
use crate::synack_side::{client_ips, SERVER_IP};
use crate::MTU;

/// A medium-IP device whose packets are the harness's: the driver moves
/// arrived packets into `rx` and sent ones out of `tx`.
///
/// Packet buffers are reused as the synack harness reuses them: a received
/// packet's buffer goes back, once smoltcp has read it, to the pool of the
/// device that sent it (synack's harness hands it to the sending stack's
/// `Stack::recycle`), and a transmit takes its buffer from its own pool.
/// Without it, smoltcp would pay a malloc, a memset and a free per packet
/// that synack does not; with each buffer returned to the receiver instead,
/// a one-way transfer would still pay them (the sender's pool empties, the
/// receiver's overflows).
pub struct PipeDevice {
    /// Packets that arrived, oldest first.
    pub rx: VecDeque<Vec<u8>>,
    /// Packets sent since the driver last emptied it.
    pub tx: Vec<Vec<u8>>,
    /// Spare buffers this device transmits in.
    pool: SharedPool,
    /// Where the buffers of the packets it has read go: the sender's pool
    /// ([`Pair`] joins the two devices so), its own until then.
    returns: SharedPool,
}

impl Default for PipeDevice {
    fn default() -> Self {
        let pool = SharedPool::default();
        PipeDevice {
            rx: VecDeque::new(),
            tx: Vec::new(),
            returns: Rc::clone(&pool),
            pool,
        }
    }
}

/// A pool of spare packet buffers, shared between the device that takes
/// from it and the one that gives back to it.
type SharedPool = Rc<RefCell<Pool>>;

/// Spare packet buffers, bounded by their bytes of capacity as synack's
/// packet pool is (16 MiB; a count bound would let a burst of small
/// buffers crowd out full-sized ones, or a 4 MiB window's worth of
/// full-sized ones overflow it).
#[derive(Default)]
pub struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

/// Bytes of capacity the pool keeps at most (synack's outbox: 16 MiB).
const POOL_BYTES: usize = 16 << 20;

impl Pool {
    fn take(&mut self) -> Vec<u8> {
        let buf = self.bufs.pop().unwrap_or_default();
        self.bytes -= buf.capacity();
        buf
    }

    fn give(&mut self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap >= 64 && self.bytes + cap <= POOL_BYTES {
            self.bytes += cap;
            self.bufs.push(buf);
        }
    }
}

/// The receive half of a token pair: one arrived packet, and the pool its
/// buffer returns to.
pub struct Rx<'a>(Vec<u8>, &'a RefCell<Pool>);

/// The transmit half of a token pair: a slot on the outgoing queue.
pub struct Tx<'a>(&'a mut Vec<Vec<u8>>, &'a RefCell<Pool>);

impl phy::RxToken for Rx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let r = f(&self.0);
        self.1.borrow_mut().give(self.0);
        r
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut packet = self.1.borrow_mut().take();
        // smoltcp writes all `len` bytes; only a buffer too short is grown
        // (zero-filled), as synack's outbox does.
        if packet.len() < len {
            packet.resize(len, 0);
        } else {
            packet.truncate(len);
        }
        let r = f(&mut packet);
        self.0.push(packet);
        r
    }
}

impl phy::Device for PipeDevice {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: SmolInstant) -> Option<(Rx<'_>, Tx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((Rx(p, &self.returns), Tx(&mut self.tx, &self.pool)))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx, &self.pool))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        // Compute and verify every checksum, as synack does.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

/// One smoltcp host: its device, interface and sockets.
pub struct Host {
    /// The device on the link.
    pub dev: PipeDevice,
    /// The interface.
    pub iface: Interface,
    /// Its sockets.
    pub sockets: SocketSet<'static>,
    /// Whether an egress since the application last ran may have changed
    /// a socket (told to it with the next poll's changes).
    egress_changed: bool,
}

impl Host {
    fn new(addrs: &[Ipv4Address], seed: u64) -> Self {
        let mut dev = PipeDevice::default();
        let mut cfg = IfaceConfig::new(HardwareAddress::Ip);
        cfg.random_seed = seed;
        let mut iface = Interface::new(cfg, &mut dev, SmolInstant::from_micros(0));
        iface.update_ip_addrs(|a| {
            for addr in addrs {
                a.push(IpCidr::new(IpAddress::Ipv4(*addr), 8))
                    .expect("at most MAX_CLIENT_ADDRS addresses");
            }
        });
        Host {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            egress_changed: false,
        }
    }
}

/// An application on one smoltcp host: smoltcp has no events, so it looks
/// at its sockets after every poll that may have changed them.
pub trait App {
    /// Called after a poll; `changed` is false when smoltcp guarantees no
    /// socket changed.
    fn after_poll(&mut self, now: SmolInstant, host: &mut Host, changed: bool);
}

/// An application that does nothing.
pub struct NoApp;

impl App for NoApp {
    fn after_poll(&mut self, _: SmolInstant, _: &mut Host, _: bool) {}
}

/// Host A (the client, 10.0.0.1) and host B (the server) joined by a link.
pub struct Pair {
    /// Host A.
    pub a: Host,
    /// Host B.
    pub b: Host,
    /// The link between them.
    pub link: Link,
    /// The virtual clock, microseconds.
    pub now: u64,
    /// A real-time limit: `step` returns false once it has passed.
    pub deadline: Option<std::time::Instant>,
}

/// The most addresses a smoltcp client host gets (smoltcp's
/// `iface-max-addr-count-8`): 8 × 64,512 connections.
pub const MAX_CLIENT_ADDRS: usize = 8;

impl Pair {
    /// Two hosts on the link; A gets the client addresses that `total`
    /// connections need ([`crate::synack_side::client_ips`]).
    pub fn new(total: u64) -> Self {
        let addrs: Vec<Ipv4Address> = client_ips(total)
            .into_iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let (mut a, mut b) = (
            Host::new(&addrs, 0x5eed_000a),
            Host::new(&[SERVER_IP], 0x5eed_000b),
        );
        // Each packet's buffer back to its sender, as synack's harness does.
        a.dev.returns = Rc::clone(&b.dev.pool);
        b.dev.returns = Rc::clone(&a.dev.pool);
        Pair {
            a,
            b,
            link: Link::default(),
            now: 0,
            deadline: None,
        }
    }

    /// The virtual clock as smoltcp's instant.
    pub fn instant(&self) -> SmolInstant {
        SmolInstant::from_micros(self.now as i64)
    }

    /// Lets both interfaces send everything their sockets have queued, and
    /// puts it on the link.
    pub fn flush(&mut self) {
        let now = self.instant();
        self.a.egress_changed |= egress(&mut self.a, now);
        self.b.egress_changed |= egress(&mut self.b, now);
        for p in self.a.dev.tx.drain(..) {
            self.link.ab.push(self.now, p);
        }
        for p in self.b.dev.tx.drain(..) {
            self.link.ba.push(self.now, p);
        }
    }

    /// The step of [`crate::synack_side::Pair::step`] as smoltcp's own
    /// lower-level API lets it be driven at its best: to the next instant
    /// something happens (a packet arrives, or `poll_at` says a socket has
    /// something to send or a timer due), take in the arrived packets
    /// (`poll_ingress_single`), let the applications look at their sockets,
    /// then send (`poll_egress` until it has nothing left), so that an ACK
    /// leaves with the application's reply, as synack's does. Not in
    /// batches of 64 as synack's: smoltcp's applications find their work by
    /// looking at every socket, so each extra round of them would cost
    /// smoltcp a scan of all its sockets.
    pub fn step(&mut self, app_a: &mut impl App, app_b: &mut impl App) -> bool {
        let now = self.instant();
        let at = |h: &mut Host| {
            h.iface
                .poll_at(now, &h.sockets)
                .map(|t| t.total_micros().max(0) as u64)
        };
        let (ta, tb) = (at(&mut self.a), at(&mut self.b));
        let Some(next) = earliest(&[self.link.ab.next_due(), self.link.ba.next_due(), ta, tb])
        else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.instant();
        while let Some(p) = self.link.ab.pop_due(self.now) {
            self.b.dev.rx.push_back(p);
        }
        while let Some(p) = self.link.ba.pop_due(self.now) {
            self.a.dev.rx.push_back(p);
        }
        for (h, app) in [
            (&mut self.b, app_b as &mut dyn App),
            (&mut self.a, app_a as &mut dyn App),
        ] {
            let Some(changed) = ingress(h, now, self.deadline) else {
                return false;
            };
            let changed = changed || std::mem::take(&mut h.egress_changed);
            app.after_poll(now, h, changed);
        }
        self.flush();
        true
    }
}

/// Every arrived packet through `Interface::poll_ingress_single`, one at a
/// time so that a real-time `deadline` can stop it (smoltcp looks for a
/// packet's socket by scanning every socket, so one poll with 100,000
/// packets queued against 200,000 sockets takes minutes). Whether any
/// socket may have changed, or `None` when the deadline passed.
fn ingress(h: &mut Host, now: SmolInstant, deadline: Option<std::time::Instant>) -> Option<bool> {
    let mut changed = false;
    let mut n = 0u32;
    loop {
        match h.iface.poll_ingress_single(now, &mut h.dev, &mut h.sockets) {
            PollIngressSingleResult::None => break,
            PollIngressSingleResult::PacketProcessed => {}
            PollIngressSingleResult::SocketStateChanged => changed = true,
        }
        n += 1;
        if n.is_multiple_of(64) && deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return None;
        }
    }
    Some(changed)
}

/// `Interface::poll_egress` until no socket has anything left to send (it
/// sends at most one packet per socket a call). Whether any socket may
/// have changed.
fn egress(h: &mut Host, now: SmolInstant) -> bool {
    let mut changed = false;
    while h.iface.poll_egress(now, &mut h.dev, &mut h.sockets) == PollResult::SocketStateChanged {
        changed = true;
    }
    changed
}

/// A TCP socket with `buffer` bytes of receive and of send buffer.
pub fn socket(buffer: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; buffer]),
        tcp::SocketBuffer::new(vec![0u8; buffer]),
    )
}

/// A std socket address as a smoltcp endpoint (IPv4 only).
pub fn endpoint(addr: SocketAddr) -> IpEndpoint {
    match addr.ip() {
        IpAddr::V4(v4) => IpEndpoint::new(IpAddress::Ipv4(v4), addr.port()),
        IpAddr::V6(_) => panic!("the harness is IPv4 only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_bounded_by_bytes() {
        let mut pool = Pool::default();
        pool.give(vec![0; 32]); // too small to keep
        assert_eq!(pool.bufs.len(), 0);
        for _ in 0..(POOL_BYTES / 1500) + 10 {
            pool.give(Vec::with_capacity(1500));
        }
        assert!(pool.bytes <= POOL_BYTES && pool.bytes > POOL_BYTES - 1500);
        let held = pool.bytes;
        assert_eq!(pool.take().capacity(), 1500);
        assert_eq!(pool.bytes, held - 1500);
    }

    #[test]
    fn a_read_packet_returns_to_its_sender() {
        let pair = Pair::new(1);
        assert!(Rc::ptr_eq(&pair.a.dev.returns, &pair.b.dev.pool));
        assert!(Rc::ptr_eq(&pair.b.dev.returns, &pair.a.dev.pool));
        // A device on its own keeps what it reads.
        let dev = PipeDevice::default();
        assert!(Rc::ptr_eq(&dev.returns, &dev.pool));
    }
}
