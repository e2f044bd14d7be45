//! The deterministic network simulator: a virtual clock, hosts that each run
//! a [`Stack`] and an application, and links with seeded faults.
//!
//! It runs as fast as the CPU allows (a 60 s TIME-WAIT costs nothing to wait
//! out) and a run is a pure function of its seed and setup, so any failure
//! reproduces exactly. It is both the test bed and the engine of `synack demo`.

mod apps;
mod bottleneck;
mod burst;
mod link;
mod rng;
mod sink;

pub use apps::{pattern, ChurnClient, Client, ClientMode, EchoServer, Incarnations, ServerMode};
pub use bottleneck::{ecn_field, mark_ce, Admission, Bottleneck, Queue, QueueLimit};
pub use burst::{BurstLoss, BurstState};
pub use link::{DropRule, HoldRule, LinkConfig, WindowRule};
pub use rng::Rng;
pub use sink::{Received, Sink};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use synack_core::{Config, Event, Instant, Stack, TraceKind};
use synack_wire::{parse_packet, peek_tuple};

use crate::record::{HostId, LinkFate, Record};

/// The client's address in the usual two-host setup (`demo` and the tests).
pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// The server's address in the usual two-host setup.
pub const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
/// The client host: the first one added.
pub const CLIENT: HostId = HostId(0);
/// The server host: the second one added.
pub const SERVER: HostId = HostId(1);

/// An application running on a simulated host. It reacts to its stack's
/// events and may keep timers of its own.
pub trait App {
    /// Called once when the simulation starts.
    fn start(&mut self, now: Instant, stack: &mut Stack);
    /// Called for every event of its stack.
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event);
    /// The application's own next deadline, if any.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// Called when the application's deadline has come.
    fn on_timeout(&mut self, _now: Instant, _stack: &mut Stack) {}
    /// Called when the host restarts with a fresh stack (see
    /// [`Sim::restart_at`]): the application forgets what it had and starts
    /// again. By default it just starts again.
    fn on_restart(&mut self, now: Instant, stack: &mut Stack) {
        self.start(now, stack);
    }
    /// Lets a scenario read the application's results after the run.
    fn as_any(&self) -> &dyn std::any::Any;
}

struct Host {
    name: String,
    stack: Stack,
    app: Box<dyn App>,
    /// What the stack was built from, to build it again on a restart.
    cfg: Config,
    addrs: Vec<IpAddr>,
}

/// A packet on its way.
struct InFlight {
    to: HostId,
    packet: Vec<u8>,
}

/// What the link did, counted over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets lost to the random `loss`.
    pub random_losses: u64,
    /// Packets lost in a burst (the Gilbert-Elliott bad state).
    pub burst_losses: u64,
    /// Packets dropped at a full bottleneck queue (or, with a marking
    /// threshold, Not-ECT packets dropped above it).
    pub queue_drops: u64,
    /// Packets marked CE at the bottleneck.
    pub ce_marks: u64,
}

/// The link's state toward one host: its bottleneck queue and where the
/// burst-loss chain stands.
#[derive(Clone, Debug, Default)]
struct Port {
    queue: Queue,
    burst: BurstState,
}

/// The simulated network.
pub struct Sim {
    now: Instant,
    rng: Rng,
    link: LinkConfig,
    hosts: Vec<Host>,
    routes: HashMap<IpAddr, HostId>,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    in_flight: HashMap<usize, InFlight>,
    next_slot: usize,
    order: u64,
    drop_rule: Option<DropRule>,
    hold_rule: Option<HoldRule>,
    /// Hosts due to restart, soonest last.
    restarts: Vec<(Instant, HostId)>,
    window_rule: Option<WindowRule>,
    record: bool,
    records: Vec<Record>,
    capture: Option<Vec<(Instant, Vec<u8>)>>,
    started: bool,
    delivered: u64,
    /// Per receiving host, its bottleneck queue and burst state.
    ports: Vec<Port>,
    link_stats: LinkStats,
}

impl Sim {
    /// An empty network whose faults draw from `seed`.
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        Sim {
            now: Instant::ZERO,
            rng: Rng::new(seed),
            link,
            hosts: Vec::new(),
            routes: HashMap::new(),
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            next_slot: 0,
            order: 0,
            drop_rule: None,
            hold_rule: None,
            restarts: Vec::new(),
            window_rule: None,
            record: false,
            records: Vec::new(),
            capture: None,
            started: false,
            delivered: 0,
            ports: Vec::new(),
            link_stats: LinkStats::default(),
        }
    }

    /// Keep [`Record`]s of everything (turns on the stacks' traces).
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// Keep a copy of every packet sent, for pcap output.
    pub fn capture(mut self, on: bool) -> Self {
        self.capture = on.then(Vec::new);
        self
    }

    /// Installs a scripted drop rule.
    pub fn set_drop_rule(&mut self, rule: DropRule) {
        self.drop_rule = Some(rule);
    }

    /// Installs a scripted hold-up: packets it picks arrive later.
    pub fn set_hold_rule(&mut self, rule: HoldRule) {
        self.hold_rule = Some(rule);
    }

    /// Restarts host `h` at `at`, as a machine that crashed and came back:
    /// its stack is replaced by a fresh one (same addresses and
    /// configuration, a new secret) that knows no connection, and its
    /// application is told through [`App::on_restart`]. Packets on their way
    /// to it still arrive, at the new stack.
    pub fn restart_at(&mut self, at: Instant, h: HostId) {
        self.restarts.push((at, h));
        self.restarts.sort_by(|a, b| b.cmp(a));
    }

    /// Inserts a note about `host` into the records just after
    /// `records()[index]` (at that record's time), for a scenario to say why
    /// that moment matters.
    pub fn add_note(&mut self, index: usize, host: HostId, text: impl Into<String>) {
        let at = self.records.get(index).map_or(self.now, Record::at);
        let note = Record::Note {
            at,
            host,
            text: text.into(),
        };
        self.records
            .insert((index + 1).min(self.records.len()), note);
    }

    /// Installs a scripted rewrite of the window field.
    pub fn set_window_rule(&mut self, rule: WindowRule) {
        self.window_rule = Some(rule);
    }

    /// Adds a host with its addresses, stack configuration and application.
    pub fn add_host(
        &mut self,
        name: &str,
        addrs: &[IpAddr],
        mut cfg: Config,
        app: Box<dyn App>,
    ) -> HostId {
        let id = HostId(self.hosts.len());
        cfg.trace = cfg.trace || self.record;
        let stack = self.new_stack(&cfg, addrs);
        for a in addrs {
            self.routes.insert(*a, id);
        }
        self.hosts.push(Host {
            name: name.to_string(),
            stack,
            app,
            cfg,
            addrs: addrs.to_vec(),
        });
        id
    }

    fn new_stack(&mut self, cfg: &Config, addrs: &[IpAddr]) -> Stack {
        let mut stack = Stack::new(cfg.clone(), self.rng.secret());
        for a in addrs {
            stack.add_address(*a);
        }
        stack
    }

    /// Replaces a host's stack with a fresh one (see [`Sim::restart_at`]).
    fn restart(&mut self, h: HostId) {
        let (cfg, addrs) = (self.hosts[h.0].cfg.clone(), self.hosts[h.0].addrs.clone());
        let stack = self.new_stack(&cfg, &addrs);
        let host = &mut self.hosts[h.0];
        host.stack = stack;
        host.app.on_restart(self.now, &mut host.stack);
        if self.record {
            self.records.push(Record::Note {
                at: self.now,
                host: h,
                text: "restarted: the stack remembers no connection".into(),
            });
        }
        self.drain(h);
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// A host's stack.
    pub fn stack(&self, h: HostId) -> &Stack {
        &self.hosts[h.0].stack
    }

    /// A host's name.
    pub fn host_name(&self, h: HostId) -> &str {
        &self.hosts[h.0].name
    }

    /// A host's application, for reading results.
    pub fn app(&self, h: HostId) -> &dyn App {
        self.hosts[h.0].app.as_ref()
    }

    /// Everything recorded so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Packets captured so far (with `capture(true)`).
    pub fn captured(&self) -> &[(Instant, Vec<u8>)] {
        self.capture.as_deref().unwrap_or(&[])
    }

    /// Packets delivered to a host so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// What the link did so far (losses by cause, CE marks).
    pub fn link_stats(&self) -> LinkStats {
        self.link_stats
    }

    /// The link's settings.
    pub fn link(&self) -> &LinkConfig {
        &self.link
    }

    /// Runs until nothing is left to happen or the virtual clock would pass
    /// `limit`. Returns true when the network went quiet before the limit.
    pub fn run(&mut self, limit: Instant) -> bool {
        if !self.started {
            self.started = true;
            for h in 0..self.hosts.len() {
                let host = &mut self.hosts[h];
                host.app.start(self.now, &mut host.stack);
                self.drain(HostId(h));
            }
        }
        loop {
            let Some(next) = self.next_instant() else {
                return true;
            };
            if next > limit {
                self.now = limit;
                return false;
            }
            self.now = self.now.max(next);
            self.step();
        }
    }

    fn next_instant(&self) -> Option<Instant> {
        let mut next = self.queue.peek().map(|Reverse((t, _, _))| *t);
        if let Some(&(t, _)) = self.restarts.last() {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        for h in &self.hosts {
            for t in [h.stack.poll_timeout(), h.app.poll_timeout()]
                .into_iter()
                .flatten()
            {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    /// Does everything due at `self.now`.
    fn step(&mut self) {
        let now = self.now;
        while let Some(&(t, h)) = self.restarts.last() {
            if t > now {
                break;
            }
            self.restarts.pop();
            self.restart(h);
        }
        while let Some(Reverse((t, _, slot))) = self.queue.peek().copied() {
            if t > now {
                break;
            }
            self.queue.pop();
            if let Some(p) = self.in_flight.remove(&slot) {
                self.delivered += 1;
                let host = &mut self.hosts[p.to.0];
                host.stack.handle_packet(now, &p.packet);
                host.stack.recycle(p.packet);
                self.drain(p.to);
            }
        }
        for h in 0..self.hosts.len() {
            let host = &mut self.hosts[h];
            if host.stack.poll_timeout().is_some_and(|t| t <= now) {
                host.stack.handle_timeout(now);
            }
            if host.app.poll_timeout().is_some_and(|t| t <= now) {
                host.app.on_timeout(now, &mut host.stack);
            }
            self.drain(HostId(h));
        }
    }

    /// Drains a host: events to its application, packets onto the link,
    /// trace events into the records, until nothing more comes out.
    fn drain(&mut self, h: HostId) {
        loop {
            let mut progressed = false;
            while let Some(ev) = self.hosts[h.0].stack.poll_event() {
                progressed = true;
                let host = &mut self.hosts[h.0];
                host.app.on_event(self.now, &mut host.stack, ev);
            }
            if self.record {
                while let Some(ev) = self.hosts[h.0].stack.poll_trace() {
                    progressed = true;
                    let is_send = matches!(ev.kind, TraceKind::Send { .. });
                    self.records.push(Record::Trace { host: h, event: ev });
                    if is_send {
                        if let Some(p) = self.hosts[h.0].stack.poll_transmit() {
                            self.transmit(h, p);
                        }
                    }
                }
            }
            while let Some(p) = self.hosts[h.0].stack.poll_transmit() {
                progressed = true;
                self.transmit(h, p);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Puts one packet on the link, applying the faults.
    fn transmit(&mut self, from: HostId, packet: Vec<u8>) {
        let now = self.now;
        if let Some(c) = self.capture.as_mut() {
            c.push((now, packet.clone()));
        }
        let mut held = None;
        let mut window = None;
        let scripted =
            self.drop_rule.is_some() || self.hold_rule.is_some() || self.window_rule.is_some();
        let to = if scripted {
            match parse_packet(&packet) {
                Ok(seg) => {
                    if self.drop_rule.as_mut().is_some_and(|rule| rule(from, &seg)) {
                        self.note(from, LinkFate::Lost);
                        return;
                    }
                    held = self.hold_rule.as_mut().and_then(|rule| rule(from, &seg));
                    window = self.window_rule.as_mut().and_then(|rule| rule(from, &seg));
                    self.routes.get(&seg.dst).copied()
                }
                Err(_) => None,
            }
        } else {
            // Route on the destination address alone; the receiving stack
            // does the full parse.
            peek_tuple(&packet).and_then(|(_, dst)| self.routes.get(&dst.ip()).copied())
        };
        let Some(to) = to else {
            // Nobody owns the destination: the packet vanishes.
            self.note(from, LinkFate::Lost);
            return;
        };
        if self.rng.chance(self.link.loss) {
            self.link_stats.random_losses += 1;
            self.note(from, LinkFate::Lost);
            return;
        }
        let mut packet = packet;
        let Some(departs) = self.cross_bottleneck(to, &mut packet) else {
            self.note(from, LinkFate::Lost);
            return;
        };
        if let Some(w) = window {
            link::rewrite_window(&mut packet, w);
        }
        if self.rng.chance(self.link.corrupt) && !packet.is_empty() {
            let bit = self.rng.below(packet.len() as u64 * 8);
            packet[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.note(from, LinkFate::Corrupted);
        }
        let mut at = departs + self.link.delay;
        if let Some(extra) = held {
            self.note(from, LinkFate::Delayed(extra));
            at += extra;
        }
        if self.rng.chance(self.link.reorder) {
            let j = self
                .rng
                .below(self.link.reorder_jitter.as_micros() as u64 + 1);
            at = Instant(at.micros() + j);
        }
        if self.rng.chance(self.link.duplicate) {
            self.note(from, LinkFate::Duplicated);
            let extra = self.rng.below(1000);
            self.enqueue(Instant(at.micros() + extra), to, packet.clone());
        }
        self.enqueue(at, to, packet);
    }

    /// Takes a packet for `to` through the burst-loss chain and the
    /// bottleneck queue in front of `to`, when the link has them: `None`
    /// when it is lost there, else when it leaves the bottleneck (now,
    /// without one). Marks it CE when the queue says so.
    fn cross_bottleneck(&mut self, to: HostId, packet: &mut [u8]) -> Option<Instant> {
        let (burst, bottleneck) = (self.link.burst_loss, self.link.bottleneck);
        if burst.is_none() && bottleneck.is_none() {
            return Some(self.now);
        }
        if self.ports.len() <= to.0 {
            self.ports.resize_with(to.0 + 1, Port::default);
        }
        let port = &mut self.ports[to.0];
        if let Some(b) = burst {
            if port.burst.lose(&b, &mut self.rng) {
                self.link_stats.burst_losses += 1;
                return None;
            }
        }
        let Some(b) = bottleneck else {
            return Some(self.now);
        };
        let ect = matches!(ecn_field(packet), Some(1..=3));
        match port.queue.admit(&b, self.now, packet.len(), ect) {
            Admission::Dropped => {
                self.link_stats.queue_drops += 1;
                None
            }
            Admission::Queued { departs, ce } => {
                if ce {
                    self.link_stats.ce_marks += 1;
                    mark_ce(packet);
                }
                Some(departs)
            }
        }
    }

    fn enqueue(&mut self, at: Instant, to: HostId, packet: Vec<u8>) {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.order += 1;
        self.in_flight.insert(slot, InFlight { to, packet });
        self.queue.push(Reverse((at, self.order, slot)));
    }

    fn note(&mut self, from: HostId, fate: LinkFate) {
        if self.record {
            self.records.push(Record::Link {
                at: self.now,
                from,
                fate,
            });
        }
    }
}
