//! Window scaling only when both SYNs offered it, and never from a
//! non-SYN segment (RFC 7323 §2.2, row 7323-1). The option placement rules
//! themselves (MUST-65, RFC 7323 §2.2 and §3.2, RFC 2018 §2) are checked on
//! every segment the test harness parses (`common::Peer::check_options`).

mod common;

use common::*;
use synack_wire::TcpOptions;

/// The data bytes the stack puts in flight for a 10 KB write before any
/// ACK (a flight bounded by the peer's window).
fn first_flight_bytes(p: &mut Peer) -> usize {
    p.stack.send(p.now, p.id(), &bytes(10_000)).unwrap();
    p.transmitted().iter().map(|s| s.payload.len()).sum()
}

/// 7323-1 (RFC 7323 §2.2), passive open: the peer's SYN has no Window
/// Scale, so our SYN-ACK has none and neither direction is scaled: our
/// window field is our room capped at 65535 (the 256 KB buffer is not
/// advertised as room >> shift), and the peer's 1000 means 1000 bytes.
#[test]
fn rfc7323_1_no_scaling_when_the_syn_did_not_offer_it() {
    let mut p = Peer::new().listening();
    p.window = 1000;
    p.syn();
    let sa = p.expect_segment(SYN_ACK);
    assert_eq!(sa.tcp.options.window_scale, None);
    let mut p = p.established();
    p.data(b"x");
    let segs = p.advance(ms(500));
    assert_eq!(segs.last().unwrap().tcp.window, 65535, "unscaled: {segs:?}");
    assert_eq!(first_flight_bytes(&mut p), 1000);
}

/// 7323-1, active open: our SYN offers Window Scale, the SYN-ACK does not:
/// scaling is off both ways.
#[test]
fn rfc7323_1_no_scaling_when_the_syn_ack_did_not_offer_it() {
    let mut p = Peer::new().syn_sent();
    p.window = 1000;
    p.now += RTT;
    p.syn_ack_with(TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    });
    let ack = p.expect_segment(ACK);
    assert_eq!(ack.tcp.window, 65535, "our window unscaled");
    assert_eq!(first_flight_bytes(&mut p), 1000);
}

/// 7323-1 (RFC 7323 §2.2: a Window Scale option on a non-SYN segment is
/// ignored): with shift 2 agreed in the handshake, an ACK that carries
/// Window Scale 7 and window 365 opens 365 << 2 = 1460 bytes, one segment,
/// not 365 << 7.
#[test]
fn rfc7323_1_window_scale_on_a_non_syn_segment_is_ignored() {
    let mut p = Peer::new().listening();
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options = TcpOptions {
        mss: Some(1460),
        window_scale: Some(2),
        ..TcpOptions::default()
    };
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS + 1;
    p.expect_segment(SYN_ACK);
    let mut p = p.established();
    let mut a = p.repr(ACK, p.snd_nxt, p.rcv_nxt);
    a.window = 365;
    a.options.window_scale = Some(7);
    p.inject(&a, &[]);
    p.expect_nothing();
    assert_eq!(first_flight_bytes(&mut p), 1460);
}
