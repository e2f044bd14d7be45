//! Connection churn: open, echo 16 bytes, close, with a fixed number of
//! connections open at once; connections per second of real time. The
//! client closes first, so every connection ends in a real TIME-WAIT of
//! 10 s of virtual time (smoltcp's fixed TIME-WAIT; synack gets MSL 5 s),
//! and the run ends only once every TIME-WAIT has run out.
//!
//! smoltcp runs both ways ([`TimeWait`]): its sockets kept in the
//! `SocketSet` through TIME-WAIT (as synack keeps its compact TIME-WAIT
//! entries), and removed from the set as they enter TIME-WAIT, as
//! smoltcp's users who recycle sockets run it: smoltcp's best case, since
//! it finds a segment's socket by scanning them all.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hashbrown::HashMap;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use synack_core::{ConnId, Event, Instant, Stack};

use crate::report::{Figure, Progress};
use crate::synack_side::{self, client_endpoint, client_ips, SERVER_IP, SERVER_PORT};
use crate::{smoltcp_side, Sizes};

/// Bytes echoed per connection.
pub const MESSAGE: usize = 16;

/// Send and receive buffer of every churn connection, both stacks.
pub const BUFFER: usize = 4096;

/// synack's MSL in the churn: TIME-WAIT lasts 2×MSL = 10 s, as smoltcp's.
pub const MSL: Duration = Duration::from_secs(5);

/// What smoltcp's churn client does with a socket that reaches TIME-WAIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeWait {
    /// Kept in the `SocketSet` until smoltcp's 10 s TIME-WAIT has run out
    /// and the socket is closed (what synack always does, in its compact
    /// table).
    Held,
    /// Removed from the set (and freed) as soon as it is in TIME-WAIT, its
    /// last ACK already sent: no TIME-WAIT protection, the set holds only
    /// the connections still in progress.
    Dropped,
}

impl TimeWait {
    /// Both, in the order the table shows them.
    pub const BOTH: [TimeWait; 2] = [TimeWait::Dropped, TimeWait::Held];

    /// The value of the `time_wait` parameter.
    pub fn name(self) -> &'static str {
        match self {
            TimeWait::Held => "held",
            TimeWait::Dropped => "dropped",
        }
    }
}

/// What one churn run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Connections that echoed intact and closed.
    pub completed: u64,
    /// Connections that failed (refused, reset, bad echo).
    pub failed: u64,
    /// Real time taken.
    pub wall: Duration,
    /// Whether the real-time cap stopped the run early.
    pub capped: bool,
    /// Virtual time simulated, seconds.
    pub virtual_secs: f64,
    /// Packets that crossed the link.
    pub packets: u64,
    /// Most client connections alive at once, TIME-WAIT included (smoltcp:
    /// sockets in the client's set, exact; synack: connections plus
    /// TIME-WAIT entries after each step).
    pub peak_alive: u64,
}

impl Outcome {
    /// Completed connections per second of real time.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

fn message() -> [u8; MESSAGE] {
    core::array::from_fn(|i| crate::pattern(i as u64))
}

/// The churn client on synack.
struct SynackClient {
    server: SocketAddr,
    concurrent: u64,
    total: u64,
    opened: u64,
    /// Open connections and the bytes echoed so far on each.
    open: HashMap<ConnId, usize>,
    completed: u64,
    failed: u64,
}

impl SynackClient {
    fn refill(&mut self, now: Instant, stack: &mut Stack) {
        while (self.open.len() as u64) < self.concurrent && self.opened < self.total {
            let local = client_endpoint(self.opened);
            self.opened += 1;
            match stack.connect(now, Some(local), self.server) {
                Ok(id) => {
                    self.open.insert(id, 0);
                }
                Err(_) => self.failed += 1,
            }
        }
    }

    fn fail(&mut self, now: Instant, stack: &mut Stack, id: ConnId) {
        if self.open.remove(&id).is_some() {
            self.failed += 1;
            let _ = stack.abort(now, id);
        }
    }
}

impl synack_side::App for SynackClient {
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Connected(id) if stack.send(now, id, &message()) != Ok(MESSAGE) => {
                self.fail(now, stack, id);
            }
            Event::Readable(id) => {
                let Some(&start) = self.open.get(&id) else {
                    return;
                };
                let mut got = start;
                let mut buf = [0u8; 64];
                while let Ok(n) = stack.recv(now, id, &mut buf) {
                    if n == 0 || got + n > MESSAGE || buf[..n] != message()[got..got + n] {
                        self.fail(now, stack, id);
                        return;
                    }
                    got += n;
                }
                if got == MESSAGE {
                    self.completed += 1;
                    self.open.remove(&id);
                    let _ = stack.close(now, id);
                } else if let Some(g) = self.open.get_mut(&id) {
                    *g = got;
                }
            }
            Event::Closed { id, error: Some(_) } => self.fail(now, stack, id),
            _ => {}
        }
        self.refill(now, stack);
    }
}

/// The echo server on synack: echoes what arrives, closes at the peer's FIN.
pub struct SynackEchoServer {
    /// Where a read lands before it is echoed (kept, so that no event
    /// pays for zeroing it).
    buf: Vec<u8>,
}

impl Default for SynackEchoServer {
    fn default() -> Self {
        SynackEchoServer { buf: vec![0; 2048] }
    }
}

impl synack_side::App for SynackEchoServer {
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Incoming(lid) => while stack.accept(lid).is_ok() {},
            Event::Readable(id) => {
                let buf = &mut self.buf[..];
                loop {
                    match stack.recv(now, id, buf) {
                        Ok(0) => {
                            let _ = stack.close(now, id);
                            break;
                        }
                        Ok(n) => {
                            // The echo always fits: the peer waits for it
                            // before sending more.
                            let _ = stack.send(now, id, &buf[..n]);
                        }
                        Err(_) => break,
                    }
                }
            }
            Event::Closed { id, .. } => {
                let _ = stack.close(now, id);
            }
            _ => {}
        }
    }
}

/// Runs the churn on synack: `total` connections, `concurrent` at a time.
pub fn synack(
    concurrent: usize,
    total: u64,
    cap: Duration,
    progress: &mut dyn Progress,
) -> Outcome {
    let cfg = synack_side::config(BUFFER, MSL);
    let mut pair = synack_side::Pair::new(&cfg, &client_ips(total));
    let server = SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT);
    pair.b
        .listen(server, concurrent + 64)
        .expect("listen on the server");
    let mut client = SynackClient {
        server,
        concurrent: concurrent as u64,
        total,
        opened: 0,
        open: HashMap::new(),
        completed: 0,
        failed: 0,
    };
    let mut srv = SynackEchoServer::default();
    let t0 = std::time::Instant::now();
    let mut capped = false;
    client.refill(pair.instant(), &mut pair.a);
    let mut steps = 0u64;
    let mut peak_alive = 0;
    while pair.step(&mut client, &mut srv) {
        steps += 1;
        let alive = pair.a.connection_count() + pair.a.time_wait_count();
        peak_alive = peak_alive.max(alive as u64);
        if steps.is_multiple_of(256) {
            progress.advance((client.completed + client.failed) as f64 / total as f64);
            if t0.elapsed() > cap {
                capped = true;
                break;
            }
        }
    }
    Outcome {
        completed: client.completed,
        failed: client.failed,
        wall: t0.elapsed(),
        capped,
        virtual_secs: pair.now as f64 / 1e6,
        packets: pair.link.packets(),
        peak_alive,
    }
}

/// The churn client on smoltcp: the same workload, smoltcp's way (a socket
/// per connection, looked at after each poll).
struct SmoltcpClient {
    concurrent: usize,
    total: u64,
    opened: u64,
    /// (socket, message sent, bytes echoed so far).
    active: Vec<(SocketHandle, bool, usize)>,
    /// Sockets closed by us, not yet removed from the set, oldest first;
    /// each with whether it was already done with ([`TimeWait`]) when the
    /// application last looked.
    closing: VecDeque<(SocketHandle, bool)>,
    time_wait: TimeWait,
    /// Most sockets in the set at once.
    peak_alive: u64,
    completed: u64,
    failed: u64,
}

impl SmoltcpClient {
    fn refill(&mut self, host: &mut smoltcp_side::Host) {
        let server = smoltcp_side::endpoint(SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT));
        while self.active.len() < self.concurrent && self.opened < self.total {
            let local = smoltcp_side::endpoint(client_endpoint(self.opened));
            self.opened += 1;
            let mut s = smoltcp_side::socket(BUFFER);
            if s.connect(host.iface.context(), server, local).is_err() {
                self.failed += 1;
                continue;
            }
            let h = host.sockets.add(s);
            self.active.push((h, false, 0));
        }
        let alive = (self.active.len() + self.closing.len()) as u64;
        self.peak_alive = self.peak_alive.max(alive);
    }

    /// Removes from the set the closing sockets that are done with: those
    /// closed (TIME-WAIT held and run out, or aborted), and with
    /// [`TimeWait::Dropped`] those in TIME-WAIT too. The application runs
    /// before the egress of its step (`smoltcp_side::Pair::step`), so a
    /// socket that has just entered TIME-WAIT has yet to send its last
    /// ACK: it is removed the next time the application looks, after that
    /// egress, and removing it changes no packet on the wire.
    fn release(&mut self, host: &mut smoltcp_side::Host) {
        let state = |host: &smoltcp_side::Host, h| host.sockets.get::<tcp::Socket>(h).state();
        match self.time_wait {
            // In order (every socket waits out the same TIME-WAIT), and
            // closed by its timer in an egress already.
            TimeWait::Held => {
                while let Some(&(h, _)) = self.closing.front() {
                    if state(host, h) != tcp::State::Closed {
                        break;
                    }
                    host.sockets.remove(h);
                    self.closing.pop_front();
                }
            }
            TimeWait::Dropped => self.closing.retain_mut(|(h, seen)| {
                if !matches!(state(host, *h), tcp::State::TimeWait | tcp::State::Closed) {
                    return true;
                }
                if !*seen {
                    *seen = true;
                    return true;
                }
                host.sockets.remove(*h);
                false
            }),
        }
    }
}

impl smoltcp_side::App for SmoltcpClient {
    fn after_poll(&mut self, _now: SmolInstant, host: &mut smoltcp_side::Host, changed: bool) {
        if changed {
            let msg = message();
            let mut buf = [0u8; 64];
            let mut i = 0;
            while i < self.active.len() {
                let (h, sent, got) = &mut self.active[i];
                let s = host.sockets.get_mut::<tcp::Socket>(*h);
                let mut ok = true;
                if !*sent && s.may_send() {
                    ok = s.send_slice(&msg) == Ok(MESSAGE);
                    *sent = true;
                }
                while ok && s.can_recv() {
                    match s.recv_slice(&mut buf) {
                        Ok(n) if *got + n <= MESSAGE && buf[..n] == msg[*got..*got + n] => {
                            *got += n
                        }
                        _ => ok = false,
                    }
                }
                if ok && *got == MESSAGE {
                    s.close();
                    self.closing.push_back((*h, false));
                    self.completed += 1;
                    self.active.swap_remove(i);
                } else if !ok || s.state() == tcp::State::Closed {
                    s.abort();
                    self.closing.push_back((*h, false));
                    self.failed += 1;
                    self.active.swap_remove(i);
                } else {
                    i += 1;
                }
            }
        }
        self.release(host);
        self.refill(host);
    }
}

/// The echo server on smoltcp: a pool of sockets, each listening again once
/// its connection has closed.
pub struct SmoltcpEchoServer {
    pool: Vec<SocketHandle>,
    /// Where a read lands before it is echoed (kept, as synack's server's).
    buf: Vec<u8>,
}

impl SmoltcpEchoServer {
    /// `sockets` sockets of `buffer` bytes each, listening on the server port.
    pub fn new(host: &mut smoltcp_side::Host, sockets: usize, buffer: usize) -> Self {
        let pool = (0..sockets)
            .map(|_| {
                let mut s = smoltcp_side::socket(buffer);
                s.listen(SERVER_PORT).expect("listen");
                host.sockets.add(s)
            })
            .collect();
        SmoltcpEchoServer {
            pool,
            buf: vec![0; 2048],
        }
    }
}

impl smoltcp_side::App for SmoltcpEchoServer {
    fn after_poll(&mut self, _now: SmolInstant, host: &mut smoltcp_side::Host, changed: bool) {
        if !changed {
            return;
        }
        let buf = &mut self.buf[..];
        for &h in &self.pool {
            let s = host.sockets.get_mut::<tcp::Socket>(h);
            match s.state() {
                tcp::State::Closed => {
                    let _ = s.listen(SERVER_PORT);
                }
                tcp::State::Listen | tcp::State::SynReceived => {}
                _ => {
                    while s.can_recv() && s.can_send() {
                        let n = s.recv_slice(buf).unwrap_or(0);
                        let _ = s.send_slice(&buf[..n]);
                    }
                    if s.state() == tcp::State::CloseWait && !s.can_recv() {
                        s.close();
                    }
                }
            }
        }
    }
}

/// Sockets of smoltcp's echo server with `concurrent` connections at a
/// time: as many as can be busy at once (each connection in progress, and
/// as many again whose client has closed but whose last ACK has not yet
/// arrived) and two to spare for the next SYNs, as a smoltcp server is
/// sized for its load. Every spare socket costs smoltcp a look per packet
/// (it scans them all): 64 to spare halved its rate one at a time.
pub fn server_pool(concurrent: usize) -> usize {
    2 * concurrent + 2
}

/// Runs the churn on smoltcp: `total` connections, `concurrent` at a time,
/// each socket held through TIME-WAIT or dropped as it enters it.
pub fn smoltcp(
    concurrent: usize,
    total: u64,
    time_wait: TimeWait,
    cap: Duration,
    progress: &mut dyn Progress,
) -> Outcome {
    let mut pair = smoltcp_side::Pair::new(total);
    let mut srv = SmoltcpEchoServer::new(&mut pair.b, server_pool(concurrent), BUFFER);
    let mut client = SmoltcpClient {
        concurrent,
        total,
        opened: 0,
        active: Vec::new(),
        closing: VecDeque::new(),
        time_wait,
        peak_alive: 0,
        completed: 0,
        failed: 0,
    };
    let t0 = std::time::Instant::now();
    let mut capped = false;
    client.refill(&mut pair.a);
    pair.deadline = Some(t0 + cap);
    let mut steps = 0u64;
    loop {
        if !pair.step(&mut client, &mut srv) {
            capped = pair.deadline.is_some_and(|d| std::time::Instant::now() > d);
            break;
        }
        steps += 1;
        if steps.is_multiple_of(16) {
            progress.advance((client.completed + client.failed) as f64 / total as f64);
            if t0.elapsed() > cap {
                capped = true;
                break;
            }
        }
        if client.closing.is_empty() && client.active.is_empty() && client.opened == total {
            break;
        }
    }
    Outcome {
        completed: client.completed,
        failed: client.failed,
        wall: t0.elapsed(),
        capped,
        virtual_secs: pair.now as f64 / 1e6,
        packets: pair.link.packets(),
        peak_alive: client.peak_alive,
    }
}

/// The row of one churn run. Every row says how TIME-WAIT was kept, and
/// its note how many client connections that left alive at the peak.
fn figure(
    stack: &'static str,
    concurrent: usize,
    total: u64,
    time_wait: TimeWait,
    o: &Outcome,
) -> Figure {
    let f = Figure::new("churn", stack, o.rate(), "conn/s")
        .param("concurrent", concurrent)
        .param("connections", total)
        .param("time_wait", time_wait.name());
    let alive = crate::report::format_count(o.peak_alive);
    let mut notes = vec![match (stack, time_wait) {
        ("synack", _) => format!("synack always holds TIME-WAIT; up to {alive} alive"),
        (_, TimeWait::Held) => format!("up to {alive} sockets alive"),
        (_, TimeWait::Dropped) => format!("freed at TIME-WAIT; up to {alive} sockets alive"),
    }];
    if o.capped {
        notes.push(format!(
            "capped at {:.0} s: {} of {} done",
            o.wall.as_secs_f64(),
            o.completed,
            total
        ));
    }
    if o.failed > 0 {
        notes.push(format!("{} failed", o.failed));
    }
    f.note(notes.join("; "))
}

/// Most connections smoltcp runs with TIME-WAIT dropped: what its client's
/// addresses hold without reusing a 4-tuple (smoltcp takes at most
/// [`smoltcp_side::MAX_CLIENT_ADDRS`] addresses, of 64,512 ports each).
pub const DROPPED_MAX: u64 = 500_000;

const _: () =
    assert!(DROPPED_MAX <= smoltcp_side::MAX_CLIENT_ADDRS as u64 * synack_side::PORTS_PER_ADDR);

/// Rows per churn case: synack, then smoltcp with TIME-WAIT dropped and
/// held.
pub const ROWS_PER_CASE: usize = 3;

/// Every churn case of `sizes`: synack, then smoltcp both ways. smoltcp
/// with TIME-WAIT dropped runs as many connections as synack, up to
/// [`DROPPED_MAX`] (its cost grows with the connections open, not with
/// those done); held, it runs
/// `sizes`' smaller count, since every connection of the last 10 s of
/// virtual time is still in its set.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress) -> Vec<Figure> {
    let mut out = Vec::new();
    for &(concurrent, syn_total, held_total) in &sizes.churn {
        progress.case(&format!("churn synack concurrent={concurrent}"));
        let o = synack(concurrent, syn_total, sizes.cap, progress);
        out.push(figure("synack", concurrent, syn_total, TimeWait::Held, &o));
        for tw in TimeWait::BOTH {
            let total = match tw {
                TimeWait::Dropped => syn_total.min(DROPPED_MAX),
                TimeWait::Held => held_total,
            };
            let name = tw.name();
            progress.case(&format!(
                "churn smoltcp concurrent={concurrent} time_wait={name}"
            ));
            let o = smoltcp(concurrent, total, tw, sizes.cap, progress);
            out.push(figure("smoltcp", concurrent, total, tw, &o));
        }
    }
    out
}
