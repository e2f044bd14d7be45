//! IPv4 and IPv6 headers: bounds-checked parsing and emission.
//!
//! These are the IP-layer building blocks of [`crate::parse_packet`] and
//! [`crate::emit_packet`]; they know nothing about TCP. IPv4 options are
//! skipped and IPv6 extension headers walked, never interpreted (MUST-50).

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::{self, internet_checksum};
use crate::{WireError, IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// IPv6 Hop-by-Hop Options extension header (RFC 8200 §4.3).
pub const IPV6_HOP_BY_HOP: u8 = 0;
/// IPv6 Routing extension header (RFC 8200 §4.4).
pub const IPV6_ROUTING: u8 = 43;
/// IPv6 Fragment extension header (RFC 8200 §4.5).
pub const IPV6_FRAGMENT: u8 = 44;
/// IPv6 Destination Options extension header (RFC 8200 §4.6).
pub const IPV6_DESTINATION_OPTIONS: u8 = 60;
/// The most IPv6 extension headers [`ipv6_upper_layer`] walks before giving up.
pub const MAX_IPV6_EXTENSION_HEADERS: usize = 8;

/// The IPv4 "Don't Fragment" bit in the flags/fragment-offset word.
const IPV4_DF: u16 = 0x4000;
/// The IPv4 "More Fragments" bit in the flags/fragment-offset word.
const IPV4_MF: u16 = 0x2000;
/// The fragment offset field (in 8-byte units) of that word.
const IPV4_OFFSET_MASK: u16 = 0x1fff;

/// The fields of an IPv4 header (RFC 791 §3.1) that synack reads or writes.
/// Options are skipped when parsing and never emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Type of service (DSCP and ECN bits).
    pub tos: u8,
    /// Time to live.
    pub ttl: u8,
    /// Upper-layer protocol number (6 for TCP).
    pub protocol: u8,
    /// Identification.
    pub ident: u16,
    /// The Don't Fragment flag.
    pub dont_fragment: bool,
    /// The More Fragments flag.
    pub more_fragments: bool,
    /// Fragment offset, in units of 8 bytes (13 bits).
    pub frag_offset: u16,
}

impl Ipv4Header {
    /// The header this crate sends: no fragmentation (DF set, identification
    /// 0, as RFC 6864 allows for atomic datagrams), the given protocol.
    pub fn unfragmented(src: Ipv4Addr, dst: Ipv4Addr, tos: u8, ttl: u8, protocol: u8) -> Self {
        Ipv4Header {
            src,
            dst,
            tos,
            ttl,
            protocol,
            ident: 0,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
        }
    }

    /// Parses and verifies an IPv4 header and returns it with the payload.
    ///
    /// Checks the version, IHL (at least 5, within the buffer), the total
    /// length (at least the header, at most the buffer; bytes past it are
    /// link-layer padding and are dropped from the payload) and the header
    /// checksum. Options are skipped. Fragments and protocols are reported,
    /// not rejected: see [`Ipv4Header::is_fragment`].
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<(Ipv4Header, &[u8]), WireError> {
        let fixed = buf.get(..IPV4_HEADER_LEN).ok_or(WireError::Truncated)?;
        if fixed[0] >> 4 != 4 {
            return Err(WireError::BadIpVersion);
        }
        let header_len = usize::from(fixed[0] & 0x0f) * 4;
        if header_len < IPV4_HEADER_LEN || header_len > buf.len() {
            return Err(WireError::BadIpHeaderLength);
        }
        let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if total_len < header_len || total_len > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        let header = &buf[..header_len];
        if internet_checksum(0, header) != 0 {
            return Err(WireError::BadIpChecksum);
        }
        let frag = u16::from_be_bytes([fixed[6], fixed[7]]);
        let repr = Ipv4Header {
            src: ipv4_at(fixed, 12),
            dst: ipv4_at(fixed, 16),
            tos: fixed[1],
            ttl: fixed[8],
            protocol: fixed[9],
            ident: u16::from_be_bytes([fixed[4], fixed[5]]),
            dont_fragment: frag & IPV4_DF != 0,
            more_fragments: frag & IPV4_MF != 0,
            frag_offset: frag & IPV4_OFFSET_MASK,
        };
        Ok((repr, &buf[header_len..total_len]))
    }

    /// True when the datagram is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }

    /// Writes a 20-byte header without options, checksum included, for a
    /// payload of `payload_len` bytes. Fails with [`WireError::BufferTooSmall`]
    /// when `buf` is shorter than 20 bytes or the total length would not fit
    /// in 16 bits.
    pub fn emit(&self, buf: &mut [u8], payload_len: usize) -> Result<(), WireError> {
        let total = payload_len
            .checked_add(IPV4_HEADER_LEN)
            .and_then(|t| u16::try_from(t).ok())
            .ok_or(WireError::BufferTooSmall)?;
        let out = buf
            .get_mut(..IPV4_HEADER_LEN)
            .ok_or(WireError::BufferTooSmall)?;
        let mut frag = self.frag_offset & IPV4_OFFSET_MASK;
        if self.dont_fragment {
            frag |= IPV4_DF;
        }
        if self.more_fragments {
            frag |= IPV4_MF;
        }
        out[0] = 0x45;
        out[1] = self.tos;
        out[2..4].copy_from_slice(&total.to_be_bytes());
        out[4..6].copy_from_slice(&self.ident.to_be_bytes());
        out[6..8].copy_from_slice(&frag.to_be_bytes());
        out[8] = self.ttl;
        out[9] = self.protocol;
        out[10..12].copy_from_slice(&[0, 0]);
        out[12..16].copy_from_slice(&self.src.octets());
        out[16..20].copy_from_slice(&self.dst.octets());
        // The checksum from the field values rather than by reading back
        // the bytes just written (which would stall on store forwarding):
        // the same 16-bit words, in registers.
        let (src, dst) = (self.src.to_bits(), self.dst.to_bits());
        let words = [
            0x4500 | u32::from(self.tos),
            u32::from(total),
            u32::from(self.ident),
            u32::from(frag),
            u32::from(self.ttl) << 8 | u32::from(self.protocol),
            src >> 16,
            src & 0xffff,
            dst >> 16,
            dst & 0xffff,
        ];
        // Nine words of at most 16 bits: no overflow.
        let sum: u32 = words.iter().sum();
        let checksum = checksum::finish(u64::from(sum));
        out[10..12].copy_from_slice(&checksum.to_be_bytes());
        Ok(())
    }
}

/// The fields of the fixed IPv6 header (RFC 8200 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Traffic class (DSCP and ECN bits).
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// The first next-header value: an extension header or the upper layer.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Header {
    /// Parses the fixed IPv6 header and returns it with the payload (the
    /// extension headers and the upper layer; walk them with
    /// [`ipv6_upper_layer`]).
    ///
    /// The payload length must fit in the buffer; bytes past it are
    /// link-layer padding and are dropped. Jumbograms (payload length 0 with
    /// a Jumbo Payload option) are not supported: they parse as empty.
    pub fn parse(buf: &[u8]) -> Result<(Ipv6Header, &[u8]), WireError> {
        let fixed = buf.get(..IPV6_HEADER_LEN).ok_or(WireError::Truncated)?;
        if fixed[0] >> 4 != 6 {
            return Err(WireError::BadIpVersion);
        }
        let payload_len = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
        let payload = buf
            .get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len)
            .ok_or(WireError::BadTotalLength)?;
        let word = u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
        let repr = Ipv6Header {
            src: ipv6_at(fixed, 8),
            dst: ipv6_at(fixed, 24),
            traffic_class: (word >> 20) as u8,
            flow_label: word & 0x000f_ffff,
            next_header: fixed[6],
            hop_limit: fixed[7],
        };
        Ok((repr, payload))
    }

    /// Writes the 40-byte fixed header for `payload_len` bytes of payload
    /// (extension headers included). Fails with [`WireError::BufferTooSmall`]
    /// when `buf` is shorter than 40 bytes or the payload length would not
    /// fit in 16 bits.
    pub fn emit(&self, buf: &mut [u8], payload_len: usize) -> Result<(), WireError> {
        let payload_len = u16::try_from(payload_len).map_err(|_| WireError::BufferTooSmall)?;
        let out = buf
            .get_mut(..IPV6_HEADER_LEN)
            .ok_or(WireError::BufferTooSmall)?;
        let word =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        out[0..4].copy_from_slice(&word.to_be_bytes());
        out[4..6].copy_from_slice(&payload_len.to_be_bytes());
        out[6] = self.next_header;
        out[7] = self.hop_limit;
        out[8..24].copy_from_slice(&self.src.octets());
        out[24..40].copy_from_slice(&self.dst.octets());
        Ok(())
    }
}

/// Walks the IPv6 extension headers at the start of `payload`, whose type is
/// `next_header`, and returns the upper-layer protocol with its bytes.
///
/// Hop-by-Hop Options, Routing and Destination Options headers are skipped
/// by their length byte (MUST-50). A Fragment header is
/// [`WireError::Fragment`], except an atomic fragment (offset 0, M clear),
/// which RFC 6946 requires to be processed as an ordinary packet and is
/// skipped. An extension header that runs past `payload` is
/// [`WireError::Truncated`]; more than [`MAX_IPV6_EXTENSION_HEADERS`]
/// headers is [`WireError::NotTcp`] (the walk gives up before any upper layer).
/// Any other value (TCP, ICMPv6, No Next Header, ESP, ...) ends the walk.
pub fn ipv6_upper_layer(mut next_header: u8, mut payload: &[u8]) -> Result<(u8, &[u8]), WireError> {
    for _ in 0..=MAX_IPV6_EXTENSION_HEADERS {
        let len = match next_header {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DESTINATION_OPTIONS => {
                let ext_len = *payload.get(1).ok_or(WireError::Truncated)?;
                (usize::from(ext_len) + 1) * 8
            }
            IPV6_FRAGMENT => {
                let frag = payload.get(..8).ok_or(WireError::Truncated)?;
                // Offset (13 bits), 2 reserved bits, M.
                if u16::from_be_bytes([frag[2], frag[3]]) & 0xfff9 != 0 {
                    return Err(WireError::Fragment);
                }
                8
            }
            _ => return Ok((next_header, payload)),
        };
        if len > payload.len() {
            return Err(WireError::Truncated);
        }
        next_header = payload[0];
        payload = &payload[len..];
    }
    Err(WireError::NotTcp)
}

/// The IPv4 address at `at..at + 4`; the caller has checked the bounds.
fn ipv4_at(buf: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3])
}

/// The IPv6 address at `at..at + 16`; the caller has checked the bounds.
fn ipv6_at(buf: &[u8], at: usize) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&buf[at..at + 16]);
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_header() -> Ipv4Header {
        Ipv4Header {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            tos: 0xb8,
            ttl: 64,
            protocol: 6,
            ident: 0x1234,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
        }
    }

    fn v6_header() -> Ipv6Header {
        Ipv6Header {
            src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            traffic_class: 0xa5,
            flow_label: 0x0f_edcb,
            next_header: 6,
            hop_limit: 255,
        }
    }

    #[test]
    fn ipv4_round_trip() {
        let mut buf = [0u8; 28];
        let h = v4_header();
        h.emit(&mut buf, 8).unwrap();
        assert_eq!(internet_checksum(0, &buf[..20]), 0);
        let (parsed, payload) = Ipv4Header::parse(&buf).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(payload.len(), 8);
        assert!(!parsed.is_fragment());
    }

    #[test]
    fn ipv4_fragment_fields() {
        let mut buf = [0u8; 28];
        let h = Ipv4Header {
            more_fragments: true,
            frag_offset: 0x1fff,
            dont_fragment: false,
            ..v4_header()
        };
        h.emit(&mut buf, 8).unwrap();
        let (parsed, _) = Ipv4Header::parse(&buf).unwrap();
        assert_eq!(parsed, h);
        assert!(parsed.is_fragment());
    }

    #[test]
    fn ipv4_emit_limits() {
        let mut small = [0u8; 19];
        assert_eq!(
            v4_header().emit(&mut small, 0),
            Err(WireError::BufferTooSmall)
        );
        let mut buf = [0u8; 20];
        assert_eq!(
            v4_header().emit(&mut buf, 65_516),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(v4_header().emit(&mut buf, 65_515), Ok(()));
    }

    #[test]
    fn ipv4_trailing_padding_is_dropped() {
        let mut buf = [0xeeu8; 60];
        v4_header().emit(&mut buf, 6).unwrap();
        let (_, payload) = Ipv4Header::parse(&buf).unwrap();
        assert_eq!(payload.len(), 6);
    }

    #[test]
    fn ipv6_round_trip() {
        let mut buf = [0u8; 48];
        let h = v6_header();
        h.emit(&mut buf, 8).unwrap();
        let (parsed, payload) = Ipv6Header::parse(&buf).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(payload.len(), 8);
    }

    #[test]
    fn ipv6_payload_length_past_buffer() {
        let mut buf = [0u8; 48];
        v6_header().emit(&mut buf, 9).unwrap();
        assert_eq!(Ipv6Header::parse(&buf), Err(WireError::BadTotalLength));
        assert_eq!(Ipv6Header::parse(&buf[..39]), Err(WireError::Truncated));
    }

    #[test]
    fn extension_walk() {
        // Hop-by-hop (8 bytes) -> destination options (16 bytes) -> TCP.
        let mut p = [0u8; 28];
        p[0] = IPV6_DESTINATION_OPTIONS;
        p[1] = 0;
        p[8] = 6;
        p[9] = 1;
        let (proto, rest) = ipv6_upper_layer(IPV6_HOP_BY_HOP, &p).unwrap();
        assert_eq!(proto, 6);
        assert_eq!(rest.len(), 4);
        // The same walk cut short.
        assert_eq!(
            ipv6_upper_layer(IPV6_HOP_BY_HOP, &p[..20]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            ipv6_upper_layer(IPV6_HOP_BY_HOP, &p[..1]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            ipv6_upper_layer(IPV6_ROUTING, &[]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn extension_walk_fragments() {
        let mut frag = [6u8, 0, 0, 0, 0, 0, 0, 1, 0xaa];
        // Atomic fragment: skipped.
        assert_eq!(ipv6_upper_layer(IPV6_FRAGMENT, &frag), Ok((6, &frag[8..])));
        // M set.
        frag[3] = 1;
        assert_eq!(
            ipv6_upper_layer(IPV6_FRAGMENT, &frag),
            Err(WireError::Fragment)
        );
        // Non-zero offset.
        frag[3] = 0x08;
        assert_eq!(
            ipv6_upper_layer(IPV6_FRAGMENT, &frag),
            Err(WireError::Fragment)
        );
        assert_eq!(
            ipv6_upper_layer(IPV6_FRAGMENT, &frag[..7]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn extension_walk_is_bounded() {
        // A long chain of 8-byte destination-options headers.
        let mut p = [0u8; 8 * 32];
        for h in p.chunks_mut(8) {
            h[0] = IPV6_DESTINATION_OPTIONS;
        }
        assert_eq!(
            ipv6_upper_layer(IPV6_DESTINATION_OPTIONS, &p),
            Err(WireError::NotTcp)
        );
        // Exactly the maximum is still walked.
        let mut p = [0u8; 8 * MAX_IPV6_EXTENSION_HEADERS];
        for h in p.chunks_mut(8) {
            h[0] = IPV6_DESTINATION_OPTIONS;
        }
        p[8 * (MAX_IPV6_EXTENSION_HEADERS - 1)] = 6;
        assert_eq!(ipv6_upper_layer(IPV6_HOP_BY_HOP, &p), Ok((6, &[][..])));
    }

    #[test]
    fn other_protocols_end_the_walk() {
        assert_eq!(ipv6_upper_layer(58, &[1, 2]), Ok((58, &[1u8, 2][..])));
        assert_eq!(ipv6_upper_layer(59, &[]), Ok((59, &[][..])));
    }
}
