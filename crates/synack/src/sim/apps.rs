//! Ready-made simulated applications: an echo server and a client that
//! sends a known byte pattern and checks what comes back.

use std::any::Any;
use std::collections::HashMap;
use std::net::SocketAddr;

use synack_core::{ConnId, Error, Event, Instant, ListenerId, Stack};

use super::App;

/// The byte at position `i` of the test stream sent by peer `salt`.
pub fn pattern(salt: u8, i: u64) -> u8 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(salt).wrapping_mul(0xA5);
    (x >> 56) as u8
}

/// How the echo server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    /// Echo, and close after the peer's FIN once everything is echoed.
    Echo,
    /// Echo, but never call close: the connection stays in CLOSE-WAIT.
    NeverClose,
    /// Do not read until this instant (the window fills and closes), then echo.
    PauseReading(Instant),
    /// Echo, and close every connection at this instant (whatever the peer did).
    CloseAt(Instant),
}

#[derive(Default)]
struct ServerConn {
    pending: Vec<u8>,
    eof: bool,
    closed: bool,
}

/// An echo server on one address and port.
pub struct EchoServer {
    addr: SocketAddr,
    mode: ServerMode,
    listener: Option<ListenerId>,
    conns: HashMap<ConnId, ServerConn>,
    /// Connections accepted.
    pub accepted: u64,
    /// Bytes echoed.
    pub echoed: u64,
    /// Connections that ended with an error.
    pub errors: Vec<Error>,
    /// The first connection accepted, for scenarios that inspect it.
    pub first: Option<ConnId>,
    backlog: usize,
    /// Reused for every read, so that no call zeroes a fresh buffer.
    scratch: Vec<u8>,
    /// How long the application takes to call close after the peer's FIN.
    close_delay: std::time::Duration,
    /// Connections whose close is due at an instant.
    closing: Vec<(Instant, ConnId)>,
}

impl EchoServer {
    /// A server that will listen on `addr`.
    pub fn new(addr: SocketAddr, mode: ServerMode) -> Self {
        EchoServer {
            addr,
            mode,
            listener: None,
            conns: HashMap::new(),
            accepted: 0,
            echoed: 0,
            errors: Vec::new(),
            first: None,
            backlog: 1024,
            scratch: vec![0; 16 * 1024],
            close_delay: std::time::Duration::ZERO,
            closing: Vec::new(),
        }
    }

    /// Makes the application take `delay` to call close after the peer's
    /// FIN (by default it closes at once, and its FIN carries the ACK of
    /// the peer's). With a delay the demo shows the four segments of the
    /// four-way close apart.
    pub fn with_close_delay(mut self, delay: std::time::Duration) -> Self {
        self.close_delay = delay;
        self
    }

    /// Sets the listen backlog (default 1024).
    pub fn set_backlog(&mut self, backlog: usize) {
        self.backlog = backlog;
    }

    fn reading_allowed(&self, now: Instant) -> bool {
        match self.mode {
            ServerMode::PauseReading(until) => now >= until,
            _ => true,
        }
    }

    /// Moves data from receive to send until one of them blocks.
    fn pump(&mut self, now: Instant, stack: &mut Stack, id: ConnId) {
        let allowed = self.reading_allowed(now);
        let mode = self.mode;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let buf = &mut self.scratch;
        loop {
            if !c.pending.is_empty() {
                match stack.send(now, id, &c.pending) {
                    Ok(n) => {
                        self.echoed += n as u64;
                        c.pending.drain(..n);
                    }
                    Err(Error::WouldBlock) => {}
                    Err(_) => c.pending.clear(),
                }
                if !c.pending.is_empty() {
                    return;
                }
            }
            if c.eof || !allowed {
                break;
            }
            match stack.recv(now, id, buf) {
                Ok(0) => c.eof = true,
                Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        let closes_on_eof = matches!(mode, ServerMode::Echo | ServerMode::PauseReading(_));
        if c.eof && c.pending.is_empty() && !c.closed && closes_on_eof {
            c.closed = true;
            if self.close_delay.is_zero() {
                let _ = stack.close(now, id);
                self.conns.remove(&id);
            } else {
                self.closing.push((now + self.close_delay, id));
            }
        }
    }
}

impl App for EchoServer {
    fn start(&mut self, _now: Instant, stack: &mut Stack) {
        self.listener = stack.listen(self.addr, self.backlog).ok();
    }

    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Incoming(lid) => {
                while let Ok(id) = stack.accept(lid) {
                    self.accepted += 1;
                    self.first.get_or_insert(id);
                    self.conns.insert(id, ServerConn::default());
                    self.pump(now, stack, id);
                }
            }
            Event::Readable(id) | Event::Writable(id) => self.pump(now, stack, id),
            Event::Closed { id, error } => {
                if let Some(e) = error {
                    self.errors.push(e);
                }
                if self.conns.remove(&id).is_some() {
                    let _ = stack.close(now, id);
                }
            }
            _ => {}
        }
    }

    fn on_restart(&mut self, now: Instant, stack: &mut Stack) {
        // The crash took every connection with it.
        self.conns.clear();
        self.closing.clear();
        self.start(now, stack);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if let Some(&(at, _)) = self.closing.iter().min() {
            return Some(at);
        }
        match self.mode {
            ServerMode::CloseAt(at) if !self.conns.is_empty() => Some(at),
            ServerMode::PauseReading(until) if !self.conns.is_empty() => {
                // Wake once when reading resumes.
                Some(until).filter(|_| self.conns.values().any(|c| !c.eof))
            }
            _ => None,
        }
    }

    fn on_timeout(&mut self, now: Instant, stack: &mut Stack) {
        if !self.closing.is_empty() {
            let due: Vec<ConnId> = self
                .closing
                .iter()
                .filter(|(at, _)| *at <= now)
                .map(|&(_, id)| id)
                .collect();
            self.closing.retain(|(at, _)| *at > now);
            for id in due {
                self.conns.remove(&id);
                let _ = stack.close(now, id);
            }
        }
        if let ServerMode::CloseAt(at) = self.mode {
            if now >= at {
                let ids: Vec<ConnId> = self.conns.keys().copied().collect();
                for id in ids {
                    self.pump(now, stack, id);
                    self.conns.remove(&id);
                    let _ = stack.close(now, id);
                }
            }
            return;
        }
        if let ServerMode::PauseReading(until) = self.mode {
            if now >= until {
                self.mode = ServerMode::Echo;
                let ids: Vec<ConnId> = self.conns.keys().copied().collect();
                for id in ids {
                    self.pump(now, stack, id);
                }
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// When the client closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// Send everything, read the whole echo back, then close.
    Echo,
    /// Send everything and shut down writing at once (half-close); read the
    /// echo until the peer's FIN, then close.
    HalfClose,
    /// Send everything, read what the peer sends, close at this instant.
    CloseAt(Instant),
    /// Send the first half and read its echo; send the second half at this
    /// instant, read its echo, then close.
    TwoRounds(Instant),
    /// Give up on the connection at this instant (abort: no FIN, no RST in
    /// SYN-SENT), whatever state it is in.
    AbortAt(Instant),
}

/// A client that connects, sends `bytes` bytes of a known pattern and
/// checks every byte it receives against the pattern it expects.
pub struct Client {
    local: Option<SocketAddr>,
    remote: SocketAddr,
    bytes: u64,
    mode: ClientMode,
    /// Pattern salt of what we send; the echo comes back with the same salt.
    send_salt: u8,
    /// Pattern salt of what we expect to receive.
    recv_salt: u8,
    expect: u64,
    start_at: Instant,
    started: bool,
    id: Option<ConnId>,
    closed_write: bool,
    released: bool,
    /// When the local address is still in use (TIME-WAIT), try again a
    /// second later instead of failing.
    retry_busy: bool,
    /// Bytes accepted by the stack.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
    /// A received byte differed from the expected pattern.
    pub mismatch: bool,
    /// The peer's FIN was read.
    pub eof: bool,
    /// The handshake completed.
    pub connected: bool,
    /// How the connection ended, once it did: `Ok` for an orderly close.
    pub outcome: Option<Result<(), Error>>,
    /// The connection handle.
    pub conn: Option<ConnId>,
}

impl Client {
    /// An echo client: sends `bytes`, expects the same bytes back.
    pub fn echo(remote: SocketAddr, bytes: u64, mode: ClientMode) -> Self {
        Client {
            local: None,
            remote,
            bytes,
            mode,
            send_salt: 1,
            recv_salt: 1,
            expect: bytes,
            start_at: Instant::ZERO,
            started: false,
            id: None,
            closed_write: false,
            released: false,
            retry_busy: false,
            sent: 0,
            received: 0,
            mismatch: false,
            eof: false,
            connected: false,
            outcome: None,
            conn: None,
        }
    }

    /// A bulk upload: sends `bytes`, half-closes, expects nothing back and
    /// closes after the peer's FIN (the peer is a [`Sink`](super::Sink)).
    pub fn upload(remote: SocketAddr, bytes: u64) -> Self {
        let mut c = Self::echo(remote, bytes, ClientMode::HalfClose);
        c.expect = 0;
        c
    }

    /// A peer for symmetric scenarios: binds `local`, sends `bytes` with
    /// salt `me`, expects `bytes` with salt `peer`.
    pub fn peer(
        local: SocketAddr,
        remote: SocketAddr,
        bytes: u64,
        me: u8,
        peer: u8,
        mode: ClientMode,
    ) -> Self {
        let mut c = Self::echo(remote, bytes, mode);
        c.local = Some(local);
        c.send_salt = me;
        c.recv_salt = peer;
        c
    }

    /// Start at `at` instead of time zero.
    pub fn starting_at(mut self, at: Instant) -> Self {
        self.start_at = at;
        self
    }

    /// Connect from `local` (address and port) instead of an ephemeral port.
    pub fn from_local(mut self, local: SocketAddr) -> Self {
        self.local = Some(local);
        self
    }

    /// When `connect` finds the local address still in use (a TIME-WAIT on
    /// the same 4-tuple), try again every second instead of failing.
    pub fn retrying_while_busy(mut self) -> Self {
        self.retry_busy = true;
        self
    }

    /// True when the exchange completed as intended: everything sent,
    /// everything expected received intact, orderly close.
    pub fn succeeded(&self) -> bool {
        self.sent == self.bytes
            && self.received == self.expect
            && !self.mismatch
            && self.outcome == Some(Ok(()))
    }

    fn open(&mut self, now: Instant, stack: &mut Stack) {
        self.started = true;
        match stack.connect(now, self.local, self.remote) {
            Ok(id) => {
                self.id = Some(id);
                self.conn = Some(id);
            }
            Err(Error::AddrInUse) if self.retry_busy => {
                self.started = false;
                self.start_at = now + std::time::Duration::from_secs(1);
            }
            Err(e) => self.outcome = Some(Err(e)),
        }
    }

    /// How many bytes may be sent by now.
    fn send_limit(&self, now: Instant) -> u64 {
        match self.mode {
            ClientMode::TwoRounds(at) if now < at => self.bytes / 2,
            _ => self.bytes,
        }
    }

    fn pump(&mut self, now: Instant, stack: &mut Stack) {
        let Some(id) = self.id else { return };
        // Send.
        let limit = self.send_limit(now);
        while self.sent < limit {
            let mut chunk = [0u8; 8192];
            let n = ((limit - self.sent) as usize).min(chunk.len());
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(self.send_salt, self.sent + i as u64);
            }
            match stack.send(now, id, &chunk[..n]) {
                Ok(k) => self.sent += k as u64,
                Err(_) => break,
            }
        }
        if self.sent == self.bytes && self.mode == ClientMode::HalfClose && !self.closed_write {
            self.closed_write = true;
            let _ = stack.shutdown_write(now, id);
        }
        // Receive.
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stack.recv(now, id, &mut buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    for (i, b) in buf[..n].iter().enumerate() {
                        if *b != pattern(self.recv_salt, self.received + i as u64) {
                            self.mismatch = true;
                        }
                    }
                    self.received += n as u64;
                }
                Err(_) => break,
            }
        }
        let done = match self.mode {
            ClientMode::Echo | ClientMode::TwoRounds(_) => {
                self.sent == self.bytes && self.received >= self.expect
            }
            ClientMode::HalfClose => self.eof,
            ClientMode::CloseAt(_) | ClientMode::AbortAt(_) => false,
        };
        if done {
            self.release(now, stack);
        }
    }

    fn release(&mut self, now: Instant, stack: &mut Stack) {
        if let Some(id) = self.id.take() {
            self.released = true;
            let _ = stack.close(now, id);
            if self.outcome.is_none() {
                self.outcome = Some(Ok(()));
            }
        }
    }
}

impl App for Client {
    fn start(&mut self, now: Instant, stack: &mut Stack) {
        if now >= self.start_at {
            self.open(now, stack);
        }
    }

    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Connected(id) if Some(id) == self.id => {
                self.connected = true;
                self.pump(now, stack);
            }
            Event::Readable(id) | Event::Writable(id) if Some(id) == self.id => {
                self.pump(now, stack)
            }
            Event::Closed { id, error } if Some(id) == self.id => {
                self.outcome = Some(match error {
                    Some(e) => Err(e),
                    None => Ok(()),
                });
                self.pump(now, stack);
                if let Some(id) = self.id.take() {
                    let _ = stack.close(now, id);
                }
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if !self.started {
            return Some(self.start_at);
        }
        match self.mode {
            ClientMode::CloseAt(at) | ClientMode::AbortAt(at) if self.id.is_some() => Some(at),
            ClientMode::TwoRounds(at) if self.id.is_some() && self.sent < self.bytes => Some(at),
            _ => None,
        }
    }

    fn on_timeout(&mut self, now: Instant, stack: &mut Stack) {
        if !self.started && now >= self.start_at {
            self.open(now, stack);
            return;
        }
        match self.mode {
            ClientMode::CloseAt(at) if now >= at => {
                self.pump(now, stack);
                self.release(now, stack);
            }
            ClientMode::TwoRounds(at) if now >= at => self.pump(now, stack),
            ClientMode::AbortAt(at) if now >= at => {
                if let Some(id) = self.id.take() {
                    let _ = stack.abort(now, id);
                    self.outcome = Some(Err(Error::Aborted));
                }
            }
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Several clients run one after another from the same host, for scenarios
/// about the incarnations of one 4-tuple (each client starts at its own
/// time; give them the same local address).
pub struct Incarnations {
    /// The clients, in the order they start.
    pub clients: Vec<Client>,
}

impl App for Incarnations {
    fn start(&mut self, now: Instant, stack: &mut Stack) {
        for c in &mut self.clients {
            c.start(now, stack);
        }
    }

    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        for c in &mut self.clients {
            c.on_event(now, stack, event);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.clients.iter().filter_map(Client::poll_timeout).min()
    }

    fn on_timeout(&mut self, now: Instant, stack: &mut Stack) {
        for c in &mut self.clients {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.on_timeout(now, stack);
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Opens `total` connections, at most `concurrent` at a time; each sends
/// `bytes` bytes, reads the echo back and closes (the churn workload).
pub struct ChurnClient {
    remote: SocketAddr,
    total: u64,
    concurrent: usize,
    bytes: usize,
    open: HashMap<ConnId, usize>,
    opened: u64,
    locals: Vec<std::net::IpAddr>,
    /// Connections that echoed intact and closed in order.
    pub completed: u64,
    /// Connections that failed (refused, reset, timed out, bad echo).
    pub failed: u64,
}

impl ChurnClient {
    /// A churn client toward `remote`.
    pub fn new(remote: SocketAddr, total: u64, concurrent: usize, bytes: usize) -> Self {
        ChurnClient {
            remote,
            total,
            concurrent: concurrent.max(1),
            bytes,
            open: HashMap::new(),
            opened: 0,
            locals: Vec::new(),
            completed: 0,
            failed: 0,
        }
    }

    /// Spreads connections over these local addresses (round robin), so
    /// that TIME-WAIT does not exhaust the ephemeral ports of one address.
    pub fn with_locals(mut self, locals: Vec<std::net::IpAddr>) -> Self {
        self.locals = locals;
        self
    }

    fn refill(&mut self, now: Instant, stack: &mut Stack) {
        while self.open.len() < self.concurrent && self.opened < self.total {
            self.opened += 1;
            let local = (!self.locals.is_empty()).then(|| {
                SocketAddr::new(self.locals[(self.opened as usize) % self.locals.len()], 0)
            });
            match stack.connect(now, local, self.remote) {
                Ok(id) => {
                    self.open.insert(id, 0);
                }
                Err(_) => self.failed += 1,
            }
        }
    }

    fn pump(&mut self, now: Instant, stack: &mut Stack, id: ConnId) {
        let Some(got) = self.open.get_mut(&id) else {
            return;
        };
        let mut buf = [0u8; 256];
        loop {
            match stack.recv(now, id, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf[..n]
                        .iter()
                        .enumerate()
                        .any(|(i, b)| *b != pattern(3, (*got + i) as u64))
                    {
                        self.failed += 1;
                        self.open.remove(&id);
                        let _ = stack.abort(now, id);
                        return;
                    }
                    *got += n;
                }
            }
        }
        if *got >= self.bytes {
            self.open.remove(&id);
            self.completed += 1;
            let _ = stack.close(now, id);
        }
    }
}

impl App for ChurnClient {
    fn start(&mut self, now: Instant, stack: &mut Stack) {
        self.refill(now, stack);
    }

    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Connected(id) => {
                let data: Vec<u8> = (0..self.bytes).map(|i| pattern(3, i as u64)).collect();
                if stack.send(now, id, &data) != Ok(self.bytes) {
                    self.failed += 1;
                    self.open.remove(&id);
                    let _ = stack.abort(now, id);
                }
            }
            Event::Readable(id) => self.pump(now, stack, id),
            Event::Closed { id, .. } if self.open.remove(&id).is_some() => {
                self.failed += 1;
                let _ = stack.close(now, id);
            }
            _ => {}
        }
        self.refill(now, stack);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
