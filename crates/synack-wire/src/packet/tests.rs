//! Unit tests of whole-packet parsing and emission, named after the RFC 9293
//! requirement they check where there is one.

extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::{
    SackBlock, TcpFlags, TcpOptions, IPV6_DESTINATION_OPTIONS, IPV6_FRAGMENT, IPV6_HOP_BY_HOP,
    IPV6_ROUTING,
};

pub(super) const V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub(super) const V4_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
pub(super) const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(super) const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xface, 0, 0, 0, 0xff, 2);

/// A header with every option synack knows, SACK blocks included.
pub(super) fn full_repr() -> TcpRepr {
    let mut sack_blocks = [SackBlock::default(); crate::MAX_SACK_BLOCKS];
    sack_blocks[0] = SackBlock {
        left: 0xffff_ff00,
        right: 0x0000_0100,
    };
    TcpRepr {
        src_port: 40_000,
        dst_port: 443,
        seq: 0x1234_5678,
        ack: 0x9abc_def0,
        flags: TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE,
        window: 29_200,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            sack_blocks,
            sack_count: 1,
            timestamps: Some((1, 0xffff_fffe)),
        },
    }
}

/// A plain data segment header without options.
fn plain_repr() -> TcpRepr {
    TcpRepr {
        src_port: 1234,
        dst_port: 80,
        seq: 1,
        ack: 2,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 512,
        ..TcpRepr::default()
    }
}

/// Emits a packet into a vector exactly as long as it.
pub(super) fn emit(src: IpAddr, dst: IpAddr, tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; packet_len(src, tcp, payload.len())];
    let n = emit_packet(&mut buf, src, dst, 64, 0, tcp, payload).unwrap();
    assert_eq!(n, buf.len());
    buf
}

fn emit_v4(tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    emit(V4_SRC.into(), V4_DST.into(), tcp, payload)
}

fn emit_v6(tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    emit(V6_SRC.into(), V6_DST.into(), tcp, payload)
}

/// A raw TCP header with the given data offset field and option bytes.
fn raw_tcp_header(data_offset: u8, options: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; TCP_HEADER_LEN];
    h[0..2].copy_from_slice(&1234u16.to_be_bytes());
    h[2..4].copy_from_slice(&80u16.to_be_bytes());
    h[12] = data_offset << 4;
    h[13] = TcpFlags::SYN.0;
    h[14..16].copy_from_slice(&1000u16.to_be_bytes());
    h.extend_from_slice(options);
    h
}

/// Recomputes the TCP checksum of `segment` as sent from `src` to `dst`.
fn fix_tcp_checksum(src: IpAddr, dst: IpAddr, segment: &mut [u8]) {
    if segment.len() < 18 {
        return;
    }
    segment[16..18].copy_from_slice(&[0, 0]);
    let c = internet_checksum(pseudo_header_sum(src, dst, segment.len()), segment);
    segment[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Recomputes the IPv4 header checksum of `packet`.
fn fix_ip_checksum(packet: &mut [u8]) {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    packet[10..12].copy_from_slice(&[0, 0]);
    let c = internet_checksum(0, &packet[..header_len]);
    packet[10..12].copy_from_slice(&c.to_be_bytes());
}

/// An IPv4 packet around raw TCP bytes, with both checksums correct.
fn raw_v4(segment: &[u8]) -> Vec<u8> {
    let mut packet = vec![0u8; IPV4_HEADER_LEN];
    let header = Ipv4Header {
        src: V4_SRC,
        dst: V4_DST,
        tos: 0,
        ttl: 64,
        protocol: IPPROTO_TCP,
        ident: 0,
        dont_fragment: true,
        more_fragments: false,
        frag_offset: 0,
    };
    header.emit(&mut packet, segment.len()).unwrap();
    packet.extend_from_slice(segment);
    fix_tcp_checksum(V4_SRC.into(), V4_DST.into(), &mut packet[IPV4_HEADER_LEN..]);
    packet
}

/// An IPv6 packet whose first next-header is `first` and whose payload is
/// `extensions` then the raw TCP bytes, with the TCP checksum correct.
fn raw_v6(first: u8, extensions: &[u8], segment: &[u8]) -> Vec<u8> {
    let mut packet = vec![0u8; IPV6_HEADER_LEN];
    let header = Ipv6Header {
        src: V6_SRC,
        dst: V6_DST,
        traffic_class: 0,
        flow_label: 0,
        next_header: first,
        hop_limit: 64,
    };
    header
        .emit(&mut packet, extensions.len() + segment.len())
        .unwrap();
    packet.extend_from_slice(extensions);
    let tcp_at = packet.len();
    packet.extend_from_slice(segment);
    fix_tcp_checksum(V6_SRC.into(), V6_DST.into(), &mut packet[tcp_at..]);
    packet
}

/// Walks the options of an emitted TCP header and checks MUST-68 (every
/// option but EOL and NOP has a length of at least 2 that fits) and MUST-69
/// (bytes after an EOL are zero).
fn check_emitted_options(segment: &[u8]) {
    let header_len = usize::from(segment[12] >> 4) * 4;
    let options = &segment[TCP_HEADER_LEN..header_len];
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => {
                assert!(options[i..].iter().all(|b| *b == 0), "MUST-69");
                return;
            }
            1 => i += 1,
            _ => {
                let len = usize::from(options[i + 1]);
                assert!(len >= 2 && i + len <= options.len(), "MUST-68");
                i += len;
            }
        }
    }
}

#[test]
fn round_trip_v4_all_options_odd_payload() {
    let payload: Vec<u8> = (0..=254u8).collect();
    let packet = emit_v4(&full_repr(), &payload);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.src, IpAddr::V4(V4_SRC));
    assert_eq!(seg.dst, IpAddr::V4(V4_DST));
    assert_eq!(seg.ttl, 64);
    assert_eq!(seg.tos, 0);
    assert_eq!(seg.tcp, full_repr());
    assert_eq!(seg.payload, &payload[..]);
}

#[test]
fn round_trip_v6_all_options_odd_payload() {
    let payload = [0xa5u8; 1];
    let packet = emit_v6(&full_repr(), &payload);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.src, IpAddr::V6(V6_SRC));
    assert_eq!(seg.dst, IpAddr::V6(V6_DST));
    assert_eq!(seg.tcp, full_repr());
    assert_eq!(seg.payload, &payload);
}

#[test]
fn ttl_and_tos_round_trip() {
    for (src, dst) in [
        (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST)),
        (IpAddr::V6(V6_SRC), IpAddr::V6(V6_DST)),
    ] {
        let mut buf = [0u8; 100];
        let n = emit_packet(&mut buf, src, dst, 3, 0xb9, &plain_repr(), b"x").unwrap();
        let seg = parse_packet(&buf[..n]).unwrap();
        assert_eq!((seg.ttl, seg.tos), (3, 0xb9));
    }
}

#[test]
fn emitted_ipv4_header_fields() {
    let packet = emit_v4(&plain_repr(), b"abc");
    assert_eq!(packet[0], 0x45);
    assert_eq!(
        usize::from(u16::from_be_bytes([packet[2], packet[3]])),
        packet.len()
    );
    assert_eq!(&packet[4..6], &[0, 0], "identification 0");
    assert_eq!(&packet[6..8], &[0x40, 0], "DF set, not a fragment");
    assert_eq!(packet[9], IPPROTO_TCP);
    assert_eq!(internet_checksum(0, &packet[..20]), 0);
}

#[test]
fn emitted_ipv6_header_fields() {
    let mut buf = [0u8; 80];
    let n = emit_packet(
        &mut buf,
        V6_SRC.into(),
        V6_DST.into(),
        9,
        0xfe,
        &plain_repr(),
        b"abc",
    )
    .unwrap();
    assert_eq!(
        &buf[..4],
        &[0x6f, 0xe0, 0, 0],
        "version, class, flow label 0"
    );
    assert_eq!(usize::from(u16::from_be_bytes([buf[4], buf[5]])), n - 40);
    assert_eq!((buf[6], buf[7]), (IPPROTO_TCP, 9));
}

#[test]
fn must_2_checksum_filled_in() {
    // Recompute independently: the sum over pseudo-header and segment,
    // checksum field included, must fold to 0xffff.
    for payload_len in [0usize, 1, 2, 3, 999] {
        let payload = vec![0x5au8; payload_len];
        for (src, dst) in [
            (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST)),
            (IpAddr::V6(V6_SRC), IpAddr::V6(V6_DST)),
        ] {
            let packet = emit(src, dst, &full_repr(), &payload);
            let ip_len = if src.is_ipv4() { 20 } else { 40 };
            let segment = &packet[ip_len..];
            let mut pseudo = Vec::new();
            match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    pseudo.extend_from_slice(&s.octets());
                    pseudo.extend_from_slice(&d.octets());
                    pseudo.extend_from_slice(&[0, 6]);
                    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    pseudo.extend_from_slice(&s.octets());
                    pseudo.extend_from_slice(&d.octets());
                    pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
                    pseudo.extend_from_slice(&[0, 0, 0, 6]);
                }
                _ => unreachable!(),
            }
            pseudo.extend_from_slice(segment);
            let mut sum: u32 = 0;
            for pair in pseudo.chunks(2) {
                sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            assert_eq!(sum, 0xffff, "payload {payload_len} from {src}");
        }
    }
}

#[test]
fn must_68_must_69_on_builder_output() {
    for sack_count in 0..=4u8 {
        let mut repr = full_repr();
        repr.options.sack_count = sack_count;
        for (src, dst) in [
            (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST)),
            (IpAddr::V6(V6_SRC), IpAddr::V6(V6_DST)),
        ] {
            // Stale bytes in the buffer must not show through.
            let mut buf = [0xffu8; 200];
            let n = emit_packet(&mut buf, src, dst, 64, 0, &repr, &[]).unwrap();
            let ip_len = if src.is_ipv4() { 20 } else { 40 };
            check_emitted_options(&buf[ip_len..n]);
        }
    }
}

#[test]
fn emit_is_independent_of_buffer_contents() {
    let mut zeros = [0u8; 128];
    let mut ones = [0xffu8; 128];
    let n = emit_packet(
        &mut zeros,
        V4_SRC.into(),
        V4_DST.into(),
        1,
        2,
        &full_repr(),
        b"hi",
    )
    .unwrap();
    let m = emit_packet(
        &mut ones,
        V4_SRC.into(),
        V4_DST.into(),
        1,
        2,
        &full_repr(),
        b"hi",
    )
    .unwrap();
    assert_eq!(zeros[..n], ones[..m]);
}

#[test]
fn packet_len_matches_emit() {
    for sack_count in 0..=4u8 {
        let mut repr = full_repr();
        repr.options.sack_count = sack_count;
        for src in [IpAddr::V4(V4_SRC), IpAddr::V6(V6_SRC)] {
            let dst = if src.is_ipv4() {
                IpAddr::V4(V4_DST)
            } else {
                IpAddr::V6(V6_DST)
            };
            let mut buf = [0u8; 200];
            let n = emit_packet(&mut buf, src, dst, 64, 0, &repr, b"12345").unwrap();
            assert_eq!(n, packet_len(src, &repr, 5));
        }
    }
    assert_eq!(packet_len(V4_SRC.into(), &plain_repr(), 0), 40);
    assert_eq!(packet_len(V6_SRC.into(), &plain_repr(), 0), 60);
    assert_eq!(
        packet_len(V6_SRC.into(), &plain_repr(), usize::MAX),
        usize::MAX
    );
}

#[test]
fn sack_blocks_dropped_to_fit_not_failed() {
    let mut repr = full_repr();
    repr.options.sack_count = 4;
    let packet = emit_v4(&repr, &[]);
    assert_eq!(packet.len(), 20 + 60);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.tcp.options.sack(), &repr.options.sack()[..2]);
}

#[test]
fn emit_address_family_mismatch() {
    let mut buf = [0u8; 100];
    assert_eq!(
        emit_packet(
            &mut buf,
            V4_SRC.into(),
            V6_DST.into(),
            64,
            0,
            &plain_repr(),
            &[]
        ),
        Err(WireError::AddressFamilyMismatch)
    );
    assert_eq!(
        emit_packet(
            &mut buf,
            V6_SRC.into(),
            V4_DST.into(),
            64,
            0,
            &plain_repr(),
            &[]
        ),
        Err(WireError::AddressFamilyMismatch)
    );
}

#[test]
fn emit_buffer_too_small() {
    let len = packet_len(V4_SRC.into(), &full_repr(), 3);
    let mut buf = vec![0u8; len - 1];
    assert_eq!(
        emit_packet(
            &mut buf,
            V4_SRC.into(),
            V4_DST.into(),
            64,
            0,
            &full_repr(),
            b"abc"
        ),
        Err(WireError::BufferTooSmall)
    );
    let len = packet_len(V6_SRC.into(), &full_repr(), 3);
    let mut buf = vec![0u8; len - 1];
    assert_eq!(
        emit_packet(
            &mut buf,
            V6_SRC.into(),
            V6_DST.into(),
            64,
            0,
            &full_repr(),
            b"abc"
        ),
        Err(WireError::BufferTooSmall)
    );
}

#[test]
fn emit_too_long_for_ip() {
    let payload = vec![0u8; 65_535 - 40 + 1];
    let mut buf = vec![0u8; 70_000];
    assert_eq!(
        emit_packet(
            &mut buf,
            V4_SRC.into(),
            V4_DST.into(),
            64,
            0,
            &plain_repr(),
            &payload
        ),
        Err(WireError::BufferTooSmall)
    );
    assert!(emit_packet(
        &mut buf,
        V4_SRC.into(),
        V4_DST.into(),
        64,
        0,
        &plain_repr(),
        &payload[1..]
    )
    .is_ok());
    // IPv6 limits the payload (TCP header and data), not the whole packet.
    let payload = vec![0u8; 65_535 - 20];
    let n = emit_packet(
        &mut buf,
        V6_SRC.into(),
        V6_DST.into(),
        64,
        0,
        &plain_repr(),
        &payload,
    )
    .unwrap();
    assert_eq!(
        parse_packet(&buf[..n]).unwrap().payload.len(),
        payload.len()
    );
    let payload = vec![0u8; 65_535 - 20 + 1];
    assert_eq!(
        emit_packet(
            &mut buf,
            V6_SRC.into(),
            V6_DST.into(),
            64,
            0,
            &plain_repr(),
            &payload
        ),
        Err(WireError::BufferTooSmall)
    );
}

#[test]
fn short_headers_are_truncated() {
    let packet = emit_v4(&plain_repr(), &[]);
    assert_eq!(parse_packet(&[]), Err(WireError::Truncated));
    assert_eq!(parse_packet(&packet[..19]), Err(WireError::Truncated));
    let packet = emit_v6(&plain_repr(), &[]);
    assert_eq!(parse_packet(&packet[..39]), Err(WireError::Truncated));
}

#[test]
fn tcp_segment_shorter_than_20_bytes() {
    let packet = raw_v4(&[0u8; 19]);
    assert_eq!(parse_packet(&packet), Err(WireError::Truncated));
    let packet = raw_v6(IPPROTO_TCP, &[], &[0u8; 12]);
    assert_eq!(parse_packet(&packet), Err(WireError::Truncated));
}

#[test]
fn bad_ip_version() {
    let mut packet = emit_v4(&plain_repr(), &[]);
    for version in [0u8, 5, 7, 15] {
        packet[0] = version << 4 | 5;
        assert_eq!(parse_packet(&packet), Err(WireError::BadIpVersion));
    }
}

#[test]
fn ipv4_header_length_below_five_or_past_end() {
    let mut packet = emit_v4(&plain_repr(), &[]);
    packet[0] = 0x44;
    fix_ip_checksum(&mut packet[..20]);
    assert_eq!(parse_packet(&packet), Err(WireError::BadIpHeaderLength));
    // IHL 15 = 60 bytes, but the packet is 40.
    packet[0] = 0x4f;
    assert_eq!(parse_packet(&packet), Err(WireError::BadIpHeaderLength));
}

#[test]
fn ipv4_total_length_mismatch() {
    let mut packet = emit_v4(&plain_repr(), b"data");
    let len = packet.len() as u16;
    // Longer than the buffer.
    packet[2..4].copy_from_slice(&(len + 1).to_be_bytes());
    fix_ip_checksum(&mut packet);
    assert_eq!(parse_packet(&packet), Err(WireError::BadTotalLength));
    // Shorter than the IP header.
    packet[2..4].copy_from_slice(&19u16.to_be_bytes());
    fix_ip_checksum(&mut packet);
    assert_eq!(parse_packet(&packet), Err(WireError::BadTotalLength));
    // Shorter than the buffer but cutting into the TCP segment: the checksum
    // no longer matches.
    packet[2..4].copy_from_slice(&(len - 1).to_be_bytes());
    fix_ip_checksum(&mut packet);
    assert_eq!(parse_packet(&packet), Err(WireError::BadChecksum));
}

#[test]
fn ipv4_trailing_padding_ignored() {
    // A 40-byte packet padded to Ethernet's 46-byte minimum payload.
    let mut packet = emit_v4(&plain_repr(), &[]);
    packet.extend_from_slice(&[0xee; 6]);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.tcp, plain_repr());
    assert!(seg.payload.is_empty());
}

#[test]
fn ipv6_trailing_padding_ignored() {
    let mut packet = emit_v6(&plain_repr(), b"abc");
    packet.extend_from_slice(&[0xee; 7]);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.payload, b"abc");
}

#[test]
fn ipv6_payload_length_past_buffer() {
    let packet = emit_v6(&plain_repr(), b"abc");
    assert_eq!(
        parse_packet(&packet[..packet.len() - 1]),
        Err(WireError::BadTotalLength)
    );
}

#[test]
fn bad_ip_checksum() {
    let mut packet = emit_v4(&plain_repr(), &[]);
    packet[8] ^= 0x01; // TTL
    assert_eq!(parse_packet(&packet), Err(WireError::BadIpChecksum));
}

#[test]
fn ipv4_fragments_rejected() {
    let base = emit_v4(&plain_repr(), b"frag");
    // More Fragments set.
    let mut packet = base.clone();
    packet[6] = 0x20;
    fix_ip_checksum(&mut packet);
    assert_eq!(parse_packet(&packet), Err(WireError::Fragment));
    // Non-zero offset.
    let mut packet = base.clone();
    packet[6..8].copy_from_slice(&1u16.to_be_bytes());
    fix_ip_checksum(&mut packet);
    assert_eq!(parse_packet(&packet), Err(WireError::Fragment));
    // DF alone is not a fragment.
    assert!(parse_packet(&base).is_ok());
}

#[test]
fn ipv4_not_tcp() {
    let mut packet = emit_v4(&plain_repr(), &[]);
    packet[9] = 17;
    fix_ip_checksum(&mut packet);
    assert_eq!(parse_packet(&packet), Err(WireError::NotTcp));
}

#[test]
fn must_50_ipv4_options_skipped() {
    // Insert 8 bytes of IPv4 options (an unknown option, NOPs, EOL) after
    // the fixed header. The TCP checksum must still match: the pseudo-header
    // holds the TCP length, not the IP total length.
    let base = emit_v4(&full_repr(), b"payload");
    let mut packet = base[..20].to_vec();
    packet.extend_from_slice(&[0x9e, 4, 0xab, 0xcd, 1, 1, 0, 0]);
    packet.extend_from_slice(&base[20..]);
    packet[0] = 0x47;
    let total = packet.len() as u16;
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    fix_ip_checksum(&mut packet);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.tcp, full_repr());
    assert_eq!(seg.payload, b"payload");
}

#[test]
fn must_50_ipv6_extension_headers_skipped() {
    // Hop-by-hop (8 bytes, PadN) -> routing (type 0 style, 24 bytes, no
    // segments left) -> destination options (16 bytes) -> TCP.
    let mut ext = vec![0u8; 8 + 24 + 16];
    ext[0] = IPV6_ROUTING;
    ext[1] = 0;
    ext[2] = 1; // PadN
    ext[3] = 4;
    ext[8] = IPV6_DESTINATION_OPTIONS;
    ext[9] = 2;
    ext[32] = IPPROTO_TCP;
    ext[33] = 1;
    let segment = emit_v4(&full_repr(), b"odd")[20..].to_vec();
    let packet = raw_v6(IPV6_HOP_BY_HOP, &ext, &segment);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.tcp, full_repr());
    assert_eq!(seg.payload, b"odd");
    let (src, dst) = peek_tuple(&packet).unwrap();
    assert_eq!(src, SocketAddr::new(V6_SRC.into(), 40_000));
    assert_eq!(dst, SocketAddr::new(V6_DST.into(), 443));
}

#[test]
fn ipv6_extension_header_past_payload() {
    // A destination-options header claiming 16 bytes in a 12-byte payload.
    let ext = [IPPROTO_TCP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let packet = raw_v6(IPV6_DESTINATION_OPTIONS, &ext, &[]);
    assert_eq!(parse_packet(&packet), Err(WireError::Truncated));
}

#[test]
fn ipv6_fragment_header() {
    let segment = emit_v4(&plain_repr(), &[])[20..].to_vec();
    // First fragment of several: M set.
    let frag = [IPPROTO_TCP, 0, 0, 1, 0, 0, 0, 42];
    let packet = raw_v6(IPV6_FRAGMENT, &frag, &segment);
    assert_eq!(parse_packet(&packet), Err(WireError::Fragment));
    // A later fragment.
    let frag = [IPPROTO_TCP, 0, 0x05, 0x00, 0, 0, 0, 42];
    let packet = raw_v6(IPV6_FRAGMENT, &frag, &segment);
    assert_eq!(parse_packet(&packet), Err(WireError::Fragment));
    // An atomic fragment (RFC 6946) is an ordinary packet.
    let frag = [IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 42];
    let packet = raw_v6(IPV6_FRAGMENT, &frag, &segment);
    assert_eq!(parse_packet(&packet).unwrap().tcp, plain_repr());
}

#[test]
fn ipv6_not_tcp() {
    let segment = emit_v4(&plain_repr(), &[])[20..].to_vec();
    for next in [17u8, 58, 59, 50, 51, 135] {
        let packet = raw_v6(next, &[], &segment);
        assert_eq!(parse_packet(&packet), Err(WireError::NotTcp), "next {next}");
    }
    // Behind an extension header too.
    let ext = [17u8, 0, 0, 0, 0, 0, 0, 0];
    let packet = raw_v6(IPV6_DESTINATION_OPTIONS, &ext, &segment);
    assert_eq!(parse_packet(&packet), Err(WireError::NotTcp));
}

#[test]
fn ipv6_too_many_extension_headers() {
    let mut ext = Vec::new();
    for _ in 0..=crate::MAX_IPV6_EXTENSION_HEADERS {
        ext.extend_from_slice(&[IPV6_DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0]);
    }
    let last = ext.len() - 8;
    ext[last] = IPPROTO_TCP;
    let segment = emit_v4(&plain_repr(), &[])[20..].to_vec();
    let packet = raw_v6(IPV6_DESTINATION_OPTIONS, &ext, &segment);
    assert_eq!(parse_packet(&packet), Err(WireError::NotTcp));
    // One fewer is fine.
    let packet = raw_v6(IPV6_DESTINATION_OPTIONS, &ext[8..], &segment);
    assert!(parse_packet(&packet).is_ok());
}

#[test]
fn must_3_bad_tcp_checksum() {
    for mut packet in [emit_v4(&full_repr(), b"abc"), emit_v6(&full_repr(), b"abc")] {
        let last = packet.len() - 1;
        packet[last] ^= 0x10;
        assert_eq!(parse_packet(&packet), Err(WireError::BadChecksum));
    }
    // The checksum field itself.
    let mut packet = emit_v4(&plain_repr(), &[]);
    packet[20 + 17] ^= 1;
    assert_eq!(parse_packet(&packet), Err(WireError::BadChecksum));
}

#[test]
fn must_3_checksum_covers_pseudo_header() {
    // A different destination address (IP checksum fixed) changes the
    // pseudo-header, so the TCP checksum no longer matches.
    let mut packet = emit_v4(&plain_repr(), b"x");
    packet[19] ^= 1;
    fix_ip_checksum(&mut packet);
    assert_eq!(parse_packet(&packet), Err(WireError::BadChecksum));
    let mut packet = emit_v6(&plain_repr(), b"x");
    packet[39] ^= 1;
    assert_eq!(parse_packet(&packet), Err(WireError::BadChecksum));
}

#[test]
fn data_offset_below_five() {
    for doff in 0..5 {
        let packet = raw_v4(&raw_tcp_header(doff, &[0; 20]));
        assert_eq!(parse_packet(&packet), Err(WireError::BadDataOffset));
    }
}

#[test]
fn data_offset_past_end_of_segment() {
    // Data offset 7 (28 bytes) on a 24-byte segment.
    let packet = raw_v4(&raw_tcp_header(7, &[1, 1, 1, 1]));
    assert_eq!(parse_packet(&packet), Err(WireError::BadDataOffset));
    let packet = raw_v6(IPPROTO_TCP, &[], &raw_tcp_header(15, &[]));
    assert_eq!(parse_packet(&packet), Err(WireError::BadDataOffset));
    // Exactly the segment is fine.
    let packet = raw_v4(&raw_tcp_header(6, &[1, 1, 1, 1]));
    assert!(parse_packet(&packet).is_ok());
}

#[test]
fn must_7_option_length_zero() {
    let packet = raw_v4(&raw_tcp_header(6, &[253, 0, 0, 0]));
    assert_eq!(parse_packet(&packet), Err(WireError::BadOptionLength));
}

#[test]
fn must_7_option_length_one() {
    let packet = raw_v4(&raw_tcp_header(6, &[1, 2, 1, 0]));
    assert_eq!(parse_packet(&packet), Err(WireError::BadOptionLength));
}

#[test]
fn must_7_option_past_header() {
    // Timestamps (10 bytes) starting 2 bytes before the end of the header;
    // the payload that follows must not be read as option bytes.
    let mut segment = raw_tcp_header(6, &[1, 1, 8, 10]);
    segment.extend_from_slice(&[0u8; 16]);
    let packet = raw_v4(&segment);
    assert_eq!(parse_packet(&packet), Err(WireError::BadOptionLength));
    // The length byte itself lies past the header.
    let packet = raw_v4(&raw_tcp_header(6, &[1, 1, 1, 2]));
    assert_eq!(parse_packet(&packet), Err(WireError::BadOptionLength));
}

#[test]
fn must_64_options_parsed_unaligned() {
    // NOP MSS=1200 NOP NOP NOP: MSS at offset 1.
    let packet = raw_v4(&raw_tcp_header(7, &[1, 2, 4, 0x04, 0xb0, 1, 1, 1]));
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.tcp.options.mss, Some(1200));
}

#[test]
fn must_4_nop_nop_mss_eol() {
    let packet = raw_v4(&raw_tcp_header(7, &[1, 1, 2, 4, 0x03, 0xe8, 0, 0]));
    assert_eq!(parse_packet(&packet).unwrap().tcp.options.mss, Some(1000));
}

#[test]
fn must_6_unknown_option_skipped() {
    // kind 253, len 6, then MSS; on a SYN and on a data segment.
    let options = [253, 6, 0xde, 0xad, 0xbe, 0xef, 2, 4, 0x05, 0xb4, 0, 0];
    let packet = raw_v4(&raw_tcp_header(8, &options));
    assert_eq!(parse_packet(&packet).unwrap().tcp.options.mss, Some(1460));
    let mut segment = raw_tcp_header(8, &options);
    segment[13] = TcpFlags::ACK.0;
    segment.extend_from_slice(b"data");
    let packet = raw_v6(IPPROTO_TCP, &[], &segment);
    let seg = parse_packet(&packet).unwrap();
    assert_eq!(seg.payload, b"data");
}

#[test]
fn must_5_options_on_any_segment() {
    let mut repr = plain_repr();
    repr.options.timestamps = Some((7, 8));
    let packet = emit_v4(&repr, b"data");
    assert_eq!(
        parse_packet(&packet).unwrap().tcp.options.timestamps,
        Some((7, 8))
    );
}

#[test]
fn known_option_with_bad_length_ignored() {
    // MSS with length 6: skipped by its length, not an error.
    let packet = raw_v4(&raw_tcp_header(7, &[2, 6, 0x05, 0xb4, 0, 0, 1, 1]));
    assert_eq!(parse_packet(&packet).unwrap().tcp.options.mss, None);
}

#[test]
fn peek_tuple_reads_addresses_and_ports() {
    let packet = emit_v4(&full_repr(), b"abc");
    let expect = (
        SocketAddr::new(V4_SRC.into(), 40_000),
        SocketAddr::new(V4_DST.into(), 443),
    );
    assert_eq!(peek_tuple(&packet), Some(expect));
    // Only the ports are needed, and no checksum is checked.
    let mut cut = packet[..24].to_vec();
    cut[10] ^= 0xff;
    assert_eq!(peek_tuple(&cut), Some(expect));
    assert_eq!(peek_tuple(&packet[..23]), None);
    let packet = emit_v6(&full_repr(), &[]);
    assert_eq!(
        peek_tuple(&packet[..44]),
        Some((
            SocketAddr::new(V6_SRC.into(), 40_000),
            SocketAddr::new(V6_DST.into(), 443)
        ))
    );
    assert_eq!(peek_tuple(&packet[..43]), None);
}

#[test]
fn peek_tuple_refuses_what_is_not_tcp() {
    assert_eq!(peek_tuple(&[]), None);
    let mut packet = emit_v4(&plain_repr(), &[]);
    packet[9] = 17;
    assert_eq!(peek_tuple(&packet), None);
    packet[9] = IPPROTO_TCP;
    packet[7] = 1; // a later fragment: no ports in it
    assert_eq!(peek_tuple(&packet), None);
    packet[7] = 0;
    packet[0] = 0x44;
    assert_eq!(peek_tuple(&packet), None);
    packet[0] = 0x55;
    assert_eq!(peek_tuple(&packet), None);
    let packet = raw_v6(58, &[], &[0u8; 20]);
    assert_eq!(peek_tuple(&packet), None);
}

/// `emit_packet` writes every byte of the packet: a buffer full of stale
/// bytes (as a reused one is) gives the same packet as a zeroed one.
#[test]
fn emit_overwrites_stale_buffer_bytes() {
    use core::net::Ipv6Addr;
    let v4 = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let v6 = (
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
    );
    let mut repr = TcpRepr {
        src_port: 1,
        dst_port: 2,
        seq: 3,
        ack: 4,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 5,
        urgent: 0,
        options: crate::TcpOptions::default(),
    };
    repr.options.timestamps = Some((6, 7));
    repr.options.sack_count = 1;
    repr.options.sack_blocks[0] = crate::SackBlock { left: 8, right: 9 };
    for (src, dst) in [v4, v6] {
        let len = packet_len(src, &repr, 11);
        let mut clean = vec![0u8; len];
        let mut dirty = vec![0xA5u8; len];
        emit_packet(&mut clean, src, dst, 64, 0, &repr, &[1; 11]).unwrap();
        emit_packet(&mut dirty, src, dst, 64, 0, &repr, &[1; 11]).unwrap();
        assert_eq!(clean, dirty);
        assert!(parse_packet(&dirty).is_ok());
    }
}

/// A payload given in parts split at odd offsets checksums the same as in
/// one piece (the fused copy-and-sum swaps the sums of odd-offset parts).
#[test]
fn emit_parts_split_anywhere_checksums_right() {
    let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let repr = TcpRepr {
        src_port: 1,
        dst_port: 2,
        flags: TcpFlags::ACK,
        ..TcpRepr::default()
    };
    let payload: Vec<u8> = (0..1461u32).map(|i| (i * 7 + 3) as u8).collect();
    let len = packet_len(src, &repr, payload.len());
    let mut whole = vec![0u8; len];
    emit_packet(&mut whole, src, dst, 64, 0, &repr, &payload).unwrap();
    for cut in [0, 1, 2, 3, 15, 16, 17, 700, 1459, 1460, 1461] {
        let (a, b) = payload.split_at(cut);
        let mut split = vec![0u8; len];
        emit_packet_parts(&mut split, src, dst, 64, 0, &repr, &[a, b]).unwrap();
        assert_eq!(split, whole, "cut at {cut}");
    }
    let (a, rest) = payload.split_at(5);
    let (b, c) = rest.split_at(9);
    let mut three = vec![0u8; len];
    emit_packet_parts(&mut three, src, dst, 64, 0, &repr, &[a, b, c]).unwrap();
    assert_eq!(three, whole);
    assert!(parse_packet(&whole).is_ok());
}

/// The deferred checksum agrees with the eager one: a good packet checks
/// out with its payload's sum, a payload with a flipped bit does not.
#[test]
fn unverified_parse_then_payload_sum() {
    let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let repr = TcpRepr {
        src_port: 1,
        dst_port: 2,
        flags: TcpFlags::ACK,
        ..TcpRepr::default()
    };
    let payload: Vec<u8> = (0..999u32).map(|i| (i * 13) as u8).collect();
    let mut buf = vec![0u8; packet_len(src, &repr, payload.len())];
    let n = emit_packet(&mut buf, src, dst, 64, 0, &repr, &payload).unwrap();
    let (seg, partial) = parse_packet_unverified(&buf[..n]).unwrap();
    assert_eq!(seg, parse_packet(&buf[..n]).unwrap());
    let mut copy = vec![0u8; seg.payload.len()];
    let s = copy_and_sum(&mut copy, seg.payload);
    assert!(checksum_is_valid(combine_sums(partial, s, false)));
    assert!(checksum_is_valid(combine_sums(
        partial,
        payload_sum(seg.payload),
        false
    )));
    // Split at an odd point: the second part's sum is swapped.
    let (a, b) = seg.payload.split_at(333);
    let t = combine_sums(
        combine_sums(partial, payload_sum(a), false),
        payload_sum(b),
        true,
    );
    assert!(checksum_is_valid(t));
    let last = n - 1;
    buf[last] ^= 0x10;
    let (seg, partial) = parse_packet_unverified(&buf[..n]).unwrap();
    assert!(!checksum_is_valid(combine_sums(
        partial,
        payload_sum(seg.payload),
        false
    )));
    assert_eq!(parse_packet(&buf[..n]), Err(WireError::BadChecksum));
}
