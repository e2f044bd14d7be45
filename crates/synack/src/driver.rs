//! The TUN driver: one thread that owns the device and drives a [`Stack`].
//!
//! The stack sits behind a mutex shared with the application threads (the
//! sockets of [`crate::net`] and, with the `tokio` feature,
//! [`crate::tokio`]). The driver thread waits in `ppoll` on three things at
//! once: the TUN descriptor, an `eventfd` that application threads write to
//! when they moved the stack's next deadline earlier, and that deadline.
//! When it wakes it reads every packet that is ready (up to [`BATCH`]
//! packets) without holding the lock, then takes the lock once and hands
//! the whole batch to the stack, runs the timers that are due, writes out
//! everything the stack queued, and turns the stack's events into wake-ups
//! (a `Condvar` per connection for blocking callers, `Waker`s for async
//! ones).
//!
//! A user call made on an application thread runs the stack under the same
//! lock and then writes out what the stack queued itself, so that a `write`
//! does not wait for the driver thread to be scheduled.
//!
//! The device is opened with offloads when the kernel grants them
//! ([`TunDevice::open_offload`]; [`NetBuilder::offload`] turns them off):
//! then a [`VirtioNetHdr`] comes with every packet, arriving TCP packets may
//! hold many segments merged with their checksum left partial (handed to
//! the stack with what the device did about their checksums), and the
//! stack is told
//! (`Config::gso_max_size`, `Config::checksum_offload`) that it may send
//! packets of many segments with partial checksums for the kernel to cut
//! up and finish ([`Stack::poll_transmit_meta`]). A header that does not
//! fit its packet drops the packet, counted in [`DriverStats`].
//!
//! Arriving packets are sorted ([`crate::icmp_echo::classify`]): TCP and
//! ICMP/ICMPv6 errors addressed to one of the stack's addresses go to the
//! stack (which acts on ICMP errors itself), echo requests to those
//! addresses are answered here, everything else is dropped and counted in
//! [`DriverStats`]. The driver reads up to [`BATCH`] packets at a time and
//! hands the stack's share to it together
//! ([`Stack::handle_packets_offloaded`]), so that with many connections
//! open the stack fetches a later packet's connection from memory while it
//! processes an earlier one; then it sends what the stack queued and wakes
//! the applications.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use synack_core::{Config, ConnId, Error, Event, Instant, ListenerId, RxChecksum, Stack, Transmit};

use crate::icmp_echo::{classify, echo_reply, Classified};
use crate::ifconfig::{self, HostAddr};
use crate::pcap::PcapWriter;
use crate::trace_json::TraceWriter;
use crate::tun::{TunDevice, VirtioNetHdr, VNET_HDR_LEN};

/// Most packets read from the device before the stack processes them.
pub const BATCH: usize = 64;

/// Largest frame read from the device: a packet of up to 64 KiB (the TUN
/// MTU may be raised that far, and merged segments come that large), an
/// IPv6 header beyond it, and the virtio header before it.
const MAX_FRAME: usize = 65_536 + 64 + VNET_HDR_LEN;

/// Largest IP packet the stack may hand the kernel to cut into segments.
const GSO_MAX_SIZE: usize = 65_535;

/// A boxed output for traces and captures.
pub type Sink = Box<dyn Write + Send>;

/// Counters kept by the driver (the stack keeps its own: [`Stack::stats`]).
#[derive(Clone, Debug, Default)]
pub struct DriverStats {
    /// Packets read from the device.
    pub rx_packets: u64,
    /// Packets written to the device.
    pub tx_packets: u64,
    /// Reads that returned more than one packet before the device ran dry:
    /// how often batching applied.
    pub rx_batches: u64,
    /// Arriving packets addressed to none of the stack's addresses.
    pub dropped_not_ours: u64,
    /// Arriving packets of another protocol (UDP, ICMP informational, ...).
    pub dropped_protocol: u64,
    /// Echo requests answered.
    pub echo_replies: u64,
    /// Writes to the device that failed (the packet is lost, as on a wire).
    pub tx_errors: u64,
    /// Packets read that held several segments merged (offload only).
    pub rx_super_segments: u64,
    /// Packets written for the kernel to cut into segments (offload only).
    pub tx_super_segments: u64,
    /// Packets dropped because their virtio header was short or did not
    /// fit the packet (offload only).
    pub dropped_bad_vnet_hdr: u64,
}

/// How to start a driver: see [`Net::builder`].
pub struct NetBuilder {
    tun: String,
    addrs: Vec<IpAddr>,
    host: Option<HostAddr>,
    config: Config,
    trace: Option<Sink>,
    pcap: Option<Sink>,
    offload: bool,
}

impl NetBuilder {
    /// Asks for checksum and segmentation offload on the device (the
    /// default: on, falling back to a plain device when the kernel refuses),
    /// or, with `false`, opens a plain device: one packet of one segment
    /// per system call. [`Net::offload`] says what was granted.
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = on;
        self
    }

    /// Adds an address of the stack (the address the peers connect to).
    pub fn addr(mut self, addr: IpAddr) -> Self {
        self.addrs.push(addr);
        self
    }

    /// Gives the host side of the device this address and brings it up.
    pub fn host(mut self, host: HostAddr) -> Self {
        self.host = Some(host);
        self
    }

    /// The stack's configuration (default: [`Config::default`]). Its
    /// `gso_max_size` and `checksum_offload` are set by the driver to what
    /// the device does (see [`NetBuilder::offload`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Writes the trace (JSON Lines, `shared/CONTRACT.md`) to `out`.
    pub fn trace(mut self, out: Sink) -> Self {
        self.trace = Some(out);
        self
    }

    /// Writes a pcap capture of every packet in and out to `out`.
    pub fn pcap(mut self, out: Sink) -> Self {
        self.pcap = Some(out);
        self
    }

    /// Opens the device, configures the host side, starts the driver thread.
    pub fn start(self) -> io::Result<Net> {
        if self.addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the stack needs an address",
            ));
        }
        let opened = if self.offload {
            TunDevice::open_offload(&self.tun)
        } else {
            TunDevice::open(&self.tun)
        };
        let tun = opened.map_err(|e| {
            let why = match e.kind() {
                io::ErrorKind::PermissionDenied => "permission denied (needs CAP_NET_ADMIN)".into(),
                io::ErrorKind::NotFound => "/dev/net/tun not found".into(),
                _ => e.to_string(),
            };
            io::Error::new(
                e.kind(),
                format!("cannot open TUN device {}: {why}", self.tun),
            )
        })?;
        if let Some(host) = self.host {
            ifconfig::configure(tun.name(), host).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot give {} the address {host}: {e}", tun.name()),
                )
            })?;
        }
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
        let mut config = self.config;
        config.trace = self.trace.is_some();
        // What the device does, not a choice of the application's.
        config.gso_max_size = tun.offload().then_some(GSO_MAX_SIZE);
        config.checksum_offload = tun.offload();
        let mut stack = Stack::new(config, secret);
        for a in &self.addrs {
            stack.add_address(*a);
        }
        let trace = self.trace.map(TraceWriter::new);
        let pcap = match self.pcap {
            Some(out) => Some(PcapWriter::new(out)?),
            None => None,
        };
        // SAFETY: plain syscall; the result is checked before use.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(efd) };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                stack,
                conns: HashMap::new(),
                listeners: HashMap::new(),
                trace,
                pcap,
                stats: DriverStats::default(),
                armed: None,
            }),
            tun,
            wake,
            epoch: std::time::Instant::now(),
            stop: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("synack-driver".into())
            .spawn(move || run(&for_thread))?;
        Ok(Net {
            shared: Arc::clone(&shared),
            owner: Arc::new(Owner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

/// A running stack on a TUN device: the handle sockets are made from.
///
/// Cloning is cheap; the driver thread stops when the last clone and the
/// last socket made from it are dropped (or at [`Net::shutdown`]).
#[derive(Clone)]
pub struct Net {
    shared: Arc<Shared>,
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("tun", &self.shared.tun.name())
            .finish()
    }
}

impl Net {
    /// Starts describing a driver on the TUN device `tun`.
    pub fn builder(tun: &str) -> NetBuilder {
        NetBuilder {
            tun: tun.to_string(),
            addrs: Vec::new(),
            host: None,
            config: Config::default(),
            trace: None,
            pcap: None,
            offload: true,
        }
    }

    /// True when the device does checksum and segmentation offload.
    pub fn offload(&self) -> bool {
        self.shared.tun.offload()
    }

    /// The device's name.
    pub fn tun_name(&self) -> &str {
        self.shared.tun.name()
    }

    /// The driver's counters.
    pub fn driver_stats(&self) -> DriverStats {
        self.shared.lock().stats.clone()
    }

    /// Runs `f` on the stack (for counters and inspection), then sends what
    /// it queued.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        let mut g = self.shared.lock();
        let r = f(&mut g.stack);
        self.shared.drain(&mut g);
        r
    }

    /// Stops the driver thread and waits for it; flushes trace and capture.
    /// Sockets still open stop working (their calls time out or fail).
    pub fn shutdown(&self) {
        self.owner.stop();
    }

    /// The stack's clock now.
    pub fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Takes the stack's lock for a socket call.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            shared: &self.shared,
            g: self.shared.lock(),
        }
    }
}

/// Stops the thread when the last handle goes.
struct Owner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Owner {
    fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake();
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
        let mut g = self.shared.lock();
        if let Some(w) = g.trace.as_mut() {
            let _ = w.flush();
        }
        if let Some(w) = g.pcap.as_mut() {
            let _ = w.flush();
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What application threads share with the driver thread.
struct Shared {
    inner: Mutex<Inner>,
    tun: TunDevice,
    wake: OwnedFd,
    epoch: std::time::Instant,
    stop: AtomicBool,
}

/// Wake-ups of one connection.
#[derive(Default)]
struct ConnWaiters {
    /// Blocking callers wait here (with the `Inner` lock).
    cond: Arc<Condvar>,
    /// An async reader to wake.
    read: Option<Waker>,
    /// An async writer (or connector) to wake.
    write: Option<Waker>,
    /// Set once the connection reached CLOSED: why, when not orderly.
    closed: Option<Option<Error>>,
    /// The last ICMP soft error reported for it.
    soft_error: Option<Error>,
}

impl ConnWaiters {
    /// Wakes everyone waiting on the connection, blocking or async (each
    /// looks again at what it waits for; a wake-up too many costs a look).
    fn wake(&mut self) {
        self.cond.notify_all();
        if let Some(w) = self.read.take() {
            w.wake();
        }
        if let Some(w) = self.write.take() {
            w.wake();
        }
    }
}

/// Wake-ups of one listener.
#[derive(Default)]
struct ListenerWaiters {
    /// Blocking acceptors wait here (with the `Inner` lock).
    cond: Arc<Condvar>,
    /// An async acceptor to wake.
    accept: Option<Waker>,
}

impl ListenerWaiters {
    /// Wakes everyone waiting to accept.
    fn wake(&mut self) {
        self.cond.notify_all();
        if let Some(w) = self.accept.take() {
            w.wake();
        }
    }
}

/// Everything behind the lock.
struct Inner {
    stack: Stack,
    conns: HashMap<ConnId, ConnWaiters>,
    listeners: HashMap<ListenerId, ListenerWaiters>,
    trace: Option<TraceWriter<Sink>>,
    pcap: Option<PcapWriter<Sink>>,
    stats: DriverStats,
    /// The deadline the driver thread is sleeping towards.
    armed: Option<Instant>,
}

/// What a socket waits for: the condition a blocking caller sleeps on
/// ([`Locked::wait`]) and the slot an async caller's waker goes in
/// (`Locked::register_waker`, with the `tokio` feature).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Data (or end of stream) to read on the connection.
    Read(ConnId),
    /// Room in the send buffer, or the end of the handshake.
    Write(ConnId),
    /// A connection to accept on the listener.
    Accept(ListenerId),
}

/// The stack's lock held by a socket call: the stack, and the driver's
/// wake-up book-keeping that goes with it. Whatever the call made the
/// stack queue is sent by [`Locked::drain`] on the caller's thread.
pub(crate) struct Locked<'a> {
    shared: &'a Shared,
    g: MutexGuard<'a, Inner>,
}

impl<'a> Locked<'a> {
    /// The stack.
    pub(crate) fn stack(&mut self) -> &mut Stack {
        &mut self.g.stack
    }

    /// The stack's clock now.
    pub(crate) fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Sends what the stack queued and wakes whom its events concern
    /// (see [`Shared::drain`]).
    pub(crate) fn drain(&mut self) {
        self.shared.drain(&mut self.g);
    }

    /// Starts keeping wake-ups for a connection a socket now wraps.
    pub(crate) fn add_conn(&mut self, id: ConnId) {
        self.g.conns.insert(id, ConnWaiters::default());
    }

    /// Forgets the wake-ups of a connection whose socket is gone.
    pub(crate) fn remove_conn(&mut self, id: ConnId) {
        self.g.conns.remove(&id);
    }

    /// Starts keeping wake-ups for a listener a socket now wraps.
    pub(crate) fn add_listener(&mut self, id: ListenerId) {
        self.g.listeners.insert(id, ListenerWaiters::default());
    }

    /// Forgets the wake-ups of a listener whose socket is gone.
    pub(crate) fn remove_listener(&mut self, id: ListenerId) {
        self.g.listeners.remove(&id);
    }

    /// Wakes every caller waiting on the connection.
    pub(crate) fn wake_conn(&mut self, id: ConnId) {
        if let Some(c) = self.g.conns.get_mut(&id) {
            c.wake();
        }
    }

    /// For an async call that cannot finish yet: registers `waker` for
    /// what it waits for and returns `Pending`, or an error when the driver
    /// has stopped (nothing would ever wake it). Under the lock, so no
    /// wake-up is lost between the failed attempt and the registration.
    #[cfg(feature = "tokio")]
    pub(crate) fn register_waker<T>(
        &mut self,
        on: Wait,
        waker: &Waker,
    ) -> std::task::Poll<io::Result<T>> {
        if self.shared.stopped() {
            return std::task::Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        }
        let slot = match on {
            Wait::Read(id) => self.g.conns.get_mut(&id).map(|c| &mut c.read),
            Wait::Write(id) => self.g.conns.get_mut(&id).map(|c| &mut c.write),
            Wait::Accept(id) => self.g.listeners.get_mut(&id).map(|l| &mut l.accept),
        };
        if let Some(slot) = slot {
            *slot = Some(waker.clone());
        }
        std::task::Poll::Pending
    }

    /// For a blocking call that cannot finish yet: sleeps (releasing the
    /// lock) until woken for what it waits for, or until `deadline`.
    /// `Err(on_timeout)` once the deadline has passed; `NotConnected` when
    /// the driver has stopped or the socket is unknown.
    pub(crate) fn wait(
        self,
        on: Wait,
        deadline: Option<StdInstant>,
        on_timeout: io::ErrorKind,
    ) -> io::Result<Locked<'a>> {
        let Locked { shared, g } = self;
        let cond = match on {
            Wait::Read(id) | Wait::Write(id) => g.conns.get(&id).map(|c| c.cond.clone()),
            Wait::Accept(id) => g.listeners.get(&id).map(|l| l.cond.clone()),
        };
        let Some(cond) = cond else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if shared.stopped() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the stack's driver has stopped",
            ));
        }
        let g = match deadline {
            None => cond.wait(g).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(StdInstant::now());
                if left.is_zero() {
                    return Err(io::Error::new(on_timeout, "timed out"));
                }
                cond.wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
        Ok(Locked { shared, g })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stack's clock: microseconds since the driver started.
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Wakes the driver thread.
    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our eventfd.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// After the stack ran: sends what it queued, writes its trace, turns
    /// its events into wake-ups, and wakes the driver thread when the next
    /// deadline moved earlier than the one it sleeps towards.
    fn drain(&self, g: &mut Inner) {
        let now = self.now();
        if self.tun.offload() {
            while let Some(t) = g.stack.poll_transmit_meta() {
                self.send_offloaded(g, now, &t);
                g.stack.recycle(t.packet);
            }
        }
        while let Some(p) = g.stack.poll_transmit() {
            if let Some(w) = g.pcap.as_mut() {
                let _ = w.write_packet(now, &p);
            }
            match self.tun.send(&p) {
                Ok(_) => g.stats.tx_packets += 1,
                Err(_) => g.stats.tx_errors += 1,
            }
            g.stack.recycle(p);
        }
        if g.trace.is_some() {
            while let Some(ev) = g.stack.poll_trace() {
                if let Some(w) = g.trace.as_mut() {
                    let _ = w.write_event(None, &ev);
                }
            }
        }
        while let Some(ev) = g.stack.poll_event() {
            g.dispatch(ev);
        }
        if let Some(d) = g.stack.poll_timeout() {
            if g.armed.is_none_or(|a| d < a) {
                g.armed = Some(d);
                self.wake();
            }
        }
    }
}

impl Shared {
    /// Writes a packet from [`Stack::poll_transmit_meta`] with the virtio
    /// header that tells the kernel what is left to do: cut it into
    /// segments (TSO) and complete the TCP checksum.
    fn send_offloaded(&self, g: &mut Inner, now: Instant, t: &Transmit) {
        let start = t.checksum_start();
        let mut hdr = VirtioNetHdr::default();
        if t.checksum_partial {
            hdr.flags = VirtioNetHdr::NEEDS_CSUM;
            hdr.csum_start = start as u16;
            hdr.csum_offset = Transmit::CHECKSUM_OFFSET as u16;
        }
        if let Some(mss) = t.segment_size {
            hdr.gso_type = if start == 40 {
                VirtioNetHdr::GSO_TCPV6
            } else {
                VirtioNetHdr::GSO_TCPV4
            };
            hdr.gso_size = mss;
            hdr.hdr_len = t.header_len() as u16;
            g.stats.tx_super_segments += 1;
        }
        if let Some(w) = g.pcap.as_mut() {
            let _ = w.write_packet(
                now,
                &finished(&t.packet, t.checksum_partial.then_some(start)),
            );
        }
        match self.tun.send_with(&hdr, &t.packet) {
            Ok(_) => g.stats.tx_packets += 1,
            Err(_) => g.stats.tx_errors += 1,
        }
    }
}

/// A copy of `packet` with a partial checksum completed (for captures,
/// which should show what the segments carry).
fn finished(packet: &[u8], partial_from: Option<usize>) -> std::borrow::Cow<'_, [u8]> {
    match partial_from {
        Some(start) => {
            let mut p = packet.to_vec();
            let _ = synack_wire::complete_checksum(&mut p, start, Transmit::CHECKSUM_OFFSET);
            std::borrow::Cow::Owned(p)
        }
        None => std::borrow::Cow::Borrowed(packet),
    }
}

impl Inner {
    /// Turns one of the stack's events into wake-ups.
    fn dispatch(&mut self, ev: Event) {
        let conn = match ev {
            Event::Incoming(lid) | Event::Request(lid) => {
                if let Some(l) = self.listeners.get_mut(&lid) {
                    l.wake();
                }
                return;
            }
            Event::Connected(id) | Event::Readable(id) | Event::Writable(id) => id,
            Event::Closed { id, error } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.closed = Some(error);
                }
                id
            }
            Event::SoftError { id, error } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.soft_error = Some(error);
                }
                return;
            }
            // Nobody waits for these: a reader of urgent data is woken by
            // `Readable`, and delivery trouble is advice to the IP layer.
            Event::Urgent(_) | Event::DeliveryTrouble(_) => return,
            // A kind of event added to the core later wakes nobody until
            // the driver learns what it means.
            _ => return,
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.wake();
        }
    }

    /// Wakes every waiter (the driver is stopping).
    fn wake_all(&mut self) {
        for c in self.conns.values_mut() {
            c.wake();
        }
        for l in self.listeners.values_mut() {
            l.wake();
        }
    }
}

/// The driver thread's loop.
fn run(shared: &Shared) {
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; MAX_FRAME]).collect();
    let mut lens = [0usize; BATCH];
    let mut last_flush = std::time::Instant::now();
    while !shared.stopped() {
        let timeout = {
            let mut g = shared.lock();
            let next = g.stack.poll_timeout();
            g.armed = next;
            let mut wait = next.map(|d| d.saturating_since(shared.now()));
            if g.trace.is_some() || g.pcap.is_some() {
                // The contract wants the trace flushed at least once a second.
                wait = Some(wait.map_or(Duration::from_secs(1), |w| w.min(Duration::from_secs(1))));
            }
            wait
        };
        let (tun_ready, woken) = wait(shared, timeout);
        if woken {
            let mut v = [0u8; 8];
            // SAFETY: reads 8 bytes into a live buffer from our eventfd.
            let _ = unsafe { libc::read(shared.wake.as_raw_fd(), v.as_mut_ptr().cast(), 8) };
        }
        let mut n = 0;
        if tun_ready {
            while n < BATCH {
                match shared.tun.recv(&mut bufs[n]) {
                    Ok(len) => {
                        lens[n] = len;
                        n += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let mut g = shared.lock();
        let now = shared.now();
        if n > 1 {
            g.stats.rx_batches += 1;
        }
        // The packets for the stack are handed in together, so that it can
        // fetch their connections from memory ahead of them.
        let mut for_stack: [(&[u8], RxChecksum); BATCH] = [(&[], RxChecksum::Unverified); BATCH];
        let mut k = 0;
        for (buf, &len) in bufs.iter_mut().zip(&lens[..n]) {
            let frame = &mut buf[..len];
            let (packet, csum) = if !shared.tun.offload() {
                (&*frame, RxChecksum::Unverified)
            } else {
                if frame.len() < VNET_HDR_LEN {
                    g.stats.rx_packets += 1;
                    g.stats.dropped_bad_vnet_hdr += 1;
                    continue;
                }
                let (head, packet) = frame.split_at_mut(VNET_HDR_LEN);
                let Some((hdr, _)) = VirtioNetHdr::parse(head) else {
                    continue;
                };
                match hdr.check_rx(packet) {
                    Ok(csum) => {
                        if hdr.gso_type != VirtioNetHdr::GSO_NONE {
                            g.stats.rx_super_segments += 1;
                        }
                        (&*packet, csum)
                    }
                    Err(_) => {
                        g.stats.rx_packets += 1;
                        g.stats.dropped_bad_vnet_hdr += 1;
                        continue;
                    }
                }
            };
            if input(shared, &mut g, now, packet, csum) {
                if let Some(slot) = for_stack.get_mut(k) {
                    *slot = (packet, csum);
                    k += 1;
                }
            }
        }
        g.stack.handle_packets_offloaded(now, &for_stack[..k]);
        if g.stack.poll_timeout().is_some_and(|d| d <= now) {
            g.stack.handle_timeout(now);
        }
        shared.drain(&mut g);
        if last_flush.elapsed() >= Duration::from_secs(1) {
            last_flush = std::time::Instant::now();
            if let Some(w) = g.trace.as_mut() {
                let _ = w.flush();
            }
            if let Some(w) = g.pcap.as_mut() {
                let _ = w.flush();
            }
        }
    }
    shared.lock().wake_all();
}

/// One arriving packet: answered, dropped and counted, or (true) for the
/// stack, which the caller hands it to. `csum` says what the device did
/// about its TCP checksum.
fn input(shared: &Shared, g: &mut Inner, now: Instant, packet: &[u8], csum: RxChecksum) -> bool {
    g.stats.rx_packets += 1;
    match classify(packet) {
        Classified::ForStack { dst } if g.stack.accepts_destination(dst) => {
            if let Some(w) = g.pcap.as_mut() {
                let partial = (csum == RxChecksum::Partial).then(|| packet.len() - tcp_len(packet));
                let _ = w.write_packet(now, &finished(packet, partial));
            }
            return true;
        }
        Classified::EchoRequest { dst } if g.stack.addresses().contains(&dst) => {
            let ttl = g.stack.config().ttl;
            if let Some(reply) = echo_reply(packet, ttl) {
                g.stats.echo_replies += 1;
                match shared.tun.send(&reply) {
                    Ok(_) => g.stats.tx_packets += 1,
                    Err(_) => g.stats.tx_errors += 1,
                }
            }
        }
        Classified::ForStack { .. } | Classified::EchoRequest { .. } => {
            g.stats.dropped_not_ours += 1
        }
        Classified::Other => g.stats.dropped_protocol += 1,
    }
    false
}

/// Length of the TCP segment of a packet that has one (0 otherwise).
fn tcp_len(packet: &[u8]) -> usize {
    match synack_wire::parse_packet_unverified(packet) {
        Ok((seg, _)) => seg.tcp.header_len() + seg.payload.len(),
        Err(_) => 0,
    }
}

/// Waits for the device, the wake-up or the timeout. Returns (device
/// readable, woken up).
fn wait(shared: &Shared, timeout: Option<Duration>) -> (bool, bool) {
    let mut fds = [
        libc::pollfd {
            fd: shared.tun.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: shared.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` and `ts` outlive the call; a null timeout blocks.
    let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, std::ptr::null()) };
    if rc <= 0 {
        return (false, false);
    }
    (fds[0].revents != 0, fds[1].revents != 0)
}

/// Maps a core error to the `std::io::Error` a socket user expects.
pub fn io_error(e: Error) -> io::Error {
    use io::ErrorKind as K;
    let kind = match e {
        Error::WouldBlock => K::WouldBlock,
        Error::Refused => K::ConnectionRefused,
        Error::Reset => K::ConnectionReset,
        Error::TimedOut => K::TimedOut,
        Error::Closing => K::BrokenPipe,
        Error::InvalidHandle | Error::InvalidState => K::NotConnected,
        Error::AddrInUse => K::AddrInUse,
        Error::AddrNotAvailable | Error::NoPorts => K::AddrNotAvailable,
        Error::InvalidAddress => K::InvalidInput,
        Error::Aborted => K::ConnectionAborted,
        Error::NetworkUnreachable => K::NetworkUnreachable,
        Error::HostUnreachable => K::HostUnreachable,
        // An error added to the core later: `Other` until it gets a kind.
        _ => K::Other,
    };
    io::Error::new(kind, e.as_str())
}
