//! ECN (RFC 3168 §6.1) against the hand-driven peer: the ECN-setup
//! handshake both ways for each `Config::ecn`, the codepoint of every kind
//! of segment, the receiver's ECE until CWR, the sender's one reduction per
//! window and its CWR, and SYN cookies that keep the agreement.

mod common;

use common::*;
use synack_core::{Config, Dscp, Ecn, Event, State, TraceKind};
use synack_wire::{emit_packet_with, packet_len, TcpChecksum, TcpFlags, TcpRepr, CE, ECT0};

const ECE: TcpFlags = TcpFlags::ECE;
const CWR: TcpFlags = TcpFlags::CWR;

fn cfg(ecn: Ecn) -> Config {
    Config {
        ecn,
        trace: true,
        ..Config::default()
    }
}

/// The ECN field of a segment the stack sent.
fn ecn_of(s: &Seg) -> u8 {
    s.tos & 0b11
}

fn has(s: &Seg, f: TcpFlags) -> bool {
    s.tcp.flags.contains(f)
}

/// Injects `repr` with `payload` in a packet whose ECN field is `ecn`.
fn inject_ecn(p: &mut Peer, repr: &TcpRepr, payload: &[u8], ecn: u8) {
    let mut buf = vec![0u8; packet_len(p.remote.ip(), repr, payload.len())];
    let n = emit_packet_with(
        &mut buf,
        p.remote.ip(),
        p.local.ip(),
        64,
        ecn,
        repr,
        &[payload],
        TcpChecksum::Full,
    )
    .unwrap();
    p.inject_raw(&buf[..n]);
}

/// In-sequence data from the peer with `flags` (ACK always) and ECN `ecn`.
fn data_ecn(p: &mut Peer, payload: &[u8], flags: TcpFlags, ecn: u8) {
    let repr = p.repr(flags | ACK, p.snd_nxt, p.rcv_nxt);
    inject_ecn(p, &repr, payload, ecn);
    p.snd_nxt = p.snd_nxt.wrapping_add(payload.len() as u32);
}

/// The peer's SYN (ECN-setup when `asks`); returns the stack's SYN-ACK.
fn passive_syn(p: &mut Peer, asks: bool) -> Seg {
    if p.lid.is_none() {
        p.lid = Some(p.stack.listen(p.local, 128).unwrap());
    }
    p.snd_nxt = PEER_ISS;
    let flags = if asks { SYN | ECE | CWR } else { SYN };
    let mut syn = p.repr(flags, PEER_ISS, 0);
    syn.options.mss = Some(1460);
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS.wrapping_add(1);
    let mut segs = p.transmitted();
    assert_eq!(segs.len(), 1, "{segs:#?}");
    let sa = segs.pop().unwrap();
    assert!(sa.tcp.flags.syn() && sa.tcp.flags.ack(), "{sa:#?}");
    sa
}

/// The peer's ACK completes a passive open; the connection is accepted.
fn accept(p: &mut Peer) {
    p.now += RTT;
    p.ack();
    let lid = p.lid.unwrap();
    assert!(p.events().contains(&Event::Incoming(lid)));
    p.id = Some(p.stack.accept(lid).unwrap());
    assert_eq!(p.state(), State::Established);
}

/// A passive ECN connection, ESTABLISHED.
fn ecn_established() -> Peer {
    let mut p = Peer::with(cfg(Ecn::AcceptWhenAsked));
    let sa = passive_syn(&mut p, true);
    assert!(has(&sa, ECE));
    accept(&mut p);
    p
}

/// Whether the stack's data on this connection is ECT(0): sends `n` bytes
/// and looks at every data segment (all of one kind, or the test fails).
fn data_is_ect(p: &mut Peer, n: usize) -> bool {
    p.stack.send(p.now, p.id(), &bytes(n)).unwrap();
    let segs: Vec<Seg> = p
        .run_until(p.now + ms(1))
        .into_iter()
        .filter(|s| !s.payload.is_empty())
        .collect();
    assert!(!segs.is_empty());
    let ect = ecn_of(&segs[0]) == ECT0;
    assert!(segs.iter().all(|s| (ecn_of(s) == ECT0) == ect), "{segs:#?}");
    assert!(segs.iter().all(|s| ect || ecn_of(s) == 0));
    ect
}

/// RFC 3168 §6.1.1, the passive side: an ECN-setup SYN (ECE and CWR) gets
/// an ECN-setup SYN-ACK (ECE, not CWR) unless ECN is off; any other SYN
/// gets a plain SYN-ACK. The SYN-ACK itself is Not-ECT; the data of an
/// agreed connection is ECT(0), of any other Not-ECT.
#[test]
fn rfc3168_6_1_1_passive_negotiation_matrix() {
    for mode in [Ecn::Off, Ecn::AcceptWhenAsked, Ecn::On] {
        for asks in [false, true] {
            let mut p = Peer::with(cfg(mode));
            let sa = passive_syn(&mut p, asks);
            let agreed = asks && mode != Ecn::Off;
            let what = format!("{mode:?}, peer asks: {asks}");
            assert_eq!(has(&sa, ECE), agreed, "{what}");
            assert!(!has(&sa, CWR), "{what}");
            assert_eq!(ecn_of(&sa), 0, "SYN-ACK Not-ECT (§6.1.1): {what}");
            accept(&mut p);
            assert_eq!(data_is_ect(&mut p, 5000), agreed, "{what}");
        }
    }
    // ECE alone on a SYN is not an ECN-setup SYN.
    let mut p = Peer::with(cfg(Ecn::On));
    p.lid = Some(p.stack.listen(p.local, 128).unwrap());
    let mut syn = p.repr(SYN | ECE, PEER_ISS, 0);
    syn.options.mss = Some(1460);
    p.inject(&syn, &[]);
    let sa = p.expect_segment(SYN_ACK);
    assert!(!has(&sa, ECE));
}

/// RFC 3168 §6.1.1, the active side: only `Ecn::On` sends an ECN-setup
/// SYN; ECN is used only when the SYN-ACK is an ECN-setup one (ECE
/// without CWR: one with both set is a reflector, not an agreement).
#[test]
fn rfc3168_6_1_1_active_negotiation_matrix() {
    for mode in [Ecn::Off, Ecn::AcceptWhenAsked, Ecn::On] {
        for answer in [TcpFlags::empty(), ECE, ECE | CWR] {
            let mut p = Peer::with(cfg(mode));
            let id = p.stack.connect(p.now, Some(p.local), p.remote).unwrap();
            p.id = Some(id);
            let mut segs = p.transmitted();
            let syn = segs.pop().unwrap();
            let what = format!("{mode:?}, SYN-ACK {:#x}", answer.0);
            assert_eq!(has(&syn, ECE | CWR), mode == Ecn::On, "{what}");
            assert_eq!(ecn_of(&syn), 0, "SYN Not-ECT: {what}");
            p.now += RTT;
            let mut sa = p.repr(SYN_ACK | answer, PEER_ISS, p.stack_iss.wrapping_add(1));
            sa.options.mss = Some(1460);
            p.inject(&sa, &[]);
            p.snd_nxt = PEER_ISS.wrapping_add(1);
            let ack = p.expect_segment(ACK);
            assert!(!has(&ack, ECE) && ecn_of(&ack) == 0, "{what}");
            assert_eq!(p.state(), State::Established);
            let agreed = mode == Ecn::On && answer == ECE;
            assert_eq!(data_is_ect(&mut p, 5000), agreed, "{what}");
        }
    }
}

/// RFC 3168 §6.1.1.1: a SYN that had to be retransmitted no longer asks
/// (a path may drop ECN-setup SYNs), and the connection runs without ECN
/// even if the SYN-ACK then says ECE.
#[test]
fn rfc3168_6_1_1_1_a_retransmitted_syn_falls_back() {
    let mut p = Peer::with(cfg(Ecn::On));
    p.id = Some(p.stack.connect(p.now, Some(p.local), p.remote).unwrap());
    let first = p.transmitted().pop().unwrap();
    assert!(has(&first, ECE | CWR));
    let again = p.next_timed_segment(p.now + secs(2)).expect("SYN again");
    assert!(again.tcp.flags.syn() && !has(&again, ECE) && !has(&again, CWR));
    let mut sa = p.repr(SYN_ACK | ECE, PEER_ISS, p.stack_iss.wrapping_add(1));
    sa.options.mss = Some(1460);
    p.inject(&sa, &[]);
    p.snd_nxt = PEER_ISS.wrapping_add(1);
    p.expect_segment(ACK);
    p.window = 65_535;
    assert!(!data_is_ect(&mut p, 3000));
}

/// RFC 3168 §6.1.3: a CE mark is echoed by ECE at once (no delayed ACK),
/// on every ACK after it (pure ACKs and data alike) until a segment with
/// CWR arrives; a CE on the CWR segment itself starts the echo again. A
/// connection that did not agree to ECN never sends ECE.
#[test]
fn rfc3168_6_1_3_ece_on_every_ack_until_cwr() {
    let mut p = ecn_established();
    data_ecn(&mut p, &[1; 100], PSH, CE);
    // At once, with ECE (expect_segment compares every control bit).
    let ack = p.expect_segment(ACK | ECE);
    assert_eq!(ack.tcp.ack, p.snd_nxt);
    for _ in 0..3 {
        data_ecn(&mut p, &[2; 100], PSH, ECT0);
        let segs = p.advance(ms(300));
        assert_eq!(segs.len(), 1, "{segs:#?}");
        assert!(has(&segs[0], ECE), "ECE until CWR: {segs:#?}");
    }
    // The stack's own data carries the echo too.
    p.stack.send(p.now, p.id(), b"reply").unwrap();
    let reply = p.expect_segment(PSH_ACK | ECE);
    assert_eq!(ecn_of(&reply), ECT0);
    p.ack();
    data_ecn(&mut p, &[3; 100], PSH | CWR, ECT0);
    let segs = p.advance(ms(300));
    assert!(segs.iter().all(|s| !has(s, ECE)), "CWR ends it: {segs:#?}");
    data_ecn(&mut p, &[4; 100], PSH, ECT0);
    let segs = p.advance(ms(300));
    assert!(segs.iter().all(|s| !has(s, ECE)), "{segs:#?}");
    // CWR and CE on one segment: the new mark is echoed.
    data_ecn(&mut p, &[5; 100], PSH | CWR, CE);
    assert!(has(&p.expect_segment(ACK | ECE), ECE));

    // No agreement, no echo.
    let mut q = Peer::with(cfg(Ecn::AcceptWhenAsked));
    passive_syn(&mut q, false);
    accept(&mut q);
    data_ecn(&mut q, &[1; 100], PSH, CE);
    let segs = q.advance(ms(300));
    assert!(!segs.is_empty() && segs.iter().all(|s| !has(s, ECE)));
}

/// The congestion window after each change, from the trace.
fn windows(p: &mut Peer) -> Vec<u32> {
    std::iter::from_fn(|| p.stack.poll_trace())
        .filter_map(|e| match e.kind {
            TraceKind::Cwnd { cwnd, .. } => Some(cwnd),
            _ => None,
        })
        .collect()
}

/// RFC 3168 §6.1.2: the first ACK with ECE reduces the window as a loss
/// would (CUBIC: to 0.7, RFC 9438 §4.6), nothing is resent, and the next
/// new data segment carries CWR, only that one. Further ECEs for data of
/// the same window change nothing; once the window outstanding at the
/// reduction is acknowledged, an ECE reduces again.
#[test]
fn rfc3168_6_1_2_one_reduction_per_window_then_cwr() {
    let mut p = ecn_established();
    windows(&mut p);
    p.stack.send(p.now, p.id(), &bytes(200_000)).unwrap();
    let flight = p.transmitted();
    assert_eq!(flight.len(), 10, "IW10");
    assert!(flight.iter().all(|s| ecn_of(s) == ECT0 && !has(s, CWR)));
    let iw = 10 * flight[0].payload.len() as u32;
    // The peer acknowledges the first segment, echoing a CE mark.
    p.now += RTT;
    let first_end = flight[0]
        .tcp
        .seq
        .wrapping_add(flight[0].payload.len() as u32);
    let mut ack = p.repr(ACK | ECE, p.snd_nxt, first_end);
    p.inject(&ack, &[]);
    let w = windows(&mut p);
    let reduced = *w.last().expect("a window change");
    // The ACK first grows the window by a segment (slow start), then the
    // ECE takes it to 0.7 of that.
    let mss = flight[0].payload.len() as u32;
    assert_eq!(reduced, (iw + mss) * 7 / 10, "β_cubic = 0.7: {w:?}");
    assert_eq!(p.stack.stats().ecn_reductions, 1);
    // ECE on the rest of the window's ACKs: no further reduction; the
    // window opens again as the ACKs come, and the first new segment is
    // the one with CWR.
    let mut sent = Vec::new();
    for s in &flight[1..] {
        let end = s.tcp.seq.wrapping_add(s.payload.len() as u32);
        ack.ack = end;
        p.inject(&ack, &[]);
        sent.extend(p.transmitted());
    }
    assert_eq!(p.stack.stats().ecn_reductions, 1, "once per window");
    let data: Vec<&Seg> = sent.iter().filter(|s| !s.payload.is_empty()).collect();
    assert!(!data.is_empty());
    assert!(
        has(data[0], CWR),
        "CWR on the first new data: {:#?}",
        data[0]
    );
    assert_eq!(data.iter().filter(|s| has(s, CWR)).count(), 1);
    assert!(data.iter().all(|s| ecn_of(s) == ECT0));
    assert_eq!(p.stack.stats().retransmissions, 0, "nothing resent");
    // Past the reduction's window: the next ECE is a new congestion event.
    let last = data.last().unwrap();
    ack.ack = last.tcp.seq.wrapping_add(last.payload.len() as u32);
    p.inject(&ack, &[]);
    assert_eq!(p.stack.stats().ecn_reductions, 2);
    let next: Vec<Seg> = p.transmitted();
    assert!(next.iter().any(|s| has(s, CWR)), "{next:#?}");
}

/// RFC 3168 §6.1.4-§6.1.6 with Diffserv: ECT(0) only on new data; pure
/// ACKs, a retransmission after a timeout and a zero-window probe are
/// Not-ECT and carry no CWR; the DSCP is on all of them; the IPv4 header
/// checksum is right on each (the harness parses every packet).
#[test]
fn rfc3168_6_1_ect_only_on_new_data_with_the_dscp_kept() {
    let mut p = ecn_established();
    p.stack.set_dscp(p.id(), Dscp::EF).unwrap();
    p.stack.send(p.now, p.id(), &bytes(1000)).unwrap();
    let new = p.expect_segment(PSH_ACK);
    assert_eq!(new.tos, 0xB8 | ECT0, "EF and ECT(0)");
    // A pure ACK (delayed) of the peer's data, which does not acknowledge
    // the stack's.
    p.send(PSH_ACK, p.snd_nxt, new.tcp.seq, &[9; 10]);
    p.snd_nxt = p.snd_nxt.wrapping_add(10);
    let segs = p.advance(ms(300));
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].tos, 0xB8, "pure ACK: Not-ECT (§6.1.4)");
    // The data is lost: the RTO resends it Not-ECT, without CWR (§6.1.5).
    let rtx = p.next_timed_segment(p.now + secs(2)).expect("RTO");
    assert_eq!(rtx.tcp.seq, new.tcp.seq);
    assert_eq!(rtx.tos, 0xB8, "retransmission: Not-ECT");
    assert!(!has(&rtx, CWR));
    // Acknowledged; the next new data carries the timeout's CWR.
    p.ack();
    p.stack.send(p.now, p.id(), &bytes(500)).unwrap();
    let after = p.expect_segment(PSH_ACK | CWR);
    assert_eq!(after.tos, 0xB8 | ECT0);
    // A zero window: the probe is Not-ECT (§6.1.6).
    p.ack_window(0);
    p.stack.send(p.now, p.id(), &bytes(500)).unwrap();
    p.expect_nothing();
    let probe = p.next_timed_segment(p.now + secs(10)).expect("probe");
    assert_eq!(probe.payload.len(), 1, "{probe:#?}");
    assert_eq!(probe.tos, 0xB8, "window probe: Not-ECT");
}

/// Every SYN gets a cookie: a SYN queue of zero.
fn cookie_cfg() -> Config {
    Config {
        max_syn_backlog: 0,
        ..cfg(Ecn::AcceptWhenAsked)
    }
}

/// RFC 4987 with RFC 3168 §6.1.1: a cookie SYN-ACK agrees to an ECN-setup
/// SYN (ECE) and keeps the agreement in its TSval's ECN bit, so that the
/// connection the ACK rebuilds uses ECN; without timestamps there is
/// nowhere to keep it, and the cookie SYN-ACK declines.
#[test]
fn rfc3168_syn_cookies_keep_the_ecn_agreement_in_the_timestamp() {
    for ts in [true, false] {
        let mut p = Peer::with(cookie_cfg());
        p.ts = ts.then_some(5555);
        let sa = passive_syn(&mut p, true);
        assert_eq!(p.stack.stats().syn_cookies_sent, 1);
        assert_eq!(p.stack.connection_count(), 0);
        assert_eq!(has(&sa, ECE), ts, "ts={ts}");
        if let Some((tsval, _)) = sa.tcp.options.timestamps {
            assert_ne!(tsval & 1 << 5, 0, "the ECN bit of the TSval");
        }
        accept(&mut p);
        assert_eq!(p.stack.stats().syn_cookies_accepted, 1);
        assert_eq!(data_is_ect(&mut p, 3000), ts, "ts={ts}");
    }
    // A plain SYN's cookie: no ECN.
    let mut p = Peer::with(cookie_cfg());
    p.ts = Some(5555);
    let sa = passive_syn(&mut p, false);
    assert!(!has(&sa, ECE));
    accept(&mut p);
    assert!(!data_is_ect(&mut p, 3000));
}
