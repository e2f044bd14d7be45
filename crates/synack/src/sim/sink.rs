//! A bulk receiver: accepts connections, reads everything, checks it
//! against the test pattern and counts it per connection; closes when the
//! peer has. With [`Client::upload`](super::Client::upload) it makes a
//! one-way bulk transfer, the load of the congestion scenario and tests.

use std::any::Any;
use std::collections::HashMap;
use std::net::SocketAddr;

use synack_core::{ConnId, Event, Instant, Stack};

use super::{pattern, App};

/// What the sink got on one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Bytes read, in order.
    pub bytes: u64,
    /// A byte differed from the pattern the sender uses (salt 1).
    pub mismatch: bool,
    /// The peer's FIN was read.
    pub eof: bool,
    /// When the last byte was read.
    pub last_at: Option<Instant>,
}

/// A server that reads and discards, checking the pattern.
pub struct Sink {
    addr: SocketAddr,
    /// Per connection, in the order they were accepted.
    pub conns: Vec<(ConnId, Received)>,
    index: HashMap<ConnId, usize>,
    scratch: Vec<u8>,
}

impl Sink {
    /// A sink that will listen on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Sink {
            addr,
            conns: Vec::new(),
            index: HashMap::new(),
            scratch: vec![0; 64 * 1024],
        }
    }

    /// Bytes read so far, over all connections.
    pub fn total(&self) -> u64 {
        self.conns.iter().map(|(_, r)| r.bytes).sum()
    }

    fn drain(&mut self, now: Instant, stack: &mut Stack, id: ConnId) {
        let Some(&k) = self.index.get(&id) else {
            return;
        };
        let r = &mut self.conns[k].1;
        loop {
            match stack.recv(now, id, &mut self.scratch) {
                Ok(0) => {
                    r.eof = true;
                    let _ = stack.close(now, id);
                    return;
                }
                Ok(n) => {
                    let ok = self.scratch[..n]
                        .iter()
                        .enumerate()
                        .all(|(i, b)| *b == pattern(1, r.bytes + i as u64));
                    r.mismatch |= !ok;
                    r.bytes += n as u64;
                    r.last_at = Some(now);
                }
                Err(_) => return,
            }
        }
    }
}

impl App for Sink {
    fn start(&mut self, _now: Instant, stack: &mut Stack) {
        let _ = stack.listen(self.addr, 1024);
    }

    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Incoming(lid) => {
                while let Ok(id) = stack.accept(lid) {
                    self.index.insert(id, self.conns.len());
                    self.conns.push((id, Received::default()));
                    self.drain(now, stack, id);
                }
            }
            Event::Readable(id) => self.drain(now, stack, id),
            Event::Closed { id, .. } if self.index.contains_key(&id) => {
                let _ = stack.close(now, id);
            }
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
