//! A proptest fuzzer for the state machine: arbitrary segments (any flags,
//! sequence and acknowledgment numbers, windows, options and payloads)
//! thrown at a stack with a listener and connections in several states,
//! with timers run in between. Nothing may panic, every answer must be a
//! well-formed packet, and the stack must stay bounded.

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use synack_core::{Config, Instant, Stack};
use synack_wire::parse_packet;

mod script;

use script::{packet, run, Input, Last, LOCAL, REMOTE};

fn input() -> impl Strategy<Value = Input> {
    (
        (
            prop_oneof![Just(80u16), Just(81u16), any::<u16>()],
            prop_oneof![Just(40000u16), any::<u16>()],
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u8>()),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
            proptest::collection::vec((any::<u32>(), any::<u32>()), 0..4),
        ),
        proptest::collection::vec(any::<u8>(), 0..1600),
        (any::<u16>(), any::<u8>()),
    )
        .prop_map(
            |(
                (dst_port, src_port),
                (seq, ack, flags, window, urgent),
                (mss, ws, sack_perm, ts, sack),
                payload,
                (advance_ms, app),
            )| Input {
                dst_port,
                src_port,
                seq,
                ack,
                flags,
                window,
                urgent,
                mss,
                ws,
                sack_perm,
                ts,
                sack,
                payload,
                advance_ms,
                app,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_segments_never_break_the_stack(inputs in proptest::collection::vec(input(), 1..60)) {
        if let Err(broken) = run(&inputs) {
            prop_assert!(false, "{}", broken);
        }
    }
}

/// Two identical stacks with a listener and a connection, as the fuzzer's.
fn twin_stack(now: Instant) -> Stack {
    let cfg = Config {
        recv_buffer: 4096,
        send_buffer: 4096,
        ..Config::default()
    };
    let mut stack = Stack::new(cfg, [9; 16]);
    stack.add_address(LOCAL);
    stack.listen(SocketAddr::new(LOCAL, 80), 64).unwrap();
    let _ = stack.connect(
        now,
        Some(SocketAddr::new(LOCAL, 81)),
        SocketAddr::new(REMOTE, 40000),
    );
    stack
}

/// Everything a stack has to say: its packets, and its events as text.
fn drain(stack: &mut Stack) -> (Vec<Vec<u8>>, Vec<String>) {
    let packets = std::iter::from_fn(|| stack.poll_transmit()).collect();
    let events = std::iter::from_fn(|| stack.poll_event())
        .map(|e| format!("{e:?}"))
        .collect();
    (packets, events)
}

/// The last segment in `packets` to the remote host that a reply could
/// acknowledge (as the fuzzer above aims its segments).
fn last_of(packets: &[Vec<u8>], last: Last) -> Last {
    packets.iter().fold(last, |last, p| match parse_packet(p) {
        Ok(seg) if seg.dst == REMOTE && !seg.tcp.flags.rst() => {
            let t = &seg.tcp;
            let len =
                seg.payload.len() as u32 + u32::from(t.flags.syn()) + u32::from(t.flags.fin());
            Some((t.src_port, t.seq, t.ack, len))
        }
        _ => last,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The batch entry point (which reads ahead in packets to fetch their
    /// connections early) on arbitrary and damaged packets: nothing may
    /// panic, and the results must be those of the packets one by one.
    #[test]
    fn a_batch_of_anything_is_handled_as_its_packets_one_by_one(
        batches in proptest::collection::vec(
            (
                proptest::collection::vec(input(), 1..40),
                proptest::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 0..8),
            ),
            1..5,
        )
    ) {
        let mut now = Instant::from_secs(1);
        let mut one = twin_stack(now);
        let mut batch = twin_stack(now);
        prop_assert_eq!(drain(&mut one), drain(&mut batch));
        let mut last: Last = None;
        for (inputs, damage) in &batches {
            let mut packets: Vec<Vec<u8>> = inputs.iter().filter_map(|i| packet(i, last)).collect();
            for &(at, byte, cut) in damage {
                let Some(k) = at.checked_rem(packets.len()) else { break };
                let p = &mut packets[k];
                if cut {
                    p.truncate(at % (p.len() + 1));
                } else if let Some(j) = at.checked_rem(p.len()) {
                    p[j] ^= byte | 1;
                }
            }
            for p in &packets {
                one.handle_packet(now, p);
            }
            batch.handle_packets(now, &packets);
            let (a, b) = (drain(&mut one), drain(&mut batch));
            prop_assert_eq!(&a, &b);
            last = last_of(&a.0, last);
            if let Some(i) = inputs.last() {
                now += Duration::from_millis(u64::from(i.advance_ms % 3000));
            }
            one.handle_timeout(now);
            batch.handle_timeout(now);
            let (a, b) = (drain(&mut one), drain(&mut batch));
            prop_assert_eq!(&a, &b);
            last = last_of(&a.0, last);
        }
        prop_assert_eq!(format!("{:?}", one.stats()), format!("{:?}", batch.stats()));
        prop_assert_eq!(one.connection_count(), batch.connection_count());
    }
}

/// The fuzz target's corpus (`fuzz/corpus/stack_script`): its seeds and
/// every input that once broke the stack, replayed as a regression test.
fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stack_script")
}

#[test]
fn the_fuzz_corpus_replays_cleanly() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("the fuzz corpus") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(broken) = run(&script::decode(&data)) {
            panic!("{}: {broken}", path.display());
        }
        n += 1;
    }
    assert!(n >= script::seeds().len(), "only {n} corpus files");
}

/// The seeds decode to their scripts, and the corpus holds them as written
/// by `encode` (`SYNACK_WRITE_SEEDS=1` rewrites them).
#[test]
fn the_fuzz_seeds_are_in_the_corpus() {
    for (name, steps) in script::seeds() {
        let bytes = script::encode(&steps);
        assert_eq!(
            format!("{:?}", script::decode(&bytes)),
            format!("{steps:?}")
        );
        let path = corpus_dir().join(format!("seed-{name}"));
        if std::env::var_os("SYNACK_WRITE_SEEDS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).ok(), Some(bytes), "{}", path.display());
    }
}
