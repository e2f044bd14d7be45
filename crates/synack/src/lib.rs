//! synack: a user-space TCP stack.
//!
//! This crate is what applications use: the deterministic network simulator
//! ([`sim`]), trace output as JSON Lines ([`trace_json`]) and pcap ([`pcap`]),
//! and on Linux the TUN driver ([`driver`], [`tun`]) with blocking sockets
//! ([`net`]) and, behind the `tokio` feature, async ones (`tokio`).
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
pub use driver::{DriverStats, Net, NetBuilder};
