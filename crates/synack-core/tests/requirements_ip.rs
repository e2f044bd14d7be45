//! The IP layer under TCP (RFC 9293 §3.9.2): the configured TTL or hop
//! limit on every packet (MUST-49), and IPv4 options in received segments:
//! Record Route and Timestamp (MAY-10, MAY-11) and a completed source route
//! (MUST-53, declined) are skipped, and the answer goes straight back with
//! no options. One `Stack` driven by hand.

mod common;

use common::*;
use synack_core::Config;
use synack_wire::parse_packet;

/// The TTL (IPv4) or hop limit (IPv6) of a packet.
fn ttl_of(packet: &[u8]) -> u8 {
    match packet[0] >> 4 {
        4 => packet[8],
        _ => packet[7],
    }
}

/// MUST-49 (RFC 9293 §3.9.2): `Config::ttl` is the TTL or hop limit of
/// every packet the stack sends: SYN-ACK, data, ACKs, FIN, the RST of a
/// closed port, and the ACK sent from TIME-WAIT.
#[test]
fn must_49_ttl_configurable_on_every_packet() {
    for mk in [Peer::with as fn(Config) -> Peer, |cfg| {
        let mut p = Peer::new_v6();
        p.stack = synack_core::Stack::new(cfg, SECRET);
        p.stack.add_address(p.local.ip());
        p
    }] {
        let mut p = mk(Config {
            ttl: 7,
            ..Config::default()
        })
        .listening();
        let mut ttls = Vec::new();
        let mut drain = |p: &mut Peer| {
            while let Some(pkt) = p.stack.poll_transmit() {
                ttls.push(ttl_of(&pkt));
                let s = parse_packet(&pkt).unwrap();
                let seg = Seg {
                    at: p.now,
                    src: s.src,
                    dst: s.dst,
                    tos: s.tos,
                    tcp: s.tcp,
                    payload: s.payload.to_vec(),
                };
                p.absorb(&seg);
            }
        };
        p.syn();
        drain(&mut p);
        let mut p = p.established();
        p.stack.send(p.now, p.id(), b"data").unwrap();
        p.data(b"more");
        drain(&mut p);
        p.now += ms(300);
        p.stack.handle_timeout(p.now);
        drain(&mut p);
        p.stack.shutdown_write(p.now, p.id()).unwrap();
        drain(&mut p);
        p.ack();
        p.fin();
        drain(&mut p);
        assert_eq!(p.stack.time_wait_count(), 1);
        // A retransmitted FIN, answered from TIME-WAIT.
        p.snd_nxt -= 1;
        p.fin();
        drain(&mut p);
        // A closed port.
        let mut r = p.repr(SYN, 5, 0);
        r.dst_port = 81;
        p.inject(&r, &[]);
        drain(&mut p);
        assert!(ttls.len() >= 7, "{ttls:?}");
        assert!(ttls.iter().all(|&t| t == 7), "{ttls:?}");
    }
}

/// Inserts IPv4 `options` (padded with EOL to a multiple of four bytes)
/// after the fixed header of `packet`, fixing IHL, the total length and the
/// header checksum. The TCP checksum is unchanged: the pseudo-header holds
/// no IP options.
fn with_ip_options(packet: &[u8], options: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    let mut p = packet[..20].to_vec();
    p.extend_from_slice(&opts);
    p.extend_from_slice(&packet[20..]);
    let ihl = (20 + opts.len()) / 4;
    p[0] = 0x40 | ihl as u8;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let mut sum = 0u32;
    for w in p[..ihl * 4].chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// MAY-10, MAY-11 (RFC 9293 §3.9.2), MUST-53 declined (§3.9.2.1): a SYN
/// carrying IPv4 Record Route (kind 7), Timestamp (kind 68) or a completed
/// Loose or Strict Source Route (kinds 131, 137; pointer past the end) is
/// taken like any SYN: the options are skipped (MUST-50), and the SYN-ACK
/// and everything after it go straight to the source address with no IP
/// options (no recorded route, no reversed source route). Data on such a
/// segment is delivered.
#[test]
fn may_10_may_11_must_53_ipv4_options_are_skipped_and_never_echoed() {
    let peer_ip = [10u8, 0, 0, 2];
    let via = [192u8, 0, 2, 1];
    let cases: [(&str, Vec<u8>); 4] = [
        ("record route", [&[7u8, 7, 8][..], &peer_ip].concat()),
        ("timestamp", vec![68, 8, 9, 0, 0, 0, 0, 1]),
        ("loose source route", [&[131u8, 7, 8][..], &via].concat()),
        ("strict source route", [&[137u8, 7, 8][..], &via].concat()),
    ];
    for (name, opts) in cases {
        let mut p = Peer::new().listening();
        let mut syn = p.repr(SYN, PEER_ISS, 0);
        syn.options.mss = Some(1460);
        let pkt = with_ip_options(&p.packet(&syn, &[]), &opts);
        p.inject_raw(&pkt);
        p.snd_nxt = PEER_ISS + 1;
        let raw = p.stack.poll_transmit().expect("a SYN-ACK");
        assert_eq!(raw[0], 0x45, "{name}: no IP options in the reply");
        let s = parse_packet(&raw).unwrap();
        assert_eq!(s.dst, p.remote.ip(), "{name}: straight back to the source");
        assert_eq!(s.tcp.flags, SYN_ACK, "{name}");
        p.rcv_nxt = s.tcp.seq.wrapping_add(1);
        p.stack_iss = s.tcp.seq;
        let ack = p.repr(PSH_ACK, p.snd_nxt, p.rcv_nxt);
        let pkt = with_ip_options(&p.packet(&ack, b"hello"), &opts);
        p.inject_raw(&pkt);
        let lid = p.lid.unwrap();
        let id = p.stack.accept(lid).expect("established");
        p.id = Some(id);
        assert_eq!(p.read_all().unwrap(), b"hello", "{name}");
        p.stack.send(p.now, id, b"reply").unwrap();
        let raw = p.stack.poll_transmit().expect("data");
        assert_eq!(raw[0], 0x45, "{name}");
    }
}
