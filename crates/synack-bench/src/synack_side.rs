//! synack in the harness: two [`Stack`]s exchanging IP packets over a
//! [`Link`], on the virtual clock.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use synack_core::{Config, Event, Instant, Stack};

use crate::pipe::{earliest, Link, Pipe};
use crate::MTU;

/// The server's address (host B).
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// The port servers listen on.
pub const SERVER_PORT: u16 = 7;

/// Packets handed to a stack at once: as many as synack's TUN driver reads
/// in one go (and Linux's NAPI budget).
pub const BATCH: usize = 64;

/// Ports of one client address used before moving to the next address.
pub const PORTS_PER_ADDR: u64 = 64_512;

/// The local endpoint of the `k`-th connection a client opens: ports 1024
/// and up of 10.0.0.1, then of 10.1.0.1, 10.1.0.2, ... (so that a million
/// connections, all in TIME-WAIT at once, never reuse a 4-tuple). Both
/// stacks' clients use it.
pub fn client_endpoint(k: u64) -> SocketAddr {
    let port = 1024 + (k % PORTS_PER_ADDR) as u16;
    SocketAddr::new(IpAddr::V4(client_ip((k / PORTS_PER_ADDR) as usize)), port)
}

/// The `i`-th client address.
pub fn client_ip(i: usize) -> Ipv4Addr {
    if i == 0 {
        Ipv4Addr::new(10, 0, 0, 1)
    } else {
        Ipv4Addr::new(10, 1, (i >> 8) as u8, (i & 0xff) as u8)
    }
}

/// The client addresses needed for `total` connections.
pub fn client_ips(total: u64) -> Vec<IpAddr> {
    let n = total.div_ceil(PORTS_PER_ADDR).max(1) as usize;
    (0..n).map(|i| IpAddr::V4(client_ip(i))).collect()
}

/// The configuration both synack hosts use: the link's MTU, `buffer` bytes of
/// send and receive buffer, TIME-WAIT of 2×`msl`, no trace.
pub fn config(buffer: usize, msl: Duration) -> Config {
    Config {
        mtu: MTU,
        send_buffer: buffer,
        recv_buffer: buffer,
        msl,
        trace: false,
        ..Config::default()
    }
}

/// An application on one host: it reacts to its stack's events.
pub trait App {
    /// One event of the host's stack.
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event);
}

/// An application that ignores every event.
pub struct NoApp;

impl App for NoApp {
    fn on_event(&mut self, _: Instant, _: &mut Stack, _: Event) {}
}

/// Host A (the client) and host B (the server) joined by a link.
pub struct Pair {
    /// Host A's stack.
    pub a: Stack,
    /// Host B's stack.
    pub b: Stack,
    /// The link between them.
    pub link: Link,
    /// The virtual clock, microseconds.
    pub now: u64,
    /// Packets being handed in together (kept for its allocation).
    batch: Vec<Vec<u8>>,
}

impl Pair {
    /// Two stacks with `cfg`: A owns `client_addrs`, B owns [`SERVER_IP`].
    pub fn new(cfg: &Config, client_addrs: &[IpAddr]) -> Self {
        let mut a = Stack::new(cfg.clone(), *b"synack-bench-hsA");
        for ip in client_addrs {
            a.add_address(*ip);
        }
        let mut b = Stack::new(cfg.clone(), *b"synack-bench-hsB");
        b.add_address(IpAddr::V4(SERVER_IP));
        Pair {
            a,
            b,
            link: Link::default(),
            now: 0,
            batch: Vec::with_capacity(BATCH),
        }
    }

    /// The virtual clock as the core's instant.
    pub fn instant(&self) -> Instant {
        Instant::from_micros(self.now)
    }

    /// Hands anything the applications queued outside of `step` (a connect,
    /// a send) to the link.
    pub fn flush(&mut self) {
        while let Some(p) = self.a.poll_transmit() {
            self.link.ab.push(self.now, p);
        }
        while let Some(p) = self.b.poll_transmit() {
            self.link.ba.push(self.now, p);
        }
    }

    /// Moves the clock to the next instant something happens (a packet
    /// arrives, a timer is due), delivers what arrived, runs the due timers,
    /// lets the applications react to the events, and puts what the stacks
    /// send on the link. False when nothing at all is pending.
    ///
    /// Arrived packets are handed in as synack's own TUN driver hands them:
    /// up to [`BATCH`] at a time ([`Stack::handle_packets`]), then the
    /// events to the application and the stack's output to the link, then
    /// the next batch.
    pub fn step(&mut self, app_a: &mut impl App, app_b: &mut impl App) -> bool {
        self.flush();
        let Some(next) = earliest(&[
            self.link.ab.next_due(),
            self.link.ba.next_due(),
            self.a.poll_timeout().map(Instant::micros),
            self.b.poll_timeout().map(Instant::micros),
        ]) else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.instant();
        // In batches, as synack's TUN driver reads them from its device:
        // the stack fetches the connections ahead within a batch, and the
        // applications run while the batch's TCBs are still in the cache.
        let t = self.now;
        let link = &mut self.link;
        deliver(
            t,
            &mut self.a,
            &mut self.b,
            &mut link.ab,
            &mut link.ba,
            app_b,
            &mut self.batch,
        );
        deliver(
            t,
            &mut self.b,
            &mut self.a,
            &mut link.ba,
            &mut link.ab,
            app_a,
            &mut self.batch,
        );
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= now) {
            self.b.handle_timeout(now);
        }
        while let Some(ev) = self.b.poll_event() {
            app_b.on_event(now, &mut self.b, ev);
        }
        while let Some(ev) = self.a.poll_event() {
            app_a.on_event(now, &mut self.a, ev);
        }
        self.flush();
        true
    }
}

/// Delivers the packets that have arrived at `to` by `t` over `arriving`
/// (sent by `from`, which gets the buffers back), [`BATCH`] at a time:
/// each batch handed in, the events to `app`, `to`'s output onto
/// `leaving`.
fn deliver(
    t: u64,
    from: &mut Stack,
    to: &mut Stack,
    arriving: &mut Pipe,
    leaving: &mut Pipe,
    app: &mut impl App,
    batch: &mut Vec<Vec<u8>>,
) {
    let now = Instant::from_micros(t);
    loop {
        while batch.len() < BATCH {
            let Some(p) = arriving.pop_due(t) else {
                break;
            };
            batch.push(p);
        }
        if batch.is_empty() {
            return;
        }
        to.handle_packets(now, batch);
        for p in batch.drain(..) {
            from.recycle(p);
        }
        while let Some(ev) = to.poll_event() {
            app.on_event(now, to, ev);
        }
        while let Some(p) = to.poll_transmit() {
            leaving.push(t, p);
        }
    }
}
