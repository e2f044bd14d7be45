//! The driver: one thread that owns a packet [`Device`](crate::device::Device)
//! and drives a [`Stack`](synack_core::Stack).
//!
//! The stack sits behind a mutex shared with the application threads (the
//! sockets of [`crate::net`] and, with the `tokio` feature,
//! `crate::tokio`). The driver thread waits in `ppoll` on three things at
//! once: the device's descriptor, an `eventfd` that application threads
//! write to when they moved the stack's next deadline earlier, and that
//! deadline. When it wakes it reads every packet that is ready (up to
//! [`BATCH`] packets) without holding the lock, then takes the lock once and
//! hands the whole batch to the stack, runs the timers that are due, writes
//! out everything the stack queued, and turns the stack's events into
//! wake-ups (a `Condvar` per connection for blocking callers, `Waker`s for
//! async ones).
//!
//! A user call made on an application thread runs the stack under the same
//! lock and then writes out what the stack queued itself, so that a `write`
//! does not wait for the driver thread to be scheduled.
//!
//! A blocking call that must wait, while no other thread leads the device,
//! leads it (`leader.rs`): it takes the device out of the driver thread's
//! epoll set, polls the device itself and runs the stack on what arrives,
//! so that a request is answered on the thread that waited for it without
//! waking the driver thread. The driver thread keeps the timers and serves
//! the device whenever nobody leads it.
//!
//! The device is synack's own TUN device ([`Net::builder`]) or any other
//! ([`Net::builder_with_device`]): a TUN descriptor the application opened
//! ([`crate::device::FdDevice`]), in-memory queues
//! ([`crate::device::channel`]), anything implementing the trait. It says
//! what it can do ([`crate::device::Capabilities`]). When it offloads, a
//! [`VirtioNetHdr`](crate::tun::VirtioNetHdr) comes with every packet,
//! arriving TCP packets may hold many segments merged with their checksum
//! left partial (handed to the stack with what the device did about their
//! checksums), and the stack is told (`Config::gso_max_size`,
//! `Config::checksum_offload`) that it may send packets of many segments
//! with partial checksums for the kernel to cut up and finish
//! (`Stack::poll_transmit_meta`). A header that does not fit its packet
//! drops the packet, counted in [`DriverStats`].
//!
//! Arriving packets are sorted ([`crate::icmp_echo::classify`], `run.rs`):
//! TCP and ICMP errors addressed to a destination the stack accepts go to
//! the stack (which acts on ICMP errors itself), echo requests to its own
//! addresses are answered here. Everything else (UDP, ICMP for other
//! addresses, other protocols) is dropped and counted in [`DriverStats`],
//! or, once the application asked ([`Net::deliver_datagrams`]), queued for
//! it: UDP datagrams parsed ([`crate::datagram`], [`Net::recv_datagram`]),
//! other packets whole ([`Net::recv_packet`]).
//!
//! The files: `builder.rs` (starting a driver), `net.rs` (the handle),
//! `shared.rs` (what threads share: the lock, writing out, the socket
//! calls' guard), `waiters.rs` (who waits for what; the stack's events
//! turned into wake-ups), `leader.rs` (a socket thread leading the
//! device), `run.rs` (the driver thread's loop and the
//! sorting of arriving packets), `datagrams.rs` (the application's
//! datagram and packet calls).

mod builder;
mod datagrams;
mod leader;
mod net;
mod run;
mod shared;
mod waiters;

pub use builder::NetBuilder;
pub use net::Net;
pub(crate) use shared::{Locked, Wait};

use std::io::{self, Write};

use synack_core::Error;

use crate::tun::VNET_HDR_LEN;

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

/// Counters kept by the driver (the stack keeps its own: `Stack::stats`).
#[derive(Clone, Debug, Default)]
pub struct DriverStats {
    /// Packets read from the device.
    pub rx_packets: u64,
    /// Packets written to the device.
    pub tx_packets: u64,
    /// Reads that returned more than one packet before the device ran dry:
    /// how often batching applied.
    pub rx_batches: u64,
    /// Arriving packets for a destination the stack does not take (TCP),
    /// or, while nothing is delivered to the application, ICMP for one.
    pub dropped_not_ours: u64,
    /// Arriving packets of another protocol (UDP, ICMP informational, ...)
    /// while nothing is delivered to the application.
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
    /// UDP datagrams queued for the application.
    pub datagrams_delivered: u64,
    /// Other packets queued for the application.
    pub packets_delivered: u64,
    /// UDP datagrams dropped for a broken header, length or checksum
    /// (while delivering).
    pub dropped_bad_udp: u64,
    /// Packets dropped for a broken IP header (while delivering).
    pub dropped_malformed: u64,
    /// Datagrams and packets dropped because the application's queue was
    /// full ([`crate::datagram::QUEUE_PACKETS`]).
    pub dropped_queue_full: u64,
    /// UDP datagrams the application sent ([`Net::send_datagram`]).
    pub datagrams_sent: u64,
    /// Packets the application sent ([`Net::send_packet`]).
    pub packets_sent: u64,
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
