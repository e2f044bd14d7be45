//! The user calls on an open connection: SEND, RECEIVE, CLOSE (and its
//! half, shutdown of writing), ABORT (RFC 9293 §3.10.2–§3.10.5).

use super::{Ctx, Disposition, Tcb, TimerKind};
use crate::send_buf::SendBuffer;
use crate::{Error, State};

impl Tcb {
    /// SEND (§3.10.2): queue as much of `data` as fits and send what the
    /// windows allow. Returns the number of bytes taken.
    pub(crate) fn send(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) -> Result<usize, Error> {
        self.queue(ctx, |q| {
            let n = q.push(data);
            (n, n < data.len())
        })
    }

    /// SEND in place: `f` writes into the free space of the send buffer
    /// (two slices, in order; the second is often empty, and both are when
    /// the buffer is full) and returns how many bytes it wrote from the
    /// start of that space. Filling all of it asks for a `Writable` event.
    pub(crate) fn send_with(
        &mut self,
        ctx: &mut Ctx<'_>,
        f: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        self.queue(ctx, |q| {
            let (a, b) = q.free_slices();
            let free = a.len() + b.len();
            let n = f(a, b).min(free);
            (q.commit(n), n == free)
        })
    }

    /// The two SENDs: `put` adds bytes to the send queue and says how many
    /// and whether the application wanted to add more than fitted.
    fn queue(
        &mut self,
        ctx: &mut Ctx<'_>,
        put: impl FnOnce(&mut SendBuffer) -> (usize, bool),
    ) -> Result<usize, Error> {
        match self.state {
            s if s.accepts_send() => {}
            State::Closed => return Err(self.error.unwrap_or(Error::InvalidState)),
            _ => return Err(Error::Closing),
        }
        if self.fin_queued {
            return Err(Error::Closing);
        }
        let (n, wants_more) = put(&mut self.sendq);
        if wants_more {
            self.want_writable = true;
        }
        if n == 0 {
            return if wants_more {
                Err(Error::WouldBlock)
            } else {
                Ok(0)
            };
        }
        self.output(ctx);
        Ok(n)
    }

    /// RECEIVE (§3.10.3): copy readable data out. `Ok(0)` is the end of the
    /// stream (the peer's FIN), `Err(WouldBlock)` means wait for `Readable`.
    pub(crate) fn recv(&mut self, ctx: &mut Ctx<'_>, out: &mut [u8]) -> Result<usize, Error> {
        if out.is_empty() && !self.read_closed {
            self.readable_signalled = false;
            return Ok(0);
        }
        self.recv_with(ctx, |a, b| {
            let first = a.len().min(out.len());
            out[..first].copy_from_slice(&a[..first]);
            let second = b.len().min(out.len() - first);
            out[first..first + second].copy_from_slice(&b[..second]);
            first + second
        })
    }

    /// RECEIVE without a copy: `f` sees the readable bytes in place (the
    /// ring's two slices, in order) and returns how many it consumed.
    pub(crate) fn recv_with(
        &mut self,
        ctx: &mut Ctx<'_>,
        f: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, Error> {
        self.readable_signalled = false;
        if self.read_closed {
            return Err(Error::InvalidState);
        }
        let n = if self.recvq.readable() > 0 {
            let (a, b) = self.recvq.peek_slices();
            let n = f(a, b).min(a.len() + b.len());
            self.recvq.consume(n);
            n
        } else {
            0
        };
        if n > 0 {
            // A read can open the window; update the peer when it grows by
            // enough to be worth it (MUST-39).
            let delack = self.timers.get(TimerKind::DelayedAck);
            if self.window_update_due() && delack.is_none_or(|t| t > ctx.now) {
                // Deferred to the end of this instant, so that data the
                // application sends next can carry the update instead.
                self.timers.set(TimerKind::DelayedAck, ctx.now);
            }
            return Ok(n);
        }
        if self.fin_rcvd {
            // Nothing more can arrive: give the receive ring back.
            self.recvq.release_if_empty();
            return Ok(0);
        }
        match self.state {
            State::Closed => Err(self.error.unwrap_or(Error::InvalidState)),
            _ => Err(Error::WouldBlock),
        }
    }

    /// Stops reading once everything received has been read: from then on
    /// segment text that arrives is answered with RST (MAY-1, SHLD-3)
    /// instead of being acknowledged, so no byte is acknowledged that the
    /// application will not read. With bytes still unread it changes
    /// nothing and returns how many there are (read them, then ask again).
    pub(crate) fn stop_reading(&mut self) -> usize {
        let unread = self.recvq.readable();
        if unread == 0 {
            self.read_closed = true;
        }
        unread
    }

    /// True when reading has opened the window enough to advertise it.
    fn window_update_due(&self) -> bool {
        if !self.state.is_synchronized() || self.fin_rcvd {
            return false;
        }
        // The window field caps what can be advertised at 0xFFFF << shift.
        let room = (self.recvq.window() as u32).min(0xFFFF << self.rcv_wscale);
        let fresh = self.rcv_nxt.add(room);
        let step = self.rcv_mss.min(self.recvq.capacity() as u32 / 2).max(1);
        fresh.gt(self.rcv_adv) && fresh.since(self.rcv_adv) >= step
    }

    /// CLOSE of the sending half (§3.10.4): queue a FIN after the data.
    /// With `full`, the application also stops reading (MAY-1); unread data
    /// then turns the close into a reset (SHLD-3).
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, full: bool) -> Result<Disposition, Error> {
        if full {
            self.read_closed = true;
            if self.recvq.readable() > 0 && self.state.is_synchronized() {
                // SHLD-3: received data would be lost: RST, not FIN.
                self.send_rst(ctx);
                return Ok(self.close_with(ctx, None));
            }
        }
        match self.state {
            State::SynSent => return Ok(self.close_with(ctx, None)),
            State::SynReceived | State::Established => {
                self.fin_queued = true;
                self.set_state(ctx, State::FinWait1);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(ctx, State::LastAck);
            }
            State::FinWait2 if full && !self.timers.is_armed(TimerKind::Close) => {
                self.timers
                    .set(TimerKind::Close, ctx.now + ctx.cfg.fin_timeout);
            }
            State::Closed => return Ok(Disposition::Closed),
            _ => {}
        }
        self.output(ctx);
        Ok(Disposition::Stay)
    }

    /// ABORT (§3.10.5): RST in the states where the peer knows of us.
    pub(crate) fn abort(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        self.read_closed = true;
        match self.state {
            // §3.10.5: the states where the peer holds a connection.
            s if s == State::SynReceived || s.is_open() => self.send_rst(ctx),
            State::Closed => return Disposition::Closed,
            _ => {}
        }
        self.close_with(ctx, Some(Error::Aborted))
    }
}
