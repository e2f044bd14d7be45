//! Property tests: no input makes a parser panic or loop, and every header
//! the builder can write parses back to itself.

extern crate std;

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::tests::{emit, full_repr, V4_DST, V4_SRC, V6_DST, V6_SRC};
use super::*;
use crate::{parse_icmp_error, SackBlock, TcpFlags, TcpOptions, MAX_SACK_BLOCKS};

/// Runs every parser in the crate on `buf`; the point is that none panics.
fn parse_everything(buf: &[u8]) {
    let parsed = parse_packet(buf);
    let peeked = peek_tuple(buf);
    // A packet that parses can always be named.
    if let Ok(seg) = parsed {
        let (src, dst) = peeked.expect("a parsed packet has a tuple");
        assert_eq!((src.ip(), dst.ip()), (seg.src, seg.dst));
        assert_eq!(
            (src.port(), dst.port()),
            (seg.tcp.src_port, seg.tcp.dst_port)
        );
    }
    let _ = parse_icmp_error(buf);
    // The deferred-checksum parse agrees with the eager one.
    match parse_packet_unverified(buf) {
        Ok((seg, partial)) => {
            let ok = checksum_is_valid(combine_sums(partial, payload_sum(seg.payload), false));
            assert_eq!(ok, parsed == Ok(seg), "deferred and eager checks disagree");
        }
        Err(_) => assert!(parsed.is_err()),
    }
}

/// A valid packet to mutate: IPv4 or IPv6, with all options and a payload.
fn valid_packet() -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), 0usize..64).prop_map(|(v6, payload_len)| {
        let payload = vec![0x3cu8; payload_len];
        if v6 {
            emit(V6_SRC.into(), V6_DST.into(), &full_repr(), &payload)
        } else {
            emit(V4_SRC.into(), V4_DST.into(), &full_repr(), &payload)
        }
    })
}

/// An edit applied to a valid packet.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one bit at this (wrapped) bit index.
    FlipBit(usize),
    /// Overwrite the byte at this (wrapped) index.
    SetByte(usize, u8),
    /// Cut the packet to this (wrapped) length.
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => any::<usize>().prop_map(Mutation::FlipBit),
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(Mutation::Extend),
    ]
}

fn apply(packet: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::FlipBit(bit) if !packet.is_empty() => {
            let bit = bit % (packet.len() * 8);
            packet[bit / 8] ^= 1 << (bit % 8);
        }
        Mutation::SetByte(i, b) if !packet.is_empty() => {
            let i = i % packet.len();
            packet[i] = *b;
        }
        Mutation::Truncate(n) => {
            let n = n % (packet.len() + 1);
            packet.truncate(n);
        }
        Mutation::Extend(bytes) => packet.extend_from_slice(bytes),
        _ => {}
    }
}

fn sack_blocks() -> impl Strategy<Value = ([SackBlock; MAX_SACK_BLOCKS], u8)> {
    proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=MAX_SACK_BLOCKS).prop_map(|pairs| {
        let mut blocks = [SackBlock::default(); MAX_SACK_BLOCKS];
        for (slot, (left, right)) in blocks.iter_mut().zip(&pairs) {
            *slot = SackBlock {
                left: *left,
                right: *right,
            };
        }
        (blocks, pairs.len() as u8)
    })
}

fn tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        sack_blocks(),
        proptest::option::of((any::<u32>(), any::<u32>())),
    )
        .prop_map(
            |(mss, window_scale, sack_permitted, (sack_blocks, sack_count), timestamps)| {
                TcpOptions {
                    mss,
                    window_scale,
                    sack_permitted,
                    sack_blocks,
                    sack_count,
                    timestamps,
                }
            },
        )
}

fn tcp_repr() -> impl Strategy<Value = TcpRepr> {
    (
        any::<(u16, u16, u32, u32)>(),
        any::<(u8, u16, u16)>(),
        tcp_options(),
    )
        .prop_map(
            |((src_port, dst_port, seq, ack), (flags, window, urgent), options)| TcpRepr {
                src_port,
                dst_port,
                seq,
                ack,
                flags: TcpFlags(flags),
                window,
                urgent,
                options,
            },
        )
}

fn addresses() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        any::<([u8; 4], [u8; 4])>()
            .prop_map(|(s, d)| (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into())),
        any::<([u8; 16], [u8; 16])>()
            .prop_map(|(s, d)| (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into())),
    ]
}

/// What `repr` looks like after a trip through the wire: SACK blocks that
/// did not fit are gone.
fn as_emitted(repr: &TcpRepr) -> TcpRepr {
    let mut expect = *repr;
    let kept = repr.options.emitted_sack_blocks();
    expect.options.sack_count = kept as u8;
    for block in &mut expect.options.sack_blocks[kept..] {
        *block = SackBlock::default();
    }
    expect
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(50_000))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..128)) {
        parse_everything(&buf);
    }

    #[test]
    fn arbitrary_bytes_behind_a_plausible_version_never_panic(
        v6 in any::<bool>(),
        mut buf in proptest::collection::vec(any::<u8>(), 1..160),
    ) {
        // Steer most inputs past the version check.
        buf[0] = if v6 { 0x60 | (buf[0] & 0x0f) } else { 0x45 };
        parse_everything(&buf);
    }

    #[test]
    fn mutated_packets_never_panic(
        mut packet in valid_packet(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        for m in &mutations {
            apply(&mut packet, m);
        }
        parse_everything(&packet);
    }

    #[test]
    fn arbitrary_tcp_header_with_valid_checksums_never_panics(
        v6 in any::<bool>(),
        mut segment in proptest::collection::vec(any::<u8>(), 20..100),
    ) {
        // Random bytes rarely pass the checksums; fix them so the TCP
        // header and option parsers see the random bytes.
        let (src, dst) = if v6 {
            (IpAddr::V6(V6_SRC), IpAddr::V6(V6_DST))
        } else {
            (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST))
        };
        segment[16..18].copy_from_slice(&[0, 0]);
        let c = internet_checksum(pseudo_header_sum(src, dst, segment.len()), &segment);
        segment[16..18].copy_from_slice(&c.to_be_bytes());
        let mut packet = emit(src, dst, &TcpRepr::default(), &[]);
        let ip_len = if v6 { IPV6_HEADER_LEN } else { IPV4_HEADER_LEN };
        packet.truncate(ip_len);
        let len = packet.len() + segment.len();
        if v6 {
            packet[4..6].copy_from_slice(&((len - ip_len) as u16).to_be_bytes());
        } else {
            packet[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            packet[10..12].copy_from_slice(&[0, 0]);
            let c = internet_checksum(0, &packet);
            packet[10..12].copy_from_slice(&c.to_be_bytes());
        }
        packet.extend_from_slice(&segment);
        match parse_packet(&packet) {
            Ok(seg) => {
                let header_len = usize::from(segment[12] >> 4) * 4;
                prop_assert_eq!(seg.payload, &segment[header_len..]);
                // Whatever parses can be written back and reads the same,
                // but for SACK blocks that no longer fit.
                let again = emit(src, dst, &seg.tcp, seg.payload);
                let again = parse_packet(&again).unwrap();
                prop_assert_eq!(again.tcp, as_emitted(&seg.tcp));
                prop_assert_eq!(again.payload, seg.payload);
            }
            Err(e) => prop_assert!(matches!(
                e,
                WireError::BadDataOffset | WireError::BadOptionLength
            )),
        }
    }

    #[test]
    fn arbitrary_options_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
        let _ = TcpOptions::parse(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn any_repr_round_trips(
        repr in tcp_repr(),
        (src, dst) in addresses(),
        ttl in any::<u8>(),
        tos in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let len = packet_len(src, &repr, payload.len());
        // A dirty buffer, longer than needed.
        let mut buf = vec![0xa5u8; len + 7];
        let n = emit_packet(&mut buf, src, dst, ttl, tos, &repr, &payload).unwrap();
        prop_assert_eq!(n, len);
        let seg = parse_packet(&buf[..n]).unwrap();
        prop_assert_eq!(seg.src, src);
        prop_assert_eq!(seg.dst, dst);
        prop_assert_eq!(seg.ttl, ttl);
        prop_assert_eq!(seg.tos, tos);
        prop_assert_eq!(seg.tcp, as_emitted(&repr));
        prop_assert_eq!(seg.payload, &payload[..]);
        prop_assert_eq!(
            peek_tuple(&buf[..n]),
            Some((SocketAddr::new(src, repr.src_port), SocketAddr::new(dst, repr.dst_port)))
        );
        // One byte short never writes a partial packet silently.
        prop_assert_eq!(
            emit_packet(&mut buf[..n - 1], src, dst, ttl, tos, &repr, &payload),
            Err(WireError::BufferTooSmall)
        );
    }
}
