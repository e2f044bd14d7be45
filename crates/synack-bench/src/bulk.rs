//! Bulk transfer: one connection moves a fixed number of bytes one way, as
//! fast as the stacks go; Gbit/s of real time from the connect to the last
//! byte read.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use synack_core::{ConnId, Event, Instant, Stack};

use crate::report::{Figure, Progress};
use crate::synack_side::{self, client_endpoint, client_ips, SERVER_IP, SERVER_PORT};
use crate::{smoltcp_side, Sizes};

/// The period of the byte pattern the senders write, bytes.
pub const CHUNK: usize = 64 << 10;

/// What one bulk run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Bytes the receiver read.
    pub received: u64,
    /// Real time from the connect to the last byte read.
    pub wall: Duration,
    /// Whether the real-time cap stopped it early.
    pub capped: bool,
    /// Packets that crossed the link.
    pub packets: u64,
    /// Virtual time simulated, seconds.
    pub virtual_secs: f64,
}

impl Outcome {
    /// Gigabits per second of real time.
    pub fn gbps(&self) -> f64 {
        self.received as f64 * 8.0 / self.wall.as_secs_f64().max(1e-9) / 1e9
    }
}

/// The bytes a sender produces: `total` bytes of [`crate::pattern`],
/// repeating every [`CHUNK`] bytes, written by both stacks' senders straight
/// into the send buffer (synack: `send_with`, smoltcp: `send` with a
/// closure), as both receivers read in place.
struct Source {
    total: u64,
    sent: u64,
    chunk: Vec<u8>,
}

impl Source {
    fn new(total: u64) -> Self {
        Source {
            total,
            sent: 0,
            chunk: (0..CHUNK as u64).map(crate::pattern).collect(),
        }
    }

    fn done(&self) -> bool {
        self.sent >= self.total
    }

    /// Writes the next bytes of the stream into `dst`, as many as fit and
    /// remain; returns how many.
    fn fill(&mut self, dst: &mut [u8]) -> usize {
        let want = (self.total - self.sent).min(dst.len() as u64) as usize;
        let mut n = 0;
        while n < want {
            let at = (self.sent % CHUNK as u64) as usize;
            let k = (want - n).min(CHUNK - at);
            dst[n..n + k].copy_from_slice(&self.chunk[at..at + k]);
            n += k;
            self.sent += k as u64;
        }
        n
    }
}

struct SynackSender {
    source: Source,
}

impl SynackSender {
    fn push(&mut self, now: Instant, stack: &mut Stack, id: ConnId) {
        while !self.source.done() {
            let src = &mut self.source;
            let wrote = stack.send_with(now, id, |a, b| {
                let n = src.fill(a);
                if n < a.len() {
                    n
                } else {
                    n + src.fill(b)
                }
            });
            match wrote {
                Ok(k) if k > 0 => {}
                _ => break,
            }
        }
    }
}

impl synack_side::App for SynackSender {
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        if let Event::Connected(id) | Event::Writable(id) = event {
            self.push(now, stack, id);
        }
    }
}

struct SynackReceiver {
    received: u64,
}

impl synack_side::App for SynackReceiver {
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Incoming(lid) => while stack.accept(lid).is_ok() {},
            Event::Readable(id) => {
                // Each stack's in-place read (smoltcp: `recv` with a closure).
                while let Ok(n) = stack.recv_with(now, id, |a, b| a.len() + b.len()) {
                    if n == 0 {
                        break;
                    }
                    self.received += n as u64;
                }
            }
            _ => {}
        }
    }
}

/// Moves `total` bytes over synack with `buffer`-byte buffers.
pub fn synack(total: u64, buffer: usize, cap: Duration, progress: &mut dyn Progress) -> Outcome {
    let cfg = synack_side::config(buffer, Duration::from_secs(30));
    let mut pair = synack_side::Pair::new(&cfg, &client_ips(1));
    let server = SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT);
    pair.b.listen(server, 16).expect("listen on the server");
    let mut tx = SynackSender {
        source: Source::new(total),
    };
    let mut rx = SynackReceiver { received: 0 };
    let t0 = std::time::Instant::now();
    let now = pair.instant();
    pair.a
        .connect(now, Some(client_endpoint(0)), server)
        .expect("connect");
    let mut capped = false;
    let mut steps = 0u64;
    while rx.received < total && pair.step(&mut tx, &mut rx) {
        steps += 1;
        if steps.is_multiple_of(64) {
            progress.advance(rx.received as f64 / total as f64);
            if t0.elapsed() > cap {
                capped = true;
                break;
            }
        }
    }
    Outcome {
        received: rx.received,
        wall: t0.elapsed(),
        capped,
        packets: pair.link.packets(),
        virtual_secs: pair.now as f64 / 1e6,
    }
}

struct SmoltcpSender {
    handle: SocketHandle,
    source: Source,
}

impl smoltcp_side::App for SmoltcpSender {
    fn after_poll(&mut self, _: SmolInstant, host: &mut smoltcp_side::Host, _: bool) {
        let s = host.sockets.get_mut::<tcp::Socket>(self.handle);
        while !self.source.done() && s.can_send() {
            // In place, as the synack side writes (`send_with`); the free
            // space comes one contiguous piece at a time.
            let src = &mut self.source;
            match s.send(|buf| {
                let n = src.fill(buf);
                (n, n)
            }) {
                Ok(k) if k > 0 => {}
                _ => break,
            }
        }
    }
}

struct SmoltcpReceiver {
    handle: SocketHandle,
    received: u64,
}

impl smoltcp_side::App for SmoltcpReceiver {
    fn after_poll(&mut self, _: SmolInstant, host: &mut smoltcp_side::Host, _: bool) {
        let s = host.sockets.get_mut::<tcp::Socket>(self.handle);
        while s.can_recv() {
            // In place, as the synack side reads (`recv_with`).
            match s.recv(|data| (data.len(), data.len())) {
                Ok(n) if n > 0 => self.received += n as u64,
                _ => break,
            }
        }
    }
}

/// Moves `total` bytes over smoltcp with `buffer`-byte buffers.
pub fn smoltcp(total: u64, buffer: usize, cap: Duration, progress: &mut dyn Progress) -> Outcome {
    let mut pair = smoltcp_side::Pair::new(1);
    let mut listener = smoltcp_side::socket(buffer);
    listener.listen(SERVER_PORT).expect("listen");
    let mut rx = SmoltcpReceiver {
        handle: pair.b.sockets.add(listener),
        received: 0,
    };
    let t0 = std::time::Instant::now();
    let mut s = smoltcp_side::socket(buffer);
    let server = smoltcp_side::endpoint(SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT));
    s.connect(
        pair.a.iface.context(),
        server,
        smoltcp_side::endpoint(client_endpoint(0)),
    )
    .expect("connect");
    let mut tx = SmoltcpSender {
        handle: pair.a.sockets.add(s),
        source: Source::new(total),
    };
    let mut capped = false;
    let mut steps = 0u64;
    while rx.received < total && pair.step(&mut tx, &mut rx) {
        steps += 1;
        if steps.is_multiple_of(64) {
            progress.advance(rx.received as f64 / total as f64);
            if t0.elapsed() > cap {
                capped = true;
                break;
            }
        }
    }
    Outcome {
        received: rx.received,
        wall: t0.elapsed(),
        capped,
        packets: pair.link.packets(),
        virtual_secs: pair.now as f64 / 1e6,
    }
}

fn figure(stack: &'static str, total: u64, buffer: usize, o: &Outcome) -> Figure {
    let mut f = Figure::new("bulk", stack, o.gbps(), "Gbit/s")
        .param("buffer", buffer)
        .param("bytes", total);
    if o.capped {
        f = f.note(format!(
            "capped at {:.0} s: {} of {} bytes",
            o.wall.as_secs_f64(),
            o.received,
            total
        ));
    } else if o.received < total {
        f = f.note(format!("stalled: {} of {} bytes", o.received, total));
    }
    f
}

/// Every bulk case of `sizes`, synack then smoltcp.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress) -> Vec<Figure> {
    let mut out = Vec::new();
    for &buffer in &sizes.bulk_buffers {
        // Alternating, so that a slow spell of the machine falls on both.
        let mut runs: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
        for run in 1..=RUNS {
            progress.case(&format!("bulk synack buffer={buffer} run {run}/{RUNS}"));
            runs[0].push(synack(sizes.bulk_bytes, buffer, sizes.cap, progress));
            progress.case(&format!("bulk smoltcp buffer={buffer} run {run}/{RUNS}"));
            runs[1].push(smoltcp(sizes.bulk_bytes, buffer, sizes.cap, progress));
        }
        for (stack, outcomes) in ["synack", "smoltcp"].into_iter().zip(runs) {
            out.push(figure(stack, sizes.bulk_bytes, buffer, &median(outcomes)));
        }
    }
    out
}

/// Runs of each stack per buffer size; each figure is the median run.
/// Bulk is over in a fraction of a second, so that a moment of the
/// scheduler's attention elsewhere on a shared machine moves one run by
/// tens of per cent (as the TUN figures, which are medians of three too).
pub const RUNS: usize = 3;

/// The run of median throughput.
fn median(mut runs: Vec<Outcome>) -> Outcome {
    runs.sort_by(|a, b| a.gbps().total_cmp(&b.gbps()));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}
