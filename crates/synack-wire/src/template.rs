//! A connection's packet header, built once: the IP header and the sums of
//! the words that never change between its segments (addresses, protocol,
//! TTL, TOS), so that each segment only writes and sums what does change.

use core::net::SocketAddr;

use crate::checksum;
use crate::ip::{Ipv4Header, Ipv6Header};
use crate::packet::TcpChecksum;
use crate::tcp::CHECKSUM_OFFSET;
use crate::{
    TcpOptions, TcpRepr, WireError, ECN_MASK, IPPROTO_TCP, IPV4_HEADER_LEN, IPV6_HEADER_LEN,
};

/// The packet header of one connection (one pair of endpoints), prebuilt:
/// [`HeaderTemplate::emit`] writes exactly the packet that
/// [`crate::emit_packet_with`] would for the same arguments, without
/// building the IP header field by field or summing the addresses for
/// every segment.
///
/// The IP header is kept with its length fields (and, for IPv4, its
/// checksum) zero, with the one's-complement sum of its other words; the
/// TCP checksum's pseudo-header (RFC 9293 §3.1) is kept summed without its
/// TCP length. Per segment the lengths are added to those sums (RFC 1071
/// §2: the sum does not depend on the order of its words), and the TCP
/// header's words are summed from the values being written rather than
/// read back from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderTemplate {
    /// The IP header: the first `ip_len` bytes count.
    ip: [u8; IPV6_HEADER_LEN],
    /// 20 (IPv4) or 40 (IPv6).
    ip_len: u8,
    /// IPv4: the sum of the header's words but the total length and the
    /// checksum (both zero in `ip`), folded to 32 bits (4 bytes a
    /// connection less than unfolded). Unused for IPv6.
    ip_sum: u32,
    /// The pseudo-header sum without the TCP length (both addresses and
    /// the protocol), folded to 32 bits.
    pseudo: u32,
}

impl HeaderTemplate {
    /// The template for packets from `src` to `dst` with TTL (hop limit)
    /// `ttl` and TOS (traffic class) `tos`, the IP header as
    /// [`crate::emit_packet_with`] writes it: for IPv4 no options, DF set,
    /// identification 0; for IPv6 flow label 0 and no extension headers.
    /// The ports are not part of it: they come from each [`TcpRepr`].
    ///
    /// Fails with [`WireError::AddressFamilyMismatch`] when the two
    /// addresses are not of the same family.
    pub fn new(src: SocketAddr, dst: SocketAddr, ttl: u8, tos: u8) -> Result<Self, WireError> {
        let mut ip = [0u8; IPV6_HEADER_LEN];
        let (ip_len, ip_sum) = match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                let header = Ipv4Header::unfragmented(*s.ip(), *d.ip(), tos, ttl, IPPROTO_TCP);
                header.emit(&mut ip, 0)?;
                // Total length and checksum are patched per packet.
                ip[2..4].copy_from_slice(&[0, 0]);
                ip[10..12].copy_from_slice(&[0, 0]);
                let sum = checksum::fold_to_32(checksum::partial(0, &ip[..IPV4_HEADER_LEN]));
                (IPV4_HEADER_LEN, sum)
            }
            (SocketAddr::V6(s), SocketAddr::V6(d)) => {
                let header = Ipv6Header {
                    src: *s.ip(),
                    dst: *d.ip(),
                    traffic_class: tos,
                    flow_label: 0,
                    next_header: IPPROTO_TCP,
                    hop_limit: ttl,
                };
                header.emit(&mut ip, 0)?;
                (IPV6_HEADER_LEN, 0)
            }
            _ => return Err(WireError::AddressFamilyMismatch),
        };
        let pseudo = checksum::pseudo_header_sum_proto(src.ip(), dst.ip(), IPPROTO_TCP, 0);
        Ok(HeaderTemplate {
            ip,
            // 20 or 40.
            ip_len: ip_len as u8,
            ip_sum,
            pseudo,
        })
    }

    /// The TOS (IPv4) or Traffic Class (IPv6) byte of the template's
    /// packets: DSCP in the top six bits, ECN in the low two.
    pub fn tos(&self) -> u8 {
        if self.ip_len() == IPV4_HEADER_LEN {
            self.ip[1]
        } else {
            (self.ip[0] << 4) | (self.ip[1] >> 4)
        }
    }

    /// Rebuilds the template for TOS (traffic class) `tos`: the same
    /// template as [`HeaderTemplate::new`] with `tos` and the other
    /// arguments unchanged. Done once per change of the setting, so that
    /// the packets themselves cost nothing more (RFC 9293 §3.9.1.9,
    /// SHLD-21: the Diffserv field may change during a connection).
    pub fn set_tos(&mut self, tos: u8) {
        if self.ip_len() == IPV4_HEADER_LEN {
            self.ip[1] = tos;
            // The total length and checksum words are zero in `ip`.
            self.ip_sum = checksum::fold_to_32(checksum::partial(0, &self.ip[..IPV4_HEADER_LEN]));
        } else {
            // Version (4 bits), traffic class (8), flow label (20).
            self.ip[0] = 0x60 | (tos >> 4);
            self.ip[1] = (tos << 4) | (self.ip[1] & 0x0f);
        }
    }

    /// Length of the IP header: 20 or 40.
    pub fn ip_len(&self) -> usize {
        usize::from(self.ip_len)
    }

    /// Number of bytes [`HeaderTemplate::emit`] writes for `tcp` and
    /// `payload_len` bytes of payload (as [`crate::packet_len`]).
    pub fn packet_len(&self, tcp: &TcpRepr, payload_len: usize) -> usize {
        (self.ip_len() + tcp.header_len()).saturating_add(payload_len)
    }

    /// Writes a complete IP packet into `buf` and returns its length: the
    /// template's IP header, `tcp` and the concatenation of `parts` as the
    /// payload, with the TCP checksum filled in as `mode` says (MUST-2).
    /// The same bytes as [`crate::emit_packet_with`] with the template's
    /// addresses, TTL and TOS.
    ///
    /// Fails with [`WireError::BufferTooSmall`] when `buf` is shorter than
    /// [`HeaderTemplate::packet_len`] or the packet would be too long for
    /// the IP length field (65,535 bytes).
    pub fn emit(
        &self,
        buf: &mut [u8],
        tcp: &TcpRepr,
        parts: &[&[u8]],
        mode: TcpChecksum,
    ) -> Result<usize, WireError> {
        self.emit_ecn(buf, tcp, parts, mode, None)
    }

    /// [`HeaderTemplate::emit`] with the ECN field (RFC 3168 §5) of this one
    /// packet set to `ecn` (its low two bits) in place of the template's:
    /// the transport marks its data ECT while its other segments stay
    /// Not-ECT (RFC 3168 §6.1.2, §6.1.4), and the DSCP above the ECN bits
    /// stays as the template has it. `None`: the template's TOS unchanged.
    pub fn emit_ecn(
        &self,
        buf: &mut [u8],
        tcp: &TcpRepr,
        parts: &[&[u8]],
        mode: TcpChecksum,
        ecn: Option<u8>,
    ) -> Result<usize, WireError> {
        let ip_len = self.ip_len();
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        let header_len = tcp.header_len();
        let segment_len = header_len.saturating_add(payload_len);
        let total = ip_len.saturating_add(segment_len);
        // IPv4's total length, or IPv6's payload length, must fit 16 bits.
        let length_field = if ip_len == IPV4_HEADER_LEN {
            total
        } else {
            segment_len
        };
        let length_field = u16::try_from(length_field).map_err(|_| WireError::BufferTooSmall)?;
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        let (ip, segment) = out.split_at_mut(ip_len);
        ip.copy_from_slice(&self.ip[..ip_len]);
        let old_ecn = self.tos() & ECN_MASK;
        let new_ecn = ecn.map_or(old_ecn, |e| e & ECN_MASK);
        if ip_len == IPV4_HEADER_LEN {
            ip[1] = (ip[1] & !ECN_MASK) | new_ecn;
            ip[2..4].copy_from_slice(&length_field.to_be_bytes());
            let mut sum = checksum::add_sums(u64::from(self.ip_sum), u64::from(length_field));
            if new_ecn != old_ecn {
                // The ECN bits are the low bits of the header's first word:
                // add the new ones, and the old ones' complement
                // (subtraction in one's complement arithmetic, RFC 1624).
                let delta = u64::from(new_ecn) + u64::from(0xFFFF - u16::from(old_ecn));
                sum = checksum::add_sums(sum, delta);
            }
            ip[10..12].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        } else {
            // Traffic class straddles bytes 0 and 1: its low two bits are
            // bits 4 and 5 of byte 1.
            ip[1] = (ip[1] & !(ECN_MASK << 4)) | (new_ecn << 4);
            ip[4..6].copy_from_slice(&length_field.to_be_bytes());
        }

        // The TCP header, as TcpRepr::emit writes it (checksum field zero
        // for now), its fixed words summed as they are written.
        let (header, payload) = segment.split_at_mut(header_len);
        let (fixed, options) = header.split_at_mut(crate::TCP_HEADER_LEN);
        // header_len is at most 60, so the data offset fits in four bits.
        let offset_flags = (((header_len / 4) as u16) << 12) | u16::from(tcp.flags.0);
        fixed[0..2].copy_from_slice(&tcp.src_port.to_be_bytes());
        fixed[2..4].copy_from_slice(&tcp.dst_port.to_be_bytes());
        fixed[4..8].copy_from_slice(&tcp.seq.to_be_bytes());
        fixed[8..12].copy_from_slice(&tcp.ack.to_be_bytes());
        fixed[12..14].copy_from_slice(&offset_flags.to_be_bytes());
        fixed[14..16].copy_from_slice(&tcp.window.to_be_bytes());
        fixed[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&[0, 0]);
        fixed[18..20].copy_from_slice(&tcp.urgent.to_be_bytes());
        tcp.options.emit(options)?;
        // The pseudo-header's TCP length (the segment's, under 2^16 here).
        let pseudo = checksum::add_sums(u64::from(self.pseudo), segment_len as u64);

        if mode == TcpChecksum::Partial {
            let mut at = 0;
            for part in parts.iter().filter(|p| !p.is_empty()) {
                payload[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            let field = checksum::fold_sum(pseudo).to_be_bytes();
            segment[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&field);
            return Ok(total);
        }

        // Every word of the fixed header is at most 32 bits, and there are
        // few of them: their plain sum cannot overflow 64 bits.
        let words = u64::from(tcp.src_port)
            + u64::from(tcp.dst_port)
            + u64::from(tcp.seq)
            + u64::from(tcp.ack)
            + u64::from(offset_flags)
            + u64::from(tcp.window)
            + u64::from(tcp.urgent);
        let mut acc = checksum::add_sums(pseudo, words);
        acc = match options_words(&tcp.options) {
            Some(sum) => checksum::add_sums(acc, sum),
            // Rare layouts (SYNs, SACK blocks): sum the bytes written.
            None => checksum::partial(acc, options),
        };
        // The header is a multiple of 4 bytes, so every part's offset in the
        // segment has the parity of its offset in the payload.
        let mut at = 0;
        for part in parts.iter().filter(|p| !p.is_empty()) {
            let part_sum = checksum::copy_and_sum(&mut payload[at..at + part.len()], part);
            acc = checksum::add_at_offset(acc, part_sum, at % 2 == 1);
            at += part.len();
        }
        let field = checksum::finish(acc).to_be_bytes();
        segment[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&field);
        Ok(total)
    }
}

/// The sum of the option words [`TcpOptions::emit`] writes, from their
/// values, for the layouts nearly every segment carries: none, or
/// `NOP, NOP, Timestamps` alone (RFC 7323 Appendix A). `None` for the rest.
fn options_words(options: &TcpOptions) -> Option<u64> {
    match *options {
        TcpOptions {
            mss: None,
            window_scale: None,
            sack_permitted: false,
            sack_count: 0,
            timestamps,
            ..
        } => Some(match timestamps {
            // NOP NOP | Timestamps (kind 8), length 10 | TSval | TSecr.
            Some((tsval, tsecr)) => 0x0101 + 0x080a + u64::from(tsval) + u64::from(tsecr),
            None => 0,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{emit_packet_with, parse_packet, SackBlock, TcpFlags};
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn endpoints(v6: bool) -> (SocketAddr, SocketAddr) {
        if v6 {
            (
                SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
                    49152,
                ),
                SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0xab, 2)),
                    443,
                ),
            )
        } else {
            (
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 49152),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 200, 254)), 443),
            )
        }
    }

    fn reprs() -> [TcpRepr; 4] {
        let base = TcpRepr {
            src_port: 49152,
            dst_port: 443,
            seq: 0xfedc_ba98,
            ack: 0x0123_4567,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 0xffff,
            urgent: 0,
            options: TcpOptions::default(),
        };
        let mut ts = base;
        ts.options.timestamps = Some((0xffff_fff0, 0x8000_0001));
        let mut syn = base;
        syn.flags = TcpFlags::SYN;
        syn.options = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            ..TcpOptions::default()
        };
        let mut sack = ts;
        sack.urgent = 0x8001;
        sack.flags = TcpFlags::ACK | TcpFlags::URG | TcpFlags::FIN;
        sack.options.sack_count = 3;
        for (i, b) in sack.options.sack_blocks.iter_mut().enumerate() {
            *b = SackBlock {
                left: 0xffff_0000 + i as u32 * 7,
                right: 0xffff_0003 + i as u32 * 9,
            };
        }
        [base, ts, syn, sack]
    }

    /// The template writes exactly what `emit_packet_with` writes.
    #[test]
    fn same_bytes_as_emit_packet_with() {
        let data: [u8; 700] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let splits: [&[&[u8]]; 5] = [
            &[],
            &[&data[..1]],
            &[&data[..301], &data[301..]],
            &[&[], &data[..200]],
            &[&data[..3], &[], &data[3..250], &data[250..251]],
        ];
        for v6 in [false, true] {
            let (src, dst) = endpoints(v6);
            let t = HeaderTemplate::new(src, dst, 63, 0x10).unwrap();
            for repr in reprs() {
                for parts in splits {
                    for mode in [TcpChecksum::Full, TcpChecksum::Partial] {
                        let mut want = [0x5au8; 1024];
                        let mut got = [0xa5u8; 1024];
                        let n = emit_packet_with(
                            &mut want,
                            src.ip(),
                            dst.ip(),
                            63,
                            0x10,
                            &repr,
                            parts,
                            mode,
                        )
                        .unwrap();
                        let len: usize = parts.iter().map(|p| p.len()).sum();
                        assert_eq!(t.packet_len(&repr, len), n);
                        assert_eq!(t.emit(&mut got, &repr, parts, mode), Ok(n));
                        assert_eq!(&got[..n], &want[..n], "{repr:?} {mode:?} v6={v6}");
                        if mode == TcpChecksum::Full {
                            assert!(parse_packet(&got[..n]).is_ok());
                        }
                    }
                }
            }
        }
    }

    /// A template whose TOS changed is the template built with that TOS:
    /// the same bytes on the wire, the IPv4 header checksum still right.
    #[test]
    fn set_tos_rebuilds_the_header() {
        for v6 in [false, true] {
            let (src, dst) = endpoints(v6);
            let mut t = HeaderTemplate::new(src, dst, 64, 0).unwrap();
            assert_eq!(t.tos(), 0);
            for tos in [0xB8, 0x01, 0xFF, 0x00, 0x28] {
                t.set_tos(tos);
                assert_eq!(
                    t,
                    HeaderTemplate::new(src, dst, 64, tos).unwrap(),
                    "{tos:#x}"
                );
                assert_eq!(t.tos(), tos);
                let mut buf = [0u8; 128];
                let n = t.emit(&mut buf, &reprs()[1], &[b"x"], TcpChecksum::Full);
                let seg = parse_packet(&buf[..n.unwrap()]).unwrap();
                assert_eq!(seg.tos, tos, "v6={v6}");
            }
        }
    }

    /// A packet whose ECN field is set per packet is the packet of a
    /// template built with that field: same bytes, the IPv4 header
    /// checksum right, the DSCP untouched.
    #[test]
    fn emit_ecn_sets_only_the_ecn_bits() {
        for v6 in [false, true] {
            let (src, dst) = endpoints(v6);
            for dscp_tos in [0x00u8, 0xB8, 0xB9, 0xFF, 0x28] {
                let t = HeaderTemplate::new(src, dst, 64, dscp_tos).unwrap();
                for ecn in [0u8, 1, 2, 3] {
                    let want_tos = (dscp_tos & !ECN_MASK) | ecn;
                    let want_t = HeaderTemplate::new(src, dst, 64, want_tos).unwrap();
                    for repr in reprs() {
                        for mode in [TcpChecksum::Full, TcpChecksum::Partial] {
                            let mut want = [0u8; 256];
                            let mut got = [0u8; 256];
                            let n = want_t.emit(&mut want, &repr, &[b"abc"], mode).unwrap();
                            let m = t.emit_ecn(&mut got, &repr, &[b"abc"], mode, Some(ecn));
                            assert_eq!(m, Ok(n));
                            assert_eq!(&got[..n], &want[..n], "{dscp_tos:#x} {ecn} v6={v6}");
                            if mode == TcpChecksum::Full {
                                let seg = parse_packet(&got[..n]).unwrap();
                                assert_eq!(seg.tos, want_tos);
                            }
                        }
                    }
                }
                let mut a = [0u8; 256];
                let mut b = [0u8; 256];
                let n = t.emit(&mut a, &reprs()[0], &[], TcpChecksum::Full).unwrap();
                t.emit_ecn(&mut b, &reprs()[0], &[], TcpChecksum::Full, None)
                    .unwrap();
                assert_eq!(&a[..n], &b[..n], "None keeps the template's TOS");
            }
        }
    }

    #[test]
    fn mixed_families_and_short_buffers() {
        let (a, _) = endpoints(false);
        let (_, b) = endpoints(true);
        assert_eq!(
            HeaderTemplate::new(a, b, 64, 0),
            Err(WireError::AddressFamilyMismatch)
        );
        let (src, dst) = endpoints(false);
        let t = HeaderTemplate::new(src, dst, 64, 0).unwrap();
        let repr = reprs()[1];
        let mut buf = [0u8; 64];
        let need = t.packet_len(&repr, 10);
        assert_eq!(
            t.emit(&mut buf[..need - 1], &repr, &[&[7; 10]], TcpChecksum::Full),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(
            t.emit(&mut buf, &repr, &[&[7; 10]], TcpChecksum::Full),
            Ok(need)
        );
    }

    #[test]
    fn too_long_for_the_length_field() {
        static BIG: [u8; 65_536] = [0; 65_536];
        let mut buf = [0u8; 128];
        for v6 in [false, true] {
            let (src, dst) = endpoints(v6);
            let t = HeaderTemplate::new(src, dst, 64, 0).unwrap();
            assert_eq!(
                t.emit(&mut buf, &reprs()[0], &[&BIG], TcpChecksum::Full),
                Err(WireError::BufferTooSmall)
            );
        }
    }
}
