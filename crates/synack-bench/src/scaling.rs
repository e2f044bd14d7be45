//! Scaling: CPU time per segment on one busy connection while N idle
//! ESTABLISHED connections sit in the same stacks. The busy connection
//! runs request/response round trips (64 bytes each way); the cost is the
//! process's CPU time over the segments that crossed the link meanwhile.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use synack_core::{ConnId, Event, Instant, Stack};

use crate::report::{Figure, Progress};
use crate::synack_side::{self, client_endpoint, client_ips, SERVER_IP, SERVER_PORT};
use crate::{cpu_time_ns, smoltcp_side, Sizes};

/// Bytes of each request and of each response.
pub const MESSAGE: usize = 64;

/// The port of the busy connection's server (the idle ones use `SERVER_PORT`).
pub const BUSY_PORT: u16 = 8;

/// Connections opened per batch while setting up the idle ones.
const BATCH: u64 = 10_000;

/// What one scaling run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Segments that crossed the link during the timed part.
    pub segments: u64,
    /// CPU time of the timed part, nanoseconds.
    pub cpu_ns: u64,
    /// Round trips completed.
    pub round_trips: u64,
}

impl Outcome {
    /// CPU nanoseconds per segment.
    pub fn ns_per_segment(&self) -> f64 {
        self.cpu_ns as f64 / self.segments.max(1) as f64
    }
}

/// Setup and busy-connection app for synack: accepts everything; the busy
/// connection's client sends a request whenever the previous response is in.
struct SynackApp {
    busy: Option<ConnId>,
    connected: u64,
    got: usize,
    left: u64,
    done: u64,
}

impl SynackApp {
    fn request(&mut self, now: Instant, stack: &mut Stack, id: ConnId) {
        if self.left > 0 {
            self.left -= 1;
            let _ = stack.send(now, id, &[7u8; MESSAGE]);
        }
    }
}

impl synack_side::App for SynackApp {
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Connected(_) => self.connected += 1,
            Event::Incoming(lid) => while stack.accept(lid).is_ok() {},
            Event::Readable(id) => {
                let mut buf = [0u8; 256];
                while let Ok(n) = stack.recv(now, id, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    if Some(id) == self.busy {
                        self.got += n;
                    } else {
                        // The server side of the busy connection: echo.
                        let _ = stack.send(now, id, &buf[..n]);
                    }
                }
                if Some(id) == self.busy && self.got >= MESSAGE {
                    self.got -= MESSAGE;
                    self.done += 1;
                    self.request(now, stack, id);
                }
            }
            _ => {}
        }
    }
}

/// Opens `idle` idle connections and one busy one on synack, then times
/// `round_trips` request/response round trips on the busy one.
pub fn synack(idle: u64, round_trips: u64, progress: &mut dyn Progress) -> Result<Outcome, String> {
    let cfg = synack_side::config(4096, Duration::from_secs(30));
    let mut pair = synack_side::Pair::new(&cfg, &client_ips(idle + 1));
    let server = SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT);
    pair.b
        .listen(server, BATCH as usize + 64)
        .map_err(|e| format!("listen: {e:?}"))?;
    let busy_server = SocketAddr::new(IpAddr::V4(SERVER_IP), BUSY_PORT);
    pair.b
        .listen(busy_server, 4)
        .map_err(|e| format!("listen: {e:?}"))?;
    let new_app = || SynackApp {
        busy: None,
        connected: 0,
        got: 0,
        left: 0,
        done: 0,
    };
    let (mut client, mut srv) = (new_app(), new_app());
    let mut opened = 0u64;
    while opened < idle {
        let batch = BATCH.min(idle - opened);
        let now = pair.instant();
        for _ in 0..batch {
            pair.a
                .connect(now, Some(client_endpoint(opened)), server)
                .map_err(|e| format!("connect: {e:?}"))?;
            opened += 1;
        }
        while client.connected < opened || (pair.b.connection_count() as u64) < opened {
            if !pair.step(&mut client, &mut srv) {
                return Err("idle connections did not establish".into());
            }
        }
        progress.advance(0.5 * opened as f64 / idle as f64);
    }
    let now = pair.instant();
    let id = pair
        .a
        .connect(now, Some(client_endpoint(idle)), busy_server)
        .map_err(|e| format!("connect: {e:?}"))?;
    pair.a.set_nodelay(id, true).ok();
    client.busy = Some(id);
    while client.connected <= idle {
        if !pair.step(&mut client, &mut srv) {
            return Err("the busy connection did not establish".into());
        }
    }
    // Let every handshake timer and delayed ACK settle before timing.
    let settle = pair.now + 1_000_000;
    while pair.now < settle && pair.step(&mut client, &mut srv) {}
    client.left = round_trips;
    let (packets0, cpu0) = (pair.link.packets(), cpu_time_ns());
    let now = pair.instant();
    client.request(now, &mut pair.a, id);
    let mut steps = 0u64;
    while client.done < round_trips && pair.step(&mut client, &mut srv) {
        steps += 1;
        if steps.is_multiple_of(1024) {
            progress.advance(0.5 + 0.5 * client.done as f64 / round_trips as f64);
        }
    }
    Ok(Outcome {
        segments: pair.link.packets() - packets0,
        cpu_ns: cpu_time_ns() - cpu0,
        round_trips: client.done,
    })
}

/// The busy connection's two ends on smoltcp.
struct SmoltcpBusy {
    handle: Option<SocketHandle>,
    client: bool,
    got: usize,
    left: u64,
    done: u64,
}

impl SmoltcpBusy {
    fn request(&mut self, s: &mut tcp::Socket) {
        if self.left > 0 && s.send_slice(&[7u8; MESSAGE]) == Ok(MESSAGE) {
            self.left -= 1;
        }
    }
}

impl smoltcp_side::App for SmoltcpBusy {
    fn after_poll(&mut self, _: SmolInstant, host: &mut smoltcp_side::Host, _: bool) {
        let Some(h) = self.handle else { return };
        let s = host.sockets.get_mut::<tcp::Socket>(h);
        let mut buf = [0u8; 256];
        while s.can_recv() {
            let n = s.recv_slice(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            if self.client {
                self.got += n;
            } else {
                let _ = s.send_slice(&buf[..n]);
            }
        }
        if self.client && self.got >= MESSAGE {
            self.got -= MESSAGE;
            self.done += 1;
            self.request(s);
        }
    }
}

/// The same on smoltcp.
pub fn smoltcp(
    idle: u64,
    round_trips: u64,
    progress: &mut dyn Progress,
) -> Result<Outcome, String> {
    let mut pair = smoltcp_side::Pair::new(idle + 1);
    let server = smoltcp_side::endpoint(SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT));
    for _ in 0..idle {
        let mut s = smoltcp_side::socket(256);
        s.listen(SERVER_PORT).expect("listen");
        pair.b.sockets.add(s);
    }
    let mut handles = Vec::with_capacity(idle as usize);
    let (mut na, mut nb) = (smoltcp_side::NoApp, smoltcp_side::NoApp);
    let mut opened = 0u64;
    while opened < idle {
        let batch = BATCH.min(idle - opened);
        for _ in 0..batch {
            let mut s = smoltcp_side::socket(256);
            s.connect(
                pair.a.iface.context(),
                server,
                smoltcp_side::endpoint(client_endpoint(opened)),
            )
            .map_err(|e| format!("connect: {e:?}"))?;
            handles.push(pair.a.sockets.add(s));
            opened += 1;
        }
        while handles
            .iter()
            .any(|&h| pair.a.sockets.get::<tcp::Socket>(h).state() != tcp::State::Established)
        {
            if !pair.step(&mut na, &mut nb) {
                return Err("idle connections did not establish".into());
            }
        }
        progress.advance(0.5 * opened as f64 / idle as f64);
    }
    let mut l = smoltcp_side::socket(4096);
    l.listen(BUSY_PORT).expect("listen");
    let mut srv = SmoltcpBusy {
        handle: Some(pair.b.sockets.add(l)),
        client: false,
        got: 0,
        left: 0,
        done: 0,
    };
    let mut c = smoltcp_side::socket(4096);
    c.set_nagle_enabled(false);
    c.connect(
        pair.a.iface.context(),
        smoltcp_side::endpoint(SocketAddr::new(IpAddr::V4(SERVER_IP), BUSY_PORT)),
        smoltcp_side::endpoint(client_endpoint(idle)),
    )
    .map_err(|e| format!("connect: {e:?}"))?;
    let ch = pair.a.sockets.add(c);
    let mut client = SmoltcpBusy {
        handle: Some(ch),
        client: true,
        got: 0,
        left: 0,
        done: 0,
    };
    while pair.a.sockets.get::<tcp::Socket>(ch).state() != tcp::State::Established {
        if !pair.step(&mut client, &mut srv) {
            return Err("the busy connection did not establish".into());
        }
    }
    let settle = pair.now + 1_000_000;
    while pair.now < settle && pair.step(&mut client, &mut srv) {}
    client.left = round_trips;
    let (packets0, cpu0) = (pair.link.packets(), cpu_time_ns());
    client.request(pair.a.sockets.get_mut::<tcp::Socket>(ch));
    let mut steps = 0u64;
    while client.done < round_trips && pair.step(&mut client, &mut srv) {
        steps += 1;
        if steps.is_multiple_of(1024) {
            progress.advance(0.5 + 0.5 * client.done as f64 / round_trips as f64);
        }
    }
    Ok(Outcome {
        segments: pair.link.packets() - packets0,
        cpu_ns: cpu_time_ns() - cpu0,
        round_trips: client.done,
    })
}

/// Every scaling case of `sizes`.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress) -> Vec<Figure> {
    let mut out = Vec::new();
    let cases = sizes
        .scaling_synack
        .iter()
        .map(|&n| ("synack", n))
        .chain(sizes.scaling_smoltcp.iter().map(|&n| ("smoltcp", n)));
    for (stack, n) in cases {
        progress.case(&format!("scaling {stack} connections={n}"));
        let r = if stack == "synack" {
            synack(n as u64, sizes.scaling_round_trips, progress)
        } else {
            smoltcp(n as u64, sizes.scaling_round_trips, progress)
        };
        let f = match r {
            Ok(o) => Figure::new(
                "scaling",
                stack_name(stack),
                o.ns_per_segment(),
                "ns/segment",
            )
            .param("connections", n)
            .param("segments", o.segments),
            Err(e) => Figure::skipped("scaling", stack_name(stack), "ns/segment", &e)
                .param("connections", n),
        };
        out.push(f);
    }
    out
}

fn stack_name(s: &str) -> &'static str {
    if s == "synack" {
        "synack"
    } else {
        "smoltcp"
    }
}
