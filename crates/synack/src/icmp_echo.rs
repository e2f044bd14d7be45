//! Answers ICMP and ICMPv6 echo requests (so `ping` works against the
//! stack's addresses), and sorts arriving packets for the driver.
//!
//! An echo reply is the request with source and destination swapped, the
//! type changed (8 → 0 for ICMP, 128 → 129 for ICMPv6), a fresh TTL, and
//! the checksums updated. Swapping the addresses leaves every one's-complement
//! sum alone (addition commutes), so only the type word is patched in the
//! ICMP checksum (RFC 1624 incremental update); the IPv4 header checksum is
//! recomputed for the new TTL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use synack_wire::internet_checksum;

/// IP protocol number of ICMP.
const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
const PROTO_UDP: u8 = 17;
/// IPv6 next-header number of ICMPv6.
const PROTO_ICMPV6: u8 = 58;

/// What an arriving packet is, for the driver's sorting. Only the fixed
/// headers are looked at (cheaply, for every packet); whoever takes the
/// packet parses it in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classified {
    /// A TCP segment to `dst`: the stack's, if it takes that destination.
    Tcp {
        /// The destination address.
        dst: IpAddr,
    },
    /// An ICMP message (other than an echo request) or an ICMPv6 error to
    /// `dst`: the stack's when it is about one of its segments.
    IcmpError {
        /// The destination address.
        dst: IpAddr,
    },
    /// An ICMP or ICMPv6 echo request to `dst`.
    EchoRequest {
        /// The destination address.
        dst: IpAddr,
    },
    /// A UDP datagram (IPv6: UDP right after the fixed header; behind
    /// extension headers it is [`Classified::Other`]).
    Udp,
    /// Anything else (another protocol, ICMPv6 informational messages, a
    /// broken header).
    Other,
}

/// Sorts one raw IP packet (see [`Classified`]).
pub fn classify(packet: &[u8]) -> Classified {
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let dst = IpAddr::V4(Ipv4Addr::new(
                packet[16], packet[17], packet[18], packet[19],
            ));
            match packet[9] {
                PROTO_TCP => Classified::Tcp { dst },
                PROTO_UDP => Classified::Udp,
                PROTO_ICMP if ihl >= 20 && packet.len() > ihl => {
                    if packet[ihl] == 8 {
                        Classified::EchoRequest { dst }
                    } else {
                        Classified::IcmpError { dst }
                    }
                }
                _ => Classified::Other,
            }
        }
        Some(6) if packet.len() >= 40 => {
            let mut d = [0u8; 16];
            d.copy_from_slice(&packet[24..40]);
            let dst = IpAddr::V6(Ipv6Addr::from(d));
            match packet[6] {
                PROTO_TCP => Classified::Tcp { dst },
                PROTO_UDP => Classified::Udp,
                PROTO_ICMPV6 if packet.len() > 40 => match packet[40] {
                    128 => Classified::EchoRequest { dst },
                    // Errors (destination unreachable, packet too big,
                    // time exceeded, parameter problem).
                    1..=4 => Classified::IcmpError { dst },
                    _ => Classified::Other,
                },
                _ => Classified::Other,
            }
        }
        _ => Classified::Other,
    }
}

/// Builds the echo reply to an echo request, or `None` when `request` is
/// not a well-formed ICMP or ICMPv6 echo request.
pub fn echo_reply(request: &[u8], ttl: u8) -> Option<Vec<u8>> {
    let mut p = request.to_vec();
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
            if ihl < 20 || p.len() < ihl + 8 || total > p.len() || total < ihl + 8 {
                return None;
            }
            p.truncate(total);
            if p[9] != PROTO_ICMP || p[ihl] != 8 || p[ihl + 1] != 0 {
                return None;
            }
            swap(&mut p, 12, 16, 4);
            p[8] = ttl;
            p[10] = 0;
            p[11] = 0;
            let sum = internet_checksum(0, &p[..ihl]);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
            patch_type(&mut p[ihl..], 0);
        }
        6 => {
            let plen = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
            if p.len() < 48 || 40 + plen > p.len() || plen < 8 {
                return None;
            }
            p.truncate(40 + plen);
            if p[6] != PROTO_ICMPV6 || p[40] != 128 || p[41] != 0 {
                return None;
            }
            swap(&mut p, 8, 24, 16);
            p[7] = ttl;
            patch_type(&mut p[40..], 129);
        }
        _ => return None,
    }
    Some(p)
}

/// Swaps two non-overlapping byte ranges of length `len`.
fn swap(p: &mut [u8], a: usize, b: usize, len: usize) {
    for i in 0..len {
        p.swap(a + i, b + i);
    }
}

/// Sets the ICMP type byte of `msg` to `new_type` and updates its checksum
/// incrementally (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
fn patch_type(msg: &mut [u8], new_type: u8) {
    let old = u16::from_be_bytes([msg[0], msg[1]]);
    msg[0] = new_type;
    let new = u16::from_be_bytes([msg[0], msg[1]]);
    let hc = u16::from_be_bytes([msg[2], msg[3]]);
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    msg[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_echo_request() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 32, 0x12, 0x34, 0x40, 0, 64, PROTO_ICMP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[8, 0, 0, 0, 0xab, 0xcd, 0, 1, b'p', b'i', b'n', b'g']);
        let sum = internet_checksum(0, &p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        let sum = internet_checksum(0, &p[20..]);
        p[22..24].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn ipv4_echo_reply_has_valid_checksums() {
        let req = v4_echo_request();
        assert_eq!(
            classify(&req),
            Classified::EchoRequest {
                dst: "10.0.0.2".parse().unwrap()
            }
        );
        let rep = echo_reply(&req, 64).unwrap();
        assert_eq!(&rep[12..16], &[10, 0, 0, 2]);
        assert_eq!(&rep[16..20], &[10, 0, 0, 1]);
        assert_eq!(rep[20], 0);
        assert_eq!(internet_checksum(0, &rep[..20]), 0);
        assert_eq!(internet_checksum(0, &rep[20..]), 0);
        assert_eq!(&rep[28..], b"ping");
    }

    #[test]
    fn ipv6_echo_reply_has_valid_checksum() {
        let src: Ipv6Addr = "fd00::1".parse().unwrap();
        let dst: Ipv6Addr = "fd00::2".parse().unwrap();
        let body = [128u8, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3];
        let mut p = vec![0x60, 0, 0, 0, 0, body.len() as u8, PROTO_ICMPV6, 64];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&body);
        let pseudo = v6_pseudo(&p);
        let sum = internet_checksum(pseudo, &p[40..]);
        p[42..44].copy_from_slice(&sum.to_be_bytes());
        let rep = echo_reply(&p, 64).unwrap();
        assert_eq!(rep[40], 129);
        assert_eq!(&rep[8..24], &dst.octets());
        assert_eq!(internet_checksum(v6_pseudo(&rep), &rep[40..]), 0);
    }

    fn v6_pseudo(p: &[u8]) -> u32 {
        let mut s = 0u32;
        for w in p[8..40].chunks(2) {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        s + (p.len() as u32 - 40) + u32::from(PROTO_ICMPV6)
    }

    #[test]
    fn other_packets_are_sorted_out() {
        assert_eq!(classify(&[]), Classified::Other);
        let mut udp = v4_echo_request();
        udp[9] = 17;
        assert_eq!(classify(&udp), Classified::Udp);
        assert_eq!(echo_reply(&udp, 64), None);
        let mut tcp = v4_echo_request();
        tcp[9] = PROTO_TCP;
        assert!(matches!(classify(&tcp), Classified::Tcp { .. }));
        let mut other = v4_echo_request();
        other[9] = 47; // GRE
        assert_eq!(classify(&other), Classified::Other);
        let mut unreachable = v4_echo_request();
        unreachable[20] = 3;
        assert!(matches!(
            classify(&unreachable),
            Classified::IcmpError { .. }
        ));
    }
}
