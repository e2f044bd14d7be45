//! The receive buffer: in-order data waiting for the application, followed by
//! out-of-order data kept for reassembly (RFC 9293 SHLD-31).
//!
//! One ring of `capacity` bytes holds both. From the ring's head come the
//! readable bytes (received in order, not yet read), then the receive window:
//! `capacity - readable` bytes starting at RCV.NXT. Out-of-order segments are
//! stored at their place in the window, and a short sorted list of ranges
//! records which window bytes are present. When the hole at RCV.NXT fills, the
//! bytes behind it become readable without being copied.
//!
//! Memory is bounded whatever the peer sends: the ring never grows past
//! `capacity` (and is only allocated on the first write), data beyond the
//! window is cut off, and at most [`RecvBuffer::max_ranges`] separate
//! out-of-order ranges are tracked: a segment that would start yet another separate range is
//! dropped (it will be retransmitted), while segments that extend or join
//! existing ranges, or land at RCV.NXT, are always accepted.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::ring::{adopt_ring, grow_ring, retire_ring};

/// The fewest separate out-of-order ranges a [`RecvBuffer`] may track
/// (a larger buffer tracks more: [`RecvBuffer::max_ranges`]).
pub const MAX_RANGES: usize = 64;

/// Bytes of capacity per out-of-order range tracked beyond [`MAX_RANGES`].
const BYTES_PER_RANGE: usize = 2048;

/// A bounded receive buffer with reassembly of out-of-order data.
///
/// Offsets in the API are relative to RCV.NXT, the first byte not yet
/// received in order (the end of the readable data).
#[derive(Clone, Debug, Default)]
pub struct RecvBuffer {
    /// The ring: empty until the first write, then exactly `capacity` bytes.
    buf: Vec<u8>,
    /// Size of the ring.
    /// (Four bytes each, as the two below, to keep the TCB small; a ring
    /// past 4 GiB is cut to that.)
    capacity: u32,
    /// Ring index of the first readable byte (`< capacity` when non-zero).
    head: u32,
    /// Number of readable bytes.
    readable: u32,
    /// Out-of-order data present, as `[start, end)` offsets from RCV.NXT:
    /// sorted, non-empty, with gaps between them, `start >= 1` and
    /// `end <= window()`. Boxed, and only once out-of-order data first
    /// arrives: eight bytes of the TCB instead of twenty-four for what most
    /// connections never use.
    #[allow(clippy::box_collection)] // Boxed on purpose: one word inline.
    ranges: Option<Box<Vec<(usize, usize)>>>,
}

impl RecvBuffer {
    /// An empty buffer of `capacity` bytes; allocates nothing until the first
    /// write.
    pub fn new(capacity: usize) -> Self {
        RecvBuffer {
            buf: Vec::new(),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            head: 0,
            readable: 0,
            ranges: None,
        }
    }

    /// The total size of the buffer.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Ring index of the first readable byte.
    fn head(&self) -> usize {
        self.head as usize
    }

    /// Bytes received in order that the application has not read yet.
    pub fn readable(&self) -> usize {
        self.readable as usize
    }

    /// The receive window: `capacity - readable`. Out-of-order data is kept
    /// inside the window, so it does not reduce it.
    pub fn window(&self) -> usize {
        self.capacity().saturating_sub(self.readable())
    }

    /// The out-of-order ranges held (none if never any).
    fn ranges(&self) -> &[(usize, usize)] {
        self.ranges.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Whether any out-of-order data is held.
    pub fn has_ooo(&self) -> bool {
        !self.ranges().is_empty()
    }

    /// The out-of-order ranges held, as `(start, end)` offsets from RCV.NXT
    /// (end exclusive), in increasing order, never adjacent: the material for
    /// SACK blocks.
    pub fn ooo_ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges().iter().copied()
    }

    /// Stores `data`, which starts `offset` bytes after RCV.NXT, and returns
    /// by how much RCV.NXT advanced (the number of bytes that became
    /// readable, including any out-of-order data the write joined up with).
    ///
    /// Bytes at or beyond `window()` are cut off. Bytes already present may be
    /// overwritten (a retransmission carries the same bytes). A write that
    /// would start a new separate out-of-order range while
    /// [`RecvBuffer::max_ranges`] are held is ignored and returns 0.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let window = self.window();
        if offset >= window || data.is_empty() {
            return 0;
        }
        let end = offset.saturating_add(data.len()).min(window);
        let Some(data) = data.get(..end - offset) else {
            return 0;
        };
        if self.refuses(offset, data.len()) {
            return 0;
        }
        let (i, j) = self.touching(offset, end);
        let pos = self.ring_pos(self.readable().saturating_add(offset));
        self.grow_to(pos.saturating_add(data.len()));
        let capacity = self.capacity();
        copy_into_ring(&mut self.buf, capacity, pos, data);

        let (mut start, mut stop) = (offset, end);
        if let Some(touching) = self.ranges().get(i..j) {
            if let (Some(first), Some(last)) = (touching.first(), touching.last()) {
                start = start.min(first.0);
                stop = stop.max(last.1);
            }
        }
        if let Some(ranges) = self.ranges.as_mut() {
            ranges.drain(i..j);
        }
        if start > 0 {
            self.ranges
                .get_or_insert_with(Default::default)
                .insert(i, (start, stop));
            return 0;
        }
        // The hole at RCV.NXT is filled: [0, stop) becomes readable. The
        // merged range absorbed every range it touched, so the rest start
        // after a gap.
        // `readable + stop <= capacity`, which fits.
        self.readable = self.readable().saturating_add(stop) as u32;
        for r in self.ranges.iter_mut().flat_map(|v| v.iter_mut()) {
            r.0 = r.0.saturating_sub(stop);
            r.1 = r.1.saturating_sub(stop);
        }
        stop
    }

    /// The ranges touching `[offset, end)` (overlapping or adjacent), as
    /// indices `i..j` into the range list.
    fn touching(&self, offset: usize, end: usize) -> (usize, usize) {
        let i = self.ranges().partition_point(|r| r.1 < offset);
        let j = self.ranges().partition_point(|r| r.0 <= end).max(i);
        (i, j)
    }

    /// How many separate out-of-order ranges this buffer tracks: one per
    /// 2 KiB of capacity, and at least [`MAX_RANGES`]. Memory stays a
    /// small fraction of the buffer's (16 bytes a range), while a window
    /// with a hole every other segment (a slow start that overflows a
    /// drop-tail queue of one bandwidth-delay product: every other pair of
    /// a burst is dropped) keeps all it receives; a fixed 64 dropped what
    /// came after the 64th hole, and the sender had to send it again (704
    /// of 1,249 retransmissions on a 100 Mbit/s, 50 ms path).
    pub fn max_ranges(&self) -> usize {
        MAX_RANGES.max(self.capacity as usize / BYTES_PER_RANGE)
    }

    /// Whether [`RecvBuffer::write_at`] would refuse `len` bytes at
    /// `offset` for starting yet another separate out-of-order range while
    /// [`RecvBuffer::max_ranges`] are held (the receiver drops and counts
    /// such a segment).
    pub fn refuses(&self, offset: usize, len: usize) -> bool {
        let window = self.window();
        if offset == 0 || offset >= window || len == 0 || self.ranges().len() < self.max_ranges() {
            return false;
        }
        let (i, j) = self.touching(offset, offset.saturating_add(len).min(window));
        i == j
    }

    /// Copies readable bytes into `out`, frees their space (opening the
    /// window) and returns how many were copied.
    /// Copies `data` to RCV.NXT (offset 0 of the window) without making it
    /// readable, and returns its one's-complement sum (the receiver checks
    /// the TCP checksum with it, then calls [`RecvBuffer::commit`]). Only
    /// with no out-of-order data held (whose bytes it could overwrite) and
    /// when `data` fits the window; otherwise it copies nothing and returns
    /// `None`.
    pub fn place(&mut self, data: &[u8]) -> Option<u64> {
        if self.has_ooo() || data.is_empty() || data.len() > self.window() {
            return None;
        }
        let pos = self.ring_pos(self.readable());
        self.grow_to(pos.saturating_add(data.len()));
        let first = data.len().min(self.capacity().saturating_sub(pos));
        let (a, b) = data.split_at(first);
        let mut sum = synack_wire::copy_and_sum(self.buf.get_mut(pos..pos + a.len())?, a);
        if !b.is_empty() {
            let s = synack_wire::copy_and_sum(self.buf.get_mut(..b.len())?, b);
            sum = synack_wire::combine_sums(sum, s, a.len() % 2 == 1);
        }
        Some(sum)
    }

    /// Makes `len` bytes placed by [`RecvBuffer::place`] readable; returns
    /// how many (0 when out-of-order data arrived in between).
    pub fn commit(&mut self, len: usize) -> usize {
        if self.has_ooo() {
            return 0;
        }
        let n = len.min(self.window());
        // `n <= window()`, so `readable + n <= capacity`, which fits.
        self.readable += n as u32;
        n
    }

    #[cfg(test)]
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.peek_slices();
        let mut n = 0;
        for src in [a, b] {
            let take = src.len().min(out.len().saturating_sub(n));
            if let (Some(dst), Some(src)) = (out.get_mut(n..n + take), src.get(..take)) {
                dst.copy_from_slice(src);
                n += take;
            }
        }
        self.consume(n);
        n
    }

    /// The readable bytes, in order, as two slices (the second is non-empty
    /// only when the data wraps round the end of the ring).
    pub fn peek_slices(&self) -> (&[u8], &[u8]) {
        let first_len = self
            .readable()
            .min(self.capacity().saturating_sub(self.head()));
        let a = self
            .buf
            .get(self.head()..self.head().saturating_add(first_len))
            .unwrap_or_default();
        let b = self
            .buf
            .get(..self.readable() - first_len)
            .unwrap_or_default();
        (a, b)
    }

    /// Drops the first `n` readable bytes (clamped to what is readable), as
    /// if they were read, opening the window.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.readable());
        // A ring index, below the capacity, which fits.
        self.head = self.ring_pos(n) as u32;
        self.readable -= n as u32;
        // Nothing held any more: start over at the ring's beginning (as the
        // send buffer does). A reader that keeps up then has data written
        // to the same first lines again and again, still in the cache,
        // instead of swept over the whole ring (4 MiB of it in a bulk
        // transfer), and a ring that grows as needed stays small.
        if self.readable == 0 && !self.has_ooo() {
            self.head = 0;
        }
    }

    /// Frees the ring if it holds nothing (no readable and no out-of-order
    /// data), so an idle connection costs no buffer memory (a small ring,
    /// [`REUSE_MAX`](crate::ring::REUSE_MAX) bytes or less, is only emptied: it is kept for the
    /// next connection, see [`RecvBuffer::reuse`]). Returns whether the ring
    /// was given up. The next write allocates again, or reuses.
    pub fn release_if_empty(&mut self) -> bool {
        if self.readable == 0 && self.ranges().is_empty() && !self.buf.is_empty() {
            self.retire();
            true
        } else {
            false
        }
    }

    /// Empties the buffer for good (its connection is gone), keeping the
    /// ring's allocation only when small ([`REUSE_MAX`](crate::ring::REUSE_MAX) bytes or less).
    pub fn retire(&mut self) {
        retire_ring(&mut self.buf);
        self.head = 0;
        self.readable = 0;
        if let Some(ranges) = self.ranges.as_mut() {
            ranges.clear();
        }
    }

    /// Takes over the ring allocation of `old` (a retired buffer) when this
    /// one has none yet and it fits this one's capacity.
    pub fn reuse(&mut self, old: &mut RecvBuffer) {
        let capacity = self.capacity();
        adopt_ring(&mut self.buf, &mut old.buf, capacity);
    }

    /// Makes ring indices below `need` (clamped to the capacity) exist.
    ///
    /// The ring is only as long as it was written (a write that wraps has
    /// reached the end, so the ring is whole by then): no up-front zeroing
    /// of `capacity` bytes per connection. Its allocation grows with it,
    /// doubling from [`MIN_ALLOC`](crate::ring::MIN_ALLOC) bytes and never past the capacity, so
    /// that a connection that only ever holds a few bytes (a short request
    /// or reply) costs a few bytes of memory, not the whole ring.
    fn grow_to(&mut self, need: usize) {
        let capacity = self.capacity();
        grow_ring(&mut self.buf, need, capacity);
    }

    /// The ring index `rel` bytes after the head (`rel <= capacity`).
    fn ring_pos(&self, rel: usize) -> usize {
        let to_end = self.capacity().saturating_sub(self.head());
        if rel >= to_end {
            rel - to_end
        } else {
            self.head() + rel
        }
    }
}

/// Copies `data` into `ring` from index `pos`, wrapping round the end.
/// `data` must fit in the ring; anything that would not is dropped.
fn copy_into_ring(ring: &mut [u8], capacity: usize, pos: usize, data: &[u8]) {
    let first = data.len().min(capacity.saturating_sub(pos));
    let (a, b) = data.split_at(first);
    if let Some(dst) = ring.get_mut(pos..pos.saturating_add(a.len())) {
        dst.copy_from_slice(a);
    }
    if let Some(dst) = ring.get_mut(..b.len()) {
        dst.copy_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{MIN_ALLOC, REUSE_MAX};
    use alloc::vec;
    use proptest::prelude::*;

    fn read_all(b: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0; b.readable()];
        let n = b.read(&mut out);
        out.truncate(n);
        out
    }

    #[test]
    fn idle_buffer_allocates_nothing() {
        let mut b = RecvBuffer::new(1000);
        assert_eq!(b.capacity(), 1000);
        assert_eq!(b.window(), 1000);
        assert_eq!(b.peek_slices(), (&[][..], &[][..]));
        assert_eq!(b.read(&mut [0; 10]), 0);
        assert!(b.buf.is_empty());
        assert_eq!(b.write_at(0, b""), 0);
        assert_eq!(b.write_at(1000, b"x"), 0);
        assert!(b.buf.is_empty());
        assert_eq!(b.write_at(0, b"hi"), 2);
        // Only what was written is initialised.
        assert_eq!(b.buf.len(), 2);
        assert_eq!(b.write_at(500, b"far"), 0);
        assert_eq!(b.buf.len(), 505);
        assert_eq!(read_all(&mut b), b"hi");
        assert!(!b.release_if_empty(), "out-of-order data is still held");
        let mut c = RecvBuffer::new(1000);
        assert_eq!(c.write_at(0, b"hi"), 2);
        assert_eq!(read_all(&mut c), b"hi");
        assert!(c.release_if_empty());
        assert!(c.buf.is_empty());
        let mut b = c;
        assert!(b.buf.is_empty());
        assert_eq!(b.write_at(0, b"again"), 5);
        assert_eq!(read_all(&mut b), b"again");
    }

    #[test]
    fn a_reader_that_keeps_up_reuses_the_ring_start() {
        // 4 MiB of capacity, 1,000 bytes at a time read at once: the data
        // goes to the same first bytes every time, and the ring never
        // grows past them.
        let mut b = RecvBuffer::new(4 << 20);
        for i in 0..10_000u32 {
            let data = [i as u8; 1000];
            assert!(b.place(&data).is_some());
            assert_eq!(b.commit(1000), 1000);
            assert_eq!(b.peek_slices().0.as_ptr(), b.buf.as_ptr());
            assert_eq!(read_all(&mut b), data);
        }
        assert!(b.buf.len() <= 1024, "{}", b.buf.len());
        // Not while out-of-order data is held: its place is kept.
        assert_eq!(b.write_at(0, b"ab"), 2);
        assert_eq!(b.write_at(5, b"xy"), 0);
        assert_eq!(read_all(&mut b), b"ab");
        assert_eq!(b.write_at(0, b"cdefg"), 7);
        assert_eq!(read_all(&mut b), b"cdefgxy");
    }

    #[test]
    fn allocation_grows_with_the_data() {
        let mut b = RecvBuffer::new(4096);
        assert_eq!(b.write_at(0, &[7; 16]), 16);
        assert_eq!(b.buf.capacity(), MIN_ALLOC, "a short message holds little");
        assert_eq!(b.write_at(0, &[8; 100]), 100);
        assert!(b.buf.capacity() >= 116 && b.buf.capacity() < 4096);
        assert_eq!(b.write_at(3000, &[9; 2000]), 0);
        assert_eq!(b.buf.capacity(), 4096, "never past the capacity");
        let mut all = read_all(&mut b);
        all.truncate(116);
        assert_eq!(&all[..16], &[7; 16]);
        assert_eq!(&all[16..], &[8; 100]);
    }

    #[test]
    fn retired_small_ring_is_reused() {
        let mut old = RecvBuffer::new(4096);
        assert_eq!(old.write_at(5, b"late"), 0);
        assert_eq!(old.write_at(0, b"early"), 9);
        old.retire();
        assert_eq!(
            (old.readable(), old.has_ooo(), old.window()),
            (0, false, 4096)
        );
        let kept = old.buf.capacity();
        assert!(kept > 0 && kept <= REUSE_MAX);
        let mut new = RecvBuffer::new(4096);
        new.reuse(&mut old);
        assert_eq!(new.buf.capacity(), kept);
        assert!(new.buf.is_empty());
        assert_eq!(new.write_at(0, b"fresh"), 5);
        assert_eq!(read_all(&mut new), b"fresh");
    }

    #[test]
    fn zero_capacity_accepts_nothing() {
        let mut b = RecvBuffer::new(0);
        assert_eq!(b.window(), 0);
        assert_eq!(b.write_at(0, b"abc"), 0);
        assert_eq!(b.read(&mut [0; 4]), 0);
        b.consume(5);
        assert_eq!(b.peek_slices(), (&[][..], &[][..]));
    }

    #[test]
    fn in_order() {
        let mut b = RecvBuffer::new(16);
        assert_eq!(b.write_at(0, b"hello "), 6);
        assert_eq!(b.write_at(0, b"world"), 5);
        assert_eq!(b.readable(), 11);
        assert!(!b.has_ooo());
        assert_eq!(read_all(&mut b), b"hello world");
    }

    #[test]
    fn out_of_order_holes_filled() {
        let mut b = RecvBuffer::new(100);
        assert_eq!(b.write_at(10, b"klmno"), 0);
        assert_eq!(b.write_at(20, b"uvwxyz"), 0);
        assert_eq!(b.write_at(3, b"defg"), 0);
        assert_eq!(
            b.ooo_ranges().collect::<Vec<_>>(),
            [(3, 7), (10, 15), (20, 26)]
        );
        // Fills 15..20, joining two ranges.
        assert_eq!(b.write_at(15, b"pqrst"), 0);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(3, 7), (10, 26)]);
        // Adjacent on the left: 7..10 joins everything from 3.
        assert_eq!(b.write_at(7, b"hij"), 0);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(3, 26)]);
        assert_eq!(b.window(), 100);
        assert_eq!(b.write_at(0, b"abc"), 26);
        assert!(!b.has_ooo());
        assert_eq!(read_all(&mut b), b"abcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn duplicates_and_overlaps() {
        let mut b = RecvBuffer::new(100);
        assert_eq!(b.write_at(5, b"fghij"), 0);
        assert_eq!(b.write_at(5, b"fghij"), 0);
        assert_eq!(b.write_at(3, b"defghijklm"), 0);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(3, 13)]);
        assert_eq!(b.write_at(0, b"abcdef"), 13);
        assert_eq!(read_all(&mut b), b"abcdefghijklm");
    }

    #[test]
    fn ranges_shift_when_rcv_nxt_advances() {
        let mut b = RecvBuffer::new(100);
        assert_eq!(b.write_at(10, b"xx"), 0);
        assert_eq!(b.write_at(0, b"abcd"), 4);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(6, 8)]);
        assert_eq!(b.window(), 96);
    }

    #[test]
    fn window_shrinks_and_reopens() {
        let mut b = RecvBuffer::new(10);
        assert_eq!(b.write_at(0, b"abcdef"), 6);
        assert_eq!(b.window(), 4);
        // Only 4 bytes fit; the rest is cut off.
        assert_eq!(b.write_at(0, b"ghijkl"), 4);
        assert_eq!(b.window(), 0);
        assert_eq!(b.write_at(0, b"kl"), 0);
        let mut out = [0; 3];
        assert_eq!(b.read(&mut out), 3);
        assert_eq!(&out, b"abc");
        assert_eq!(b.window(), 3);
        assert_eq!(b.write_at(0, b"klmn"), 3);
        assert_eq!(read_all(&mut b), b"defghijklm");
        assert_eq!(b.window(), 10);
    }

    #[test]
    fn data_beyond_window_cut() {
        let mut b = RecvBuffer::new(8);
        assert_eq!(b.write_at(6, b"ghijkl"), 0);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(6, 8)]);
        assert_eq!(b.write_at(8, b"zz"), 0);
        assert_eq!(b.write_at(usize::MAX, b"zz"), 0);
        assert_eq!(b.write_at(usize::MAX - 1, &[1; 64]), 0);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(6, 8)]);
        assert_eq!(b.write_at(0, b"abcdef"), 8);
        assert_eq!(read_all(&mut b), b"abcdefgh");
    }

    #[test]
    fn wraps_round_the_ring() {
        let mut b = RecvBuffer::new(8);
        assert_eq!(b.write_at(0, b"abcdef"), 6);
        b.consume(5);
        assert_eq!(b.window(), 7);
        // Out-of-order bytes that wrap, then the bytes before them.
        assert_eq!(b.write_at(2, b"ijklm"), 0);
        assert_eq!(b.write_at(0, b"gh"), 7);
        let (x, y) = b.peek_slices();
        assert_eq!(x, b"fgh");
        assert_eq!(y, b"ijklm");
        let mut out = [0; 2];
        assert_eq!(b.read(&mut out), 2);
        assert_eq!(&out, b"fg");
        assert_eq!(read_all(&mut b), b"hijklm");
    }

    #[test]
    fn range_cap_bounds_memory() {
        let mut b = RecvBuffer::new(10_000);
        for k in 0..MAX_RANGES {
            assert_eq!(b.write_at(2 + 3 * k, b"x"), 0);
        }
        assert_eq!(b.ooo_ranges().count(), MAX_RANGES);
        // A new separate range is refused.
        let far = 2 + 3 * MAX_RANGES + 10;
        assert_eq!(b.write_at(far, b"y"), 0);
        assert_eq!(b.ooo_ranges().count(), MAX_RANGES);
        assert!(b.ooo_ranges().all(|r| r.0 < far));
        assert!(b.refuses(far, 1));
        assert!(!b.refuses(0, 1) && !b.refuses(2, 1));
        // Extending or joining existing ranges is still accepted.
        assert_eq!(b.write_at(3, b"z"), 0);
        assert_eq!(b.ooo_ranges().next(), Some((2, 4)));
        assert_eq!(b.write_at(4, b"z"), 0);
        assert_eq!(b.ooo_ranges().count(), MAX_RANGES - 1);
        // ... and so is data at RCV.NXT.
        assert_eq!(b.write_at(0, b"ab"), 6);
        assert_eq!(b.ooo_ranges().count(), MAX_RANGES - 2);
        // Below the cap again, a new range is accepted.
        assert_eq!(b.write_at(far, b"y"), 0);
        assert_eq!(b.ooo_ranges().count(), MAX_RANGES - 1);
    }

    /// A small deterministic generator for the property test's choices.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound.max(1) as u64) as usize
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A byte stream cut into random segments, delivered in random order
        /// with duplicates, through a buffer possibly smaller than the
        /// stream with random partial reads, reads back exactly.
        #[test]
        fn reassembles_any_delivery_order(
            stream in proptest::collection::vec(any::<u8>(), 1..3000),
            capacity in 1usize..4000,
            max_seg in 1usize..300,
            seed in 1u64..u64::MAX,
        ) {
            let mut rng = Rng(seed);
            let mut segs = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                let len = (1 + rng.next(max_seg)).min(stream.len() - at);
                segs.push((at, at + len));
                at += len;
            }
            let mut b = RecvBuffer::new(capacity);
            let mut nxt = 0; // absolute RCV.NXT
            let mut got = Vec::new();
            for _round in 0..=stream.len() {
                // Random order, with some segments sent twice.
                let mut order: Vec<usize> = (0..segs.len()).collect();
                for k in (1..order.len()).rev() {
                    order.swap(k, rng.next(k + 1));
                }
                for _ in 0..rng.next(segs.len() + 1) {
                    order.push(rng.next(segs.len()));
                }
                for &s in &order {
                    let (start, end) = segs[s];
                    if end <= nxt {
                        continue;
                    }
                    // Trim what was already received, as the caller would.
                    let from = start.max(nxt);
                    let before = b.readable();
                    let adv = b.write_at(from - nxt, &stream[from..end]);
                    prop_assert_eq!(b.readable(), before + adv);
                    nxt += adv;
                    prop_assert!(b.ooo_ranges().count() <= b.max_ranges());
                    for (rs, re) in b.ooo_ranges() {
                        prop_assert!(rs > 0 && rs < re && re <= b.window());
                    }
                    if rng.next(4) == 0 {
                        let mut out = vec![0; rng.next(capacity + 1)];
                        let n = b.read(&mut out);
                        got.extend_from_slice(&out[..n]);
                    }
                }
                got.extend(read_all(&mut b));
                if nxt == stream.len() {
                    break;
                }
            }
            prop_assert_eq!(nxt, stream.len());
            prop_assert!(!b.has_ooo());
            prop_assert_eq!(got, stream);
        }

        /// Arbitrary writes and reads never panic and keep the invariants.
        #[test]
        fn arbitrary_ops_keep_invariants(
            capacity in 0usize..200,
            ops in proptest::collection::vec(
                (any::<bool>(), 0usize..300, proptest::collection::vec(any::<u8>(), 0..80)),
                0..200,
            ),
        ) {
            let mut b = RecvBuffer::new(capacity);
            for (is_write, n, data) in ops {
                if is_write {
                    let before = b.readable();
                    let adv = b.write_at(n, &data);
                    prop_assert_eq!(b.readable(), before + adv);
                } else {
                    let mut out = vec![0; n];
                    let r = b.read(&mut out);
                    prop_assert!(r <= n);
                }
                prop_assert!(b.readable() <= capacity);
                prop_assert_eq!(b.window(), capacity - b.readable());
                let (x, y) = b.peek_slices();
                prop_assert_eq!(x.len() + y.len(), b.readable());
                let mut prev_end = 0;
                for (rs, re) in b.ooo_ranges() {
                    prop_assert!(rs > prev_end && rs < re && re <= b.window());
                    prev_end = re;
                }
            }
        }
    }
}
