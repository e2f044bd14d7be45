//! Window edges and silly-window avoidance (RFC 9293 §3.8.6): a window the
//! peer shrinks (MUST-34, MUST-35, SHLD-15, SHLD-16), zero-window probes
//! that back off (SHLD-30), the sender's and the receiver's SWS avoidance
//! (MUST-38, MUST-39) and a receiver that never shrinks its own window
//! (SHLD-14). One `Stack` driven by hand, through its public API.

mod common;

use common::*;
use synack_core::{Config, State};
use synack_wire::TcpOptions;

/// The stack sends `n` bytes into the open window; returns the data
/// segments of the first flight (cwnd-limited: several, left unacked).
fn first_flight(p: &mut Peer, data: &[u8]) -> Vec<Seg> {
    p.stack.send(p.now, p.id(), data).unwrap();
    let segs: Vec<Seg> = p
        .transmitted()
        .into_iter()
        .filter(|s| !s.payload.is_empty())
        .collect();
    assert!(segs.len() >= 3, "a flight of several segments: {segs:?}");
    segs
}

/// `<SEQ=peer SND.NXT><ACK=ack><CTL=ACK>` advertising `window`.
fn ack_with_window(p: &mut Peer, ack: u32, window: u16) {
    let mut a = p.repr(ACK, p.snd_nxt, ack);
    a.window = window;
    p.inject(&a, &[]);
}

/// Acknowledges everything the stack sends, with a full window, until all
/// of `data` has arrived (or `rounds` rounds pass).
fn drain_to_peer(p: &mut Peer, data: &[u8], rounds: usize) {
    for _ in 0..rounds {
        if p.received.len() >= data.len() {
            break;
        }
        if p.transmitted().is_empty() {
            p.advance(ms(250));
        }
        p.ack_window(65535);
    }
    assert_eq!(p.received, data, "the whole stream, in order");
}

/// MUST-34, SHLD-15, SHLD-16 (RFC 9293 §3.8.6): the peer acknowledges the
/// first segment of a flight and moves its right edge back below SND.NXT,
/// so the usable window U = SND.UNA + SND.WND - SND.NXT is negative. The
/// sender must not take that for a huge window (MUST-34) and sends no new
/// data (SHLD-15); when the RTO fires it retransmits the unacknowledged
/// data between SND.UNA and SND.UNA + SND.WND, and only that (SHLD-16; the
/// MAY-7 retransmission beyond the edge is not done). When the window
/// reopens the transfer completes.
#[test]
fn must_34_shld_15_shld_16_window_shrunk_below_snd_nxt() {
    let mut p = Peer::new().established();
    let data = bytes(20_000);
    let flight = first_flight(&mut p, &data);
    let una = flight[0]
        .tcp
        .seq
        .wrapping_add(flight[0].payload.len() as u32);
    let snd_nxt = p.stack_nxt();
    let wnd = 500u16;
    assert!(
        una.wrapping_add(u32::from(wnd)) < snd_nxt,
        "the edge is behind SND.NXT"
    );
    p.now += RTT;
    ack_with_window(&mut p, una, wnd);
    // U < 0: nothing at all may go, least of all new data.
    p.expect_nothing();
    assert_eq!(p.state(), State::Established);
    let rtx = p
        .next_timed_segment(p.now + secs(10))
        .expect("a retransmission");
    assert_eq!(rtx.tcp.seq, una, "from SND.UNA");
    assert_eq!(
        rtx.payload.len(),
        usize::from(wnd),
        "exactly the in-window data"
    );
    let off = una.wrapping_sub(p.stack_iss.wrapping_add(1)) as usize;
    assert_eq!(rtx.payload, data[off..off + usize::from(wnd)]);
    // Only the in-window part is resent while the window stays shrunk.
    assert!(p.advance(ms(500)).is_empty());
    // The window reopens: the rest follows.
    ack_with_window(&mut p, una.wrapping_add(u32::from(wnd)), 65535);
    drain_to_peer(&mut p, &data, 100);
    assert_eq!(p.stack.unacked(p.id()), Ok(0));
}

/// MUST-35 (RFC 9293 §3.8.6) and SHLD-30 (§3.8.6.1): the window shrinks to
/// zero while data is in flight. The sender probes it in the standard way:
/// at most one byte at SND.UNA, the first after one RTO, then at intervals
/// that double each time (1, 2, 4, ... s, up to the 120 s RTO cap); the
/// answered probes keep the connection open past `max_retries` (MUST-37);
/// when the window opens the data resumes.
#[test]
fn must_35_shld_30_window_shrunk_to_zero_in_flight_is_probed_with_exponential_backoff() {
    let mut p = Peer::with(Config {
        max_retries: 3,
        ..Config::default()
    })
    .established();
    let data = bytes(20_000);
    let flight = first_flight(&mut p, &data);
    let una = flight[0]
        .tcp
        .seq
        .wrapping_add(flight[0].payload.len() as u32);
    p.now += RTT;
    let t = p.now;
    ack_with_window(&mut p, una, 0);
    p.expect_nothing();
    let mut times = Vec::new();
    for i in 0..10 {
        let probe = p.next_timed_segment(t + secs(3600)).expect("a probe");
        assert_eq!(probe.tcp.seq, una, "probe {i} at SND.UNA");
        assert!(probe.payload.len() <= 1, "probe {i}: {probe:?}");
        times.push(probe.at);
        ack_with_window(&mut p, una, 0);
        let _ = p.transmitted();
    }
    assert_eq!(times[0] - t, secs(1), "first probe after one RTO (SHLD-29)");
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(
        gaps,
        [2, 4, 8, 16, 32, 64, 120, 120, 120],
        "doubling, capped"
    );
    assert_eq!(p.state(), State::Established);
    assert!(p.events().is_empty());
    ack_with_window(&mut p, una, 65535);
    drain_to_peer(&mut p, &data, 100);
}

/// SHLD-30 (RFC 9293 §3.8.6.1): the same backoff when the window was
/// already zero before the data was queued (the persist timer sends the
/// first probe, the retransmission timer the later ones).
#[test]
fn shld_30_probes_of_a_window_closed_before_the_write_back_off_exponentially() {
    let mut p = Peer::new().established();
    p.ack_window(0);
    p.expect_nothing();
    let start = p.stack_nxt();
    p.stack.send(p.now, p.id(), &bytes(1000)).unwrap();
    p.expect_nothing();
    let t = p.now;
    let mut times = Vec::new();
    for _ in 0..9 {
        let probe = p.next_timed_segment(t + secs(3600)).expect("a probe");
        assert_eq!(probe.tcp.seq, start);
        assert!(probe.payload.len() <= 1);
        times.push(probe.at);
        ack_with_window(&mut p, start, 0);
        let _ = p.transmitted();
    }
    assert_eq!(times[0] - t, secs(1), "first probe after one RTO (SHLD-29)");
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(gaps, [1, 2, 4, 8, 16, 32, 64, 120], "doubling, capped");
}

/// MUST-38 (RFC 9293 §3.8.6.2.1): the sender does not dribble small
/// segments into small window openings. With 100 KB queued and the peer
/// opening its window 10 bytes at a time, a 10-byte segment leaves only
/// when the override timeout (200 ms, in the RFC's 0.1–1 s) fires, rule (4);
/// a window of one MSS is used at once, rule (1).
#[test]
fn must_38_sender_sws_avoidance_waits_for_the_override_timeout() {
    let mut p = Peer::new().established();
    p.ack_window(0);
    let data = bytes(100_000);
    p.stack.send(p.now, p.id(), &data).unwrap();
    p.expect_nothing();
    let mut edge = p.stack_nxt();
    for i in 0..5 {
        ack_with_window(&mut p, edge, 10);
        p.expect_nothing();
        let t = p.now;
        assert!(p.advance(ms(199)).is_empty(), "opening {i}: held back");
        let segs = p.advance(ms(1));
        assert_eq!(segs.len(), 1, "opening {i}: {segs:?}");
        assert_eq!(segs[0].at - t, ms(200), "the override timeout");
        assert_eq!(segs[0].tcp.seq, edge);
        assert_eq!(segs[0].payload.len(), 10);
        edge = edge.wrapping_add(10);
    }
    // A full segment's window: sent at once.
    ack_with_window(&mut p, edge, 1460);
    let segs = p.transmitted();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(segs[0].payload.len(), 1460);
}

/// MUST-38, rule (3) of RFC 9293 §3.8.6.2.1: with nothing in flight a
/// short segment goes at once when it fills at least Fs = 1/2 of the
/// largest window the peer ever offered (here 2000, from its SYN): 1000
/// bytes go, 999 wait for the override timeout.
#[test]
fn must_38_sender_sws_avoidance_half_the_largest_window() {
    let mut p = Peer::new();
    p.window = 2000;
    let mut p = p.established();
    p.ack_window(0);
    p.stack.send(p.now, p.id(), &bytes(100_000)).unwrap();
    p.expect_nothing();
    let edge = p.stack_nxt();
    ack_with_window(&mut p, edge, 999);
    p.expect_nothing();
    let held = p.advance(ms(199));
    assert!(held.is_empty(), "999 < 2000/2: held back: {held:?}");
    let segs = p.advance(ms(1));
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].payload.len(), 999, "the override timeout");
    let edge = edge.wrapping_add(999);
    ack_with_window(&mut p, edge, 1000);
    let segs = p.transmitted();
    assert_eq!(segs.len(), 1, "1000 >= 2000/2 goes at once: {segs:?}");
    assert_eq!(segs[0].payload.len(), 1000);
}

/// The right edge a segment from the stack advertises (its window scaled
/// by `shift`, except on a SYN).
fn right_edge(s: &Seg, shift: u8) -> u32 {
    let shift = if s.tcp.flags.syn() { 0 } else { shift };
    s.tcp.ack.wrapping_add(u32::from(s.tcp.window) << shift)
}

/// Fills the stack's receive window with in-order data and lets the
/// delayed ACK go; returns the last ACK (window 0).
fn fill_receive_window(p: &mut Peer, window: u32) -> Seg {
    let mut left = window as usize;
    while left > 0 {
        let n = left.min(1000);
        p.data(&bytes(n));
        left -= n;
    }
    let segs = p.advance(ms(500));
    let last = segs.last().cloned().expect("an ACK");
    assert_eq!(last.tcp.ack, p.snd_nxt);
    assert_eq!(last.tcp.window, 0, "the buffer is full");
    last
}

/// MUST-39 (RFC 9293 §3.8.6.2.2): the receiver moves its right edge only
/// in steps of at least min(MSS, RCV.BUFF/2). The application reads a full
/// 8 KB buffer one byte at a time: no window update is sent before 1460
/// bytes (the MSS) have been read, one is sent then, and every later one
/// moves the edge by at least 1460.
#[test]
fn must_39_receiver_sws_avoidance_opens_in_mss_steps() {
    let mut p = Peer::with(Config {
        recv_buffer: 8192,
        ..Config::default()
    })
    .listening();
    p.syn();
    let sa = p.expect_segment(SYN_ACK);
    let window = u32::from(sa.tcp.window);
    let mut p = p.established();
    let mut edge = right_edge(&fill_receive_window(&mut p, window), 0);
    let mut updates = Vec::new();
    let mut buf = [0u8; 1];
    for read in 1..=window as usize {
        assert_eq!(p.stack.recv(p.now, p.id(), &mut buf), Ok(1));
        // The update is sent at the end of the instant (a driver runs the
        // timers it asks for).
        p.stack.handle_timeout(p.now);
        for s in p.transmitted() {
            let e = right_edge(&s, 0);
            assert!(
                e.wrapping_sub(edge) >= 1460,
                "after {read} B read: a step of {}: {s:?}",
                e.wrapping_sub(edge)
            );
            edge = e;
            updates.push(read);
        }
    }
    assert_eq!(
        updates.first(),
        Some(&1460),
        "the first update after one MSS: {updates:?}"
    );
    assert!(updates.len() >= 4, "{updates:?}");
}

/// A small deterministic generator for the scripts below.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// SHLD-14 (RFC 9293 §3.8.6): the receiver does not shrink its window.
/// Over random scripts of in-order, out-of-order and beyond-the-window
/// data, reads of random sizes and pauses, with and without window
/// scaling, the right edge SEG.ACK + SEG.WND of every segment the stack
/// sends never moves left.
#[test]
fn shld_14_receiver_never_moves_its_right_edge_left() {
    // (seed, the peer's window scale, our receive buffer): a 16 KB buffer
    // needs no scaling; 256 KB is advertised with a shift, whose rounding
    // could move the edge left.
    let cases = [
        (1u64, None, 16 * 1024),
        (2, Some(7u8), 16 * 1024),
        (3, Some(7), 256 * 1024),
        (4, Some(2), 256 * 1024),
    ];
    for (seed, wscale, recv_buffer) in cases {
        let mut rng = Lcg(seed);
        let mut p = Peer::with(Config {
            recv_buffer,
            ..Config::default()
        })
        .listening();
        let mut syn = p.repr(SYN, PEER_ISS, 0);
        syn.options = TcpOptions {
            mss: Some(1000),
            window_scale: wscale,
            ..TcpOptions::default()
        };
        p.inject(&syn, &[]);
        p.snd_nxt = PEER_ISS + 1;
        let sa = p.expect_segment(SYN_ACK);
        let shift = sa
            .tcp
            .options
            .window_scale
            .filter(|_| wscale.is_some())
            .unwrap_or(0);
        assert_eq!(shift > 0, recv_buffer > 65535, "seed {seed}: scaled");
        let mut edge = right_edge(&sa, 0);
        let mut p = p.established();
        let base = p.snd_nxt;
        let mut sent = 0u32; // bytes from `base` the peer has sent in order
        let mut buf = vec![0u8; recv_buffer / 4];
        for step in 0..3000 {
            match rng.below(4) {
                0 | 1 => {
                    // In order, possibly past the window (trimmed).
                    let n = 1 + rng.below(recv_buffer as u64 / 8) as usize;
                    p.send(PSH_ACK, base.wrapping_add(sent), p.rcv_nxt, &bytes(n));
                    sent += n as u32;
                    sent = sent.min(edge.wrapping_sub(base));
                }
                2 => {
                    // Out of order: a hole in front of it.
                    let gap = 1 + rng.below(3000) as u32;
                    let n = 1 + rng.below(1000) as usize;
                    p.send(PSH_ACK, base.wrapping_add(sent + gap), p.rcv_nxt, &bytes(n));
                }
                _ => {
                    let n = 1 + rng.below(buf.len() as u64) as usize;
                    let _ = p.stack.recv(p.now, p.id(), &mut buf[..n]);
                }
            }
            if rng.below(8) == 0 {
                p.now += ms(rng.below(300));
                p.stack.handle_timeout(p.now);
            }
            for s in p.transmitted() {
                let e = right_edge(&s, shift);
                assert!(
                    e.wrapping_sub(edge) as i32 >= 0,
                    "seed {seed} step {step}: the edge moved left by {}: {s:?}",
                    edge.wrapping_sub(e)
                );
                edge = e;
                // What the stack acknowledged is where in-order data resumes.
                sent = s.tcp.ack.wrapping_sub(base);
            }
        }
        assert_eq!(p.state(), State::Established);
    }
}
