//! The Internet checksum (RFC 1071) and the TCP pseudo-header sums.
//!
//! The one's-complement sum is associative and independent of the word size
//! it is computed in (RFC 1071 §2), so the bulk of the data is summed eight
//! bytes at a time in a 64-bit accumulator with end-around carry, then folded
//! down to 16 bits.

use core::net::IpAddr;

use crate::IPPROTO_TCP;

#[cfg(target_arch = "x86_64")]
mod x86;

/// One's-complement sum of `data` folded into 16 bits, starting from `initial`
/// (a partial sum, e.g. from [`pseudo_header_sum`]); returns the complemented checksum.
///
/// An odd final byte is summed as if followed by a zero byte (RFC 1071 §4.1).
/// To verify a received header, run this over it with its checksum field in
/// place: a correct header gives 0.
#[inline]
pub fn internet_checksum(initial: u32, data: &[u8]) -> u16 {
    !fold(sum(u64::from(initial), data))
}

/// Unfolded one's-complement sum of the TCP pseudo-header for IPv4 or IPv6.
///
/// IPv4 (RFC 9293 §3.1): source, destination, zero, protocol 6, TCP length.
/// IPv6 (RFC 8200 §8.1): source, destination, 32-bit upper-layer length,
/// zeros, next header 6. The two layouts differ only in zero bytes, so one
/// sum serves both. `tcp_len` is the TCP header plus payload; only its low
/// 32 bits count. Addresses of different families are each summed as they are.
#[inline]
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, tcp_len: usize) -> u32 {
    pseudo_header_sum_proto(src, dst, IPPROTO_TCP, tcp_len)
}

/// [`pseudo_header_sum`] for any upper-layer protocol (ICMPv6 uses 58).
#[inline]
pub(crate) fn pseudo_header_sum_proto(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    // Truncation to the low 32 bits is documented above.
    let len = len as u32;
    let acc = address_sum(address_sum(0, src), dst);
    let acc = add(acc, u64::from(proto));
    let acc = add(acc, u64::from(len));
    fold32(acc)
}

/// [`pseudo_header_sum_proto`], unfolded, from the source and destination
/// addresses as they lie in a received IP header (`addrs`: 8 bytes for
/// IPv4, 32 for IPv6).
#[inline(always)]
pub(crate) fn pseudo_header_sum_raw(addrs: &[u8], proto: u8, len: usize) -> u64 {
    // Truncation to the low 32 bits as in `pseudo_header_sum`.
    let acc = add(u64::from(proto), u64::from(len as u32));
    if let [a, b, c, d, e, f, g, h] = *addrs {
        // IPv4: the two addresses as native-endian 32-bit words, added
        // without a loop (what `sum` does for 8 bytes, inlined).
        let native = u64::from(u32::from_ne_bytes([a, b, c, d]))
            + u64::from(u32::from_ne_bytes([e, f, g, h]));
        return add_native(acc, native);
    }
    sum(acc, addrs)
}

/// Adds the 16-bit words of an address to `acc`: as one 32-bit word for
/// IPv4 and two 64-bit words for IPv6, taken from the address's integer
/// form (equivalent, RFC 1071 §2, and no bytes to load).
#[inline]
fn address_sum(acc: u64, addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => add(acc, u64::from(a.to_bits())),
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            // Truncations pick the high and the low 64 bits.
            add(add(acc, (bits >> 64) as u64), bits as u64)
        }
    }
}

/// One's-complement sum of `data` (as big-endian 16-bit words) added to
/// `acc`, kept in 64 bits with end-around carry so it never overflows.
///
/// Long inputs go to the widest vector code the CPU has ([`x86`] on x86-64);
/// short ones, and every other target, to [`sum_portable`]; inputs
/// shorter than a chunk (headers, addresses) straight to [`sum_words`],
/// inlined, so that a fixed length unrolls.
#[inline]
fn sum(acc: u64, data: &[u8]) -> u64 {
    if data.len() < CHUNK {
        return sum_words(acc, data);
    }
    sum_long(acc, data)
}

/// [`sum`] of inputs of a chunk or more.
fn sum_long(acc: u64, data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= x86::MIN_LEN {
        return x86::sum(acc, data);
    }
    sum_portable(acc, data)
}

/// Bytes per chunk of the vectorised loops: 16 native-endian 32-bit words.
const CHUNK: usize = 64;

/// Bytes summed into the 64-bit lanes before they are folded. Each lane
/// takes one 32-bit word per chunk, so it could only overflow after 2^32
/// chunks; folding every 64 KiB keeps that far off.
const BLOCK: usize = 64 * 1024;

/// [`sum`] in portable code, for any target and any length.
///
/// The bulk is summed as native-endian 32-bit words into sixteen independent
/// 64-bit lanes: no carry chain, so the compiler vectorises it for whatever
/// instruction set it compiles for. RFC 1071 §2 makes this legal: the
/// one's-complement sum does not depend on the word size, and summing in the
/// other byte order gives the byte-swapped sum.
#[inline(always)]
fn sum_portable(mut acc: u64, data: &[u8]) -> u64 {
    let bulk = data.len() - data.len() % CHUNK;
    let (body, rest) = data.split_at(bulk);
    for block in body.chunks(BLOCK) {
        let mut lanes = [0u64; CHUNK / 4];
        for chunk in block.chunks_exact(CHUNK) {
            add_words(&mut lanes, chunk);
        }
        acc = add_lanes(acc, &lanes);
    }
    sum_words(acc, rest)
}

/// Copies `src` into `dst` (of the same length) and returns the
/// one's-complement sum of the bytes, as [`sum`] would from zero.
///
/// Long inputs go to a fused loop in the widest vectors the CPU has
/// ([`x86`] on x86-64); everything else to [`copy_and_sum_portable`].
pub(crate) fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u64 {
    let n = src.len().min(dst.len());
    #[cfg(target_arch = "x86_64")]
    if n >= x86::MIN_LEN {
        return x86::copy_and_sum(&mut dst[..n], &src[..n]);
    }
    copy_and_sum_portable(&mut dst[..n], &src[..n])
}

/// [`copy_and_sum`] in portable code: the platform's `memcpy`, then the sum
/// of the freshly written, cache-hot bytes. Compiled for the baseline
/// instruction set, that beats one fused loop, whose copy would be limited
/// to the baseline's vector width.
fn copy_and_sum_portable(dst: &mut [u8], src: &[u8]) -> u64 {
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
    sum_portable(0, &dst[..n])
}

/// Adds the native-endian 32-bit words of `chunk` to `lanes`, one each.
#[inline(always)]
fn add_words(lanes: &mut [u64; CHUNK / 4], chunk: &[u8]) {
    for (lane, word) in lanes.iter_mut().zip(chunk.chunks_exact(4)) {
        *lane += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
    }
}

/// Adds lanes of native-endian sums to `acc` (a network-order sum).
#[inline(always)]
fn add_lanes(acc: u64, lanes: &[u64; CHUNK / 4]) -> u64 {
    let mut native = 0u64;
    for &lane in lanes {
        native = add(native, lane);
    }
    // Fold to 16 bits in native order, then put it in network order.
    add_native(acc, native)
}

/// The loop for short inputs and for what is left over after the chunks:
/// native-endian 64-bit words added with end-around carry (a carry chain
/// of a few steps, cheaper here than any vector set-up), then a 32-bit
/// word, then the last two or three bytes as big-endian 16-bit words, an
/// odd last byte padded with zero.
#[inline(always)]
fn sum_words(acc: u64, data: &[u8]) -> u64 {
    let mut native = 0u64;
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        native = add(native, u64::from_ne_bytes(w));
    }
    let mut rest = words.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        native = add(native, u64::from(u32::from_ne_bytes([*a, *b, *c, *d])));
        rest = tail;
    }
    let mut acc = add_native(acc, native);
    if let [a, b, tail @ ..] = rest {
        acc = add(acc, u64::from(u16::from_be_bytes([*a, *b])));
        rest = tail;
    }
    if let [last] = rest {
        acc = add(acc, u64::from(*last) << 8);
    }
    acc
}

/// Adds the exact native-endian sum of a block (a plain integer sum of its
/// native-endian 32-bit words, which must not have wrapped) to `acc`, a
/// network-order one's-complement sum.
#[inline(always)]
fn add_native(acc: u64, native: u64) -> u64 {
    add(acc, u64::from(u16::from_be(fold(native))))
}

/// Adds a partial sum of bytes that started at an odd offset of the
/// checksummed data: such a sum counts every byte in the wrong half of its
/// word, so it is byte-swapped first (RFC 1071 §2).
#[inline]
pub(crate) fn add_at_offset(acc: u64, part: u64, odd: bool) -> u64 {
    if odd {
        add(acc, u64::from(fold(part).swap_bytes()))
    } else {
        add(acc, part)
    }
}

/// The complemented 16-bit checksum from an unfolded sum.
#[inline]
pub(crate) fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// [`sum`] for the crate: the unfolded sum of `data` added to `acc`.
#[inline]
pub(crate) fn partial(acc: u64, data: &[u8]) -> u64 {
    sum(acc, data)
}

/// An unfolded sum folded to 16 bits, not complemented (the pseudo-header
/// sum a checksum-offloading device expects in the checksum field).
pub(crate) fn fold_sum(acc: u64) -> u16 {
    fold(acc)
}

/// An unfolded sum folded to 32 bits, still a valid sum (for the crate).
#[inline]
pub(crate) fn fold_to_32(acc: u64) -> u32 {
    fold32(acc)
}

/// Adds two unfolded one's-complement sums (for the crate).
#[inline]
pub(crate) fn add_sums(a: u64, b: u64) -> u64 {
    add(a, b)
}

/// One's-complement addition in 64 bits (end-around carry).
#[inline]
fn add(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    // When the addition wrapped, `s` is at most 2^64 - 2, so this cannot wrap.
    s + u64::from(carry)
}

/// Folds a 64-bit one's-complement sum into 32 bits (still a valid sum).
#[inline]
fn fold32(acc: u64) -> u32 {
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    // Two folds leave at most 32 significant bits.
    acc as u32
}

/// Folds a 64-bit one's-complement sum into 16 bits.
#[inline]
fn fold(acc: u64) -> u16 {
    let acc = u64::from(fold32(acc));
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    // Two folds of a 32-bit value leave at most 16 significant bits.
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    /// The obvious, slow definition: 16 bits at a time, folding as we go.
    fn reference(initial: u32, data: &[u8]) -> u16 {
        let mut acc = u64::from(initial);
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |b| u64::from(*b));
            acc += hi | lo;
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }

    #[test]
    fn rfc_1071_known_answer() {
        // RFC 1071 §3: the sum of 00 01 f2 03 f4 f5 f6 f7 is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
        assert_eq!(internet_checksum(0, &data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(0, &[0xab]), !0xab00);
        assert_eq!(
            internet_checksum(0, &[0x12, 0x34, 0x56]),
            !(0x1234 + 0x5600)
        );
        // 9 bytes: one 8-byte chunk and an odd byte.
        let data = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(internet_checksum(0, &data), reference(0, &data));
    }

    #[test]
    fn empty_data_gives_complement_of_initial() {
        assert_eq!(internet_checksum(0, &[]), 0xffff);
        assert_eq!(internet_checksum(0x1234, &[]), !0x1234);
        // A large initial value is folded, not truncated.
        assert_eq!(internet_checksum(0x0001_fffe, &[]), !0xffff);
    }

    #[test]
    fn matches_reference_on_many_lengths_and_carries() {
        let mut data = [0u8; 300];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0xf0);
        }
        for len in 0..data.len() {
            for initial in [0, 1, 0xffff, 0x0012_3456, u32::MAX] {
                assert_eq!(
                    internet_checksum(initial, &data[..len]),
                    reference(initial, &data[..len]),
                    "len {len} initial {initial:#x}"
                );
            }
        }
        let ones = [0xffu8; 1000];
        assert_eq!(internet_checksum(0, &ones), reference(0, &ones));
    }

    /// Inputs past the 64 KiB block of the vectorised sum, all ones (the
    /// most carries) and a byte pattern, at lengths around the boundaries.
    #[test]
    fn matches_reference_across_blocks() {
        extern crate std;
        use std::vec::Vec;
        let pattern: Vec<u8> = (0..200_003u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        let ones = std::vec![0xffu8; 200_003];
        for len in [65_535, 65_536, 65_537, 65_552, 131_072, 131_089, 200_003] {
            assert_eq!(
                internet_checksum(7, &pattern[..len]),
                reference(7, &pattern[..len]),
                "{len}"
            );
            assert_eq!(
                internet_checksum(0, &ones[..len]),
                reference(0, &ones[..len]),
                "{len}"
            );
        }
    }

    #[test]
    fn checksum_in_place_verifies_to_zero() {
        let mut data = [
            0x45u8, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = internet_checksum(0, &data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet_checksum(0, &data), 0);
    }

    #[test]
    fn pseudo_header_v4_layout() {
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        let bytes = [192, 0, 2, 1, 198, 51, 100, 7, 0, 6, 0x05, 0xdc];
        let got = pseudo_header_sum(src, dst, 1500);
        assert_eq!(fold(u64::from(got)), fold(sum(0, &bytes)));
    }

    #[test]
    fn pseudo_header_from_raw_addresses_matches() {
        let (s4, d4) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7));
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&s4.octets());
        raw[4..].copy_from_slice(&d4.octets());
        for len in [0, 20, 1500, 0x1_0001] {
            let want = fold(u64::from(pseudo_header_sum(s4.into(), d4.into(), len)));
            assert_eq!(fold(pseudo_header_sum_raw(&raw, IPPROTO_TCP, len)), want);
        }
        let s6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff);
        let d6 = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0xabcd, 2);
        let mut raw = [0u8; 32];
        raw[..16].copy_from_slice(&s6.octets());
        raw[16..].copy_from_slice(&d6.octets());
        for len in [0, 20, 1500, 0x1_0001] {
            let want = fold(u64::from(pseudo_header_sum(s6.into(), d6.into(), len)));
            assert_eq!(fold(pseudo_header_sum_raw(&raw, IPPROTO_TCP, len)), want);
        }
    }

    #[test]
    fn pseudo_header_v6_layout() {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0xabcd, 2);
        let len: u32 = 0x0001_0203;
        let mut bytes = [0u8; 40];
        bytes[..16].copy_from_slice(&src.octets());
        bytes[16..32].copy_from_slice(&dst.octets());
        bytes[32..36].copy_from_slice(&len.to_be_bytes());
        bytes[39] = 6;
        let got = pseudo_header_sum(IpAddr::V6(src), IpAddr::V6(dst), len as usize);
        assert_eq!(fold(u64::from(got)), fold(sum(0, &bytes)));
    }

    /// A sum function: (initial, data) -> unfolded sum.
    pub(super) type SumFn = fn(u64, &[u8]) -> u64;

    /// A copy-and-sum function: (destination, source) -> unfolded sum.
    pub(super) type CopyFn = fn(&mut [u8], &[u8]) -> u64;

    /// Every implementation of the sum in this build, by name: the entry
    /// point, the portable loop, and each vector variant the CPU can run.
    fn sums() -> std::vec::Vec<(&'static str, SumFn)> {
        let mut v: std::vec::Vec<(&'static str, SumFn)> =
            std::vec![("dispatch", sum), ("portable", |a, d| sum_portable(a, d))];
        #[cfg(target_arch = "x86_64")]
        v.extend(x86::variants().map(|(name, s, _)| (name, s)));
        v
    }

    /// Every implementation of copy-and-sum in this build, by name.
    fn copies() -> std::vec::Vec<(&'static str, CopyFn)> {
        let mut v: std::vec::Vec<(&'static str, CopyFn)> = std::vec![
            ("dispatch", copy_and_sum),
            ("portable", copy_and_sum_portable),
        ];
        #[cfg(target_arch = "x86_64")]
        v.extend(x86::variants().map(|(name, _, c)| (name, c)));
        v
    }

    extern crate std;

    /// Every variant agrees with the reference at every length up to a few
    /// chunks past the dispatch threshold, at every start offset in a
    /// 64-byte line, on all-ones data (the most carries).
    #[test]
    fn variants_match_reference_on_ones_at_all_offsets() {
        let ones = std::vec![0xffu8; 600];
        for offset in 0..64 {
            for len in 0..(600 - offset) {
                let data = &ones[offset..offset + len];
                let want = reference(0, data);
                for (name, f) in sums() {
                    assert_eq!(!fold(f(0, data)), want, "{name} sum len {len} at {offset}");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Every sum variant equals the 16-bit reference, at any length
        /// (odd ones too), start offset (odd ones too) and initial value.
        #[test]
        fn sum_variants_match_reference(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            offset in 0usize..64,
            initial in proptest::prelude::any::<u32>(),
        ) {
            let data = data.get(offset..).unwrap_or_default();
            let want = reference(initial, data);
            for (name, f) in sums() {
                proptest::prop_assert_eq!(!fold(f(u64::from(initial), data)), want, "{}", name);
            }
        }

        /// Every copy-and-sum variant copies exactly the source and returns
        /// its sum, wherever source and destination start.
        #[test]
        fn copy_variants_copy_and_match_reference(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            src_offset in 0usize..64,
            dst_offset in 0usize..64,
        ) {
            let src = data.get(src_offset..).unwrap_or_default();
            let want = reference(0, src);
            for (name, f) in copies() {
                let mut out = std::vec![0x5au8; dst_offset + src.len() + 7];
                let got = f(&mut out[dst_offset..dst_offset + src.len()], src);
                proptest::prop_assert_eq!(!fold(got), want, "{}", name);
                proptest::prop_assert_eq!(&out[dst_offset..dst_offset + src.len()], src, "{}", name);
                proptest::prop_assert!(out[..dst_offset].iter().all(|&b| b == 0x5a), "{}", name);
                proptest::prop_assert!(
                    out[dst_offset + src.len()..].iter().all(|&b| b == 0x5a),
                    "{}",
                    name
                );
            }
        }
    }

    /// Copy-and-sum across the 64 KiB fold block, all ones.
    #[test]
    fn copy_variants_across_blocks() {
        let ones = std::vec![0xffu8; 200_003];
        for len in [65_535, 65_536, 65_537, 131_089, 200_003] {
            let want = reference(0, &ones[..len]);
            for (name, f) in copies() {
                let mut out = std::vec![0u8; len];
                assert_eq!(!fold(f(&mut out, &ones[..len])), want, "{name} {len}");
                assert_eq!(out, &ones[..len], "{name} {len}");
            }
        }
    }
}
