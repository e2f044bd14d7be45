//! The transitions of RFC 9293 §3.10, one `Stack` driven by hand: the test
//! plays the peer, injects segments built with `synack-wire` and checks the
//! segments, states and events that follow. Tests are named after the RFC
//! requirement they check (MUST-n / SHLD-n of RFC 9293 Appendix B, RFC 5961,
//! RFC 6298, RFC 7323, RFC 1337) and cite the section in their doc comment.

mod common;

use std::time::Duration;

use common::*;
use synack_core::{Config, Error, Event, State, TraceKind};
use synack_wire::{TcpFlags, TcpOptions};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Some recognisable bytes.
fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

// ===========================================================================
// CLOSED (§3.10.7.1)
// ===========================================================================

/// RFC 9293 §3.10.7.1: with no connection and no listener, a segment
/// without RST is answered by `<SEQ=SEG.ACK><CTL=RST>` when it has ACK, else
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`; an RST is discarded.
#[test]
fn rfc9293_3_10_7_1_closed_port_answers_with_rst() {
    struct Case {
        name: &'static str,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
        len: usize,
        /// (control bits, SEQ, ACK when ACK is set) of the reply.
        reply: Option<(TcpFlags, u32, Option<u32>)>,
    }
    let cases = [
        Case {
            name: "SYN",
            flags: SYN,
            seq: 100,
            ack: 0,
            len: 0,
            reply: Some((RST_ACK, 0, Some(101))),
        },
        Case {
            name: "SYN with data",
            flags: SYN,
            seq: 100,
            ack: 0,
            len: 10,
            reply: Some((RST_ACK, 0, Some(111))),
        },
        Case {
            name: "data without ACK",
            flags: PSH,
            seq: 100,
            ack: 0,
            len: 10,
            reply: Some((RST_ACK, 0, Some(110))),
        },
        Case {
            name: "FIN without ACK",
            flags: FIN,
            seq: 0xFFFF_FFFF,
            ack: 0,
            len: 0,
            reply: Some((RST_ACK, 0, Some(0))),
        },
        Case {
            name: "bare ACK",
            flags: ACK,
            seq: 100,
            ack: 5000,
            len: 0,
            reply: Some((RST, 5000, None)),
        },
        Case {
            name: "data with ACK",
            flags: PSH_ACK,
            seq: 100,
            ack: 0xDEAD_BEEF,
            len: 10,
            reply: Some((RST, 0xDEAD_BEEF, None)),
        },
        Case {
            name: "SYN-ACK",
            flags: SYN_ACK,
            seq: 100,
            ack: 7,
            len: 0,
            reply: Some((RST, 7, None)),
        },
        Case {
            name: "FIN-ACK",
            flags: FIN_ACK,
            seq: 100,
            ack: 9,
            len: 0,
            reply: Some((RST, 9, None)),
        },
        Case {
            name: "RST",
            flags: RST,
            seq: 100,
            ack: 0,
            len: 0,
            reply: None,
        },
        Case {
            name: "RST-ACK",
            flags: RST_ACK,
            seq: 100,
            ack: 5,
            len: 0,
            reply: None,
        },
    ];
    for c in cases {
        let mut p = Peer::new();
        p.send(c.flags, c.seq, c.ack, &bytes(c.len));
        let segs = p.transmitted();
        match c.reply {
            None => assert!(segs.is_empty(), "{}: no reply to an RST: {segs:?}", c.name),
            Some((flags, seq, ack)) => {
                assert_eq!(segs.len(), 1, "{}: {segs:?}", c.name);
                let s = &segs[0];
                assert_eq!(s.tcp.flags, flags, "{}: control bits", c.name);
                assert_eq!(s.tcp.seq, seq, "{}: SEQ", c.name);
                if let Some(ack) = ack {
                    assert_eq!(s.tcp.ack, ack, "{}: ACK", c.name);
                }
                assert!(s.payload.is_empty(), "{}", c.name);
            }
        }
        assert_eq!(p.stack.connection_count(), 0, "{}", c.name);
    }
}

// ===========================================================================
// LISTEN (§3.10.7.2)
// ===========================================================================

/// RFC 9293 §3.10.7.2, first: an incoming RST in LISTEN is ignored.
#[test]
fn rfc9293_3_10_7_2_listen_ignores_rst() {
    for flags in [RST, RST_ACK] {
        let mut p = Peer::new().listening();
        p.send(flags, 100, 200, &[]);
        p.expect_nothing();
        assert_eq!(p.stack.connection_count(), 0);
        assert_eq!(p.drops("RST to a listener"), 1);
        assert!(p.events().is_empty());
    }
}

/// RFC 9293 §3.10.7.2, second: any ACK in LISTEN is bad and answered by
/// `<SEQ=SEG.ACK><CTL=RST>`.
#[test]
fn rfc9293_3_10_7_2_listen_answers_ack_with_rst() {
    for (name, flags, len) in [
        ("ACK", ACK, 0),
        ("data", PSH_ACK, 20),
        ("SYN-ACK", SYN_ACK, 0),
        ("FIN-ACK", FIN_ACK, 0),
    ] {
        let mut p = Peer::new().listening();
        p.send(flags, 100, 0x1234_5678, &bytes(len));
        let r = p.expect_segment(RST);
        assert_eq!(r.tcp.flags, RST, "{name}");
        assert_eq!(r.tcp.seq, 0x1234_5678, "{name}: SEQ=SEG.ACK");
        assert_eq!(p.stack.connection_count(), 0, "{name}");
    }
}

/// RFC 9293 §3.10.7.2, third: a SYN in LISTEN is answered by
/// `<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>` carrying an MSS option (MUST-14)
/// derived from the MTU (SHLD-5, MUST-67: 1500 - 40 for IPv4, 1500 - 60 for
/// IPv6). The SYN of an active open carries the same MSS.
#[test]
fn must_14_shld_5_syn_and_syn_ack_carry_mss_from_mtu() {
    for (name, mk, mss) in [
        ("IPv4", Peer::new as fn() -> Peer, 1460u16),
        ("IPv6", Peer::new_v6 as fn() -> Peer, 1440u16),
    ] {
        let mut p = mk().listening();
        p.syn();
        let sa = p.expect_segment(SYN_ACK);
        assert_eq!(sa.tcp.ack, PEER_ISS + 1, "{name}");
        assert_eq!(sa.tcp.options.mss, Some(mss), "{name}: SYN-ACK MSS");
        assert_eq!(p.stack.connection_count(), 1, "{name}");

        let mut q = mk();
        q.remote.set_port(9);
        q.stack
            .connect(q.now, Some(q.local), q.remote)
            .expect("connect");
        let syn = q.expect_segment(SYN);
        assert_eq!(syn.tcp.options.mss, Some(mss), "{name}: SYN MSS");
    }
}

/// RFC 7323 §1.3, §2.2, §3.2: window scale and timestamps appear in the
/// SYN-ACK only when the SYN offered them; TSecr echoes the SYN's TSval.
#[test]
fn rfc7323_syn_ack_options_only_when_offered() {
    for (ws, ts) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut p = Peer::new().listening();
        let mut repr = p.repr(SYN, PEER_ISS, 0);
        repr.options.mss = Some(1460);
        repr.options.window_scale = ws.then_some(7);
        repr.options.timestamps = ts.then_some((424_242, 0));
        p.inject(&repr, &[]);
        let sa = p.expect_segment(SYN_ACK);
        let o = sa.tcp.options;
        assert_eq!(o.mss, Some(1460), "ws={ws} ts={ts}");
        assert_eq!(o.window_scale.is_some(), ws, "ws={ws} ts={ts}: {o:?}");
        match o.timestamps {
            Some((_, ecr)) => {
                assert!(ts, "timestamps not offered: {o:?}");
                assert_eq!(ecr, 424_242, "TSecr echoes TSval");
            }
            None => assert!(!ts, "timestamps offered but not answered: {o:?}"),
        }
    }
}

/// RFC 9293 §3.10.7.2 / §3.10.1: a SYN to a listener whose SYN queue is
/// full gets no TCB: with SYN cookies off it is dropped without reply (the
/// peer will retransmit it); with them on, see `tests/syncookies.rs`.
#[test]
fn rfc9293_3_10_7_2_syn_queue_full_drops_syn() {
    let mut p = Peer::with(Config {
        max_syn_backlog: 1,
        syn_cookies: false,
        ..Config::default()
    })
    .listening();
    p.syn();
    p.expect_segment(SYN_ACK);
    let mut other = p.repr(SYN, 77_777, 0);
    other.src_port = 40001;
    other.options.mss = Some(1460);
    p.inject(&other, &[]);
    assert!(
        p.stack.poll_transmit().is_none(),
        "no SYN-ACK past the SYN queue"
    );
    assert_eq!(p.drops("listen queue full"), 1);
    assert_eq!(p.stack.connection_count(), 1);
}

// ===========================================================================
// SYN-SENT (§3.10.7.3)
// ===========================================================================

/// RFC 9293 §3.10.7.3 and RFC 7323 §2.2/§3.2: the SYN of an active open
/// offers MSS, window scale and timestamps (TSecr 0), and no ACK.
#[test]
fn rfc9293_3_10_1_active_open_sends_syn_with_options() {
    let mut p = Peer::new();
    let id = p
        .stack
        .connect(p.now, Some(p.local), p.remote)
        .expect("connect");
    p.id = Some(id);
    let syn = p.expect_segment(SYN);
    assert_eq!(syn.tcp.flags, SYN);
    assert_eq!(syn.tcp.options.mss, Some(1460));
    assert!(syn.tcp.options.window_scale.is_some());
    assert!(matches!(syn.tcp.options.timestamps, Some((_, 0))));
    assert_eq!(p.state(), State::SynSent);
}

/// RFC 9293 §3.10.7.3, first: in SYN-SENT an ACK with SEG.ACK =< ISS or
/// SEG.ACK > SND.NXT is answered by `<SEQ=SEG.ACK><CTL=RST>` (unless it is
/// itself an RST, then it is dropped), and the connection stays.
#[test]
fn rfc9293_3_10_7_3_syn_sent_unacceptable_ack_gets_rst() {
    // (name, flags, SEG.ACK relative to ISS)
    let cases: [(&str, TcpFlags, i64); 7] = [
        ("ACK = ISS", ACK, 0),
        ("ACK < ISS", ACK, -1000),
        ("ACK > SND.NXT", ACK, 2),
        ("SYN-ACK = ISS", SYN_ACK, 0),
        ("SYN-ACK > SND.NXT", SYN_ACK, 100_000),
        ("RST-ACK = ISS", RST_ACK, 0),
        ("RST-ACK > SND.NXT", RST_ACK, 2),
    ];
    for (name, flags, rel) in cases {
        let mut p = Peer::new().syn_sent();
        let ack = (i64::from(p.stack_iss) + rel) as u32;
        p.send(flags, PEER_ISS, ack, &[]);
        let segs = p.transmitted();
        if flags.rst() {
            assert!(segs.is_empty(), "{name}: an RST is dropped: {segs:?}");
        } else {
            assert_eq!(segs.len(), 1, "{name}: {segs:?}");
            assert_eq!(segs[0].tcp.flags, RST, "{name}");
            assert_eq!(segs[0].tcp.seq, ack, "{name}: SEQ=SEG.ACK");
        }
        assert_eq!(p.state(), State::SynSent, "{name}");
        assert!(p.events().is_empty(), "{name}");
    }
}

/// RFC 9293 §3.10.7.3, second: an RST whose ACK acknowledges our SYN means
/// "connection reset": the user is told (refused) and the connection is
/// CLOSED.
#[test]
fn rfc9293_3_10_7_3_syn_sent_rst_with_acceptable_ack_is_refused() {
    let mut p = Peer::new().syn_sent();
    let ack = p.stack_iss.wrapping_add(1);
    p.send(RST_ACK, 0, ack, &[]);
    p.expect_nothing();
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            id: p.id(),
            error: Some(Error::Refused)
        }]
    );
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.stack.error(p.id()), Ok(Some(Error::Refused)));
    // Nothing is left to retransmit.
    assert!(p.advance(secs(300)).is_empty());
}

/// RFC 9293 §3.10.7.3, second: an RST without ACK in SYN-SENT is dropped
/// (RFC 5961 §3: it cannot be shown to belong to our SYN).
#[test]
fn rfc9293_3_10_7_3_syn_sent_rst_without_ack_is_ignored() {
    for seq in [0, PEER_ISS, 0x8000_0000] {
        let mut p = Peer::new().syn_sent();
        p.send(RST, seq, 0, &[]);
        p.expect_nothing();
        assert_eq!(p.state(), State::SynSent);
        assert!(p.events().is_empty());
    }
}

/// RFC 9293 §3.10.7.3, fourth: a SYN-ACK acknowledging our SYN moves
/// SYN-SENT to ESTABLISHED and is answered by
/// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`; the user learns Connected.
#[test]
fn rfc9293_3_10_7_3_syn_sent_syn_ack_establishes() {
    // The fixture checks the ACK, the event and the state.
    let mut p = Peer::new().established_active();
    // And data flows both ways.
    p.data(b"ping");
    assert_eq!(p.read_all().unwrap(), b"ping");
    p.stack.send(p.now, p.id(), b"pong").unwrap();
    let s = p.expect_segment(PSH_ACK);
    assert_eq!(s.payload, b"pong");
    assert_eq!(s.tcp.seq, p.stack_iss.wrapping_add(1));
}

/// RFC 9293 §3.10.7.3 fourth and §3.5 Figure 8, MUST-10: a SYN without ACK
/// in SYN-SENT (simultaneous open) moves to SYN-RECEIVED and is answered
/// by `<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>`; the ACK of our SYN then moves
/// to ESTABLISHED.
#[test]
fn must_10_simultaneous_open() {
    let mut p = Peer::new().syn_sent();
    let iss = p.stack_iss;
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options.mss = Some(1460);
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS + 1;
    let sa = p.expect_segment(SYN_ACK);
    assert_eq!(sa.tcp.seq, iss, "the same ISS");
    assert_eq!(sa.tcp.ack, PEER_ISS + 1);
    assert_eq!(p.state(), State::SynReceived);
    assert!(p.events().is_empty());
    p.ack();
    p.expect_nothing();
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.events(), vec![Event::Connected(p.id())]);
}

/// RFC 9293 §3.5 Figure 8, line 6, MUST-10: in a simultaneous open the
/// peer's SYN-ACK (`<SEQ=IRS><ACK=ISS+1><CTL=SYN,ACK>`) reaches us in
/// SYN-RECEIVED and moves us to ESTABLISHED.
#[test]
fn must_10_simultaneous_open_figure_8_syn_ack_crossing() {
    let mut p = Peer::new().syn_sent();
    let iss = p.stack_iss;
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options.mss = Some(1460);
    p.inject(&syn, &[]);
    p.expect_segment(SYN_ACK);
    // The peer's own SYN-ACK, as in line 6 of Figure 8.
    let mut sa = p.repr(SYN_ACK, PEER_ISS, iss.wrapping_add(1));
    sa.options.mss = Some(1460);
    p.inject(&sa, &[]);
    p.snd_nxt = PEER_ISS + 1;
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.events(), vec![Event::Connected(p.id())]);
}

/// MUST-23 (RFC 9293 §3.8.3): SYN retransmissions go on for at least
/// 3 minutes; RFC 6298 §2.1 and §5.5: the first after 1 s, then doubling
/// (up to max_rto, RFC 6298 §2.5). With `syn_retries` = 7 the open then
/// fails with TimedOut.
#[test]
fn must_23_syn_retries_span_3_minutes() {
    let mut p = Peer::new().syn_sent();
    let t0 = p.now;
    let iss = p.stack_iss;
    let max_rto = p.stack.config().max_rto;
    let mut times = Vec::new();
    let mut closed_at = None;
    let mut trouble_at = None;
    while let Some(d) = p.stack.poll_timeout() {
        assert!(d <= t0 + secs(3600), "runaway timers");
        p.now = d;
        p.stack.handle_timeout(d);
        for s in p.transmitted() {
            assert_eq!(s.tcp.flags, SYN, "a retransmitted SYN");
            assert_eq!(s.tcp.seq, iss, "with the same ISS");
            times.push(s.at);
        }
        for e in p.events() {
            if e == Event::DeliveryTrouble(p.id()) {
                // MUST-22: SYN retransmissions pass R1 like data ones.
                trouble_at.get_or_insert(d);
                continue;
            }
            assert_eq!(
                e,
                Event::Closed {
                    id: p.id(),
                    error: Some(Error::TimedOut)
                }
            );
            closed_at = Some(p.now);
        }
        if closed_at.is_some() {
            break;
        }
    }
    assert_eq!(times.len(), 7, "syn_retries = 7: {times:?}");
    let mut prev = t0;
    let mut rto = secs(1);
    for t in &times {
        assert_eq!(
            *t - prev,
            rto.min(max_rto),
            "backoff 1, 2, 4, ... s: {times:?}"
        );
        prev = *t;
        rto *= 2;
    }
    let closed_at = closed_at.expect("the open gives up");
    assert!(
        closed_at - t0 >= secs(180),
        "gave up after {:?}, MUST-23 wants 3 minutes",
        closed_at - t0
    );
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.stack.error(p.id()), Ok(Some(Error::TimedOut)));
    // SHLD-10: R1 comes no earlier than the third retransmission (7 s).
    let trouble_at = trouble_at.expect("MUST-22: delivery trouble reported");
    assert!(trouble_at - t0 >= secs(7) && trouble_at < closed_at);
}

/// MUST-15 (RFC 9293 §3.7.1): without an MSS option in the SYN-ACK the send
/// MSS is 536 (IPv4), so 10 KB go out in 536-byte segments.
#[test]
fn must_15_default_mss_536_without_option() {
    let mut p = Peer::new().syn_sent();
    p.now += RTT;
    p.syn_ack_with(TcpOptions::default());
    let iss = p.stack_iss;
    p.expect_ack(iss.wrapping_add(1), PEER_ISS + 1);
    assert_eq!(p.events(), vec![Event::Connected(p.id())]);
    let data = bytes(10 * 1024);
    assert_eq!(p.stack.send(p.now, p.id(), &data), Ok(data.len()));
    let mut sizes = Vec::new();
    for _ in 0..200 {
        let segs = p.transmitted();
        sizes.extend(segs.iter().map(|s| s.payload.len()));
        if p.received.len() == data.len() {
            break;
        }
        if segs.is_empty() {
            p.advance(ms(200));
        } else {
            p.now += RTT;
            p.ack();
        }
    }
    assert_eq!(p.received, data);
    assert!(sizes.iter().all(|&n| n <= 536), "{sizes:?}");
    let full = sizes.iter().filter(|&&n| n == 536).count();
    assert_eq!(full, 10 * 1024 / 536, "{sizes:?}");
}

// ===========================================================================
// SYN-RECEIVED (§3.10.7.4)
// ===========================================================================

/// RFC 9293 §3.10.7.4, fifth (SYN-RECEIVED): an ACK with
/// SND.UNA < SEG.ACK =< SND.NXT moves to ESTABLISHED; the listener reports
/// Incoming and `accept` hands out the connection, once.
#[test]
fn rfc9293_3_10_7_4_syn_received_ack_establishes() {
    let mut p = Peer::new().syn_received();
    let lid = p.lid.unwrap();
    assert_eq!(p.stack.accept(lid), Err(Error::WouldBlock));
    p.ack();
    p.expect_nothing();
    assert_eq!(p.events(), vec![Event::Incoming(lid)]);
    let id = p.stack.accept(lid).expect("accept");
    p.id = Some(id);
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.stack.accept(lid), Err(Error::WouldBlock));
}

/// MUST-11, RFC 9293 §3.10.7.4 second (SYN-RECEIVED): an RST at RCV.NXT
/// for a connection from a passive OPEN returns it to LISTEN: no event, no
/// connection left, and the listener answers a new SYN.
#[test]
fn must_11_passive_syn_received_rst_returns_to_listen() {
    let mut p = Peer::new().syn_received();
    let lid = p.lid.unwrap();
    p.send(RST, PEER_ISS + 1, 0, &[]);
    p.expect_nothing();
    assert!(p.events().is_empty());
    assert_eq!(p.stack.connection_count(), 0);
    assert_eq!(p.stack.accept(lid), Err(Error::WouldBlock));
    // Still listening: the same peer can connect again.
    p.syn();
    p.expect_segment(SYN_ACK);
    p.ack();
    p.expect_nothing();
    assert_eq!(p.events(), vec![Event::Incoming(lid)]);
    p.id = Some(p.stack.accept(lid).expect("accept"));
    assert_eq!(p.state(), State::Established);
}

/// RFC 9293 §3.10.7.4 fifth (SYN-RECEIVED): an unacceptable ACK is answered
/// by `<SEQ=SEG.ACK><CTL=RST>` and the half-open connection stays.
#[test]
fn rfc9293_3_10_7_4_syn_received_bad_ack_gets_rst() {
    for (name, rel) in [
        ("ACK = ISS", 0i64),
        ("ACK < ISS", -5000),
        ("ACK > SND.NXT", 2),
    ] {
        let mut p = Peer::new().syn_received();
        let ack = (i64::from(p.stack_iss) + rel) as u32;
        p.send(ACK, PEER_ISS + 1, ack, &[]);
        let r = p.expect_segment(RST);
        assert_eq!(r.tcp.seq, ack, "{name}: SEQ=SEG.ACK");
        assert_eq!(p.stack.connection_count(), 1, "{name}");
        assert!(p.events().is_empty(), "{name}");
        // The right ACK still completes the handshake.
        p.ack();
        p.expect_nothing();
        assert_eq!(p.events(), vec![Event::Incoming(p.lid.unwrap())], "{name}");
    }
}

// ===========================================================================
// ESTABLISHED (§3.10.7.4)
// ===========================================================================

/// RFC 9293 §3.10.7.4 first (Table 5): a segment that is not acceptable is
/// answered by `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` and dropped.
#[test]
fn rfc9293_3_10_7_4_unacceptable_segment_gets_ack() {
    // (name, SEG.SEQ relative to RCV.NXT, length)
    let cases: [(&str, i64, usize); 5] = [
        ("data beyond the window", 70_000, 10),
        ("data at the right edge", 65_535, 10),
        ("old duplicate data", -10, 10),
        ("empty segment beyond the window", 70_000, 0),
        ("empty segment left of the window", -1, 0),
    ];
    for (name, rel, len) in cases {
        let mut p = Peer::new().established();
        let seq = (i64::from(p.snd_nxt) + rel) as u32;
        p.send(PSH_ACK, seq, p.rcv_nxt, &bytes(len));
        let (s, a) = (p.rcv_nxt, p.snd_nxt);
        p.expect_ack(s, a);
        assert_eq!(p.stack.readable(p.id()), Ok(0), "{name}");
        assert_eq!(p.state(), State::Established, "{name}");
        assert_eq!(p.drops("outside the window"), 1, "{name}");
    }
}

/// RFC 5961 §3.2 (RFC 9293 §3.10.7.4 second): an RST whose SEQ is exactly
/// RCV.NXT resets the connection: the user sees Reset (MUST-12).
#[test]
fn rfc5961_3_rst_at_rcv_nxt_resets() {
    let mut p = Peer::new().established();
    p.rst();
    p.expect_nothing();
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            id: p.id(),
            error: Some(Error::Reset)
        }]
    );
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.stack.error(p.id()), Ok(Some(Error::Reset)));
    let mut buf = [0u8; 16];
    assert_eq!(p.stack.recv(p.now, p.id(), &mut buf), Err(Error::Reset));
    assert!(p.stack.send(p.now, p.id(), b"x").is_err());
}

/// RFC 5961 §3.2: an RST inside the window but not at RCV.NXT gets one
/// challenge ACK `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` and the connection
/// stays ESTABLISHED.
#[test]
fn rfc5961_3_in_window_rst_gets_challenge_ack() {
    for (rel, flags) in [(1u32, RST), (1000, RST), (65_534, RST), (1000, RST_ACK)] {
        let mut p = Peer::new().established();
        let seq = p.snd_nxt.wrapping_add(rel);
        p.send(flags, seq, p.rcv_nxt, &[]);
        let (s, a) = (p.rcv_nxt, p.snd_nxt);
        p.expect_ack(s, a);
        assert_eq!(p.state(), State::Established, "+{rel}");
        assert_eq!(p.stack.stats().challenge_acks, 1, "+{rel}");
        assert!(p.events().is_empty(), "+{rel}");
        // The peer's genuine RST (at RCV.NXT) still works.
        p.rst();
        assert_eq!(p.state(), State::Closed);
    }
}

/// RFC 5961 §3.2 and RFC 9293 §3.10.7.4 first: an RST outside the window
/// is silently dropped.
#[test]
fn rfc5961_3_rst_outside_window_is_dropped() {
    for rel in [-1i64, -100_000, 65_535, 70_000] {
        let mut p = Peer::new().established();
        let seq = (i64::from(p.snd_nxt) + rel) as u32;
        p.send(RST, seq, 0, &[]);
        p.expect_nothing();
        assert_eq!(p.state(), State::Established, "{rel}");
        assert_eq!(p.stack.stats().challenge_acks, 0, "{rel}");
        assert_eq!(p.drops("RST outside the window"), 1, "{rel}");
    }
}

/// RFC 5961 §4.2 (RFC 9293 §3.10.7.4 fourth): a SYN in a synchronized
/// state, whatever its SEQ, is answered by an ACK and changes nothing.
#[test]
fn rfc5961_4_syn_in_established_gets_challenge_ack() {
    for (name, rel) in [
        ("at RCV.NXT", 0i64),
        ("inside the window", 5000),
        ("the old SYN", -1),
    ] {
        let mut p = Peer::new().established();
        let seq = (i64::from(p.snd_nxt) + rel) as u32;
        let mut syn = p.repr(SYN, seq, 0);
        syn.options.mss = Some(1460);
        p.inject(&syn, &[]);
        let (s, a) = (p.rcv_nxt, p.snd_nxt);
        p.expect_ack(s, a);
        assert_eq!(p.state(), State::Established, "{name}");
        assert!(p.events().is_empty(), "{name}");
    }
}

/// RFC 5961 §7: challenge ACKs are rate limited
/// (`Config::challenge_ack_limit` per second); the allowance comes back
/// after a second.
#[test]
fn rfc5961_7_challenge_acks_are_rate_limited() {
    for limit in [10u32, 3] {
        let mut p = Peer::with(Config {
            challenge_ack_limit: limit,
            ..Config::default()
        })
        .established();
        let seq = p.snd_nxt.wrapping_add(100);
        for _ in 0..limit + 5 {
            p.send(RST, seq, 0, &[]);
        }
        let segs = p.transmitted();
        assert_eq!(segs.len(), limit as usize, "limit {limit}");
        assert!(segs.iter().all(|s| s.tcp.flags == ACK));
        assert_eq!(p.stack.stats().challenge_acks, u64::from(limit));
        assert_eq!(p.drops("challenge ACK rate limited"), 5);
        p.now += secs(1);
        p.send(RST, seq, 0, &[]);
        assert_eq!(p.transmitted().len(), 1, "a new second, a new allowance");
        assert_eq!(p.state(), State::Established);
    }
}

/// RFC 9293 §3.10.7.4 fifth / RFC 5961 §5.2: an ACK of something not yet
/// sent (SEG.ACK > SND.NXT) is answered by an ACK and the segment, data
/// included, is dropped.
#[test]
fn rfc5961_5_ack_above_snd_nxt_gets_ack_and_drop() {
    let mut p = Peer::new().established();
    let bad = p.rcv_nxt.wrapping_add(100);
    p.send(PSH_ACK, p.snd_nxt, bad, b"hello");
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    assert_eq!(p.stack.readable(p.id()), Ok(0));
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.drops("ACK of unsent data"), 1);
}

/// RFC 5961 §5.2: an ACK below SND.UNA - MAX.SND.WND is dropped (and
/// answered by an ACK); one inside that range is a harmless duplicate and
/// its data is taken.
#[test]
fn rfc5961_5_ack_older_than_max_snd_wnd_is_dropped() {
    let mut p = Peer::new().established();
    let too_old = p.rcv_nxt.wrapping_sub(70_000);
    p.send(PSH_ACK, p.snd_nxt, too_old, b"hello");
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    assert_eq!(p.stack.readable(p.id()), Ok(0));
    assert_eq!(p.drops("ACK too old"), 1);

    let old_but_fine = p.rcv_nxt.wrapping_sub(1000);
    p.send(PSH_ACK, p.snd_nxt, old_but_fine, b"hello");
    assert_eq!(p.stack.readable(p.id()), Ok(5));
    assert_eq!(p.state(), State::Established);
}

/// MUST-40 / SHLD-18 (RFC 9293 §3.8.6.3): in-order data is delivered and
/// its ACK may be delayed, but by less than 0.5 s.
#[test]
fn must_40_delayed_ack_within_500ms() {
    let mut p = Peer::new().established();
    let t = p.now;
    p.data(&bytes(100));
    p.expect_nothing();
    assert_eq!(p.events(), vec![Event::Readable(p.id())]);
    let segs = p.advance(ms(500));
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(segs[0].tcp.flags, ACK);
    assert_eq!(segs[0].tcp.ack, p.snd_nxt);
    assert!(segs[0].at > t && segs[0].at - t < ms(500), "{segs:?}");
    assert_eq!(p.read_all().unwrap(), bytes(100));
}

/// SHLD-19 (RFC 9293 §3.8.6.3, RFC 5681 §4.2): every second full-sized
/// segment is acknowledged at once.
#[test]
fn shld_19_every_second_full_segment_acked_at_once() {
    let mut p = Peer::new().established();
    p.data(&bytes(1460));
    p.expect_nothing();
    p.data(&bytes(1460));
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    p.data(&bytes(1460));
    p.expect_nothing();
    p.data(&bytes(1460));
    p.expect_ack(s, p.snd_nxt);
    assert_eq!(p.read_all().unwrap().len(), 4 * 1460);
}

/// SHLD-31 (RFC 9293 §3.10.7.4 seventh, RFC 5681 §4.2): an out-of-order
/// segment gets an immediate duplicate ACK and is kept; the segment that
/// fills the gap gets an immediate ACK and everything is delivered in order.
#[test]
fn shld_31_out_of_order_gets_immediate_dup_ack() {
    let mut p = Peer::new().established();
    let data = bytes(300);
    let base = p.snd_nxt;
    p.send(PSH_ACK, base.wrapping_add(200), p.rcv_nxt, &data[200..]);
    p.expect_ack(p.rcv_nxt, base);
    p.send(PSH_ACK, base.wrapping_add(100), p.rcv_nxt, &data[100..200]);
    p.expect_ack(p.rcv_nxt, base);
    assert_eq!(p.stack.readable(p.id()), Ok(0));
    p.send(PSH_ACK, base, p.rcv_nxt, &data[..100]);
    p.snd_nxt = base.wrapping_add(300);
    p.expect_ack(p.rcv_nxt, p.snd_nxt);
    assert_eq!(p.read_all().unwrap(), data);
}

/// RFC 9293 §3.10.7.4 fifth: the send window is updated only from a segment
/// with SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK; an
/// older segment (here, one that was reordered) does not touch it.
#[test]
fn rfc9293_3_10_7_4_window_update_follows_wl1_wl2() {
    let mut p = Peer::new().established();
    let base = p.snd_nxt;
    // The later segment arrives first and closes the window.
    let mut later = p.repr(PSH_ACK, base.wrapping_add(100), p.rcv_nxt);
    later.window = 0;
    p.inject(&later, &bytes(100));
    p.expect_segment(ACK);
    // The earlier one, with an open window, comes second: SEG.SEQ < WL1.
    p.send(PSH_ACK, base, p.rcv_nxt, &bytes(100));
    p.snd_nxt = base.wrapping_add(200);
    p.expect_ack(p.rcv_nxt, p.snd_nxt);
    // So the window is still zero: nothing goes out.
    p.stack.send(p.now, p.id(), &bytes(1000)).unwrap();
    p.expect_nothing();
    // A newer segment (SEG.SEQ > WL1) opens it.
    p.ack_window(65535);
    let s = p.expect_segment(PSH_ACK);
    assert_eq!(s.payload.len(), 1000);
    // Same SEG.SEQ, same SEG.ACK (WL2 =< SEG.ACK): updates too.
    p.ack_window(0);
    p.stack.send(p.now, p.id(), &bytes(10)).unwrap();
    p.expect_nothing();
}

/// RFC 9293 §3.10.7.4 first and seventh: the part of a segment beyond the
/// receive window is trimmed off (and a FIN on that part is not taken).
#[test]
fn rfc9293_3_10_7_4_data_beyond_window_is_trimmed() {
    let mut p = Peer::with(Config {
        recv_buffer: 4096,
        ..Config::default()
    })
    .established();
    let data = bytes(5000);
    let base = p.snd_nxt;
    p.send(fl(PSH_ACK, FIN), base, p.rcv_nxt, &data);
    let a = p.expect_ack(p.rcv_nxt, base.wrapping_add(4096));
    assert_eq!(a.tcp.window, 0);
    assert_eq!(
        p.state(),
        State::Established,
        "the FIN was beyond the window"
    );
    assert_eq!(p.read_all().unwrap(), data[..4096]);
}

/// RFC 9293 §3.10.7.4 eighth: a FIN in ESTABLISHED is acknowledged, moves
/// to CLOSE-WAIT and reads as end of stream (`Ok(0)`) after the data.
#[test]
fn rfc9293_3_10_7_4_fin_moves_to_close_wait() {
    let mut p = Peer::new().established();
    p.data(b"last words");
    p.fin();
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    assert_eq!(p.state(), State::CloseWait);
    let mut buf = [0u8; 64];
    assert_eq!(p.stack.recv(p.now, p.id(), &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    assert_eq!(p.stack.recv(p.now, p.id(), &mut buf), Ok(0));
    assert_eq!(p.stack.recv(p.now, p.id(), &mut buf), Ok(0));
    // Sending is still allowed in CLOSE-WAIT.
    p.stack.send(p.now, p.id(), b"reply").unwrap();
    assert_eq!(p.expect_segment(PSH_ACK).payload, b"reply");
}

/// MUST-12 (RFC 9293 §3.9.1): the application can tell an orderly close
/// (FIN: end of stream) from a reset (RST: an error).
#[test]
fn must_12_fin_and_rst_are_told_apart() {
    for rst in [false, true] {
        let mut p = Peer::new().established();
        if rst {
            p.rst();
        } else {
            p.fin();
        }
        let _ = p.transmitted();
        let mut buf = [0u8; 16];
        let got = p.stack.recv(p.now, p.id(), &mut buf);
        let events = p.events();
        if rst {
            assert_eq!(got, Err(Error::Reset));
            assert!(events.contains(&Event::Closed {
                id: p.id(),
                error: Some(Error::Reset)
            }));
        } else {
            assert_eq!(got, Ok(0));
            assert_eq!(p.stack.error(p.id()), Ok(None));
            assert!(!events.iter().any(|e| matches!(e, Event::Closed { .. })));
        }
    }
}

// ===========================================================================
// Closing (§3.10.4, §3.10.7.4, §3.6)
// ===========================================================================

/// RFC 9293 §3.6 Figure 12 and §3.10.4: CLOSE in ESTABLISHED sends FIN
/// (FIN-WAIT-1); its ACK gives FIN-WAIT-2; the peer's FIN gives TIME-WAIT
/// and is acknowledged.
#[test]
fn rfc9293_3_6_active_close_fin_wait_1_fin_wait_2_time_wait() {
    let mut p = Peer::new().established();
    p.stack.shutdown_write(p.now, p.id()).unwrap();
    let fin = p.expect_segment(FIN_ACK);
    assert_eq!(fin.tcp.seq, p.stack_iss.wrapping_add(1));
    assert_eq!(p.state(), State::FinWait1);
    assert_eq!(p.stack.send(p.now, p.id(), b"x"), Err(Error::Closing));
    p.ack();
    p.expect_nothing();
    assert_eq!(p.state(), State::FinWait2);
    // Half-closed: data still arrives.
    p.data(b"more");
    assert_eq!(p.read_all().unwrap(), b"more");
    let _ = p.transmitted();
    p.fin();
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    assert_eq!(p.state(), State::TimeWait);
    assert_eq!(p.stack.time_wait_count(), 1);
}

/// RFC 9293 §3.6 Figure 13: simultaneous close. A FIN in FIN-WAIT-1 that
/// does not acknowledge ours gives CLOSING (and an ACK); the ACK of our FIN
/// then gives TIME-WAIT.
#[test]
fn rfc9293_3_6_simultaneous_close_closing_time_wait() {
    let mut p = Peer::new().fin_wait_1();
    let our_fin = p.rcv_nxt.wrapping_sub(1);
    p.send(FIN_ACK, p.snd_nxt, our_fin, &[]);
    p.snd_nxt = p.snd_nxt.wrapping_add(1);
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    assert_eq!(p.state(), State::Closing);
    p.ack();
    p.expect_nothing();
    assert_eq!(p.state(), State::TimeWait);
    assert_eq!(p.stack.time_wait_count(), 1);
}

/// RFC 9293 §3.6 Figure 12 (passive side) and §3.10.4: CLOSE in
/// CLOSE-WAIT sends FIN (LAST-ACK); its ACK gives CLOSED.
#[test]
fn rfc9293_3_6_passive_close_last_ack_closed() {
    let mut p = Peer::new().last_ack();
    p.ack();
    p.expect_nothing();
    assert_eq!(p.state(), State::Closed);
    assert_eq!(
        p.events(),
        vec![
            Event::Readable(p.id()),
            Event::Closed {
                id: p.id(),
                error: None
            }
        ]
    );
    assert_eq!(p.stack.connection_count(), 1, "the handle is still held");
    p.stack.close(p.now, p.id()).unwrap();
    assert_eq!(p.stack.connection_count(), 0);
}

/// RFC 9293 §3.10.4: with the handle released (`close`) in CLOSE-WAIT the
/// stack still finishes LAST-ACK and frees the connection on the ACK.
#[test]
fn rfc9293_3_10_4_close_in_close_wait_frees_after_last_ack() {
    let mut p = Peer::new().close_wait();
    p.read_all().unwrap();
    p.stack.close(p.now, p.id()).unwrap();
    p.expect_segment(FIN_ACK);
    assert_eq!(p.stack.connection_count(), 1);
    p.ack();
    p.expect_nothing();
    assert_eq!(p.stack.connection_count(), 0);
    assert_eq!(p.stack.state(p.id()), Err(Error::InvalidHandle));
}

/// RFC 9293 §3.10.7.4 (TIME-WAIT) and §3.4.2: TIME-WAIT lasts exactly
/// 2×MSL, then the connection is CLOSED.
#[test]
fn must_13_time_wait_lasts_2msl() {
    for msl in [secs(30), secs(2)] {
        let mut p = Peer::with(Config {
            msl,
            ..Config::default()
        })
        .time_wait();
        let t = p.now;
        let _ = p.events();
        assert!(p
            .run_until(t + (2 * msl - Duration::from_micros(1)))
            .is_empty());
        assert_eq!(p.stack.time_wait_count(), 1, "msl {msl:?}");
        assert_eq!(p.state(), State::TimeWait);
        assert!(p.run_until(t + 2 * msl).is_empty());
        assert_eq!(p.stack.time_wait_count(), 0, "msl {msl:?}");
        assert_eq!(p.state(), State::Closed);
        assert_eq!(
            p.events(),
            vec![Event::Closed {
                id: p.id(),
                error: None
            }]
        );
    }
}

/// MUST-13 and RFC 9293 §3.10.7.4 (TIME-WAIT, eighth): a retransmitted FIN
/// in TIME-WAIT is acknowledged again and restarts the 2×MSL timeout.
#[test]
fn must_13_retransmitted_fin_in_time_wait_restarts_timer() {
    let mut p = Peer::new().time_wait();
    let t = p.now;
    let twice_msl = 2 * p.stack.config().msl;
    p.run_until(t + twice_msl / 2);
    let fin_seq = p.snd_nxt.wrapping_sub(1);
    p.send(FIN_ACK, fin_seq, p.rcv_nxt, &[]);
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    let restart = p.now;
    assert!(p.run_until(t + twice_msl).is_empty());
    assert_eq!(p.stack.time_wait_count(), 1, "restarted");
    p.run_until(restart + (twice_msl - Duration::from_micros(1)));
    assert_eq!(p.stack.time_wait_count(), 1);
    p.run_until(restart + twice_msl);
    assert_eq!(p.stack.time_wait_count(), 0);
}

/// `Config::max_time_wait` (MUST-13 bounded): a connection that enters
/// TIME-WAIT while the table is full takes the place of the oldest entry,
/// the first to expire, whose TIME-WAIT ends early: it is traced
/// TIME-WAIT → CLOSED and the application still holding it is told. The
/// other entries, and the new one, wait their full 2×MSL.
#[test]
fn full_time_wait_table_recycles_the_oldest_entry() {
    let cfg = Config {
        max_time_wait: 2,
        trace: true,
        ..Config::default()
    };
    let mut p = Peer::with(cfg).listening();
    let mut conns = Vec::new();
    for port in [40000, 40001, 40002] {
        // A new peer port: a fresh connection through the same listener.
        p.remote.set_port(port);
        let _ = p.events(); // Readable: the previous one's end of stream
        p.id = None;
        p.rcv_nxt = 0;
        p = p.fin_wait_2();
        p.fin();
        let (seq, ack) = (p.rcv_nxt, p.snd_nxt);
        p.expect_ack(seq, ack);
        let id = p.id();
        assert_eq!(p.stack.state(id), Ok(State::TimeWait), "port {port}");
        conns.push((id, p.stack.tuple(id).unwrap(), p.now));
        p.now += secs(1);
    }
    assert_eq!(p.stack.time_wait_count(), 2);
    let (oldest, oldest_tuple, _) = conns[0];
    assert_eq!(p.stack.state(oldest), Ok(State::Closed));
    assert_eq!(p.stack.state(conns[1].0), Ok(State::TimeWait));
    let closed: Vec<Event> = p
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Closed { .. }))
        .collect();
    assert_eq!(
        closed,
        vec![Event::Closed {
            id: oldest,
            error: None
        }]
    );
    let ended: Vec<_> = std::iter::from_fn(|| p.stack.poll_trace())
        .filter(|e| {
            e.kind
                == TraceKind::State {
                    from: State::TimeWait,
                    to: State::Closed,
                }
        })
        .map(|e| e.conn)
        .collect();
    assert_eq!(ended, vec![Some(oldest_tuple)], "only the oldest ended");
    // The two left each wait 2×MSL from their own start.
    let twice_msl = 2 * p.stack.config().msl;
    for (i, &(id, _, entered)) in conns.iter().enumerate().skip(1) {
        p.run_until(entered + (twice_msl - Duration::from_micros(1)));
        assert_eq!(p.stack.state(id), Ok(State::TimeWait), "connection {i}");
        p.run_until(entered + twice_msl);
        assert_eq!(p.stack.state(id), Ok(State::Closed), "connection {i}");
    }
    assert_eq!(p.stack.time_wait_count(), 0);
}

/// `Config::max_time_wait` of 0 keeps no TIME-WAIT table: TIME-WAIT ends
/// as it begins, traced, and the application still holding the connection
/// sees it CLOSED and is told.
#[test]
fn no_time_wait_table_closes_at_once() {
    let mut p = Peer::with(Config {
        max_time_wait: 0,
        ..Config::default()
    })
    .fin_wait_2();
    p.fin();
    let (seq, ack) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(seq, ack);
    assert_eq!(p.stack.time_wait_count(), 0);
    assert_eq!(p.stack.state(p.id()), Ok(State::Closed));
    assert!(p.events().contains(&Event::Closed {
        id: p.id(),
        error: None
    }));
    p.stack.close(p.now, p.id()).unwrap();
    assert_eq!(p.stack.connection_count(), 0);
}

/// RFC 1337 (TIME-WAIT assassination, hazard H1): an RST in TIME-WAIT is
/// ignored; the 2×MSL wait runs its course.
#[test]
fn rfc1337_rst_in_time_wait_is_ignored() {
    let mut p = Peer::new().time_wait();
    let t = p.now;
    let _ = p.events();
    p.send(RST, p.snd_nxt, 0, &[]);
    p.send(RST_ACK, p.snd_nxt, p.rcv_nxt, &[]);
    p.expect_nothing();
    assert_eq!(p.stack.time_wait_count(), 1);
    assert_eq!(p.state(), State::TimeWait);
    assert!(p.events().is_empty());
    p.run_until(t + 2 * p.stack.config().msl);
    assert_eq!(p.stack.time_wait_count(), 0);
}

/// RFC 9293 §3.10.4 and §3.8.1 (MUST-20 area): a FIN that is not
/// acknowledged is retransmitted on the RTO, with the same SEQ.
#[test]
fn rfc9293_3_10_4_unacknowledged_fin_is_retransmitted() {
    let mut p = Peer::new().fin_wait_1();
    let t = p.now;
    let fin_seq = p.rcv_nxt.wrapping_sub(1);
    let limit = t + secs(10);
    let a = p.next_timed_segment(limit).expect("FIN again");
    assert_eq!(a.ctl(), FIN_ACK);
    assert_eq!(a.tcp.seq, fin_seq);
    assert_eq!(a.at - t, secs(1));
    let b = p.next_timed_segment(limit).expect("and again");
    assert_eq!(b.ctl(), FIN_ACK);
    assert_eq!(b.tcp.seq, fin_seq);
    assert_eq!(b.at - a.at, secs(2));
    p.ack();
    assert_eq!(p.state(), State::FinWait2);
}

/// RFC 9293 §3.10.4 (FIN-WAIT-2) with Linux's `tcp_fin_timeout`: once the
/// application has closed, FIN-WAIT-2 waits `Config::fin_timeout` for the
/// peer's FIN, then the connection is gone.
#[test]
fn fin_wait_2_times_out_after_close() {
    for fin_timeout in [secs(60), secs(5)] {
        let mut p = Peer::with(Config {
            fin_timeout,
            ..Config::default()
        })
        .established();
        p.stack.close(p.now, p.id()).unwrap();
        p.expect_segment(FIN_ACK);
        p.ack();
        p.expect_nothing();
        let t = p.now;
        assert_eq!(p.stack.state(p.id()), Ok(State::FinWait2));
        p.run_until(t + (fin_timeout - Duration::from_micros(1)));
        assert_eq!(p.stack.connection_count(), 1, "{fin_timeout:?}");
        p.run_until(t + fin_timeout);
        assert_eq!(p.stack.connection_count(), 0, "{fin_timeout:?}");
        assert_eq!(p.stack.time_wait_count(), 0);
        // A late FIN finds no connection.
        let _ = p.transmitted();
        p.fin();
        p.expect_segment(RST);
    }
}

/// RFC 9293 §3.10.4: a half-closed connection (shutdown of writing only)
/// waits in FIN-WAIT-2 for as long as the peer keeps sending.
#[test]
fn fin_wait_2_without_close_does_not_time_out() {
    let mut p = Peer::new().fin_wait_2();
    p.run_until(p.now + secs(600));
    assert_eq!(p.state(), State::FinWait2);
    p.data(b"still here");
    assert_eq!(p.read_all().unwrap(), b"still here");
}

/// SHLD-3 (RFC 9293 §3.10.4, RFC 2525 §2.17): CLOSE with received data the
/// application never read sends RST, not FIN.
#[test]
fn shld_3_close_with_unread_data_sends_rst() {
    let mut p = Peer::new().established();
    p.data(b"unread");
    p.expect_nothing();
    let seq = p.rcv_nxt;
    p.stack.close(p.now, p.id()).unwrap();
    let r = p.expect_segment(RST);
    assert_eq!(r.tcp.seq, seq);
    assert_eq!(p.stack.connection_count(), 0);
    assert!(p.advance(secs(60)).is_empty());
}

/// SHLD-3, MAY-1: after a full CLOSE the application reads no more, so
/// text that still arrives (here in FIN-WAIT-2, with a FIN behind it) is
/// answered with RST and the connection ends; its FIN is not processed (no
/// ACK of it, no TIME-WAIT).
#[test]
fn shld_3_data_after_close_sends_rst() {
    let mut p = Peer::new().established();
    p.stack.close(p.now, p.id()).unwrap();
    p.expect_segment(FIN_ACK);
    p.ack();
    p.expect_nothing();
    let seq = p.rcv_nxt;
    p.send(fl(FIN_ACK, PSH), p.snd_nxt, p.rcv_nxt, b"too late");
    let r = p.expect_segment(RST);
    assert_eq!(r.tcp.seq, seq);
    p.expect_nothing();
    assert_eq!(p.stack.connection_count(), 0);
    assert_eq!(p.stack.time_wait_count(), 0);
    assert!(p.advance(secs(60)).is_empty());
}

// ===========================================================================
// Retransmission (RFC 6298, §3.8.1, §3.8.3)
// ===========================================================================

/// RFC 6298 §2.1/§2.4 (RTO 1 s), §5.4 (retransmit the earliest
/// unacknowledged segment) and §5.5 (double the RTO at each expiry); the
/// bytes resent are the bytes first sent.
#[test]
fn rfc6298_5_5_rto_doubles_and_retransmits_the_same_bytes() {
    let mut p = Peer::new().established();
    let t = p.now;
    let data = bytes(300);
    p.stack.send(p.now, p.id(), &data).unwrap();
    let first = p.expect_segment(PSH_ACK);
    assert_eq!(first.payload, data);
    let mut prev = t;
    for (i, gap) in [1u64, 2, 4, 8, 16].into_iter().enumerate() {
        let r = p.next_timed_segment(t + secs(100)).expect("retransmission");
        assert_eq!(r.tcp.seq, first.tcp.seq, "rtx {i}");
        assert_eq!(r.payload, data, "rtx {i}");
        assert_eq!(r.at - prev, secs(gap), "rtx {i}");
        prev = r.at;
    }
    assert_eq!(p.stack.stats().retransmissions, 5);
    p.ack();
    assert_eq!(p.stack.unacked(p.id()), Ok(0));
    assert!(p.advance(secs(300)).is_empty(), "nothing left to resend");
}

/// MUST-20 and RFC 9293 §3.8.3 (R1, R2): after `max_retries`
/// retransmissions the connection is aborted with TimedOut (R2 at least
/// 100 s after the first), and the user is warned at R1 (SHLD-9).
#[test]
fn must_20_retransmissions_give_up_with_timed_out() {
    let mut p = Peer::new().established();
    let t = p.now;
    p.stack.send(p.now, p.id(), b"anyone there?").unwrap();
    p.expect_segment(PSH_ACK);
    let mut rtx = 0;
    let mut events = Vec::new();
    while let Some(s) = p.next_timed_segment(t + secs(7200)) {
        assert_eq!(s.payload, b"anyone there?");
        rtx += 1;
        events.extend(p.events());
    }
    events.extend(p.events());
    assert_eq!(rtx, p.stack.config().max_retries);
    assert!(
        events.contains(&Event::DeliveryTrouble(p.id())),
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            id: p.id(),
            error: Some(Error::TimedOut)
        })
    );
    assert!(p.now - t >= secs(100), "R2 after {:?}", p.now - t);
    assert_eq!(p.state(), State::Closed);
}

/// MUST-17 (RFC 9293 §3.7.4): with Nagle, a small write while data is in
/// flight waits for the ACK; with nodelay it goes out at once.
#[test]
fn must_17_nodelay_disables_nagle() {
    for nodelay in [false, true] {
        let mut p = Peer::new().established();
        p.stack.set_nodelay(p.id(), nodelay).unwrap();
        p.stack.send(p.now, p.id(), b"first").unwrap();
        assert_eq!(p.expect_segment(PSH_ACK).payload, b"first");
        p.stack.send(p.now, p.id(), b"second").unwrap();
        if nodelay {
            assert_eq!(p.expect_segment(PSH_ACK).payload, b"second");
        } else {
            p.expect_nothing();
            p.now += RTT;
            p.ack();
            assert_eq!(p.expect_segment(PSH_ACK).payload, b"second");
        }
    }
}

// ===========================================================================
// Zero window (§3.8.6.1)
// ===========================================================================

/// MUST-36 / SHLD-29 (RFC 9293 §3.8.6.1): with a zero window and data to
/// send, the sender probes after one RTO and backs off; MUST-37: as long as
/// the probes are answered the connection is kept open, well past
/// `max_retries`. The opened window lets the data through.
#[test]
fn must_36_must_37_zero_window_probes() {
    let mut p = Peer::with(Config {
        max_retries: 3,
        ..Config::default()
    })
    .established();
    p.ack_window(0);
    p.expect_nothing();
    let data = bytes(1000);
    let start = p.rcv_nxt;
    p.stack.send(p.now, p.id(), &data).unwrap();
    p.expect_nothing();
    let t = p.now;
    let mut times = Vec::new();
    for i in 0..10 {
        let probe = p.next_timed_segment(t + secs(3600)).expect("a probe");
        assert_eq!(probe.tcp.seq, start, "probe {i}");
        assert!(probe.payload.len() <= 1, "probe {i}: {probe:?}");
        times.push(probe.at);
        // Answer: nothing taken, window still zero.
        let mut a = p.repr(ACK, p.snd_nxt, start);
        a.window = 0;
        p.inject(&a, &[]);
        let _ = p.transmitted();
    }
    assert_eq!(times[0] - t, secs(1), "first probe after one RTO");
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "{gaps:?}");
    assert!(gaps.last() > gaps.first(), "backoff: {gaps:?}");
    assert_eq!(p.state(), State::Established);
    assert!(p.events().is_empty());
    // The window opens.
    let mut a = p.repr(ACK, p.snd_nxt, start);
    a.window = 65535;
    p.inject(&a, &[]);
    for _ in 0..20 {
        if p.received.len() >= data.len() {
            break;
        }
        if p.transmitted().is_empty() {
            p.advance(ms(200));
        }
        p.ack();
    }
    assert!(p.received.ends_with(&data));
}

// ===========================================================================
// Bad input (MUST-3, §3.1)
// ===========================================================================

/// MUST-3 (RFC 9293 §3.1): a segment with a bad checksum is dropped,
/// counted, and answered by nothing, whichever bit was flipped.
#[test]
fn must_3_bad_checksum_is_dropped_silently() {
    let mut p = Peer::new().established();
    let repr = p.repr(PSH_ACK, p.snd_nxt, p.rcv_nxt);
    let good = p.packet(&repr, b"payload!");
    let before = p.stack.stats().total_drops();
    let mut n = 0;
    for byte in 20..good.len() {
        for bit in [0u8, 3, 7] {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            p.inject_raw(&bad);
            n += 1;
            p.expect_nothing();
        }
    }
    // Every one is dropped: almost all as a bad checksum; a flip that
    // breaks the header itself (the data offset) is named for that instead,
    // since the header is parsed before the payload's sum is added.
    assert_eq!(p.stack.stats().total_drops() - before, n);
    assert!(
        p.drops("bad checksum") + 2 >= n,
        "{}",
        p.drops("bad checksum")
    );
    assert_eq!(p.stack.readable(p.id()), Ok(0));
    assert_eq!(p.state(), State::Established);
    // The same segment intact is taken.
    p.inject_raw(&good);
    assert_eq!(p.stack.readable(p.id()), Ok(8));
}

/// RFC 9293 §3.1 / MUST-3: truncated packets never panic, are counted as
/// drops and produce no output, to a listener or to a connection.
#[test]
fn truncated_packets_are_counted_drops() {
    let mut p = Peer::new().established();
    let mut syn = p.repr(SYN, 5, 0);
    syn.src_port = 40001;
    syn.options.mss = Some(1460);
    syn.options.timestamps = Some((1, 0));
    let data = p.repr(PSH_ACK, p.snd_nxt, p.rcv_nxt);
    for packet in [p.packet(&syn, &[]), p.packet(&data, b"some data")] {
        for len in 0..packet.len() {
            let before = p.stack.stats().total_drops();
            p.inject_raw(&packet[..len]);
            assert_eq!(p.stack.stats().total_drops(), before + 1, "len {len}");
            assert!(p.stack.poll_transmit().is_none(), "len {len}");
        }
    }
    assert_eq!(p.stack.connection_count(), 1);
    assert_eq!(p.stack.readable(p.id()), Ok(0));
    assert_eq!(p.state(), State::Established);
}

/// RFC 9293 §3.1 (robustness): garbage never panics, is counted and gets
/// no reply; so do well-formed IP headers with random TCP bytes.
#[test]
fn garbage_is_counted_and_harmless() {
    let mut p = Peer::new().established();
    let template = {
        let r = p.repr(PSH_ACK, p.snd_nxt, p.rcv_nxt);
        p.packet(&r, &[0u8; 40])
    };
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..3000 {
        let pkt: Vec<u8> = if i % 2 == 0 {
            let len = (next() % 120) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 4 == 0 && !v.is_empty() {
                v[0] = 0x45;
            }
            v
        } else {
            let mut v = template.clone();
            for b in &mut v[20..] {
                *b = next() as u8;
            }
            v
        };
        let before = p.stack.stats().total_drops();
        p.inject_raw(&pkt);
        assert_eq!(p.stack.stats().total_drops(), before + 1, "packet {i}");
        assert!(p.stack.poll_transmit().is_none(), "packet {i}");
    }
    assert_eq!(p.state(), State::Established);
    assert!(p.events().is_empty());
}

// ===========================================================================
// More of §3.10.7.4, RFC 7323
// ===========================================================================

/// RFC 9293 §3.10.7.4 second, per state: an RST at RCV.NXT in ESTABLISHED,
/// FIN-WAIT-1, FIN-WAIT-2 and CLOSE-WAIT reports "reset" to the user
/// (MUST-12); in CLOSING and LAST-ACK it just ends the connection.
#[test]
fn rfc9293_3_10_7_4_rst_in_each_synchronized_state() {
    type Fixture = fn(Peer) -> Peer;
    let cases: [(&str, Fixture, Option<Error>); 6] = [
        ("ESTABLISHED", Peer::established, Some(Error::Reset)),
        ("FIN-WAIT-1", Peer::fin_wait_1, Some(Error::Reset)),
        ("FIN-WAIT-2", Peer::fin_wait_2, Some(Error::Reset)),
        ("CLOSE-WAIT", Peer::close_wait, Some(Error::Reset)),
        ("CLOSING", Peer::closing, None),
        ("LAST-ACK", Peer::last_ack, None),
    ];
    for (name, fixture, error) in cases {
        let mut p = fixture(Peer::new());
        let _ = p.events();
        p.rst();
        p.expect_nothing();
        assert_eq!(p.state(), State::Closed, "{name}");
        assert_eq!(
            p.events(),
            vec![Event::Closed { id: p.id(), error }],
            "{name}"
        );
        assert!(p.advance(secs(300)).is_empty(), "{name}: nothing more");
    }
}

/// MUST-11 (second half), RFC 9293 §3.10.7.4 second: an RST in SYN-RECEIVED
/// reached from an active OPEN (simultaneous open) means "refused".
#[test]
fn must_11_active_syn_received_rst_is_refused() {
    let mut p = Peer::new().syn_sent();
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options.mss = Some(1460);
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS + 1;
    p.expect_segment(SYN_ACK);
    assert_eq!(p.state(), State::SynReceived);
    p.rst();
    p.expect_nothing();
    assert_eq!(p.state(), State::Closed);
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            id: p.id(),
            error: Some(Error::Refused)
        }]
    );
}

/// RFC 9293 §3.8.1 and §3.10.8 (SYN-RECEIVED): an unanswered SYN-ACK is
/// retransmitted with backoff `synack_retries` times, then the half-open
/// connection is dropped silently and the listener is unaffected.
#[test]
fn rfc9293_3_10_8_syn_ack_retries_then_drop() {
    let mut p = Peer::new().syn_received();
    let t = p.now;
    let iss = p.stack_iss;
    let mut times = Vec::new();
    while let Some(s) = p.next_timed_segment(t + secs(3600)) {
        assert_eq!(s.ctl(), SYN_ACK);
        assert_eq!(s.tcp.seq, iss);
        times.push(s.at - t);
    }
    let want: Vec<Duration> = [1, 3, 7, 15, 31].into_iter().map(secs).collect();
    assert_eq!(times, want, "synack_retries = 5, RTO doubling");
    assert_eq!(p.stack.connection_count(), 0);
    assert!(p.events().is_empty());
    // The late ACK now meets the listener: RST.
    p.ack();
    p.expect_segment(RST);
    // A new SYN is welcome.
    p.syn();
    p.expect_segment(SYN_ACK);
}

/// RFC 9293 §3.10.7.4 eighth: data and FIN in one segment: the data is
/// delivered, then end of stream; one ACK covers both.
#[test]
fn rfc9293_3_10_7_4_data_with_fin() {
    let mut p = Peer::new().established();
    let base = p.snd_nxt;
    p.send(fl(PSH_ACK, FIN), base, p.rcv_nxt, b"bye");
    p.snd_nxt = base.wrapping_add(4);
    let (s, a) = (p.rcv_nxt, p.snd_nxt);
    p.expect_ack(s, a);
    assert_eq!(p.state(), State::CloseWait);
    assert_eq!(p.read_all().unwrap(), b"bye");
    let mut buf = [0u8; 4];
    assert_eq!(p.stack.recv(p.now, p.id(), &mut buf), Ok(0));
}

/// RFC 9293 §3.10.7.4 eighth: a retransmitted FIN in CLOSE-WAIT or
/// LAST-ACK is acknowledged again and changes nothing.
#[test]
fn rfc9293_3_10_7_4_retransmitted_fin_is_reacked() {
    type Fixture = fn(Peer) -> Peer;
    let cases: [(&str, Fixture, State); 2] = [
        ("CLOSE-WAIT", Peer::close_wait, State::CloseWait),
        ("LAST-ACK", Peer::last_ack, State::LastAck),
    ];
    for (name, fixture, state) in cases {
        let mut p = fixture(Peer::new());
        let fin_seq = p.snd_nxt.wrapping_sub(1);
        p.send(FIN_ACK, fin_seq, p.rcv_nxt, &[]);
        let (s, a) = (p.rcv_nxt, p.snd_nxt);
        p.expect_ack(s, a);
        assert_eq!(p.state(), state, "{name}");
    }
}

/// RFC 7323 §2.2 and §2.3: the window field of a SYN is never scaled; once
/// both SYNs carried the option, every later window field is shifted, both
/// the peer's (by its shift) and ours (by the shift we offered).
#[test]
fn rfc7323_2_window_scale_applies_after_the_syn() {
    let mut p = Peer::new().listening();
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options.mss = Some(1460);
    syn.options.window_scale = Some(7);
    syn.window = 100; // 100 bytes: a SYN's window is not scaled
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS + 1;
    let sa = p.expect_segment(SYN_ACK);
    let shift = sa.tcp.options.window_scale.expect("window scale answered");
    assert_eq!(
        u32::from(sa.tcp.window),
        (p.stack.config().recv_buffer as u32).min(65535),
        "SYN-ACK window unscaled"
    );
    // Window field 8, scaled by 7: 1024 bytes.
    p.ack_window(8);
    let lid = p.lid.unwrap();
    assert_eq!(p.events(), vec![Event::Incoming(lid)]);
    p.id = Some(p.stack.accept(lid).unwrap());
    p.stack.send(p.now, p.id(), &bytes(5000)).unwrap();
    let s = p.expect_segment(ACK);
    assert_eq!(s.payload.len(), 1024, "8 << 7 bytes of window");
    // Our window fields are scaled by our shift from now on.
    p.window = 8;
    p.data(&bytes(100));
    let segs = p.advance(ms(500));
    let ack = segs.last().expect("an ACK");
    let wnd = u32::from(ack.tcp.window) << shift;
    let buf = p.stack.config().recv_buffer as u32;
    assert!(
        wnd > 65535 && wnd <= buf,
        "window {} << {shift} = {wnd}",
        ack.tcp.window
    );
}

/// RFC 7323 §5.3 (PAWS) R1: with timestamps in use, a segment whose TSval
/// is older than TS.Recent is dropped and answered by an ACK.
#[test]
fn rfc7323_5_paws_drops_old_timestamps() {
    let mut p = Peer::new();
    p.ts = Some(1_000);
    let mut p = p.established();
    p.ts = Some(2_000);
    p.data(b"new");
    assert_eq!(p.stack.readable(p.id()), Ok(3));
    let base = p.snd_nxt;
    p.ts = Some(1_500);
    p.send(PSH_ACK, base, p.rcv_nxt, b"old");
    p.expect_ack(p.rcv_nxt, base);
    assert_eq!(p.stack.readable(p.id()), Ok(3));
    assert_eq!(p.drops("PAWS"), 1);
    assert_eq!(p.state(), State::Established);
}

/// RFC 7323 §3.2: once timestamps are agreed, a non-RST segment without
/// them is dropped silently, while an RST without them is still honoured.
#[test]
fn rfc7323_3_2_segment_without_timestamps() {
    let mut p = Peer::new();
    p.ts = Some(1_000);
    let mut p = p.established();
    p.ts = None;
    p.data(b"naked");
    p.expect_nothing();
    assert_eq!(p.stack.readable(p.id()), Ok(0));
    assert_eq!(p.drops("missing timestamp"), 1);
    p.snd_nxt = p.snd_nxt.wrapping_sub(5);
    p.rst();
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.stack.error(p.id()), Ok(Some(Error::Reset)));
}

/// RFC 9293 §3.10.7.4 fifth and seventh (SYN-RECEIVED): the ACK that
/// completes the handshake may carry data; it is delivered.
#[test]
fn rfc9293_3_10_7_4_handshake_ack_with_data() {
    let mut p = Peer::new().syn_received();
    p.data(b"early");
    let lid = p.lid.unwrap();
    let ev = p.events();
    assert!(ev.contains(&Event::Incoming(lid)), "{ev:?}");
    p.id = Some(p.stack.accept(lid).unwrap());
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.read_all().unwrap(), b"early");
}

/// RFC 9293 §3.10.7.4 (TIME-WAIT, fourth) with MAY-2 / RFC 6191: a new SYN
/// above the old sequence space reopens the connection from TIME-WAIT when
/// a listener waits on the port, with an ISS above the old SND.NXT.
#[test]
fn may_2_syn_in_time_wait_reopens() {
    let mut p = Peer::new().time_wait();
    let old_nxt = p.rcv_nxt;
    let new_iss = p.snd_nxt.wrapping_add(100_000);
    let mut syn = p.repr(SYN, new_iss, 0);
    syn.options.mss = Some(1460);
    p.inject(&syn, &[]);
    let sa = p.expect_segment(SYN_ACK);
    assert_eq!(sa.tcp.ack, new_iss.wrapping_add(1));
    assert!(
        (sa.tcp.seq.wrapping_sub(old_nxt) as i32) > 0,
        "new ISS {} above old SND.NXT {old_nxt}",
        sa.tcp.seq
    );
    assert_eq!(p.stack.time_wait_count(), 0);
    p.send(
        ACK,
        new_iss.wrapping_add(1),
        sa.tcp.seq.wrapping_add(1),
        &[],
    );
    let lid = p.lid.unwrap();
    assert!(p.events().contains(&Event::Incoming(lid)));
    assert!(p.stack.accept(lid).is_ok());
}

/// RFC 9293 §3.10.4 (SYN-SENT) and §3.10.5: CLOSE or ABORT in SYN-SENT
/// deletes the TCB and sends nothing.
#[test]
fn rfc9293_3_10_4_close_in_syn_sent_sends_nothing() {
    for abort in [false, true] {
        let mut p = Peer::new().syn_sent();
        if abort {
            p.stack.abort(p.now, p.id()).unwrap();
        } else {
            p.stack.close(p.now, p.id()).unwrap();
        }
        p.expect_nothing();
        assert_eq!(p.stack.connection_count(), 0, "abort={abort}");
        assert!(p.advance(secs(300)).is_empty(), "abort={abort}: no SYN");
    }
}

/// RFC 9293 §3.10.5: ABORT in ESTABLISHED sends `<SEQ=SND.NXT><CTL=RST>`
/// and deletes the TCB.
#[test]
fn rfc9293_3_10_5_abort_sends_rst() {
    let mut p = Peer::new().established();
    p.stack.send(p.now, p.id(), b"in flight").unwrap();
    p.expect_segment(PSH_ACK);
    let nxt = p.rcv_nxt;
    p.stack.abort(p.now, p.id()).unwrap();
    let r = p.expect_segment(RST);
    assert_eq!(r.tcp.flags, RST);
    assert_eq!(r.tcp.seq, nxt);
    assert_eq!(p.stack.connection_count(), 0);
    assert_eq!(p.stack.state(p.id()), Err(Error::InvalidHandle));
    assert!(p.advance(secs(300)).is_empty(), "no retransmission");
}
