//! Feeds arbitrary bytes to the packet parsers of `synack-wire`.
//!
//! None may panic or hang on any input. Beyond that, whatever parses must be
//! nameable by `peek_tuple`, and must survive being written back out with
//! `emit_packet` and parsed again unchanged (but for SACK blocks that the
//! builder drops to stay within 40 bytes of options).
//!
//! Random mutations almost never keep the IP and TCP checksums right, which
//! would hide the TCP header and option parsers behind the checksum checks,
//! so each input is also tried with both checksums recomputed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synack_wire::{
    emit_packet, internet_checksum, ipv6_upper_layer, packet_len, parse_icmp_error, parse_packet,
    peek_tuple, pseudo_header_sum,
};

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_checksums_fixed(data) {
        check(&fixed);
    }
});

/// Runs every parser on `data` and checks what parses.
fn check(data: &[u8]) {
    let parsed = parse_packet(data);
    let peeked = peek_tuple(data);
    let _ = parse_icmp_error(data);

    let Ok(seg) = parsed else {
        return;
    };
    let (src, dst) = peeked.expect("a packet that parses has a tuple");
    assert_eq!((src.ip(), dst.ip()), (seg.src, seg.dst));
    assert_eq!(
        (src.port(), dst.port()),
        (seg.tcp.src_port, seg.tcp.dst_port)
    );

    let mut out = vec![0u8; packet_len(seg.src, &seg.tcp, seg.payload.len())];
    // synack's option layout can be a few bytes longer than the sender's;
    // a packet already at the IP length limit may then no longer fit.
    let limit = if seg.src.is_ipv4() {
        65_535
    } else {
        40 + 65_535
    };
    if out.len() > limit {
        return;
    }
    let n = emit_packet(
        &mut out,
        seg.src,
        seg.dst,
        seg.ttl,
        seg.tos,
        &seg.tcp,
        seg.payload,
    )
    .expect("a parsed segment can be emitted");
    assert_eq!(n, out.len());
    let again = parse_packet(&out).expect("an emitted packet parses");
    let kept = seg.tcp.options.emitted_sack_blocks();
    assert_eq!(again.tcp.options.sack(), &seg.tcp.options.sack()[..kept]);
    let mut expect = seg.tcp;
    expect.options.sack_count = again.tcp.options.sack_count;
    expect.options.sack_blocks = again.tcp.options.sack_blocks;
    assert_eq!(again.tcp, expect);
    assert_eq!(again.payload, seg.payload);
    assert_eq!((again.ttl, again.tos), (seg.ttl, seg.tos));
}

/// A copy of `data` with the IPv4 header checksum and the TCP checksum
/// recomputed, where the lengths allow finding them.
fn with_checksums_fixed(data: &[u8]) -> Option<Vec<u8>> {
    let mut buf = data.to_vec();
    let (src, dst, tcp_start, tcp_end) = match buf.first()? >> 4 {
        4 => {
            let header_len = usize::from(buf[0] & 0x0f) * 4;
            let header = buf.get_mut(..header_len.max(20))?;
            header[10..12].copy_from_slice(&[0, 0]);
            let c = internet_checksum(0, header);
            header[10..12].copy_from_slice(&c.to_be_bytes());
            let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            let src: [u8; 4] = buf[12..16].try_into().ok()?;
            let dst: [u8; 4] = buf[16..20].try_into().ok()?;
            (src.into(), dst.into(), header_len, total)
        }
        6 => {
            let fixed = buf.get(..40)?;
            let payload_len = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
            let payload = buf.get(40..40 + payload_len)?;
            let (_, upper) = ipv6_upper_layer(fixed[6], payload).ok()?;
            let src: [u8; 16] = fixed[8..24].try_into().ok()?;
            let dst: [u8; 16] = fixed[24..40].try_into().ok()?;
            let start = 40 + payload_len - upper.len();
            (src.into(), dst.into(), start, 40 + payload_len)
        }
        _ => return None,
    };
    let segment = buf.get_mut(tcp_start..tcp_end)?;
    if segment.len() < 20 {
        return Some(buf);
    }
    segment[16..18].copy_from_slice(&[0, 0]);
    let c = internet_checksum(pseudo_header_sum(src, dst, segment.len()), segment);
    segment[16..18].copy_from_slice(&c.to_be_bytes());
    Some(buf)
}
