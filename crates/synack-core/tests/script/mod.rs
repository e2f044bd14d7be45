//! A script for the whole stack: arbitrary segments (any flags, sequence
//! and acknowledgment numbers, windows, options and payloads), application
//! calls and clock steps, thrown at a stack with a listener and a
//! connection, and the invariants every run must keep.
//!
//! Shared by the state-machine proptest (`tests/fuzz_state.rs`, which
//! generates [`Input`]s with proptest strategies) and the coverage-guided
//! fuzz target (`fuzz/fuzz_targets/stack_script.rs`, which decodes them from
//! bytes with [`decode`]): one definition of a step and of what must hold.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use synack_core::{Config, Instant, Stack};
use synack_wire::{
    emit_packet, packet_len, parse_packet, SackBlock, TcpFlags, TcpOptions, TcpRepr,
};

/// The stack's address.
pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// The address every scripted segment comes from.
pub const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// One step of a script: a segment, a clock step and an application call.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub dst_port: u16,
    pub src_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    pub mss: Option<u16>,
    pub ws: Option<u8>,
    pub sack_perm: bool,
    pub ts: Option<(u32, u32)>,
    pub sack: Vec<(u32, u32)>,
    pub payload: Vec<u8>,
    pub advance_ms: u16,
    pub app: u8,
}

/// What the stack last sent: (its port, seq, ack, sequence space used).
pub type Last = Option<(u16, u32, u32, u32)>;

/// Common flag combinations most of the time, anything some of the time.
pub fn flags(i: &Input) -> TcpFlags {
    const COMMON: [u8; 7] = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14];
    match i.flags % 8 {
        7 => TcpFlags(i.flags.rotate_left(3)),
        k => TcpFlags(COMMON[usize::from(k)]),
    }
}

/// The packet step `i` sends, aimed near what the stack `last` sent.
pub fn packet(i: &Input, last: Last) -> Option<Vec<u8>> {
    let mut options = TcpOptions {
        mss: i.mss,
        window_scale: i.ws,
        sack_permitted: i.sack_perm,
        timestamps: i.ts,
        ..TcpOptions::default()
    };
    for (n, (l, r)) in i.sack.iter().take(options.sack_blocks.len()).enumerate() {
        options.sack_blocks[n] = SackBlock {
            left: *l,
            right: *r,
        };
    }
    options.sack_count = i.sack.len().min(options.sack_blocks.len()) as u8;
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

/// Reads fixed-width fields off the front of a byte string; past its end
/// every field reads as zero (so any bytes decode).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

/// Decodes a script from bytes, as the fuzz target gets them: each step is
/// a fixed header (a presence byte says which options follow) and then a
/// payload whose length is in the header; at most 60 steps, as the
/// proptest's. Ports are mostly the listener's and the connection's, as in
/// the proptest's strategy.
pub fn decode(data: &[u8]) -> Vec<Input> {
    let mut b = Bytes(data);
    let mut steps = Vec::new();
    while !b.0.is_empty() && steps.len() < 60 {
        let present = b.u8();
        let ports = b.u8();
        let mut i = Input {
            dst_port: match ports % 4 {
                0 => b.u16(),
                1 => 81,
                _ => 80,
            },
            src_port: if ports & 0x10 != 0 { b.u16() } else { 40000 },
            seq: b.u32(),
            ack: b.u32(),
            flags: b.u8(),
            window: b.u16(),
            urgent: if present & 0x40 != 0 { b.u16() } else { 0 },
            ..Input::default()
        };
        if present & 1 != 0 {
            i.mss = Some(b.u16());
        }
        if present & 2 != 0 {
            i.ws = Some(b.u8());
        }
        i.sack_perm = present & 4 != 0;
        if present & 8 != 0 {
            i.ts = Some((b.u32(), b.u32()));
        }
        for _ in 0..(present >> 4) & 3 {
            i.sack.push((b.u32(), b.u32()));
        }
        let len = usize::from(b.u16()) % 1600;
        i.payload = b.bytes(len);
        i.advance_ms = b.u16();
        i.app = b.u8();
        steps.push(i);
    }
    steps
}

/// Encodes a script as [`decode`] reads it (the fuzz corpus's seeds are
/// written with it).
pub fn encode(steps: &[Input]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in steps {
        let sacks = i.sack.len().min(3);
        let present = u8::from(i.mss.is_some())
            | u8::from(i.ws.is_some()) << 1
            | u8::from(i.sack_perm) << 2
            | u8::from(i.ts.is_some()) << 3
            | (sacks as u8) << 4
            | 0x40;
        out.extend([present, 0x10]);
        out.extend(i.dst_port.to_be_bytes());
        out.extend(i.src_port.to_be_bytes());
        out.extend(i.seq.to_be_bytes());
        out.extend(i.ack.to_be_bytes());
        out.push(i.flags);
        out.extend(i.window.to_be_bytes());
        out.extend(i.urgent.to_be_bytes());
        if let Some(mss) = i.mss {
            out.extend(mss.to_be_bytes());
        }
        if let Some(ws) = i.ws {
            out.push(ws);
        }
        if let Some((a, b)) = i.ts {
            out.extend(a.to_be_bytes());
            out.extend(b.to_be_bytes());
        }
        for (l, r) in &i.sack[..sacks] {
            out.extend(l.to_be_bytes());
            out.extend(r.to_be_bytes());
        }
        let payload = &i.payload[..i.payload.len().min(1599)];
        out.extend((payload.len() as u16).to_be_bytes());
        out.extend(payload);
        out.extend(i.advance_ms.to_be_bytes());
        out.push(i.app);
    }
    out
}

/// A few scripts that reach deep states, the seeds of the fuzz corpus:
/// (file name, script). Each aims its segments at what the stack last sent
/// (`app` even, `seq` 1024 and `ack` 0 hit RCV.NXT and SND.NXT exactly).
pub fn seeds() -> Vec<(&'static str, Vec<Input>)> {
    let step = |flags: u8, payload: &[u8], app: u8| Input {
        dst_port: 80,
        src_port: 40000,
        seq: 1024,
        ack: 0,
        flags,
        window: 65535,
        payload: payload.to_vec(),
        advance_ms: 20,
        app,
        ..Input::default()
    };
    // Flag codes (see [`flags`]): 0 SYN, 1 SYN-ACK, 2 ACK, 3 PSH-ACK,
    // 4 FIN-ACK, 5 RST.
    let syn = Input {
        seq: 5000,
        mss: Some(1460),
        ws: Some(7),
        sack_perm: true,
        ts: Some((1, 0)),
        app: 1,
        ..step(0, b"", 1)
    };
    let handshake = vec![syn.clone(), step(2, b"", 6)];
    let mut transfer = handshake.clone();
    transfer.extend([
        step(3, b"hello, synack", 0),
        step(3, &[7; 1000], 2),
        step(2, b"", 1),
        step(4, b"", 6),
    ]);
    let mut out_of_order = handshake.clone();
    out_of_order.extend([
        Input {
            seq: 1124,
            ..step(3, &[1; 100], 2)
        },
        step(3, &[2; 100], 6),
        step(2, b"", 1),
    ]);
    let active = vec![Input {
        dst_port: 81,
        ..step(1, b"", 6)
    }];
    vec![
        ("handshake", handshake),
        ("transfer", transfer),
        ("out_of_order", out_of_order),
        ("active_open", active),
    ]
}

/// The stack's connection limit in a script. A script whose application
/// accepts every child can open far more than a backlog's worth (each
/// accept frees a place in the queue), so the bound checked is the one the
/// stack is given, not the listener's backlog.
pub const MAX_CONNECTIONS: usize = 8;

/// Runs a script against a fresh stack (a listener on port 80 with a
/// backlog of 4, a connection from port 81 to the remote's 40000, 4 KiB
/// buffers, a limit of [`MAX_CONNECTIONS`]; pacing when the first step's
/// application byte has its top bit set, Reno when it has the next) and
/// checks, after every step,
/// that every answer is a well-formed packet from us and that the limit
/// holds whatever path opened the connections (SYN queue, cookies, the
/// application's accepts); and at the end that, left alone, everything
/// times out and is freed. Returns what was broken.
pub fn run(inputs: &[Input]) -> Result<(), String> {
    // The first step's application byte also picks the options a script
    // runs under, so that pacing (and its timer) and Reno are explored as
    // well as the defaults. Pacing holds only flights of ten segments or
    // more, which 4 KiB buffers reach when the peer offers a small MSS.
    let pick = inputs.first().map_or(0, |i| i.app);
    let cfg = Config {
        recv_buffer: 4096,
        send_buffer: 4096,
        max_connections: MAX_CONNECTIONS,
        pacing: pick & 0x80 != 0,
        congestion_control: if pick & 0x40 != 0 {
            synack_core::CongestionControlChoice::Reno
        } else {
            synack_core::CongestionControlChoice::Cubic
        },
        ..Config::default()
    };
    let mut stack = Stack::new(cfg, [7; 16]);
    stack.add_address(LOCAL);
    let lid = stack
        .listen(SocketAddr::new(LOCAL, 80), 4)
        .map_err(|e| format!("listen: {e:?}"))?;
    let mut now = Instant::from_secs(1);
    let mut conns = Vec::new();
    let mut last: Last = None;
    if let Ok(id) = stack.connect(
        now,
        Some(SocketAddr::new(LOCAL, 81)),
        SocketAddr::new(REMOTE, 40000),
    ) {
        conns.push(id);
    }
    for i in inputs {
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
                0 => {
                    let _ = stack.send(now, id, &i.payload[..i.payload.len().min(300)]);
                }
                1 => {
                    let _ = stack.recv(now, id, &mut buf);
                }
                2 => {
                    let _ = stack.shutdown_write(now, id);
                }
                3 => {
                    let _ = stack.send_urgent(now, id, b"!");
                }
                4 => {
                    let _ = stack.set_keepalive(now, id, true);
                }
                5 => {
                    let _ = stack.close(now, id);
                }
                _ => {
                    let _ = stack.urgent_mark(id);
                }
            }
        }
        while let Some(out) = stack.poll_transmit() {
            // Every answer is a well-formed packet from us.
            let seg = parse_packet(&out)
                .map_err(|e| format!("the stack sent a malformed packet: {e:?}"))?;
            if seg.src != LOCAL {
                return Err(format!("a packet from {}", seg.src));
            }
            let t = &seg.tcp;
            let len =
                seg.payload.len() as u32 + u32::from(t.flags.syn()) + u32::from(t.flags.fin());
            if seg.dst == REMOTE && !t.flags.rst() {
                last = Some((t.src_port, t.seq, t.ack, len));
            }
            stack.recycle(out);
        }
        while stack.poll_event().is_some() {}
        if stack.connection_count() > MAX_CONNECTIONS {
            return Err(format!("{} connections", stack.connection_count()));
        }
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
    if stack.connection_count() != 0 || stack.time_wait_count() != 0 {
        return Err(format!(
            "left alone, {} connections and {} in TIME-WAIT remain",
            stack.connection_count(),
            stack.time_wait_count()
        ));
    }
    Ok(())
}
