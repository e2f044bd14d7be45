//! The synack TCP engine: RFC 9293 in a pure, deterministic core.
//!
//! `no_std` + `alloc`, sans-I/O: the core never reads a clock or touches a
//! device. A driver feeds it packets (`handle_packet`), the time
//! (`handle_timeout`) and the application's calls, and drains what it wants
//! done (`poll_transmit`, `poll_event`, `poll_trace`, `poll_timeout`).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod state;
mod time;
mod trace;

pub use state::State;
pub use time::Instant;
pub use trace::{ConnTuple, SegmentInfo, TraceEvent, TraceKind};
