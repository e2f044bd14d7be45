//! The driver thread's loop ([`run`]), and the sorting of what arrives
//! ([`input`]): to the stack, answered, delivered to the application, or
//! dropped and counted.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use synack_core::{Instant, RxChecksum};
use synack_wire::{parse_icmp_error, parse_udp_packet, WireError};

use super::shared::{finished, Shared};
use super::waiters::Inner;
use super::{BATCH, MAX_FRAME};
use crate::datagram::{ip_header_ok, Datagram};
use crate::icmp_echo::{classify, echo_reply, Classified};
use crate::tun::{VirtioNetHdr, VNET_HDR_LEN};

/// The driver thread's loop.
pub(super) fn run(shared: &Shared) {
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; MAX_FRAME]).collect();
    let mut lens = [0usize; BATCH];
    let mut last_flush = std::time::Instant::now();
    // A device that hung up (a descriptor whose other end closed) is not
    // polled again: it would be readable for ever with nothing to read.
    let mut device_gone = false;
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
        let (mut device_events, woken) = wait(shared, timeout, device_gone);
        if device_events != 0 {
            // A socket thread that just led the device is likely back for
            // the packet within the grace: leave it to it.
            let until = shared.grace_until.load(Ordering::SeqCst);
            let now = shared.now().micros();
            if now < until {
                let _ = wait(shared, Some(Duration::from_micros(until - now)), true);
                device_events = 0;
            }
        }
        if woken {
            let mut v = [0u8; 8];
            // SAFETY: reads 8 bytes into a live buffer from our eventfd.
            let _ = unsafe { libc::read(shared.wake.as_raw_fd(), v.as_mut_ptr().cast(), 8) };
        }
        // Device reads are ordered with a leading socket thread's
        // (`leader.rs`): packets reach the stack in the order they were read.
        let order = (device_events != 0).then(|| shared.lock_reading());
        let mut n = 0;
        if order.is_some() {
            n = read_batch(shared, &mut bufs, &mut lens);
            if n == 0 {
                device_gone = device_hung_up(shared);
            }
        }
        let mut g = shared.lock();
        drop(order);
        let now = shared.now();
        process(shared, &mut g, now, &mut bufs, &lens[..n]);
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

/// Reads up to [`BATCH`] frames from the device into `bufs` (their lengths
/// in `lens`) and returns how many, stopping when it runs dry.
pub(super) fn read_batch(shared: &Shared, bufs: &mut [Vec<u8>], lens: &mut [usize]) -> usize {
    let mut n = 0;
    while n < bufs.len().min(lens.len()) {
        match shared.device.recv(&mut bufs[n]) {
            // A zero-length frame is no packet (end of file on a
            // descriptor that has one).
            Ok(0) => break,
            Ok(len) => {
                lens[n] = len;
                n += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    n
}

/// True (and the device taken out of the driver's set) when the device
/// hung up: a descriptor whose other end closed is readable for ever with
/// nothing to read, so it is not polled again.
fn device_hung_up(shared: &Shared) -> bool {
    let mut pfd = libc::pollfd {
        fd: shared.device.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` outlives the call; a zero timeout does not block.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    let hung_up = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    if rc > 0 && pfd.revents & hung_up != 0 && pfd.revents & libc::POLLIN == 0 {
        shared.set_device_gone();
    }
    shared.device_gone()
}

/// Hands the frames read (`lens` of `bufs`) to the stack, and answers or
/// delivers the rest; the caller sends what the stack queued
/// ([`Shared::drain`]). On the driver thread, or on a socket's thread
/// leading the device.
pub(super) fn process(
    shared: &Shared,
    g: &mut Inner,
    now: Instant,
    bufs: &mut [Vec<u8>],
    lens: &[usize],
) {
    if lens.is_empty() {
        return;
    }
    if lens.len() > 1 {
        g.stats.rx_batches += 1;
    }
    // The packets for the stack are handed in together, so that it can
    // fetch their connections from memory ahead of them.
    let mut for_stack: [(&[u8], RxChecksum); BATCH] = [(&[], RxChecksum::Unverified); BATCH];
    let mut k = 0;
    for (buf, &len) in bufs.iter_mut().zip(lens) {
        let Some((packet, csum)) = unwrap_frame(shared, g, &mut buf[..len]) else {
            continue;
        };
        if input(shared, g, now, packet, csum) {
            if let Some(slot) = for_stack.get_mut(k) {
                *slot = (packet, csum);
                k += 1;
            }
        }
    }
    g.stack.handle_packets_offloaded(now, &for_stack[..k]);
}

/// The packet in a frame read from the device, and what the device did
/// about its checksum; `None` (dropped and counted) for a virtio header
/// that does not fit its packet.
fn unwrap_frame<'a>(
    shared: &Shared,
    g: &mut Inner,
    frame: &'a mut [u8],
) -> Option<(&'a [u8], RxChecksum)> {
    if !shared.caps.offload {
        return Some((&*frame, RxChecksum::Unverified));
    }
    if frame.len() < VNET_HDR_LEN {
        g.stats.rx_packets += 1;
        g.stats.dropped_bad_vnet_hdr += 1;
        return None;
    }
    let (head, packet) = frame.split_at_mut(VNET_HDR_LEN);
    let (hdr, _) = VirtioNetHdr::parse(head)?;
    match hdr.check_rx(packet) {
        Ok(csum) => {
            if hdr.gso_type != VirtioNetHdr::GSO_NONE {
                g.stats.rx_super_segments += 1;
            }
            Some((&*packet, csum))
        }
        Err(_) => {
            g.stats.rx_packets += 1;
            g.stats.dropped_bad_vnet_hdr += 1;
            None
        }
    }
}

/// One arriving packet: answered, delivered to the application, dropped
/// and counted, or (true) for the stack, which the caller hands it to.
/// `csum` says what the device did about its TCP checksum.
fn input(shared: &Shared, g: &mut Inner, now: Instant, packet: &[u8], csum: RxChecksum) -> bool {
    g.stats.rx_packets += 1;
    let delivering = g.delivery.on;
    match classify(packet) {
        Classified::Tcp { dst } if g.stack.accepts_destination(dst) => {
            if let Some(w) = g.pcap.as_mut() {
                let partial = (csum == RxChecksum::Partial).then(|| packet.len() - tcp_len(packet));
                let _ = w.write_packet(now, &finished(packet, partial));
            }
            return true;
        }
        // Connections that are not the stack's stay dropped: a transparent
        // listener is what widens the destinations it takes.
        Classified::Tcp { .. } => g.stats.dropped_not_ours += 1,
        // An error about a TCP segment concerns the stack; while the
        // application takes packets, other errors (about its datagrams) go
        // to it.
        Classified::IcmpError { dst }
            if g.stack.accepts_destination(dst)
                && (!delivering || parse_icmp_error(packet).is_ok()) =>
        {
            if let Some(w) = g.pcap.as_mut() {
                let _ = w.write_packet(now, packet);
            }
            return true;
        }
        Classified::EchoRequest { dst } if g.stack.addresses().contains(&dst) => {
            let ttl = g.stack.config().ttl;
            if let Some(reply) = echo_reply(packet, ttl) {
                g.stats.echo_replies += 1;
                shared.send_packet(g, now, &reply);
            }
        }
        Classified::Udp if delivering => deliver_udp(g, now, packet),
        Classified::IcmpError { .. } | Classified::EchoRequest { .. } | Classified::Other
            if delivering =>
        {
            deliver_packet(g, now, packet)
        }
        Classified::IcmpError { .. } | Classified::EchoRequest { .. } => {
            g.stats.dropped_not_ours += 1
        }
        Classified::Udp | Classified::Other => g.stats.dropped_protocol += 1,
    }
    false
}

/// A UDP packet while the application takes datagrams: parsed, checksum
/// verified, queued; a fragment goes whole to the packet queue (datagrams
/// are not reassembled).
fn deliver_udp(g: &mut Inner, now: Instant, packet: &[u8]) {
    match parse_udp_packet(packet) {
        Ok(d) => {
            if let Some(w) = g.pcap.as_mut() {
                let _ = w.write_packet(now, packet);
            }
            let datagram = Datagram {
                src: d.src,
                dst: d.dst,
                payload: d.payload.to_vec(),
            };
            if g.delivery.datagrams.push(datagram) {
                g.stats.datagrams_delivered += 1;
            } else {
                g.stats.dropped_queue_full += 1;
                g.trace_drop(now, "datagram queue full");
            }
        }
        Err(WireError::Fragment) => deliver_packet(g, now, packet),
        Err(e) => {
            g.stats.dropped_bad_udp += 1;
            g.trace_drop(now, e.reason());
        }
    }
}

/// Any other packet while the application takes packets: its IP header
/// checked, then queued whole.
fn deliver_packet(g: &mut Inner, now: Instant, packet: &[u8]) {
    if let Err(why) = ip_header_ok(packet) {
        g.stats.dropped_malformed += 1;
        g.trace_drop(now, why);
        return;
    }
    if let Some(w) = g.pcap.as_mut() {
        let _ = w.write_packet(now, packet);
    }
    if g.delivery.packets.push(packet.to_vec()) {
        g.stats.packets_delivered += 1;
    } else {
        g.stats.dropped_queue_full += 1;
        g.trace_drop(now, "packet queue full");
    }
}

/// Length of the TCP segment of a packet that has one (0 otherwise).
fn tcp_len(packet: &[u8]) -> usize {
    match synack_wire::parse_packet_unverified(packet) {
        Ok((seg, _)) => seg.tcp.header_len() + seg.payload.len(),
        Err(_) => 0,
    }
}

/// Waits for the device (unless it is gone), the wake-up or the timeout.
/// Returns (the device's poll events, woken up).
fn wait(shared: &Shared, timeout: Option<Duration>, device_gone: bool) -> (libc::c_short, bool) {
    // The device is polled through the driver's set, out of which a
    // leading socket thread takes it while it polls the device itself.
    let device = if device_gone || shared.device_gone() {
        -1
    } else {
        shared.device_set.as_raw_fd()
    };
    poll_two(device, shared.wake.as_raw_fd(), timeout)
}

/// `ppoll`s `device` (skipped when negative) and the wake-up descriptor
/// `wake` for input, up to `timeout` (forever when `None`): returns the
/// device's events and whether `wake` was readable. Shared by the driver
/// thread and a leading socket thread, each with its own wake-up.
pub(super) fn poll_two(
    device: std::os::fd::RawFd,
    wake: std::os::fd::RawFd,
    timeout: Option<Duration>,
) -> (libc::c_short, bool) {
    let mut fds = [
        libc::pollfd {
            fd: device,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
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
        return (0, false);
    }
    (fds[0].revents, fds[1].revents != 0)
}
