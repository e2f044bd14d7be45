//! Whole IP packets carrying TCP: parse and emit.

use core::net::{IpAddr, SocketAddr};

use crate::{TcpRepr, WireError};

/// A parsed IPv4 or IPv6 packet that carries a TCP segment whose lengths and
/// checksums have all been verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 TOS or IPv6 traffic class.
    pub tos: u8,
    /// The TCP header.
    pub tcp: TcpRepr,
    /// The TCP payload.
    pub payload: &'a [u8],
}

/// Parses an IPv4 or IPv6 packet carrying TCP and verifies it.
pub fn parse_packet(buf: &[u8]) -> Result<Segment<'_>, WireError> {
    let _ = buf;
    todo!()
}

/// Reads the (source, destination) socket addresses of a packet without
/// validating lengths or checksums beyond what is needed to read them safely.
pub fn peek_tuple(buf: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let _ = buf;
    todo!()
}

/// Number of bytes [`emit_packet`] will write for these arguments.
pub fn packet_len(src: IpAddr, tcp: &TcpRepr, payload_len: usize) -> usize {
    let _ = (src, tcp, payload_len);
    todo!()
}

/// Writes a complete IP packet into `buf` and returns its length.
pub fn emit_packet(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    tcp: &TcpRepr,
    payload: &[u8],
) -> Result<usize, WireError> {
    let _ = (buf, src, dst, ttl, tos, tcp, payload);
    todo!()
}
