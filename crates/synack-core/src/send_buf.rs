//! The send buffer: the bytes from SND.UNA onward, sent but not yet
//! acknowledged and then not yet sent, up to a fixed capacity.
//!
//! A ring of its own (not a `VecDeque`) so that the application can write
//! straight into the free space ([`SendBuffer::free_slices`] then
//! [`SendBuffer::commit`]) instead of handing over bytes to be copied in.
//! Offsets in the API count from the front of the buffer (SND.UNA). Nothing
//! is allocated until the first byte is written; the ring is then only as
//! long as it has been written (its allocation doubling from a few bytes),
//! and never longer than `capacity` bytes, so a connection that sends a short
//! message holds a few bytes, not the whole buffer.

use alloc::vec::Vec;

use crate::ring::{adopt_ring, grow_ring, retire_ring};

/// A bounded byte ring holding the data from SND.UNA onward.
#[derive(Clone, Debug, Default)]
pub struct SendBuffer {
    /// The ring, indexed modulo `capacity`: empty until first written, then
    /// as long as the highest index written (all of `capacity` once a write
    /// has wrapped).
    buf: Vec<u8>,
    /// Where the front (SND.UNA) lies in `buf`; below `capacity`.
    head: u32,
    /// Bytes held.
    len: u32,
    /// The most bytes the buffer accepts.
    capacity: u32,
}

impl SendBuffer {
    /// An empty buffer accepting up to `capacity` bytes; allocates nothing
    /// until the first write.
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            buf: Vec::new(),
            head: 0,
            len: 0,
            // Four bytes each keep the TCB small; a ring past 4 GiB is
            // cut to that.
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        }
    }

    /// The most bytes the buffer can hold.
    #[allow(dead_code)] // Part of the buffer's API; the stack reads `free()`.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Where the front lies in the ring.
    fn head(&self) -> usize {
        self.head as usize
    }

    /// Bytes held (unacknowledged plus unsent).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no bytes are held.
    #[allow(dead_code)] // Part of the buffer's API; the stack reads `len()`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left: `capacity - len`.
    pub fn free(&self) -> usize {
        self.capacity().saturating_sub(self.len())
    }

    /// The free space after the held bytes, in order, as two slices (the
    /// second non-empty only when the free space wraps round the ring), for
    /// the application to write into before [`SendBuffer::commit`]. Both are
    /// empty when the buffer is full; the first call allocates the ring.
    pub fn free_slices(&mut self) -> (&mut [u8], &mut [u8]) {
        if self.free() > 0 {
            // The application may write anywhere in the free space.
            self.grow_to(self.capacity());
        }
        let free = self.free();
        let tail = self.wrap(self.head().saturating_add(self.len()));
        let first = free.min(self.capacity() - tail);
        // The free run from the tail to the end of the ring, then the one
        // from the start of the ring up to the head.
        let (start, end) = self.buf.split_at_mut(tail);
        let a = end.get_mut(..first).unwrap_or_default();
        let b = start.get_mut(..free - first).unwrap_or_default();
        (a, b)
    }

    /// Makes `n` bytes written into [`SendBuffer::free_slices`] part of the
    /// buffer (clamped to the free space); returns how many that was.
    pub fn commit(&mut self, n: usize) -> usize {
        let n = n.min(self.free());
        // `len + n <= capacity`, which fits.
        self.len += n as u32;
        n
    }

    /// Appends as much of `data` as fits and returns how many bytes that was.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        // Only the ring indices this write reaches need to exist: up to the
        // end of the data when it does not wrap, all of them when it does.
        let tail = self.wrap(self.head() + self.len());
        let first = n.min(self.capacity() - tail);
        self.grow_to(if first < n { self.capacity() } else { tail + n });
        let (head_part, tail_part) = data[..n].split_at(first);
        if let Some(dst) = self.buf.get_mut(tail..tail + first) {
            dst.copy_from_slice(head_part);
        }
        if let Some(dst) = self.buf.get_mut(..tail_part.len()) {
            dst.copy_from_slice(tail_part);
        }
        self.commit(n)
    }

    /// Empties the buffer for good (its connection is gone), keeping its
    /// allocation only when small ([`REUSE_MAX`](crate::ring::REUSE_MAX) bytes or less), for
    /// [`SendBuffer::reuse`].
    pub fn retire(&mut self) {
        retire_ring(&mut self.buf);
        self.head = 0;
        self.len = 0;
    }

    /// Takes over the allocation of `old` (a retired buffer) when this one
    /// has none yet and it fits this one's capacity: a new connection
    /// starts with the memory of one that ended, without a trip through
    /// the allocator.
    pub fn reuse(&mut self, old: &mut SendBuffer) {
        let capacity = self.capacity();
        adopt_ring(&mut self.buf, &mut old.buf, capacity);
    }

    /// Makes ring indices below `need` (clamped to the capacity) exist, as
    /// the receive ring does ([`grow_ring`]).
    fn grow_to(&mut self, need: usize) {
        let capacity = self.capacity();
        grow_ring(&mut self.buf, need, capacity);
    }

    /// Drops `n` bytes from the front (acknowledged data), clamped to
    /// [`len`](Self::len).
    pub fn ack(&mut self, n: usize) {
        let n = n.min(self.len());
        // `n <= len`, which fits.
        self.len -= n as u32;
        // An empty ring starts over at 0, so that the next writes and
        // segments are one contiguous run.
        self.head = if self.len == 0 {
            0
        } else {
            // Below the capacity, which fits.
            self.wrap(self.head() + n) as u32
        };
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
        let len = self.len().saturating_sub(offset).min(max_len);
        if len == 0 {
            return (&[], &[]);
        }
        // `offset < len <= capacity`, so the sum cannot overflow.
        let start = self.wrap(self.head() + offset);
        let first = len.min(self.capacity() - start);
        let a = self.buf.get(start..start + first).unwrap_or_default();
        let b = self.buf.get(..len - first).unwrap_or_default();
        (a, b)
    }

    /// A position past the end of the ring brought back into it (positions
    /// handed in are below twice the capacity).
    fn wrap(&self, pos: usize) -> usize {
        if pos >= self.capacity() {
            pos - self.capacity()
        } else {
            pos
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::REUSE_MAX;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn lazy_and_bounded() {
        let mut s = SendBuffer::new(10);
        assert_eq!(s.buf.len(), 0);
        assert!(s.is_empty());
        assert_eq!(s.free(), 10);
        assert_eq!(s.push(b""), 0);
        assert_eq!(s.buf.len(), 0);
        assert_eq!(s.push(b"hello world"), 10);
        assert_eq!(s.len(), 10);
        assert_eq!(s.free(), 0);
        assert_eq!(s.push(b"!"), 0);
        assert_eq!(s.buf.len(), 10);
        let mut out = [0; 20];
        assert_eq!(s.copy_range(0, &mut out), 10);
        assert_eq!(&out[..10], b"hello worl");
    }

    #[test]
    fn allocation_grows_with_the_data() {
        let mut s = SendBuffer::new(4096);
        assert_eq!(s.push(&[1; 16]), 16);
        assert!(s.buf.capacity() < 4096, "a short message holds little");
        assert_eq!(s.push(&[2; 1000]), 1000);
        assert!(s.buf.capacity() >= 1016);
        assert_eq!(s.push(&[3; 5000]), 3080);
        assert_eq!(s.buf.capacity(), 4096, "never past the capacity");
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
        let kept = old.buf.capacity();
        assert!(kept > 0 && kept <= REUSE_MAX);
        let mut new = SendBuffer::new(4096);
        new.reuse(&mut old);
        assert_eq!(new.buf.capacity(), kept);
        assert_eq!(old.buf.capacity(), 0);
        assert!(new.is_empty());
        assert_eq!(new.push(b"fresh"), 5);
        let mut out = [0; 8];
        assert_eq!(new.copy_range(0, &mut out), 5);
        assert_eq!(&out[..5], b"fresh");
        // A large allocation is freed, not kept; a smaller buffer takes none.
        let mut big = SendBuffer::new(4096);
        big.push(&[2; 2000]);
        big.retire();
        assert_eq!(big.buf.capacity(), 0);
        let mut small = SendBuffer::new(4);
        let mut donor = SendBuffer::new(64);
        donor.push(&[3; 64]);
        donor.retire();
        small.reuse(&mut donor);
        assert_eq!(small.buf.capacity(), 0);
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
    fn write_in_place_round_the_wrap() {
        let mut s = SendBuffer::new(8);
        assert_eq!(s.push(b"abcdef"), 6);
        s.ack(4);
        let (a, b) = s.free_slices();
        assert_eq!((a.len(), b.len()), (2, 4));
        a.copy_from_slice(b"gh");
        b[..3].copy_from_slice(b"ijk");
        assert_eq!(s.commit(5), 5);
        let mut out = [0; 8];
        assert_eq!(s.copy_range(0, &mut out), 7);
        assert_eq!(&out[..7], b"efghijk");
        // Committing more than is free takes only what is free.
        assert_eq!(s.commit(5), 1);
        let (a, b) = s.free_slices();
        assert!(a.is_empty() && b.is_empty());
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
        /// Write up to this many bytes in place (counting 0, 1, 2, ...),
        /// then commit the second number of them.
        Write(usize, usize),
        Ack(usize),
        Copy(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..100).prop_map(Op::Push),
            (0usize..150, 0usize..150).prop_map(|(w, c)| Op::Write(w, c)),
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
                    Op::Write(w, c) => {
                        let free = capacity - model.len();
                        let (a, b) = s.free_slices();
                        prop_assert_eq!(a.len() + b.len(), free);
                        let w = w.min(free);
                        for (i, byte) in a.iter_mut().chain(b.iter_mut()).take(w).enumerate() {
                            *byte = i as u8;
                        }
                        let c = c.min(w);
                        prop_assert_eq!(s.commit(c), c);
                        model.extend((0..c).map(|i| i as u8));
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
                prop_assert!(s.buf.len() <= capacity);
            }
        }
    }
}
