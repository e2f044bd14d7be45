//! SYN cookies (RFC 4987 §3.6): a listener whose SYN queue is full answers
//! a SYN with a SYN-ACK whose ISN is a cookie, keeps nothing, and builds the
//! connection when an ACK brings the cookie back (SEG.ACK - 1).
//!
//! The cookie (32 bits, our ISS):
//!
//! ```text
//!  31 30 29   27 26                                   0
//! +-----+-------+--------------------------------------+
//! |count|  mss  |  MAC(key, 4-tuple, count, IRS, mss)  |
//! +-----+-------+--------------------------------------+
//! ```
//!
//! - `count`: the low two bits of a clock ticking every [`PERIOD_SECS`]
//!   seconds; a cookie of the current or the previous tick is accepted
//!   (it lives 64 to 128 s), an older one is refused.
//! - `mss`: an index into [`MSS_TABLE`], the largest entry not above the
//!   MSS the peer offered.
//! - the MAC: 27 bits of keyed SipHash-2-4 (the stack's secret, a domain
//!   byte of its own) over the 4-tuple, the full clock count, the peer's
//!   ISN and the MSS index. A forged ACK opens a connection only by
//!   guessing it: one chance in 2^27 per try, for an attacker who already
//!   knows the 4-tuple and the peer's sequence number.
//!
//! What else the SYN asked for goes into the low [`TS_BITS`] bits of our
//! TSval when the peer offered timestamps (as Linux does): its window
//! shift (4 bits, 15 for none), SACK-Permitted (1 bit) and whether the
//! cookie SYN-ACK agreed to ECN (1 bit: the SYN was an ECN-setup SYN and
//! the stack accepts ECN, RFC 3168 §6.1.1). The peer echoes the TSval in
//! the TSecr of its ACK. Without timestamps there is nowhere to keep them:
//! the cookie SYN-ACK then offers neither window scaling nor SACK
//! (RFC 7323 §2.2, RFC 2018 §2: offered only in a SYN, so never later) and
//! declines ECN (no ECE on it), and the connection runs without them.

use crate::isn::IsnGenerator;
use crate::{ConnTuple, Instant};

/// Seconds per tick of the cookie clock.
pub(crate) const PERIOD_SECS: u64 = 64;

/// The peer MSS values a cookie can carry (index in 3 bits): the common
/// ones (IPv4 minimum, IPv6 minimum, tunnels, Ethernet, jumbo frames).
pub(crate) const MSS_TABLE: [u16; 8] = [216, 536, 1024, 1220, 1300, 1440, 1460, 8960];

/// Bits of the MAC in a cookie.
const MAC_BITS: u32 = 27;
const MAC_MASK: u32 = (1 << MAC_BITS) - 1;
/// Where the MSS index sits.
const MSS_SHIFT: u32 = MAC_BITS;
/// Where the clock's two bits sit.
const COUNT_SHIFT: u32 = 30;

/// Low bits of our TSval that carry the SYN's options.
pub(crate) const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
/// The window-shift field of the TSval that says "no window scaling".
const NO_WSCALE: u32 = 0xF;
/// The SACK-Permitted bit of the TSval.
const TS_SACK: u32 = 1 << 4;
/// The ECN bit of the TSval: the cookie SYN-ACK carried ECE.
const TS_ECN: u32 = 1 << 5;

/// The cookie clock at `now`.
pub(crate) fn clock(now: Instant) -> u32 {
    (now.micros() / 1_000_000 / PERIOD_SECS) as u32
}

/// The index of the largest table MSS not above `peer_mss` (the smallest
/// entry when the peer offered less than every entry).
pub(crate) fn mss_index(peer_mss: u32) -> u8 {
    MSS_TABLE
        .iter()
        .rposition(|&m| u32::from(m) <= peer_mss)
        .unwrap_or(0) as u8
}

/// The cookie for a SYN from `tuple`'s remote with sequence number `irs`
/// offering `peer_mss`, made at `now`.
pub(crate) fn make(
    key: &IsnGenerator,
    now: Instant,
    tuple: ConnTuple,
    irs: u32,
    peer_mss: u32,
) -> u32 {
    let count = clock(now);
    let idx = mss_index(peer_mss);
    let mac = key.cookie_mac(tuple.local, tuple.remote, count, irs, idx) & MAC_MASK;
    ((count & 3) << COUNT_SHIFT) | (u32::from(idx) << MSS_SHIFT) | mac
}

/// Checks a cookie returned by an ACK (`cookie` = SEG.ACK - 1, `irs` =
/// SEG.SEQ - 1) at `now`: the MSS it carries when the MAC matches and the
/// cookie is of the current or the previous clock tick, else `None`.
pub(crate) fn check(
    key: &IsnGenerator,
    now: Instant,
    tuple: ConnTuple,
    irs: u32,
    cookie: u32,
) -> Option<u16> {
    let current = clock(now);
    let age = current.wrapping_sub(cookie >> COUNT_SHIFT) & 3;
    if age > 1 {
        return None;
    }
    let count = current.wrapping_sub(age);
    let idx = ((cookie >> MSS_SHIFT) & 7) as u8;
    let mac = key.cookie_mac(tuple.local, tuple.remote, count, irs, idx) & MAC_MASK;
    (mac == cookie & MAC_MASK).then_some(MSS_TABLE[usize::from(idx)])
}

/// Our TSval for a cookie SYN-ACK: the timestamp clock `ts_now` with its
/// low bits replaced by the SYN's window shift, SACK-Permitted and ECN
/// agreement, never ahead of the clock (RFC 7323 §5.4: TSval must not run
/// ahead), so it is up to 63 ticks behind.
pub(crate) fn ts_encode(ts_now: u32, wscale: Option<u8>, sack: bool, ecn: bool) -> u32 {
    let ws = wscale.map_or(NO_WSCALE, |s| u32::from(s.min(14)));
    let bits = ws | if sack { TS_SACK } else { 0 } | if ecn { TS_ECN } else { 0 };
    let tsval = (ts_now & !TS_MASK) | bits;
    if bits > ts_now & TS_MASK {
        tsval.wrapping_sub(TS_MASK + 1)
    } else {
        tsval
    }
}

/// The window shift, SACK-Permitted and ECN agreement that [`ts_encode`]
/// put into a TSval the peer now echoes (`None`: a shift no encoder
/// writes, so not ours).
pub(crate) fn ts_decode(tsecr: u32) -> Option<(Option<u8>, bool, bool)> {
    let ws = tsecr & 0xF;
    let wscale = match ws {
        NO_WSCALE => None,
        0..=14 => Some(ws as u8),
        _ => return None,
    };
    Some((wscale, tsecr & TS_SACK != 0, tsecr & TS_ECN != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};
    use core::time::Duration;

    fn tuple(remote_port: u16) -> ConnTuple {
        ConnTuple {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80),
            remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), remote_port),
        }
    }

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn a_cookie_checks_out_for_its_tuple_and_syn() {
        let key = IsnGenerator::new(*b"cookie-test-key!");
        let c = make(&key, at(1000), tuple(5000), 77, 1460);
        assert_eq!(check(&key, at(1000), tuple(5000), 77, c), Some(1460));
        assert_eq!(check(&key, at(1000), tuple(5001), 77, c), None, "tuple");
        assert_eq!(check(&key, at(1000), tuple(5000), 78, c), None, "IRS");
        assert_eq!(check(&key, at(1000), tuple(5000), 77, c ^ 1), None, "MAC");
        assert_eq!(check(&key, at(1000), tuple(5000), 77, c ^ 1 << 27), None);
        let other = IsnGenerator::new(*b"another-test-key");
        assert_eq!(check(&other, at(1000), tuple(5000), 77, c), None, "key");
    }

    /// Accepted in the tick it was made and the next, refused after (and
    /// before: a cookie from the future is not one we made).
    #[test]
    fn a_cookie_lives_one_to_two_ticks() {
        let key = IsnGenerator::new(*b"cookie-test-key!");
        let made = 64 * 100 + 63;
        let c = make(&key, at(made), tuple(1), 9, 536);
        assert!(check(&key, at(made + 1), tuple(1), 9, c).is_some());
        assert!(check(&key, at(made + 64), tuple(1), 9, c).is_some());
        assert!(check(&key, at(made + 65), tuple(1), 9, c).is_none());
        assert!(check(&key, at(made + 4 * 64), tuple(1), 9, c).is_none());
        assert!(check(&key, at(made - 64), tuple(1), 9, c).is_none());
    }

    #[test]
    fn the_mss_rounds_down_to_the_table() {
        assert_eq!(MSS_TABLE[usize::from(mss_index(1460))], 1460);
        assert_eq!(MSS_TABLE[usize::from(mss_index(1459))], 1440);
        assert_eq!(MSS_TABLE[usize::from(mss_index(100))], 216);
        assert_eq!(MSS_TABLE[usize::from(mss_index(65_535))], 8960);
    }

    #[test]
    fn options_survive_the_timestamp_and_it_never_runs_ahead() {
        for now in [0u32, 5, 63, 64, 1_000_000, u32::MAX] {
            for ws in [None, Some(0), Some(7), Some(14), Some(20)] {
                for sack in [false, true] {
                    for ecn in [false, true] {
                        let v = ts_encode(now, ws, sack, ecn);
                        let want = (ws.map(|s| s.min(14)), sack, ecn);
                        assert_eq!(ts_decode(v), Some(want));
                        assert!(now.wrapping_sub(v) < 64, "{now} {v}");
                    }
                }
            }
        }
        assert_eq!(ts_decode(0x2F), Some((None, false, true)));
    }
}
