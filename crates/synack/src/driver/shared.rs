//! What application threads share with the driver thread ([`Shared`]):
//! the lock, the device, the wake-up descriptor; writing out what the stack
//! queued ([`Shared::drain`]); and the guard a socket call holds
//! ([`Locked`]) with what it may wait for ([`Wait`]).

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant as StdInstant;

use synack_core::{ConnId, Instant, ListenerId, Stack, Transmit};

use super::waiters::{ConnWaiters, Inner, ListenerWaiters};
use crate::device::{Capabilities, Device};
use crate::tun::VirtioNetHdr;

/// What application threads share with the driver thread.
pub(super) struct Shared {
    pub(super) inner: Mutex<Inner>,
    pub(super) device: Box<dyn Device>,
    /// What the device said it does, when the driver started.
    pub(super) caps: Capabilities,
    /// The interface's name, for a device that has one.
    pub(super) name: Option<String>,
    pub(super) wake: OwnedFd,
    /// An epoll set holding the device alone: the driver thread polls the
    /// device through it, so that a socket thread taking the lead
    /// (`leader.rs`) can take the device out of it without waking the
    /// driver, and put it back with a wake-up only when a packet waits.
    pub(super) device_set: OwnedFd,
    /// The leader's wake-up eventfd ([`Inner::kick_leader`]).
    pub(super) leader_wake: OwnedFd,
    /// Held while reading the device until the stack's lock is taken (so
    /// that packets reach the stack in the order they were read); holds
    /// the leader's frame buffers (allocated at the first lead).
    pub(super) reading: Mutex<Vec<Vec<u8>>>,
    /// The device hung up: nobody polls it again.
    pub(super) gone: AtomicBool,
    /// Until when (the stack's clock, microseconds) the driver thread
    /// leaves a readable device to the socket thread that just stopped
    /// leading it, which is likely to come back for its next wait
    /// (`leader.rs`, [`super::leader::GRACE`]).
    pub(super) grace_until: AtomicU64,
    pub(super) epoch: std::time::Instant,
    pub(super) stop: AtomicBool,
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
    /// A UDP datagram for the application.
    Datagram,
    /// A raw packet for the application.
    Packet,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stack's clock: microseconds since the driver started.
    pub(super) fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Takes the device-reading order lock (with the leader's buffers).
    pub(super) fn lock_reading(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        self.reading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device hung up.
    pub(super) fn device_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// Marks the device as hung up and takes it out of the driver's set
    /// (where its hang-up would be reported for ever).
    pub(super) fn set_device_gone(&self) {
        self.gone.store(true, Ordering::SeqCst);
        super::leader::device_in_set(self, None);
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Wakes the driver thread.
    pub(super) fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our eventfd.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// After the stack ran: sends what it queued, writes its trace, turns
    /// its events into wake-ups, and wakes the driver thread when the next
    /// deadline moved earlier than the one it sleeps towards.
    pub(super) fn drain(&self, g: &mut Inner) {
        let now = self.now();
        if self.caps.offload {
            while let Some(t) = g.stack.poll_transmit_meta() {
                self.send_offloaded(g, now, &t);
                g.stack.recycle(t.packet);
            }
        }
        while let Some(p) = g.stack.poll_transmit() {
            self.send_packet(g, now, &p);
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

    /// Writes one complete packet (behind an empty virtio header when the
    /// device offloads), captured and counted.
    pub(super) fn send_packet(&self, g: &mut Inner, now: Instant, packet: &[u8]) {
        if let Some(w) = g.pcap.as_mut() {
            let _ = w.write_packet(now, packet);
        }
        let r = if self.caps.offload {
            let h = VirtioNetHdr::default().emit();
            self.device
                .send_vectored(&[IoSlice::new(&h), IoSlice::new(packet)])
        } else {
            self.device.send(packet)
        };
        count_tx(g, r);
    }

    /// Writes a packet from `Stack::poll_transmit_meta` with the virtio
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
        let h = hdr.emit();
        let r = self
            .device
            .send_vectored(&[IoSlice::new(&h), IoSlice::new(&t.packet)]);
        count_tx(g, r);
    }
}

fn count_tx(g: &mut Inner, r: io::Result<()>) {
    match r {
        Ok(()) => g.stats.tx_packets += 1,
        Err(_) => g.stats.tx_errors += 1,
    }
}

/// A copy of `packet` with a partial checksum completed (for captures,
/// which should show what the segments carry).
pub(super) fn finished(packet: &[u8], partial_from: Option<usize>) -> std::borrow::Cow<'_, [u8]> {
    match partial_from {
        Some(start) => {
            let mut p = packet.to_vec();
            let _ = synack_wire::complete_checksum(&mut p, start, Transmit::CHECKSUM_OFFSET);
            std::borrow::Cow::Owned(p)
        }
        None => std::borrow::Cow::Borrowed(packet),
    }
}

/// The stack's lock held by a socket call: the stack, and the driver's
/// wake-up book-keeping that goes with it. Whatever the call made the
/// stack queue is sent by [`Locked::drain`] on the caller's thread.
pub(crate) struct Locked<'a> {
    pub(super) shared: &'a Shared,
    pub(super) g: MutexGuard<'a, Inner>,
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
        self.g.wake_conn(id);
    }

    /// For an async call that cannot finish yet: registers `waker` for
    /// what it waits for and returns `Pending`, or an error when the driver
    /// has stopped (nothing would ever wake it). Under the lock, so no
    /// wake-up is lost between the failed attempt and the registration.
    #[cfg(feature = "tokio")]
    pub(crate) fn register_waker<T>(
        &mut self,
        on: Wait,
        waker: &std::task::Waker,
    ) -> std::task::Poll<io::Result<T>> {
        if self.shared.stopped() {
            return std::task::Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        }
        let slot = match on {
            Wait::Read(id) => self.g.conns.get_mut(&id).map(|c| &mut c.read),
            Wait::Write(id) => self.g.conns.get_mut(&id).map(|c| &mut c.write),
            Wait::Accept(id) => self.g.listeners.get_mut(&id).map(|l| &mut l.accept),
            Wait::Datagram => {
                self.g.delivery.datagrams.register(waker);
                None
            }
            Wait::Packet => {
                self.g.delivery.packets.register(waker);
                None
            }
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
            Wait::Datagram => Some(g.delivery.datagrams.cond.clone()),
            Wait::Packet => Some(g.delivery.packets.cond.clone()),
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
        // With nobody leading the device, this thread leads it: it polls
        // the device itself and runs the stack on what arrives, so that a
        // reply is made on the thread that waited for the request, with no
        // hand-off through the driver thread (see `leader.rs`).
        if matches!(on, Wait::Read(_) | Wait::Write(_) | Wait::Accept(_))
            && g.leader.is_none()
            && !shared.device_gone()
        {
            let g = super::leader::lead(shared, g, on, deadline, on_timeout)?;
            return Ok(Locked { shared, g });
        }
        let mut g = g;
        g.sleeping(on, true);
        let mut g = match deadline {
            None => cond.wait(g).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(StdInstant::now());
                if left.is_zero() {
                    g.sleeping(on, false);
                    return Err(io::Error::new(on_timeout, "timed out"));
                }
                cond.wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
        g.sleeping(on, false);
        Ok(Locked { shared, g })
    }
}
