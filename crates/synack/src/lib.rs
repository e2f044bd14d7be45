//! synack: a user-space TCP stack.
//!
//! This crate is what applications use: the deterministic network simulator
//! ([`sim`]), trace output as JSON Lines ([`trace_json`]) and pcap ([`pcap`]).
//! The TCP engine itself is `synack-core`, re-exported as [`core`].
#![warn(missing_docs)]

pub use synack_core as core;
pub use synack_wire as wire;

pub mod pcap;
pub mod record;
pub mod scenarios;
pub mod sim;
pub mod trace_json;
