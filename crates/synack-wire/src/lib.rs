//! Wire formats for synack: IPv4, IPv6 and TCP headers and options.
//!
//! Everything here is `no_std` and allocation-free. Parsers check every length
//! before they read and return a [`WireError`] for anything malformed; they
//! never panic and never loop without bound. Builders write into a caller's
//! buffer and compute checksums over the IPv4 or IPv6 pseudo-header.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checksum;
mod error;
mod flags;
mod ip;
mod options;
mod packet;
mod tcp;

pub use checksum::{internet_checksum, pseudo_header_sum};
pub use error::WireError;
pub use flags::TcpFlags;
pub use options::{SackBlock, TcpOptions, MAX_SACK_BLOCKS};
pub use packet::{emit_packet, packet_len, parse_packet, peek_tuple, Segment};
pub use tcp::{TcpRepr, TCP_HEADER_LEN};

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
