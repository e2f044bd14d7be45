//! Which ACKs are duplicates and when a loss starts fast recovery: RFC 5681
//! §2 and §3.2 without SACK, RFC 6675 §2, §4 (IsLost) and §5 with it. The
//! test plays the receiver; the stack under test sends a bulk transfer
//! whose first outstanding segment is lost.

mod common;

use common::*;
use std::time::Duration;
use synack_wire::SackBlock;

/// Sends a bulk transfer and opens the congestion window by acknowledging
/// every segment one by one (slow start) until at least `want` full-sized
/// segments are in flight; returns them, none acknowledged yet.
fn in_flight(p: &mut Peer, want: usize) -> Vec<Seg> {
    p.stack.send(p.now, p.id(), &vec![7u8; 200_000]).unwrap();
    let mut round = p.transmitted();
    while round.len() < want {
        p.now += RTT;
        let mut next = Vec::new();
        for s in &round {
            p.send(ACK, p.snd_nxt, end(s), &[]);
            next.extend(p.transmitted());
        }
        round = next;
    }
    // Their ACKs come a round trip later (RACK, RFC 8985, times losses).
    p.now += RTT;
    assert!(round.iter().all(|s| s.payload.len() == 1460), "{round:?}");
    round
}

/// The sequence number after `s`.
fn end(s: &Seg) -> u32 {
    s.tcp.seq.wrapping_add(s.payload.len() as u32)
}

/// Injects an ACK of `ack` advertising `window`, with SACK `blocks`.
fn sack_ack(p: &mut Peer, ack: u32, window: u16, blocks: &[(u32, u32)]) {
    let mut r = p.repr(ACK, p.snd_nxt, ack);
    r.window = window;
    for (i, &(left, right)) in blocks.iter().enumerate() {
        r.options.sack_blocks[i] = SackBlock { left, right };
    }
    r.options.sack_count = blocks.len() as u8;
    p.inject(&r, &[]);
}

/// Whether the stack has just resent the segment starting at `seq`.
fn resent(p: &mut Peer, seq: u32) -> bool {
    p.transmitted()
        .iter()
        .any(|s| s.tcp.seq == seq && !s.payload.is_empty())
}

/// 6675-2: with SACK, an ACK that SACKs new data is a duplicate whatever
/// its window (RFC 6675 §2): a receiver that grows its window on every ACK,
/// as Linux's autotuning does, gets its lost segment resent on the third
/// such ACK, not before.
#[test]
fn rfc6675_2_sack_duplicates_count_whatever_the_window() {
    let mut p = Peer::new().established_sack();
    let f = in_flight(&mut p, 8);
    let (hole, una) = (f[0].tcp.seq, f[0].tcp.seq);
    for (n, s) in f[1..4].iter().enumerate() {
        sack_ack(&mut p, una, 40_000 + n as u16, &[(f[1].tcp.seq, end(s))]);
        assert_eq!(resent(&mut p, hole), n == 2, "after duplicate {}", n + 1);
    }
    let st = p.stack.stats();
    assert_eq!((st.fast_recoveries, st.retransmission_timeouts), (1, 0));
}

/// 6675-1: IsLost (HighACK + 1) starts recovery before DupThresh
/// duplicates (RFC 6675 §5 step 2): a receiver that compresses its SACKs
/// (Linux does) reports three segments above the hole in one ACK, and the
/// hole is resent at once; two segments (exactly 2 SMSS) are not enough.
#[test]
fn rfc6675_1_is_lost_starts_recovery_before_three_duplicates() {
    let mut p = Peer::new().established_sack();
    let f = in_flight(&mut p, 8);
    let una = f[0].tcp.seq;
    sack_ack(&mut p, una, 65535, &[(f[1].tcp.seq, end(&f[2]))]);
    assert!(!resent(&mut p, una), "2 SMSS SACKed above: not lost yet");
    sack_ack(
        &mut p,
        una,
        65535,
        &[(f[4].tcp.seq, end(&f[4])), (f[1].tcp.seq, end(&f[2]))],
    );
    assert!(
        resent(&mut p, una),
        "3 SMSS SACKed above: lost, on duplicate 2"
    );
    assert_eq!(p.stack.stats().fast_recoveries, 1);

    let mut p = Peer::new().established_sack();
    let f = in_flight(&mut p, 8);
    let una = f[0].tcp.seq;
    sack_ack(&mut p, una, 65535, &[(f[1].tcp.seq, end(&f[3]))]);
    assert!(resent(&mut p, una), "one ACK SACKing 3 segments");
}

/// RFC 8985 §6.2: RACK counts segments, not duplicate ACKs. An ACK that
/// moves SND.UNA and SACKs pieces of a segment delivers no whole segment
/// above the hole, so however many such ACKs come, nothing is lost (RFC
/// 6675's DupThresh count would have resent on the third); once whole
/// segments sent after the hole are SACKed, the hole is lost at once
/// (DupThresh of them SACKed: a zero reordering window, §6.2 step 4).
#[test]
fn rfc8985_pieces_of_a_segment_are_no_delivery() {
    let mut p = Peer::new().established_sack();
    let f = in_flight(&mut p, 8);
    let (hole, right) = (f[1].tcp.seq, f[2].tcp.seq);
    for n in 1..=3u32 {
        sack_ack(&mut p, hole, 65535, &[(right, right + 100 * n)]);
        assert!(!resent(&mut p, hole), "after duplicate {n}");
    }
    sack_ack(&mut p, hole, 65535, &[(right, end(&f[4]))]);
    assert!(resent(&mut p, hole), "three segments SACKed above");
}

/// 6675-2: an ACK that repeats what the scoreboard holds is no duplicate
/// (RFC 6675 §2 asks for new SACK information), window change or not.
#[test]
fn rfc6675_2_old_sack_information_is_no_duplicate() {
    let mut p = Peer::new().established_sack();
    let f = in_flight(&mut p, 8);
    let una = f[0].tcp.seq;
    let old = [(f[1].tcp.seq, end(&f[1]))];
    for n in 0..4 {
        sack_ack(&mut p, una, 40_000 + n, &old);
    }
    assert!(!resent(&mut p, una), "one duplicate, three repeats");
    sack_ack(&mut p, una, 40_000, &[(f[1].tcp.seq, end(&f[2]))]);
    assert!(!resent(&mut p, una), "two duplicates");
    sack_ack(
        &mut p,
        una,
        40_000,
        &[(f[1].tcp.seq, end(&f[2])), (f[5].tcp.seq, end(&f[5]))],
    );
    assert!(resent(&mut p, una), "three");
}

/// 5681-7: without SACK a duplicate keeps RFC 5681 §2's definition: an ACK
/// that changes the window or carries data is none; the third pure
/// duplicate with the same window, not the first or second, starts fast
/// retransmit.
#[test]
fn rfc5681_7_third_same_window_duplicate_and_no_other() {
    let mut p = Peer::new().established();
    let f = in_flight(&mut p, 8);
    let una = f[0].tcp.seq;
    for n in 0..4 {
        p.window = 40_000 + n;
        p.send(ACK, p.snd_nxt, una, &[]);
    }
    assert!(!resent(&mut p, una), "a changed window each time");
    for _ in 0..4 {
        p.send(PSH_ACK, p.snd_nxt, una, b"data");
        p.snd_nxt = p.snd_nxt.wrapping_add(4);
    }
    assert!(!resent(&mut p, una), "data on each");
    for n in 1..=3 {
        p.send(ACK, p.snd_nxt, una, &[]);
        assert_eq!(resent(&mut p, una), n == 3, "after duplicate {n}");
    }
    assert_eq!(p.stack.stats().fast_recoveries, 1);
}

/// 6675-4: a timeout during recovery ends it, and no new recovery starts
/// until the cumulative ACK passes the HighData of the timeout (RFC 6675
/// §5.1, RFC 6582 §3.2 step 4): duplicates that SACK new data below it
/// start nothing; the same loss pattern past it starts a recovery.
#[test]
fn rfc6675_4_no_recovery_after_a_timeout_until_high_data_is_acked() {
    let mut p = Peer::new().established_sack();
    let f = in_flight(&mut p, 8);
    let una = f[0].tcp.seq;
    sack_ack(&mut p, una, 65535, &[(f[1].tcp.seq, end(&f[3]))]);
    assert!(resent(&mut p, una));
    // The retransmission is lost too: the RTO fires and resends SND.UNA.
    let rto = p.advance(Duration::from_secs(2));
    assert!(rto.iter().any(|s| s.tcp.seq == una), "{rto:?}");
    assert_eq!(p.stack.stats().retransmission_timeouts, 1);
    // Go-back-N resends what the scoreboard held (it was cleared): the
    // peer reports holding f[1..] anew, in three ACKs.
    let high = end(f.last().unwrap());
    for s in &f[1..4] {
        sack_ack(&mut p, una, 65535, &[(f[1].tcp.seq, end(s))]);
    }
    let _ = p.transmitted();
    assert_eq!(p.stack.stats().fast_recoveries, 1, "none below HighData");
    // Everything up to the old HighData arrives; the next flight loses
    // its first segment and the peer SACKs three above it.
    p.send(ACK, p.snd_nxt, high, &[]);
    let mut next = p.transmitted();
    while next.len() < 5 {
        let last = next.last().map(end).unwrap_or(high);
        p.send(ACK, p.snd_nxt, last, &[]);
        next = p.transmitted();
    }
    let lost = next[0].tcp.seq;
    sack_ack(&mut p, lost, 65535, &[(next[1].tcp.seq, end(&next[3]))]);
    assert!(resent(&mut p, lost), "a recovery past HighData");
    assert_eq!(p.stack.stats().fast_recoveries, 2);
}

/// Data segments the stack sent that start at or after `from` (new data
/// past what was in flight), from what it just transmitted.
fn new_data_from(segs: &[Seg], from: u32) -> usize {
    segs.iter()
        .filter(|s| !s.payload.is_empty() && s.tcp.seq.wrapping_sub(from) < 1 << 31)
        .count()
}

/// 6675-3: a duplicate that SACKs many segments (Linux compresses its
/// SACKs) stands for as many segments gone from the network, not one: at
/// the start of recovery and within it, each lets one segment out (RFC
/// 6675 §5 step (C): pipe shrinks by what is SACKed).
#[test]
fn rfc6675_3_a_duplicate_sacking_many_segments_frees_as_many() {
    let mut p = Peer::new().established_sack();
    // The initial window (10 segments, RFC 6928), each ACKed: 20 out.
    let f = in_flight(&mut p, 20);
    assert_eq!(f.len(), 20);
    let (una, high) = (f[0].tcp.seq, end(&f[19]));
    // One ACK SACKs nine segments: recovery, the hole resent, and the
    // window (CUBIC's ssthresh 0.7·20 = 14 segments, + 3, + the 6 more
    // SACKed: 23) lets three new ones out past the twenty.
    sack_ack(&mut p, una, 65535, &[(f[1].tcp.seq, end(&f[9]))]);
    let segs = p.transmitted();
    assert!(segs.iter().any(|s| s.tcp.seq == una), "{segs:?}");
    assert_eq!(new_data_from(&segs, high), 3, "{segs:?}");
    // In recovery, one more ACK SACKs the last ten of the flight and
    // two of the new ones: twelve more go out.
    let newest = end(segs.last().unwrap());
    sack_ack(
        &mut p,
        una,
        65535,
        &[(f[1].tcp.seq, end(&f[19]) + 2 * 1460)],
    );
    let segs = p.transmitted();
    assert_eq!(new_data_from(&segs, newest), 12, "{segs:?}");
}

/// 6675-2: a recovery that ends with a hole past its RecoveryPoint which
/// the scoreboard already shows lost starts the next recovery on the ACK
/// that ends it: everything above the hole is SACKed, so no duplicate
/// would ever come to report it, and only the RTO would repair it.
#[test]
fn rfc6675_2_a_lost_hole_left_by_a_recovery_starts_the_next() {
    let mut p = Peer::new().established_sack();
    let f = in_flight(&mut p, 12);
    let (una, high) = (f[0].tcp.seq, end(&f[11]));
    sack_ack(&mut p, una, 65535, &[(f[1].tcp.seq, end(&f[9]))]);
    let g: Vec<Seg> = p
        .transmitted()
        .into_iter()
        .filter(|s| s.tcp.seq.wrapping_sub(high) < 1 << 31)
        .collect();
    assert_eq!(g.len(), 3, "new data in recovery: {g:?}");
    // g[1] is lost; g[0] and g[2] arrive: more new data goes out.
    sack_ack(
        &mut p,
        una,
        65535,
        &[(f[1].tcp.seq, end(&g[0])), (g[2].tcp.seq, end(&g[2]))],
    );
    let more: Vec<Seg> = p.transmitted();
    assert!(more.len() >= 2, "{more:?}");
    // f[0]'s retransmission arrives: the ACK passes RecoveryPoint (and
    // SACKs what arrived above g[1]), recovery ends, and g[1] is lost.
    let top = end(more.last().unwrap());
    sack_ack(&mut p, end(&g[0]), 65535, &[(g[2].tcp.seq, top)]);
    assert!(resent(&mut p, g[1].tcp.seq), "the next recovery at once");
    let st = p.stack.stats();
    assert_eq!((st.fast_recoveries, st.retransmission_timeouts), (2, 0));
}

/// 8985-PTO: on a sub-millisecond path (a TUN device, loopback) the tail
/// loss probe waits 2·SRTT and 2 ms of clock granularity with several
/// segments in flight (Linux adds TCP_TIMEOUT_MIN), not the bare 2·SRTT of
/// RFC 8985 §7.2, which is shorter than the jitter of the peer's ACK and
/// fired a spurious probe of a FIN in the kernel interop test.
#[test]
fn rfc8985_7_2_the_probe_allows_for_clock_granularity() {
    let mut p = Peer::new().established_sack_after(Duration::from_micros(100));
    p.stack.send(p.now, p.id(), &[7u8; 2920]).unwrap();
    assert_eq!(p.transmitted().len(), 2, "two segments in flight");
    let sent_at = p.now;
    let probe = p
        .next_timed_segment(sent_at + Duration::from_secs(5))
        .expect("a loss probe");
    let waited = p.now.saturating_since(sent_at);
    assert_eq!(
        probe.tcp.seq,
        p.stack_iss.wrapping_add(1 + 1460),
        "the last segment"
    );
    assert!(
        waited >= Duration::from_micros(2_200) && waited < Duration::from_millis(10),
        "probed after {waited:?}"
    );
}
