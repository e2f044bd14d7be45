//! Adversarial tests (issue 12, item 3): a stranger who knows a
//! connection's 4-tuple, a receiver that lies in its ACKs, a peer that
//! fragments its data into one-byte islands, floods of ACKs and of ICMP
//! errors, and peers that stop reading. Each runs on a small seeded network
//! of two real stacks (a server and an honest client) plus an attacker who
//! writes raw packets, and checks both that the attacked connection keeps
//! to its budget and that an honest connection beside it completes.
//!
//! Each test prints its figures (`cargo test --test adversarial --
//! --nocapture`).

mod common;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{ms, secs, Peer, ACK, PSH_ACK};
use synack_core::{Config, ConnId, Instant, ListenerId, Stack, State};
use synack_wire::{
    emit_icmp_error, emit_packet, icmp_error_len, packet_len, parse_packet, IcmpKind, TcpFlags,
    TcpOptions, TcpRepr,
};

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
/// The address of the attacker's own (misbehaving) connections.
const EVIL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
const PORT: u16 = 80;

/// SplitMix64: the attacker's dice, seeded per test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}

/// One honest transfer from the client to the server's echo-less sink.
struct Transfer {
    port: u16,
    id: ConnId,
    data: Vec<u8>,
    sent: usize,
    closed: bool,
    server: Option<ConnId>,
    got: Vec<u8>,
    eof: bool,
}

/// A server stack, an honest client stack and what is in flight between
/// them (a fixed one-way delay), with the packets the server sends to the
/// attacker's address set aside for the test to read.
struct Net {
    server: Stack,
    client: Stack,
    lid: ListenerId,
    now: Instant,
    delay: Duration,
    flight: VecDeque<(Instant, bool, Vec<u8>)>,
    to_evil: Vec<Vec<u8>>,
    transfers: Vec<Transfer>,
    /// Packets the server sent to the client (challenge ACKs among them).
    server_to_client: u64,
    /// Connections the server accepted that are no honest transfer's.
    accepted: VecDeque<ConnId>,
}

impl Net {
    fn new(server_cfg: Config) -> Net {
        let mut server = Stack::new(server_cfg, [1; 16]);
        server.add_address(SERVER);
        let lid = server
            .listen(SocketAddr::new(SERVER, PORT), 64)
            .expect("listen");
        let mut client = Stack::new(Config::default(), [2; 16]);
        client.add_address(CLIENT);
        Net {
            server,
            client,
            lid,
            now: Instant::from_secs(10),
            delay: ms(5),
            flight: VecDeque::new(),
            to_evil: Vec::new(),
            transfers: Vec::new(),
            server_to_client: 0,
            accepted: VecDeque::new(),
        }
    }

    /// Starts an honest transfer of `len` patterned bytes from `port`.
    fn transfer(&mut self, port: u16, len: usize) -> usize {
        let id = self
            .client
            .connect(
                self.now,
                Some(SocketAddr::new(CLIENT, port)),
                SocketAddr::new(SERVER, PORT),
            )
            .expect("connect");
        let data = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        self.transfers.push(Transfer {
            port,
            id,
            data,
            sent: 0,
            closed: false,
            server: None,
            got: Vec::new(),
            eof: false,
        });
        self.transfers.len() - 1
    }

    /// Moves what both stacks sent onto the wire (or to the attacker).
    fn pump(&mut self) {
        while let Some(p) = self.server.poll_transmit() {
            let to_client = parse_packet(&p).is_ok_and(|s| s.dst == CLIENT);
            if to_client {
                self.server_to_client += 1;
                self.flight.push_back((self.now + self.delay, false, p));
            } else {
                self.to_evil.push(p);
            }
        }
        while let Some(p) = self.client.poll_transmit() {
            self.flight.push_back((self.now + self.delay, true, p));
        }
        while self.server.poll_event().is_some() {}
        while self.client.poll_event().is_some() {}
    }

    /// The applications: the client writes and then closes, the server
    /// accepts, reads everything and closes at end of stream.
    fn apps(&mut self) {
        while let Ok(id) = self.server.accept(self.lid) {
            let port = self.server.tuple(id).unwrap().remote.port();
            match self.transfers.iter_mut().find(|t| t.port == port) {
                Some(t) => t.server = Some(id),
                None => self.accepted.push_back(id),
            }
        }
        let now = self.now;
        for t in &mut self.transfers {
            while t.sent < t.data.len() {
                match self.client.send(now, t.id, &t.data[t.sent..]) {
                    Ok(n) if n > 0 => t.sent += n,
                    _ => break,
                }
            }
            // Not in SYN-SENT, where CLOSE deletes the TCB with its data
            // (RFC 9293 §3.10.4).
            let open = self.client.state(t.id).is_ok_and(|s| s != State::SynSent);
            if t.sent == t.data.len() && !t.closed && open {
                t.closed = self.client.close(now, t.id).is_ok();
            }
            let Some(sid) = t.server else { continue };
            let mut buf = [0u8; 8192];
            while !t.eof {
                match self.server.recv(now, sid, &mut buf) {
                    Ok(0) => {
                        t.eof = true;
                        let _ = self.server.close(now, sid);
                    }
                    Ok(n) => t.got.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
        }
    }

    /// Runs the network up to `t`: deliveries, timers, applications.
    fn run_until(&mut self, t: Instant) {
        loop {
            self.apps();
            self.pump();
            let next = [
                self.flight.front().map(|f| f.0),
                self.server.poll_timeout(),
                self.client.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&n| n <= t) else {
                break;
            };
            self.now = self.now.max(next);
            while self.flight.front().is_some_and(|f| f.0 <= self.now) {
                let (_, to_server, p) = self.flight.pop_front().unwrap();
                if to_server {
                    self.server.handle_packet(self.now, &p);
                } else {
                    self.client.handle_packet(self.now, &p);
                }
            }
            self.server.handle_timeout(self.now);
            self.client.handle_timeout(self.now);
        }
        self.now = self.now.max(t);
    }

    fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// Whether transfer `k` arrived whole and was closed.
    fn complete(&self, k: usize) -> bool {
        let t = &self.transfers[k];
        t.eof && t.got == t.data
    }

    /// The server's drop count for `reason`.
    fn drops(&self, reason: &str) -> u64 {
        self.server.stats().drops.get(reason).copied().unwrap_or(0)
    }

    /// Injects a segment into the server from `src`.
    fn inject(&mut self, src: SocketAddr, repr: &TcpRepr, payload: &[u8]) {
        let p = tcp_packet(src.ip(), SERVER, repr, payload);
        self.server.handle_packet(self.now, &p);
    }
}

/// An IP packet carrying `repr` and `payload`.
fn tcp_packet(src: IpAddr, dst: IpAddr, repr: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; packet_len(src, repr, payload.len())];
    let n = emit_packet(&mut buf, src, dst, 64, 0, repr, payload).expect("emit");
    buf.truncate(n);
    buf
}

/// A header from `src_port` to the server's port.
fn header(src_port: u16, flags: TcpFlags, seq: u32, ack: u32) -> TcpRepr {
    TcpRepr {
        src_port,
        dst_port: PORT,
        seq,
        ack,
        flags,
        window: 65535,
        urgent: 0,
        options: TcpOptions::default(),
    }
}

/// RFC 5961: an attacker who knows the 4-tuple of a long transfer but not
/// its sequence numbers sprays RSTs, SYNs and data at random sequence and
/// acknowledgment numbers. The connection survives, the application reads
/// exactly the sender's bytes, and the challenge ACKs the spray provokes
/// stay within the per-second limit (§7).
#[test]
fn blind_injection_neither_resets_nor_corrupts_a_transfer() {
    let mut rng = Rng(0x5961);
    let mut net = Net::new(Config::default());
    let victim = net.transfer(40000, 16 << 20);
    let honest = net.transfer(40001, 256 << 10);
    let src = SocketAddr::new(CLIENT, 40000);
    let (mut attempts, mut rsts, mut syns, mut data) = (0u64, 0u64, 0u64, 0u64);
    let start = net.now;
    let deadline = net.now + secs(60);
    while !(net.complete(victim) && net.complete(honest)) && net.now < deadline {
        net.advance(ms(1));
        // Only while the victim is still up: the attack is on a live
        // connection, not on whatever reuses its tuple later.
        let got = net.transfers[victim].got.len();
        if net.transfers[victim].eof || got < 64 << 10 {
            continue;
        }
        for _ in 0..100 {
            let (seq, ack) = (rng.u32(), rng.u32());
            attempts += 1;
            match rng.next() % 3 {
                0 => {
                    rsts += 1;
                    net.inject(src, &header(40000, TcpFlags::RST, seq, 0), &[]);
                }
                1 => {
                    syns += 1;
                    net.inject(src, &header(40000, TcpFlags::SYN, seq, 0), &[]);
                }
                _ => {
                    data += 1;
                    net.inject(src, &header(40000, PSH_ACK, seq, ack), &[0xEE; 100]);
                }
            }
        }
    }
    let elapsed = (net.now - start).as_secs_f64();
    let challenges = net.server.stats().challenge_acks;
    let limited = net.drops("challenge ACK rate limited");
    println!(
        "blind injection (seed 0x5961): {attempts} attempts ({rsts} RST, {syns} SYN, \
         {data} data) over {elapsed:.2} s; {challenges} challenge ACKs sent, {limited} \
         rate-limited; victim {} bytes, honest {} bytes, both intact",
        net.transfers[victim].got.len(),
        net.transfers[honest].got.len()
    );
    assert!(
        net.complete(victim),
        "the attacked transfer did not finish intact"
    );
    assert!(net.complete(honest), "the honest transfer did not finish");
    assert!(attempts > 100_000, "too few attempts: {attempts}");
    // RFC 5961 §7: at most `challenge_ack_limit` per connection per second
    // (one more window may have started at either end).
    let limit = u64::from(Config::default().challenge_ack_limit);
    assert!(
        challenges <= limit * (elapsed.ceil() as u64 + 1),
        "{challenges} challenge ACKs in {elapsed:.2} s"
    );
    assert!(
        challenges > 0 && limited > 0,
        "the spray provoked no challenge"
    );
}

/// Data the stack sent the peer: (offset from the first byte, length).
fn data_offsets(p: &Peer, segs: &[common::Seg]) -> Vec<(u32, usize)> {
    segs.iter()
        .filter(|s| !s.payload.is_empty())
        .map(|s| {
            (
                s.tcp.seq.wrapping_sub(p.stack_iss.wrapping_add(1)),
                s.payload.len(),
            )
        })
        .collect()
}

/// How the misbehaving receiver acknowledges a round of data.
#[derive(Clone, Copy, Debug)]
enum Acking {
    /// One cumulative ACK per segment (as a receiver without delayed
    /// ACKs sends: the most an honest receiver can make the sender grow).
    Honest,
    /// One cumulative ACK per two segments, as RFC 5681 §4.2 asks.
    Delayed,
    /// Savage et al.'s ACK division: each segment acknowledged in 100-byte
    /// steps.
    Division,
    /// DupACK spoofing: the honest ACKs, then 30 duplicates of the last.
    DupSpoof,
    /// Optimistic ACKs: the honest ACKs, each followed by one for data not
    /// yet sent (ten segments past SND.NXT).
    Optimistic,
}

/// Runs `rounds` round trips of a bulk send from the stack to a receiver
/// acking as `how`; returns the bytes sent per round, after checking that
/// every byte sent is the application's, at its place.
fn bulk_rounds(how: Acking, rounds: usize) -> Vec<usize> {
    let mut p = Peer::with(Config {
        send_buffer: 4 << 20,
        ..Config::default()
    })
    .established();
    let data: Vec<u8> = (0..4 << 20).map(|i: usize| (i % 253) as u8).collect();
    let n = p.stack.send(p.now, p.id(), &data).unwrap();
    let mut per_round = Vec::new();
    let mut segs = p.transmitted();
    for _ in 0..rounds {
        per_round.push(segs.iter().map(|s| s.payload.len()).sum());
        // Nothing but the application's bytes, each at its place.
        for (off, len) in data_offsets(&p, &segs) {
            let off = off as usize;
            assert!(off + len <= n, "sent past the application's data");
            let seg = segs
                .iter()
                .find(|s| s.tcp.seq.wrapping_sub(p.stack_iss.wrapping_add(1)) as usize == off);
            assert_eq!(seg.unwrap().payload, &data[off..off + len], "garbage sent");
        }
        p.advance(ms(50));
        let ends: Vec<u32> = segs
            .iter()
            .filter(|s| !s.payload.is_empty())
            .map(|s| s.tcp.seq.wrapping_add(s.payload.len() as u32))
            .collect();
        let snd_nxt = ends.last().copied().unwrap_or(p.rcv_nxt);
        for (k, &end) in ends.iter().enumerate() {
            match how {
                Acking::Honest => p.send(ACK, p.snd_nxt, end, &[]),
                Acking::Delayed | Acking::DupSpoof | Acking::Optimistic => {
                    if k % 2 == 1 || k + 1 == ends.len() {
                        p.send(ACK, p.snd_nxt, end, &[]);
                    }
                    if let Acking::Optimistic = how {
                        p.send(ACK, p.snd_nxt, snd_nxt.wrapping_add(14_600), &[]);
                    }
                }
                Acking::Division => {
                    let start = end.wrapping_sub(1460);
                    for step in 1..=14 {
                        p.send(ACK, p.snd_nxt, start.wrapping_add(step * 100), &[]);
                    }
                    p.send(ACK, p.snd_nxt, end, &[]);
                }
            }
        }
        if let (Acking::DupSpoof, Some(&end)) = (how, ends.last()) {
            for _ in 0..30 {
                p.send(ACK, p.snd_nxt, end, &[]);
            }
        }
        segs = p.transmitted();
    }
    per_round
}

/// Bytes sent per round for `how`, against the honest receiver's total:
/// prints both and returns (rogue total, honest total).
fn against_honest(how: Acking, rounds: usize) -> (usize, usize) {
    let honest: usize = bulk_rounds(Acking::Honest, rounds).iter().sum();
    let rogue = bulk_rounds(how, rounds);
    let total: usize = rogue.iter().sum();
    println!(
        "misbehaving receiver: {how:?}, bytes per round {rogue:?}: {:.2}x the total \
         for a receiver that ACKs every segment ({honest})",
        total as f64 / honest as f64
    );
    (total, honest)
}

/// RFC 5961 §5 and the misbehaving receivers of Savage et al. (1999): ACK
/// division and optimistic ACKs for data not yet sent make the sender
/// neither send faster than for an honest receiver acknowledging every
/// segment (RFC 5681 §3.1's byte counting bounds the growth by the bytes
/// acknowledged; ACKs beyond SND.NXT are dropped) nor send anything but
/// the application's bytes in order. (Against a receiver that delays its
/// ACKs, ACK division gains what acknowledging every segment gains.)
#[test]
fn a_misbehaving_receiver_does_not_speed_the_sender_up() {
    for how in [Acking::Delayed, Acking::Division, Acking::Optimistic] {
        let (total, honest) = against_honest(how, 8);
        assert!(total <= honest, "{how:?}: {total} bytes, honest {honest}");
    }
}

/// Savage et al.'s DupACK spoofing: thirty duplicates of the last ACK each
/// round. Without SACK, each duplicate past the third inflates the window
/// by one segment during fast recovery (RFC 5681 §3.2 step 4), so the
/// spoofer gets a burst of about 5x the honest round (measured: 48,180 bytes
/// in round 2 against 8,760; 1.20x over 8 rounds). Bounding this belongs to
/// loss recovery (conn/recovery.rs: count at most the segments in flight
/// as duplicates, or inflate only for SACKed bytes as RFC 6675 does),
/// which another change is rewriting: left for it.
#[test]
fn dupack_spoofing_does_not_speed_the_sender_up() {
    let (total, honest) = against_honest(Acking::DupSpoof, 8);
    assert!(total <= honest, "DupSpoof: {total} bytes, honest {honest}");
}

/// A reassembly attacker: thousands of one-byte segments, each one byte
/// past a hole, into a connection's window. The out-of-order ranges stay
/// within their limit (the rest are dropped and counted), memory within the
/// receive buffer, and in-order data still flows on this connection and on
/// an honest one beside it.
#[test]
fn one_byte_islands_stay_within_the_reassembly_budget() {
    let mut net = Net::new(Config::default());
    let honest = net.transfer(40001, 512 << 10);
    // The attacker's own connection, hand-driven from EVIL:5000.
    let evil = SocketAddr::new(EVIL, 5000);
    let mut syn = header(5000, TcpFlags::SYN, 7000, 0);
    syn.options.mss = Some(1460);
    syn.options.sack_permitted = true;
    net.inject(evil, &syn, &[]);
    net.pump();
    let synack = parse_packet(&net.to_evil.pop().expect("SYN-ACK"))
        .unwrap()
        .tcp;
    let ack = synack.seq.wrapping_add(1);
    let mut nxt = 7001u32;
    net.inject(evil, &header(5000, ACK, nxt, ack), &[]);
    net.run_until(net.now);
    let sid = net.accepted.pop_front().expect("the attacker's connection");
    let window = usize::from(synack.window);
    let mut islands = 0u64;
    for round in 0..20u32 {
        // Islands at every other byte of the window, past a hole at RCV.NXT.
        for k in 0..(window as u32 / 2).min(2000) {
            let seq = nxt.wrapping_add(2 + 2 * k + (round & 1));
            net.inject(evil, &header(5000, PSH_ACK, seq, ack), b"x");
            islands += 1;
        }
        // In-order data still goes through.
        net.inject(evil, &header(5000, PSH_ACK, nxt, ack), b"in order");
        nxt = nxt.wrapping_add(8);
        let mut buf = [0u8; 64];
        let n = net.server.recv(net.now, sid, &mut buf).expect("readable");
        assert!(
            n >= 8,
            "round {round}: the in-order bytes were not readable"
        );
        // Whatever the islands joined with became readable too; read it all.
        while net.server.recv(net.now, sid, &mut buf).is_ok_and(|n| n > 0) {}
        nxt = nxt.wrapping_add((n - 8) as u32);
        net.advance(ms(20));
        net.to_evil.clear();
    }
    let refused = net.drops("out-of-order range limit");
    println!(
        "reassembly: {islands} one-byte islands in 20 rounds, {refused} dropped at the \
         range limit; honest transfer {}",
        if net.complete(honest) {
            "complete"
        } else {
            "pending"
        }
    );
    assert!(refused > islands / 2, "only {refused} of {islands} refused");
    net.advance(secs(30));
    assert!(net.complete(honest), "the honest transfer did not finish");
    assert_eq!(net.server.state(sid).ok(), Some(State::Established));
}

/// An ACK storm: a flood of duplicate and old ACKs into an established
/// connection. No ACK is answered by more than one segment, out-of-window
/// ones are answered at most at the challenge-ACK rate, and an honest
/// transfer beside it completes.
#[test]
fn an_ack_storm_costs_at_most_one_segment_per_ack() {
    let mut rng = Rng(0xac5);
    let mut net = Net::new(Config::default());
    let victim = net.transfer(40000, 16 << 20);
    let honest = net.transfer(40001, 1 << 20);
    net.advance(ms(100));
    let src = SocketAddr::new(CLIENT, 40000);
    let sid = net.transfers[victim].server.expect("accepted");
    let tuple = net.server.tuple(sid).unwrap();
    assert_eq!(tuple.remote, src);
    let (mut storm, mut answers, mut worst) = (0u64, 0u64, 0usize);
    for _ in 0..20_000 {
        net.pump();
        let repr = header(40000, ACK, rng.u32(), rng.u32());
        storm += 1;
        net.inject(src, &repr, &[]);
        let out = std::iter::from_fn(|| net.server.poll_transmit()).count();
        worst = worst.max(out);
        answers += out as u64;
        if storm % 1000 == 0 {
            net.advance(ms(100));
        }
    }
    net.advance(secs(20));
    let challenges = net.server.stats().challenge_acks;
    println!(
        "ACK storm (seed 0xac5): {storm} ACKs, {answers} answers (at most {worst} each), \
         {challenges} challenge ACKs; honest transfer complete: {}",
        net.complete(honest)
    );
    assert!(worst <= 1, "an ACK was answered by {worst} segments");
    assert!(net.complete(victim) && net.complete(honest));
}

/// The ACKs that answer an ACK storm's unacceptable segments (sequence
/// number outside the window, RFC 9293 §3.10.7.4 first check; ACK of
/// unsent data or too old, RFC 5961 §5.2) are not rate-limited: measured
/// 10,250 answers to 20,000 blind ACKs over 2 s, one per unacceptable segment
/// (about half of them: the others fall in the window and are ignored), while
/// the RFC 5961 §7 limit holds only for challenge ACKs. Linux throttles
/// these too (`tcp_invalid_ratelimit`, 500 ms per connection). The fix
/// belongs in the ACK check (conn/input.rs `check_ack_range`, being
/// reworked by another change) and the sequence check, sending these ACKs
/// through `challenge_ack`'s allowance.
#[test]
fn an_ack_storm_is_answered_at_most_at_the_challenge_ack_rate() {
    let mut rng = Rng(0xac5);
    let mut net = Net::new(Config::default());
    let victim = net.transfer(40000, 64 << 20);
    net.advance(ms(100));
    let src = SocketAddr::new(CLIENT, 40000);
    let start = net.now;
    let mut answers = 0u64;
    // As a driver sees them: ten a millisecond, each answered before the
    // next arrives; only while the connection is open (a closed one
    // answers each with an RST, RFC 9293 §3.10.7.1).
    for k in 0..20_000u32 {
        assert!(
            !net.transfers[victim].eof,
            "the transfer ended after {k} ACKs: the storm must hit a live connection"
        );
        // A timestamp an attacker can guess past PAWS half the time (any
        // TSval ahead of TS.Recent within 2^31), so that the segments
        // reach the sequence check.
        let mut repr = header(40000, ACK, rng.u32(), rng.u32());
        repr.options.timestamps = Some((rng.u32(), 0));
        net.inject(src, &repr, &[]);
        answers += std::iter::from_fn(|| net.server.poll_transmit()).count() as u64;
        if k % 10 == 9 {
            net.advance(ms(1));
        }
    }
    let elapsed = (net.now - start).as_secs_f64().ceil() as u64;
    let limit = u64::from(Config::default().challenge_ack_limit) * (elapsed + 1);
    assert!(answers <= limit, "{answers} answers in {elapsed} s");
}

/// Brings up a connection from the attacker's address and returns the
/// server's end and (the attacker's SND.NXT, its ACK).
fn evil_connection(net: &mut Net, port: u16, window: u16) -> (ConnId, u32, u32) {
    let evil = SocketAddr::new(EVIL, port);
    let mut syn = header(port, TcpFlags::SYN, 9000, 0);
    syn.options.mss = Some(1000);
    net.inject(evil, &syn, &[]);
    net.pump();
    let synack = parse_packet(&net.to_evil.pop().expect("SYN-ACK"))
        .unwrap()
        .tcp;
    let ack = synack.seq.wrapping_add(1);
    let mut repr = header(port, ACK, 9001, ack);
    repr.window = window;
    net.inject(evil, &repr, &[]);
    net.run_until(net.now);
    let sid = net.accepted.pop_front().expect("accepted");
    (sid, 9001, ack)
}

/// A receiver that advertises a zero window and never opens it, but
/// answers every probe: the persist timer probes with exponential backoff
/// up to its cap (the maximum RTO), and the connection stays (MUST-26, RFC 1122 §4.2.2.17:
/// as long as the probes are acknowledged), costing a probe every two
/// minutes; an
/// honest transfer beside it completes.
#[test]
fn a_window_that_never_opens_is_probed_with_backoff() {
    zero_window(false);
}

/// As above, with a user timeout of 120 s: Linux ends such a connection
/// once the probes have gone on for the user timeout (TCP_USER_TIMEOUT
/// covers zero-window probing), so that a receiver that never reads cannot
/// hold a connection and its send buffer forever. synack does not: the
/// persist timer's probes are answered, so R2 never counts them, and the
/// connection is still up after 600 s. The fix belongs in the persist timer
/// (conn/timers.rs, which another change owns): time the probing from the
/// first probe against the user timeout.
#[test]
fn a_window_that_never_opens_is_ended_by_the_user_timeout() {
    zero_window(true);
}

fn zero_window(user_timeout_ends_it: bool) {
    let mut net = Net::new(Config::default());
    let honest = net.transfer(40001, 256 << 10);
    let (sid, nxt, _) = evil_connection(&mut net, 5001, 0);
    net.server
        .set_user_timeout(sid, user_timeout_ends_it.then_some(secs(120)))
        .unwrap();
    net.server.send(net.now, sid, &[b'z'; 10_000]).unwrap();
    let start = net.now;
    let mut probes = Vec::new();
    while net.server.state(sid).is_ok_and(|s| s != State::Closed) && net.now < start + secs(600) {
        net.advance(ms(100));
        for p in net.to_evil.drain(..) {
            let seg = parse_packet(&p).unwrap();
            if seg.tcp.flags.rst() {
                continue;
            }
            probes.push(net.now);
            let mut repr = header(5001, ACK, nxt, seg.tcp.seq);
            repr.window = 0;
            let p = tcp_packet(EVIL, SERVER, &repr, &[]);
            net.server.handle_packet(net.now, &p);
        }
    }
    let gaps: Vec<u64> = probes
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    println!(
        "zero window: {} probes over {:.1} s, gaps (ms) {gaps:?}; error {:?}",
        probes.len(),
        (net.now - start).as_secs_f64(),
        net.server.error(sid)
    );
    if user_timeout_ends_it {
        assert!(
            net.now - start <= secs(180),
            "the user timeout did not end it"
        );
        return;
    }
    assert!(probes.len() >= 8, "too few probes: {}", probes.len());
    assert!(probes.len() <= 20, "too many probes: {}", probes.len());
    // Exponential backoff (RFC 9293 §3.8.6.1) up to a cap.
    assert!(
        gaps[..6].windows(2).all(|g| g[1] >= 2 * g[0] - 200),
        "{gaps:?}"
    );
    let cap = Config::default().max_rto.as_millis() as u64;
    assert!(gaps.iter().all(|&g| g <= cap + 200), "{gaps:?}");
    assert!(net.complete(honest));
}

/// A peer that never acknowledges our FIN (FIN-WAIT-1 ends after the
/// retries), and one that acknowledges it but never sends its own
/// (FIN-WAIT-2 ends after the FIN timeout); an honest transfer beside them
/// completes.
#[test]
fn peers_that_never_finish_closing_are_reaped() {
    let cfg = Config::default();
    let mut net = Net::new(cfg.clone());
    let honest = net.transfer(40001, 256 << 10);
    let (silent, _, _) = evil_connection(&mut net, 5002, 65535);
    let (half, nxt, _) = evil_connection(&mut net, 5003, 65535);
    let start = net.now;
    net.server.close(net.now, silent).unwrap();
    net.server.close(net.now, half).unwrap();
    let (mut fins, mut fin_wait_2_at, mut fin_wait_2_left) = (0u64, None, None);
    let mut silent_gone = None;
    while net.now < start + secs(3600) && net.server.connection_count() > 0 {
        net.advance(ms(100));
        for p in net.to_evil.drain(..) {
            let seg = parse_packet(&p).unwrap();
            if seg.tcp.dst_port == 5002 {
                fins += u64::from(seg.tcp.flags.fin());
            } else if seg.tcp.flags.fin() {
                let repr = header(5003, ACK, nxt, seg.tcp.seq.wrapping_add(1));
                let p = tcp_packet(EVIL, SERVER, &repr, &[]);
                net.server.handle_packet(net.now, &p);
                fin_wait_2_at.get_or_insert(net.now);
            }
        }
        if silent_gone.is_none() && !net.server.state(silent).is_ok_and(|s| s == State::FinWait1) {
            silent_gone = Some(net.now - start);
        }
        if fin_wait_2_left.is_none() && net.server.state(half).is_err() {
            fin_wait_2_left = Some(net.now);
        }
        if net.complete(honest) && silent_gone.is_some() && fin_wait_2_left.is_some() {
            break;
        }
    }
    let half_gone = fin_wait_2_left.map_or(net.now, |t| t) - start;
    println!(
        "unfinished closes: FIN-WAIT-1 peer got {fins} FINs, gone after {:?}; \
         FIN-WAIT-2 peer gone after {half_gone:?} (fin timeout {:?})",
        silent_gone, cfg.fin_timeout
    );
    assert!(fins >= 2 && fins <= u64::from(cfg.max_retries) + 1);
    assert!(silent_gone.is_some(), "FIN-WAIT-1 was never reaped");
    assert!(
        net.server.state(half).is_err(),
        "FIN-WAIT-2 was never reaped"
    );
    let entered = fin_wait_2_at.expect("FIN-WAIT-2 entered") - start;
    assert!(
        half_gone <= entered + cfg.fin_timeout + secs(1),
        "{half_gone:?}"
    );
    net.advance(secs(30));
    assert!(net.complete(honest));
}

/// A flood of ICMP errors (hard: port unreachable) about a live transfer,
/// quoting its 4-tuple with guessed sequence numbers (RFC 5927 §4.1): only
/// errors quoting unacknowledged sequence numbers may act, so the
/// transfer survives and the rest are dropped and counted.
#[test]
fn an_icmp_flood_with_guessed_sequence_numbers_changes_nothing() {
    let mut rng = Rng(0x5927);
    let mut net = Net::new(Config::default());
    // The server sends here: the client is the connection's receiver.
    let victim = net.transfer(40000, 2 << 20);
    let honest = net.transfer(40001, 256 << 10);
    let router = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254));
    let mut sent = 0u64;
    let deadline = net.now + secs(60);
    while !(net.complete(victim) && net.complete(honest)) && net.now < deadline {
        net.advance(ms(1));
        for _ in 0..10 {
            // The quoted packet: one the server might have sent the client.
            let quoted = header(0, ACK, rng.u32(), rng.u32());
            let quoted = TcpRepr {
                src_port: PORT,
                dst_port: 40000,
                ..quoted
            };
            let q = tcp_packet(SERVER, CLIENT, &quoted, &[]);
            let mut buf = vec![0u8; icmp_error_len(router, 28)];
            let kind = IcmpKind::DestinationUnreachable(3);
            let n = emit_icmp_error(&mut buf, router, SERVER, 64, kind, &q[..28]).unwrap();
            buf.truncate(n);
            net.server.handle_packet(net.now, &buf);
            sent += 1;
        }
    }
    let dropped = net.drops("ICMP outside the window");
    let no_conn = net.drops("ICMP for no connection");
    println!(
        "ICMP flood (seed 0x5927): {sent} errors quoting guessed sequence numbers, \
         {dropped} dropped as outside the window, {no_conn} after the connection closed; \
         transfers intact: {}",
        net.complete(victim) && net.complete(honest)
    );
    assert!(net.complete(victim) && net.complete(honest));
    assert_eq!(dropped + no_conn, sent, "ICMP errors acted");
}
