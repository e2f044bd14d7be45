//! A hand-driven peer for state-machine tests: one [`Stack`] under test, and
//! the test playing the host at the other end of the wire. The peer builds
//! its segments with `synack-wire`, injects them with `handle_packet`, and
//! parses what the stack sends back, so that a test reads like the packet
//! traces of RFC 9293 §3.5 (`--> <SEQ=..><ACK=..><CTL=..>`).
//!
//! Per-state fixtures (`Peer::new().listening().syn_received()...`) bring
//! the connection into the state a test starts from, with every segment on
//! the way checked.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use synack_core::{Config, ConnId, Error, Event, Instant, ListenerId, Stack, State};
use synack_wire::{emit_packet, packet_len, parse_packet, TcpFlags, TcpOptions, TcpRepr};

/// The fixed secret of every test stack (ISNs and hashes are deterministic).
pub const SECRET: [u8; 16] = *b"synack-transit!!";

/// The peer's initial sequence number.
pub const PEER_ISS: u32 = 1_000_000;

/// The instant every fixture starts at.
pub const T0: Instant = Instant::from_secs(100);

/// The round-trip time the fixtures play during handshakes.
pub const RTT: Duration = Duration::from_millis(10);

pub const SYN: TcpFlags = TcpFlags::SYN;
pub const ACK: TcpFlags = TcpFlags::ACK;
pub const FIN: TcpFlags = TcpFlags::FIN;
pub const RST: TcpFlags = TcpFlags::RST;
pub const PSH: TcpFlags = TcpFlags::PSH;

/// `a | b` in a `const` context.
pub const fn fl(a: TcpFlags, b: TcpFlags) -> TcpFlags {
    a.union(b)
}

pub const SYN_ACK: TcpFlags = fl(SYN, ACK);
pub const FIN_ACK: TcpFlags = fl(FIN, ACK);
pub const RST_ACK: TcpFlags = fl(RST, ACK);
pub const PSH_ACK: TcpFlags = fl(PSH, ACK);

/// A segment the stack sent, parsed, with the instant it was drained at.
#[derive(Clone, Debug)]
pub struct Seg {
    pub at: Instant,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IPv4 TOS byte or IPv6 Traffic Class (DSCP and ECN bits).
    pub tos: u8,
    pub tcp: TcpRepr,
    pub payload: Vec<u8>,
}

impl Seg {
    /// Sequence space the segment occupies (SEG.LEN, §3.4).
    pub fn seg_len(&self) -> u32 {
        self.payload.len() as u32
            + u32::from(self.tcp.flags.syn())
            + u32::from(self.tcp.flags.fin())
    }
    /// The flags without PSH (whose placement is the sender's choice).
    pub fn ctl(&self) -> TcpFlags {
        TcpFlags(self.tcp.flags.0 & !PSH.0)
    }
}

/// The test's end of the wire.
pub struct Peer {
    pub stack: Stack,
    pub now: Instant,
    /// The stack's address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    pub lid: Option<ListenerId>,
    pub id: Option<ConnId>,
    /// The peer's next sequence number (its SND.NXT).
    pub snd_nxt: u32,
    /// The next sequence number the peer expects from the stack (its RCV.NXT).
    pub rcv_nxt: u32,
    /// The stack's ISS, once seen.
    pub stack_iss: u32,
    /// Window field the peer advertises.
    pub window: u16,
    /// In-order bytes the peer has received from the stack.
    pub received: Vec<u8>,
    /// RFC 7323: when set, the peer's TSval, put on every segment it sends.
    pub ts: Option<u32>,
    /// The last TSval seen from the stack (the peer's TSecr).
    pub ts_ecr: u32,
    /// What the SYNs of the two ends offered, for the option checks of
    /// [`Peer::transmitted`] (MUST-65, RFC 7323, RFC 2018).
    pub offers: SynOffers,
}

/// The options the last SYN (or SYN-ACK) of each end carried.
#[derive(Clone, Copy, Debug, Default)]
pub struct SynOffers {
    /// The peer's SYN carried timestamps.
    pub peer_ts: bool,
    /// The peer's SYN carried SACK-Permitted.
    pub peer_sack: bool,
    /// The stack's SYN or SYN-ACK carried timestamps.
    pub stack_ts: bool,
}

impl Default for Peer {
    fn default() -> Self {
        Peer::new()
    }
}

impl Peer {
    /// A stack with the default configuration at 10.0.0.1 (port 80 is used
    /// by the fixtures); the peer is 10.0.0.2:40000.
    pub fn new() -> Self {
        Peer::with(Config::default())
    }

    /// As [`Peer::new`] with `cfg`.
    pub fn with(cfg: Config) -> Self {
        Peer::build(
            cfg,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000),
        )
    }

    /// An IPv6 stack at fd00::1, the peer at fd00::2.
    pub fn new_v6() -> Self {
        Peer::build(
            Config::default(),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 80),
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
                40000,
            ),
        )
    }

    fn build(cfg: Config, local: SocketAddr, remote: SocketAddr) -> Self {
        let mut stack = Stack::new(cfg, SECRET);
        stack.add_address(local.ip());
        Peer {
            stack,
            now: T0,
            local,
            remote,
            lid: None,
            id: None,
            snd_nxt: PEER_ISS,
            rcv_nxt: 0,
            stack_iss: 0,
            window: 65535,
            received: Vec::new(),
            ts: None,
            ts_ecr: 0,
            offers: SynOffers::default(),
        }
    }

    // ----- time ------------------------------------------------------------

    /// Runs every timer up to and including `t`, collecting what is sent.
    /// Each segment is stamped with the deadline that produced it.
    pub fn run_until(&mut self, t: Instant) -> Vec<Seg> {
        let mut out = self.transmitted();
        while let Some(d) = self.stack.poll_timeout() {
            if d > t {
                break;
            }
            self.now = self.now.max(d);
            self.stack.handle_timeout(self.now);
            out.extend(self.transmitted());
        }
        self.now = self.now.max(t);
        self.stack.handle_timeout(self.now);
        out.extend(self.transmitted());
        out
    }

    /// `run_until(now + d)`.
    pub fn advance(&mut self, d: Duration) -> Vec<Seg> {
        let t = self.now + d;
        self.run_until(t)
    }

    /// Runs timers until the next segment leaves (or `limit` passes).
    pub fn next_timed_segment(&mut self, limit: Instant) -> Option<Seg> {
        loop {
            let d = self.stack.poll_timeout()?;
            if d > limit {
                return None;
            }
            self.now = self.now.max(d);
            self.stack.handle_timeout(self.now);
            let mut segs = self.transmitted();
            if !segs.is_empty() {
                assert_eq!(segs.len(), 1, "one segment per timer: {segs:?}");
                return segs.pop();
            }
        }
    }

    // ----- building and injecting segments ---------------------------------

    /// An IP packet from the peer to the stack.
    pub fn packet(&self, repr: &TcpRepr, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; packet_len(self.remote.ip(), repr, payload.len())];
        let n = emit_packet(
            &mut buf,
            self.remote.ip(),
            self.local.ip(),
            64,
            0,
            repr,
            payload,
        )
        .expect("emit");
        buf.truncate(n);
        buf
    }

    /// A header from the peer's port to the stack's.
    pub fn repr(&self, flags: TcpFlags, seq: u32, ack: u32) -> TcpRepr {
        let mut options = TcpOptions::default();
        if let Some(tsval) = self.ts {
            let ecr = if flags.ack() { self.ts_ecr } else { 0 };
            options.timestamps = Some((tsval, ecr));
        }
        TcpRepr {
            src_port: self.remote.port(),
            dst_port: self.local.port(),
            seq,
            ack: if flags.ack() { ack } else { 0 },
            flags,
            window: self.window,
            urgent: 0,
            options,
        }
    }

    /// Injects a raw packet at `now`.
    pub fn inject_raw(&mut self, packet: &[u8]) {
        if let Ok(s) = parse_packet(packet) {
            if s.tcp.flags.syn() && s.src == self.remote.ip() {
                self.offers.peer_ts = s.tcp.options.timestamps.is_some();
                self.offers.peer_sack = s.tcp.options.sack_permitted;
            }
        }
        self.stack.handle_packet(self.now, packet);
    }

    /// Injects a segment at `now`.
    pub fn inject(&mut self, repr: &TcpRepr, payload: &[u8]) {
        let p = self.packet(repr, payload);
        self.inject_raw(&p);
    }

    /// Injects `<SEQ=seq><ACK=ack><CTL=flags>` with `payload`; the peer's
    /// own SND.NXT is left alone (see [`Peer::data`] for that).
    pub fn send(&mut self, flags: TcpFlags, seq: u32, ack: u32, payload: &[u8]) {
        let repr = self.repr(flags, seq, ack);
        self.inject(&repr, payload);
    }

    /// The peer's SYN, `<SEQ=PEER_ISS><CTL=SYN>` with MSS 1460.
    pub fn syn(&mut self) {
        self.snd_nxt = PEER_ISS;
        let mut repr = self.repr(SYN, PEER_ISS, 0);
        repr.options.mss = Some(1460);
        self.inject(&repr, &[]);
        self.snd_nxt = PEER_ISS.wrapping_add(1);
    }

    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    pub fn ack(&mut self) {
        self.send(ACK, self.snd_nxt, self.rcv_nxt, &[]);
    }

    /// An ACK advertising `window`.
    pub fn ack_window(&mut self, window: u16) {
        let mut repr = self.repr(ACK, self.snd_nxt, self.rcv_nxt);
        repr.window = window;
        self.inject(&repr, &[]);
    }

    /// In-sequence data: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=PSH,ACK><DATA>`.
    pub fn data(&mut self, payload: &[u8]) {
        self.send(PSH_ACK, self.snd_nxt, self.rcv_nxt, payload);
        self.snd_nxt = self.snd_nxt.wrapping_add(payload.len() as u32);
    }

    /// The peer's FIN: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=FIN,ACK>`.
    pub fn fin(&mut self) {
        self.send(FIN_ACK, self.snd_nxt, self.rcv_nxt, &[]);
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
    }

    /// `<SEQ=SND.NXT><CTL=RST>`.
    pub fn rst(&mut self) {
        self.send(RST, self.snd_nxt, 0, &[]);
    }

    // ----- what the stack sent ---------------------------------------------

    /// Drains and parses every packet the stack queued, checking addresses
    /// and checksums, and absorbs in-order sequence space into `rcv_nxt`
    /// and `received`.
    pub fn transmitted(&mut self) -> Vec<Seg> {
        let mut out = Vec::new();
        while let Some(p) = self.stack.poll_transmit() {
            let s = parse_packet(&p).expect("the stack sent a malformed packet");
            assert_eq!(s.src, self.local.ip(), "source address");
            assert_eq!(s.dst, self.remote.ip(), "destination address");
            assert_eq!(s.tcp.src_port, self.local.port(), "source port");
            assert_eq!(s.tcp.dst_port, self.remote.port(), "destination port");
            let seg = Seg {
                at: self.now,
                src: s.src,
                dst: s.dst,
                tos: s.tos,
                tcp: s.tcp,
                payload: s.payload.to_vec(),
            };
            self.check_options(&seg);
            self.absorb(&seg);
            out.push(seg);
        }
        out
    }

    /// The option rules every segment the stack sends must keep:
    /// - MUST-65 (RFC 9293 §3.2), RFC 7323 §2.2, RFC 2018 §2: MSS, Window
    ///   Scale and SACK-Permitted only on a SYN;
    /// - RFC 7323 §3.2: once both SYNs carried timestamps, TSopt on every
    ///   segment but an RST;
    /// - RFC 2018 §2: no SACK blocks unless the peer's SYN permitted them.
    #[track_caller]
    pub fn check_options(&mut self, seg: &Seg) {
        let (t, o) = (&seg.tcp, &seg.tcp.options);
        if t.flags.syn() {
            self.offers.stack_ts = o.timestamps.is_some();
            return;
        }
        assert_eq!(o.mss, None, "MUST-65: MSS option without SYN: {seg:#?}");
        assert_eq!(
            o.window_scale, None,
            "RFC 7323 §2.2: WS without SYN: {seg:#?}"
        );
        assert!(
            !o.sack_permitted,
            "RFC 2018 §2: SACK-Permitted without SYN: {seg:#?}"
        );
        if self.offers.stack_ts && self.offers.peer_ts && !t.flags.rst() {
            assert!(
                o.timestamps.is_some(),
                "RFC 7323 §3.2: no TSopt on {seg:#?}"
            );
        }
        if !self.offers.peer_sack {
            assert_eq!(
                o.sack_count, 0,
                "RFC 2018 §2: SACK blocks not permitted: {seg:#?}"
            );
        }
    }

    /// Takes what `seg` carries into the peer's receive state.
    pub fn absorb(&mut self, seg: &Seg) {
        let t = &seg.tcp;
        if let Some((tsval, _)) = t.options.timestamps {
            self.ts_ecr = tsval;
        }
        if t.flags.rst() {
            return;
        }
        if t.flags.syn() {
            self.stack_iss = t.seq;
            self.rcv_nxt = t.seq.wrapping_add(1);
            return;
        }
        let off = self.rcv_nxt.wrapping_sub(t.seq) as usize;
        if off <= seg.payload.len() {
            self.received.extend_from_slice(&seg.payload[off..]);
            self.rcv_nxt = t.seq.wrapping_add(seg.payload.len() as u32);
            if t.flags.fin() {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            }
        }
    }

    /// Exactly one segment must be waiting, with control bits `flags`
    /// (PSH ignored); returns it.
    #[track_caller]
    pub fn expect_segment(&mut self, flags: TcpFlags) -> Seg {
        let mut segs = self.transmitted();
        assert_eq!(
            segs.len(),
            1,
            "expected one {flags:?} segment, got {segs:#?}"
        );
        let seg = segs.pop().unwrap();
        assert_eq!(
            seg.ctl(),
            TcpFlags(flags.0 & !PSH.0),
            "control bits of {seg:#?}"
        );
        seg
    }

    /// Exactly one `<SEQ=seq><ACK=ack><CTL=ACK>` without data.
    #[track_caller]
    pub fn expect_ack(&mut self, seq: u32, ack: u32) -> Seg {
        let seg = self.expect_segment(ACK);
        assert_eq!(seg.tcp.seq, seq, "SEQ of {seg:#?}");
        assert_eq!(seg.tcp.ack, ack, "ACK of {seg:#?}");
        assert!(seg.payload.is_empty(), "no data in {seg:#?}");
        seg
    }

    /// Nothing may be waiting.
    #[track_caller]
    pub fn expect_nothing(&mut self) {
        let segs = self.transmitted();
        assert!(segs.is_empty(), "expected silence, got {segs:#?}");
    }

    /// Drains the application events.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.stack.poll_event()).collect()
    }

    // ----- the connection under test ---------------------------------------

    pub fn id(&self) -> ConnId {
        self.id.expect("no connection yet")
    }

    #[track_caller]
    pub fn state(&self) -> State {
        self.stack.state(self.id()).expect("a live handle")
    }

    /// The stack's SND.NXT as the peer believes it (its own RCV.NXT).
    pub fn stack_nxt(&self) -> u32 {
        self.rcv_nxt
    }

    /// Reads everything readable.
    pub fn read_all(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stack.recv(self.now, self.id(), &mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(Error::WouldBlock) => return Ok(out),
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => return Ok(out),
            }
        }
    }

    pub fn drops(&self, reason: &str) -> u64 {
        self.stack.stats().drops.get(reason).copied().unwrap_or(0)
    }

    // ----- per-state fixtures ----------------------------------------------

    /// LISTEN on the stack's address, port 80, backlog 128.
    pub fn listening(self) -> Self {
        self.listening_backlog(128)
    }

    pub fn listening_backlog(mut self, backlog: usize) -> Self {
        self.lid = Some(self.stack.listen(self.local, backlog).expect("listen"));
        self
    }

    /// LISTEN, then the peer's SYN: SYN-RECEIVED, SYN-ACK checked.
    pub fn syn_received(mut self) -> Self {
        if self.lid.is_none() {
            self = self.listening();
        }
        self.syn();
        let sa = self.expect_segment(SYN_ACK);
        assert_eq!(sa.tcp.ack, PEER_ISS.wrapping_add(1));
        assert!(self.events().is_empty());
        self
    }

    /// A passive open completed after one RTT and accepted.
    pub fn established(self) -> Self {
        self.established_after(RTT)
    }

    /// As [`Peer::established`], the handshake's ACK `rtt` after the SYN
    /// (the stack's first RTT sample).
    pub fn established_after(mut self, rtt: Duration) -> Self {
        if self.rcv_nxt == 0 {
            self = self.syn_received();
        }
        self.now += rtt;
        self.ack();
        self.expect_nothing();
        let lid = self.lid.unwrap();
        assert_eq!(self.events(), vec![Event::Incoming(lid)]);
        self.id = Some(self.stack.accept(lid).expect("accept"));
        assert_eq!(self.state(), State::Established);
        self
    }

    /// As [`Peer::established`], the peer's SYN offering SACK-Permitted
    /// (RFC 2018 §2), which the SYN-ACK must accept.
    pub fn established_sack(self) -> Self {
        self.established_sack_after(RTT)
    }

    /// As [`Peer::established_sack`], the handshake taking `rtt`.
    pub fn established_sack_after(mut self, rtt: Duration) -> Self {
        if self.lid.is_none() {
            self = self.listening();
        }
        self.snd_nxt = PEER_ISS;
        let mut syn = self.repr(SYN, PEER_ISS, 0);
        syn.options.mss = Some(1460);
        syn.options.sack_permitted = true;
        self.inject(&syn, &[]);
        self.snd_nxt = PEER_ISS.wrapping_add(1);
        let sa = self.expect_segment(SYN_ACK);
        assert!(
            sa.tcp.options.sack_permitted,
            "2018-1: the SYN-ACK answers the offer"
        );
        self.established_after(rtt)
    }

    /// An active OPEN: SYN-SENT, the SYN checked.
    pub fn syn_sent(mut self) -> Self {
        let id = self
            .stack
            .connect(self.now, Some(self.local), self.remote)
            .expect("connect");
        self.id = Some(id);
        let syn = self.expect_segment(SYN);
        assert_eq!(syn.tcp.ack, 0);
        assert_eq!(self.state(), State::SynSent);
        self
    }

    /// The peer's `<SEQ=PEER_ISS><ACK=ISS+1><CTL=SYN,ACK>` with `options`.
    pub fn syn_ack_with(&mut self, options: TcpOptions) {
        let mut repr = self.repr(SYN_ACK, PEER_ISS, self.stack_iss.wrapping_add(1));
        repr.options = options;
        self.inject(&repr, &[]);
        self.snd_nxt = PEER_ISS.wrapping_add(1);
    }

    /// An active open completed (SYN-ACK with MSS 1460 after one RTT).
    pub fn established_active(mut self) -> Self {
        if self.id.is_none() {
            self = self.syn_sent();
        }
        self.now += RTT;
        self.syn_ack_with(TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        });
        let iss = self.stack_iss;
        self.expect_ack(iss.wrapping_add(1), PEER_ISS.wrapping_add(1));
        assert_eq!(self.events(), vec![Event::Connected(self.id())]);
        assert_eq!(self.state(), State::Established);
        self
    }

    /// ESTABLISHED, then shutdown of writing: FIN-WAIT-1, FIN checked.
    pub fn fin_wait_1(mut self) -> Self {
        if self.id.is_none() {
            self = self.established();
        }
        self.stack.shutdown_write(self.now, self.id()).unwrap();
        let fin = self.expect_segment(FIN_ACK);
        assert_eq!(fin.tcp.seq.wrapping_add(1), self.rcv_nxt);
        assert_eq!(self.state(), State::FinWait1);
        self
    }

    /// FIN-WAIT-1, then the ACK of the FIN: FIN-WAIT-2.
    pub fn fin_wait_2(mut self) -> Self {
        self = self.fin_wait_1();
        self.ack();
        self.expect_nothing();
        assert_eq!(self.state(), State::FinWait2);
        self
    }

    /// FIN-WAIT-2, then the peer's FIN: TIME-WAIT, ACK checked.
    pub fn time_wait(mut self) -> Self {
        self = self.fin_wait_2();
        self.fin();
        let (seq, ack) = (self.rcv_nxt, self.snd_nxt);
        self.expect_ack(seq, ack);
        assert_eq!(self.state(), State::TimeWait);
        assert_eq!(self.stack.time_wait_count(), 1);
        self
    }

    /// ESTABLISHED, then the peer's FIN: CLOSE-WAIT, ACK checked.
    pub fn close_wait(mut self) -> Self {
        if self.id.is_none() {
            self = self.established();
        }
        self.fin();
        let (seq, ack) = (self.rcv_nxt, self.snd_nxt);
        self.expect_ack(seq, ack);
        assert_eq!(self.state(), State::CloseWait);
        self
    }

    /// FIN-WAIT-1, then the peer's FIN that does not acknowledge ours:
    /// CLOSING (simultaneous close), ACK checked.
    pub fn closing(mut self) -> Self {
        self = self.fin_wait_1();
        let our_fin = self.rcv_nxt.wrapping_sub(1);
        self.send(FIN_ACK, self.snd_nxt, our_fin, &[]);
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
        let (seq, ack) = (self.rcv_nxt, self.snd_nxt);
        self.expect_ack(seq, ack);
        assert_eq!(self.state(), State::Closing);
        self
    }

    /// CLOSE-WAIT, then shutdown of writing: LAST-ACK, FIN checked.
    pub fn last_ack(mut self) -> Self {
        self = self.close_wait();
        self.stack.shutdown_write(self.now, self.id()).unwrap();
        self.expect_segment(FIN_ACK);
        assert_eq!(self.state(), State::LastAck);
        self
    }
}

/// `s` seconds.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `m` milliseconds.
pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// `n` recognisable bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}
