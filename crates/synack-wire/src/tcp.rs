//! The TCP header as a plain value (RFC 9293 §3.1).

use crate::{TcpFlags, TcpOptions, WireError};

/// Length of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;

/// Byte offset of the checksum field in the TCP header.
pub(crate) const CHECKSUM_OFFSET: usize = 16;

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

impl TcpRepr {
    /// Parses a TCP segment (header and payload) and returns the header with
    /// the payload. Does **not** verify the checksum, which needs the IP
    /// addresses: [`crate::parse_packet`] does that first.
    ///
    /// Fails with [`WireError::Truncated`] below 20 bytes,
    /// [`WireError::BadDataOffset`] when the data offset is below 5 or past
    /// the end of `segment`, and [`WireError::BadOptionLength`] for a
    /// malformed option (see [`TcpOptions::parse`]). The four reserved bits
    /// (and the AE bit) are ignored.
    #[inline]
    pub fn parse(segment: &[u8]) -> Result<(TcpRepr, &[u8]), WireError> {
        let mut repr = TcpRepr::default();
        let header_len = repr.parse_into(segment)?;
        Ok((repr, &segment[header_len..]))
    }

    /// [`TcpRepr::parse`] into `self`, which must hold `TcpRepr::default()`
    /// (every field is written where it will be used, not built elsewhere
    /// and copied); returns the header's length, at most `segment.len()`.
    #[inline]
    pub(crate) fn parse_into(&mut self, segment: &[u8]) -> Result<usize, WireError> {
        let fixed = segment.get(..TCP_HEADER_LEN).ok_or(WireError::Truncated)?;
        let header_len = usize::from(fixed[12] >> 4) * 4;
        if header_len < TCP_HEADER_LEN || header_len > segment.len() {
            return Err(WireError::BadDataOffset);
        }
        self.options
            .parse_into(&segment[TCP_HEADER_LEN..header_len])?;
        self.src_port = u16::from_be_bytes([fixed[0], fixed[1]]);
        self.dst_port = u16::from_be_bytes([fixed[2], fixed[3]]);
        self.seq = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        self.ack = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
        self.flags = TcpFlags(fixed[13]);
        self.window = u16::from_be_bytes([fixed[14], fixed[15]]);
        self.urgent = u16::from_be_bytes([fixed[18], fixed[19]]);
        Ok(header_len)
    }

    /// Length of the header [`TcpRepr::emit`] writes: 20 plus the options,
    /// a multiple of 4, at most 60.
    pub fn header_len(&self) -> usize {
        TCP_HEADER_LEN + self.options.emitted_len()
    }

    /// Writes the header, options included, with a zero checksum field, and
    /// returns its length ([`TcpRepr::header_len`]). [`crate::emit_packet`]
    /// fills in the checksum once the payload is in place. Fails with
    /// [`WireError::BufferTooSmall`] when `buf` is shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header_len = self.header_len();
        let out = buf.get_mut(..header_len).ok_or(WireError::BufferTooSmall)?;
        out[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        out[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        out[4..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..12].copy_from_slice(&self.ack.to_be_bytes());
        // header_len is at most 60, so the data offset fits in four bits.
        out[12] = ((header_len / 4) as u8) << 4;
        out[13] = self.flags.0;
        out[14..16].copy_from_slice(&self.window.to_be_bytes());
        out[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&[0, 0]);
        out[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        self.options.emit(&mut out[TCP_HEADER_LEN..])?;
        Ok(header_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> TcpRepr {
        TcpRepr {
            src_port: 49152,
            dst_port: 7,
            seq: 0x0102_0304,
            ack: 0xfffe_fdfc,
            flags: TcpFlags::SYN | TcpFlags::ACK | TcpFlags::CWR,
            window: 65535,
            urgent: 0x1234,
            options: TcpOptions {
                mss: Some(1400),
                window_scale: Some(14),
                ..TcpOptions::default()
            },
        }
    }

    #[test]
    fn header_round_trip() {
        let mut buf = [0x55u8; 64];
        let n = repr().emit(&mut buf).unwrap();
        assert_eq!(n, 28);
        assert_eq!(buf[12], 7 << 4);
        assert_eq!(&buf[16..18], &[0, 0]);
        buf[n] = 0x99;
        let (parsed, payload) = TcpRepr::parse(&buf[..n + 1]).unwrap();
        assert_eq!(parsed, repr());
        assert_eq!(payload, &[0x99]);
    }

    #[test]
    fn short_header_is_truncated() {
        let mut buf = [0u8; 20];
        TcpRepr::default().emit(&mut buf).unwrap();
        assert_eq!(TcpRepr::parse(&buf[..19]), Err(WireError::Truncated));
        assert_eq!(TcpRepr::parse(&[]), Err(WireError::Truncated));
    }

    #[test]
    fn data_offset_below_five() {
        let mut buf = [0u8; 40];
        TcpRepr::default().emit(&mut buf).unwrap();
        for doff in 0..5u8 {
            buf[12] = doff << 4;
            assert_eq!(TcpRepr::parse(&buf), Err(WireError::BadDataOffset));
        }
    }

    #[test]
    fn data_offset_past_end() {
        let mut buf = [1u8; 40];
        TcpRepr::default().emit(&mut buf).unwrap();
        buf[12] = 11 << 4;
        assert_eq!(TcpRepr::parse(&buf), Err(WireError::BadDataOffset));
        buf[12] = 10 << 4;
        assert!(TcpRepr::parse(&buf).is_ok());
    }

    #[test]
    fn reserved_bits_ignored() {
        let mut buf = [0u8; 20];
        TcpRepr::default().emit(&mut buf).unwrap();
        buf[12] |= 0x0f;
        assert_eq!(TcpRepr::parse(&buf).unwrap().0, TcpRepr::default());
    }

    #[test]
    fn emit_into_short_buffer() {
        let mut buf = [0u8; 27];
        assert_eq!(repr().emit(&mut buf), Err(WireError::BufferTooSmall));
    }
}
