//! [`channel`]: a device made of two in-memory queues, for any source and
//! sink of packets the application holds (a WireGuard tunnel, a tokio
//! object, a test).
//!
//! Packets the application sends ([`PacketPort::send`]) wait in a bounded
//! queue for the driver; an `eventfd` is readable exactly while that queue
//! holds a packet (it is set and cleared under the queue's lock), which is
//! what the driver sleeps on. Packets the stack sends wait in another
//! bounded queue for [`PacketPort::recv`] (blocking), `try_recv` or
//! `poll_recv` (async).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{Capabilities, Device};

/// Packets each of a channel's queues holds; past that, a packet sent into
/// a full queue is refused (into the stack: `WouldBlock`) or lost (out of
/// it: counted by the driver as a failed write), as on a full NIC ring.
pub const CHANNEL_QUEUE: usize = 1024;

/// The largest MTU a channel takes (an IPv4 or IPv6 packet's length field).
const MAX_MTU: usize = 65_535;

/// A device backed by in-memory queues; the application's end is the
/// [`PacketPort`] [`channel`] returns with it.
#[derive(Debug)]
pub struct ChannelDevice {
    shared: Arc<Shared>,
}

/// The application's end of a [`channel`]: packets into the stack
/// ([`PacketPort::send`]) and out of it ([`PacketPort::recv`],
/// [`PacketPort::try_recv`], [`PacketPort::poll_recv`]). Clones share the
/// same queues (one may send while another receives).
#[derive(Clone, Debug)]
pub struct PacketPort {
    shared: Arc<Shared>,
}

/// A device of MTU `mtu` (at most 65,535) made of in-memory queues, and
/// the application's end of it.
///
/// ```no_run
/// let (device, port) = synack::device::channel(1500);
/// let net = synack::Net::builder_with_device(device)
///     .addr("10.0.0.2".parse().unwrap())
///     .start()?;
/// # let packet_from_the_tunnel = vec![0u8; 0];
/// // Whatever the packets come from:
/// port.send(&packet_from_the_tunnel)?;
/// let reply: Vec<u8> = port.recv()?; // an IP packet the stack sent
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn channel(mtu: usize) -> (ChannelDevice, PacketPort) {
    let shared = Arc::new(Shared {
        mtu: mtu.min(MAX_MTU),
        inbound: Mutex::new(VecDeque::new()),
        ready: eventfd(),
        outbound: Mutex::new(Outbound::default()),
        outbound_cond: Condvar::new(),
    });
    (
        ChannelDevice {
            shared: Arc::clone(&shared),
        },
        PacketPort { shared },
    )
}

/// What the two ends share.
#[derive(Debug)]
struct Shared {
    mtu: usize,
    /// Packets for the stack.
    inbound: Mutex<VecDeque<Vec<u8>>>,
    /// Readable while `inbound` is not empty.
    ready: OwnedFd,
    /// Packets from the stack, and who waits for them.
    outbound: Mutex<Outbound>,
    outbound_cond: Condvar,
}

#[derive(Debug, Default)]
struct Outbound {
    queue: VecDeque<Vec<u8>>,
    wakers: Vec<Waker>,
    /// The device is gone: nothing more will come.
    closed: bool,
}

/// A non-blocking `eventfd`, or, if the kernel refuses one (out of
/// descriptors), the panic of a resource that cannot be had.
fn eventfd() -> OwnedFd {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(
        fd >= 0,
        "eventfd for a channel device: {}",
        io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Sets (`true`) or clears the readiness of the `eventfd`.
    fn signal(&self, ready: bool) {
        let mut v = 1u64.to_ne_bytes();
        // SAFETY: 8 bytes to or from a live buffer on our eventfd; a
        // failure (counter already 0 or saturated) changes nothing we need.
        unsafe {
            if ready {
                libc::write(self.ready.as_raw_fd(), v.as_ptr().cast(), 8);
            } else {
                libc::read(self.ready.as_raw_fd(), v.as_mut_ptr().cast(), 8);
            }
        }
    }
}

impl Device for ChannelDevice {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: self.shared.mtu,
            offload: false,
        }
    }

    fn recv(&self, frame: &mut [u8]) -> io::Result<usize> {
        let mut q = lock(&self.shared.inbound);
        let Some(p) = q.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        if q.is_empty() {
            self.shared.signal(false);
        }
        drop(q);
        let n = p.len().min(frame.len());
        frame[..n].copy_from_slice(&p[..n]);
        Ok(n)
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut out = lock(&self.shared.outbound);
        if out.queue.len() >= CHANNEL_QUEUE {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        out.queue.push_back(frame.to_vec());
        for w in out.wakers.drain(..) {
            w.wake();
        }
        drop(out);
        self.shared.outbound_cond.notify_one();
        Ok(())
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.shared.ready.as_fd()
    }
}

impl Drop for ChannelDevice {
    fn drop(&mut self) {
        let mut out = lock(&self.shared.outbound);
        out.closed = true;
        for w in out.wakers.drain(..) {
            w.wake();
        }
        drop(out);
        self.shared.outbound_cond.notify_all();
    }
}

impl PacketPort {
    /// The device's MTU: the largest packet [`PacketPort::send`] takes.
    pub fn mtu(&self) -> usize {
        self.shared.mtu
    }

    /// Hands one IP packet to the stack. Never blocks: `WouldBlock` when
    /// [`CHANNEL_QUEUE`] packets already wait (the packet is not taken;
    /// dropping it is what a full link does, and TCP recovers),
    /// `InvalidInput` for an empty one or one larger than the MTU,
    /// `BrokenPipe` once the device is gone (the [`crate::Net`] stopped).
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        if packet.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty packet",
            ));
        }
        if packet.len() > self.shared.mtu {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a packet of {} bytes on a device of MTU {}",
                    packet.len(),
                    self.shared.mtu
                ),
            ));
        }
        if self.closed() {
            return Err(gone());
        }
        let mut q = lock(&self.shared.inbound);
        if q.len() >= CHANNEL_QUEUE {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        q.push_back(packet.to_vec());
        if q.len() == 1 {
            self.shared.signal(true);
        }
        Ok(())
    }

    /// Waits for the next IP packet the stack sent. `BrokenPipe` once the
    /// device is gone and every packet it sent was taken.
    pub fn recv(&self) -> io::Result<Vec<u8>> {
        self.recv_until(None)
    }

    /// As [`PacketPort::recv`], waiting at most `timeout` (then `TimedOut`).
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Vec<u8>> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> io::Result<Vec<u8>> {
        let mut out = lock(&self.shared.outbound);
        loop {
            if let Some(p) = out.queue.pop_front() {
                return Ok(p);
            }
            if out.closed {
                return Err(gone());
            }
            out = match deadline {
                None => self
                    .shared
                    .outbound_cond
                    .wait(out)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
                    }
                    self.shared
                        .outbound_cond
                        .wait_timeout(out, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// The next IP packet the stack sent, or `WouldBlock` when none waits
    /// (`BrokenPipe` once the device is gone and drained).
    pub fn try_recv(&self) -> io::Result<Vec<u8>> {
        let mut out = lock(&self.shared.outbound);
        match out.queue.pop_front() {
            Some(p) => Ok(p),
            None if out.closed => Err(gone()),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// [`PacketPort::try_recv`] for an async caller: `Pending` (with the
    /// task's waker kept, woken when the stack sends) instead of
    /// `WouldBlock`. Needs no particular runtime.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<io::Result<Vec<u8>>> {
        let mut out = lock(&self.shared.outbound);
        if let Some(p) = out.queue.pop_front() {
            return Poll::Ready(Ok(p));
        }
        if out.closed {
            return Poll::Ready(Err(gone()));
        }
        if !out.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            out.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// True once the device is gone (the driver stopped or never started).
    pub fn closed(&self) -> bool {
        lock(&self.shared.outbound).closed
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the channel device is gone")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: BorrowedFd<'_>) -> bool {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, no wait.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn the_descriptor_is_readable_while_packets_wait() {
        let (dev, port) = channel(1500);
        let mut buf = [0u8; 2000];
        assert!(!readable(dev.as_fd()));
        assert_eq!(
            dev.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        port.send(&[1, 2, 3]).unwrap();
        port.send(&[4]).unwrap();
        assert!(readable(dev.as_fd()));
        assert_eq!(dev.recv(&mut buf).unwrap(), 3);
        assert!(readable(dev.as_fd()));
        assert_eq!(dev.recv(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], 4);
        assert!(!readable(dev.as_fd()));
    }

    #[test]
    fn queues_are_bounded_and_sizes_checked() {
        let (dev, port) = channel(100);
        assert_eq!(
            port.send(&[0; 101]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            port.send(&[]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        for _ in 0..CHANNEL_QUEUE {
            port.send(&[0; 100]).unwrap();
            dev.send(&[1]).unwrap();
        }
        assert_eq!(
            port.send(&[0]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(
            dev.send(&[1]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(dev.capabilities().mtu, 100);
        assert_eq!(channel(1 << 20).1.mtu(), MAX_MTU);
    }

    #[test]
    fn packets_out_wake_blocking_and_async_receivers_and_end_with_the_device() {
        let (dev, port) = channel(1500);
        assert_eq!(
            port.try_recv().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let p2 = port.clone();
        let t = std::thread::spawn(move || p2.recv());
        std::thread::sleep(Duration::from_millis(20));
        dev.send(&[7, 7]).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), vec![7, 7]);
        assert_eq!(
            port.recv_timeout(Duration::from_millis(10))
                .unwrap_err()
                .kind(),
            io::ErrorKind::TimedOut
        );

        struct Flag(std::sync::atomic::AtomicBool);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        assert!(port.poll_recv(&mut cx).is_pending());
        dev.send(&[9]).unwrap();
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(port.poll_recv(&mut cx), Poll::Ready(Ok(p)) if p == [9]));

        dev.send(&[5]).unwrap();
        drop(dev);
        assert!(port.closed());
        assert_eq!(port.recv().unwrap(), vec![5]);
        assert_eq!(port.recv().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(
            port.send(&[1]).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }
}
