//! The urgent mechanism (RFC 9293 §3.8.5, RFC 6093): URG with a pointer to
//! the byte after the urgent data (MUST-62), sent and received, of any
//! length (MUST-31); urgent data stays inline in the stream.

use synack_wire::TcpFlags;

use super::{Ctx, Tcb};
use crate::seq::Seq;
use crate::{Error, Event};

impl Tcb {
    /// SEND with the urgent flag: queue `data` and mark its end urgent.
    pub(crate) fn send_urgent(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) -> Result<usize, Error> {
        let end_before = self.data_end();
        let n = self.send(ctx, &[])?; // state checks
        debug_assert_eq!(n, 0);
        let n = self.sendq.push(data);
        if n == 0 && !data.is_empty() {
            self.want_writable = true;
            return Err(Error::WouldBlock);
        }
        self.snd_up = Some(end_before.add(n as u32));
        self.output(ctx);
        Ok(n)
    }

    /// The URG flag and pointer for a segment starting at `seq` (RFC 6093
    /// §4: a pointer beyond 65,535 is sent as 65,535 until it fits).
    pub(crate) fn urgent_field(&self, flags: TcpFlags, seq: Seq) -> (TcpFlags, u16) {
        match self.snd_up {
            Some(up) if up.gt(seq) && !flags.syn() && !flags.rst() => {
                (flags | TcpFlags::URG, up.since(seq).min(0xFFFF) as u16)
            }
            _ => (flags, 0),
        }
    }

    /// Step 6 of §3.10.7.4: a segment with URG at `seq` with `pointer`.
    pub(crate) fn on_urgent(&mut self, ctx: &mut Ctx<'_>, seq: Seq, pointer: u16) {
        if !self.state.accepts_segment_text() {
            return;
        }
        let up = seq.add(u32::from(pointer));
        let advanced = self.rcv_up.is_none_or(|old| up.gt(old));
        if advanced && up.gt(self.read_seq()) {
            self.rcv_up = Some(up);
            if !self.released {
                // MUST-32: tell the application at once.
                ctx.events.push_back(Event::Urgent(ctx.id));
            }
        }
    }

    /// The sequence number of the next byte the application will read.
    fn read_seq(&self) -> Seq {
        let fin = u32::from(self.fin_rcvd);
        self.rcv_nxt.sub(self.recvq.readable() as u32 + fin)
    }

    /// How many bytes the application must read to reach the end of the
    /// urgent data, or `None` when no urgent data is pending (MUST-33).
    pub(crate) fn urgent_mark(&mut self) -> Option<usize> {
        let up = self.rcv_up?;
        let at = self.read_seq();
        if up.gt(at) {
            Some(up.since(at) as usize)
        } else {
            self.rcv_up = None;
            None
        }
    }
}
