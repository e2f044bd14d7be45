//! A SYN flood (issue 12; RFC 4987): a million SYNs from random spoofed
//! sources that never answer, while 100 legitimate clients connect and
//! have 32 KiB echoed, some during the flood and some after it. Every
//! legitimate transfer must complete, each client connect within a
//! second, and the server's connections and committed memory stay bounded
//! (the SYN queue holds `max_syn_backlog` strangers; the rest get
//! cookies and cost nothing).
//!
//! Sans-I/O and seeded: two stacks, a wire of fixed delay between them in
//! the test, simulated time in 1 ms steps (about a second of wall time for
//! the million in a debug build).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use synack_core::{Config, ConnId, Event, Instant, Stack};
use synack_wire::{emit_packet, TcpFlags, TcpRepr};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 7;
const CLIENTS: usize = 100;
const PAYLOAD: usize = 32 * 1024;
/// One-way delay of the wire.
const DELAY: Duration = Duration::from_millis(1);
/// The flood lasts this long; clients start evenly over 1.2 times it.
const FLOOD_MS: u64 = 10_000;
const BUDGET: usize = 64 << 20;

/// xorshift64*: the flood's sources, ports and sequence numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// A unicast address outside 0/8, 127/8 and 224/3, and not the client.
    fn source(&mut self) -> Ipv4Addr {
        loop {
            let a = Ipv4Addr::from(self.next());
            let first = a.octets()[0];
            if first != 0 && first != 127 && first < 224 && a != CLIENT && a != SERVER {
                return a;
            }
        }
    }
}

/// A spoofed SYN as a Linux client sends it (MSS, SACK, timestamps, WS).
fn spoofed_syn(rng: &mut Rng) -> Vec<u8> {
    let mut tcp = TcpRepr {
        src_port: 1024 + (rng.next() % 64_000) as u16,
        dst_port: PORT,
        seq: rng.next(),
        flags: TcpFlags::SYN,
        window: 64_240,
        ..TcpRepr::default()
    };
    tcp.options.mss = Some(1460);
    tcp.options.sack_permitted = true;
    tcp.options.timestamps = Some((rng.next(), 0));
    tcp.options.window_scale = Some(7);
    let mut buf = vec![0u8; 80];
    let n = emit_packet(
        &mut buf,
        IpAddr::V4(rng.source()),
        IpAddr::V4(SERVER),
        64,
        0,
        &tcp,
        &[],
    )
    .expect("emit");
    buf.truncate(n);
    buf
}

/// A legitimate client: when it starts, when it connected, what came back.
struct Client {
    start: Instant,
    id: Option<ConnId>,
    connected: Option<Instant>,
    sent: usize,
    echoed: usize,
    closed: bool,
}

/// What the run measured.
#[derive(Debug)]
struct Figures {
    peak_connections: usize,
    peak_half_open: usize,
    peak_committed: usize,
    cookies_sent: u64,
    cookies_accepted: u64,
    max_connect: Duration,
    mean_connect: Duration,
    completed: usize,
}

fn server_cfg() -> Config {
    Config {
        memory_budget: BUDGET,
        ..Config::default()
    }
}

fn run(flood: u64) -> Figures {
    let mut server = Stack::new(server_cfg(), *b"flood-server-key");
    server.add_address(IpAddr::V4(SERVER));
    let lid = server
        .listen(SocketAddr::new(IpAddr::V4(SERVER), PORT), 128)
        .unwrap();
    let mut client = Stack::new(Config::default(), *b"flood-client-key");
    client.add_address(IpAddr::V4(CLIENT));
    let mut rng = Rng(0x0f10_0d5e_ed00_0001);
    let span = FLOOD_MS * 12 / 10;
    let mut clients: Vec<Client> = (0..CLIENTS as u64)
        .map(|i| Client {
            start: Instant::from_millis(i * span / CLIENTS as u64),
            id: None,
            connected: None,
            sent: 0,
            echoed: 0,
            closed: false,
        })
        .collect();
    let mut by_id: HashMap<ConnId, usize> = HashMap::new();
    let mut to_server: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut to_client: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let payload = vec![0x5au8; PAYLOAD];
    let mut buf = vec![0u8; 64 * 1024];
    let mut fig = Figures {
        peak_connections: 0,
        peak_half_open: 0,
        peak_committed: 0,
        cookies_sent: 0,
        cookies_accepted: 0,
        max_connect: Duration::ZERO,
        mean_connect: Duration::ZERO,
        completed: 0,
    };
    let mut flooded = 0u64;
    let end = Instant::from_millis(span + 20_000);
    let mut ms = 0u64;
    while Instant::from_millis(ms) < end && fig.completed < CLIENTS {
        let now = Instant::from_millis(ms);
        // The flood, spread evenly over FLOOD_MS.
        let due = (flood * (ms + 1) / FLOOD_MS).min(flood);
        while flooded < due {
            server.handle_packet(now, &spoofed_syn(&mut rng));
            flooded += 1;
        }
        while to_server.front().is_some_and(|(at, _)| *at <= now) {
            let (_, p) = to_server.pop_front().unwrap();
            server.handle_packet(now, &p);
        }
        while to_client.front().is_some_and(|(at, _)| *at <= now) {
            let (_, p) = to_client.pop_front().unwrap();
            client.handle_packet(now, &p);
        }
        for s in [&mut server, &mut client] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        for (i, c) in clients.iter_mut().enumerate() {
            if c.id.is_none() && c.start <= now {
                let id = client
                    .connect(now, None, SocketAddr::new(IpAddr::V4(SERVER), PORT))
                    .unwrap();
                c.id = Some(id);
                by_id.insert(id, i);
            }
        }
        serve(&mut server, now, lid, &mut buf);
        run_clients(
            &mut client,
            now,
            &mut clients,
            &by_id,
            &payload,
            &mut buf,
            &mut fig,
        );
        while let Some(p) = server.poll_transmit() {
            // Only the real client answers; the spoofed sources are nobody.
            if p[16..20] == CLIENT.octets() {
                to_client.push_back((now + DELAY, p));
            }
        }
        while let Some(p) = client.poll_transmit() {
            to_server.push_back((now + DELAY, p));
        }
        fig.peak_connections = fig.peak_connections.max(server.connection_count());
        fig.peak_half_open = fig.peak_half_open.max(server.half_open_count());
        fig.peak_committed = fig.peak_committed.max(server.memory_committed());
        ms += 1;
    }
    assert_eq!(flooded, flood, "the whole flood was sent");
    let times: Vec<Duration> = clients
        .iter()
        .filter_map(|c| c.connected.map(|at| at - c.start))
        .collect();
    fig.max_connect = times.iter().copied().max().unwrap_or(Duration::MAX);
    fig.mean_connect = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    fig.cookies_sent = server.stats().syn_cookies_sent;
    fig.cookies_accepted = server.stats().syn_cookies_accepted;
    fig
}

/// The echo server: accept everything, send back what is read, close at
/// the end of the stream.
fn serve(server: &mut Stack, now: Instant, lid: synack_core::ListenerId, buf: &mut [u8]) {
    while let Some(ev) = server.poll_event() {
        match ev {
            Event::Incoming(_) => {
                while let Ok(id) = server.accept(lid) {
                    echo(server, now, id, buf);
                }
            }
            Event::Readable(id) | Event::Writable(id) => echo(server, now, id, buf),
            _ => {}
        }
    }
}

fn echo(server: &mut Stack, now: Instant, id: ConnId, buf: &mut [u8]) {
    loop {
        let room = server.send_capacity(id).unwrap_or(0).min(buf.len());
        if room == 0 {
            return;
        }
        match server.recv(now, id, &mut buf[..room]) {
            Ok(0) => {
                let _ = server.close(now, id);
                return;
            }
            Ok(n) => {
                assert_eq!(server.send(now, id, &buf[..n]), Ok(n));
            }
            Err(_) => return,
        }
    }
}

fn run_clients(
    client: &mut Stack,
    now: Instant,
    clients: &mut [Client],
    by_id: &HashMap<ConnId, usize>,
    payload: &[u8],
    buf: &mut [u8],
    fig: &mut Figures,
) {
    while let Some(ev) = client.poll_event() {
        let (id, connected) = match ev {
            Event::Connected(id) => (id, true),
            Event::Readable(id) | Event::Writable(id) => (id, false),
            Event::Closed { id, error } => panic!("legitimate client {id:?} closed: {error:?}"),
            _ => continue,
        };
        let c = &mut clients[by_id[&id]];
        if connected {
            c.connected = Some(now);
        }
        if c.sent < payload.len() {
            c.sent += client.send(now, id, &payload[c.sent..]).unwrap_or(0);
        }
        while let Ok(n) = client.recv(now, id, buf) {
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 0x5a), "echo intact");
            c.echoed += n;
        }
        if c.echoed == payload.len() && !c.closed {
            c.closed = true;
            client.close(now, id).unwrap();
            fig.completed += 1;
        }
    }
}

fn check(flood: u64) {
    let started = std::time::Instant::now();
    let f = run(flood);
    eprintln!(
        "flood of {flood} SYNs: {f:?} ({:.1} s wall)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(f.completed, CLIENTS, "every legitimate transfer completes");
    assert!(f.max_connect < Duration::from_secs(1), "{f:?}");
    let cfg = server_cfg();
    assert!(f.peak_half_open <= cfg.max_syn_backlog, "{f:?}");
    assert!(f.peak_connections <= cfg.max_syn_backlog + CLIENTS, "{f:?}");
    assert!(f.peak_committed <= BUDGET, "{f:?}");
    assert!(f.cookies_sent as f64 > flood as f64 * 0.99, "{f:?}");
    assert!(f.cookies_accepted > 0, "{f:?}");
}

/// The full million SYNs over 10 s (100,000 a second).
#[test]
fn a_million_syn_flood_does_not_keep_legitimate_clients_out() {
    check(1_000_000);
}
