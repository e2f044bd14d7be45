//! Requirements of several sections, one `Stack` driven by hand: reuse of
//! a TIME-WAIT tuple by timestamps (SHLD-4, RFC 6191), an RST that carries
//! data (SHLD-2), no keep-alive probe while data is outstanding (MUST-26),
//! and the RFC 5961 §5.2 ACK range at its exact lower bound (5961-5).

mod common;

use common::*;
use synack_core::{Config, Error, Event, State};

/// A TIME-WAIT connection whose peer put TSval 1000 on every segment.
fn time_wait_with_timestamps() -> Peer {
    let mut p = Peer::new();
    p.ts = Some(1000);
    p.time_wait()
}

/// SHLD-4 (RFC 9293 §3.6.1, RFC 6191 §2): in TIME-WAIT with timestamps, a
/// SYN whose TSval is older than the last one seen is not a new
/// incarnation even though its sequence number is above RCV.NXT: it is
/// answered by an ACK and TIME-WAIT stays.
#[test]
fn shld_4_older_tsval_keeps_time_wait_whatever_the_sequence_number() {
    let mut p = time_wait_with_timestamps();
    p.ts = Some(999);
    let mut syn = p.repr(SYN, p.snd_nxt.wrapping_add(100_000), 0);
    syn.options.mss = Some(1460);
    p.inject(&syn, &[]);
    let (seq, ack) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(seq, ack);
    assert_eq!(p.stack.time_wait_count(), 1);
    assert_eq!(p.state(), State::TimeWait);
}

/// SHLD-4 (RFC 6191 §2): a SYN with a newer TSval reopens the tuple even
/// with a sequence number below RCV.NXT (the peer's new ISN need not be
/// above the old sequence space); with an equal TSval the sequence number
/// decides.
#[test]
fn shld_4_newer_tsval_reopens_and_a_tie_is_decided_by_the_sequence_number() {
    for (tsval, rel, reopens) in [
        (1001u32, -100_000i64, true),
        (1000, 100_000, true),
        (1000, -100_000, false),
    ] {
        let mut p = time_wait_with_timestamps();
        p.ts = Some(tsval);
        let seq = (i64::from(p.snd_nxt) + rel) as u32;
        let mut syn = p.repr(SYN, seq, 0);
        syn.options.mss = Some(1460);
        p.inject(&syn, &[]);
        let segs = p.transmitted();
        assert_eq!(segs.len(), 1, "{tsval} {rel}: {segs:?}");
        let what = format!("TSval {tsval}, seq RCV.NXT{rel:+}");
        if reopens {
            assert_eq!(segs[0].tcp.flags, SYN_ACK, "{what}");
            assert_eq!(segs[0].tcp.ack, seq.wrapping_add(1), "{what}");
            assert_eq!(p.stack.time_wait_count(), 0, "{what}");
        } else {
            assert_eq!(segs[0].tcp.flags, ACK, "{what}");
            assert_eq!(p.stack.time_wait_count(), 1, "{what}");
        }
    }
}

/// SHLD-2 (RFC 9293 §3.5.3): an RST that carries data is accepted (the
/// data is ignored): at RCV.NXT it resets the connection, and none of its
/// bytes reach the application.
#[test]
fn shld_2_rst_with_data_resets() {
    let mut p = Peer::new().established();
    p.send(RST, p.snd_nxt, 0, b"diagnostic text");
    p.expect_nothing();
    assert_eq!(p.state(), State::Closed);
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            id: p.id(),
            error: Some(Error::Reset)
        }]
    );
    assert_eq!(p.stack.readable(p.id()), Ok(0));
}

/// MUST-26 (RFC 9293 §3.8.4): keep-alive probes are sent only when nothing
/// is outstanding. With keep-alives on (idle time 10 s) and 100 bytes
/// unacknowledged for a minute, only retransmissions of those bytes go
/// out; once they are acknowledged, the first probe (no data, SEQ =
/// SND.NXT - 1) follows 10 s later.
#[test]
fn must_26_no_keepalive_probe_while_data_is_outstanding() {
    let mut p = Peer::with(Config {
        keepalive_idle: secs(10),
        keepalive_interval: secs(10),
        ..Config::default()
    })
    .established();
    p.stack.set_keepalive(p.now, p.id(), true).unwrap();
    p.stack.send(p.now, p.id(), &bytes(100)).unwrap();
    let first = p.expect_segment(PSH_ACK);
    let segs = p.advance(secs(60));
    assert!(segs.len() >= 4, "retransmissions: {segs:?}");
    assert!(
        segs.iter()
            .all(|s| s.tcp.seq == first.tcp.seq && s.payload == first.payload),
        "only retransmissions, no probe: {segs:?}"
    );
    p.ack();
    let t = p.now;
    let probe = p.next_timed_segment(t + secs(60)).expect("a probe");
    assert_eq!(probe.at - t, secs(10));
    assert!(probe.payload.is_empty());
    assert_eq!(probe.tcp.seq, p.stack_nxt().wrapping_sub(1));
}

/// 5961-5 (RFC 5961 §5.2, RFC 9293 §3.10.7.4): SEG.ACK is acceptable in
/// [SND.UNA - MAX.SND.WND, SND.NXT], exactly: at the lower bound a data
/// segment is taken, one below it is dropped and answered by an ACK.
/// Tested with MAX.SND.WND = 65535 and 3000 (the largest window the peer
/// offered), so that no fixed bound passes.
#[test]
fn rfc5961_5_ack_range_lower_bound_is_exact() {
    for max_wnd in [65535u16, 3000] {
        let mut p = Peer::new();
        p.window = max_wnd;
        let mut p = p.established();
        let una = p.stack_nxt();
        let edge = una.wrapping_sub(u32::from(max_wnd));
        p.send(PSH_ACK, p.snd_nxt, edge.wrapping_sub(1), b"hello");
        let (s, a) = (p.rcv_nxt, p.snd_nxt);
        p.expect_ack(s, a);
        assert_eq!(
            p.stack.readable(p.id()),
            Ok(0),
            "{max_wnd}: one below the bound"
        );
        assert_eq!(p.drops("ACK too old"), 1, "{max_wnd}");
        p.send(PSH_ACK, p.snd_nxt, edge, b"hello");
        assert_eq!(p.stack.readable(p.id()), Ok(5), "{max_wnd}: at the bound");
        assert_eq!(p.drops("ACK too old"), 1, "{max_wnd}");
        assert_eq!(p.state(), State::Established);
    }
}

/// MAY-1 (RFC 9293 §3.6.1): `Stack::close` is a full close: afterwards
/// the application cannot read (InvalidState), and data the peer sends
/// after it would be lost, so it is answered by an RST (SHLD-3).
/// `Stack::shutdown_write` is the half-duplex close.
#[test]
fn may_1_no_reading_after_close_and_data_after_close_resets() {
    let mut p = Peer::new().established();
    p.stack.close(p.now, p.id()).unwrap();
    p.expect_segment(FIN_ACK);
    let mut buf = [0u8; 16];
    assert_eq!(
        p.stack.recv(p.now, p.id(), &mut buf),
        Err(Error::InvalidState)
    );
    p.data(b"too late");
    let rst = p.expect_segment(RST);
    assert_eq!(rst.tcp.seq, p.stack_nxt());
    assert_eq!(p.stack.connection_count(), 0, "the connection is gone");
}

/// MAY-1 as a step of its own (`Stack::stop_reading`): with bytes unread
/// it changes nothing and says how many; once they are read it stops
/// reading, and data that arrives later is answered with RST, never
/// acknowledged, so every byte the peer saw acknowledged was read.
#[test]
fn may_1_stop_reading_only_when_nothing_is_unread() {
    let mut p = Peer::new().established();
    p.data(b"accepted");
    let ack = p.stack_nxt();
    assert_eq!(p.stack.stop_reading(p.id()), Ok(8), "8 bytes unread");
    let mut buf = [0u8; 16];
    assert_eq!(p.stack.recv(p.now, p.id(), &mut buf), Ok(8));
    assert_eq!(p.stack.stop_reading(p.id()), Ok(0));
    p.data(b"too late");
    let rst = p.expect_segment(RST);
    assert_eq!(rst.tcp.seq, ack);
    // The handle is still the application's: closed, and it says why.
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.stack.error(p.id()), Ok(Some(Error::Aborted)));
}

/// MAY-2 (RFC 9293 §3.6.1) without timestamps: a SYN in TIME-WAIT at or
/// below the old RCV.NXT is an old duplicate: it is answered by an ACK and
/// TIME-WAIT stays (one above it reopens: `transitions.rs:
/// may_2_syn_in_time_wait_reopens`).
#[test]
fn may_2_old_duplicate_syn_in_time_wait_gets_an_ack() {
    for rel in [0u32, 1, 100_000] {
        let mut p = Peer::new().time_wait();
        let mut syn = p.repr(SYN, p.snd_nxt.wrapping_sub(rel), 0);
        syn.options.mss = Some(1460);
        p.inject(&syn, &[]);
        let (seq, ack) = (p.rcv_nxt, p.snd_nxt);
        p.expect_ack(seq, ack);
        assert_eq!(p.stack.time_wait_count(), 1, "RCV.NXT-{rel}");
        assert_eq!(p.state(), State::TimeWait);
    }
}

/// MAY-8 (RFC 9293 §3.8.6.1): the receiver may keep its window closed
/// indefinitely. The application never reads a full 4 KB buffer; for an
/// hour the peer's one-byte probes are refused and answered with window 0,
/// the connection stays, and the data stays readable.
#[test]
fn may_8_window_kept_closed_for_an_hour() {
    let mut p = Peer::with(Config {
        recv_buffer: 4096,
        ..Config::default()
    })
    .established();
    let mut sent = 0;
    while sent < 4096 {
        p.data(&bytes(1024));
        sent += 1024;
    }
    let _ = p.advance(ms(500));
    let t = p.now;
    while p.now - t < secs(3600) {
        p.now += secs(60);
        p.send(PSH_ACK, p.snd_nxt, p.rcv_nxt, b"?");
        let (s, a) = (p.rcv_nxt, p.snd_nxt);
        let ack = p.expect_ack(s, a);
        assert_eq!(ack.tcp.window, 0);
    }
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.stack.readable(p.id()), Ok(4096));
}
