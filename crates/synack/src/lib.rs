//! synack: a user-space TCP stack.
//!
//! This crate is what applications use: the deterministic network simulator
//! ([`sim`]), trace output as JSON Lines ([`trace_json`]) and pcap ([`pcap`]),
//! and on Linux the driver ([`driver`]) over a packet device ([`device`]:
//! synack's own TUN device ([`tun`]), a TUN descriptor the application
//! opened, in-memory queues, or the application's own), with blocking
//! sockets ([`net`]), UDP datagrams and other packets for the application
//! ([`datagram`], [`Net::recv_datagram`]) and, behind the `tokio` feature,
//! async ones (`tokio`).
//! The TCP engine itself is `synack-core`, re-exported as [`core`].
#![warn(missing_docs)]
// `unsafe` only where the crate calls the kernel through `libc`: the TUN
// device (`tun`), the host side's addresses (`ifconfig`) and the driver's
// wake-up and wait (`driver`). Each of those modules is let off below, and
// each `unsafe` block in them says why it is sound.
#![deny(unsafe_code)]

pub use synack_core as core;
pub use synack_core::{Handshake, Refusal, RequestId, Unreachable};
pub use synack_wire as wire;

#[cfg(target_os = "linux")]
pub mod datagram;
// SAFETY: `ioctl`s on a TUN descriptor (`TUNGETIFF`, the offload ones) with
// live `repr(C)` arguments, `fcntl` for `O_NONBLOCK`, and the channel's
// `eventfd` (created, read and written 8 bytes at a time), each on
// descriptors the device owns.
#[allow(unsafe_code)]
#[cfg(target_os = "linux")]
pub mod device;
pub mod icmp_echo;
pub mod pcap;
pub mod record;
pub mod scenarios;
pub mod sim;
pub mod trace_json;

// SAFETY: `eventfd`, `read`/`write` of 8 bytes on it and `ppoll`, each on
// descriptors the driver owns and buffers that outlive the call.
#[allow(unsafe_code)]
#[cfg(target_os = "linux")]
pub mod driver;
// SAFETY: `socket` and address `ioctl`s, each passing a `repr(C)` struct of
// the layout the request expects, live for the call.
#[allow(unsafe_code)]
#[cfg(target_os = "linux")]
pub mod ifconfig;
#[cfg(target_os = "linux")]
pub mod net;
#[cfg(all(target_os = "linux", feature = "tokio"))]
pub mod tokio;
// SAFETY: the TUN `ioctl`s (`TUNSETIFF` and the offload ones) on the
// device's open descriptor, with live `repr(C)` arguments, and the name the
// kernel writes back NUL-terminated.
#[allow(unsafe_code)]
#[cfg(target_os = "linux")]
pub mod tun;

#[cfg(target_os = "linux")]
pub use datagram::Datagram;
#[cfg(target_os = "linux")]
pub use driver::{DriverStats, Net, NetBuilder};
