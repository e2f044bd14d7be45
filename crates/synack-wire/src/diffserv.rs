//! The Differentiated Services field (RFC 2474 §3, RFC 3168 §5): the IPv4
//! TOS byte and the IPv6 Traffic Class are one byte, the 6-bit Diffserv
//! Codepoint (DSCP) in its top bits and the 2 ECN bits below it.
//!
//! The application chooses the DSCP (RFC 9293 §3.9.1.9, MUST-48); the ECN
//! bits belong to the transport (RFC 3168 §6.1) and are kept apart, so that
//! a DSCP the application sets never touches them.

/// The two ECN bits of the TOS / Traffic Class byte (RFC 3168 §5).
pub const ECN_MASK: u8 = 0b11;
/// ECN field: Not-ECT, the transport is not ECN-capable (RFC 3168 §5).
pub const NOT_ECT: u8 = 0b00;
/// ECN field: ECT(1) (RFC 3168 §5).
pub const ECT1: u8 = 0b01;
/// ECN field: ECT(0), what an ECN-capable TCP sets on its data (RFC 3168
/// §6.1.2 suggests one of the two; ECT(0) as Linux).
pub const ECT0: u8 = 0b10;
/// ECN field: Congestion Experienced, set by a router (RFC 3168 §5).
pub const CE: u8 = 0b11;

/// A Diffserv Codepoint: six bits, 0 to 63 (RFC 2474 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dscp(u8);

impl Dscp {
    /// Default forwarding, codepoint 0 (RFC 2474 §4.1): best effort.
    pub const DEFAULT: Dscp = Dscp(0);
    /// Expedited Forwarding, codepoint 46 (RFC 3246): TOS byte 0xB8.
    pub const EF: Dscp = Dscp(46);

    /// The codepoint `value`, if it fits six bits.
    pub const fn new(value: u8) -> Option<Dscp> {
        if value < 64 {
            Some(Dscp(value))
        } else {
            None
        }
    }

    /// The codepoint of a TOS / Traffic Class byte (its ECN bits ignored).
    pub const fn from_tos(tos: u8) -> Dscp {
        Dscp(tos >> 2)
    }

    /// The codepoint, 0 to 63.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// The TOS / Traffic Class byte carrying this codepoint and the ECN
    /// bits `ecn` (only the low two bits of it count; 0 is Not-ECT).
    pub const fn tos(self, ecn: u8) -> u8 {
        (self.0 << 2) | (ecn & ECN_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codepoints_sit_above_the_ecn_bits() {
        assert_eq!(Dscp::EF.tos(0), 0xB8);
        assert_eq!(Dscp::EF.tos(0b01), 0xB9);
        assert_eq!(Dscp::EF.tos(0xFF), 0xBB, "only two ECN bits");
        assert_eq!(Dscp::from_tos(0xBB), Dscp::EF);
        assert_eq!(Dscp::new(63).map(|d| d.tos(0)), Some(0xFC));
        assert_eq!(Dscp::new(64), None);
        assert_eq!(Dscp::default(), Dscp::DEFAULT);
        for v in 0..64 {
            let d = Dscp::new(v).unwrap();
            assert_eq!((d.value(), Dscp::from_tos(d.tos(3))), (v, d));
        }
    }
}
