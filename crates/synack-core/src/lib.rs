//! The synack TCP engine: RFC 9293 in a pure, deterministic core.
//!
//! `no_std` + `alloc`, sans-I/O: the core never reads a clock or touches a
//! device. A driver feeds a [`Stack`] packets ([`Stack::handle_packet`]),
//! the time ([`Stack::handle_timeout`]) and the application's calls
//! ([`Stack::connect`], [`Stack::listen`], [`Stack::send`], ...), and
//! drains what it wants done: [`Stack::poll_transmit`] (IP packets; or
//! [`Stack::poll_transmit_meta`] for a device that offloads checksums and
//! segmentation, with [`Stack::handle_packet_offloaded`] its counterpart),
//! [`Stack::poll_event`] (application events), [`Stack::poll_trace`]
//! (trace events) and [`Stack::poll_timeout`] (when to call
//! `handle_timeout` next). Any `handle_*` or user call can change the
//! answers of every `poll_*`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod cc;
mod config;
mod conn;
mod conns;
mod error;
mod event;
mod isn;
mod outbox;
mod recv_buf;
mod ring;
mod rtt;
mod send_buf;
mod seq;
mod stack;
mod state;
mod syncookie;
mod time;
mod timewait;
mod trace;
mod tuple_index;
mod wheel;

pub use cc::{
    initial_window, AckInfo, CongestionControl, CongestionControlChoice, ControllerFactory, Cubic,
    Reno,
};
pub use config::Config;
pub use error::Error;
pub use event::{ConnId, Event, ListenerId, RequestId};
pub use outbox::{Stats, Transmit};
pub use seq::Seq;
pub use stack::{
    ConnectionRequest, Handshake, Refusal, RxChecksum, Stack, Unreachable, PREFETCH_AHEAD,
};
pub use state::State;
pub use synack_wire::Dscp;
pub use time::Instant;
pub use trace::{ConnTuple, SegmentInfo, TraceEvent, TraceKind};
