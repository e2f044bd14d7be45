//! The in-memory link both stacks run over, and the virtual clock.

use std::collections::VecDeque;

use crate::MTU;

/// One-way delay of the link, virtual microseconds (a 1 ms round trip, as
/// on a LAN). It only paces the stacks' timers; real time is what is measured.
pub const DELAY_US: u64 = 500;

/// One direction of the link: IP packets in flight, each with the virtual
/// instant (microseconds) it arrives.
#[derive(Default)]
pub struct Pipe {
    queue: VecDeque<(u64, Vec<u8>)>,
    /// Packets that entered this direction.
    pub packets: u64,
    /// Bytes that entered this direction.
    pub bytes: u64,
}

impl Pipe {
    /// Puts a packet on the wire at `now`; it arrives `DELAY_US` later.
    pub fn push(&mut self, now: u64, packet: Vec<u8>) {
        debug_assert!(packet.len() <= MTU);
        self.packets += 1;
        self.bytes += packet.len() as u64;
        self.queue.push_back((now + DELAY_US, packet));
    }

    /// The next packet that has arrived by `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<Vec<u8>> {
        match self.queue.front() {
            Some(&(at, _)) if at <= now => self.queue.pop_front().map(|(_, p)| p),
            _ => None,
        }
    }

    /// When the next packet arrives.
    pub fn next_due(&self) -> Option<u64> {
        self.queue.front().map(|&(at, _)| at)
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

/// The two directions between host A and host B.
#[derive(Default)]
pub struct Link {
    /// From A to B.
    pub ab: Pipe,
    /// From B to A.
    pub ba: Pipe,
}

impl Link {
    /// Packets that crossed the link, both directions.
    pub fn packets(&self) -> u64 {
        self.ab.packets + self.ba.packets
    }
}

/// The earliest of some optional instants.
pub fn earliest(times: &[Option<u64>]) -> Option<u64> {
    times.iter().flatten().copied().min()
}
