//! ICMP errors (RFC 9293 §3.9.2.2), keep-alives (§3.8.4), the user
//! timeout (MUST-21), a lost SYN-ACK on the passive side (RFC 5681 §3.1,
//! RFC 6298 §5.7) and martian sources (MUST-63), driven by hand.

mod common;

use std::time::Duration;

use common::*;
use synack_core::{Config, Error, Event, State};
use synack_wire::{emit_icmp_error, icmp_error_len, IcmpKind, TcpFlags};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The stack sends `n` bytes; returns the first data segment (left unacked).
fn send_unacked(p: &mut Peer, n: usize) -> Seg {
    p.stack.send(p.now, p.id(), &vec![7u8; n]).unwrap();
    let segs = p.transmitted();
    segs.into_iter()
        .find(|s| !s.payload.is_empty())
        .expect("data sent")
}

/// An ICMP error from the peer's address quoting `quoted` (a packet the
/// stack sent, rebuilt here from its parsed form).
fn icmp_about(p: &Peer, seg: &Seg, kind: IcmpKind) -> Vec<u8> {
    // Quote the stack's own packet: rebuild it from the parsed segment.
    let mut quoted = vec![0u8; synack_wire::packet_len(seg.src, &seg.tcp, seg.payload.len())];
    let n = synack_wire::emit_packet(&mut quoted, seg.src, seg.dst, 64, 0, &seg.tcp, &seg.payload)
        .unwrap();
    quoted.truncate(n.min(28 + 40));
    let mut buf = vec![0u8; icmp_error_len(p.remote.ip(), quoted.len())];
    let n = emit_icmp_error(&mut buf, p.remote.ip(), p.local.ip(), 64, kind, &quoted).unwrap();
    buf.truncate(n);
    buf
}

/// MUST-54, MUST-56, SHLD-25: a host-unreachable soft error leaves the
/// connection up and is reported; when the connection later times out,
/// the application sees "host unreachable" rather than a bare timeout.
#[test]
fn must_56_soft_icmp_error_keeps_connection_and_shld_25_reports_it() {
    let mut p = Peer::with(Config {
        max_retries: 2,
        ..Config::default()
    })
    .established();
    let seg = send_unacked(&mut p, 100);
    let icmp = icmp_about(&p, &seg, IcmpKind::DestinationUnreachable(1));
    p.inject_raw(&icmp);
    assert_eq!(p.state(), State::Established);
    assert_eq!(
        p.events(),
        vec![Event::SoftError {
            id: p.id(),
            error: Error::HostUnreachable
        }]
    );
    // Black hole: the retransmissions run out.
    let _ = p.run_until(p.now + secs(3600));
    assert_eq!(p.state(), State::Closed);
    assert!(p.events().contains(&Event::Closed {
        id: p.id(),
        error: Some(Error::HostUnreachable)
    }));
}

/// SHLD-20: soft-error reports can be turned off.
#[test]
fn shld_20_soft_error_reports_can_be_turned_off() {
    let mut p = Peer::with(Config {
        report_soft_errors: false,
        ..Config::default()
    })
    .established();
    let seg = send_unacked(&mut p, 100);
    p.inject_raw(&icmp_about(&p, &seg, IcmpKind::TimeExceeded(0)));
    assert!(p.events().is_empty());
    assert_eq!(p.state(), State::Established);
}

/// SHLD-26: a port unreachable (a hard error) aborts the connection.
#[test]
fn shld_26_hard_icmp_error_aborts() {
    let mut p = Peer::new().established();
    let seg = send_unacked(&mut p, 100);
    p.inject_raw(&icmp_about(&p, &seg, IcmpKind::DestinationUnreachable(3)));
    assert_eq!(p.state(), State::Closed);
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            id: p.id(),
            error: Some(Error::Refused)
        }]
    );
}

/// MUST-55: Source Quench changes nothing.
#[test]
fn must_55_source_quench_is_ignored() {
    let mut p = Peer::new().established();
    let seg = send_unacked(&mut p, 100);
    p.inject_raw(&icmp_about(&p, &seg, IcmpKind::SourceQuench));
    assert_eq!(p.state(), State::Established);
    assert!(p.events().is_empty());
    assert_eq!(p.drops("ICMP source quench"), 1);
}

/// MUST-54 (RFC 5927): an ICMP error quoting a sequence number we did not
/// send, or one already acknowledged, is ignored.
#[test]
fn must_54_icmp_with_a_stale_sequence_number_is_ignored() {
    let mut p = Peer::new().established();
    let mut seg = send_unacked(&mut p, 100);
    seg.tcp.seq = seg.tcp.seq.wrapping_sub(5000);
    p.inject_raw(&icmp_about(&p, &seg, IcmpKind::DestinationUnreachable(3)));
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.drops("ICMP outside the window"), 1);
}

/// Packet Too Big shrinks the segments that follow.
#[test]
fn packet_too_big_lowers_the_mss() {
    let mut p = Peer::new().established();
    let seg = send_unacked(&mut p, 3000);
    assert_eq!(seg.payload.len(), 1460);
    p.inject_raw(&icmp_about(&p, &seg, IcmpKind::PacketTooBig(1000)));
    let again = p.transmitted();
    assert!(!again.is_empty(), "resent at once");
    assert!(again.iter().all(|s| s.payload.len() <= 960), "{again:?}");
}

/// MUST-25: keep-alives are off by default: three idle hours, no probe.
#[test]
fn must_25_keepalives_off_by_default() {
    let mut p = Peer::new().established();
    assert!(p.run_until(p.now + secs(3 * 3600)).is_empty());
}

/// MUST-24, MUST-27, MUST-28, SHLD-12: once on, the first probe comes after
/// the idle time (two hours by default), carries no data and SEQ=SND.NXT-1.
#[test]
fn must_28_keepalive_probe_after_two_hours_shld_12_no_data() {
    let mut p = Peer::new().established();
    p.stack.set_keepalive(p.now, p.id(), true).unwrap();
    let t = p.now;
    let probe = p.next_timed_segment(t + secs(3 * 3600)).expect("a probe");
    assert_eq!(probe.at - t, secs(7200));
    assert!(probe.payload.is_empty());
    assert_eq!(probe.tcp.seq, p.stack_nxt().wrapping_sub(1));
    // MUST-29: answered, the connection lives on; probes keep coming.
    p.ack();
    let next = p
        .next_timed_segment(p.now + secs(3 * 3600))
        .expect("next probe");
    assert_eq!(next.at - probe.at, secs(7200));
    assert_eq!(p.state(), State::Established);
}

/// MUST-27, MUST-29: a configurable interval; the connection dies only
/// after `keepalive_probes` unanswered probes, and turning keep-alives off
/// stops them (MUST-24).
#[test]
fn must_29_only_many_unanswered_probes_kill() {
    let cfg = Config {
        keepalive_idle: secs(30),
        keepalive_interval: secs(5),
        keepalive_probes: 3,
        ..Config::default()
    };
    let mut p = Peer::with(cfg.clone()).established();
    p.stack.set_keepalive(p.now, p.id(), true).unwrap();
    let t = p.now;
    let probes = p.run_until(t + secs(30 + 5 * 3 + 1));
    assert_eq!(probes.len(), 3, "{probes:?}");
    assert_eq!(probes[0].at - t, secs(30));
    assert_eq!(p.state(), State::Closed);
    assert!(p.events().contains(&Event::Closed {
        id: p.id(),
        error: Some(Error::TimedOut)
    }));

    let mut q = Peer::with(cfg).established();
    q.stack.set_keepalive(q.now, q.id(), true).unwrap();
    q.stack.set_keepalive(q.now, q.id(), false).unwrap();
    assert!(q.run_until(q.now + secs(600)).is_empty());
}

/// MUST-26: no probe while the peer keeps talking.
#[test]
fn must_26_no_probe_while_the_peer_talks() {
    let cfg = Config {
        keepalive_idle: secs(10),
        ..Config::default()
    };
    let mut p = Peer::with(cfg).established();
    p.stack.set_keepalive(p.now, p.id(), true).unwrap();
    for _ in 0..10 {
        let segs = p.run_until(p.now + secs(5));
        assert!(
            segs.iter()
                .all(|s| !s.payload.is_empty() || s.tcp.seq == p.stack_nxt()),
            "{segs:?}"
        );
        p.data(b"x");
        let _ = p.transmitted();
    }
    let all = p.run_until(p.now + secs(9));
    assert!(
        all.iter().all(|s| s.tcp.seq == p.stack_nxt()),
        "only ACKs, no probes: {all:?}"
    );
}

/// MUST-21: a per-connection user timeout aborts a black-holed connection
/// when its oldest data has waited that long, to the microsecond, well
/// before the default R2; `Duration::MAX` never gives up.
#[test]
fn must_21_user_timeout() {
    let mut p = Peer::new().established();
    p.stack.set_user_timeout(p.id(), Some(secs(5))).unwrap();
    let t = p.now;
    let _ = send_unacked(&mut p, 100);
    let mut closed_at = None;
    while let Some(d) = p.stack.poll_timeout() {
        assert!(d <= t + secs(60), "runaway timers");
        p.now = d;
        p.stack.handle_timeout(d);
        let _ = p.transmitted();
        if p.state() == State::Closed {
            closed_at = Some(d);
            break;
        }
    }
    assert_eq!(closed_at.map(|c| c - t), Some(secs(5)));
    assert!(p.events().contains(&Event::Closed {
        id: p.id(),
        error: Some(Error::TimedOut)
    }));
    // "Never give up": still retrying after an hour.
    let mut q = Peer::new().established();
    q.stack
        .set_user_timeout(q.id(), Some(Duration::MAX))
        .unwrap();
    let _ = send_unacked(&mut q, 100);
    let _ = q.run_until(q.now + secs(3600));
    assert_eq!(q.state(), State::Established);
}

/// SHLD-25: a soft error is forgotten once the path carries data again, so
/// a much later timeout reports itself, not the stale ICMP message.
#[test]
fn shld_25_soft_error_cleared_by_progress() {
    let mut p = Peer::with(Config {
        max_retries: 2,
        ..Config::default()
    })
    .established();
    let seg = send_unacked(&mut p, 100);
    p.inject_raw(&icmp_about(&p, &seg, IcmpKind::DestinationUnreachable(1)));
    p.ack();
    let _ = p.events();
    let _ = send_unacked(&mut p, 100);
    let _ = p.run_until(p.now + secs(3600));
    assert!(p.events().contains(&Event::Closed {
        id: p.id(),
        error: Some(Error::TimedOut)
    }));
}

/// RFC 5681 §3.1 (5681-2) and RFC 6298 §5.7 (6298-8) on the passive side:
/// after a retransmitted SYN-ACK the first flight is one segment and,
/// without an RTT sample, the RTO is 3 s.
#[test]
fn rfc5681_2_rfc6298_8_lost_syn_ack_on_the_passive_side() {
    let mut p = Peer::with(Config {
        timestamps: false,
        ..Config::default()
    })
    .listening();
    p.syn();
    let _ = p.expect_segment(SYN_ACK);
    // The SYN-ACK is "lost": let it be retransmitted once.
    let again = p
        .next_timed_segment(p.now + secs(5))
        .expect("SYN-ACK again");
    assert_eq!(again.ctl(), SYN_ACK);
    p.now += RTT;
    p.ack();
    let lid = p.lid.unwrap();
    assert!(p.events().contains(&Event::Incoming(lid)));
    p.id = Some(p.stack.accept(lid).unwrap());
    p.stack.send(p.now, p.id(), &vec![1u8; 10_000]).unwrap();
    let flight = p.transmitted();
    assert_eq!(
        flight.iter().filter(|s| !s.payload.is_empty()).count(),
        1,
        "{flight:?}"
    );
    let t = p.now;
    let rtx = p.next_timed_segment(t + secs(10)).expect("retransmission");
    assert_eq!(rtx.at - t, secs(3));
}

/// MUST-63: a SYN from a loopback source arriving from the wire is
/// ignored: no SYN-ACK, no RST.
#[test]
fn must_63_loopback_source_is_ignored() {
    let mut p = Peer::new().listening();
    let mut repr = p.repr(SYN, 1, 0);
    repr.options.mss = Some(1460);
    let mut buf = vec![0u8; synack_wire::packet_len(p.local.ip(), &repr, 0)];
    let lo = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let n = synack_wire::emit_packet(&mut buf, lo, p.local.ip(), 64, 0, &repr, &[]).unwrap();
    p.inject_raw(&buf[..n]);
    p.expect_nothing();
    assert_eq!(p.drops("invalid source address"), 1);
}

/// MUST-30, MUST-62: urgent data goes out with URG and a pointer to the
/// byte after it: 10 urgent bytes at SEG.SEQ give pointer 10.
#[test]
fn must_62_urgent_pointer_points_past_the_urgent_data() {
    let mut p = Peer::new().established();
    p.stack.send_urgent(p.now, p.id(), b"0123456789").unwrap();
    let segs = p.transmitted();
    let d = segs.iter().find(|s| !s.payload.is_empty()).expect("data");
    assert!(d.tcp.flags.urg(), "{d:?}");
    assert_eq!(d.tcp.urgent, 10);
    // Once acknowledged, later segments are no longer urgent.
    p.ack();
    p.stack.send(p.now, p.id(), b"plain").unwrap();
    let later = p.transmitted();
    let d = later.iter().find(|s| !s.payload.is_empty()).expect("data");
    assert!(!d.tcp.flags.urg());
}

/// MUST-31, MUST-32, MUST-33: an urgent pointer 5,000 bytes ahead, over
/// several segments: the application is told at once, learns how far the
/// mark is, and urgent mode ends only when it has read past the mark.
#[test]
fn must_31_33_urgent_pointer_far_ahead() {
    let mut p = Peer::new().established();
    let start = p.snd_nxt;
    let mut r = p.repr(fl(ACK, TcpFlags::URG), start, p.rcv_nxt);
    r.urgent = 5000;
    p.inject(&r, &[1u8; 1000]);
    p.snd_nxt = start.wrapping_add(1000);
    // Step 6 (URG) comes before step 7 (text) in §3.10.7.4.
    assert_eq!(
        p.events(),
        vec![Event::Urgent(p.id()), Event::Readable(p.id())]
    );
    assert_eq!(p.stack.urgent_mark(p.id()).unwrap(), Some(5000));
    for _ in 0..4 {
        p.data(&[2u8; 1000]);
    }
    let mut buf = vec![0u8; 4999];
    let mut got = 0;
    while got < 4999 {
        got += p.stack.recv(p.now, p.id(), &mut buf[got..]).unwrap();
    }
    assert_eq!(p.stack.urgent_mark(p.id()).unwrap(), Some(1));
    let mut one = [0u8; 1];
    assert_eq!(p.stack.recv(p.now, p.id(), &mut one).unwrap(), 1);
    assert_eq!(p.stack.urgent_mark(p.id()).unwrap(), None);
}

/// MUST-66: with the receive window at zero, an RST at RCV.NXT still
/// resets and a URG on a bare ACK is still reported.
#[test]
fn must_66_rst_and_urg_processed_with_a_zero_window() {
    let cfg = Config {
        recv_buffer: 2000,
        ..Config::default()
    };
    let mut p = Peer::with(cfg.clone()).established();
    p.data(&[0u8; 1000]);
    p.data(&[0u8; 1000]);
    let _ = p.transmitted();
    let _ = p.events();
    let mut r = p.repr(fl(ACK, TcpFlags::URG), p.snd_nxt, p.rcv_nxt);
    r.urgent = 100;
    p.inject(&r, &[]);
    assert_eq!(p.events(), vec![Event::Urgent(p.id())]);
    p.rst();
    assert_eq!(p.state(), State::Closed);
}

/// A connection whose peer offered SACK-Permitted in its SYN.
fn established_with_sack() -> Peer {
    Peer::new().established_sack()
}

fn blocks(s: &Seg) -> Vec<(u32, u32)> {
    s.tcp
        .options
        .sack()
        .iter()
        .map(|b| (b.left, b.right))
        .collect()
}

/// 2018-1: without SACK-Permitted from the peer there are no SACK blocks,
/// holes or not.
#[test]
fn rfc2018_1_no_sack_blocks_unless_permitted() {
    let mut p = Peer::new().established();
    let base = p.snd_nxt;
    p.send(PSH_ACK, base + 1000, p.rcv_nxt, &[1u8; 100]);
    let a = p.expect_segment(ACK);
    assert!(blocks(&a).is_empty());
}

/// 2018-2: the first SACK block covers the most recent arrival; the other
/// islands follow.
#[test]
fn rfc2018_2_first_block_is_the_latest_island() {
    let mut p = established_with_sack();
    let b = p.snd_nxt;
    p.send(PSH_ACK, b + 1000, p.rcv_nxt, &[1u8; 1000]);
    let a = p.expect_segment(ACK);
    assert_eq!(blocks(&a), vec![(b + 1000, b + 2000)]);
    p.send(PSH_ACK, b + 3000, p.rcv_nxt, &[1u8; 1000]);
    let a = p.expect_segment(ACK);
    assert_eq!(blocks(&a), vec![(b + 3000, b + 4000), (b + 1000, b + 2000)]);
    p.send(PSH_ACK, b + 2000, p.rcv_nxt, &[1u8; 500]);
    let a = p.expect_segment(ACK);
    assert_eq!(blocks(&a), vec![(b + 1000, b + 2500), (b + 3000, b + 4000)]);
    // The hole fills: everything is in order, no blocks.
    p.send(PSH_ACK, b, p.rcv_nxt, &[1u8; 1000]);
    p.send(PSH_ACK, b + 2500, p.rcv_nxt, &[1u8; 500]);
    let segs = p.transmitted();
    let last = segs.last().expect("an ACK");
    assert_eq!(last.tcp.ack, b + 4000);
    assert!(blocks(last).is_empty());
}

/// MUST-58, MUST-59: segments handed in as one batch (before the driver
/// drains the output) are all processed first and answered by a single
/// cumulative ACK.
#[test]
fn must_59_one_ack_for_a_batch_of_segments() {
    let mut p = Peer::new().established();
    let _ = p.transmitted();
    for _ in 0..10 {
        p.data(&[9u8; 1000]);
    }
    let acks: Vec<Seg> = p
        .transmitted()
        .into_iter()
        .filter(|s| s.payload.is_empty())
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].tcp.ack, p.snd_nxt, "it acknowledges all ten");
}

/// `recv_with` hands the application the readable bytes in place; what it
/// does not consume stays for the next read.
#[test]
fn recv_with_reads_in_place() {
    let mut p = Peer::new().established();
    p.data(b"hello, world");
    let mut seen = Vec::new();
    let n = p
        .stack
        .recv_with(p.now, p.id(), |a, b| {
            seen.extend_from_slice(a);
            seen.extend_from_slice(b);
            5
        })
        .unwrap();
    assert_eq!((n, seen.as_slice()), (5, &b"hello, world"[..]));
    assert_eq!(p.read_all().unwrap(), b", world");
    assert_eq!(
        p.stack.recv_with(p.now, p.id(), |_, _| 0),
        Err(Error::WouldBlock)
    );
}

/// A fast retransmit from an ACK that ends inside a segment resends what
/// is outstanding and no more: one MSS from there would reach past
/// SND.MAX into data never sent, which SND.MAX would not count (the
/// peer's ACK of it then looks like an ACK of unsent data, forever).
#[test]
fn fast_retransmit_from_mid_segment_stops_at_snd_max() {
    let mut p = Peer::new().listening().established();
    p.stack.send(p.now, p.id(), &vec![5u8; 100_000]).unwrap();
    let first = p.transmitted();
    assert_eq!(first.len(), 10, "the initial window (RFC 6928)");
    let start = first[0].tcp.seq;
    let snd_max = start.wrapping_add(10 * 1460);
    // The peer takes all but 1,380 bytes and closes its window to those.
    let mid = snd_max.wrapping_sub(1380);
    p.window = 1380;
    p.send(ACK, p.snd_nxt, mid, &[]);
    assert!(p.transmitted().iter().all(|s| s.payload.is_empty()));
    for _ in 0..3 {
        p.send(ACK, p.snd_nxt, mid, &[]);
    }
    let segs = p.transmitted();
    let rtx = segs
        .iter()
        .find(|s| !s.payload.is_empty())
        .expect("a fast retransmit");
    assert_eq!(rtx.tcp.seq, mid);
    assert_eq!(
        rtx.tcp.seq.wrapping_add(rtx.payload.len() as u32),
        snd_max,
        "up to SND.MAX, not a full MSS past it"
    );
    assert_eq!(p.drops("ACK of unsent data"), 0);
}
