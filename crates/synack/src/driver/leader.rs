//! A socket thread leading the device: when a blocking call must wait and
//! nobody else leads, the waiting thread polls the device itself and runs
//! the stack on what arrives ([`lead`]), instead of sleeping on a condition
//! variable until the driver thread has done so and woken it.
//!
//! Why: for request/response the hand-off costs more than the work. With
//! the driver thread in between, a request wakes the driver thread, which
//! runs the stack and wakes the application thread; two sleeping threads
//! per request. Led by the waiting thread, a request wakes that thread,
//! which runs the stack, finds its data, and (on its next call) writes the
//! reply: one.
//!
//! How the driver thread keeps out of the way without being woken: it
//! polls the device through an epoll set holding the device alone
//! ([`device_set`]). The leader takes the device out of that set before it
//! polls the device, and puts it back when it stops leading; putting back a
//! device with a packet waiting wakes the driver thread (epoll does), one
//! with nothing waiting does not. The driver thread still runs the
//! timers, and still serves every device while nobody leads. Device reads
//! are ordered by `Shared::reading`, so that packets reach the stack in the
//! order they were read whoever read them. Anyone who wakes what the
//! leader waits for writes the leader's eventfd (`Inner::kick_leader`),
//! since it does not sleep on the condition variable.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::{Duration, Instant as StdInstant};

use super::run::{process, read_batch};
use super::shared::{Shared, Wait};
use super::waiters::Inner;
use super::{BATCH, MAX_FRAME};

/// How long the driver thread leaves a readable device alone after a
/// socket thread stopped leading it. A thread that got its request is
/// likely to be back for the next one within this (it writes the reply and
/// reads again); a packet that arrives meanwhile is left for it rather than
/// taken by the driver thread, which would then have to hand it over (the
/// hand-off the lead is for). At worst a packet for someone else waits
/// this long.
pub(super) const GRACE: Duration = Duration::from_micros(100);

/// A new epoll set holding `device` (readable).
pub(super) fn device_set(device: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before use.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY: both descriptors are open; `ev` outlives the call.
    let rc = unsafe {
        libc::epoll_ctl(
            ep.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            device.as_raw_fd(),
            &mut ev,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ep)
}

/// Puts the device in the driver's set (`Some(true)`: polled for reading;
/// `Some(false)`: held but not polled) or takes it out for good (`None`,
/// for a device that hung up).
pub(super) fn device_in_set(shared: &Shared, polled: Option<bool>) {
    let (op, events) = match polled {
        Some(true) => (libc::EPOLL_CTL_MOD, libc::EPOLLIN as u32),
        Some(false) => (libc::EPOLL_CTL_MOD, 0),
        None => (libc::EPOLL_CTL_DEL, 0),
    };
    let mut ev = libc::epoll_event { events, u64: 0 };
    // SAFETY: both descriptors are open for as long as `shared`; `ev`
    // outlives the call. A failure (the device already taken out) leaves
    // the set as it was, which is what was asked.
    let _ = unsafe {
        libc::epoll_ctl(
            shared.device_set.as_raw_fd(),
            op,
            shared.device.as_fd().as_raw_fd(),
            &mut ev,
        )
    };
}

/// Leads the device for one wait: takes the device from the driver
/// thread, sleeps until a packet arrives, someone wakes what `on` waits
/// for, or `deadline`; runs the stack on the packets; gives the device
/// back. Returns the lock (the caller looks again at what it waits for),
/// or `Err(on_timeout)` when the deadline had passed already.
pub(super) fn lead<'a>(
    shared: &'a Shared,
    mut g: MutexGuard<'a, Inner>,
    on: Wait,
    deadline: Option<StdInstant>,
    on_timeout: io::ErrorKind,
) -> io::Result<MutexGuard<'a, Inner>> {
    let left = match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return Err(io::Error::new(on_timeout, "timed out"));
            }
            Some(left)
        }
        None => None,
    };
    g.leader = Some(on);
    drop(g);
    device_in_set(shared, Some(false));
    let (device_events, kicked) = poll(shared, left);
    if kicked {
        let mut v = [0u8; 8];
        // SAFETY: reads 8 bytes into a live buffer from our eventfd.
        let _ = unsafe { libc::read(shared.leader_wake.as_raw_fd(), v.as_mut_ptr().cast(), 8) };
    }
    let mut g = if device_events & libc::POLLIN != 0 {
        let mut bufs = shared.lock_reading();
        if bufs.is_empty() {
            // Pages are touched only as frames fill them.
            *bufs = (0..BATCH).map(|_| vec![0u8; MAX_FRAME]).collect();
        }
        let mut lens = [0usize; BATCH];
        let n = read_batch(shared, &mut bufs, &mut lens);
        let mut g = shared.lock();
        g.leader_busy = true;
        let now = shared.now();
        process(shared, &mut g, now, &mut bufs, &lens[..n]);
        shared.drain(&mut g);
        g.leader_busy = false;
        g
    } else {
        if device_events & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            shared.set_device_gone();
        }
        shared.lock()
    };
    g.leader = None;
    let until = shared.now() + GRACE;
    shared.grace_until.store(until.micros(), Ordering::SeqCst);
    if !shared.device_gone() {
        device_in_set(shared, Some(true));
    }
    Ok(g)
}

/// Sleeps until the device is readable, the leader is kicked, or `left`
/// passes. Returns (the device's poll events, kicked).
fn poll(shared: &Shared, left: Option<Duration>) -> (libc::c_short, bool) {
    super::run::poll_two(
        shared.device.as_fd().as_raw_fd(),
        shared.leader_wake.as_raw_fd(),
        left,
    )
}
