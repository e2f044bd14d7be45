//! TCP control bits (RFC 9293 §3.1).

/// The control bits of a TCP header, as one byte (CWR ECE URG ACK PSH RST SYN FIN).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// The empty set.
    pub const fn empty() -> Self {
        TcpFlags(0)
    }
    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union of two sets.
    pub const fn union(self, other: TcpFlags) -> Self {
        TcpFlags(self.0 | other.0)
    }
    /// True for SYN.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// True for ACK.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// True for FIN.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// True for RST.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// True for PSH.
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// True for URG.
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }

    /// Writes the flags as letters in the contract's order `SFRPAU`
    /// (e.g. `"SA"`, `"PA"`, `"FA"`, `"R"`) into `out` and returns the used part.
    pub fn letters(self, out: &mut [u8; 6]) -> &str {
        let mut n = 0;
        for (bit, letter) in [
            (Self::SYN, b'S'),
            (Self::FIN, b'F'),
            (Self::RST, b'R'),
            (Self::PSH, b'P'),
            (Self::ACK, b'A'),
            (Self::URG, b'U'),
        ] {
            if self.contains(bit) {
                out[n] = letter;
                n += 1;
            }
        }
        // Only ASCII letters were written.
        core::str::from_utf8(&out[..n]).unwrap_or("")
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl core::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; 6];
        f.write_str(self.letters(&mut buf))
    }
}

impl core::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_contract_order() {
        let mut b = [0u8; 6];
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).letters(&mut b), "SA");
        assert_eq!((TcpFlags::ACK | TcpFlags::PSH).letters(&mut b), "PA");
        assert_eq!((TcpFlags::ACK | TcpFlags::FIN).letters(&mut b), "FA");
        assert_eq!((TcpFlags::RST | TcpFlags::ACK).letters(&mut b), "RA");
        assert_eq!(TcpFlags::empty().letters(&mut b), "");
    }
}
