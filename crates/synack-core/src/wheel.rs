//! A hierarchical timing wheel: timers keyed by [`Instant`], with insertion and
//! expiry costs that do not grow with the number of timers.
//!
//! The design follows the wheels in Linux and tokio: 8 levels of 64 slots.
//! Level 0 has 1 µs slots (a level-0 slot holds timers for exactly one
//! instant), and a slot at level `k` is `64^k` µs wide, so level `k` spans
//! `64^(k+1)` µs and the whole wheel spans `64^8` µs = 2^48 µs (about 8.9
//! years). Each level keeps a `u64` bitmap of its non-empty slots, so finding
//! the next occupied slot is a couple of bit operations per level.
//!
//! # Where an entry lives
//!
//! Write times in base 64: digit `k` of a time is bits `6k .. 6k+6`. An entry
//! whose deadline `at` is after the wheel's current time `now` sits at the
//! level of the highest digit in which `at` differs from `now`, in the slot
//! named by that digit of `at`. So an entry at level `k` agrees with `now` in
//! every digit above `k`, and its digit `k` is larger than `now`'s. Two
//! consequences hold the design together:
//!
//! - every entry at a lower level is earlier than every entry at a higher
//!   level, so the earliest occupied slot is found by scanning the levels
//!   from 0 upwards and taking the first non-empty one;
//! - when the wheel moves forward to the start of a slot, every other entry
//!   still satisfies the rule, and the entries of that slot are re-placed
//!   ("cascaded") into lower levels, each at most once per level.
//!
//! The top level is used as a ring: an entry there may be up to 63 top-level
//! slots ahead of `now`, even if that crosses a multiple of 2^48 µs.
//! Deadlines further away than that (about 8.8 to 8.9 years) are placed at the
//! furthest top-level position; the entry keeps its true deadline, is
//! re-placed when that position is reached, and so never fires early.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::Instant;

/// Number of levels in the wheel.
const LEVELS: usize = 8;
/// Bits of time per level (64 slots).
const LEVEL_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << LEVEL_BITS;
/// Mask selecting a slot digit.
const SLOT_MASK: u64 = (SLOTS as u64) - 1;
/// Shift of the top level's digit (`6 * 7`).
const TOP_SHIFT: u32 = LEVEL_BITS * (LEVELS as u32 - 1);

/// One pending timer: its true deadline (µs) and the caller's item.
#[derive(Debug)]
struct Entry<T> {
    /// The deadline, in microseconds since the epoch.
    at: u64,
    /// What the caller asked to get back.
    item: T,
}

/// One level of the wheel: 64 slots, a bitmap of the non-empty ones, and
/// the earliest deadline in each.
#[derive(Debug)]
struct Level<T> {
    /// Bit `s` is set exactly when `slots[s]` is non-empty.
    occupied: u64,
    /// The earliest deadline (µs) among `slots[s]`'s entries; meaningless
    /// for an empty slot. Exact, since a slot is only ever emptied whole:
    /// it makes [`TimerWheel::next_deadline`] exact, so that a driver
    /// sleeping until it wakes once per deadline, not once per level the
    /// entry cascades through.
    earliest: [u64; SLOTS],
    /// The entries of each slot, in no particular order.
    slots: [Vec<Entry<T>>; SLOTS],
}

impl<T> Level<T> {
    /// An empty level (allocates nothing for its slots).
    fn new() -> Self {
        Level {
            occupied: 0,
            earliest: [u64::MAX; SLOTS],
            slots: core::array::from_fn(|_| Vec::new()),
        }
    }
}

/// A hierarchical timing wheel of items of type `T`, each with a deadline.
///
/// See the module documentation for the layout. Costs: [`insert`] is O(1),
/// [`next_deadline`] is O(levels), and [`poll_expired`] costs O(levels) per occupied slot it
/// passes plus O(1) per entry it fires or moves; an entry moves at most once
/// per level between insertion and firing.
///
/// [`insert`]: TimerWheel::insert
/// [`next_deadline`]: TimerWheel::next_deadline
/// [`poll_expired`]: TimerWheel::poll_expired
#[derive(Debug)]
pub(crate) struct TimerWheel<T> {
    /// The wheel's current time in µs: everything at or before it was polled.
    now: u64,
    /// The levels, boxed to keep the wheel itself small to move.
    levels: Box<[Level<T>; LEVELS]>,
    /// Entries inserted with a deadline at or before `now`.
    due: Vec<Entry<T>>,
    /// The smallest deadline in `due` (meaningless when `due` is empty).
    due_min: u64,
    /// Number of entries held (in the levels and in `due`).
    len: usize,
    /// Test instrumentation: how many times an entry was taken out of a slot.
    #[cfg(test)]
    moves: u64,
}

impl<T> Default for TimerWheel<T> {
    /// Same as [`TimerWheel::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose current time is [`Instant::ZERO`].
    pub fn new() -> Self {
        TimerWheel {
            now: 0,
            levels: Box::new(core::array::from_fn(|_| Level::new())),
            due: Vec::new(),
            due_min: u64::MAX,
            len: 0,
            #[cfg(test)]
            moves: 0,
        }
    }

    /// Number of items waiting in the wheel.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no item is waiting.
    #[cfg(test)] // Read by the tests; the stack asks only for deadlines.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wheel's current time: the latest `now` passed to
    /// [`poll_expired`](TimerWheel::poll_expired) (initially zero).
    #[cfg(test)] // Read by the tests; the stack asks only for deadlines.
    pub fn now(&self) -> Instant {
        Instant(self.now)
    }

    /// Adds `item`, to be returned by the first poll at or after `at`.
    ///
    /// An `at` at or before the wheel's current time puts the item on a due
    /// list that the next poll (with a `now` at or after `at`) returns.
    pub fn insert(&mut self, at: Instant, item: T) {
        let entry = Entry { at: at.0, item };
        if entry.at <= self.now {
            self.due_min = self.due_min.min(entry.at);
            self.due.push(entry);
        } else {
            self.place(entry);
        }
        self.len = self.len.saturating_add(1);
    }

    /// The earliest deadline held, or `None` if the wheel is empty. Exact:
    /// a poll at that instant returns its entry, cascading it down the
    /// levels in the same call. O(levels).
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.due.is_empty() {
            return Some(Instant(self.due_min));
        }
        // The earliest occupied slot holds the earliest entry: every entry
        // of a later slot, or of a higher level, is later than all of its.
        let (level, slot, _) = self.next_slot()?;
        let at = self.levels.get(level)?.earliest.get(slot)?;
        Some(Instant(*at))
    }

    /// Advances the wheel to `now` and appends to `out` every item whose
    /// deadline is at or before `now`; items not yet due stay.
    ///
    /// A `now` earlier than the wheel's current time does not move the wheel
    /// back; such a call only returns due-list items whose deadline is at or
    /// before `now`.
    pub fn poll_expired(&mut self, now: Instant, out: &mut Vec<T>) {
        let target = now.0;
        if !self.due.is_empty() {
            self.drain_due(target, out);
        }
        if target <= self.now {
            return;
        }
        while let Some((level, slot, start)) = self.next_slot() {
            if start > target {
                break;
            }
            // `start` is after the wheel's time and no later than any other
            // occupied slot's start, so moving the wheel to it keeps every
            // other entry where it belongs.
            self.now = start;
            let Some(lvl) = self.levels.get_mut(level) else {
                break;
            };
            lvl.occupied &= !(1u64 << slot);
            if let Some(e) = lvl.earliest.get_mut(slot) {
                *e = u64::MAX;
            }
            let Some(cell) = lvl.slots.get_mut(slot) else {
                break;
            };
            let mut entries = core::mem::take(cell);
            for entry in entries.drain(..) {
                #[cfg(test)]
                {
                    self.moves += 1;
                }
                if entry.at <= target {
                    self.len = self.len.saturating_sub(1);
                    out.push(entry.item);
                } else {
                    // Goes strictly below `level` (or further round the top).
                    self.place(entry);
                }
            }
            // Give the (now empty) allocation back to the slot for reuse.
            if let Some(cell) = self
                .levels
                .get_mut(level)
                .and_then(|l| l.slots.get_mut(slot))
            {
                if cell.is_empty() {
                    *cell = entries;
                }
            }
        }
        self.now = target;
    }

    /// Keeps only the items for which `keep(item)` is true, and
    /// gives back the memory of slots left mostly empty: a sweep of every
    /// slot (O(slots + items)), for a caller whose items go stale faster
    /// than their deadlines come. Deadlines stay exact.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut kept = retain_entries(&mut self.due, &mut keep);
        self.due_min = self.due.iter().map(|e| e.at).min().unwrap_or(u64::MAX);
        for lvl in self.levels.iter_mut() {
            for (s, (cell, earliest)) in lvl.slots.iter_mut().zip(&mut lvl.earliest).enumerate() {
                kept += retain_entries(cell, &mut keep);
                *earliest = cell.iter().map(|e| e.at).min().unwrap_or(u64::MAX);
                if cell.is_empty() {
                    lvl.occupied &= !(1u64 << s);
                }
            }
        }
        self.len = kept;
    }

    /// Returns the items of the due list whose deadline is at or before
    /// `target`, keeping the others.
    fn drain_due(&mut self, target: u64, out: &mut Vec<T>) {
        let mut min = u64::MAX;
        let mut kept = Vec::new();
        for entry in core::mem::take(&mut self.due) {
            if entry.at <= target {
                self.len = self.len.saturating_sub(1);
                out.push(entry.item);
            } else {
                min = min.min(entry.at);
                kept.push(entry);
            }
        }
        self.due = kept;
        self.due_min = min;
    }

    /// Puts an entry whose deadline is after `self.now` into its slot.
    fn place(&mut self, entry: Entry<T>) {
        let key = entry.at.min(self.furthest_key());
        let (level, shift) = self.level_for(key);
        let slot = ((key >> shift) & SLOT_MASK) as usize;
        if let Some(lvl) = self.levels.get_mut(level) {
            if let (Some(cell), Some(e)) = (lvl.slots.get_mut(slot), lvl.earliest.get_mut(slot)) {
                *e = (*e).min(entry.at);
                cell.push(entry);
                lvl.occupied |= 1u64 << slot;
            }
        }
    }

    /// The furthest placement key the top level can hold without its ring
    /// wrapping onto the current top-level slot: the last microsecond of the
    /// 63rd top-level slot after the current one.
    fn furthest_key(&self) -> u64 {
        let top = (self.now >> TOP_SHIFT).saturating_add(SLOT_MASK);
        shl_saturating(top, TOP_SHIFT) | ((1u64 << TOP_SHIFT) - 1)
    }

    /// The level (and its digit's bit shift) for a placement key after
    /// `self.now`: the highest base-64 digit in which they differ, with
    /// everything at or above the top digit going to the top level.
    fn level_for(&self, key: u64) -> (usize, u32) {
        let diff = (key ^ self.now) | SLOT_MASK;
        let highest_bit = u64::BITS - 1 - diff.leading_zeros();
        let level = (highest_bit / LEVEL_BITS).min(LEVELS as u32 - 1);
        (level as usize, level * LEVEL_BITS)
    }

    /// The earliest occupied slot: `(level, slot, start time in µs)`.
    ///
    /// Occupied slots at a level are always ahead of the current time's digit
    /// (the top level counted round the ring), and lower levels hold earlier
    /// entries, so the first level with any occupied slot has it.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, lvl) in self.levels.iter().enumerate() {
            if lvl.occupied == 0 {
                continue;
            }
            let shift = level as u32 * LEVEL_BITS;
            let digit = ((self.now >> shift) & SLOT_MASK) as u32;
            // Slots counted from the current digit (0 = the current slot).
            let ahead = u64::from(lvl.occupied.rotate_right(digit).trailing_zeros());
            let slot = ((u64::from(digit) + ahead) & SLOT_MASK) as usize;
            let slot_number = (self.now >> shift).saturating_add(ahead);
            return Some((level, slot, shl_saturating(slot_number, shift)));
        }
        None
    }
}

/// Keeps the entries of `cell` that `keep` keeps and returns how many; a
/// cell left with under a quarter of its room gives the rest back (so the
/// allocations of a burst of timers do not outlive it).
fn retain_entries<T>(cell: &mut Vec<Entry<T>>, keep: &mut impl FnMut(&T) -> bool) -> usize {
    cell.retain(|e| keep(&e.item));
    if cell.capacity() > 4 * cell.len() {
        cell.shrink_to(2 * cell.len());
    }
    cell.len()
}

/// `v << shift`, or `u64::MAX` if that would lose bits (`shift` < 64).
fn shl_saturating(v: u64, shift: u32) -> u64 {
    if shift == 0 {
        v
    } else if shift >= u64::BITS || v >> (u64::BITS - shift) != 0 {
        u64::MAX
    } else {
        v << shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn drain(w: &mut TimerWheel<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        w.poll_expired(Instant(now), &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn empty_wheel() {
        let mut w: TimerWheel<u32> = TimerWheel::new();
        assert!(w.is_empty());
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
        assert!(drain(&mut w, 1_000_000).is_empty());
        assert_eq!(w.now(), Instant(1_000_000));
    }

    #[test]
    fn fires_at_deadline_not_before() {
        let mut w = TimerWheel::new();
        w.insert(Instant(100), 1);
        assert_eq!(w.len(), 1);
        assert!(drain(&mut w, 99).is_empty());
        assert_eq!(drain(&mut w, 100), vec![1]);
        assert!(w.is_empty());
        assert!(drain(&mut w, 1000).is_empty());
    }

    #[test]
    fn next_deadline_exact_at_every_level() {
        let mut w = TimerWheel::new();
        w.insert(Instant(40), 1);
        assert_eq!(w.next_deadline(), Some(Instant(40)));
        let mut w = TimerWheel::new();
        w.insert(Instant(5_000), 1);
        w.insert(Instant(5_100), 2);
        // 5000 = 1*4096 + 14*64 + 8: level 2, slot 1 (from 4096), which
        // also holds 5100; the slot's earliest is the deadline.
        assert_eq!(w.next_deadline(), Some(Instant(5_000)));
        assert!(drain(&mut w, 4999).is_empty());
        assert_eq!(w.next_deadline(), Some(Instant(5_000)));
        // One poll cascades it through level 1 to level 0 and fires it.
        assert_eq!(drain(&mut w, 5_000), vec![1]);
        assert_eq!(w.next_deadline(), Some(Instant(5_100)));
        assert_eq!(drain(&mut w, 5_100), vec![2]);
        assert_eq!(w.next_deadline(), None);
        // A slot emptied and filled again forgets its old earliest.
        w.insert(Instant(9_000), 3);
        assert_eq!(w.next_deadline(), Some(Instant(9_000)));
    }

    #[test]
    fn past_deadlines_go_to_due_list() {
        let mut w = TimerWheel::new();
        assert!(drain(&mut w, 1_000).is_empty());
        w.insert(Instant(500), 1);
        w.insert(Instant(1_000), 2);
        w.insert(Instant(1_001), 3);
        assert_eq!(w.len(), 3);
        assert_eq!(w.next_deadline(), Some(Instant(500)));
        // An earlier `now` returns only what is due by then.
        assert!(drain(&mut w, 400).is_empty());
        assert_eq!(drain(&mut w, 600), vec![1]);
        assert_eq!(w.now(), Instant(1_000));
        assert_eq!(w.next_deadline(), Some(Instant(1_000)));
        assert_eq!(drain(&mut w, 1_000), vec![2]);
        assert_eq!(drain(&mut w, 1_001), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn same_instant_all_fire() {
        let mut w = TimerWheel::new();
        for i in 0..100 {
            w.insert(Instant(123_456_789), i);
        }
        for i in 100..200 {
            w.insert(Instant(7), i);
        }
        assert_eq!(drain(&mut w, 7), (100..200).collect::<Vec<_>>());
        assert!(drain(&mut w, 123_456_788).is_empty());
        assert_eq!(drain(&mut w, 123_456_789), (0..100).collect::<Vec<_>>());
        assert!(w.is_empty());
    }

    #[test]
    fn big_jump_fires_everything() {
        let mut w = TimerWheel::new();
        for i in 0..1000u32 {
            w.insert(Instant(u64::from(i) * 7_919_777), i);
        }
        assert_eq!(drain(&mut w, u64::MAX), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn far_deadlines_clamped_but_never_early() {
        let mut w = TimerWheel::new();
        let far = 1u64 << 50; // about 35.7 years
        w.insert(Instant(far), 1);
        w.insert(Instant(u64::MAX), 2);
        // Placed at the furthest top-level position, it keeps its deadline.
        assert_eq!(w.next_deadline(), Some(Instant(far)));
        assert!(drain(&mut w, far - 1).is_empty());
        assert_eq!(w.next_deadline(), Some(Instant(far)));
        assert_eq!(drain(&mut w, far), vec![1]);
        assert_eq!(w.next_deadline(), Some(Instant(u64::MAX)));
        assert!(drain(&mut w, u64::MAX - 1).is_empty());
        assert_eq!(drain(&mut w, u64::MAX), vec![2]);
    }

    #[test]
    fn crossing_top_level_boundary() {
        // Just before a multiple of 2^48 µs, a timer 1 µs later differs in the
        // digit above the top level; it must still fire on time.
        let mut w = TimerWheel::new();
        let edge = (1u64 << 48) - 1;
        assert!(drain(&mut w, edge).is_empty());
        w.insert(Instant(edge + 1), 1);
        w.insert(Instant(edge + 5_000_000), 2);
        let nd = w.next_deadline().unwrap();
        assert!(nd.0 <= edge + 1);
        assert!(drain(&mut w, edge).is_empty());
        let mut t = edge;
        while let Some(nd) = w.next_deadline() {
            assert!(nd.0 > t);
            t = nd.0;
            let fired = drain(&mut w, t);
            if t == edge + 1 {
                assert_eq!(fired, vec![1]);
            } else if t == edge + 5_000_000 {
                assert_eq!(fired, vec![2]);
            } else {
                assert!(fired.is_empty());
            }
        }
        assert_eq!(t, edge + 5_000_000);
    }

    #[test]
    fn near_end_of_time() {
        let mut w = TimerWheel::new();
        let t = u64::MAX - 100;
        assert!(drain(&mut w, t).is_empty());
        w.insert(Instant(u64::MAX), 1);
        w.insert(Instant(u64::MAX - 50), 2);
        assert_eq!(w.next_deadline(), Some(Instant(u64::MAX - 50)));
        assert!(drain(&mut w, u64::MAX - 51).is_empty());
        assert_eq!(drain(&mut w, u64::MAX - 50), vec![2]);
        assert_eq!(w.next_deadline(), Some(Instant(u64::MAX)));
        assert_eq!(drain(&mut w, u64::MAX), vec![1]);
        assert!(w.is_empty());
    }

    /// Each entry is taken out of a slot at most once per level (plus the
    /// firing itself), whatever the number of timers: the cost is flat.
    #[test]
    fn cost_is_flat_for_a_million_timers() {
        let mut w = TimerWheel::new();
        let n: u64 = 1_000_000;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut fired = 0u64;
        let mut out = Vec::new();
        let mut now = 0u64;
        for i in 0..n {
            // xorshift: deadlines up to ~1 hour ahead.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.insert(Instant(now + x % 3_600_000_000), i);
            if i % 16 == 0 {
                now += 3_000;
                w.poll_expired(Instant(now), &mut out);
                fired += out.len() as u64;
                out.clear();
            }
        }
        w.poll_expired(Instant(u64::MAX), &mut out);
        fired += out.len() as u64;
        assert_eq!(fired, n);
        assert!(w.is_empty());
        assert!(w.moves <= n * LEVELS as u64, "moves = {}", w.moves);
    }

    #[test]
    fn retain_drops_items_and_keeps_deadlines_exact() {
        let mut w = TimerWheel::new();
        for i in 0..1000u32 {
            w.insert(Instant(1_000 + u64::from(i) * 997), i);
        }
        w.insert(Instant(0), 5000); // the due list
        w.retain(|&i| i % 3 == 0 && i != 0);
        assert_eq!(w.len(), 333);
        assert_eq!(w.next_deadline(), Some(Instant(1_000 + 3 * 997)));
        let fired = drain(&mut w, u64::MAX);
        assert_eq!(fired, (1..1000).filter(|i| i % 3 == 0).collect::<Vec<_>>());
        assert!(w.is_empty());
    }

    #[test]
    fn retain_gives_back_the_room_of_emptied_slots() {
        let mut w = TimerWheel::new();
        for i in 0..10_000u32 {
            w.insert(Instant(5_000_000), i);
        }
        w.retain(|_| false);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
        let room: usize = w
            .levels
            .iter()
            .flat_map(|l| l.slots.iter())
            .map(Vec::capacity)
            .sum();
        assert_eq!(room, 0);
        w.insert(Instant(7), 1);
        assert_eq!(drain(&mut w, 7), vec![1]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Thousands of random timers and random poll times: each fires exactly
        /// once, never before its deadline, and every due one fires at the
        /// poll; next_deadline is the true minimum.
        #[test]
        fn random_timers_fire_exactly_once_on_time(
            deadlines in proptest::collection::vec(0u64..4 * 3_600_000_000, 1..3000),
            steps in proptest::collection::vec(0u64..600_000_000, 1..60),
            start in prop_oneof![Just(0u64), 0u64..u64::MAX / 2, Just((1u64 << 48) - 10_000)],
        ) {
            let mut w = TimerWheel::new();
            let mut out = Vec::new();
            w.poll_expired(Instant(start), &mut out);
            prop_assert!(out.is_empty());
            let mut pending: Vec<(u64, usize)> = Vec::new();
            let mut fired = vec![false; deadlines.len()];
            let mut now = start;
            let mut next_insert = 0;
            let per_step = deadlines.len() / steps.len() + 1;
            for step in &steps {
                // Insert a batch, some in the past relative to the wheel.
                for _ in 0..per_step {
                    if next_insert < deadlines.len() {
                        let at = (start + deadlines[next_insert]).saturating_sub(3_600_000_000);
                        w.insert(Instant(at), next_insert);
                        pending.push((at, next_insert));
                        next_insert += 1;
                    }
                }
                prop_assert_eq!(w.len(), pending.len());
                let true_min = pending.iter().map(|p| p.0).min();
                match (w.next_deadline(), true_min) {
                    (Some(nd), Some(m)) => prop_assert_eq!(nd.0, m),
                    (None, None) => {}
                    (a, b) => prop_assert!(false, "next_deadline {:?} vs min {:?}", a, b),
                }
                if step % 5 == 0 {
                    // Now and then, drop the timers of every seventh id.
                    w.retain(|&id| id % 7 != 3);
                    for p in pending.iter().filter(|p| p.1 % 7 == 3) {
                        fired[p.1] = true;
                    }
                    pending.retain(|p| p.1 % 7 != 3);
                    prop_assert_eq!(w.len(), pending.len());
                    let true_min = pending.iter().map(|p| p.0).min();
                    prop_assert_eq!(w.next_deadline().map(|i| i.0), true_min);
                }
                now += step;
                out.clear();
                w.poll_expired(Instant(now), &mut out);
                for &id in &out {
                    prop_assert!(!fired[id], "fired twice");
                    fired[id] = true;
                }
                let mut expected: Vec<usize> =
                    pending.iter().filter(|p| p.0 <= now).map(|p| p.1).collect();
                expected.sort_unstable();
                out.sort_unstable();
                prop_assert_eq!(&out, &expected);
                pending.retain(|p| p.0 > now);
            }
            out.clear();
            w.poll_expired(Instant(u64::MAX), &mut out);
            for &id in &out {
                prop_assert!(!fired[id]);
                fired[id] = true;
            }
            prop_assert!(fired[..next_insert].iter().all(|&f| f));
            prop_assert!(w.is_empty());
        }

        /// Walking by next_deadline alone reaches every timer exactly at its
        /// deadline.
        #[test]
        fn walking_next_deadline_hits_every_deadline(
            deadlines in proptest::collection::vec(1u64..10_000_000_000, 1..200),
        ) {
            let mut w = TimerWheel::new();
            for (i, &d) in deadlines.iter().enumerate() {
                w.insert(Instant(d), i);
            }
            let mut out = Vec::new();
            let mut last = 0;
            let mut count = 0;
            while let Some(nd) = w.next_deadline() {
                prop_assert!(nd.0 > last);
                last = nd.0;
                out.clear();
                w.poll_expired(nd, &mut out);
                for &id in &out {
                    prop_assert_eq!(deadlines[id], nd.0);
                    count += 1;
                }
            }
            prop_assert_eq!(count, deadlines.len());
        }
    }
}
