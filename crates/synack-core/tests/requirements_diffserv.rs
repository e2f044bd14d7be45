//! The Differentiated Services field (RFC 9293 §3.9.1.9, §3.9.2): the
//! application sets the DSCP of a connection's segments (MUST-48), TCP
//! passes it to IP unchanged on every segment (SHLD-22), it may change
//! during the connection (SHLD-21), and what the peer sends has no bearing
//! on it (§3.9.1.1) and is not reported (MAY-9, not taken). One `Stack`
//! driven by hand, over IPv4 and IPv6.
//!
//! The harness parses every packet the stack sends with `parse_packet`,
//! which rejects an IPv4 header whose checksum is wrong: every segment
//! below went through that check as well.

mod common;

use common::*;
use synack_core::{Config, Dscp, Error, Event, Stack, State};
use synack_wire::{emit_packet, internet_checksum, packet_len, parse_packet, TcpRepr};

/// Assured Forwarding class 4, low drop precedence (RFC 2597): 34, TOS 0x88.
const AF41: Dscp = match Dscp::new(34) {
    Some(d) => d,
    None => panic!(),
};

/// Class Selector 1 (RFC 2474 §4.2.2): 8, TOS 0x20.
const CS1: Dscp = match Dscp::new(8) {
    Some(d) => d,
    None => panic!(),
};

/// A peer over IPv4 (10.0.0.1 ↔ 10.0.0.2) or IPv6 (fd00::1 ↔ fd00::2).
fn peer(cfg: Config, v6: bool) -> Peer {
    if !v6 {
        return Peer::with(cfg);
    }
    let mut p = Peer::new_v6();
    p.stack = Stack::new(cfg, SECRET);
    p.stack.add_address(p.local.ip());
    p
}

/// The segments of `segs` whose control bits (PSH aside) are `flags`.
fn with_ctl(segs: &[Seg], flags: synack_wire::TcpFlags) -> Vec<&Seg> {
    segs.iter().filter(|s| s.ctl() == flags).collect()
}

/// Every segment carries `tos`: DSCP `dscp`, ECN bits zero.
#[track_caller]
fn all_carry(segs: &[Seg], dscp: Dscp, what: &str) {
    assert!(!segs.is_empty(), "{what}: no segments");
    for s in segs {
        assert_eq!(s.tos, dscp.tos(0), "{what}: {s:#?}");
        assert_eq!(s.tos & 0b11, 0, "{what}: ECN bits are TCP's, and zero");
    }
}

/// An IP packet from the peer to the stack with TOS / traffic class `tos`.
fn packet_with_tos(p: &Peer, repr: &TcpRepr, payload: &[u8], tos: u8) -> Vec<u8> {
    let mut buf = vec![0u8; packet_len(p.remote.ip(), repr, payload.len())];
    let n = emit_packet(
        &mut buf,
        p.remote.ip(),
        p.local.ip(),
        64,
        tos,
        repr,
        payload,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

/// MUST-48, SHLD-22 (RFC 9293 §3.9.1.9): a listener's DSCP is on every
/// segment of the connections it makes, IPv4 and IPv6, and passed to IP
/// unchanged: the SYN-ACK and its retransmission, data and its
/// retransmission, a delayed pure ACK, the FIN, the ACK that enters
/// TIME-WAIT and the one the TIME-WAIT entry sends for a retransmitted FIN;
/// and on the RST of an aborted connection.
#[test]
fn must_48_shld_22_dscp_on_every_segment_of_a_passive_connection() {
    for v6 in [false, true] {
        let mut p = peer(Config::default(), v6).listening();
        let lid = p.lid.unwrap();
        p.stack.set_listener_dscp(lid, Dscp::EF).unwrap();
        let mut segs = Vec::new();
        p.syn();
        segs.extend(p.transmitted());
        segs.extend(p.advance(secs(1)));
        assert_eq!(with_ctl(&segs, SYN_ACK).len(), 2, "SYN-ACK and its rtx");
        let mut p = p.established();
        assert_eq!(p.stack.dscp(p.id()), Ok(Dscp::EF));

        p.stack.send(p.now, p.id(), b"data").unwrap();
        segs.extend(p.transmitted());
        let data_seq = segs.last().unwrap().tcp.seq;
        segs.extend(p.advance(secs(4)));
        let data: Vec<_> = segs.iter().filter(|s| s.tcp.seq == data_seq).collect();
        assert!(data.len() >= 2 && data[1].payload == b"data", "an rtx");
        p.ack();
        p.data(b"peer");
        segs.extend(p.advance(ms(300)));
        let last = segs.last().unwrap();
        assert!(last.payload.is_empty() && last.ctl() == ACK, "delayed ACK");

        p.stack.shutdown_write(p.now, p.id()).unwrap();
        segs.extend(p.transmitted());
        assert_eq!(segs.last().unwrap().ctl(), FIN_ACK);
        p.ack();
        p.fin();
        segs.extend(p.transmitted());
        assert_eq!(p.state(), State::TimeWait);
        p.snd_nxt -= 1;
        p.fin();
        let tw = p.transmitted();
        assert_eq!(tw.len(), 1, "the TIME-WAIT entry's ACK");
        segs.extend(tw);
        all_carry(&segs, Dscp::EF, if v6 { "v6" } else { "v4" });

        // ABORT: the RST of a connection carries its DSCP too.
        let mut q = peer(Config::default(), v6).listening();
        q.stack.set_listener_dscp(q.lid.unwrap(), CS1).unwrap();
        let mut q = q.established();
        q.stack.abort(q.now, q.id()).unwrap();
        let rst = q.transmitted();
        assert_eq!(with_ctl(&rst, RST).len(), 1, "{rst:#?}");
        all_carry(&rst, CS1, "RST");
    }
}

/// MUST-48 on an active OPEN: `Config::dscp` is on the SYN, its
/// retransmission and the handshake's ACK, and on the RST that answers a
/// segment for a port nobody listens on (no connection owns it: the
/// stack's default applies).
#[test]
fn must_48_config_dscp_on_an_active_open_and_stray_rsts() {
    for v6 in [false, true] {
        let cfg = Config {
            dscp: AF41,
            ..Config::default()
        };
        let mut p = peer(cfg, v6);
        let id = p.stack.connect(p.now, Some(p.local), p.remote).unwrap();
        p.id = Some(id);
        let mut segs = p.transmitted();
        segs.extend(p.advance(secs(1)));
        assert_eq!(with_ctl(&segs, SYN).len(), 2, "SYN and its rtx");
        let mut p = p.established_active();
        p.data(b"x");
        segs.extend(p.advance(ms(300)));
        all_carry(&segs, AF41, "active open");
        assert_eq!(p.stack.dscp(id), Ok(AF41));

        let mut stray = p.repr(SYN, 5, 0);
        stray.dst_port = 81;
        p.inject(&stray, &[]);
        let rst = p.stack.poll_transmit().expect("RST");
        assert_eq!(parse_packet(&rst).unwrap().tos, AF41.tos(0));
    }
}

/// SHLD-21 (RFC 9293 §3.9.1.9): the DSCP changes during the connection,
/// and the segments after the change carry the new one: new data, the
/// retransmission of data first sent before the change, a pure ACK, the
/// FIN, and the TIME-WAIT entry's ACK. The IPv4 header checksum of each
/// packet after a change is right.
#[test]
fn shld_21_dscp_changes_mid_connection() {
    for v6 in [false, true] {
        let mut p = peer(Config::default(), v6).established();
        let id = p.id();
        p.stack.set_nodelay(id, true).unwrap();
        p.stack.send(p.now, id, b"before").unwrap();
        let before = p.transmitted();
        all_carry(&before, Dscp::DEFAULT, "before the change");

        p.stack.set_dscp(id, Dscp::EF).unwrap();
        assert_eq!(p.stack.dscp(id), Ok(Dscp::EF));
        p.stack.send(p.now, id, b"after").unwrap();
        let raw = p.stack.poll_transmit().expect("data");
        if !v6 {
            assert_eq!(internet_checksum(0, &raw[..20]), 0, "IPv4 header checksum");
        }
        let s = parse_packet(&raw).unwrap();
        assert_eq!((s.tos, s.payload), (Dscp::EF.tos(0), &b"after"[..]));
        // Neither is acknowledged: the retransmission of "before" is sent
        // after the change, and carries the new codepoint.
        let rtx = p.advance(secs(2));
        assert_eq!(rtx[0].tcp.seq, before[0].tcp.seq, "{rtx:#?}");
        all_carry(&rtx, Dscp::EF, "after the change");
        p.rcv_nxt = s.tcp.seq.wrapping_add(s.payload.len() as u32);
        p.ack();
        p.data(b"peer");
        let acks = p.advance(ms(300));
        assert_eq!(with_ctl(&acks, ACK).len(), 1);
        all_carry(&acks, Dscp::EF, "pure ACK");

        // Back to the default, then to another class before the close.
        p.stack.set_dscp(id, Dscp::DEFAULT).unwrap();
        p.stack.send(p.now, id, b"d").unwrap();
        all_carry(&p.transmitted(), Dscp::DEFAULT, "reset to 0");
        p.ack();
        p.stack.set_dscp(id, CS1).unwrap();
        p.stack.shutdown_write(p.now, id).unwrap();
        let fin = p.stack.poll_transmit().expect("FIN");
        if !v6 {
            assert_eq!(internet_checksum(0, &fin[..20]), 0, "IPv4 header checksum");
        }
        assert_eq!(parse_packet(&fin).unwrap().tcp.flags, FIN_ACK);
        assert_eq!(parse_packet(&fin).unwrap().tos, CS1.tos(0));
        p.rcv_nxt = p.rcv_nxt.wrapping_add(1);
        p.ack();
        p.fin();
        let mut close = p.transmitted();
        p.snd_nxt -= 1;
        p.fin();
        close.extend(p.transmitted());
        assert_eq!(close.len(), 2, "ACK entering TIME-WAIT, then the entry's");
        all_carry(&close, CS1, "close");

        assert_eq!(p.stack.set_dscp(p.id(), Dscp::EF), Ok(()), "TCB still held");
    }
}

/// MUST-48 for passive OPENs: a listener's setting reaches the connections
/// it accepts; changing it later applies to new connections only, and
/// changing a connection's leaves the listener's alone.
#[test]
fn must_48_listener_dscp_reaches_accepted_connections() {
    for v6 in [false, true] {
        let mut p = peer(Config::default(), v6).listening();
        let lid = p.lid.unwrap();
        assert_eq!(p.stack.listener_dscp(lid), Ok(Dscp::DEFAULT));
        p.stack.set_listener_dscp(lid, AF41).unwrap();
        p.syn();
        all_carry(&p.transmitted(), AF41, "first SYN-ACK");
        let mut p = p.established();
        let first = p.id();
        assert_eq!(p.stack.dscp(first), Ok(AF41));

        p.stack.set_listener_dscp(lid, Dscp::EF).unwrap();
        assert_eq!(p.stack.dscp(first), Ok(AF41), "made before the change");
        p.stack.set_dscp(first, CS1).unwrap();
        assert_eq!(p.stack.listener_dscp(lid), Ok(Dscp::EF));

        // A second connection, from another port of the peer.
        p.remote.set_port(40001);
        p.syn();
        all_carry(&p.transmitted(), Dscp::EF, "second SYN-ACK");
        p.now += RTT;
        p.ack();
        assert_eq!(p.events(), vec![Event::Incoming(lid)]);
        let second = p.stack.accept(lid).unwrap();
        assert_eq!(p.stack.dscp(second), Ok(Dscp::EF));
        assert_eq!(p.stack.dscp(first), Ok(CS1));
    }
    let mut p = Peer::new().listening();
    let lid = p.lid.unwrap();
    p.stack.close_listener(p.now, lid).unwrap();
    assert_eq!(
        p.stack.set_listener_dscp(lid, Dscp::EF),
        Err(Error::InvalidHandle)
    );
    assert_eq!(p.stack.listener_dscp(lid), Err(Error::InvalidHandle));
}

/// SHLD-22 and MAY-9 (RFC 9293 §3.9.1.9, §3.9.1.1, Appendix A.1.1): what
/// the peer puts in its Diffserv field has no bearing on ours and is not
/// matched: a SYN, ACK and data marked EF (with ECN bits) open a connection
/// and deliver as unmarked ones do, and every answer carries our own
/// codepoint (the default here), so each direction keeps its own.
#[test]
fn shld_22_may_9_received_dscp_is_neither_reflected_nor_matched() {
    for v6 in [false, true] {
        let mut p = peer(Config::default(), v6).listening();
        let mut syn = p.repr(SYN, PEER_ISS, 0);
        syn.options.mss = Some(1460);
        let pkt = packet_with_tos(&p, &syn, &[], Dscp::EF.tos(0b11));
        p.inject_raw(&pkt);
        p.snd_nxt = PEER_ISS + 1;
        let mut out = p.transmitted();
        assert_eq!(with_ctl(&out, SYN_ACK).len(), 1);
        // The handshake's ACK and data under other codepoints (a change
        // mid-connection on the peer's side).
        let ack = p.repr(ACK, p.snd_nxt, p.rcv_nxt);
        let pkt = packet_with_tos(&p, &ack, &[], CS1.tos(0));
        p.inject_raw(&pkt);
        let lid = p.lid.unwrap();
        p.id = Some(p.stack.accept(lid).expect("established"));
        let data = p.repr(PSH_ACK, p.snd_nxt, p.rcv_nxt);
        let pkt = packet_with_tos(&p, &data, b"marked", AF41.tos(0b10));
        p.inject_raw(&pkt);
        p.snd_nxt += 6;
        assert_eq!(p.read_all().unwrap(), b"marked");
        out.extend(p.advance(ms(300)));
        assert_eq!(with_ctl(&out, ACK).len(), 1, "{out:#?}");
        all_carry(&out, Dscp::DEFAULT, "answers");
        assert_eq!(p.stack.dscp(p.id()), Ok(Dscp::DEFAULT));
        assert_eq!(p.stack.stats().total_drops(), 0);
    }
}
