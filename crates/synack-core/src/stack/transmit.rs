//! The transmit path, as the driver drains it: complete packets, or
//! packets with what an offloading device must do to them, the ACKs owed
//! at the end of a batch (MUST-58, MUST-59), and buffers given back.

use alloc::vec::Vec;

use synack_wire::{complete_checksum, gso_segment, gso_segment_count};

use super::Stack;
use crate::conn::{Disposition, Tcb};
use crate::outbox::Transmit;

impl Stack {
    /// The next IP packet to put on the wire, complete: one segment with
    /// its checksum.
    ///
    /// ACKs owed for the segments handed in since the last drain are built
    /// here, once the whole batch has been processed (MUST-58, MUST-59).
    ///
    /// With `Config::gso_max_size` or `Config::checksum_offload` set, the
    /// stack's packets need a device's help; this does the device's part in
    /// software (cuts super-segments into segments, completes checksums),
    /// so it is always safe to call. A driver whose device offloads calls
    /// [`Stack::poll_transmit_meta`] instead.
    #[inline]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(p) = self.out.cut.pop_front() {
            return Some(p);
        }
        if !self.out.ack_pending.is_empty() {
            self.flush_acks();
        }
        loop {
            let front = self.out.packets.front()?;
            if front.segment_size.is_none() && !front.checksum_partial {
                // A complete packet already: nothing for a device to do.
                // Taken straight out of the queue into the result (no
                // `Transmit` in between, whose copy would read back the
                // stores just made and stall).
                return self.out.packets.pop_front().map(|t| t.packet);
            }
            let t = self.out.packets.pop_front()?;
            if let Some(p) = self.finish_in_software(t) {
                return Some(p);
            }
        }
    }

    /// The next IP packet to put on the wire, with what a device that
    /// offloads must do to it ([`Transmit`]): with `Config::gso_max_size`
    /// a TCP packet may carry several segments of the send MSS for the
    /// device to cut apart (TSO/GSO), and with `Config::checksum_offload`
    /// (and always for such packets) the TCP checksum is left for the
    /// device to complete. Without either it is [`Stack::poll_transmit`]
    /// with nothing more to do. Do not mix the two calls in one drain.
    #[inline]
    pub fn poll_transmit_meta(&mut self) -> Option<Transmit> {
        if !self.out.ack_pending.is_empty() {
            self.flush_acks();
        }
        self.out.packets.pop_front()
    }

    /// Does the device's part for a driver that wants plain packets.
    /// `None` only for a packet that cannot be finished (never one the
    /// stack built).
    #[inline(never)]
    fn finish_in_software(&mut self, mut t: Transmit) -> Option<Vec<u8>> {
        if let Some(mss) = t.segment_size {
            let mss = usize::from(mss);
            let count = gso_segment_count(&t.packet, mss).ok()?;
            let headers = t.header_len();
            for i in 0..count {
                let mut buf = self.out.take_buffer().unwrap_or_default();
                buf.resize(headers + mss, 0);
                match gso_segment(&t.packet, mss, i, &mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        self.out.cut.push_back(buf);
                    }
                    Err(e) => self.out.drop(self.now, None, e.reason()),
                }
            }
            self.out.recycle(t.packet);
            return self.out.cut.pop_front();
        }
        if t.checksum_partial {
            let start = t.checksum_start();
            complete_checksum(&mut t.packet, start, Transmit::CHECKSUM_OFFSET).ok()?;
        }
        Some(t.packet)
    }

    /// Sends the ACKs the connections queued.
    #[inline(never)]
    fn flush_acks(&mut self) {
        let pending = core::mem::take(&mut self.out.ack_pending);
        let now = self.now;
        for &id in &pending {
            // Most ACKs queued during a batch went out on a later segment
            // of the same connection (the application's reply, our FIN):
            // then there is nothing to send and nothing to re-arm, and
            // only the lines holding the flags are touched.
            if self.conns.get_mut(id).is_some_and(Tcb::queued_ack_owed) {
                self.with_conn(now, id, |t, ctx| {
                    t.flush_ack(ctx);
                    Disposition::Stay
                });
            }
        }
        let mut pending = pending;
        pending.clear();
        if self.out.ack_pending.is_empty() {
            self.out.ack_pending = pending;
        }
    }

    /// Gives a packet buffer (from [`Stack::poll_transmit`], once written
    /// out) back to the stack, which reuses it instead of allocating.
    /// Optional; it only saves allocations.
    #[inline]
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.out.recycle(buf);
    }
}
