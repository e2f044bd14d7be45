//! UDP (RFC 768) over IPv4 and IPv6: bounds-checked parsing with the
//! checksum verified, and emission of whole IP packets carrying a datagram.
//!
//! synack does not run UDP itself; a driver hands the datagrams that arrive
//! on its device to the application, and writes the application's
//! datagrams into the device from whatever address and port it asks for
//! (a tunnel answers for every address behind it).

use core::net::{IpAddr, SocketAddr};

use crate::checksum::{internet_checksum, pseudo_header_sum_proto};
use crate::ip::{ipv6_upper_layer, Ipv4Header, Ipv6Header};
use crate::{WireError, IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// Length of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;

/// The ports of a UDP header (length and checksum are derived).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port (0: none, RFC 768).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// A UDP datagram parsed out of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The IPv4 TTL or the IPv6 hop limit it arrived with.
    pub ttl: u8,
    /// The data, without the headers.
    pub payload: &'a [u8],
}

/// Parses the UDP header and data in `segment` (the IP payload), sent from
/// `src` to `dst`, and verifies its checksum.
///
/// The length field must be at least the header and at most `segment`
/// (bytes past it are padding and are dropped): else
/// [`WireError::BadUdpLength`]. A checksum of 0 means "none" over IPv4
/// (RFC 768) and is [`WireError::BadChecksum`] over IPv6, where the
/// checksum is mandatory (RFC 8200 §8.1); a wrong one is `BadChecksum`.
pub fn parse_udp(src: IpAddr, dst: IpAddr, segment: &[u8]) -> Result<(UdpRepr, &[u8]), WireError> {
    let h = segment.get(..UDP_HEADER_LEN).ok_or(WireError::Truncated)?;
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    if len < UDP_HEADER_LEN || len > segment.len() {
        return Err(WireError::BadUdpLength);
    }
    let datagram = &segment[..len];
    let checksum = u16::from_be_bytes([h[6], h[7]]);
    if checksum == 0 {
        if src.is_ipv6() {
            return Err(WireError::BadChecksum);
        }
    } else if internet_checksum(
        pseudo_header_sum_proto(src, dst, IPPROTO_UDP, len),
        datagram,
    ) != 0
    {
        return Err(WireError::BadChecksum);
    }
    let repr = UdpRepr {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
    };
    Ok((repr, &datagram[UDP_HEADER_LEN..]))
}

/// Parses a whole IPv4 or IPv6 packet carrying UDP (IP header checked as
/// [`Ipv4Header::parse`] and [`Ipv6Header::parse`] do, IPv6 extension
/// headers walked), then the datagram as [`parse_udp`] does.
///
/// Errors: another protocol is [`WireError::NotUdp`]; an IPv4 or IPv6
/// fragment is [`WireError::Fragment`] (datagrams are not reassembled);
/// the IP layer's errors as its parsers give them.
pub fn parse_udp_packet(packet: &[u8]) -> Result<UdpDatagram<'_>, WireError> {
    let (src, dst, ttl, segment) = match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let (ip, payload) = Ipv4Header::parse(packet)?;
            if ip.is_fragment() {
                return Err(WireError::Fragment);
            }
            if ip.protocol != IPPROTO_UDP {
                return Err(WireError::NotUdp);
            }
            (IpAddr::V4(ip.src), IpAddr::V4(ip.dst), ip.ttl, payload)
        }
        Some(6) => {
            let (ip, payload) = Ipv6Header::parse(packet)?;
            let (proto, segment) = ipv6_upper_layer(ip.next_header, payload)?;
            if proto != IPPROTO_UDP {
                return Err(WireError::NotUdp);
            }
            (
                IpAddr::V6(ip.src),
                IpAddr::V6(ip.dst),
                ip.hop_limit,
                segment,
            )
        }
        Some(_) => return Err(WireError::BadIpVersion),
        None => return Err(WireError::Truncated),
    };
    let (repr, payload) = parse_udp(src, dst, segment)?;
    Ok(UdpDatagram {
        src: SocketAddr::new(src, repr.src_port),
        dst: SocketAddr::new(dst, repr.dst_port),
        ttl,
        payload,
    })
}

/// Length of the IP packet [`emit_udp_packet`] writes for `payload_len`
/// bytes of data from an address of `src`'s family.
pub fn udp_packet_len(src: IpAddr, payload_len: usize) -> usize {
    let ip = if src.is_ipv4() {
        IPV4_HEADER_LEN
    } else {
        IPV6_HEADER_LEN
    };
    ip + UDP_HEADER_LEN + payload_len
}

/// Writes an IPv4 or IPv6 packet (TOS 0, TTL or hop limit `ttl`; IPv4 not
/// fragmented, DF clear as for any UDP sender that lets the path fragment)
/// carrying one UDP datagram from `src` to `dst`, checksum included, and
/// returns its length ([`udp_packet_len`]).
///
/// Fails with [`WireError::AddressFamilyMismatch`] when `src` and `dst`
/// differ in family, and with [`WireError::BufferTooSmall`] when `buf` is
/// too short or the datagram too long for the UDP or IP length fields.
pub fn emit_udp_packet(
    buf: &mut [u8],
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    payload: &[u8],
) -> Result<usize, WireError> {
    let udp_len = UDP_HEADER_LEN + payload.len();
    let udp_len16 = u16::try_from(udp_len).map_err(|_| WireError::BufferTooSmall)?;
    let total = udp_packet_len(src.ip(), payload.len());
    let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
    let datagram = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (ip, rest) = out.split_at_mut(IPV4_HEADER_LEN);
            let mut header = Ipv4Header::unfragmented(s, d, 0, ttl, IPPROTO_UDP);
            header.dont_fragment = false;
            header.emit(ip, udp_len)?;
            rest
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let (ip, rest) = out.split_at_mut(IPV6_HEADER_LEN);
            let header = Ipv6Header {
                src: s,
                dst: d,
                traffic_class: 0,
                flow_label: 0,
                next_header: IPPROTO_UDP,
                hop_limit: ttl,
            };
            header.emit(ip, udp_len)?;
            rest
        }
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    datagram[0..2].copy_from_slice(&src.port().to_be_bytes());
    datagram[2..4].copy_from_slice(&dst.port().to_be_bytes());
    datagram[4..6].copy_from_slice(&udp_len16.to_be_bytes());
    datagram[6..8].copy_from_slice(&[0, 0]);
    datagram[UDP_HEADER_LEN..].copy_from_slice(payload);
    let initial = pseudo_header_sum_proto(src.ip(), dst.ip(), IPPROTO_UDP, udp_len);
    let mut checksum = internet_checksum(initial, datagram);
    // RFC 768: a computed checksum of 0 is sent as all ones (0 means none).
    if checksum == 0 {
        checksum = 0xffff;
    }
    datagram[6..8].copy_from_slice(&checksum.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn packet(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = (sa(src), sa(dst));
        let mut buf = vec![0u8; udp_packet_len(src.ip(), payload.len())];
        let n = emit_udp_packet(&mut buf, src, dst, 64, payload).unwrap();
        assert_eq!(n, buf.len());
        buf
    }

    #[test]
    fn ipv4_round_trip() {
        let p = packet("10.0.0.1:5353", "10.0.0.2:53", b"query");
        assert_eq!(p.len(), 20 + 8 + 5);
        assert_eq!(p[9], IPPROTO_UDP);
        let d = parse_udp_packet(&p).unwrap();
        assert_eq!(d.src, sa("10.0.0.1:5353"));
        assert_eq!(d.dst, sa("10.0.0.2:53"));
        assert_eq!(d.ttl, 64);
        assert_eq!(d.payload, b"query");
    }

    #[test]
    fn ipv6_round_trip() {
        let p = packet("[fd00::1]:4433", "[fd00::2]:443", &[9u8; 1200]);
        assert_eq!(p.len(), 40 + 8 + 1200);
        let d = parse_udp_packet(&p).unwrap();
        assert_eq!(d.src, sa("[fd00::1]:4433"));
        assert_eq!(d.dst, sa("[fd00::2]:443"));
        assert_eq!(d.payload, &[9u8; 1200][..]);
    }

    #[test]
    fn checksum_is_checked() {
        for (s, d) in [("10.0.0.1:1", "10.0.0.2:2"), ("[fd00::1]:1", "[fd00::2]:2")] {
            let mut p = packet(s, d, b"abcd");
            let last = p.len() - 1;
            p[last] ^= 1;
            assert_eq!(parse_udp_packet(&p), Err(WireError::BadChecksum));
        }
    }

    #[test]
    fn zero_checksum_means_none_over_ipv4_only() {
        let mut p4 = packet("10.0.0.1:1", "10.0.0.2:2", b"abcd");
        p4[26..28].copy_from_slice(&[0, 0]);
        p4[30] ^= 0xff; // wrong data, but no checksum to say so
        assert_eq!(parse_udp_packet(&p4).unwrap().payload.len(), 4);
        let mut p6 = packet("[fd00::1]:1", "[fd00::2]:2", b"abcd");
        p6[46..48].copy_from_slice(&[0, 0]);
        assert_eq!(parse_udp_packet(&p6), Err(WireError::BadChecksum));
    }

    #[test]
    fn lengths_are_checked() {
        let p = packet("10.0.0.1:1", "10.0.0.2:2", b"abcd");
        let src: IpAddr = "10.0.0.1".parse().unwrap();
        let dst: IpAddr = "10.0.0.2".parse().unwrap();
        let seg = &p[20..];
        for n in 0..UDP_HEADER_LEN {
            assert_eq!(parse_udp(src, dst, &seg[..n]), Err(WireError::Truncated));
        }
        let mut bad = seg.to_vec();
        bad[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(parse_udp(src, dst, &bad), Err(WireError::BadUdpLength));
        bad[4..6].copy_from_slice(&13u16.to_be_bytes());
        assert_eq!(parse_udp(src, dst, &bad), Err(WireError::BadUdpLength));
        // Padding past the UDP length is not data.
        let mut padded = seg.to_vec();
        padded.extend_from_slice(&[0, 0]);
        assert_eq!(parse_udp(src, dst, &padded).unwrap().1, b"abcd");
    }

    #[test]
    fn other_packets_are_not_udp() {
        let mut p = packet("10.0.0.1:1", "10.0.0.2:2", b"abcd");
        p[9] = 6;
        p[10..12].copy_from_slice(&[0, 0]);
        let c = internet_checksum(0, &p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_udp_packet(&p), Err(WireError::NotUdp));
        let mut frag = packet("10.0.0.1:1", "10.0.0.2:2", b"abcd");
        frag[6] = 0x20; // more fragments
        frag[10..12].copy_from_slice(&[0, 0]);
        let c = internet_checksum(0, &frag[..20]);
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_udp_packet(&frag), Err(WireError::Fragment));
        assert_eq!(parse_udp_packet(&[]), Err(WireError::Truncated));
        assert_eq!(parse_udp_packet(&[0x10]), Err(WireError::BadIpVersion));
    }

    #[test]
    fn emission_errors() {
        let mut buf = [0u8; 64];
        assert_eq!(
            emit_udp_packet(&mut buf, sa("10.0.0.1:1"), sa("[::1]:2"), 64, b""),
            Err(WireError::AddressFamilyMismatch)
        );
        assert_eq!(
            emit_udp_packet(&mut buf, sa("10.0.0.1:1"), sa("10.0.0.2:2"), 64, &[0; 64]),
            Err(WireError::BufferTooSmall)
        );
        let big = vec![0u8; 65_536];
        let mut out = vec![0u8; 70_000];
        assert_eq!(
            emit_udp_packet(&mut out, sa("10.0.0.1:1"), sa("10.0.0.2:2"), 64, &big),
            Err(WireError::BufferTooSmall)
        );
        // The largest IPv4 datagram fits exactly.
        let most = vec![1u8; 65_535 - 28];
        let n = emit_udp_packet(&mut out, sa("10.0.0.1:1"), sa("10.0.0.2:2"), 64, &most);
        assert_eq!(n, Ok(65_535));
        assert_eq!(
            parse_udp_packet(&out[..65_535]).unwrap().payload.len(),
            65_507
        );
    }

    proptest! {
        #[test]
        fn any_datagram_round_trips(
            v6 in any::<bool>(),
            a in any::<[u8; 16]>(),
            b in any::<[u8; 16]>(),
            sp in any::<u16>(),
            dp in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let (s, d): (IpAddr, IpAddr) = if v6 {
                (core::net::Ipv6Addr::from(a).into(), core::net::Ipv6Addr::from(b).into())
            } else {
                (
                    core::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).into(),
                    core::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).into(),
                )
            };
            let (src, dst) = (SocketAddr::new(s, sp), SocketAddr::new(d, dp));
            let mut buf = vec![0u8; udp_packet_len(s, payload.len())];
            emit_udp_packet(&mut buf, src, dst, 7, &payload).unwrap();
            let got = parse_udp_packet(&buf).unwrap();
            prop_assert_eq!(got.src, src);
            prop_assert_eq!(got.dst, dst);
            prop_assert_eq!(got.ttl, 7);
            prop_assert_eq!(got.payload, &payload[..]);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_udp_packet(&bytes);
            let src: IpAddr = "10.0.0.1".parse().unwrap();
            let _ = parse_udp(src, src, &bytes);
        }

        #[test]
        fn corrupted_datagrams_never_panic(
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
            cut in any::<prop::sample::Index>(),
        ) {
            let mut p = packet("[fd00::1]:1000", "[fd00::2]:53", b"a datagram");
            let i = flip.index(p.len());
            p[i] ^= 1 << bit;
            let n = cut.index(p.len() + 1);
            let r = parse_udp_packet(&p[..n]);
            // A flip in the UDP part of a whole packet is always caught
            // (the length field aside: a shorter length covers less).
            if n == p.len() && i >= 40 && !(44..46).contains(&i) {
                prop_assert!(r.is_err());
            }
        }
    }
}
