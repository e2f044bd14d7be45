//! Offloads: a device that cuts "super-segments" into segments (TSO/GSO)
//! and completes checksums (`Config::gso_max_size`,
//! `Config::checksum_offload`, `Stack::poll_transmit_meta`), and one that
//! merges arriving segments and vouches for their checksums
//! (`Stack::handle_packet_offloaded`).
//!
//! The sending side is held to one rule: once the device has cut them up,
//! the segments on the wire are exactly those the stack sends without the
//! offload, through slow start, window limits, Nagle, retransmission
//! timeouts and fast retransmit. Each test runs two stacks side by side,
//! one with the offload and one without, gives them the same input, and
//! compares what comes out.

mod common;

use std::time::Duration;

use common::*;
use synack_core::{Config, Instant, RxChecksum, Transmit};
use synack_wire::{complete_checksum, gso_segment, gso_segment_count, parse_packet};

fn gso_config() -> Config {
    Config {
        gso_max_size: Some(65_535),
        checksum_offload: true,
        ..Config::default()
    }
}

/// What a device with TSO and checksum offload puts on the wire for one
/// packet from `poll_transmit_meta`, after checking the packet's form:
/// a partial checksum that completes to a valid one, a segment size equal
/// to the MSS only when the payload is longer than one segment.
#[track_caller]
fn device_cuts(t: &Transmit, mss: usize, now: Instant) -> Vec<Seg> {
    assert!(t.checksum_partial, "checksum offload is on");
    let mut whole = t.packet.clone();
    complete_checksum(&mut whole, t.checksum_start(), Transmit::CHECKSUM_OFFSET).unwrap();
    let s = parse_packet(&whole).expect("the partial checksum completes to a valid one");
    assert_eq!(t.header_len(), whole.len() - s.payload.len());
    let size = match t.segment_size {
        Some(m) => {
            assert_eq!(usize::from(m), mss, "segment size is the MSS");
            assert!(s.payload.len() > mss, "a super-segment holds several");
            assert!(t.packet.len() <= 65_535);
            usize::from(m)
        }
        None => {
            assert!(s.payload.len() <= mss, "one segment at most");
            mss
        }
    };
    let n = gso_segment_count(&t.packet, size).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    for i in 0..n {
        let len = gso_segment(&t.packet, size, i, &mut buf).unwrap();
        let seg = parse_packet(&buf[..len]).expect("a valid segment");
        out.push(Seg {
            at: now,
            src: seg.src,
            dst: seg.dst,
            tos: seg.tos,
            tcp: seg.tcp,
            payload: seg.payload.to_vec(),
        });
    }
    out
}

/// Two peers, the same connection twice: `a` without offload, `b` with.
struct Twins {
    a: Peer,
    b: Peer,
    mss: usize,
    /// Payload lengths of the super-segments `b` sent.
    supers: Vec<usize>,
    /// Highest sequence number `b` has sent (to recognise retransmissions).
    b_max: u32,
}

impl Twins {
    fn new(plain: Config, offload: Config) -> Twins {
        let mut a = Peer::with(plain).listening().established();
        let b = Peer::with(offload).listening().established();
        // No options from the peer but the MSS: 1460 bytes a segment.
        assert_eq!(a.stack_iss, b.stack_iss);
        a.now = b.now;
        Twins {
            a,
            b,
            mss: 1460,
            supers: Vec::new(),
            b_max: 0,
        }
    }

    /// Drains both stacks and checks that the wire carries the same.
    #[track_caller]
    fn same_output(&mut self) -> Vec<Seg> {
        let plain = self.a.transmitted();
        let mut cut = Vec::new();
        while let Some(t) = self.b.stack.poll_transmit_meta() {
            let segs = device_cuts(&t, self.mss, self.b.now);
            if t.segment_size.is_some() {
                let len: usize = segs.iter().map(|s| s.payload.len()).sum();
                let last = segs.last().unwrap();
                let end = last.tcp.seq.wrapping_add(last.payload.len() as u32);
                let rtx = end.wrapping_sub(self.b_max) as i32 <= 0;
                // Whole segments, unless the tail is the end of what is
                // queued (PSH, FIN) or of a retransmission.
                assert!(
                    len / self.mss * self.mss == len
                        || last.tcp.flags.psh()
                        || last.tcp.flags.fin()
                        || rtx,
                    "super-segment of {len} bytes"
                );
                self.supers.push(len);
            }
            for s in segs {
                let end = s.tcp.seq.wrapping_add(s.seg_len());
                if end.wrapping_sub(self.b_max) as i32 > 0 {
                    self.b_max = end;
                }
                self.b.absorb(&s);
                cut.push(s);
            }
            self.b.stack.recycle(t.packet);
        }
        let key = |s: &Seg| {
            (
                s.tcp.seq,
                s.tcp.ack,
                s.tcp.flags,
                s.tcp.window,
                s.payload.len(),
                s.payload
                    .iter()
                    .fold(0u64, |h, &b| h.wrapping_mul(131).wrapping_add(u64::from(b))),
            )
        };
        let pa: Vec<_> = plain.iter().map(key).collect();
        let pb: Vec<_> = cut.iter().map(key).collect();
        assert!(
            pa == pb,
            "the wire differs: without offload\n{pa:?}\nwith\n{pb:?}"
        );
        assert_eq!(self.a.stack.stats().retransmissions > 0, {
            self.b.stack.stats().retransmissions > 0
        });
        plain
    }

    fn both(&mut self, mut f: impl FnMut(&mut Peer)) {
        f(&mut self.a);
        f(&mut self.b);
    }

    /// Runs both stacks' timers up to `t` (draining as they fire).
    fn run_until(&mut self, t: Instant) -> Vec<Seg> {
        let mut out = self.same_output();
        loop {
            let next = self.a.stack.poll_timeout();
            assert_eq!(next, self.b.stack.poll_timeout(), "same timers");
            match next {
                Some(d) if d <= t => {
                    self.both(|p| {
                        p.now = p.now.max(d);
                        p.stack.handle_timeout(p.now);
                    });
                    out.extend(self.same_output());
                }
                _ => break,
            }
        }
        self.both(|p| p.now = p.now.max(t));
        out
    }
}

/// A tiny deterministic generator for the scripts below.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Plays a random script on both stacks: writes, ACKs of all or part of
/// what arrived with random windows, silences long enough for the RTO,
/// triple duplicate ACKs, and at the end a close.
fn script(seed: u64, plain: Config, offload: Config) -> Vec<usize> {
    let mut t = Twins::new(plain, offload);
    let mut rng = Lcg(seed);
    let total = 150_000 + rng.below(300_000) as usize;
    let data: Vec<u8> = (0..total).map(|i| (i * 31 + 7) as u8).collect();
    let mut queued = 0;
    let mut closed = false;
    // The peer's last cumulative ACK (the same for both twins).
    let mut last_ack = t.a.stack_iss.wrapping_add(1);
    for _ in 0..400 {
        // The application writes what fits, in random pieces.
        if queued < total {
            let piece = (1 + rng.below(100_000) as usize).min(total - queued);
            let chunk = data[queued..queued + piece].to_vec();
            let mut took = 0;
            t.both(|p| took = p.stack.send(p.now, p.id(), &chunk).unwrap_or(0));
            queued += took;
        } else if !closed {
            t.both(|p| p.stack.shutdown_write(p.now, p.id()).unwrap());
            closed = true;
        }
        t.same_output();
        let step = Duration::from_millis(1 + rng.below(30));
        let now = t.a.now + step;
        t.run_until(now);
        match rng.below(10) {
            // Silence past the RTO: a retransmission timeout.
            0 => {
                let later = t.a.now + Duration::from_secs(3);
                t.run_until(later);
            }
            // Three duplicate ACKs: a fast retransmit.
            1 => {
                for _ in 0..3 {
                    t.both(|p| p.send(ACK, p.snd_nxt, last_ack, &[]));
                }
            }
            // An ACK of part of what arrived.
            2 | 3 => {
                let cut = rng.below(20_000) as u32;
                let window = rng.below(65_536) as u16;
                let got = t.a.stack_nxt().wrapping_sub(last_ack);
                let ack = last_ack.wrapping_add(cut.min(got));
                last_ack = ack;
                t.both(|p| {
                    p.window = window;
                    p.send(ACK, p.snd_nxt, ack, &[]);
                });
            }
            // An ACK of everything, with a window that may be small.
            _ => {
                let window = if rng.below(4) == 0 {
                    rng.below(8000) as u16
                } else {
                    65_535
                };
                last_ack = t.a.stack_nxt();
                t.both(|p| {
                    p.window = window;
                    p.ack();
                });
            }
        }
        t.same_output();
        assert_eq!(t.a.drops("ACK of unsent data"), 0);
    }
    // Open the window and let everything drain.
    for _ in 0..200 {
        t.both(|p| {
            p.window = 65_535;
            p.ack();
        });
        t.same_output();
        let later = t.a.now + Duration::from_secs(2);
        t.run_until(later);
    }
    assert!(
        t.a.received == data[..queued],
        "plain stream: {} of {queued} bytes",
        t.a.received.len()
    );
    assert!(t.b.received == t.a.received, "offloaded stream intact");
    assert_eq!(
        t.a.stack.stats().retransmissions > 0,
        t.b.stack.stats().retransmissions > 0
    );
    t.supers
}

#[test]
fn super_segments_cut_into_exactly_the_segments_sent_without_offload() {
    let mut supers = Vec::new();
    for seed in 0..40 {
        supers.extend(script(seed, Config::default(), gso_config()));
    }
    assert!(
        supers.len() > 100,
        "super-segments were sent: {}",
        supers.len()
    );
    let longest = supers.iter().max().copied().unwrap_or(0);
    assert!(longest >= 16 * 1460, "and long ones: {longest}");
}

#[test]
fn same_with_nagle_off() {
    for seed in 100..120 {
        let mut t = Twins::new(Config::default(), gso_config());
        t.both(|p| p.stack.set_nodelay(p.id(), true).unwrap());
        let mut rng = Lcg(seed);
        for _ in 0..60 {
            let n = 1 + rng.below(20_000) as usize;
            let chunk = vec![rng.below(256) as u8; n];
            t.both(|p| {
                let _ = p.stack.send(p.now, p.id(), &chunk);
            });
            t.same_output();
            if rng.below(2) == 0 {
                t.both(|p| p.ack());
                t.same_output();
            }
        }
    }
}

#[test]
fn first_flight_is_one_super_segment_of_the_initial_window() {
    let mut p = Peer::with(gso_config()).listening().established();
    p.stack.send(p.now, p.id(), &vec![1u8; 100_000]).unwrap();
    let t = p.stack.poll_transmit_meta().expect("data");
    assert!(
        p.stack.poll_transmit_meta().is_none(),
        "cwnd allows one packet"
    );
    // RFC 6928: IW = min(10·1460, max(2·1460, 14600)) = 14600 = 10 MSS.
    assert_eq!(t.segment_size, Some(1460));
    let segs = device_cuts(&t, 1460, p.now);
    assert_eq!(segs.len(), 10);
    assert!(segs.iter().all(|s| s.payload.len() == 1460));
    assert_eq!(p.stack.stats().super_segments, 1);
}

#[test]
fn window_limits_a_super_segment_to_whole_segments() {
    let mut p = Peer::with(gso_config()).listening().established();
    p.stack.send(p.now, p.id(), &vec![1u8; 200_000]).unwrap();
    let mut segs = Vec::new();
    // Grow cwnd past the window (10 segments initially, RFC 6928, 26
    // after two ACKs in slow start), then offer 10,000 bytes.
    for _ in 0..2 {
        while let Some(t) = p.stack.poll_transmit_meta() {
            for s in device_cuts(&t, 1460, p.now) {
                p.absorb(&s);
            }
        }
        p.ack();
    }
    while let Some(t) = p.stack.poll_transmit_meta() {
        for s in device_cuts(&t, 1460, p.now) {
            p.absorb(&s);
        }
    }
    p.window = 10_000;
    p.ack();
    while let Some(t) = p.stack.poll_transmit_meta() {
        segs.extend(device_cuts(&t, 1460, p.now));
    }
    let bytes: usize = segs.iter().map(|s| s.payload.len()).sum();
    // Six whole segments; the 1,240 left would be a small segment that
    // SWS avoidance holds back (MUST-38).
    assert_eq!(bytes, 6 * 1460);
}

#[test]
fn retransmission_after_a_timeout_is_one_segment_then_grows() {
    let mut p = Peer::with(gso_config()).listening().established();
    p.stack.send(p.now, p.id(), &vec![9u8; 30_000]).unwrap();
    let first = p.stack.poll_transmit_meta().expect("a flight");
    assert_eq!(first.segment_size, Some(1460));
    // The flight is lost. The RTO resends one segment (cwnd = 1 MSS).
    let t = loop {
        let d = p.stack.poll_timeout().expect("the RTO is armed");
        p.now = d;
        p.stack.handle_timeout(p.now);
        if let Some(t) = p.stack.poll_transmit_meta() {
            break t;
        }
    };
    assert_eq!(t.segment_size, None);
    let segs = device_cuts(&t, 1460, p.now);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].payload.len(), 1460);
    assert_eq!(p.stack.stats().retransmissions, 1);
    for s in &segs {
        p.absorb(s);
    }
    // Its ACK lets two segments go: the rest of the lost flight, as one
    // super-segment of retransmitted data only.
    p.ack();
    let t = p.stack.poll_transmit_meta().expect("go-back-N");
    let segs = device_cuts(&t, 1460, p.now);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].tcp.seq, p.rcv_nxt);
    assert_eq!(p.stack.stats().retransmissions, 2);
}

/// A peer's segment far longer than the MSS (what GRO hands in).
fn super_segment_from_peer(p: &Peer, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    p.packet(&p.repr(PSH_ACK, p.snd_nxt, p.rcv_nxt), &data)
}

#[test]
fn super_segments_in_are_taken_whole() {
    for csum in [
        RxChecksum::Unverified,
        RxChecksum::Verified,
        RxChecksum::Partial,
    ] {
        let mut p = Peer::new().listening().established();
        let len = 40_000;
        let pkt = super_segment_from_peer(&p, len);
        p.stack.handle_packet_offloaded(p.now, &pkt, csum);
        p.snd_nxt = p.snd_nxt.wrapping_add(len as u32);
        let got = p.read_all().unwrap();
        assert_eq!(got.len(), len, "{csum:?}");
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        // Past two full segments: the ACK goes at once (SHLD-19).
        let ack = p.expect_segment(ACK);
        assert_eq!(ack.tcp.ack, p.snd_nxt);
    }
}

#[test]
fn partial_or_verified_checksums_are_trusted_unverified_ones_checked() {
    for (csum, taken) in [
        (RxChecksum::Unverified, false),
        (RxChecksum::Verified, true),
        (RxChecksum::Partial, true),
    ] {
        let mut p = Peer::new().listening().established();
        let mut pkt = super_segment_from_peer(&p, 5000);
        // The checksum field as a device leaves it: not the checksum.
        pkt[20 + 16] ^= 0x5a;
        p.stack.handle_packet_offloaded(p.now, &pkt, csum);
        let got = p.read_all().unwrap();
        assert_eq!(got.len(), if taken { 5000 } else { 0 }, "{csum:?}");
        assert_eq!(p.drops("bad checksum"), u64::from(!taken), "{csum:?}");
    }
}

#[test]
fn a_super_segment_beyond_the_window_is_trimmed_to_it() {
    let mut p = Peer::with(Config {
        recv_buffer: 16_384,
        ..Config::default()
    })
    .listening()
    .established();
    let pkt = super_segment_from_peer(&p, 40_000);
    p.stack
        .handle_packet_offloaded(p.now, &pkt, RxChecksum::Partial);
    let got = p.read_all().unwrap();
    assert_eq!(got.len(), 16_384);
    let ack = p.expect_segment(ACK);
    assert_eq!(ack.tcp.ack, p.snd_nxt.wrapping_add(16_384));
}

#[test]
fn poll_transmit_cuts_and_finishes_in_software() {
    let mut p = Peer::with(gso_config()).listening().established();
    p.stack.send(p.now, p.id(), &vec![3u8; 50_000]).unwrap();
    // `transmitted` drains with `poll_transmit` and parses every packet
    // with its checksum checked.
    let segs = p.transmitted();
    assert_eq!(segs.len(), 10, "the initial window, RFC 6928");
    assert!(segs.iter().all(|s| s.payload.len() == 1460));
    assert_eq!(p.stack.stats().super_segments, 1);
    // A bare ACK with checksum offload alone: partial, completed here too.
    p.send(PSH_ACK, p.snd_nxt, p.rcv_nxt, &[1, 2, 3]);
    p.snd_nxt = p.snd_nxt.wrapping_add(3);
    let _ = p.advance(Duration::from_millis(500));
}

#[test]
fn ipv6_super_segments() {
    let mut p = Peer::new_v6();
    p.stack = synack_core::Stack::new(gso_config(), SECRET);
    p.stack.add_address(p.local.ip());
    let mut p = p.listening().established();
    p.stack.send(p.now, p.id(), &vec![6u8; 100_000]).unwrap();
    let t = p.stack.poll_transmit_meta().expect("data");
    assert_eq!(t.checksum_start(), 40);
    let segs = device_cuts(&t, 1440, p.now);
    assert_eq!(segs.len(), 10, "IW of 10 × 1440 (RFC 6928)");
}
