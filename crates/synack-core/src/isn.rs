//! Initial sequence numbers and other keyed per-connection values.
//!
//! ISNs follow RFC 6528 as required by RFC 9293 section 3.4.1: ISN = M + F,
//! where M is a clock ticking every 4 µs (MUST-8) and F is a keyed
//! pseudorandom function of the connection's 4-tuple (MUST-9, SHLD-1), here
//! SipHash-2-4 with a 128-bit secret. The same key also derives the starting
//! point of the ephemeral port search (RFC 6056 algorithm 3), with its own
//! domain-separation byte, and per-connection timestamp offsets (RFC 7323
//! section 7.1): the upper 32 bits of the hash whose lower 32 bits are the
//! ISN's F, so that opening a connection hashes its tuple once, and the two
//! values are as unrelated as two halves of one PRF output.
//!
//! The tuple is fed to the hash byte by byte (a family tag, the address octets
//! and the big-endian port), never through `Hash for SocketAddr`, so values are
//! stable across builds and platforms. IPv6 flow labels and scope ids are not
//! part of the tuple.

use core::cell::Cell;
use core::hash::Hasher;
use core::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher24;

use crate::Instant;

/// Domain-separation byte for the ISN's F.
const DOMAIN_ISN: u8 = 1;
/// Domain-separation byte for the ephemeral port offset.
const DOMAIN_PORT: u8 = 2;
/// Domain-separation byte for the MAC of a SYN cookie.
const DOMAIN_COOKIE: u8 = 4;

/// Derives ISNs, ephemeral port offsets and timestamp offsets from a secret.
///
/// The secret should come from a cryptographically secure source and stay
/// the same for the life of the stack (a new key makes ISNs jump, which RFC
/// 6528 allows only with care across reboots).
#[derive(Clone)]
pub(crate) struct IsnGenerator {
    /// The 128-bit SipHash key.
    key: [u8; 16],
    /// The tuple last given an ISN and the upper half of its hash: the
    /// timestamp offset asked for next, when the connection is set up.
    last: Cell<Option<(SocketAddr, SocketAddr, u32)>>,
}

impl core::fmt::Debug for IsnGenerator {
    /// Does not print the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IsnGenerator").finish_non_exhaustive()
    }
}

impl IsnGenerator {
    /// A generator keyed with `secret`.
    pub fn new(secret: [u8; 16]) -> Self {
        IsnGenerator {
            key: secret,
            last: Cell::new(None),
        }
    }

    /// The ISN for a connection from `local` to `remote` opened at `now`:
    /// M + F (mod 2^32), with M = `now` in units of 4 µs and F the keyed hash
    /// of the 4-tuple, its lower 32 bits.
    pub fn isn(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> u32 {
        let m = (now.micros() / 4) as u32;
        let h = self.tuple_hash(DOMAIN_ISN, local, remote);
        self.last.set(Some((local, remote, (h >> 32) as u32)));
        m.wrapping_add(h as u32)
    }

    /// A keyed offset for choosing the first ephemeral port to try
    /// (RFC 6056 algorithm 3): a hash of the local address and the remote
    /// address and port. The caller typically tries
    /// `min + (offset + counter) % (max - min + 1)` and increments `counter`.
    pub fn ephemeral_port_offset(&self, local_ip: IpAddr, remote: SocketAddr) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write_u8(DOMAIN_PORT);
        write_ip(&mut h, local_ip);
        write_sock(&mut h, remote);
        h.finish() as u32
    }

    /// A keyed per-connection offset to add to the timestamp clock
    /// (RFC 7323 section 7.1), unrelated to the ISN's F: the upper half of
    /// the hash whose lower half F is, kept from the [`IsnGenerator::isn`]
    /// call just made for the same tuple, hashed again otherwise.
    pub fn ts_offset(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        match self.last.get() {
            Some((l, r, ts)) if l == local && r == remote => ts,
            _ => (self.tuple_hash(DOMAIN_ISN, local, remote) >> 32) as u32,
        }
    }

    /// The keyed MAC of a SYN cookie (see `crate::syncookie`): the 4-tuple,
    /// the cookie clock's count, the peer's ISN and the MSS index.
    pub fn cookie_mac(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        count: u32,
        irs: u32,
        mss_index: u8,
    ) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write_u8(DOMAIN_COOKIE);
        write_sock(&mut h, local);
        write_sock(&mut h, remote);
        h.write(&count.to_be_bytes());
        h.write(&irs.to_be_bytes());
        h.write_u8(mss_index);
        h.finish() as u32
    }

    /// SipHash-2-4 of a domain byte and the 4-tuple.
    fn tuple_hash(&self, domain: u8, local: SocketAddr, remote: SocketAddr) -> u64 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write_u8(domain);
        write_sock(&mut h, local);
        write_sock(&mut h, remote);
        h.finish()
    }
}

/// Feeds an address: a family tag (4 or 6), then its octets.
fn write_ip(h: &mut SipHasher24, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            h.write_u8(4);
            h.write(&a.octets());
        }
        IpAddr::V6(a) => {
            h.write_u8(6);
            h.write(&a.octets());
        }
    }
}

/// Feeds an address and its port (big-endian).
fn write_sock(h: &mut SipHasher24, s: SocketAddr) {
    write_ip(h, s.ip());
    h.write(&s.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const KEY: [u8; 16] = *b"0123456789abcdef";

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
    }

    fn v6(last: u16, port: u16) -> SocketAddr {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)),
            port,
        )
    }

    fn m(now: Instant) -> u32 {
        (now.micros() / 4) as u32
    }

    #[test]
    fn must_8_isn_clock_ticks_every_4_microseconds() {
        let g = IsnGenerator::new(KEY);
        let (l, r) = (v4([10, 0, 0, 1], 5000), v4([10, 0, 0, 2], 80));
        let t = Instant::from_secs(12_345);
        let a = g.isn(t, l, r);
        let b = g.isn(t + core::time::Duration::from_secs(1), l, r);
        assert_eq!(b.wrapping_sub(a), 250_000);
        // One tick per 4 µs.
        assert_eq!(g.isn(Instant(t.0 + 3), l, r), a);
        assert_eq!(g.isn(Instant(t.0 + 4), l, r), a.wrapping_add(1));
        // The clock wraps after 2^32 ticks (about 4.77 hours).
        let wrap = Instant(t.0 + 4 * (1u64 << 32));
        assert_eq!(g.isn(wrap, l, r), a);
    }

    #[test]
    fn must_9_isn_unpredictable_without_key() {
        let g1 = IsnGenerator::new(KEY);
        let g2 = IsnGenerator::new(*b"fedcba9876543210");
        let (l, r) = (v4([192, 0, 2, 1], 40000), v4([198, 51, 100, 7], 443));
        let t = Instant::from_millis(777);
        let a = g1.isn(t, l, r);
        let b = g2.isn(t, l, r);
        assert_ne!(a, b);
        // Unrelated: the offsets differ in many bits, not by a small step.
        assert!((a ^ b).count_ones() >= 4, "{a:#x} vs {b:#x}");
        // Neighbouring ports give unrelated offsets too.
        let c = g1.isn(t, v4([192, 0, 2, 1], 40001), r);
        assert!((a ^ c).count_ones() >= 4, "{a:#x} vs {c:#x}");
    }

    #[test]
    fn shld_1_isn_offset_constant_per_tuple() {
        let g = IsnGenerator::new(KEY);
        let tuples = [
            (v4([10, 0, 0, 1], 5000), v4([10, 0, 0, 2], 80)),
            (v4([10, 0, 0, 1], 5001), v4([10, 0, 0, 2], 80)),
            (v4([10, 0, 0, 2], 80), v4([10, 0, 0, 1], 5000)),
            (v6(1, 5000), v6(2, 80)),
        ];
        let times = [0u64, 4, 1_000_003, 999_999_999_999, u64::MAX];
        let mut offsets = [0u32; 4];
        for (i, &(l, r)) in tuples.iter().enumerate() {
            let f = g
                .isn(Instant(times[0]), l, r)
                .wrapping_sub(m(Instant(times[0])));
            for &t in &times {
                let t = Instant(t);
                assert_eq!(g.isn(t, l, r).wrapping_sub(m(t)), f);
            }
            offsets[i] = f;
        }
        for i in 0..offsets.len() {
            for j in i + 1..offsets.len() {
                assert_ne!(offsets[i], offsets[j]);
            }
        }
    }

    #[test]
    fn ipv6_tuples_work() {
        let g = IsnGenerator::new(KEY);
        let (l, r) = (v6(1, 1234), v6(2, 80));
        let t = Instant::from_secs(5);
        assert_eq!(g.isn(t, l, r), g.isn(t, l, r));
        assert_ne!(g.isn(t, l, r), g.isn(t, v6(3, 1234), r));
        // An IPv4 address and its IPv4-mapped IPv6 form are different tuples.
        let mapped = SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
            1234,
        );
        assert_ne!(g.isn(t, v4([10, 0, 0, 1], 1234), r), g.isn(t, mapped, r));
        let p = g.ephemeral_port_offset(l.ip(), r);
        assert_eq!(p, g.ephemeral_port_offset(l.ip(), r));
    }

    #[test]
    fn values_are_stable_across_builds() {
        // Pinned so a change in how the tuple is fed is noticed.
        let g = IsnGenerator::new([0; 16]);
        let (l, r) = (v4([127, 0, 0, 1], 1), v4([127, 0, 0, 1], 2));
        let a = g.isn(Instant::ZERO, l, r);
        let b = g.isn(Instant::ZERO, l, r);
        assert_eq!(a, b);
        let mut h = SipHasher24::new_with_key(&[0; 16]);
        h.write(&[DOMAIN_ISN, 4, 127, 0, 0, 1, 0, 1, 4, 127, 0, 0, 1, 0, 2]);
        let full = h.finish();
        assert_eq!(a, full as u32);
        assert_eq!(g.ts_offset(l, r), (full >> 32) as u32);
    }

    #[test]
    fn ts_offset_is_the_same_with_or_without_the_isn_before_it() {
        let g = IsnGenerator::new(KEY);
        let (l, r) = (v4([10, 0, 0, 1], 5000), v4([10, 0, 0, 2], 80));
        let other = v4([10, 0, 0, 1], 5001);
        let alone = g.ts_offset(l, r);
        g.isn(Instant::ZERO, l, r);
        assert_eq!(g.ts_offset(l, r), alone);
        // The kept half is another tuple's: hashed again.
        g.isn(Instant::ZERO, other, r);
        assert_eq!(g.ts_offset(l, r), alone);
        assert_eq!(
            IsnGenerator::new(KEY).ts_offset(other, r),
            g.ts_offset(other, r)
        );
    }

    #[test]
    fn domains_are_separated() {
        let g = IsnGenerator::new(KEY);
        let (l, r) = (v4([10, 0, 0, 1], 5000), v4([10, 0, 0, 2], 80));
        let f = g.isn(Instant::ZERO, l, r);
        let ts = g.ts_offset(l, r);
        let port = g.ephemeral_port_offset(l.ip(), r);
        assert_ne!(f, ts);
        assert_ne!(f, port);
        assert_ne!(ts, port);
        assert_eq!(ts, g.ts_offset(l, r));
        // The port offset ignores the local port.
        assert_eq!(port, g.ephemeral_port_offset(l.ip(), r));
        assert_ne!(ts, g.ts_offset(v4([10, 0, 0, 1], 5001), r));
    }

    #[test]
    fn debug_hides_secret() {
        let s = alloc::format!("{:?}", IsnGenerator::new(KEY));
        assert!(!s.contains("48"), "{s}");
        assert!(s.contains("IsnGenerator"));
    }
}
