//! The `Stack`: one per host. It owns the addresses, the connections (found
//! by a keyed hash of the 4-tuple), the listeners with their accept queues,
//! the compact TIME-WAIT table and one timer wheel for them all, and it is
//! the only thing a driver talks to.
//!
//! Split by job: [`receive`] (arriving packets, batches, ICMP),
//! [`transmit`] (what the driver drains), [`timers`] (the wheel and the
//! TIME-WAIT expiry), [`listen`] (listeners, accept, segments for no
//! connection), [`calls`] (the application's calls on a connection),
//! [`lifecycle`] (running a connection's handler and applying what it
//! returns), [`time_wait`] (the compact TIME-WAIT table's side) and
//! [`ports`] (ephemeral ports), [`cookies`] (SYN cookies and the memory
//! budget of passive opens), [`requests`] (the transparent listener and
//! connection requests held for the application's decision). The `Stack` finds connections and hands
//! them what arrived; every transition is the connection's (`conn/`).

mod calls;
mod cookies;
mod diffserv;
mod lifecycle;
mod listen;
mod ports;
mod receive;
mod requests;
mod time_wait;
mod timers;
mod transmit;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::{IpAddr, SocketAddr};

use hashbrown::HashMap;
use siphasher::sip::SipHasher13;

use crate::conn::Tcb;
use crate::conns::Conns;
use crate::isn::IsnGenerator;
use crate::outbox::{Outbox, Stats};
use crate::timewait::TimeWaitTable;
use crate::wheel::TimerWheel;
use crate::{Config, ConnId, ConnTuple, Event, Instant, ListenerId, TraceEvent};

use listen::Listener;
pub use receive::{RxChecksum, PREFETCH_AHEAD};
use requests::Requests;
pub use requests::{ConnectionRequest, Handshake, Refusal, Unreachable};
use timers::TimerItem;

/// Keyed SipHash for the connection tables, so that a remote host cannot
/// pick 4-tuples that collide (hash flooding).
#[derive(Clone)]
struct KeyedHash([u8; 16]);

impl BuildHasher for KeyedHash {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_key(&self.0)
    }
}

/// One host's TCP: see the crate documentation for the `handle_*`/`poll_*`
/// protocol between a driver and the stack.
pub struct Stack {
    cfg: Config,
    addrs: Vec<IpAddr>,
    /// The same addresses, for a constant-time check on every packet.
    addr_set: hashbrown::HashSet<IpAddr, KeyedHash>,
    isn: IsnGenerator,
    /// The TCBs and their 4-tuple index.
    conns: Conns,
    /// The key of every 4-tuple hash (the connection index and TIME-WAIT
    /// share it, so a segment's tuple is hashed once).
    hasher: KeyedHash,
    time_wait: TimeWaitTable<KeyedHash>,
    /// Application handles still held on connections now in TIME-WAIT (rare).
    tw_owners: HashMap<ConnTuple, ConnId, KeyedHash>,
    listeners: Vec<Option<Listener>>,
    listen_map: HashMap<SocketAddr, ListenerId, KeyedHash>,
    /// The transparent listener, if one is open.
    transparent: Option<ListenerId>,
    /// Segments to any (valid) destination are taken: set by the first
    /// transparent listener, and kept, so that its connections outlive it.
    any_destination: bool,
    /// Connection requests held for the application (`Handshake::Defer`).
    requests: Requests,
    wheel: TimerWheel<TimerItem>,
    /// The wheel's size that starts the next sweep of the entries of
    /// connections gone ([`Stack::sweep_wheel`]).
    wheel_sweep_at: usize,
    expired: Vec<TimerItem>,
    out: Outbox,
    events: VecDeque<Event>,
    port_counter: u32,
    /// The latest instant any call handed in (for work done at drain time).
    now: Instant,
    /// The connection the last segment went to: a one-entry cache in front
    /// of the hash table (a bulk transfer hits it on every segment).
    last: Option<(ConnTuple, ConnId)>,
}

impl Stack {
    /// A stack with no addresses yet. `secret` keys the ISN generator
    /// (RFC 6528: take it from a real random source) and the hash tables.
    pub fn new(cfg: Config, secret: [u8; 16]) -> Self {
        let mut table_key = secret;
        table_key[0] ^= 0x5a;
        Stack {
            out: Outbox::new(cfg.trace, cfg.ttl, cfg.dscp.tos(0), cfg.checksum_offload),
            cfg,
            addrs: Vec::new(),
            addr_set: hashbrown::HashSet::with_hasher(KeyedHash(table_key)),
            isn: IsnGenerator::new(secret),
            conns: Conns::new(),
            hasher: KeyedHash(table_key),
            time_wait: TimeWaitTable::new(KeyedHash(table_key)),
            tw_owners: HashMap::with_hasher(KeyedHash(table_key)),
            listeners: Vec::new(),
            listen_map: HashMap::with_hasher(KeyedHash(table_key)),
            transparent: None,
            any_destination: false,
            requests: Requests::new(KeyedHash(table_key)),
            wheel: TimerWheel::new(),
            wheel_sweep_at: timers::SWEEP_FLOOR,
            expired: Vec::new(),
            events: VecDeque::new(),
            port_counter: 0,
            now: Instant::ZERO,
            last: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Adds a local address (IPv4 or IPv6).
    pub fn add_address(&mut self, addr: IpAddr) {
        if self.addr_set.insert(addr) {
            self.addrs.push(addr);
        }
    }

    /// Is `ip` one of ours? A scan for a few addresses (no hashing on the
    /// per-packet path), the hash set beyond that.
    #[inline]
    fn is_local(&self, ip: IpAddr) -> bool {
        if self.addrs.len() <= 8 {
            self.addrs.contains(&ip)
        } else {
            self.addr_set.contains(&ip)
        }
    }

    /// Should a TCP segment addressed to `dst` be handed to this stack? True
    /// for one of its addresses; a transparent listener
    /// ([`Stack::listen_transparent`]) widens this to any destination a
    /// host may be reached at: not unspecified, multicast, broadcast
    /// (MUST-57) or loopback (which never arrives from a device).
    #[inline]
    pub fn accepts_destination(&self, dst: IpAddr) -> bool {
        self.is_local(dst) || (self.any_destination && valid_remote(dst) && !dst.is_loopback())
    }

    /// The local addresses.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// Counters: packets, retransmissions, drops by reason.
    pub fn stats(&self) -> &Stats {
        &self.out.stats
    }

    /// Connections with a TCB (every state but compact TIME-WAIT).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Connections held in compact TIME-WAIT.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next trace event (only with `Config::trace`).
    pub fn poll_trace(&mut self) -> Option<TraceEvent> {
        self.out.trace.pop_front()
    }

    #[inline]
    fn tcb(&self, id: ConnId) -> Option<&Tcb> {
        self.conns.get(id)
    }

    #[inline]
    fn tcb_mut(&mut self, id: ConnId) -> Option<&mut Tcb> {
        self.conns.get_mut(id)
    }

    /// The connection (with a TCB) that `tuple` belongs to.
    #[inline]
    fn find_conn(&self, tuple: &ConnTuple) -> Option<ConnId> {
        self.conns.find(self.hasher.hash_one(tuple), tuple)
    }
}

/// A remote address we may talk to: not unspecified, multicast or
/// broadcast (MUST-46, MUST-63).
fn valid_remote(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
