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

/// 6298-6 (RFC 6298 §5.3): "When an ACK is received that acknowledges new
/// data, restart the retransmission timer so that it will expire after
/// RTO seconds". Two segments go at t0; the first is acknowledged 600 ms
/// later; the second, lost, is resent one RTO (1 s: the floor) after that
/// ACK, at t0 + 1.6 s, not at t0 + 1 s where the timer armed by the send
/// would have fired. After the last ACK the timer is off: nothing more.
#[test]
fn rfc6298_5_3_an_ack_of_new_data_restarts_the_timer() {
    let mut p = Peer::new().established();
    let t0 = p.now;
    p.stack.send(p.now, p.id(), &bytes(1460)).unwrap();
    p.stack.send(p.now, p.id(), &bytes(1460)).unwrap();
    let segs = p.transmitted();
    assert_eq!(segs.len(), 2, "{segs:#?}");
    p.run_until(t0 + ms(600));
    let first_end = segs[0].tcp.seq.wrapping_add(segs[0].payload.len() as u32);
    p.send(ACK, p.snd_nxt, first_end, &[]);
    let t_ack = p.now;
    let rtx = p
        .next_timed_segment(t0 + secs(10))
        .expect("the retransmission");
    assert_eq!(rtx.tcp.seq, segs[1].tcp.seq);
    assert_eq!(
        rtx.at,
        t_ack + secs(1),
        "one RTO after the ACK, not after the send"
    );
    p.ack();
    assert!(p.next_timed_segment(p.now + secs(600)).is_none(), "stopped");
}

/// 6298-5 (RFC 6298 §3): without timestamps, "at least one RTT measurement
/// per RTT" (and never of a retransmission, Karn: MUST-18). A floor of
/// 10 ms lets the estimator show: after ten round trips at 100 ms the RTO,
/// seen as the time from the last ACK to the retransmission of data the
/// peer then withholds, is well under the 1 s the connection started
/// with; after ten more at 300 ms it has followed the slower path and is
/// above 300 ms (had the samples stopped, it would fire before the
/// round trip and resend needlessly).
#[test]
fn rfc6298_3_one_sample_per_round_trip_follows_the_path() {
    let mut p = Peer::with(Config {
        min_rto: ms(10),
        ..Config::default()
    })
    .established();
    let rto_after = |p: &mut Peer, rtt: u64| {
        for _ in 0..10 {
            p.stack.send(p.now, p.id(), &bytes(1000)).unwrap();
            let seg = p.expect_segment(PSH_ACK);
            p.run_until(p.now + ms(rtt));
            p.send(ACK, p.snd_nxt, seg.tcp.seq.wrapping_add(1000), &[]);
        }
        // One more segment, never acknowledged: when does it come again?
        p.stack.send(p.now, p.id(), &bytes(1000)).unwrap();
        let seg = p.expect_segment(PSH_ACK);
        let rtx = p
            .next_timed_segment(p.now + secs(10))
            .expect("retransmission");
        assert_eq!(rtx.tcp.seq, seg.tcp.seq);
        let rto = rtx.at.saturating_since(seg.at);
        // Acknowledge it, late enough that Karn's rule takes no sample.
        p.send(ACK, p.snd_nxt, seg.tcp.seq.wrapping_add(1000), &[]);
        rto
    };
    let fast = rto_after(&mut p, 100);
    assert!(
        fast >= ms(100) && fast < ms(400),
        "{fast:?} after 100 ms rounds"
    );
    let slow = rto_after(&mut p, 300);
    assert!(slow > ms(300), "{slow:?} after 300 ms rounds");
    assert!(slow > fast, "{fast:?} then {slow:?}");
}
