//! The Internet checksum (RFC 1071) and the TCP pseudo-header sums.

use core::net::IpAddr;

/// One's-complement sum of `data` folded into 16 bits, starting from `initial`
/// (a partial sum, e.g. from [`pseudo_header_sum`]); returns the complemented checksum.
pub fn internet_checksum(initial: u32, data: &[u8]) -> u16 {
    let _ = (initial, data);
    todo!()
}

/// Unfolded one's-complement sum of the TCP pseudo-header for IPv4 or IPv6.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, tcp_len: usize) -> u32 {
    let _ = (src, dst, tcp_len);
    todo!()
}
