//! The segment size (RFC 9293 §3.7.1): the peer's MSS option honoured when
//! it is below ours (MUST-14), the IPv6 default of 1220 without one
//! (MUST-15), and the effective send MSS limited by our own MTU and the
//! timestamp option (MUST-16). One `Stack` driven by hand.

mod common;

use common::*;
use synack_core::Config;
use synack_wire::{parse_packet, TcpOptions};

/// A passive open where the peer's SYN carries `options`.
fn established_with(mut p: Peer, options: TcpOptions) -> Peer {
    p = p.listening();
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options = options;
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS + 1;
    p.expect_segment(SYN_ACK);
    p.established()
}

/// The stack sends `n` bytes and the peer acknowledges every flight;
/// returns the payload length and the IP packet length of every data
/// segment sent.
fn segment_sizes(p: &mut Peer, n: usize) -> Vec<(usize, usize)> {
    let data = bytes(n);
    p.stack.send(p.now, p.id(), &data).unwrap();
    let mut sizes = Vec::new();
    for _ in 0..200 {
        let mut any = false;
        while let Some(pkt) = p.stack.poll_transmit() {
            let s = parse_packet(&pkt).expect("well-formed");
            let seg = Seg {
                at: p.now,
                src: s.src,
                dst: s.dst,
                tos: s.tos,
                tcp: s.tcp,
                payload: s.payload.to_vec(),
            };
            p.check_options(&seg);
            p.absorb(&seg);
            if !seg.payload.is_empty() {
                sizes.push((seg.payload.len(), pkt.len()));
            }
            any = true;
        }
        if p.received.len() >= n {
            break;
        }
        if !any {
            p.advance(ms(250));
        }
        p.now += RTT;
        p.ack();
    }
    assert_eq!(p.received, data, "all delivered");
    sizes
}

/// Every segment but the last carries exactly `mss` bytes, none more.
#[track_caller]
fn assert_full_sized(sizes: &[(usize, usize)], mss: usize, what: &str) {
    let (last, full) = sizes.split_last().expect("data sent");
    assert!(full.iter().all(|&(n, _)| n == mss), "{what}: {sizes:?}");
    assert!(last.0 <= mss, "{what}: {sizes:?}");
}

/// MUST-14 (RFC 9293 §3.7.1): a peer's MSS of 600, below our 1460 (or
/// 1440 over IPv6), bounds every segment we send: full segments carry
/// exactly 600 bytes.
#[test]
fn must_14_peer_mss_below_ours_is_honoured() {
    for mk in [Peer::new as fn() -> Peer, Peer::new_v6] {
        let mss = TcpOptions {
            mss: Some(600),
            ..TcpOptions::default()
        };
        let mut p = established_with(mk(), mss);
        let sizes = segment_sizes(&mut p, 10_000);
        assert_full_sized(&sizes, 600, "MSS 600");
    }
}

/// MUST-14 on an active open: the MSS of the SYN-ACK counts.
#[test]
fn must_14_peer_mss_in_the_syn_ack_is_honoured() {
    let mut p = Peer::new().syn_sent();
    p.now += RTT;
    p.syn_ack_with(TcpOptions {
        mss: Some(700),
        ..TcpOptions::default()
    });
    let _ = p.transmitted();
    let sizes = segment_sizes(&mut p, 10_000);
    assert_full_sized(&sizes, 700, "MSS 700");
}

/// MUST-15 (RFC 9293 §3.7.1): without an MSS option an IPv6 peer is
/// assumed to take 1220 bytes (1280 - 60); IPv4's 536 is in
/// `transitions.rs: must_15_default_mss_536_without_option`.
#[test]
fn must_15_ipv6_default_mss_is_1220() {
    let mut p = established_with(Peer::new_v6(), TcpOptions::default());
    let sizes = segment_sizes(&mut p, 10_000);
    assert_full_sized(&sizes, 1220, "IPv6 without MSS");
}

/// MUST-16 (RFC 9293 §3.7.1): Eff.snd.MSS = min(SendMSS + 20, MMS_S) -
/// TCPhdrsize - IPoptionsize. With our MTU at 1000 and the peer offering
/// 1460, our own MTU is the limit: 1000 - 40 = 960 bytes of data over IPv4
/// (940 over IPv6), 12 fewer with timestamps; no packet exceeds the MTU.
#[test]
fn must_16_our_mtu_limits_the_segment() {
    let cfg = Config {
        mtu: 1000,
        ..Config::default()
    };
    for (v6, ts, mss) in [
        (false, false, 960),
        (false, true, 948),
        (true, false, 940),
        (true, true, 928),
    ] {
        let mut p = if v6 { Peer::new_v6() } else { Peer::new() };
        p.stack = synack_core::Stack::new(cfg.clone(), SECRET);
        p.stack.add_address(p.local.ip());
        if ts {
            p.ts = Some(5000);
        }
        let syn = TcpOptions {
            mss: Some(1460),
            timestamps: ts.then_some((5000, 0)),
            ..TcpOptions::default()
        };
        let mut p = established_with(p, syn);
        let sizes = segment_sizes(&mut p, 10_000);
        let what = format!("v6={v6} ts={ts}");
        assert_full_sized(&sizes, mss, &what);
        assert!(
            sizes.iter().all(|&(_, pkt)| pkt <= 1000),
            "{what}: {sizes:?}"
        );
        assert_eq!(sizes[0].1, 1000, "{what}: a full segment fills the MTU");
    }
}
