//! SYN cookies (RFC 4987 §3.6) and the bounded queues of a listener: a SYN
//! past the SYN queue gets a cookie and no TCB, the ACK that returns a
//! valid cookie opens an ordinary connection, and nothing else does.

mod common;

use common::*;
use synack_core::{Config, Event, State};
use synack_wire::{parse_packet, TcpRepr};

/// The headers of what the stack sent to ports other than the fixture
/// peer's (which [`Peer::transmitted`] checks for).
fn drain(p: &mut Peer) -> Vec<TcpRepr> {
    std::iter::from_fn(|| p.stack.poll_transmit())
        .map(|pkt| parse_packet(&pkt).expect("well-formed").tcp)
        .collect()
}

/// Every SYN gets a cookie: a SYN queue of zero.
fn cookie_cfg() -> Config {
    Config {
        max_syn_backlog: 0,
        ..Config::default()
    }
}

/// The peer's SYN offering MSS 1460 and, with `ts`, timestamps, window
/// scale 7 and SACK-Permitted; returns the SYN-ACK.
fn cookie_syn(p: &mut Peer, ts: bool) -> Seg {
    p.ts = ts.then_some(424_242);
    p.snd_nxt = PEER_ISS;
    let mut syn = p.repr(SYN, PEER_ISS, 0);
    syn.options.mss = Some(1460);
    syn.options.window_scale = Some(7);
    syn.options.sack_permitted = true;
    p.inject(&syn, &[]);
    p.snd_nxt = PEER_ISS.wrapping_add(1);
    p.expect_segment(SYN_ACK)
}

/// A pseudo-random sequence (xorshift64*), seeded: the test is the same
/// on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
}

/// RFC 4987 §3.6: with the SYN queue full the SYN-ACK carries a cookie and
/// no TCB is made; the options the SYN offered are carried by the TSval.
#[test]
fn rfc4987_3_6_a_full_syn_queue_answers_with_a_cookie() {
    let mut p = Peer::with(cookie_cfg()).listening();
    let sa = cookie_syn(&mut p, true);
    assert_eq!(sa.tcp.ack, PEER_ISS.wrapping_add(1));
    assert_eq!(p.stack.connection_count(), 0, "no state kept");
    assert_eq!(p.stack.stats().syn_cookies_sent, 1);
    let o = &sa.tcp.options;
    assert_eq!(o.mss, Some(1460));
    assert!(o.window_scale.is_some() && o.sack_permitted, "{o:?}");
    let (tsval, tsecr) = o.timestamps.expect("timestamps answered");
    assert_eq!(tsecr, 424_242);
    assert_eq!(tsval & 0x1F, 7 | 1 << 4, "wscale 7 and SACK in the TSval");
}

/// RFC 4987 §3.6: the ACK returning the cookie opens a connection that
/// works as any other: the window scale, SACK and timestamps the SYN
/// offered are in force (our windows scaled, SACK blocks for a hole,
/// TSopt on every segment), and data flows both ways.
#[test]
fn rfc4987_3_6_a_cookie_connection_keeps_wscale_sack_and_timestamps() {
    let mut p = Peer::with(cookie_cfg()).listening();
    cookie_syn(&mut p, true);
    p.now += RTT;
    p.data(b"hello");
    let lid = p.lid.unwrap();
    assert!(p.events().contains(&Event::Incoming(lid)));
    p.id = Some(p.stack.accept(lid).expect("accept"));
    assert_eq!(p.state(), State::Established);
    assert_eq!(p.stack.stats().syn_cookies_accepted, 1);
    assert_eq!(p.read_all().unwrap(), b"hello", "data on the third ACK");
    // A hole: the ACK carries a SACK block, a scaled window and TSopt.
    let ooo = p.snd_nxt.wrapping_add(100);
    p.send(PSH_ACK, ooo, p.rcv_nxt, &[7u8; 50]);
    let segs = p.run_until(p.now + secs(1));
    let ack = segs.last().expect("an ACK for the hole");
    assert_eq!(ack.tcp.options.sack_count, 1, "{ack:#?}");
    assert_eq!(ack.tcp.options.sack()[0].left, ooo);
    assert!(ack.tcp.options.timestamps.is_some());
    let recv_buffer = Config::default().recv_buffer;
    assert!(
        u32::from(ack.tcp.window) < (recv_buffer as u32) >> 1,
        "window field scaled: {}",
        ack.tcp.window
    );
    // And back: the stack's data reaches the peer.
    p.stack.send(p.now, p.id(), b"world").unwrap();
    p.run_until(p.now + ms(1));
    assert_eq!(p.received, b"world");
}

/// Without timestamps there is nowhere to keep window scale and SACK: the
/// cookie SYN-ACK offers neither, and the connection runs without them,
/// with the MSS the cookie kept.
#[test]
fn rfc4987_3_6_without_timestamps_a_cookie_keeps_only_the_mss() {
    let mut p = Peer::with(cookie_cfg()).listening();
    let sa = cookie_syn(&mut p, false);
    let o = &sa.tcp.options;
    assert_eq!((o.window_scale, o.sack_permitted), (None, false), "{o:?}");
    assert_eq!(o.timestamps, None);
    p.offers.peer_sack = false;
    p.now += RTT;
    p.ack();
    let lid = p.lid.unwrap();
    p.id = Some(p.stack.accept(lid).expect("accept"));
    p.window = 65_535;
    p.ack();
    p.stack.send(p.now, p.id(), &bytes(4000)).unwrap();
    let segs = p.run_until(p.now + ms(1));
    assert!(segs.iter().all(|s| s.payload.len() <= 1460));
    assert_eq!(segs[0].payload.len(), 1460, "the MSS from the cookie");
    assert_eq!(segs[0].tcp.options.timestamps, None);
}

/// IPv6: the cookie covers the v6 tuple and the connection opens the same.
#[test]
fn rfc4987_3_6_cookies_over_ipv6() {
    let mut p = Peer::new_v6();
    p.stack = synack_core::Stack::new(cookie_cfg(), SECRET);
    p.stack.add_address(p.local.ip());
    let mut p = p.listening();
    let sa = cookie_syn(&mut p, true);
    assert!(sa.tcp.options.sack_permitted);
    assert_eq!(p.stack.connection_count(), 0);
    p.now += RTT;
    p.data(b"six");
    let lid = p.lid.unwrap();
    p.id = Some(p.stack.accept(lid).expect("accept"));
    assert_eq!(p.read_all().unwrap(), b"six");
}

/// A forged ACK opens nothing unless it guesses the MAC: 100,000 random
/// ACKs on the right 4-tuple while cookies are in use are refused (each
/// dropped and reset), and the right one then opens the connection.
#[test]
fn rfc4987_3_6_forged_acks_open_nothing() {
    let mut p = Peer::with(cookie_cfg()).listening();
    cookie_syn(&mut p, false);
    let mut rng = Rng(0x5eed_c00c1e);
    for _ in 0..100_000 {
        let mut repr: TcpRepr = p.repr(ACK, rng.next(), rng.next());
        repr.window = rng.next() as u16;
        p.inject(&repr, &[]);
        while p.stack.poll_transmit().is_some() {}
    }
    assert_eq!(p.stack.connection_count(), 0);
    assert_eq!(p.drops("invalid SYN cookie"), 100_000);
    assert!(p.events().is_empty());
    p.now += RTT;
    p.ack();
    assert_eq!(p.stack.connection_count(), 1, "the real cookie opens");
}

/// A cookie is good for one to two ticks of its 64 s clock, then refused;
/// and it is good only for the 4-tuple and the SYN it was made for.
#[test]
fn rfc4987_3_6_expired_or_foreign_cookies_are_refused() {
    let mut p = Peer::with(cookie_cfg()).listening();
    cookie_syn(&mut p, false);
    let (seq, cookie_ack) = (p.snd_nxt, p.rcv_nxt);
    // The same ACK from another port: not its cookie.
    let mut other = p.repr(ACK, seq, cookie_ack);
    other.src_port = 40001;
    p.inject(&other, &[]);
    // Another SYN sequence number: not its cookie either.
    p.send(ACK, seq.wrapping_add(1), cookie_ack, &[]);
    assert_eq!(p.drops("invalid SYN cookie"), 2);
    assert!(drain(&mut p).iter().all(|r| r.flags == RST), "reset");
    // 129 s on, with cookies still being sent (to other peers), too old.
    p.now += secs(129);
    let mut fresh = p.repr(SYN, 5, 0);
    fresh.src_port = 40002;
    p.inject(&fresh, &[]);
    assert_eq!(drain(&mut p).len(), 1);
    p.send(ACK, seq, cookie_ack, &[]);
    assert_eq!(p.drops("invalid SYN cookie"), 3, "expired");
    assert_eq!(p.stack.connection_count(), 0);
}

/// A listener that never sent a cookie does not look for one: an ACK to
/// it is answered by a reset as RFC 9293 §3.10.7.2 says.
#[test]
fn rfc4987_3_6_no_cookies_checked_when_none_were_sent() {
    let mut p = Peer::new().listening();
    p.send(ACK, 1, 2, &[]);
    assert_eq!(p.drops("ACK to a listener"), 1);
    assert_eq!(p.drops("invalid SYN cookie"), 0);
    p.expect_segment(RST);
}

/// The accept queue has `listen`'s backlog as its bound (as on Linux):
/// with it full a SYN is dropped, and a returning cookie too, while the
/// connections already there are untouched.
#[test]
fn the_accept_queue_bound_is_the_backlog() {
    let mut p = Peer::new().listening_backlog(1).established();
    assert_eq!(p.state(), State::Established);
    // Accepted: the queue is empty again, a second connection queues up.
    let mut q = p.repr(SYN, 9, 0);
    q.src_port = 40001;
    p.inject(&q, &[]);
    let sa = drain(&mut p);
    assert_eq!(sa.len(), 1);
    let mut a = p.repr(ACK, 10, sa[0].seq.wrapping_add(1));
    a.src_port = 40001;
    p.inject(&a, &[]);
    let mut r = p.repr(SYN, 99, 0);
    r.src_port = 40002;
    p.inject(&r, &[]);
    assert!(p.stack.poll_transmit().is_none(), "no SYN-ACK");
    assert_eq!(p.drops("accept queue full"), 1);
    assert_eq!(p.state(), State::Established);
}

/// The memory budget: a passive open that would pass it gets a cookie,
/// whose ACK is refused while the budget is spent; the connection already
/// open is not disturbed.
#[test]
fn the_memory_budget_refuses_new_passive_opens_only() {
    let cfg = Config::default();
    let probe = Peer::with(cfg.clone()).listening().established();
    let one = probe.stack.memory_committed();
    assert!(one > cfg.send_buffer + cfg.recv_buffer);
    let mut p = Peer::with(Config {
        memory_budget: one + one / 2,
        ..cfg
    })
    .listening()
    .established();
    let mut syn = p.repr(SYN, 9, 0);
    syn.src_port = 40001;
    p.inject(&syn, &[]);
    let sa = drain(&mut p);
    assert_eq!(
        p.stack.stats().syn_cookies_sent,
        1,
        "past the budget: a cookie"
    );
    let mut a = p.repr(ACK, 10, sa[0].seq.wrapping_add(1));
    a.src_port = 40001;
    p.inject(&a, &[]);
    assert_eq!(p.drops("memory budget"), 1);
    assert_eq!(p.stack.connection_count(), 1);
    p.data(b"still here");
    assert_eq!(p.read_all().unwrap(), b"still here");
}
