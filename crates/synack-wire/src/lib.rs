//! Wire formats for synack: IPv4, IPv6 and TCP headers and options.
//!
//! Everything here is `no_std` and allocation-free. Parsers check every length
//! before they read and return a [`WireError`] for anything malformed; they
//! never panic and never loop without bound. Builders write into a caller's
//! buffer and compute checksums over the IPv4 or IPv6 pseudo-header.
//!
//! The entry points are [`parse_packet`] and [`emit_packet`] for whole IP
//! packets carrying TCP ([`HeaderTemplate`] emits the same packets from a
//! connection's prebuilt header, [`parse_packet_unverified_into`] parses in
//! place and leaves the payload's checksum to the caller's copy),
//! [`peek_tuple`] to name the connection of a packet that did not parse,
//! and [`parse_icmp_error`] / [`emit_icmp_error`] for the ICMP and ICMPv6
//! errors that quote a TCP segment, and [`parse_udp_packet`] /
//! [`emit_udp_packet`] for UDP datagrams (which synack hands to the
//! application rather than running itself). The layers they are made
//! of ([`Ipv4Header`], [`Ipv6Header`], [`ipv6_upper_layer`], [`TcpRepr`],
//! [`TcpOptions`], [`internet_checksum`]) are public too.
#![no_std]
// Only `checksum::x86` (to call the vector code it detected) and `prefetch`
// (a cache hint) may use `unsafe`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod checksum;
mod diffserv;
mod error;
mod flags;
mod gso;
mod icmp;
mod ip;
mod options;
mod packet;
mod prefetch;
mod tcp;
mod template;
mod udp;

pub use checksum::{internet_checksum, pseudo_header_sum};
pub use diffserv::{Dscp, ECN_MASK};
pub use error::WireError;
pub use flags::TcpFlags;
pub use gso::{gso_segment, gso_segment_count};
pub use icmp::{
    emit_icmp_error, icmp_error_len, parse_icmp_error, IcmpError, IcmpKind, ICMP_HEADER_LEN,
    IPPROTO_ICMP, IPPROTO_ICMPV6,
};
pub use ip::{
    ipv6_upper_layer, Ipv4Header, Ipv6Header, IPV6_DESTINATION_OPTIONS, IPV6_FRAGMENT,
    IPV6_HOP_BY_HOP, IPV6_ROUTING, MAX_IPV6_EXTENSION_HEADERS,
};
pub use options::{SackBlock, TcpOptions, MAX_OPTIONS_LEN, MAX_SACK_BLOCKS};
pub use packet::{
    checksum_is_valid, combine_sums, complete_checksum, copy_and_sum, emit_packet,
    emit_packet_parts, emit_packet_with, packet_len, parse_packet, parse_packet_unverified,
    parse_packet_unverified_into, payload_sum, peek_tuple, Segment, TcpChecksum,
};
pub use prefetch::prefetch;
pub use tcp::{TcpRepr, TCP_HEADER_LEN};
pub use template::HeaderTemplate;
pub use udp::{
    emit_udp_packet, parse_udp, parse_udp_packet, udp_packet_len, UdpDatagram, UdpRepr,
    IPPROTO_UDP, UDP_HEADER_LEN,
};

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
