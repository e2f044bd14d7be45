//! Whole IP packets carrying TCP: parse and emit.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::checksum::{self, internet_checksum, pseudo_header_sum};
use crate::ip::{ipv6_upper_layer, Ipv4Header, Ipv6Header};
use crate::tcp::CHECKSUM_OFFSET;
use crate::{TcpRepr, WireError, IPPROTO_TCP, IPV4_HEADER_LEN, IPV6_HEADER_LEN, TCP_HEADER_LEN};

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
///
/// IPv4: see [`Ipv4Header::parse`] for the header checks; then fragments are
/// [`WireError::Fragment`] and other protocols [`WireError::NotTcp`]. IPv6:
/// see [`Ipv6Header::parse`], then extension headers are walked with
/// [`ipv6_upper_layer`]. Bytes past the IP total or payload length are
/// ignored (link-layer padding). TCP: at least 20 bytes
/// ([`WireError::Truncated`]), then the checksum over the pseudo-header
/// ([`WireError::BadChecksum`], MUST-3), then the data offset and the options
/// ([`TcpRepr::parse`]). Never panics, whatever `buf` holds.
pub fn parse_packet(buf: &[u8]) -> Result<Segment<'_>, WireError> {
    match buf.first().map(|b| b >> 4) {
        None => Err(WireError::Truncated),
        Some(4) => {
            let (ip, segment) = Ipv4Header::parse(buf)?;
            if ip.is_fragment() {
                return Err(WireError::Fragment);
            }
            if ip.protocol != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            parse_tcp(ip.src.into(), ip.dst.into(), ip.ttl, ip.tos, segment)
        }
        Some(6) => {
            let (ip, payload) = Ipv6Header::parse(buf)?;
            let (protocol, segment) = ipv6_upper_layer(ip.next_header, payload)?;
            if protocol != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            let (src, dst) = (ip.src.into(), ip.dst.into());
            parse_tcp(src, dst, ip.hop_limit, ip.traffic_class, segment)
        }
        Some(_) => Err(WireError::BadIpVersion),
    }
}

/// Verifies and parses the TCP segment of a packet from `src` to `dst`.
/// As [`parse_packet`], but leaves the TCP checksum half done: it returns
/// the segment and the partial one's-complement sum of the pseudo-header
/// and the TCP header. The caller must add the payload's sum (for example
/// with [`copy_and_sum`] while copying the payload where it goes) and check
/// the total with [`checksum_is_valid`] before it trusts anything in the
/// segment. Lets a receiver verify and copy the payload in one pass.
#[inline]
pub fn parse_packet_unverified(buf: &[u8]) -> Result<(Segment<'_>, u64), WireError> {
    let mut seg = Segment::EMPTY;
    let partial = parse_packet_unverified_into(buf, &mut seg)?;
    Ok((seg, partial))
}

impl Segment<'static> {
    /// A placeholder to parse into with [`parse_packet_unverified_into`]:
    /// unspecified IPv4 addresses, a default [`TcpRepr`], no payload.
    pub const EMPTY: Segment<'static> = Segment {
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ttl: 0,
        tos: 0,
        tcp: TcpRepr {
            src_port: 0,
            dst_port: 0,
            seq: 0,
            ack: 0,
            flags: crate::TcpFlags(0),
            window: 0,
            urgent: 0,
            options: crate::TcpOptions {
                mss: None,
                window_scale: None,
                sack_permitted: false,
                sack_blocks: [crate::SackBlock { left: 0, right: 0 }; crate::MAX_SACK_BLOCKS],
                sack_count: 0,
                timestamps: None,
            },
        },
        payload: &[],
    };
}

/// [`parse_packet_unverified`] into `seg`, which must hold
/// [`Segment::EMPTY`]: each field is written once, where the caller keeps
/// the segment, instead of the whole segment being built and then copied
/// out through the `Result` (copies of a large value just written field by
/// field read back the narrow stores and stall on store forwarding).
/// Returns the partial sum. On an error `seg` holds nothing meaningful.
#[inline]
pub fn parse_packet_unverified_into<'a>(
    buf: &'a [u8],
    seg: &mut Segment<'a>,
) -> Result<u64, WireError> {
    // `addrs`: the source and destination addresses as they lie in the
    // header, summed from there for the pseudo-header (the same words as
    // from `src` and `dst`, without a round trip through them).
    let (segment, addrs) = match buf.first().map(|b| b >> 4) {
        None => return Err(WireError::Truncated),
        Some(4) => {
            let (ip, segment) = Ipv4Header::parse(buf)?;
            if ip.is_fragment() {
                return Err(WireError::Fragment);
            }
            if ip.protocol != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            let addrs = buf.get(12..IPV4_HEADER_LEN).unwrap_or_default();
            seg.src = ip.src.into();
            seg.dst = ip.dst.into();
            seg.ttl = ip.ttl;
            seg.tos = ip.tos;
            (segment, addrs)
        }
        Some(6) => {
            let (ip, payload) = Ipv6Header::parse(buf)?;
            let (protocol, segment) = ipv6_upper_layer(ip.next_header, payload)?;
            if protocol != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            let addrs = buf.get(8..IPV6_HEADER_LEN).unwrap_or_default();
            seg.src = ip.src.into();
            seg.dst = ip.dst.into();
            seg.ttl = ip.hop_limit;
            seg.tos = ip.traffic_class;
            (segment, addrs)
        }
        Some(_) => return Err(WireError::BadIpVersion),
    };
    if segment.len() < TCP_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let header_len = seg.tcp.parse_into(segment)?;
    // parse_into checked header_len <= segment.len(): these never fail.
    let header = segment.get(..header_len).ok_or(WireError::BadDataOffset)?;
    seg.payload = segment.get(header_len..).ok_or(WireError::BadDataOffset)?;
    let pseudo = checksum::pseudo_header_sum_raw(addrs, IPPROTO_TCP, segment.len());
    Ok(checksum::partial(pseudo, header))
}

/// The one's-complement sum of a payload, for [`checksum_is_valid`].
pub fn payload_sum(data: &[u8]) -> u64 {
    checksum::partial(0, data)
}

/// Copies `src` into `dst` (same length) and returns its sum, in one pass.
pub fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u64 {
    checksum::copy_and_sum(dst, src)
}

/// Adds the sum of a piece of payload that began `odd` bytes into the
/// checksummed data (odd offsets are byte-swapped, RFC 1071 §2).
pub fn combine_sums(acc: u64, part: u64, odd: bool) -> u64 {
    checksum::add_at_offset(acc, part, odd)
}

/// True when a partial sum from [`parse_packet_unverified`] plus the
/// payload's sum checks out (the one's-complement total is all ones).
pub fn checksum_is_valid(total: u64) -> bool {
    checksum::finish(total) == 0
}

fn parse_tcp(
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    segment: &[u8],
) -> Result<Segment<'_>, WireError> {
    if segment.len() < TCP_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    if internet_checksum(pseudo_header_sum(src, dst, segment.len()), segment) != 0 {
        return Err(WireError::BadChecksum);
    }
    let (tcp, payload) = TcpRepr::parse(segment)?;
    Ok(Segment {
        src,
        dst,
        ttl,
        tos,
        tcp,
        payload,
    })
}

/// Reads the (source, destination) socket addresses of a packet without
/// validating lengths or checksums beyond what is needed to read them safely.
///
/// Returns `None` unless the packet is IPv4 or IPv6, carries TCP (after
/// IPv4 options or IPv6 extension headers), is not a non-first fragment,
/// and its bytes reach the two port fields. Works on the truncated packets
/// quoted in ICMP errors too.
pub fn peek_tuple(buf: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let (src, dst, tcp) = peek_tcp(buf)?;
    let ports = tcp.get(..4)?;
    let src_port = u16::from_be_bytes([ports[0], ports[1]]);
    let dst_port = u16::from_be_bytes([ports[2], ports[3]]);
    Some((
        SocketAddr::new(src, src_port),
        SocketAddr::new(dst, dst_port),
    ))
}

/// Finds the addresses and the start of the TCP header of a possibly
/// truncated or corrupt packet, checking only what reading them needs.
pub(crate) fn peek_tcp(buf: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    match buf.first()? >> 4 {
        4 => {
            let fixed = buf.get(..IPV4_HEADER_LEN)?;
            let header_len = usize::from(fixed[0] & 0x0f) * 4;
            let frag_offset = u16::from_be_bytes([fixed[6], fixed[7]]) & 0x1fff;
            if header_len < IPV4_HEADER_LEN || fixed[9] != IPPROTO_TCP || frag_offset != 0 {
                return None;
            }
            let src = Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]);
            let dst = Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]);
            Some((src.into(), dst.into(), buf.get(header_len..)?))
        }
        6 => {
            let fixed = buf.get(..IPV6_HEADER_LEN)?;
            let (protocol, tcp) = ipv6_upper_layer(fixed[6], &buf[IPV6_HEADER_LEN..]).ok()?;
            if protocol != IPPROTO_TCP {
                return None;
            }
            let mut src = [0u8; 16];
            src.copy_from_slice(&fixed[8..24]);
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&fixed[24..40]);
            Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into(), tcp))
        }
        _ => None,
    }
}

/// Number of bytes [`emit_packet`] will write for these arguments.
///
/// The IP header (20 bytes for IPv4, 40 for IPv6, by the family of `src`),
/// [`TcpRepr::header_len`] and the payload. Saturates instead of overflowing.
pub fn packet_len(src: IpAddr, tcp: &TcpRepr, payload_len: usize) -> usize {
    let ip_len = match src {
        IpAddr::V4(_) => IPV4_HEADER_LEN,
        IpAddr::V6(_) => IPV6_HEADER_LEN,
    };
    (ip_len + tcp.header_len()).saturating_add(payload_len)
}

/// Writes a complete IP packet into `buf` and returns its length.
///
/// IPv4: a 20-byte header without options, DF set, identification 0, TOS
/// `tos`, TTL `ttl`, header checksum computed. IPv6: traffic class `tos`,
/// flow label 0, hop limit `ttl`, no extension headers. Then the TCP header
/// (see [`TcpRepr::emit`] and [`crate::TcpOptions::emit`]: SACK blocks that
/// do not fit are dropped, never an error) and the payload, with the TCP
/// checksum over the pseudo-header (MUST-2).
///
/// Fails with [`WireError::AddressFamilyMismatch`] when `src` and `dst` are
/// not of the same family, and with [`WireError::BufferTooSmall`] when `buf`
/// is shorter than [`packet_len`] or the packet would be too long for the
/// IP length field (65,535 bytes). Writes exactly [`packet_len`] bytes.
pub fn emit_packet(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    tcp: &TcpRepr,
    payload: &[u8],
) -> Result<usize, WireError> {
    emit_packet_parts(buf, src, dst, ttl, tos, tcp, &[payload])
}

/// As [`emit_packet`], with the payload given in pieces that are copied
/// one after the other (e.g. the two halves of a ring buffer), so that the
/// caller need not gather them first.
pub fn emit_packet_parts(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    tcp: &TcpRepr,
    parts: &[&[u8]],
) -> Result<usize, WireError> {
    emit_packet_with(buf, src, dst, ttl, tos, tcp, parts, TcpChecksum::Full)
}

/// How [`emit_packet_with`] fills in the TCP checksum field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpChecksum {
    /// The complete checksum (MUST-2): what [`emit_packet`] writes.
    Full,
    /// Only the sum of the pseudo-header (its TCP length the whole segment's),
    /// folded to 16 bits and not complemented: what a device with checksum
    /// offload expects (Linux `CHECKSUM_PARTIAL`, virtio `NEEDS_CSUM`). The
    /// device sums the TCP header and payload on top of it (the field
    /// included) and stores the complement; a device that also segments
    /// (TSO/GSO) adjusts the length part for each segment it cuts.
    /// [`complete_checksum`] does the device's part in software.
    Partial,
}

/// As [`emit_packet_parts`], choosing how the TCP checksum is filled in.
/// With [`TcpChecksum::Partial`] the payload is only copied, not summed.
#[allow(clippy::too_many_arguments)]
pub fn emit_packet_with(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    tcp: &TcpRepr,
    parts: &[&[u8]],
    mode: TcpChecksum,
) -> Result<usize, WireError> {
    let payload_len = parts.iter().map(|p| p.len()).sum();
    let total = packet_len(src, tcp, payload_len);
    let segment = match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let (ip, segment) = split_output(buf, total, IPV4_HEADER_LEN)?;
            let header = Ipv4Header::unfragmented(src, dst, tos, ttl, IPPROTO_TCP);
            header.emit(ip, segment.len())?;
            segment
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let (ip, segment) = split_output(buf, total, IPV6_HEADER_LEN)?;
            let header = Ipv6Header {
                src,
                dst,
                traffic_class: tos,
                flow_label: 0,
                next_header: IPPROTO_TCP,
                hop_limit: ttl,
            };
            header.emit(ip, segment.len())?;
            segment
        }
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    let header_len = tcp.emit(segment)?;
    if mode == TcpChecksum::Partial {
        let mut at = header_len;
        for part in parts {
            segment[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        let pseudo = checksum::fold_sum(u64::from(pseudo_header_sum(src, dst, segment.len())));
        segment[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&pseudo.to_be_bytes());
        return Ok(total);
    }
    // The header (checksum field still zero) plus the pseudo-header, then
    // each payload part summed while it is copied in: one pass per byte.
    let mut acc = checksum::partial(
        u64::from(pseudo_header_sum(src, dst, segment.len())),
        &segment[..header_len],
    );
    let mut at = header_len;
    for part in parts {
        let part_sum = checksum::copy_and_sum(&mut segment[at..at + part.len()], part);
        acc = checksum::add_at_offset(acc, part_sum, at % 2 == 1);
        at += part.len();
    }
    let checksum = checksum::finish(acc);
    segment[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&checksum.to_be_bytes());
    Ok(total)
}

/// Does a checksum-offloading device's part (virtio `NEEDS_CSUM`): sums
/// `packet[start..]` (the checksum field, which holds the pseudo-header sum,
/// included) and stores the complement at `start + offset`, big-endian.
///
/// Fails with [`WireError::Truncated`] when the field does not lie inside
/// the packet (`start + offset + 2 > packet.len()`); never panics.
pub fn complete_checksum(packet: &mut [u8], start: usize, offset: usize) -> Result<(), WireError> {
    let at = start.checked_add(offset).ok_or(WireError::Truncated)?;
    let end = at.checked_add(2).ok_or(WireError::Truncated)?;
    if end > packet.len() {
        return Err(WireError::Truncated);
    }
    let sum = internet_checksum(0, &packet[start..]);
    packet[at..end].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Splits the first `total` bytes of `buf` into the IP header (`ip_len`
/// bytes) and the TCP segment.
fn split_output(
    buf: &mut [u8],
    total: usize,
    ip_len: usize,
) -> Result<(&mut [u8], &mut [u8]), WireError> {
    let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
    // packet_len always counts the IP header, so total >= ip_len.
    Ok(out.split_at_mut(ip_len))
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
