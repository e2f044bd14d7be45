//! `Stack::handle_packets` and `Stack::handle_packets_offloaded`: a batch
//! is processed exactly as the same packets handed in one at a time.
//! Fetching ahead (the 4-tuple hashed early, the TCB prefetched) may make
//! it faster and must change nothing else: every packet put on the wire,
//! every event and every counter is compared between the two ways.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use synack_core::{Config, ConnId, Event, Instant, RxChecksum, Stack, PREFETCH_AHEAD};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    OneByOne,
    Batch,
    BatchOffloaded,
}

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// The message connection `k` sends: its length varies, so that some
/// echoes take several segments.
fn message(k: usize) -> Vec<u8> {
    (0..(k * 37) % 3000 + 1)
        .map(|i| (i * 7 + k) as u8)
        .collect()
}

/// Everything observable about a run.
#[derive(Debug, Default, PartialEq)]
struct Record {
    wire: Vec<Vec<u8>>,
    events: Vec<String>,
    stats: Vec<String>,
    largest_mixed_batch: usize,
}

/// Hands `packets` to `stack` the way `mode` says.
fn deliver(stack: &mut Stack, now: Instant, packets: &[Vec<u8>], mode: Mode) {
    match mode {
        Mode::OneByOne => {
            for p in packets {
                stack.handle_packet(now, p);
            }
        }
        Mode::Batch => stack.handle_packets(now, packets),
        Mode::BatchOffloaded => {
            let list: Vec<(&[u8], RxChecksum)> = packets
                .iter()
                .map(|p| (p.as_slice(), RxChecksum::Unverified))
                .collect();
            stack.handle_packets_offloaded(now, &list);
        }
    }
}

/// Bad packets mixed into a batch: a copy of its first packet with a
/// flipped byte (a bad checksum), one cut short, one that is not IP.
fn spoil(batch: &mut Vec<Vec<u8>>, round: usize) {
    let Some(first) = batch.first().cloned() else {
        return;
    };
    let mut flipped = first.clone();
    if let Some(b) = flipped.last_mut() {
        *b ^= 0x5a;
    }
    batch.insert(batch.len() / 2, flipped);
    batch.push(first[..first.len().min(10)].to_vec());
    if round.is_multiple_of(3) {
        batch.insert(1, vec![0x60; 3]);
    }
}

/// `conns` clients open at once, each sends its message, the server
/// echoes it and closes when the client does.
fn run(mode: Mode, conns: usize) -> Record {
    let cfg = Config::default();
    let mut a = Stack::new(cfg.clone(), *b"batch-test-key-A");
    a.add_address(IpAddr::V4(CLIENT));
    let mut b = Stack::new(cfg, *b"batch-test-key-B");
    b.add_address(IpAddr::V4(SERVER));
    let server = SocketAddr::new(IpAddr::V4(SERVER), 7);
    let lid = b.listen(server, 4096).unwrap();
    let mut rec = Record::default();
    let mut now = Instant::ZERO;
    let mut echoed: HashMap<ConnId, Vec<u8>> = HashMap::new();
    let mut index: HashMap<ConnId, usize> = HashMap::new();
    for k in 0..conns {
        let local = SocketAddr::new(IpAddr::V4(CLIENT), 2000 + k as u16);
        let id = a.connect(now, Some(local), server).unwrap();
        index.insert(id, k);
    }
    for round in 0..4000 {
        // Everything each side sent, as one batch to the other side.
        let mut to_b: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit()).collect();
        let mut to_a: Vec<Vec<u8>> = std::iter::from_fn(|| b.poll_transmit()).collect();
        rec.wire.extend(to_b.iter().cloned());
        rec.wire.extend(to_a.iter().cloned());
        for batch in [&to_b, &to_a] {
            let flows: std::collections::HashSet<&[u8]> =
                batch.iter().map(|p| &p[12..24]).collect();
            if flows.len() > 1 {
                rec.largest_mixed_batch = rec.largest_mixed_batch.max(batch.len());
            }
        }
        spoil(&mut to_b, round);
        spoil(&mut to_a, round + 1);
        deliver(&mut b, now, &to_b, mode);
        deliver(&mut a, now, &to_a, mode);
        now += std::time::Duration::from_millis(1);
        for s in [&mut a, &mut b] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        while let Some(ev) = b.poll_event() {
            rec.events.push(format!("b {ev:?}"));
            match ev {
                Event::Incoming(l) => while b.accept(l).is_ok() {},
                Event::Readable(id) => {
                    let mut buf = [0u8; 4096];
                    loop {
                        match b.recv(now, id, &mut buf) {
                            Ok(0) => {
                                let _ = b.close(now, id);
                                break;
                            }
                            Ok(n) => {
                                let _ = b.send(now, id, &buf[..n]);
                            }
                            Err(_) => break,
                        }
                    }
                }
                _ => {}
            }
        }
        while let Some(ev) = a.poll_event() {
            rec.events.push(format!("a {ev:?}"));
            match ev {
                Event::Connected(id) => {
                    let msg = message(index[&id]);
                    assert_eq!(a.send(now, id, &msg), Ok(msg.len()));
                }
                Event::Readable(id) => {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = a.recv(now, id, &mut buf) {
                        if n == 0 {
                            break;
                        }
                        echoed.entry(id).or_default().extend_from_slice(&buf[..n]);
                    }
                    if echoed[&id].len() == message(index[&id]).len() {
                        let _ = a.close(now, id);
                    }
                }
                _ => {}
            }
        }
    }
    let _ = lid;
    for (id, k) in &index {
        assert_eq!(
            echoed.get(id),
            Some(&message(*k)),
            "connection {k} echoed intact"
        );
    }
    rec.stats = vec![format!("{:?}", a.stats()), format!("{:?}", b.stats())];
    rec
}

#[test]
fn a_batch_is_processed_as_its_packets_one_by_one() {
    let one = run(Mode::OneByOne, 300);
    // The runs must have gone through the fetch-ahead path: batches of
    // many connections, longer than the distance fetched ahead.
    assert!(
        one.largest_mixed_batch > 4 * PREFETCH_AHEAD,
        "{}",
        one.largest_mixed_batch
    );
    assert!(one.stats[1].contains("bad checksum"), "{}", one.stats[1]);
    let batch = run(Mode::Batch, 300);
    assert_eq!(one.wire.len(), batch.wire.len());
    assert!(one.wire == batch.wire, "the same packets on the wire");
    assert_eq!(one.events, batch.events);
    assert_eq!(one.stats, batch.stats);
    let offloaded = run(Mode::BatchOffloaded, 300);
    assert!(one.wire == offloaded.wire, "the same packets on the wire");
    assert_eq!(one.events, offloaded.events);
    assert_eq!(one.stats, offloaded.stats);
}

#[test]
fn small_batches_match_too() {
    for conns in [
        1,
        2,
        PREFETCH_AHEAD,
        PREFETCH_AHEAD + 1,
        3 * PREFETCH_AHEAD + 1,
    ] {
        let one = run(Mode::OneByOne, conns);
        let batch = run(Mode::Batch, conns);
        assert!(one.wire == batch.wire, "{conns} connections");
        assert_eq!(one.events, batch.events, "{conns} connections");
        assert_eq!(one.stats, batch.stats, "{conns} connections");
    }
}
