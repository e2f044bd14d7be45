//! Excessive retransmission (RFC 9293 §3.8.3) and the retransmission timer
//! (RFC 6298 §5): when R1 is reported on the data path (MUST-20, SHLD-10),
//! and what a timeout resends and keeps (RFC 6298 §5.4–5.7). One `Stack`
//! driven by hand.

mod common;

use common::*;
use synack_core::{Config, Error, Event, State};

/// MUST-20 (a)–(c), SHLD-9, SHLD-10 (RFC 9293 §3.8.3): data into a black
/// hole. The application hears of the delivery trouble (R1) exactly when
/// the third retransmission leaves, not before, and once; the connection
/// stays open until R2 (`max_retries` = 6 retransmissions), then closes
/// with TimedOut. Each retransmission is the same segment.
#[test]
fn must_20_shld_10_r1_at_the_third_data_retransmission_then_r2() {
    let mut p = Peer::with(Config {
        max_retries: 6,
        ..Config::default()
    })
    .established();
    p.stack.send(p.now, p.id(), &bytes(100)).unwrap();
    let first = p.expect_segment(PSH_ACK);
    let mut rtx = 0;
    while let Some(s) = p.next_timed_segment(p.now + secs(600)) {
        if s.tcp.flags.rst() {
            break;
        }
        rtx += 1;
        assert_eq!((s.tcp.seq, &s.payload), (first.tcp.seq, &first.payload));
        let trouble = p
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::DeliveryTrouble(_)))
            .count();
        let expected = usize::from(rtx == 3);
        assert_eq!(trouble, expected, "after retransmission {rtx}");
        assert_eq!(p.state(), State::Established, "R2 not reached at {rtx}");
    }
    assert_eq!(rtx, 6, "R2 after max_retries retransmissions");
    p.advance(secs(600));
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.stack.error(p.id()), Ok(Some(Error::TimedOut)));
}

/// RFC 6298 §5.4–§5.6 (6298-7), §3 (Karn): with two segments in flight,
/// each timeout resends the earliest unacknowledged one (not the latest)
/// and doubles the RTO (1, 2, 4 s). An ACK that covers only retransmitted
/// data yields no RTT sample, so the backed-off RTO is kept: the next
/// loss, of new data, is resent after 8 s. Only after an ACK of a segment
/// sent once (a clean sample of 10 ms) is the RTO back to 1 s.
#[test]
fn rfc6298_5_4_earliest_segment_and_backed_off_rto_kept_until_a_clean_sample() {
    let mut p = Peer::new().established();
    // Two segments, both in the initial window and, with Nagle off, both
    // sent: all of it is in flight.
    p.stack.set_nodelay(p.id(), true).unwrap();
    let data = bytes(2000);
    p.stack.send(p.now, p.id(), &data).unwrap();
    let flight = p.transmitted();
    assert_eq!(flight.len(), 2, "{flight:?}");
    let t = p.now;
    let r1 = p.next_timed_segment(t + secs(10)).expect("timeout 1");
    assert_eq!(r1.tcp.seq, flight[0].tcp.seq, "the earliest segment");
    assert_eq!(r1.payload, flight[0].payload);
    assert_eq!(r1.at - t, secs(1));
    let r2 = p.next_timed_segment(t + secs(10)).expect("timeout 2");
    assert_eq!(r2.tcp.seq, flight[0].tcp.seq);
    assert_eq!(r2.at - r1.at, secs(2), "doubled");
    // The first segment's ACK, for a retransmitted segment: no RTT sample
    // (Karn), so the RTO stays backed off (4 s now, RFC 6298 §5.5, §5.6).
    let after_first = flight[0]
        .tcp
        .seq
        .wrapping_add(flight[0].payload.len() as u32);
    p.now += RTT;
    p.send(ACK, p.snd_nxt, after_first, &[]);
    let _ = p.transmitted();
    let t3 = p.now;
    let r3 = p.next_timed_segment(t3 + secs(30)).expect("timeout 3");
    assert_eq!(r3.tcp.seq, after_first, "the next earliest segment");
    assert_eq!(r3.at - t3, secs(4), "the backed-off RTO is kept");
    // Everything acknowledged (an ACK that covers retransmitted data, so
    // still no sample), then fresh data answered in one RTT: a clean sample.
    p.now += RTT;
    let all = p.stack_iss.wrapping_add(1 + data.len() as u32);
    p.send(ACK, p.snd_nxt, all, &[]);
    p.rcv_nxt = all;
    let _ = p.transmitted();
    assert_eq!(p.stack.unacked(p.id()), Ok(0));
    p.stack.send(p.now, p.id(), &bytes(100)).unwrap();
    let lost = p.expect_segment(PSH_ACK);
    let r = p.next_timed_segment(p.now + secs(30)).expect("timeout");
    assert_eq!(r.tcp.seq, lost.tcp.seq);
    assert_eq!(
        r.at - lost.at,
        secs(8),
        "still backed off (three timeouts): no clean sample"
    );
    p.now += RTT;
    p.ack();
    let _ = p.transmitted();
    p.stack.send(p.now, p.id(), &bytes(100)).unwrap();
    let timed = p.expect_segment(PSH_ACK);
    p.now += RTT;
    p.ack();
    let _ = p.transmitted();
    assert_eq!(p.stack.unacked(p.id()), Ok(0));
    p.stack.send(p.now, p.id(), &bytes(100)).unwrap();
    let lost = p.expect_segment(PSH_ACK);
    assert!(lost.tcp.seq != timed.tcp.seq);
    let r = p.next_timed_segment(p.now + secs(30)).expect("timeout");
    assert_eq!(r.tcp.seq, lost.tcp.seq);
    assert_eq!(r.at - lost.at, secs(1), "a clean sample resets the backoff");
}
