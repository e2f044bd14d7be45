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

/// A passive open where the peer's SYN offers window scale `ws` (and MSS
/// 1460), and then advertises `window` (scaled by `ws` from now on).
fn established_scaled(ws: u8, window: u16) -> Peer {
    let mut p = Peer::new().listening();
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options = TcpOptions {
        mss: Some(1460),
        window_scale: Some(ws),
        ..TcpOptions::default()
    };
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS + 1;
    p.expect_segment(SYN_ACK);
    let mut p = p.established();
    p.window = window;
    p.ack();
    p
}

/// The most bytes the stack has in flight over `rounds` round trips of a
/// 200 KB write, the peer acknowledging each segment (so that slow start
/// doubles cwnd every round).
fn max_in_flight(p: &mut Peer, rounds: usize) -> u32 {
    p.stack.send(p.now, p.id(), &bytes(200_000)).unwrap();
    let mut acked = p.stack_nxt();
    let mut max = 0;
    for _ in 0..rounds {
        let segs = p.transmitted();
        max = max.max(p.stack_nxt().wrapping_sub(acked));
        p.now += RTT;
        for s in segs {
            let end = s.tcp.seq.wrapping_add(s.payload.len() as u32);
            p.send(ACK, p.snd_nxt, end, &[]);
        }
        acked = p.stack_nxt();
    }
    max
}

/// REC-1 (RFC 9293 §3.1, RFC 7323 §2.2): windows are held in 32 bits. With
/// shift 14 and a window field of 0xFFFF (1,073,725,440 bytes) the sender
/// puts more than 65,535 bytes in flight once cwnd allows (a window cut to
/// 16 bits would hold it at 49,152).
#[test]
fn rec_1_a_scaled_window_of_a_gigabyte_is_used_beyond_16_bits() {
    let mut p = established_scaled(14, 0xFFFF);
    let max = max_in_flight(&mut p, 12);
    assert!(max > 65_535, "in flight at most {max}");
}

/// 7323-3 (RFC 7323 §2.3): a shift above 14 is used as 14. The peer offers
/// 15 and advertises 2: the window is 2 << 14 = 32768 bytes, which the
/// sender fills to within one segment (SWS avoidance holds the rest) and
/// never exceeds (with 15 it would be 65536).
#[test]
fn rfc7323_3_shift_above_14_is_used_as_14() {
    let mut p = established_scaled(15, 2);
    let max = max_in_flight(&mut p, 12);
    assert!(
        max <= 32768 && max > 32768 - 1460,
        "in flight at most {max}"
    );
}

/// 7323-6 (RFC 7323 §4.3): TS.Recent is updated only by a segment with
/// SEG.SEQ ≤ Last.ACK.sent, so a delayed ACK covering two segments echoes
/// the TSval of the earlier one (2000), not the later (3000).
#[test]
fn rfc7323_6_delayed_ack_echoes_the_earlier_segment() {
    let mut p = Peer::new();
    p.ts = Some(1000);
    let mut p = p.established();
    p.ts = Some(2000);
    p.data(&bytes(100));
    p.ts = Some(3000);
    p.data(&bytes(100));
    p.expect_nothing();
    let segs = p.advance(ms(500));
    assert_eq!(segs.len(), 1, "one delayed ACK: {segs:?}");
    assert_eq!(segs[0].tcp.ack, p.snd_nxt);
    assert_eq!(segs[0].tcp.options.timestamps.map(|t| t.1), Some(2000));
}

/// 7323-8 (RFC 7323 §5.4, §7): the TSval clock ticks once a millisecond,
/// and each connection starts from its own offset.
#[test]
fn rfc7323_8_timestamp_clock_is_milliseconds_with_a_per_connection_offset() {
    let mut p = Peer::new();
    p.ts = Some(1000);
    let mut p = p.established();
    let tsval = |s: &Seg| s.tcp.options.timestamps.expect("TSopt").0;
    p.stack.send(p.now, p.id(), b"a").unwrap();
    let a = p.expect_segment(PSH_ACK);
    p.now += ms(1500);
    p.ack();
    p.stack.send(p.now, p.id(), b"b").unwrap();
    let b = p.expect_segment(PSH_ACK);
    assert_eq!(tsval(&b).wrapping_sub(tsval(&a)), 1500);
    // Another connection at the same instant: another offset.
    let mut q = Peer::new();
    q.remote.set_port(40001);
    q.ts = Some(1000);
    q.now = p.now;
    q.stack = std::mem::replace(
        &mut p.stack,
        synack_core::Stack::new(Default::default(), SECRET),
    );
    q.lid = p.lid;
    q.syn();
    let sa = q.expect_segment(SYN_ACK);
    let now_a = tsval(&b);
    assert_ne!(tsval(&sa), now_a, "offsets differ per connection");
}
