//! Opening and addressing (RFC 9293 §3.9.1.1, §3.9.2.3): listeners that
//! never disturb others (MUST-41, MUST-42), the local address of a
//! connection (MUST-43, MUST-44, MUST-45), invalid remote and source
//! addresses (MUST-46, MUST-63) and segments to broadcast or multicast
//! destinations (MUST-57). One `Stack` driven by hand, through its public
//! API; packets with arbitrary addresses are built here.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use common::*;
use synack_core::{Config, Error, Event, Stack, State};
use synack_wire::{emit_packet, packet_len, parse_packet, Segment, TcpOptions, TcpRepr};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
const C6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));

fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// A stack with the addresses A and B (IPv4, in that order) and C6.
fn multihomed() -> Stack {
    let mut s = Stack::new(Config::default(), SECRET);
    for ip in [A, B, C6] {
        s.add_address(ip);
    }
    s
}

/// An IP packet `src` → `dst` carrying `repr`.
fn packet(
    src: SocketAddr,
    dst: SocketAddr,
    flags: synack_wire::TcpFlags,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        seq,
        ack,
        flags,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss: flags.syn().then_some(1460),
            ..TcpOptions::default()
        },
    };
    let mut buf = vec![0u8; packet_len(src.ip(), &repr, 0)];
    let n = emit_packet(&mut buf, src.ip(), dst.ip(), 64, 0, &repr, &[]).expect("emit");
    buf.truncate(n);
    buf
}

/// Every packet the stack has queued, parsed.
fn sent(s: &mut Stack) -> Vec<(IpAddr, IpAddr, TcpRepr)> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|p| {
            let Segment { src, dst, tcp, .. } = parse_packet(&p).expect("well-formed");
            (src, dst, tcp)
        })
        .collect()
}

/// MUST-41 (RFC 9293 §3.9.1.1): a passive OPEN on a port already listened
/// on fails with AddrInUse, and disturbs nothing: the established
/// connection on that port keeps its state and its data, and the first
/// listener still takes new connections.
#[test]
fn must_41_second_listen_fails_and_disturbs_nothing() {
    let mut p = Peer::new().established();
    p.data(b"before");
    assert_eq!(p.stack.listen(p.local, 16), Err(Error::AddrInUse));
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.read_all().unwrap(), b"before");
    p.data(b"after");
    assert_eq!(p.read_all().unwrap(), b"after");
    let _ = p.advance(ms(500));
    p.expect_nothing();
    // The first listener still answers a new SYN, from another port.
    let other = sa(PEER, 40001);
    p.inject_raw(&packet(other, p.local, SYN, 5000, 0));
    let out = sent(&mut p.stack);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].2.flags, SYN_ACK);
    assert_eq!(out[0].2.dst_port, 40001);
}

/// MUST-42 (RFC 9293 §3.9.1.1): LISTEN is allowed on a local port that a
/// connection in SYN-SENT uses; the connection goes on unharmed (its
/// SYN-ACK establishes it) and the listener takes SYNs from others.
#[test]
fn must_42_listen_on_the_port_of_a_syn_sent_connection() {
    let mut p = Peer::new();
    p.local.set_port(5000);
    let mut p = p.syn_sent();
    let lid = p.stack.listen(p.local, 16).expect("LISTEN beside SYN-SENT");
    assert_eq!(p.state(), State::SynSent);
    p.now += RTT;
    p.syn_ack_with(TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    });
    let iss = p.stack_iss;
    p.expect_ack(iss.wrapping_add(1), PEER_ISS + 1);
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.events(), vec![Event::Connected(p.id())]);
    // Another host's SYN to port 5000 reaches the listener.
    let other = sa(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 1234);
    p.inject_raw(&packet(other, p.local, SYN, 5000, 0));
    let out = sent(&mut p.stack);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].1, out[0].2.flags), (other.ip(), SYN_ACK));
    assert_eq!(p.stack.listener_addr(lid), Ok(p.local));
}

/// MUST-42 with SYN-RECEIVED: a simultaneous open from port 5000, then
/// LISTEN on 5000.
#[test]
fn must_42_listen_on_the_port_of_a_syn_received_connection() {
    let mut p = Peer::new();
    p.local.set_port(5000);
    let mut p = p.syn_sent();
    p.syn();
    p.expect_segment(SYN_ACK);
    assert_eq!(p.state(), State::SynReceived);
    assert!(p.stack.listen(p.local, 16).is_ok());
    p.ack();
    assert_eq!(p.state(), State::Established);
}

/// MUST-43 (RFC 9293 §3.9.1.1): OPEN takes an optional local IP address.
/// Actively: a connection from B sends its SYN from B. Passively: a
/// listener on A only does not take a SYN to B, which is answered by an RST
/// from B (no listener there: §3.10.7.1).
#[test]
fn must_43_local_address_on_open() {
    let mut s = multihomed();
    let now = T0;
    let id = s.connect(now, Some(sa(B, 0)), sa(PEER, 80)).unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].2.flags), (B, SYN));
    assert_eq!(s.tuple(id).unwrap().local.ip(), B);
    // A local address that is not ours is refused.
    let x = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
    assert_eq!(
        s.connect(now, Some(sa(x, 0)), sa(PEER, 80)),
        Err(Error::AddrNotAvailable)
    );

    s.listen(sa(A, 80), 16).unwrap();
    s.handle_packet(now, &packet(sa(PEER, 40000), sa(B, 80), SYN, 7, 0));
    let out = sent(&mut s);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].0, out[0].2.flags), (B, RST_ACK), "no listener on B");
    s.handle_packet(now, &packet(sa(PEER, 40000), sa(A, 80), SYN, 7, 0));
    let out = sent(&mut s);
    assert_eq!(
        (out[0].0, out[0].2.flags),
        (A, SYN_ACK),
        "the listener on A"
    );
}

/// MUST-44 (RFC 9293 §3.9.1.1): with no local address given, one is chosen
/// before the first SYN. synack is its own IP layer with one interface and
/// no routing table: the choice is the first configured address of the
/// peer's family (A for an IPv4 peer, C6 for an IPv6 one), with an
/// ephemeral port; with no address of that family the OPEN fails.
#[test]
fn must_44_local_address_chosen_before_the_first_syn() {
    let mut s = multihomed();
    let id = s.connect(T0, None, sa(PEER, 80)).unwrap();
    let out = sent(&mut s);
    assert_eq!((out[0].0, out[0].2.flags), (A, SYN));
    let local = s.tuple(id).unwrap().local;
    assert_eq!(local.ip(), A);
    let cfg = Config::default();
    assert!((cfg.ephemeral_low..=cfg.ephemeral_high).contains(&local.port()));
    let id6 = s.connect(T0, None, sa(PEER6, 80)).unwrap();
    let out = sent(&mut s);
    assert_eq!((out[0].0, out[0].2.flags), (C6, SYN));
    assert_eq!(s.tuple(id6).unwrap().local.ip(), C6);

    let mut v4_only = Stack::new(Config::default(), SECRET);
    v4_only.add_address(A);
    assert_eq!(
        v4_only.connect(T0, None, sa(PEER6, 80)),
        Err(Error::AddrNotAvailable)
    );
}

/// MUST-45 (RFC 9293 §3.9.1.1): once segments were exchanged, every later
/// segment uses the same local address. A listener on the unspecified
/// address takes a SYN to B (not the first address, A): the SYN-ACK, the
/// data and the FIN all come from B, also after addresses are added.
#[test]
fn must_45_same_local_address_for_the_whole_connection() {
    let mut s = multihomed();
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80);
    let lid = s.listen(any, 16).unwrap();
    let peer = sa(PEER, 40000);
    let mut now = T0;
    s.handle_packet(now, &packet(peer, sa(B, 80), SYN, PEER_ISS, 0));
    let out = sent(&mut s);
    assert_eq!((out[0].0, out[0].2.flags), (B, SYN_ACK));
    let iss = out[0].2.seq;
    now += RTT;
    s.handle_packet(
        now,
        &packet(peer, sa(B, 80), ACK, PEER_ISS + 1, iss.wrapping_add(1)),
    );
    let id = s.accept(lid).unwrap();
    assert_eq!(s.tuple(id).unwrap().local, sa(B, 80));
    s.add_address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)));
    s.send(now, id, b"hello").unwrap();
    s.close(now, id).unwrap();
    let out = sent(&mut s);
    assert!(!out.is_empty());
    assert!(
        out.iter().all(|(src, dst, _)| (*src, *dst) == (B, PEER)),
        "{out:?}"
    );
    assert!(out.iter().any(|(_, _, t)| t.flags.fin()));
}

/// MUST-46 (RFC 9293 §3.9.1.1): an active OPEN to a broadcast, multicast
/// or unspecified address (or port 0) is an error, and no SYN is sent.
#[test]
fn must_46_open_to_an_invalid_remote_is_refused() {
    let mut s = multihomed();
    for remote in [
        sa(IpAddr::V4(Ipv4Addr::BROADCAST), 80),
        sa(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)), 80),
        sa(IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3)), 80),
        sa(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80),
        sa("ff02::1".parse().unwrap(), 80),
        sa(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80),
        sa(PEER, 0),
    ] {
        assert_eq!(
            s.connect(T0, None, remote),
            Err(Error::InvalidAddress),
            "{remote}"
        );
        assert!(sent(&mut s).is_empty(), "{remote}: no SYN");
    }
    assert_eq!(s.connection_count(), 0);
}

/// MUST-57 (RFC 9293 §3.9.2.3): a segment addressed to a broadcast or
/// multicast address, SYN or not, is discarded silently (counted), even
/// with a listener on the unspecified address.
#[test]
fn must_57_segments_to_broadcast_or_multicast_are_dropped() {
    let mut s = multihomed();
    s.listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80), 16)
        .unwrap();
    s.listen(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80), 16)
        .unwrap();
    let mut n = 0;
    for (src, dst) in [
        (PEER, IpAddr::V4(Ipv4Addr::BROADCAST)),
        (PEER, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255))),
        (PEER, IpAddr::V4(Ipv4Addr::new(224, 1, 1, 1))),
        (PEER6, "ff02::1".parse().unwrap()),
    ] {
        for flags in [SYN, ACK, PSH_ACK, FIN_ACK] {
            s.handle_packet(T0, &packet(sa(src, 40000), sa(dst, 80), flags, 1, 1));
            n += 1;
            assert!(
                sent(&mut s).is_empty(),
                "{dst} {flags:?}: no SYN-ACK, no RST"
            );
        }
    }
    assert_eq!(s.connection_count(), 0);
    assert_eq!(s.stats().drops.get("not our address").copied(), Some(n));
}

/// MUST-63 (RFC 9293 §3.9.2.3): a SYN from an invalid source (broadcast,
/// multicast, unspecified, loopback from the wire, or port 0) is ignored:
/// no SYN-ACK, no RST, counted. The loopback case is also in
/// `robustness.rs: must_63_loopback_source_is_ignored`.
#[test]
fn must_63_syns_from_invalid_sources_are_ignored() {
    let mut s = multihomed();
    s.listen(sa(A, 80), 16).unwrap();
    s.listen(sa(C6, 80), 16).unwrap();
    let mut n = 0;
    for (src, dst) in [
        (sa(IpAddr::V4(Ipv4Addr::BROADCAST), 40000), sa(A, 80)),
        (
            sa(IpAddr::V4(Ipv4Addr::new(224, 1, 1, 1)), 40000),
            sa(A, 80),
        ),
        (sa(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 40000), sa(A, 80)),
        (sa(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000), sa(A, 80)),
        (sa(PEER, 0), sa(A, 80)),
        (sa("ff02::1".parse().unwrap(), 40000), sa(C6, 80)),
        (sa(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 40000), sa(C6, 80)),
        (sa(IpAddr::V6(Ipv6Addr::LOCALHOST), 40000), sa(C6, 80)),
    ] {
        s.handle_packet(T0, &packet(src, dst, SYN, 1, 0));
        n += 1;
        assert!(sent(&mut s).is_empty(), "{src}: no SYN-ACK, no RST");
    }
    assert_eq!(s.connection_count(), 0);
    assert_eq!(
        s.stats().drops.get("invalid source address").copied(),
        Some(n)
    );
    // A valid source still gets its SYN-ACK.
    s.handle_packet(T0, &packet(sa(PEER, 40000), sa(A, 80), SYN, 1, 0));
    assert_eq!(sent(&mut s).len(), 1);
}
