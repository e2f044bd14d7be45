//! The TCP header as a plain value (RFC 9293 §3.1).

use crate::{TcpFlags, TcpOptions};

/// Length of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;

/// A TCP header, parsed or to be emitted. The checksum and data offset are
/// computed by the builder and checked by the parser, so they are not fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field as on the wire (unscaled, MUST-1: unsigned).
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
}
