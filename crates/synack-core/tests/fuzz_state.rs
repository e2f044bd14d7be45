//! A proptest fuzzer for the state machine: arbitrary segments (any flags,
//! sequence and acknowledgment numbers, windows, options and payloads)
//! thrown at a stack with a listener and connections in several states,
//! with timers run in between. Nothing may panic, every answer must be a
//! well-formed packet, and the stack must stay bounded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;
use synack_core::{Config, Instant, Stack};
use synack_wire::{
    emit_packet, packet_len, parse_packet, SackBlock, TcpFlags, TcpOptions, TcpRepr,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

#[derive(Debug, Clone)]
struct Input {
    dst_port: u16,
    src_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    urgent: u16,
    mss: Option<u16>,
    ws: Option<u8>,
    sack_perm: bool,
    ts: Option<(u32, u32)>,
    sack: Vec<(u32, u32)>,
    payload: Vec<u8>,
    advance_ms: u16,
    app: u8,
}

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

/// What the stack last sent: (its port, seq, ack, sequence space used).
type Last = Option<(u16, u32, u32, u32)>;

/// Common flag combinations most of the time, anything some of the time.
fn flags(i: &Input) -> TcpFlags {
    const COMMON: [u8; 7] = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14];
    match i.flags % 8 {
        7 => TcpFlags(i.flags.rotate_left(3)),
        k => TcpFlags(COMMON[usize::from(k)]),
    }
}

fn packet(i: &Input, last: Last) -> Option<Vec<u8>> {
    let mut options = TcpOptions {
        mss: i.mss,
        window_scale: i.ws,
        sack_permitted: i.sack_perm,
        timestamps: i.ts,
        ..TcpOptions::default()
    };
    for (n, (l, r)) in i.sack.iter().enumerate() {
        options.sack_blocks[n] = SackBlock {
            left: *l,
            right: *r,
        };
    }
    options.sack_count = i.sack.len() as u8;
    // Half the time, answer what the stack last sent, near the right
    // numbers, so that segments land in (and around) its windows.
    let (dst_port, seq, ack) = match last {
        Some((port, s, a, len)) if i.app & 1 == 0 => (
            port,
            a.wrapping_add(i.seq % 4096).wrapping_sub(1024),
            s.wrapping_add(len).wrapping_sub(i.ack % 3),
        ),
        _ => (i.dst_port, i.seq, i.ack),
    };
    let repr = TcpRepr {
        src_port: if last.is_some() && i.app & 1 == 0 {
            40000
        } else {
            i.src_port
        },
        dst_port,
        seq,
        ack,
        flags: flags(i),
        window: i.window,
        urgent: i.urgent,
        options,
    };
    let payload = &i.payload[..i.payload.len().min(1400)];
    let mut buf = vec![0u8; packet_len(REMOTE, &repr, payload.len())];
    let n = emit_packet(&mut buf, REMOTE, LOCAL, 64, 0, &repr, payload).ok()?;
    buf.truncate(n);
    Some(buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_segments_never_break_the_stack(inputs in proptest::collection::vec(input(), 1..60)) {
        let cfg = Config { recv_buffer: 4096, send_buffer: 4096, ..Config::default() };
        let mut stack = Stack::new(cfg, [7; 16]);
        stack.add_address(LOCAL);
        let lid = stack.listen(SocketAddr::new(LOCAL, 80), 4).unwrap();
        let mut now = Instant::from_secs(1);
        let mut conns = Vec::new();
        let mut last: Last = None;
        if let Ok(id) = stack.connect(now, Some(SocketAddr::new(LOCAL, 81)), SocketAddr::new(REMOTE, 40000)) {
            conns.push(id);
        }
        for i in &inputs {
            if let Some(p) = packet(i, last) {
                stack.handle_packet(now, &p);
            }
            now += Duration::from_millis(u64::from(i.advance_ms % 3000));
            stack.handle_timeout(now);
            while let Ok(id) = stack.accept(lid) {
                conns.push(id);
            }
            // The application pokes at its connections too.
            if let Some(&id) = conns.get(usize::from(i.app) % conns.len().max(1)) {
                let mut buf = [0u8; 512];
                match i.app % 7 {
                    0 => { let _ = stack.send(now, id, &i.payload[..i.payload.len().min(300)]); }
                    1 => { let _ = stack.recv(now, id, &mut buf); }
                    2 => { let _ = stack.shutdown_write(now, id); }
                    3 => { let _ = stack.send_urgent(now, id, b"!"); }
                    4 => { let _ = stack.set_keepalive(now, id, true); }
                    5 => { let _ = stack.close(now, id); }
                    _ => { let _ = stack.urgent_mark(id); }
                }
            }
            while let Some(out) = stack.poll_transmit() {
                // Every answer is a well-formed packet from us.
                let seg = parse_packet(&out).expect("the stack sent a malformed packet");
                prop_assert_eq!(seg.src, LOCAL);
                let t = &seg.tcp;
                let len = seg.payload.len() as u32 + u32::from(t.flags.syn()) + u32::from(t.flags.fin());
                if seg.dst == REMOTE && !t.flags.rst() {
                    last = Some((t.src_port, t.seq, t.ack, len));
                }
                stack.recycle(out);
            }
            while stack.poll_event().is_some() {}
            prop_assert!(stack.connection_count() <= 8);
            if std::env::var_os("FUZZ_STATES").is_some() {
                for &id in &conns {
                    if let Ok(st) = stack.state(id) {
                        eprintln!("STATE {st}");
                    }
                }
            }
        }
        // Left alone, everything times out and is freed: nothing leaks.
        for id in conns {
            let _ = stack.close(now, id);
        }
        for _ in 0..2000 {
            match stack.poll_timeout() {
                Some(t) => {
                    now = now.max(t);
                    stack.handle_timeout(now);
                    while stack.poll_transmit().is_some() {}
                    while stack.poll_event().is_some() {}
                }
                None => break,
            }
        }
        prop_assert_eq!(stack.connection_count(), 0);
        prop_assert_eq!(stack.time_wait_count(), 0);
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
