//! The transparent listener (`Stack::listen_transparent`): connections to
//! any destination, v4 and v6, with the original destination as their
//! local address; deferred handshakes (`Handshake::Defer`) accepted,
//! refused with an RST, an ICMP unreachable or silence, withdrawn and
//! expired; the limits a tool sets; hostile input.
//!
//! Two kinds of test: a hand-driven peer (`common::Peer`) where the exact
//! segments matter, and two synack stacks on one wire (`Wire`) where what
//! a real client makes of the answer matters.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use synack_core::{
    Config, ConnId, Error, Event, Handshake, Instant, ListenerId, Refusal, Stack, State,
    Unreachable,
};
use synack_wire::{parse_icmp_error, parse_packet, IcmpKind, TcpFlags};

/// Somewhere on the internet, as a tunnel sees it: never one of the
/// stack's addresses.
fn far4() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 443)
}

fn far6() -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        8443,
    )
}

/// A peer whose SYNs go to `far4()`, on a stack with a transparent
/// listener in `mode` (the stack's own address stays 10.0.0.1).
fn transparent_peer(cfg: Config, mode: Handshake) -> Peer {
    let mut p = Peer::with(cfg);
    p.local = far4();
    p.lid = Some(p.stack.listen_transparent(16, mode).expect("listen"));
    p
}

/// A deferred request for the peer's SYN: nothing answered, one event.
fn requested(p: &mut Peer) -> synack_core::RequestId {
    p.syn();
    p.expect_nothing();
    assert_eq!(p.events(), vec![Event::Request(p.lid.unwrap())]);
    let r = p.stack.poll_request(p.lid.unwrap()).expect("a request");
    assert_eq!((r.local, r.remote), (p.local, p.remote));
    r.id
}

// ----- two stacks on a wire -------------------------------------------------

/// A synack client stack and a synack server stack with a transparent
/// listener, every packet of each handed to the other: the route of a
/// tunnel, where every destination leads to the server.
struct Wire {
    client: Stack,
    server: Stack,
    now: Instant,
    /// Every packet the server sent, in order.
    from_server: Vec<Vec<u8>>,
    /// Every packet the client sent.
    from_client: Vec<Vec<u8>>,
}

impl Wire {
    fn new(client_cfg: Config, server_cfg: Config) -> Wire {
        let mut client = Stack::new(client_cfg, *b"client-secret-16");
        client.add_address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        client.add_address(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)));
        // The server has no address of its own at all.
        let server = Stack::new(server_cfg, SECRET);
        Wire {
            client,
            server,
            now: T0,
            from_server: Vec::new(),
            from_client: Vec::new(),
        }
    }

    /// Moves packets both ways until neither side has one.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(p) = self.client.poll_transmit() {
                self.server.handle_packet(self.now, &p);
                self.from_client.push(p);
                moved = true;
            }
            while let Some(p) = self.server.poll_transmit() {
                self.client.handle_packet(self.now, &p);
                self.from_server.push(p);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs both stacks' timers for `d`, the wire pumped after each.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            self.pump();
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.client.handle_timeout(end);
        self.server.handle_timeout(end);
        self.pump();
    }

    fn client_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn server_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    /// The client connects to `dst` and the server holds the request.
    fn request(&mut self, lid: ListenerId, dst: SocketAddr) -> (ConnId, synack_core::RequestId) {
        let c = self.client.connect(self.now, None, dst).expect("connect");
        self.pump();
        assert_eq!(self.server_events(), vec![Event::Request(lid)]);
        let r = self.server.poll_request(lid).expect("a request");
        assert_eq!(r.local, dst, "the request knows the original destination");
        assert_eq!(r.remote, self.client.tuple(c).unwrap().local);
        (c, r.id)
    }
}

fn read(stack: &mut Stack, now: Instant, id: ConnId) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let n = stack.recv(now, id, &mut buf).expect("readable");
    buf[..n].to_vec()
}

/// A stream both ways between the client's `c` and the server's `s`.
fn exchange(w: &mut Wire, c: ConnId, s: ConnId) {
    assert_eq!(w.client.send(w.now, c, b"GET / HTTP/1.0\r\n\r\n"), Ok(18));
    w.pump();
    assert_eq!(read(&mut w.server, w.now, s), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(w.server.send(w.now, s, b"200 OK"), Ok(6));
    w.pump();
    assert_eq!(read(&mut w.client, w.now, c), b"200 OK");
}

#[test]
fn any_destination_v4_and_v6_local_address_is_the_original_destination() {
    let mut w = Wire::new(Config::default(), Config::default());
    let lid = w
        .server
        .listen_transparent(16, Handshake::Complete)
        .unwrap();
    assert_eq!(w.server.listener_addr(lid).unwrap().port(), 0);
    assert_eq!(
        w.server.listen_transparent(16, Handshake::Defer),
        Err(Error::AddrInUse),
        "one transparent listener per stack"
    );
    for dst in [far4(), far6()] {
        assert!(w.server.accepts_destination(dst.ip()));
        let c = w.client.connect(w.now, None, dst).unwrap();
        w.pump();
        assert_eq!(w.client_events(), vec![Event::Connected(c)]);
        assert_eq!(w.server_events(), vec![Event::Incoming(lid)]);
        let s = w.server.accept(lid).unwrap();
        let tuple = w.server.tuple(s).unwrap();
        assert_eq!(tuple.local, dst, "local_addr = original destination");
        assert_eq!(tuple.remote, w.client.tuple(c).unwrap().local);
        exchange(&mut w, c, s);
        w.client_events();
        w.server_events();
        // Every server packet came from the destination the client asked for.
        for p in w.from_server.drain(..) {
            assert_eq!(parse_packet(&p).unwrap().src, dst.ip());
        }
    }
}

#[test]
fn own_listeners_and_addresses_keep_precedence() {
    let mut p = Peer::new();
    let own = p.local; // 10.0.0.1:80
    let ordinary = p.stack.listen(own, 16).unwrap();
    let any_port_81 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 81);
    let wildcard = p.stack.listen(any_port_81, 16).unwrap();
    let transparent = p.stack.listen_transparent(16, Handshake::Defer).unwrap();
    let cases = [
        (own, Event::Incoming(ordinary)),
        (SocketAddr::new(own.ip(), 81), Event::Incoming(wildcard)),
        // Our address, no listener of its own: the transparent one.
        (SocketAddr::new(own.ip(), 82), Event::Request(transparent)),
        // A foreign address on port 81: the wildcard listener is for the
        // stack's own addresses only.
        (
            SocketAddr::new(far4().ip(), 81),
            Event::Request(transparent),
        ),
    ];
    for (i, (dst, expected)) in cases.into_iter().enumerate() {
        p.local = dst;
        p.remote.set_port(40000 + i as u16);
        p.syn();
        let sent = p.transmitted();
        if matches!(expected, Event::Incoming(_)) {
            assert_eq!(sent.len(), 1, "SYN-ACK from the ordinary listener");
            p.now += RTT;
            p.ack();
            p.expect_nothing();
        } else {
            assert!(sent.is_empty(), "a deferred SYN is not answered");
        }
        assert_eq!(p.events(), vec![expected], "SYN to {dst}");
    }
}

#[test]
fn invalid_destinations_and_sources_are_dropped_must_57_must_63() {
    let mut p = transparent_peer(Config::default(), Handshake::Complete);
    let bad: [IpAddr; 6] = [
        Ipv4Addr::BROADCAST.into(),
        Ipv4Addr::new(224, 0, 0, 1).into(),
        Ipv4Addr::UNSPECIFIED.into(),
        Ipv4Addr::LOCALHOST.into(),
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).into(),
        Ipv6Addr::UNSPECIFIED.into(),
    ];
    for dst in bad {
        assert!(!p.stack.accepts_destination(dst), "{dst}");
    }
    for dst in &bad[..4] {
        p.local = SocketAddr::new(*dst, 80);
        p.syn();
        p.expect_nothing();
    }
    assert_eq!(p.drops("not our address"), 4);
    // MUST-63: a broadcast source to a valid destination.
    p.local = far4();
    p.remote = SocketAddr::new(Ipv4Addr::BROADCAST.into(), 40000);
    p.syn();
    p.expect_nothing();
    assert_eq!(p.drops("invalid source address"), 1);
    assert_eq!(p.stack.connection_count(), 0);
    assert!(p.events().is_empty());
}

#[test]
fn deferred_request_accepted_then_data_flows() {
    let mut p = transparent_peer(Config::default(), Handshake::Defer);
    let lid = p.lid.unwrap();
    let rid = requested(&mut p);
    assert_eq!(
        p.stack.poll_request(lid),
        None,
        "each request handed out once"
    );
    // The client retransmits its SYN while the application decides.
    p.now += secs(1);
    p.syn();
    p.expect_nothing();
    assert!(p.events().is_empty(), "absorbed: not a second request");
    assert_eq!(p.stack.stats().request_syns_absorbed, 1);
    assert_eq!(p.stack.request_count(), 1);

    let id = p.stack.accept_request(p.now, rid).unwrap();
    p.id = Some(id);
    let sa = p.expect_segment(SYN_ACK);
    assert_eq!(sa.tcp.ack, PEER_ISS.wrapping_add(1));
    assert_eq!(p.state(), State::SynReceived);
    assert_eq!(p.stack.request_count(), 0);
    assert_eq!(
        p.stack.accept_request(p.now, rid),
        Err(Error::InvalidHandle),
        "decided once"
    );
    p.now += RTT;
    p.ack();
    p.expect_nothing();
    assert_eq!(p.events(), vec![Event::Connected(id)]);
    assert_eq!(p.stack.accept(lid), Err(Error::WouldBlock), "not queued");
    assert_eq!(p.stack.tuple(id).unwrap().local, far4());
    p.data(b"hello");
    assert_eq!(p.read_all().unwrap(), b"hello");
    p.stack.send(p.now, id, b"world").unwrap();
    p.transmitted();
    assert_eq!(p.received, b"world");
    let s = p.stack.stats();
    assert_eq!((s.requests_deferred, s.requests_accepted), (1, 1));
    assert_eq!(p.stack.half_open_count(), 0);
}

#[test]
fn refused_with_reset_the_rst_of_rfc_9293_3_10_7_1() {
    let mut p = transparent_peer(Config::default(), Handshake::Defer);
    let rid = requested(&mut p);
    p.stack.refuse_request(p.now, rid, Refusal::Reset).unwrap();
    let rst = p.expect_segment(RST_ACK);
    assert_eq!((rst.tcp.seq, rst.tcp.ack), (0, PEER_ISS.wrapping_add(1)));
    assert_eq!(rst.src, far4().ip(), "from the original destination");
    assert_eq!(
        p.stack.refuse_request(p.now, rid, Refusal::Silent),
        Err(Error::InvalidHandle)
    );
    assert_eq!(p.stack.stats().requests_refused, 1);
}

#[test]
fn refused_with_reset_the_client_sees_connection_refused() {
    let mut w = Wire::new(Config::default(), Config::default());
    let lid = w.server.listen_transparent(16, Handshake::Defer).unwrap();
    for dst in [far4(), far6()] {
        let (c, rid) = w.request(lid, dst);
        w.server.refuse_request(w.now, rid, Refusal::Reset).unwrap();
        w.pump();
        assert_eq!(
            w.client_events(),
            vec![Event::Closed {
                id: c,
                error: Some(Error::Refused)
            }]
        );
    }
}

#[test]
fn refused_with_icmp_unreachable_v4_and_v6() {
    // (destination, how, type and code expected, what the client makes of it)
    let cases = [
        (far4(), Unreachable::Port, (3, 3)),
        (far4(), Unreachable::Host, (3, 1)),
        (far4(), Unreachable::Network, (3, 0)),
        (far4(), Unreachable::AdminProhibited, (3, 13)),
        (far6(), Unreachable::Port, (1, 4)),
        (far6(), Unreachable::Host, (1, 3)),
        (far6(), Unreachable::Network, (1, 0)),
        (far6(), Unreachable::AdminProhibited, (1, 1)),
    ];
    for (dst, how, (icmp_type, code)) in cases {
        let mut w = Wire::new(Config::default(), Config::default());
        let lid = w.server.listen_transparent(16, Handshake::Defer).unwrap();
        let (c, rid) = w.request(lid, dst);
        let syn_seq = parse_packet(&w.from_client[0]).unwrap().tcp.seq;
        w.server
            .refuse_request(w.now, rid, Refusal::Unreachable(how))
            .unwrap();
        w.pump();
        assert_eq!(w.from_server.len(), 1);
        let icmp = &w.from_server[0];
        let header = if dst.is_ipv4() { 20 } else { 40 };
        assert_eq!((icmp[header], icmp[header + 1]), (icmp_type, code));
        let e = parse_icmp_error(icmp).expect("a valid ICMP error");
        assert_eq!(e.from, dst.ip(), "from the original destination");
        assert_eq!(e.kind, IcmpKind::DestinationUnreachable(code));
        assert_eq!(e.quoted_dst, dst);
        assert_eq!(e.quoted_src, w.client.tuple(c).unwrap().local);
        assert_eq!(e.seq, syn_seq, "the SYN is quoted");
        // The client's TCP acts on it: a port unreachable is a refusal
        // (RFC 1122 §4.2.3.9: hard), the others soft errors now and the
        // error reported when the connection gives up.
        let ev = w.client_events();
        match how {
            Unreachable::Port => assert_eq!(
                ev,
                vec![Event::Closed {
                    id: c,
                    error: Some(Error::Refused)
                }]
            ),
            Unreachable::Network => assert_eq!(
                ev,
                vec![Event::SoftError {
                    id: c,
                    error: Error::NetworkUnreachable
                }]
            ),
            _ => assert_eq!(
                ev,
                vec![Event::SoftError {
                    id: c,
                    error: Error::HostUnreachable
                }]
            ),
        }
        assert_eq!(w.server.stats().icmp_unreachable_sent, 1);
    }
}

#[test]
fn refused_silently_the_client_retransmits_and_times_out() {
    let client = Config {
        syn_retries: 2,
        ..Config::default()
    };
    let mut w = Wire::new(client, Config::default());
    let lid = w.server.listen_transparent(16, Handshake::Defer).unwrap();
    let (c, rid) = w.request(lid, far4());
    w.server
        .refuse_request(w.now, rid, Refusal::Silent)
        .unwrap();
    // Each retransmitted SYN is a new request (the refusal answered the
    // SYN before it), which the application, its upstream still silent,
    // refuses the same way.
    let mut refused = 1;
    for _ in 0..60 {
        w.run_for(secs(1));
        while let Some(r) = w.server.poll_request(lid) {
            w.server
                .refuse_request(w.now, r.id, Refusal::Silent)
                .unwrap();
            refused += 1;
        }
    }
    assert!(w.from_server.is_empty(), "silence");
    assert_eq!(w.from_client.len(), 3, "the SYN and two retransmissions");
    assert_eq!(refused, 3);
    assert_eq!(
        w.client_events(),
        vec![Event::Closed {
            id: c,
            error: Some(Error::TimedOut)
        }]
    );
    assert_eq!(w.server.request_count(), 0);
    assert_eq!(w.server.stats().requests_refused, 3);
}

#[test]
fn a_request_the_application_forgets_expires_silently() {
    let mut p = transparent_peer(Config::default(), Handshake::Defer);
    let rid = requested(&mut p);
    assert!(p
        .stack
        .poll_timeout()
        .is_some_and(|t| t <= p.now + secs(30)));
    let sent = p.advance(secs(29));
    assert!(sent.is_empty());
    assert_eq!(p.stack.request_count(), 1);
    let sent = p.advance(secs(1));
    assert!(sent.is_empty(), "expiry answers nothing");
    assert_eq!(p.stack.request_count(), 0);
    assert_eq!(p.stack.stats().requests_expired, 1);
    assert_eq!(p.drops("connection request expired"), 1);
    assert_eq!(
        p.stack.accept_request(p.now, rid),
        Err(Error::InvalidHandle)
    );
    assert_eq!(p.stack.poll_timeout(), None, "nothing left to time");
}

#[test]
fn the_clients_rst_withdraws_a_request() {
    let mut p = transparent_peer(Config::default(), Handshake::Defer);
    let rid = requested(&mut p);
    // Not at the SYN's next sequence number: a blind guess, dropped.
    p.send(RST, PEER_ISS.wrapping_add(1000), 0, &[]);
    p.expect_nothing();
    assert_eq!(p.stack.request_count(), 1);
    assert_eq!(p.drops("RST outside a connection request"), 1);
    p.rst();
    p.expect_nothing();
    assert_eq!(p.stack.request_count(), 0);
    assert_eq!(p.stack.stats().requests_reset, 1);
    assert_eq!(
        p.stack.refuse_request(p.now, rid, Refusal::Reset),
        Err(Error::InvalidHandle)
    );
}

#[test]
fn an_accepted_request_that_fails_tells_the_application() {
    // Reset by the client in SYN-RECEIVED: refused.
    let mut p = transparent_peer(Config::default(), Handshake::Defer);
    let rid = requested(&mut p);
    let id = p.stack.accept_request(p.now, rid).unwrap();
    p.expect_segment(SYN_ACK);
    assert_eq!(p.stack.half_open_count(), 1);
    p.rst();
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            id,
            error: Some(Error::Refused)
        }]
    );
    assert_eq!(p.stack.half_open_count(), 0);
    // The SYN-ACK's retransmissions run out: timed out.
    let mut p = transparent_peer(
        Config {
            synack_retries: 1,
            ..Config::default()
        },
        Handshake::Defer,
    );
    let rid = requested(&mut p);
    let id = p.stack.accept_request(p.now, rid).unwrap();
    p.expect_segment(SYN_ACK);
    p.advance(secs(30));
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            id,
            error: Some(Error::TimedOut)
        }]
    );
    assert_eq!(p.stack.half_open_count(), 0);
}

#[test]
fn closing_the_listener_resets_its_pending_requests() {
    let mut p = transparent_peer(Config::default(), Handshake::Defer);
    requested(&mut p);
    p.stack.close_listener(p.now, p.lid.unwrap()).unwrap();
    p.expect_segment(RST_ACK);
    assert_eq!(p.stack.request_count(), 0);
    // A SYN now finds no listener: a closed port.
    p.remote.set_port(40001);
    p.syn();
    p.expect_segment(RST_ACK);
}

/// Opens a connection from the peer's port `port` to the transparent
/// listener (Complete) and accepts it; the stack's next sequence number
/// comes with it.
fn open_from(p: &mut Peer, port: u16) -> (ConnId, u32) {
    p.remote.set_port(port);
    p.syn();
    p.expect_segment(SYN_ACK);
    p.now += RTT;
    p.ack();
    p.expect_nothing();
    assert_eq!(p.events(), vec![Event::Incoming(p.lid.unwrap())]);
    (p.stack.accept(p.lid.unwrap()).unwrap(), p.rcv_nxt)
}

#[test]
fn connection_limit_refuses_new_syns_and_leaves_streams_alone() {
    let cfg = Config {
        max_connections: 2,
        ..Config::default()
    };
    let mut p = transparent_peer(cfg, Handshake::Complete);
    let a = open_from(&mut p, 41000);
    let b = open_from(&mut p, 41001);
    p.remote.set_port(41002);
    p.syn();
    let rst = p.expect_segment(RST_ACK);
    assert_eq!(rst.tcp.ack, PEER_ISS.wrapping_add(1));
    assert_eq!(p.stack.stats().syns_refused_at_limit, 1);
    assert_eq!(p.drops("connection limit reached"), 1);
    // The established streams are untouched: data flows on both.
    for (port, (id, nxt)) in [(41000, a), (41001, b)] {
        p.remote.set_port(port);
        p.id = Some(id);
        p.snd_nxt = PEER_ISS.wrapping_add(1);
        p.rcv_nxt = nxt;
        p.data(b"still here");
        // (ACKs owed to either stream may leave at this drain.)
        while p.stack.poll_transmit().is_some() {}
        assert_eq!(p.read_all().unwrap(), b"still here");
        assert_eq!(p.state(), State::Established);
    }
    // Room again once one closes.
    p.stack.abort(p.now, a.0).unwrap();
    p.remote.set_port(41000);
    p.expect_segment(RST);
    p.events();
    open_from(&mut p, 41003);
}

#[test]
fn half_open_limit_counts_requests_and_accepted_handshakes() {
    let cfg = Config {
        max_syn_backlog: 2,
        ..Config::default()
    };
    let mut p = transparent_peer(cfg, Handshake::Defer);
    p.remote.set_port(42000);
    let first = requested(&mut p);
    p.remote.set_port(42001);
    requested(&mut p);
    p.remote.set_port(42002);
    p.syn();
    p.expect_segment(RST_ACK);
    assert_eq!(p.drops("half-open limit reached"), 1);
    // Accepting one keeps it half-open until the handshake completes.
    p.remote.set_port(42000);
    let id = p.stack.accept_request(p.now, first).unwrap();
    p.expect_segment(SYN_ACK);
    p.remote.set_port(42003);
    p.syn();
    p.expect_segment(RST_ACK);
    p.remote.set_port(42000);
    p.now += RTT;
    p.ack();
    assert_eq!(p.events(), vec![Event::Connected(id)]);
    p.remote.set_port(42004);
    requested(&mut p);
    assert_eq!(p.stack.stats().syns_refused_at_limit, 2);
    assert_eq!(p.stack.state(id), Ok(State::Established));
}

#[test]
fn connection_limit_counts_pending_requests() {
    let cfg = Config {
        max_connections: 2,
        ..Config::default()
    };
    let mut p = transparent_peer(cfg, Handshake::Defer);
    p.remote.set_port(43000);
    let rid = requested(&mut p);
    let id = p.stack.accept_request(p.now, rid).unwrap();
    p.expect_segment(SYN_ACK);
    p.now += RTT;
    p.ack();
    p.events();
    p.remote.set_port(43001);
    requested(&mut p);
    p.remote.set_port(43002);
    p.syn();
    p.expect_segment(RST_ACK);
    assert_eq!(p.drops("connection limit reached"), 1);
    assert_eq!(
        p.stack.connect(p.now, None, p.remote),
        Err(Error::NoPorts),
        "an active open counts them too"
    );
    assert_eq!(p.stack.state(id), Ok(State::Established));
}

#[test]
fn a_connection_accepted_transparently_outlives_its_listener() {
    let mut p = transparent_peer(Config::default(), Handshake::Complete);
    let (id, _) = open_from(&mut p, 44000);
    p.stack.close_listener(p.now, p.lid.unwrap()).unwrap();
    p.id = Some(id);
    p.data(b"after");
    p.transmitted();
    assert_eq!(p.read_all().unwrap(), b"after");
    assert!(p.stack.accepts_destination(far4().ip()));
}

// ----- hostile input ----------------------------------------------------------

/// Addresses a hostile sender picks from: ours, foreign, and invalid.
fn address(i: u8, v6: bool) -> IpAddr {
    match (v6, i % 6) {
        (false, 0) => Ipv4Addr::new(10, 0, 0, 1).into(),
        (false, 1) => Ipv4Addr::BROADCAST.into(),
        (false, 2) => Ipv4Addr::new(224, 0, 0, 5).into(),
        (false, 3) => Ipv4Addr::UNSPECIFIED.into(),
        (false, n) => Ipv4Addr::new(198, 51, 100, n).into(),
        (true, 0) => Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).into(),
        (true, 1) => Ipv6Addr::UNSPECIFIED.into(),
        (true, n) => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n)).into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random segments to random addresses, and random decisions, never
    /// panic; what the stack sends parses (TCP, or ICMP errors), the
    /// requests stay within the half-open bound.
    #[test]
    fn hostile_segments_to_a_transparent_listener(
        segs in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), any::<bool>(), any::<u8>(), any::<u32>(),
             any::<u32>(), 0u16..4, 0u16..4, proptest::collection::vec(any::<u8>(), 0..40),
             0u8..6),
            1..60),
    ) {
        let cfg = Config { max_syn_backlog: 8, max_connections: 12, ..Config::default() };
        let mut stack = Stack::new(cfg, SECRET);
        stack.add_address(Ipv4Addr::new(10, 0, 0, 1).into());
        let lid = stack.listen_transparent(4, Handshake::Defer).unwrap();
        let mut now = T0;
        for (src, dst, v6, flags, seq, ack, sport, dport, payload, decide) in segs {
            let repr = synack_wire::TcpRepr {
                src_port: 40000 + sport,
                dst_port: 80 + dport,
                seq,
                ack,
                flags: TcpFlags(flags),
                window: 1000,
                ..Default::default()
            };
            let (s, d) = (address(src, v6), address(dst.wrapping_add(3), v6));
            let mut buf = vec![0u8; synack_wire::packet_len(s, &repr, payload.len())];
            let n = synack_wire::emit_packet(&mut buf, s, d, 64, 0, &repr, &payload).unwrap();
            buf.truncate(n);
            if decide == 5 && !buf.is_empty() {
                // Corrupt a byte too.
                let i = usize::from(flags) % buf.len();
                buf[i] ^= 0x5a;
            }
            stack.handle_packet(now, &buf);
            while let Some(r) = stack.poll_request(lid) {
                let _ = match decide {
                    0 => stack.accept_request(now, r.id).map(|_| ()),
                    1 => stack.refuse_request(now, r.id, Refusal::Reset),
                    2 => stack.refuse_request(now, r.id, Refusal::Unreachable(Unreachable::Host)),
                    3 => stack.refuse_request(now, r.id, Refusal::Silent),
                    _ => Ok(()),
                };
            }
            while let Some(p) = stack.poll_transmit() {
                prop_assert!(parse_packet(&p).is_ok() || parse_icmp_error(&p).is_ok());
            }
            while stack.poll_event().is_some() {}
            prop_assert!(stack.request_count() <= 8);
            prop_assert!(stack.half_open_count() <= 8);
            now += Duration::from_millis(u64::from(ack % 5000));
            stack.handle_timeout(now);
        }
    }
}
