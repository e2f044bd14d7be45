//! ICMP and ICMPv6 error messages that quote a TCP segment (RFC 792,
//! RFC 4443, RFC 9293 §3.9.2.2, RFC 5927): parse, and emit for simulators.
//!
//! Only what TCP acts on is decoded: the kind of error, the quoted
//! connection's addresses and ports, and the quoted sequence number, which a
//! receiver checks against its send window before believing the message
//! (RFC 5927 §4.1). Which errors are soft or hard (MUST-56, SHLD-26) is the
//! TCP engine's decision, not this module's.

use core::net::{IpAddr, SocketAddr};

use crate::checksum::{internet_checksum, pseudo_header_sum_proto};
use crate::ip::{ipv6_upper_layer, Ipv4Header, Ipv6Header};
use crate::packet::peek_tcp;
use crate::{WireError, IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IPv6 next-header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// Length of the ICMP or ICMPv6 header that precedes the quoted packet.
pub const ICMP_HEADER_LEN: usize = 8;

/// How many bytes of the quoted TCP header an error must include: the ports
/// and the sequence number (RFC 792 promises 64 bits).
const QUOTED_TCP_LEN: usize = 8;

/// What an ICMP or ICMPv6 error reports, decoded from its type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    /// Destination Unreachable (ICMPv4 type 3 other than code 4, ICMPv6
    /// type 1), with its code, whose meaning depends on the IP version.
    DestinationUnreachable(u8),
    /// The packet was larger than the path allows: ICMPv4 type 3 code 4
    /// (Fragmentation Needed, RFC 1191) or ICMPv6 type 2 (Packet Too Big),
    /// with the next-hop MTU (0 when the sender did not say).
    PacketTooBig(u32),
    /// ICMPv4 Source Quench (type 4); deprecated (RFC 6633) and to be
    /// ignored by TCP (MUST-55). It has no ICMPv6 form.
    SourceQuench,
    /// Time Exceeded (ICMPv4 type 11, ICMPv6 type 3), with its code.
    TimeExceeded(u8),
    /// Parameter Problem (ICMPv4 type 12, ICMPv6 type 4), with its code.
    ParameterProblem(u8),
}

/// A verified ICMP or ICMPv6 error message that quotes a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// Source of the ICMP message: a router on the path, or the peer.
    pub from: IpAddr,
    /// Destination of the ICMP message: the sender of the quoted segment.
    pub to: IpAddr,
    /// What went wrong.
    pub kind: IcmpKind,
    /// Source address and port of the quoted segment (the local end, when
    /// the segment was one of ours).
    pub quoted_src: SocketAddr,
    /// Destination address and port of the quoted segment.
    pub quoted_dst: SocketAddr,
    /// Sequence number of the quoted segment.
    pub seq: u32,
}

/// Parses an IPv4 packet carrying ICMP or an IPv6 packet carrying ICMPv6
/// and returns the error it reports about a TCP segment.
///
/// The IP header is checked as by [`crate::parse_packet`] (the same errors,
/// fragments included), then the ICMP checksum ([`WireError::BadChecksum`];
/// over the pseudo-header for ICMPv6). [`WireError::NotTcp`] when the packet
/// is not ICMP, the message is not one of the errors in [`IcmpKind`]
/// (echo requests, redirects, neighbour discovery, ...), or the quoted packet
/// is not TCP over the same IP version; [`WireError::Truncated`] when the
/// message or the quote is too short to show the quoted ports and sequence
/// number. The quoted packet's own lengths and checksums are not checked:
/// it is usually cut short.
pub fn parse_icmp_error(buf: &[u8]) -> Result<IcmpError, WireError> {
    let (from, to, v6, message) = match buf.first().map(|b| b >> 4) {
        None => return Err(WireError::Truncated),
        Some(4) => {
            let (ip, payload) = Ipv4Header::parse(buf)?;
            if ip.is_fragment() {
                return Err(WireError::Fragment);
            }
            if ip.protocol != IPPROTO_ICMP {
                return Err(WireError::NotTcp);
            }
            (IpAddr::V4(ip.src), IpAddr::V4(ip.dst), false, payload)
        }
        Some(6) => {
            let (ip, payload) = Ipv6Header::parse(buf)?;
            let (protocol, message) = ipv6_upper_layer(ip.next_header, payload)?;
            if protocol != IPPROTO_ICMPV6 {
                return Err(WireError::NotTcp);
            }
            (IpAddr::V6(ip.src), IpAddr::V6(ip.dst), true, message)
        }
        Some(_) => return Err(WireError::BadIpVersion),
    };
    let header = message.get(..ICMP_HEADER_LEN).ok_or(WireError::Truncated)?;
    let initial = if v6 {
        pseudo_header_sum_proto(from, to, IPPROTO_ICMPV6, message.len())
    } else {
        0
    };
    if internet_checksum(initial, message) != 0 {
        return Err(WireError::BadChecksum);
    }
    let kind = decode_kind(v6, header).ok_or(WireError::NotTcp)?;
    let quote = &message[ICMP_HEADER_LEN..];
    let ip_len = if v6 { IPV6_HEADER_LEN } else { IPV4_HEADER_LEN };
    if quote.len() < ip_len + QUOTED_TCP_LEN {
        return Err(WireError::Truncated);
    }
    let (quoted_src, quoted_dst, tcp) = peek_tcp(quote).ok_or(WireError::NotTcp)?;
    if quoted_src.is_ipv6() != v6 {
        return Err(WireError::NotTcp);
    }
    let tcp = tcp.get(..QUOTED_TCP_LEN).ok_or(WireError::Truncated)?;
    Ok(IcmpError {
        from,
        to,
        kind,
        quoted_src: SocketAddr::new(quoted_src, u16::from_be_bytes([tcp[0], tcp[1]])),
        quoted_dst: SocketAddr::new(quoted_dst, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
    })
}

/// The error an ICMP header (type, code, checksum, 4 more bytes) reports,
/// or `None` for messages that are not errors TCP cares about.
fn decode_kind(v6: bool, header: &[u8]) -> Option<IcmpKind> {
    let (icmp_type, code) = (header[0], header[1]);
    let word = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let kind = match (v6, icmp_type) {
        // Fragmentation Needed: next-hop MTU in the low 16 bits (RFC 1191).
        (false, 3) if code == 4 => IcmpKind::PacketTooBig(word & 0xffff),
        (false, 3) | (true, 1) => IcmpKind::DestinationUnreachable(code),
        (false, 4) => IcmpKind::SourceQuench,
        (false, 11) | (true, 3) => IcmpKind::TimeExceeded(code),
        (false, 12) | (true, 4) => IcmpKind::ParameterProblem(code),
        (true, 2) => IcmpKind::PacketTooBig(word),
        _ => return None,
    };
    Some(kind)
}

/// Number of bytes [`emit_icmp_error`] writes for a quote of `quoted_len`
/// bytes sent from an address of `from`'s family. Saturates instead of
/// overflowing.
pub fn icmp_error_len(from: IpAddr, quoted_len: usize) -> usize {
    let ip_len = match from {
        IpAddr::V4(_) => IPV4_HEADER_LEN,
        IpAddr::V6(_) => IPV6_HEADER_LEN,
    };
    (ip_len + ICMP_HEADER_LEN).saturating_add(quoted_len)
}

/// Writes an ICMP (IPv4) or ICMPv6 (IPv6) error from `from` to `to` that
/// quotes `quoted` (the offending packet, as much of it as the caller wants
/// to include: RFC 792 asks for the IP header and 8 bytes, RFC 4443 for as
/// much as fits in 1280 bytes), and returns its length, [`icmp_error_len`].
///
/// The IP header is as [`crate::emit_packet`] writes it (TOS 0, TTL `ttl`).
/// [`IcmpKind::PacketTooBig`] becomes Fragmentation Needed in ICMPv4, its
/// MTU capped at 65,535, so `DestinationUnreachable(4)` over IPv4 parses
/// back as `PacketTooBig(0)`; a Parameter Problem pointer is written as 0. Fails
/// with [`WireError::AddressFamilyMismatch`] when `from` and `to` differ in
/// family or for [`IcmpKind::SourceQuench`] over IPv6, and with
/// [`WireError::BufferTooSmall`] when `buf` is too short or the packet too
/// long for the IP length field.
pub fn emit_icmp_error(
    buf: &mut [u8],
    from: IpAddr,
    to: IpAddr,
    ttl: u8,
    kind: IcmpKind,
    quoted: &[u8],
) -> Result<usize, WireError> {
    let total = icmp_error_len(from, quoted.len());
    let v6 = match (from, to) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    let (icmp_type, code, word) = encode_kind(v6, kind).ok_or(WireError::AddressFamilyMismatch)?;
    let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
    let message = match (from, to) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let (ip, message) = out.split_at_mut(IPV4_HEADER_LEN);
            let header = Ipv4Header::unfragmented(src, dst, 0, ttl, IPPROTO_ICMP);
            header.emit(ip, message.len())?;
            message
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let (ip, message) = out.split_at_mut(IPV6_HEADER_LEN);
            let header = Ipv6Header {
                src,
                dst,
                traffic_class: 0,
                flow_label: 0,
                next_header: IPPROTO_ICMPV6,
                hop_limit: ttl,
            };
            header.emit(ip, message.len())?;
            message
        }
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    message[0] = icmp_type;
    message[1] = code;
    message[2..4].copy_from_slice(&[0, 0]);
    message[4..8].copy_from_slice(&word.to_be_bytes());
    message[ICMP_HEADER_LEN..].copy_from_slice(quoted);
    let initial = if v6 {
        pseudo_header_sum_proto(from, to, IPPROTO_ICMPV6, message.len())
    } else {
        0
    };
    let checksum = internet_checksum(initial, message);
    message[2..4].copy_from_slice(&checksum.to_be_bytes());
    Ok(total)
}

/// Type, code and the second header word for `kind`, or `None` when the
/// kind has no form in this IP version.
fn encode_kind(v6: bool, kind: IcmpKind) -> Option<(u8, u8, u32)> {
    let encoded = match (v6, kind) {
        (false, IcmpKind::DestinationUnreachable(code)) => (3, code, 0),
        (false, IcmpKind::PacketTooBig(mtu)) => (3, 4, mtu.min(0xffff)),
        (false, IcmpKind::SourceQuench) => (4, 0, 0),
        (false, IcmpKind::TimeExceeded(code)) => (11, code, 0),
        (false, IcmpKind::ParameterProblem(code)) => (12, code, 0),
        (true, IcmpKind::DestinationUnreachable(code)) => (1, code, 0),
        (true, IcmpKind::PacketTooBig(mtu)) => (2, 0, mtu),
        (true, IcmpKind::SourceQuench) => return None,
        (true, IcmpKind::TimeExceeded(code)) => (3, code, 0),
        (true, IcmpKind::ParameterProblem(code)) => (4, code, 0),
    };
    Some(encoded)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec;
    use std::vec::Vec;

    use core::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::{emit_packet, packet_len, TcpFlags, TcpRepr};

    const US4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const PEER4: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 9);
    const ROUTER4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
    const US6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 9, 0, 0, 0, 9);
    const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xfe);

    fn repr() -> TcpRepr {
        TcpRepr {
            src_port: 50_000,
            dst_port: 22,
            seq: 0xcafe_f00d,
            ack: 7,
            flags: TcpFlags::ACK,
            window: 100,
            ..TcpRepr::default()
        }
    }

    /// A segment we sent, to be quoted.
    fn sent(src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut buf = vec![0u8; packet_len(src, &repr(), 100)];
        emit_packet(&mut buf, src, dst, 64, 0, &repr(), &[0x11; 100]).unwrap();
        buf
    }

    fn icmp(from: IpAddr, to: IpAddr, kind: IcmpKind, quoted: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; icmp_error_len(from, quoted.len())];
        let n = emit_icmp_error(&mut buf, from, to, 255, kind, quoted).unwrap();
        assert_eq!(n, buf.len());
        buf
    }

    fn expected(from: IpAddr, us: IpAddr, peer: IpAddr, kind: IcmpKind) -> IcmpError {
        IcmpError {
            from,
            to: us,
            kind,
            quoted_src: SocketAddr::new(us, 50_000),
            quoted_dst: SocketAddr::new(peer, 22),
            seq: 0xcafe_f00d,
        }
    }

    #[test]
    fn icmpv4_round_trip_every_kind() {
        let (us, peer, router) = (US4.into(), PEER4.into(), ROUTER4.into());
        let original = sent(us, peer);
        for kind in [
            IcmpKind::DestinationUnreachable(1),
            IcmpKind::DestinationUnreachable(3),
            IcmpKind::PacketTooBig(1280),
            IcmpKind::SourceQuench,
            IcmpKind::TimeExceeded(0),
            IcmpKind::ParameterProblem(0),
        ] {
            // RFC 792: the IP header and the first 8 bytes of data.
            let packet = icmp(router, us, kind, &original[..28]);
            assert_eq!(
                parse_icmp_error(&packet),
                Ok(expected(router, us, peer, kind))
            );
        }
    }

    #[test]
    fn icmpv6_round_trip_every_kind() {
        let (us, peer, router) = (US6.into(), PEER6.into(), ROUTER6.into());
        let original = sent(us, peer);
        for kind in [
            IcmpKind::DestinationUnreachable(4),
            IcmpKind::PacketTooBig(1280),
            IcmpKind::PacketTooBig(70_000),
            IcmpKind::TimeExceeded(1),
            IcmpKind::ParameterProblem(2),
        ] {
            let packet = icmp(router, us, kind, &original);
            assert_eq!(
                parse_icmp_error(&packet),
                Ok(expected(router, us, peer, kind))
            );
        }
    }

    #[test]
    fn fragmentation_needed_carries_the_mtu() {
        let (us, peer) = (US4.into(), PEER4.into());
        let packet = icmp(
            ROUTER4.into(),
            us,
            IcmpKind::PacketTooBig(1492),
            &sent(us, peer),
        );
        let ip_len = crate::IPV4_HEADER_LEN;
        assert_eq!(&packet[ip_len..ip_len + 2], &[3, 4]);
        assert_eq!(&packet[ip_len + 6..ip_len + 8], &1492u16.to_be_bytes());
        // MTUs that do not fit the 16-bit field are capped.
        let packet = icmp(
            ROUTER4.into(),
            us,
            IcmpKind::PacketTooBig(1 << 20),
            &sent(us, peer),
        );
        assert_eq!(
            parse_icmp_error(&packet).unwrap().kind,
            IcmpKind::PacketTooBig(0xffff)
        );
    }

    #[test]
    fn bad_icmp_checksum() {
        let (us, peer) = (US4.into(), PEER4.into());
        let mut packet = icmp(
            PEER4.into(),
            us,
            IcmpKind::DestinationUnreachable(3),
            &sent(us, peer),
        );
        let last = packet.len() - 1;
        packet[last] ^= 1;
        assert_eq!(parse_icmp_error(&packet), Err(WireError::BadChecksum));
        // ICMPv6 covers the pseudo-header: a different destination fails.
        let (us, peer) = (US6.into(), PEER6.into());
        let mut packet = icmp(
            PEER6.into(),
            us,
            IcmpKind::DestinationUnreachable(4),
            &sent(us, peer),
        );
        packet[39] ^= 1;
        assert_eq!(parse_icmp_error(&packet), Err(WireError::BadChecksum));
    }

    #[test]
    fn quote_too_short() {
        let (us, peer) = (US4.into(), PEER4.into());
        let original = sent(us, peer);
        let packet = icmp(
            ROUTER4.into(),
            us,
            IcmpKind::TimeExceeded(0),
            &original[..27],
        );
        assert_eq!(parse_icmp_error(&packet), Err(WireError::Truncated));
        let packet = icmp(
            ROUTER4.into(),
            us,
            IcmpKind::TimeExceeded(0),
            &original[..19],
        );
        assert_eq!(parse_icmp_error(&packet), Err(WireError::Truncated));
        // IPv4 options push the TCP header beyond the 28 bytes.
        let mut quoted = original[..20].to_vec();
        quoted[0] = 0x46;
        quoted.extend_from_slice(&[1, 1, 1, 0]);
        quoted.extend_from_slice(&original[20..28]);
        let packet = icmp(ROUTER4.into(), us, IcmpKind::TimeExceeded(0), &quoted[..28]);
        assert_eq!(parse_icmp_error(&packet), Err(WireError::Truncated));
        let packet = icmp(ROUTER4.into(), us, IcmpKind::TimeExceeded(0), &quoted);
        assert_eq!(parse_icmp_error(&packet).unwrap().seq, repr().seq);
    }

    #[test]
    fn not_an_error_about_tcp() {
        let (us, peer) = (US4.into(), PEER4.into());
        // An echo request (type 8).
        let mut packet = icmp(peer, us, IcmpKind::SourceQuench, &sent(us, peer));
        packet[20] = 8;
        packet[22..24].copy_from_slice(&[0, 0]);
        let c = internet_checksum(0, &packet[20..]);
        packet[22..24].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_icmp_error(&packet), Err(WireError::NotTcp));
        // A TCP segment is not ICMP.
        assert_eq!(parse_icmp_error(&sent(us, peer)), Err(WireError::NotTcp));
        // ICMPv4 quoting an IPv6 packet.
        let quoted = sent(US6.into(), PEER6.into());
        let packet = icmp(peer, us, IcmpKind::TimeExceeded(0), &quoted);
        assert_eq!(parse_icmp_error(&packet), Err(WireError::NotTcp));
        // A quoted UDP datagram.
        let mut quoted = sent(us, peer);
        quoted[9] = 17;
        let packet = icmp(peer, us, IcmpKind::DestinationUnreachable(3), &quoted);
        assert_eq!(parse_icmp_error(&packet), Err(WireError::NotTcp));
    }

    #[test]
    fn short_message() {
        let (us, peer) = (US4.into(), PEER4.into());
        let packet = icmp(peer, us, IcmpKind::SourceQuench, &[]);
        assert_eq!(
            parse_icmp_error(&packet[..27]),
            Err(WireError::BadTotalLength)
        );
        let mut packet = packet[..27].to_vec();
        packet[3] = 27;
        packet[10..12].copy_from_slice(&[0, 0]);
        let c = internet_checksum(0, &packet[..20]);
        packet[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_icmp_error(&packet), Err(WireError::Truncated));
        assert_eq!(parse_icmp_error(&[]), Err(WireError::Truncated));
        assert_eq!(parse_icmp_error(&[0x10]), Err(WireError::BadIpVersion));
    }

    #[test]
    fn emit_errors() {
        let mut buf = [0u8; 200];
        assert_eq!(
            emit_icmp_error(
                &mut buf,
                US4.into(),
                US6.into(),
                1,
                IcmpKind::SourceQuench,
                &[]
            ),
            Err(WireError::AddressFamilyMismatch)
        );
        assert_eq!(
            emit_icmp_error(
                &mut buf,
                US6.into(),
                PEER6.into(),
                1,
                IcmpKind::SourceQuench,
                &[]
            ),
            Err(WireError::AddressFamilyMismatch)
        );
        assert_eq!(
            emit_icmp_error(
                &mut buf[..27],
                US4.into(),
                PEER4.into(),
                1,
                IcmpKind::SourceQuench,
                &[]
            ),
            Err(WireError::BufferTooSmall)
        );
        let mut big = vec![0u8; 70_000];
        let quoted = vec![0u8; 65_535 - 28 + 1];
        assert_eq!(
            emit_icmp_error(
                &mut big,
                US4.into(),
                PEER4.into(),
                1,
                IcmpKind::SourceQuench,
                &quoted
            ),
            Err(WireError::BufferTooSmall)
        );
    }
}
