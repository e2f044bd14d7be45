//! In-order data placed while the checksum is verified (MUST-3): the
//! stack copies the payload of a segment that will most likely be
//! accepted straight into the receive buffer, in the same pass that sums
//! it, and makes it readable only once the segment is accepted.

use synack_wire::Segment;

use super::Tcb;
use crate::seq::Seq;

impl Tcb {
    /// Copies `seg`'s payload to RCV.NXT in the receive buffer (not yet
    /// readable) and returns the payload's checksum sum; `None` when the
    /// segment does not qualify (then nothing is copied): plain data at
    /// RCV.NXT, within the window, in a state that takes segment text
    /// (RFC 9293 §3.10.7.4, seventh).
    #[inline]
    pub(crate) fn place_in_order(&mut self, seg: &Segment<'_>) -> Option<u64> {
        let f = seg.tcp.flags;
        let qualifies = self.state.accepts_segment_text()
            && !f.syn()
            && !f.rst()
            && !seg.payload.is_empty()
            && Seq(seg.tcp.seq) == self.rcv_nxt
            && !self.read_closed
            && !self.fin_rcvd
            && seg.payload.len() as u32 <= self.rcv_wnd();
        if !qualifies {
            return None;
        }
        self.recvq.place(seg.payload)
    }
}
