//! Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).

/// A TCP sequence number. Comparisons are modulo 2^32: `a < b` when `b` is
/// ahead of `a` by less than 2^31.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Seq(pub u32);

impl Seq {
    /// `self + n`, wrapping.
    pub const fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
    /// `self - n`, wrapping.
    pub const fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
    /// Distance from `earlier` to `self` (meaningful when `earlier <= self`).
    pub const fn since(self, earlier: Seq) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
    /// Signed distance from `other` to `self`.
    pub const fn diff(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    /// `self < other` modulo 2^32.
    pub const fn lt(self, other: Seq) -> bool {
        self.diff(other) < 0
    }
    /// `self <= other` modulo 2^32.
    pub const fn le(self, other: Seq) -> bool {
        self.diff(other) <= 0
    }
    /// `self > other` modulo 2^32.
    pub const fn gt(self, other: Seq) -> bool {
        self.diff(other) > 0
    }
    /// `self >= other` modulo 2^32.
    pub const fn ge(self, other: Seq) -> bool {
        self.diff(other) >= 0
    }
    /// `lo <= self < hi` modulo 2^32.
    pub const fn in_range(self, lo: Seq, hi: Seq) -> bool {
        lo.le(self) && self.lt(hi)
    }
    /// The later of two sequence numbers.
    pub const fn max(self, other: Seq) -> Seq {
        if self.ge(other) {
            self
        } else {
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        let a = Seq(u32::MAX - 5);
        let b = a.add(10);
        assert_eq!(b, Seq(4));
        assert!(a.lt(b) && b.gt(a) && a.le(a) && b.ge(b));
        assert_eq!(b.since(a), 10);
        assert!(Seq(3).in_range(a, b));
        assert!(!b.in_range(a, b));
        assert_eq!(a.max(b), b);
    }
}
