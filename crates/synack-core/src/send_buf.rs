//! The send buffer: the bytes from SND.UNA onward, sent but not yet
//! acknowledged and then not yet sent, up to a fixed capacity.
//!
//! Offsets in the API count from the front of the buffer (SND.UNA). Nothing
//! is allocated until the first byte is pushed, and the backing storage never
//! holds more than `capacity` bytes.

use alloc::collections::VecDeque;

/// The largest allocation a retired buffer keeps for the next connection
/// (send or receive buffer), bytes.
pub(crate) const REUSE_MAX: usize = 512;

/// A bounded byte queue holding the data from SND.UNA onward.
#[derive(Clone, Debug, Default)]
pub struct SendBuffer {
    /// The bytes, front = SND.UNA.
    data: VecDeque<u8>,
    /// The most bytes the buffer accepts.
    capacity: usize,
}

impl SendBuffer {
    /// An empty buffer accepting up to `capacity` bytes; allocates nothing
    /// until the first push.
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            data: VecDeque::new(),
            capacity,
        }
    }

    /// The most bytes the buffer can hold.
    #[allow(dead_code)] // Part of the buffer's API; the stack reads `free()`.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held (unacknowledged plus unsent).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no bytes are held.
    #[allow(dead_code)] // Part of the buffer's API; the stack reads `len()`.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Room left: `capacity - len`.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.data.len())
    }

    /// Appends as much of `data` as fits and returns how many bytes that was.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        let Some(accepted) = data.get(..n) else {
            return 0;
        };
        let need = self.data.len() + n;
        if need > self.data.capacity() {
            // Doubling from a small first allocation up to the capacity
            // (never more): a connection that sends a few bytes holds a
            // few bytes, not the whole buffer.
            let target = need
                .max(self.data.capacity().saturating_mul(2))
                .max(crate::recv_buf::MIN_ALLOC)
                .min(self.capacity);
            self.data.reserve_exact(target - self.data.len());
        }
        self.data.extend(accepted);
        n
    }

    /// Empties the buffer for good (its connection is gone), keeping its
    /// allocation only when small ([`REUSE_MAX`] bytes or less), for
    /// [`SendBuffer::reuse`].
    pub fn retire(&mut self) {
        self.data.clear();
        if self.data.capacity() > REUSE_MAX {
            self.data = VecDeque::new();
        }
    }

    /// Takes over the allocation of `old` (a retired buffer) when this one
    /// has none yet and it fits this one's capacity: a new connection
    /// starts with the memory of one that ended, without a trip through
    /// the allocator.
    pub fn reuse(&mut self, old: &mut SendBuffer) {
        if self.data.capacity() == 0 && old.data.capacity() <= self.capacity {
            self.data = core::mem::take(&mut old.data);
            self.data.clear();
        }
    }

    /// Drops `n` bytes from the front (acknowledged data), clamped to
    /// [`len`](Self::len).
    pub fn ack(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
    }

    /// Copies the bytes starting `offset` bytes from the front into `out`, as
    /// many as fit and exist; returns how many were copied (0 if `offset` is
    /// at or past the end).
    #[cfg(test)]
    pub fn copy_range(&self, offset: usize, out: &mut [u8]) -> usize {
        let (a, b) = self.slices_from(offset, out.len());
        let mut n: usize = 0;
        for src in [a, b] {
            if let Some(dst) = out.get_mut(n..n.saturating_add(src.len())) {
                dst.copy_from_slice(src);
                n += src.len();
            }
        }
        n
    }

    /// Up to `max_len` bytes starting `offset` bytes from the front, as two
    /// slices (the second non-empty only when the data wraps in the ring),
    /// for building a segment without an intermediate copy.
    pub fn slices_from(&self, offset: usize, max_len: usize) -> (&[u8], &[u8]) {
        let (a, b) = self.data.as_slices();
        let len = self.data.len().saturating_sub(offset).min(max_len);
        let a_skip = offset.min(a.len());
        let a = a.get(a_skip..).unwrap_or_default();
        let b_skip = offset - a_skip;
        let b = b.get(b_skip.min(b.len())..).unwrap_or_default();
        let a_take = len.min(a.len());
        let b_take = (len - a_take).min(b.len());
        (
            a.get(..a_take).unwrap_or_default(),
            b.get(..b_take).unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn lazy_and_bounded() {
        let mut s = SendBuffer::new(10);
        assert_eq!(s.data.capacity(), 0);
        assert!(s.is_empty());
        assert_eq!(s.free(), 10);
        assert_eq!(s.push(b""), 0);
        assert_eq!(s.data.capacity(), 0);
        assert_eq!(s.push(b"hello world"), 10);
        assert_eq!(s.len(), 10);
        assert_eq!(s.free(), 0);
        assert_eq!(s.push(b"!"), 0);
        assert!(s.data.capacity() >= 10);
        let mut out = [0; 20];
        assert_eq!(s.copy_range(0, &mut out), 10);
        assert_eq!(&out[..10], b"hello worl");
    }

    #[test]
    fn allocation_grows_with_the_data() {
        let mut s = SendBuffer::new(4096);
        assert_eq!(s.push(&[1; 16]), 16);
        assert!(s.data.capacity() < 4096, "a short message holds little");
        assert_eq!(s.push(&[2; 1000]), 1000);
        assert!(s.data.capacity() >= 1016);
        assert_eq!(s.push(&[3; 5000]), 3080);
        assert_eq!(s.data.capacity(), 4096, "never past the capacity");
        let mut out = [0; 4096];
        assert_eq!(s.copy_range(0, &mut out), 4096);
        assert_eq!(&out[..16], &[1; 16]);
        assert_eq!(&out[16..1016], &[2; 1000][..]);
        assert_eq!(&out[1016..], &[3; 3080][..]);
    }

    #[test]
    fn retired_small_allocation_is_reused() {
        let mut old = SendBuffer::new(4096);
        old.push(&[1; 16]);
        old.retire();
        assert!(old.is_empty());
        let kept = old.data.capacity();
        assert!(kept > 0 && kept <= REUSE_MAX);
        let mut new = SendBuffer::new(4096);
        new.reuse(&mut old);
        assert_eq!(new.data.capacity(), kept);
        assert_eq!(old.data.capacity(), 0);
        assert!(new.is_empty());
        assert_eq!(new.push(b"fresh"), 5);
        let mut out = [0; 8];
        assert_eq!(new.copy_range(0, &mut out), 5);
        assert_eq!(&out[..5], b"fresh");
        // A large allocation is freed, not kept; a smaller buffer takes none.
        let mut big = SendBuffer::new(4096);
        big.push(&[2; 2000]);
        big.retire();
        assert_eq!(big.data.capacity(), 0);
        let mut small = SendBuffer::new(4);
        let mut donor = SendBuffer::new(64);
        donor.push(&[3; 64]);
        donor.retire();
        small.reuse(&mut donor);
        assert_eq!(small.data.capacity(), 0);
    }

    #[test]
    fn ack_and_copy_range() {
        let mut s = SendBuffer::new(100);
        s.push(b"0123456789");
        let mut out = [0; 4];
        assert_eq!(s.copy_range(3, &mut out), 4);
        assert_eq!(&out, b"3456");
        assert_eq!(s.copy_range(8, &mut out), 2);
        assert_eq!(&out[..2], b"89");
        assert_eq!(s.copy_range(10, &mut out), 0);
        assert_eq!(s.copy_range(usize::MAX, &mut out), 0);
        s.ack(4);
        assert_eq!(s.len(), 6);
        assert_eq!(s.copy_range(0, &mut out), 4);
        assert_eq!(&out, b"4567");
        s.ack(1000);
        assert!(s.is_empty());
        assert_eq!(s.copy_range(0, &mut out), 0);
    }

    #[test]
    fn wraps_round() {
        let mut s = SendBuffer::new(8);
        assert_eq!(s.push(b"abcdefgh"), 8);
        s.ack(6);
        assert_eq!(s.push(b"ijklmnop"), 6);
        let mut out = [0; 8];
        assert_eq!(s.copy_range(0, &mut out), 8);
        assert_eq!(&out, b"ghijklmn");
        let mut out = [0; 3];
        assert_eq!(s.copy_range(4, &mut out), 3);
        assert_eq!(&out, b"klm");
        let (a, b) = s.slices_from(1, 6);
        let mut joined = a.to_vec();
        joined.extend_from_slice(b);
        assert_eq!(joined, b"hijklm");
    }

    #[test]
    fn zero_capacity() {
        let mut s = SendBuffer::new(0);
        assert_eq!(s.push(b"abc"), 0);
        assert_eq!(s.free(), 0);
        assert_eq!(s.copy_range(0, &mut [0; 3]), 0);
        s.ack(3);
        assert!(s.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(Vec<u8>),
        Ack(usize),
        Copy(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..100).prop_map(Op::Push),
            (0usize..150).prop_map(Op::Ack),
            (0usize..250, 0usize..120).prop_map(|(o, n)| Op::Copy(o, n)),
        ]
    }

    proptest! {
        /// The buffer behaves like a plain Vec with a length limit.
        #[test]
        fn matches_vec_model(capacity in 0usize..200, ops in proptest::collection::vec(op(), 0..200)) {
            let mut s = SendBuffer::new(capacity);
            let mut model: Vec<u8> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(d) => {
                        let n = s.push(&d);
                        let expect = d.len().min(capacity - model.len());
                        prop_assert_eq!(n, expect);
                        model.extend_from_slice(&d[..expect]);
                    }
                    Op::Ack(n) => {
                        s.ack(n);
                        model.drain(..n.min(model.len()));
                    }
                    Op::Copy(offset, n) => {
                        let mut out = vec![0xAA; n];
                        let got = s.copy_range(offset, &mut out);
                        let want = model.get(offset..).unwrap_or_default();
                        let want = &want[..want.len().min(n)];
                        prop_assert_eq!(&out[..got], want);
                        let (a, b) = s.slices_from(offset, n);
                        prop_assert_eq!([a, b].concat(), want);
                    }
                }
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.free(), capacity - model.len());
                prop_assert!(s.data.capacity() <= capacity.max(1) * 2);
            }
        }
    }
}
