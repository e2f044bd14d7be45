//! Segmentation offload in software: what a TSO/GSO device does with a TCP
//! "super-segment" (one IP packet whose payload spans several segments),
//! for a driver whose device cannot.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::{internet_checksum, pseudo_header_sum};
use crate::tcp::CHECKSUM_OFFSET;
use crate::{WireError, IPPROTO_TCP, IPV4_HEADER_LEN, IPV6_HEADER_LEN, TCP_HEADER_LEN};

/// Where the parts of a super-segment lie.
struct Layout {
    /// Length of the IP header (where the TCP header starts).
    ip_len: usize,
    /// Length of the IP and TCP headers (where the payload starts).
    headers: usize,
    /// End of the packet by its IP length field.
    end: usize,
    src: IpAddr,
    dst: IpAddr,
}

fn layout(packet: &[u8]) -> Result<Layout, WireError> {
    let (ip_len, end, src, dst) = match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let h = packet.get(..IPV4_HEADER_LEN).ok_or(WireError::Truncated)?;
            let ip_len = usize::from(h[0] & 0x0f) * 4;
            if ip_len < IPV4_HEADER_LEN {
                return Err(WireError::BadIpHeaderLength);
            }
            if h[9] != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            let end = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            (ip_len, end, IpAddr::V4(src), IpAddr::V4(dst))
        }
        Some(6) => {
            let h = packet.get(..IPV6_HEADER_LEN).ok_or(WireError::Truncated)?;
            // Only what the stack itself emits: no extension headers.
            if h[6] != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            let end = IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([h[4], h[5]]));
            let mut s = [0u8; 16];
            s.copy_from_slice(&h[8..24]);
            let mut d = [0u8; 16];
            d.copy_from_slice(&h[24..40]);
            (
                IPV6_HEADER_LEN,
                end,
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
            )
        }
        Some(_) => return Err(WireError::BadIpVersion),
        None => return Err(WireError::Truncated),
    };
    if end > packet.len() || end < ip_len + TCP_HEADER_LEN {
        return Err(WireError::BadTotalLength);
    }
    let tcp_len = usize::from(packet[ip_len + 12] >> 4) * 4;
    if tcp_len < TCP_HEADER_LEN || ip_len + tcp_len > end {
        return Err(WireError::BadDataOffset);
    }
    Ok(Layout {
        ip_len,
        headers: ip_len + tcp_len,
        end,
        src,
        dst,
    })
}

/// How many segments of at most `segment_size` payload bytes the TCP
/// packet `packet` (IPv4, or IPv6 without extension headers) cuts into: at
/// least 1. Errors: a malformed packet, or a `segment_size` of 0
/// ([`WireError::BufferTooSmall`]).
pub fn gso_segment_count(packet: &[u8], segment_size: usize) -> Result<usize, WireError> {
    if segment_size == 0 {
        return Err(WireError::BufferTooSmall);
    }
    let l = layout(packet)?;
    Ok((l.end - l.headers).div_ceil(segment_size).max(1))
}

/// Writes segment `index` (from 0) of the TCP packet `packet` cut into
/// segments of `segment_size` payload bytes into `out`, and returns its
/// length: what a TSO/GSO device sends for it. Each segment gets the
/// headers of the original with the sequence number moved on by the bytes
/// before it, the IP length fields of its own size (and for IPv4 a fresh
/// header checksum), FIN and PSH only on the last segment, CWR only on the
/// first (RFC 3168 §6.1.2: one window reduction, announced once, as
/// Linux's GSO does), and a complete
/// TCP checksum (whatever the original's field held, full or partial).
///
/// Errors: a malformed packet, an `index` past the last segment or an
/// `out` too short ([`WireError::BufferTooSmall`]). Never panics.
pub fn gso_segment(
    packet: &[u8],
    segment_size: usize,
    index: usize,
    out: &mut [u8],
) -> Result<usize, WireError> {
    let count = gso_segment_count(packet, segment_size)?;
    if index >= count {
        return Err(WireError::BufferTooSmall);
    }
    let l = layout(packet)?;
    let from = l.headers + index * segment_size;
    let to = (from + segment_size).min(l.end);
    let len = l.headers + (to - from);
    let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
    out[..l.headers].copy_from_slice(&packet[..l.headers]);
    out[l.headers..].copy_from_slice(&packet[from..to]);
    if l.ip_len == IPV6_HEADER_LEN && out[0] >> 4 == 6 {
        let payload = (len - IPV6_HEADER_LEN) as u16;
        out[4..6].copy_from_slice(&payload.to_be_bytes());
    } else {
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        out[10..12].copy_from_slice(&[0, 0]);
        let c = internet_checksum(0, &out[..l.ip_len]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let tcp = &mut out[l.ip_len..];
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let seq = seq.wrapping_add((index * segment_size) as u32);
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    if index + 1 < count {
        // FIN and PSH belong to the last byte: the last segment.
        tcp[13] &= !(0x01 | 0x08);
    }
    if index > 0 {
        // CWR belongs to the first new data after a reduction.
        tcp[13] &= !0x80;
    }
    tcp[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&[0, 0]);
    let c = internet_checksum(pseudo_header_sum(l.src, l.dst, tcp.len()), tcp);
    tcp[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());
    Ok(len)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::{
        complete_checksum, emit_packet, emit_packet_with, packet_len, parse_packet, TcpChecksum,
        TcpFlags, TcpRepr,
    };

    fn repr() -> TcpRepr {
        TcpRepr {
            src_port: 4000,
            dst_port: 80,
            seq: 0xffff_f000,
            ack: 77,
            flags: TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN | TcpFlags::CWR,
            window: 1000,
            ..TcpRepr::default()
        }
    }

    fn super_packet(src: IpAddr, dst: IpAddr, payload: &[u8], mode: TcpChecksum) -> Vec<u8> {
        let r = repr();
        let mut buf = vec![0u8; packet_len(src, &r, payload.len())];
        let n = emit_packet_with(&mut buf, src, dst, 64, 0, &r, &[payload], mode).unwrap();
        buf.truncate(n);
        buf
    }

    fn check_cut(src: IpAddr, dst: IpAddr, mode: TcpChecksum) {
        let payload: Vec<u8> = (0..10_001u32).map(|i| (i * 7 + 3) as u8).collect();
        let p = super_packet(src, dst, &payload, mode);
        let mss = 1448;
        let n = gso_segment_count(&p, mss).unwrap();
        assert_eq!(n, 7);
        let mut joined = Vec::new();
        let mut out = vec![0u8; 2000];
        for i in 0..n {
            let len = gso_segment(&p, mss, i, &mut out).unwrap();
            let seg = parse_packet(&out[..len]).expect("a valid segment");
            assert_eq!(seg.tcp.seq, repr().seq.wrapping_add((i * mss) as u32));
            let last = i + 1 == n;
            assert_eq!(seg.tcp.flags.fin(), last);
            assert_eq!(seg.tcp.flags.psh(), last);
            assert_eq!(seg.tcp.flags.contains(TcpFlags::CWR), i == 0);
            assert!(seg.tcp.flags.ack());
            assert_eq!(seg.payload.len(), if last { 10_001 - 6 * mss } else { mss });
            joined.extend_from_slice(seg.payload);
        }
        assert_eq!(joined, payload);
        assert!(gso_segment(&p, mss, n, &mut out).is_err());
    }

    #[test]
    fn cuts_v4_and_v6_with_full_or_partial_checksums() {
        let v4 = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        );
        let v6 = (
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        );
        for (s, d) in [v4, v6] {
            check_cut(s, d, TcpChecksum::Full);
            check_cut(s, d, TcpChecksum::Partial);
        }
    }

    #[test]
    fn partial_checksum_completes_to_the_full_one() {
        let s = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let d = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        for len in [0usize, 1, 2, 3, 1447, 1448, 30_001] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 13) as u8 ^ 0xa5).collect();
            let full = super_packet(s, d, &payload, TcpChecksum::Full);
            let mut partial = super_packet(s, d, &payload, TcpChecksum::Partial);
            assert_ne!(full, partial, "len {len}");
            complete_checksum(&mut partial, 20, 16).unwrap();
            assert_eq!(full, partial, "len {len}");
        }
        let mut tiny = [0u8; 10];
        assert!(complete_checksum(&mut tiny, 8, 1).is_err());
        assert!(complete_checksum(&mut tiny, usize::MAX, 16).is_err());
    }

    #[test]
    fn one_segment_and_malformed_input() {
        let s = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let d = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut buf = [0u8; 100];
        let n = emit_packet(&mut buf, s, d, 64, 0, &repr(), &[]).unwrap();
        assert_eq!(gso_segment_count(&buf[..n], 1448).unwrap(), 1);
        let mut out = [0u8; 100];
        let len = gso_segment(&buf[..n], 1448, 0, &mut out).unwrap();
        assert_eq!(&out[..len], &buf[..n]);
        assert!(gso_segment_count(&buf[..n], 0).is_err());
        for cut in 0..n {
            assert!(gso_segment_count(&buf[..cut], 1448).is_err(), "cut {cut}");
            let _ = gso_segment(&buf[..cut], 1448, 0, &mut out);
        }
        let mut bad = buf;
        bad[0] = 0x41; // IHL 1
        assert!(gso_segment_count(&bad[..n], 1448).is_err());
        let mut bad = buf;
        bad[20 + 12] = 0xf0; // data offset past the end
        assert!(gso_segment_count(&bad[..n], 1448).is_err());
        assert!(gso_segment(&buf[..n], 1448, 0, &mut [0u8; 10]).is_err());
    }
}
