//! Property: whatever the link does (loss, duplication, reordering, delay,
//! corruption), every byte sent arrives once and in order, both ends reach
//! CLOSED, and neither stack keeps anything behind.
//!
//! One outcome is excused, and only when the trace proves it: the client's
//! active open timing out because every one of its SYNs (the first and all
//! `Config::syn_retries` retransmissions) was lost or corrupted on the way,
//! so the server never saw any of them. See [`syn_never_arrived`].

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use synack::core::{Config, Error, Instant, State, TraceKind};
use synack::record::states;
use synack::record::{LinkFate, Record};
use synack::sim::{Client, ClientMode, DropRule, EchoServer, LinkConfig, Rng, ServerMode, Sim};
use synack::sim::{CLIENT, CLIENT_IP, SERVER, SERVER_IP};
use synack::wire::TcpFlags;

/// How a run that passed went.
#[derive(Debug)]
struct Passed {
    /// Packets of several segments the two stacks sent.
    supers: u64,
    /// The client timed out because none of its SYNs arrived, which
    /// [`syn_never_arrived`] proved from the records.
    excused: bool,
}

/// One faulty run; returns why it failed, if it did.
fn faulty_run(seed: u64, bytes: u64, link: LinkConfig, mode: ClientMode) -> Result<Passed, String> {
    faulty_run_with(seed, bytes, link, mode, test_config())
}

/// The configuration of every run here: defaults, with a short MSL so that
/// TIME-WAIT ends soon.
fn test_config() -> Config {
    Config {
        msl: Duration::from_secs(5),
        ..Config::default()
    }
}

fn faulty_run_with(
    seed: u64,
    bytes: u64,
    link: LinkConfig,
    mode: ClientMode,
    cfg: Config,
) -> Result<Passed, String> {
    faulty_run_scripted(seed, bytes, link, mode, cfg, None)
}

/// A faulty run, optionally with a scripted drop rule on top of the link's
/// random faults.
fn faulty_run_scripted(
    seed: u64,
    bytes: u64,
    link: LinkConfig,
    mode: ClientMode,
    cfg: Config,
    rule: Option<DropRule>,
) -> Result<Passed, String> {
    let server = SocketAddr::new(SERVER_IP, 7);
    let mut sim = Sim::new(seed, link.clone()).record(true);
    if let Some(rule) = rule {
        sim.set_drop_rule(rule);
    }
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg.clone(),
        Box::new(Client::echo(server, bytes, mode)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        cfg.clone(),
        Box::new(EchoServer::new(server, ServerMode::Echo)),
    );
    let quiet = sim.run(Instant::from_secs(4 * 3600));
    let c = sim.app(CLIENT).as_any().downcast_ref::<Client>().unwrap();
    let ctx = format!("seed {seed}, {bytes} bytes, {link:?}");
    if !quiet {
        return Err(format!("never went quiet ({ctx})"));
    }
    // The one excused failure: the handshake never reached the server.
    let excused = !c.succeeded()
        && (syn_never_arrived(c, sim.records(), &cfg)
            || handshake_ack_never_arrived(c, sim.records()));
    if !c.succeeded() && !excused {
        return Err(format!(
            "sent {} received {} mismatch {} outcome {:?} ({ctx})",
            c.sent, c.received, c.mismatch, c.outcome
        ));
    }
    for (h, who) in [(CLIENT, "client"), (SERVER, "server")] {
        let s = states(sim.records(), h);
        // When no SYN arrived the server never had a connection, so it
        // never changed state (`syn_never_arrived` checked that).
        if !(excused && h == SERVER) && s.last() != Some(&State::Closed) {
            return Err(format!("{who} ended in {:?} ({ctx})", s.last()));
        }
        let st = sim.stack(h);
        if st.connection_count() != 0 || st.time_wait_count() != 0 {
            return Err(format!(
                "{who} leaked {} connections and {} TIME-WAIT entries ({ctx})",
                st.connection_count(),
                st.time_wait_count()
            ));
        }
    }
    Ok(Passed {
        supers: sim.stack(CLIENT).stats().super_segments + sim.stack(SERVER).stats().super_segments,
        excused,
    })
}

/// True only when the records prove that the client's connection timed out
/// because none of its SYNs reached the server, which no stack can help:
///
/// - the client never connected, sent or received nothing, and its outcome
///   is `TimedOut`; its only states were CLOSED -> SYN-SENT -> CLOSED;
/// - it sent exactly `syn_retries + 1` segments, all bare SYNs with the same
///   sequence number, the first new and the rest retransmissions;
/// - the link lost every one of them, or corrupted it (then every copy
///   delivered, the duplicate too, was dropped by the server);
/// - the server's stack recorded nothing but those drops: no valid segment
///   arrived, nothing was sent, no state changed;
/// - the client gave up no sooner than 3 minutes after its first SYN
///   (RFC 9293 §3.8.3, MUST-23: R2 for a SYN at least 3 minutes), so the
///   timeout itself is not premature.
fn syn_never_arrived(c: &Client, records: &[Record], cfg: &Config) -> bool {
    if c.connected
        || c.sent != 0
        || c.received != 0
        || c.outcome != Some(Err(Error::TimedOut))
        || states(records, CLIENT) != [State::Closed, State::SynSent, State::Closed]
    {
        return false;
    }
    let mut syns = 0u32;
    let mut syn_seq = None;
    let mut first_syn = None;
    let mut gave_up = None;
    // Copies of corrupted SYNs that reached the server.
    let mut corrupted_copies = 0u32;
    let mut server_drops = 0u32;
    let mut i = 0;
    while i < records.len() {
        match &records[i] {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::Send { seg, rtx } => {
                    let same_seq = *syn_seq.get_or_insert(seg.seq) == seg.seq;
                    if seg.flags != TcpFlags::SYN || seg.len != 0 || !same_seq || rtx != (syns > 0)
                    {
                        return false;
                    }
                    syns += 1;
                    first_syn.get_or_insert(event.at);
                    // The link's verdicts on this packet follow its Send.
                    let mut fates = Vec::new();
                    while let Some(Record::Link { from, fate, .. }) = records.get(i + 1) {
                        if *from != CLIENT {
                            break;
                        }
                        fates.push(*fate);
                        i += 1;
                    }
                    match fates.as_slice() {
                        [LinkFate::Lost] => {}
                        [LinkFate::Corrupted] => corrupted_copies += 1,
                        [LinkFate::Corrupted, LinkFate::Duplicated] => corrupted_copies += 2,
                        // Delivered intact (perhaps twice): it arrived.
                        _ => return false,
                    }
                }
                TraceKind::State {
                    to: State::Closed, ..
                } => gave_up = Some(event.at),
                TraceKind::State { .. } => {}
                // The client's stack received or dropped something.
                _ => return false,
            },
            Record::Trace { event, .. } => match event.kind {
                TraceKind::Drop { .. } => server_drops += 1,
                _ => return false,
            },
            // A verdict on a packet whose Send was not the client's SYN.
            Record::Link { .. } | Record::Note { .. } => return false,
        }
        i += 1;
    }
    let (Some(first), Some(end)) = (first_syn, gave_up) else {
        return false;
    };
    syns == cfg.syn_retries + 1
        && server_drops == corrupted_copies
        && end.micros() - first.micros() >= 180_000_000
}

fn random_link(rng: &mut Rng) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_micros(100 + rng.below(50_000)),
        loss: rng.unit() * 0.15,
        duplicate: rng.unit() * 0.1,
        reorder: rng.unit() * 0.2,
        reorder_jitter: Duration::from_micros(rng.below(40_000)),
        corrupt: rng.unit() * 0.05,
        ..LinkConfig::default()
    }
}

/// Thousands of seeds, each with its own random fault mix and size.
#[test]
fn bytes_arrive_once_in_order_over_thousands_of_seeds() {
    let seeds = std::env::var("SYNACK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000u64);
    let mut failures = Vec::new();
    let mut total = 0u64;
    for seed in 0..seeds {
        let mut rng = Rng::new(seed);
        let link = random_link(&mut rng);
        let bytes = rng.below(40_000);
        let mode = if rng.chance(0.5) {
            ClientMode::Echo
        } else {
            ClientMode::HalfClose
        };
        if let Err(e) = faulty_run(seed, bytes, link, mode) {
            failures.push(e);
        }
        total += bytes;
    }
    println!("{seeds} seeds, {total} bytes echoed");
    assert!(
        failures.is_empty(),
        "{} of {seeds} runs failed; first: {}",
        failures.len(),
        failures[0]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The same property, with proptest choosing (and shrinking) the faults.
    #[test]
    fn echo_survives_any_faults(
        seed in any::<u64>(),
        bytes in 0u64..100_000,
        loss in 0.0f64..0.2,
        duplicate in 0.0f64..0.2,
        reorder in 0.0f64..0.3,
        corrupt in 0.0f64..0.1,
        delay_us in 0u64..100_000,
    ) {
        let link = LinkConfig {
            delay: Duration::from_micros(delay_us),
            loss,
            duplicate,
            reorder,
            reorder_jitter: Duration::from_micros(delay_us * 2 + 1),
            corrupt,
            ..LinkConfig::default()
        };
        if let Err(e) = faulty_run(seed, bytes, link, ClientMode::Echo) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The same property with small, odd-sized buffers, so that the rings wrap
/// many times and at odd offsets (the receive path verifies checksums while
/// copying into the ring, in two pieces when it wraps), and windows close.
#[test]
fn bytes_arrive_once_in_order_with_small_odd_buffers() {
    let mut failures = Vec::new();
    for seed in 0..1000u64 {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let link = random_link(&mut rng);
        let bytes = rng.below(30_000);
        let cfg = Config {
            msl: Duration::from_secs(5),
            recv_buffer: 1999 + rng.below(3000) as usize,
            send_buffer: 1001 + rng.below(3000) as usize,
            ..Config::default()
        };
        if let Err(e) = faulty_run_with(seed, bytes, link, ClientMode::Echo, cfg) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs failed; first: {}",
        failures.len(),
        failures[0]
    );
}

/// The same property with segmentation and checksum offload on at both
/// ends (`Config::gso_max_size`, `Config::checksum_offload`): the stacks
/// send packets of many segments with partial checksums, and the
/// simulator's drain (`poll_transmit`) cuts and completes them in
/// software, as the device would; losses, retransmissions, fast recovery
/// and SACK all run on super-segments.
#[test]
fn bytes_arrive_once_in_order_with_segmentation_offload() {
    let mut failures = Vec::new();
    let mut supers = 0;
    for seed in 0..1000u64 {
        let mut rng = Rng::new(seed ^ 0x00ff_10ad);
        let link = random_link(&mut rng);
        let bytes = rng.below(300_000);
        let cfg = Config {
            msl: Duration::from_secs(5),
            gso_max_size: Some(3000 + rng.below(62_536) as usize),
            checksum_offload: true,
            ..Config::default()
        };
        match faulty_run_with(seed, bytes, link, ClientMode::Echo, cfg) {
            Ok(p) => supers += p.supers,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs failed; first: {}",
        failures.len(),
        failures[0]
    );
    println!("{supers} super-segments");
    assert!(supers > 10_000, "super-segments were sent: {supers}");
}

/// The proptest case `echo_survives_any_faults` once failed on (seed
/// 11148452340124679741, in properties.proptest-regressions): with 20 %
/// loss and 8 % corruption, all 8 SYNs were lost (6) or corrupted (2) and
/// the client timed out after 247 s, as MUST-23 wants. Not a stack bug
/// (the same trace at da6e978 and 0eb27f7); the run passes as excused,
/// and only because the records prove it.
#[test]
fn every_syn_lost_or_corrupted_is_excused_seeded() {
    let link = LinkConfig {
        delay: Duration::ZERO,
        loss: 0.19765834681616595,
        duplicate: 0.08973665331726167,
        reorder: 0.043185922857660014,
        reorder_jitter: Duration::from_micros(1),
        corrupt: 0.08027177001016293,
        ..LinkConfig::default()
    };
    let passed = faulty_run(11148452340124679741, 0, link, ClientMode::Echo).unwrap();
    assert!(passed.excused, "{passed:?}");
}

/// True only when the records prove that the client's connection was reset
/// because the server gave up on its half-open connection before any
/// segment acknowledging its SYN got through, which no stack can help
/// either (RFC 9293 §3.8.3 lets SYN-RECEIVED time out; an ACK arriving in
/// LISTEN then draws a reset, §3.10.7.2):
///
/// - the client received no data and its outcome is `Reset`; its states
///   were CLOSED -> SYN-SENT -> ESTABLISHED -> CLOSED, the last on
///   receiving a RST;
/// - the server's states were LISTEN -> SYN-RECEIVED -> CLOSED, the last by
///   its timer (no segment arrived then);
/// - until then the server received only bare SYNs, and every segment the
///   client sent carrying an ACK was lost or corrupted (every copy of the
///   latter dropped by the server);
/// - afterwards the server sent nothing but RSTs.
fn handshake_ack_never_arrived(c: &Client, records: &[Record]) -> bool {
    if c.received != 0
        || c.outcome != Some(Err(Error::Reset))
        || states(records, CLIENT)
            != [
                State::Closed,
                State::SynSent,
                State::Established,
                State::Closed,
            ]
        || states(records, SERVER) != [State::Listen, State::SynReceived, State::Closed]
    {
        return false;
    }
    let mut server_gave_up = false;
    let mut corrupted_copies = 0u32;
    let mut server_drops = 0u32;
    // The time of the last segment each host received.
    let mut last_recv = [None, None];
    let mut i = 0;
    while i < records.len() {
        let Record::Trace { host, event } = &records[i] else {
            // Link verdicts are read right after their Send below.
            return false;
        };
        let client = *host == CLIENT;
        match event.kind {
            TraceKind::Recv { seg } => {
                last_recv[host.0] = Some(event.at);
                if !client && !server_gave_up && seg.flags != TcpFlags::SYN {
                    return false;
                }
            }
            TraceKind::Drop { .. } if !client && !server_gave_up => server_drops += 1,
            TraceKind::Drop { .. } | TraceKind::Cwnd { .. } => {}
            TraceKind::State { to, .. } => {
                if to == State::Closed {
                    // The server closed by its timer; the client on a RST.
                    let on_arrival = last_recv[host.0] == Some(event.at);
                    if client != on_arrival {
                        return false;
                    }
                    server_gave_up |= !client;
                }
            }
            TraceKind::Send { seg, .. } => {
                let mut fates = Vec::new();
                while let Some(Record::Link { from, fate, .. }) = records.get(i + 1) {
                    if from != host {
                        break;
                    }
                    fates.push(*fate);
                    i += 1;
                }
                if !client && server_gave_up && !seg.flags.rst() {
                    return false;
                }
                if client && !server_gave_up {
                    match fates.as_slice() {
                        [LinkFate::Corrupted] => corrupted_copies += 1,
                        [LinkFate::Corrupted, LinkFate::Duplicated] => corrupted_copies += 2,
                        [LinkFate::Lost] => {}
                        // Delivered intact: only a bare SYN may be.
                        _ if seg.flags.ack() => return false,
                        _ => {}
                    }
                }
            }
        }
        i += 1;
    }
    server_gave_up && server_drops == corrupted_copies
}

/// A drop rule that loses every SYN one host sends (bare SYN or SYN-ACK,
/// chosen by `ack`).
fn lose_syns(from_host: synack::record::HostId, ack: bool) -> DropRule {
    Box::new(move |from, seg| {
        from == from_host && seg.tcp.flags.syn() && seg.tcp.flags.ack() == ack
    })
}

/// Every SYN lost on an otherwise perfect link: the client times out and
/// the run is excused; the server kept nothing.
#[test]
fn every_syn_lost_by_rule_is_excused() {
    let link = LinkConfig::with_delay(Duration::from_millis(5));
    let rule = lose_syns(CLIENT, false);
    let cfg = test_config();
    let passed = faulty_run_scripted(1, 1000, link, ClientMode::Echo, cfg, Some(rule)).unwrap();
    assert!(passed.excused, "{passed:?}");
}

/// The client also times out when its SYNs arrive but every SYN-ACK is
/// lost; that is not the excused case (the server saw the SYNs), so the
/// run fails.
#[test]
fn timeout_after_a_syn_arrived_is_not_excused() {
    let link = LinkConfig::with_delay(Duration::from_millis(5));
    let rule = lose_syns(SERVER, true);
    let err = faulty_run_scripted(1, 1000, link, ClientMode::Echo, test_config(), Some(rule))
        .unwrap_err();
    assert!(err.contains("TimedOut"), "{err}");
}

/// All SYNs but the last lost: the handshake completes at the last try,
/// the echo succeeds, and nothing is excused.
#[test]
fn last_syn_arriving_is_not_excused() {
    let link = LinkConfig::with_delay(Duration::from_millis(5));
    let cfg = test_config();
    let budget = cfg.syn_retries;
    let mut n = 0;
    let rule: DropRule = Box::new(move |from, seg| {
        if from == CLIENT && seg.tcp.flags == TcpFlags::SYN {
            n += 1;
            return n <= budget;
        }
        false
    });
    let passed = faulty_run_scripted(1, 1000, link, ClientMode::Echo, cfg, Some(rule)).unwrap();
    assert!(!passed.excused, "{passed:?}");
}

/// A second proptest case: the SYN got through, but each of the client's
/// ACK-bearing segments in the server's 64 s of SYN-RECEIVED (its ACKs
/// and the tries of its 1 byte) was lost or corrupted, so the server gave
/// up and returned to LISTEN; the client's next retransmission drew a RST
/// (RFC 9293 §3.10.7.2) and the client ended with `Reset`: not a stack
/// bug; excused because the records prove it. Found as seed
/// 5061173654664390924 (PROPTEST_CASES=20000); since the handshake's ACK
/// rides on the client's first data, that seed's run succeeds, and seed
/// 231857 (the first of a scan of seeds from 0 on this link to give this
/// trace) is the same case.
#[test]
fn handshake_ack_never_arriving_is_excused_seeded() {
    let link = LinkConfig {
        delay: Duration::from_micros(1),
        loss: 0.19515449681094627,
        duplicate: 0.017540792205323823,
        reorder: 0.058995029532739815,
        reorder_jitter: Duration::from_micros(3),
        corrupt: 0.041437500196477656,
        ..LinkConfig::default()
    };
    let passed = faulty_run(231857, 1, link, ClientMode::Echo).unwrap();
    assert!(passed.excused, "{passed:?}");
}

/// Every ACK-bearing segment of the client lost: the server gives up on
/// SYN-RECEIVED, but no RST reaches the client either (it answers only
/// what arrives) and the client times out: not an excused outcome.
#[test]
fn client_never_heard_is_not_excused() {
    let link = LinkConfig::with_delay(Duration::from_millis(5));
    let rule: DropRule = Box::new(|from, seg| from == CLIENT && seg.tcp.flags.ack());
    let err = faulty_run_scripted(1, 1000, link, ClientMode::Echo, test_config(), Some(rule))
        .unwrap_err();
    assert!(err.contains("TimedOut"), "{err}");
}
