//! PUSH without a PUSH flag on SEND (RFC 9293 §3.9.1.2): data is never
//! held indefinitely (MUST-60), PSH goes on the segment that empties the
//! send queue (MUST-61), and PSH is no record marker: small writes are
//! merged into the largest segments possible (SHLD-27, MAY-16). One
//! `Stack` driven by hand.

mod common;

use common::*;

/// The data segments the stack sends for `data` written at once, with
/// the peer acknowledging every flight after one RTT.
fn segments_for(p: &mut Peer, data: &[u8]) -> Vec<Seg> {
    let start = p.received.len();
    p.stack.send(p.now, p.id(), data).unwrap();
    let mut segs = Vec::new();
    for _ in 0..100 {
        segs.extend(
            p.transmitted()
                .into_iter()
                .filter(|s| !s.payload.is_empty()),
        );
        if p.received.len() - start >= data.len() {
            break;
        }
        p.now += RTT;
        p.ack();
    }
    assert_eq!(&p.received[start..], data);
    segs
}

/// MUST-61 (RFC 9293 §3.9.1.2): one 5000-byte write leaves in several
/// segments (a flight limited by the initial window, and a tail Nagle holds
/// until the ACK); only the last, which empties the queue, carries PSH.
#[test]
fn must_61_psh_on_the_segment_that_empties_the_queue() {
    let mut p = Peer::new().established();
    let data = bytes(5000);
    let segs = segments_for(&mut p, &data);
    assert!(segs.len() >= 4, "{segs:?}");
    let (last, rest) = segs.split_last().unwrap();
    assert!(last.tcp.flags.psh(), "the last segment: {last:?}");
    assert!(
        rest.iter().all(|s| !s.tcp.flags.psh()),
        "PSH only at the end: {rest:?}"
    );
    // The same for a second write, after the queue has emptied once.
    let segs = segments_for(&mut p, &bytes(3000));
    let (last, rest) = segs.split_last().unwrap();
    assert!(last.tcp.flags.psh());
    assert!(rest.iter().all(|s| !s.tcp.flags.psh()), "{rest:?}");
}

/// MUST-60 (RFC 9293 §3.9.1.2): without a PUSH flag data is never held
/// indefinitely. A small write with nothing in flight goes at once (with
/// PSH); one held by Nagle behind unacknowledged data goes as soon as that
/// data is acknowledged; and if the ACK never comes, it goes with the
/// retransmission. (Held by sender SWS avoidance instead, it goes at the
/// 200 ms override: `requirements_window.rs: must_38_*`.)
#[test]
fn must_60_small_writes_are_never_held_indefinitely() {
    let mut p = Peer::new().established();
    p.stack.send(p.now, p.id(), b"0123456789").unwrap();
    let s = p.expect_segment(PSH_ACK);
    assert_eq!(s.payload, b"0123456789");
    // Held behind the unacknowledged 10 bytes ...
    p.stack.send(p.now, p.id(), b"abc").unwrap();
    p.expect_nothing();
    // ... until their ACK.
    p.now += RTT;
    p.ack();
    let s = p.expect_segment(PSH_ACK);
    assert_eq!(s.payload, b"abc");
    // Held, and the ACK never comes: the timeout sends it with the
    // retransmission (the first segment of the go-back carries both).
    p.stack.send(p.now, p.id(), b"def").unwrap();
    p.expect_nothing();
    let r = p
        .next_timed_segment(p.now + secs(5))
        .expect("a retransmission");
    assert_eq!(r.payload, b"abcdef");
    assert!(r.tcp.flags.psh());
}

/// SHLD-27 and MAY-16 (RFC 9293 §3.9.1.2): PSH is not a record marker.
/// Ten 100-byte writes made while a segment is in flight are held (Nagle)
/// and leave as one 1000-byte segment with one PSH, not ten segments.
#[test]
fn shld_27_may_16_small_writes_merge_into_one_segment() {
    let mut p = Peer::new().established();
    p.stack.send(p.now, p.id(), b"first").unwrap();
    p.expect_segment(PSH_ACK);
    let mut all = Vec::new();
    for i in 0..10u8 {
        let w = vec![i; 100];
        p.stack.send(p.now, p.id(), &w).unwrap();
        all.extend_from_slice(&w);
        p.expect_nothing();
    }
    p.now += RTT;
    p.ack();
    let s = p.expect_segment(PSH_ACK);
    assert_eq!(s.payload, all, "one segment for ten writes");
    assert!(s.tcp.flags.psh());
}
