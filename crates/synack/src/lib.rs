//! synack: a user-space TCP stack.
//!
//! This crate is what applications use: the deterministic network simulator
//! ([`sim`]), trace output as JSON Lines ([`trace_json`]) and pcap ([`pcap`]),
//! and on Linux the TUN driver ([`driver`], [`tun`]) with blocking sockets
//! ([`net`]) and, behind the `tokio` feature, async ones (`tokio`).
//! The TCP engine itself is `synack-core`, re-exported as [`core`].
#![warn(missing_docs)]

pub use synack_core as core;
pub use synack_wire as wire;

pub mod icmp_echo;
pub mod pcap;
pub mod record;
pub mod scenarios;
pub mod sim;
pub mod trace_json;

#[cfg(target_os = "linux")]
pub mod driver;
#[cfg(target_os = "linux")]
pub mod ifconfig;
#[cfg(target_os = "linux")]
pub mod net;
#[cfg(all(target_os = "linux", feature = "tokio"))]
pub mod tokio;
#[cfg(target_os = "linux")]
pub mod tun;

#[cfg(target_os = "linux")]
pub use driver::{DriverStats, Net, NetBuilder};
