//! The application's calls on a connection: the active OPEN (RFC 9293
//! §3.10.1), SEND, RECEIVE, CLOSE, ABORT (§3.10.2-§3.10.5), STATUS-like
//! queries and the per-connection options. Each finds the connection and
//! hands the call to it.

use core::hash::BuildHasher;
use core::net::SocketAddr;

use super::{valid_remote, Stack};
use crate::conn::{Ctx, Disposition, Tcb};
use crate::seq::Seq;
use crate::{ConnId, ConnTuple, Error, Instant, State};

impl Stack {
    /// Active OPEN (§3.10.1): sends a SYN from `local` (or, when `None`, the
    /// first address of the remote's family and an ephemeral port) to
    /// `remote`. The result is known by `Event::Connected` or `Event::Closed`.
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<ConnId, Error> {
        // MUST-46: no broadcast, multicast or unspecified peers.
        if !valid_remote(remote.ip()) || remote.port() == 0 {
            return Err(Error::InvalidAddress);
        }
        let local_ip = match local.map(|l| l.ip()) {
            Some(ip) if !ip.is_unspecified() => {
                if !self.is_local(ip) {
                    return Err(Error::AddrNotAvailable);
                }
                ip
            }
            _ => *self
                .addrs
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(Error::AddrNotAvailable)?,
        };
        if local_ip.is_ipv4() != remote.is_ipv4() {
            return Err(Error::InvalidAddress);
        }
        let port = match local.map(|l| l.port()) {
            Some(p) if p != 0 => {
                let tuple = ConnTuple {
                    local: SocketAddr::new(local_ip, p),
                    remote,
                };
                let h = self.hasher.hash_one(tuple);
                if self.conns.find(h, &tuple).is_some()
                    || self.time_wait.contains_key_hashed(h, &tuple)
                {
                    return Err(Error::AddrInUse);
                }
                p
            }
            _ => self.ephemeral_port(local_ip, remote)?,
        };
        if self.conns.len() + self.requests.len() >= self.cfg.max_connections {
            return Err(Error::NoPorts);
        }
        let tuple = ConnTuple {
            local: SocketAddr::new(local_ip, port),
            remote,
        };
        let iss = Seq(self.isn.isn(now, tuple.local, tuple.remote));
        let ts_offset = self.isn.ts_offset(tuple.local, tuple.remote);
        let id = self.insert_tcb(Tcb::active(&self.cfg, tuple, iss, ts_offset));
        self.with_conn(now, id, |t, ctx| t.open_active(ctx));
        Ok(id)
    }

    /// SEND: queues bytes, returns how many were taken.
    pub fn send(&mut self, now: Instant, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.send(ctx, data))
    }

    /// SEND in place: `f` is handed the free space of the send buffer as
    /// two slices (in order; the second is often empty, both are when the
    /// buffer is full), writes the bytes to send from the start of it and
    /// returns how many it wrote. Saves the copy [`Stack::send`] makes.
    /// Results as for `send`: the bytes taken, `Err(WouldBlock)` when the
    /// buffer is full (filling it all asks for a `Writable` event).
    pub fn send_with(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.send_with(ctx, f))
    }

    /// SEND with URG (MUST-30): queue `data` and mark it urgent; the peer is
    /// told where its end lies. Legacy: new applications should not use
    /// urgent data (SHLD-13).
    pub fn send_urgent(&mut self, now: Instant, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.send_urgent(ctx, data))
    }

    /// Bytes still to read before the end of the peer's urgent data, or
    /// `None` when none is pending (MUST-33).
    pub fn urgent_mark(&mut self, id: ConnId) -> Result<Option<usize>, Error> {
        self.tcb_mut(id)
            .map(|t| t.urgent_mark())
            .ok_or(Error::InvalidHandle)
    }

    /// RECEIVE: `Ok(0)` is end of stream; `Err(WouldBlock)`: wait for `Readable`.
    pub fn recv(&mut self, now: Instant, id: ConnId, buf: &mut [u8]) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.recv(ctx, buf))
    }

    /// RECEIVE in place: `f` is handed the readable bytes as the receive
    /// ring's two slices (in order; the second is often empty) and returns
    /// how many it consumed, which leave the buffer. Saves the copy
    /// [`Stack::recv`] makes. Results as for `recv`: `Ok(0)` at the end of
    /// the stream, `Err(WouldBlock)` when nothing is there yet.
    pub fn recv_with(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, Error> {
        self.user_call(now, id, |t, ctx| t.recv_with(ctx, f))
    }

    /// Half-close: sends FIN after the queued data, keeps reading.
    pub fn shutdown_write(&mut self, now: Instant, id: ConnId) -> Result<(), Error> {
        self.tcb(id).ok_or(Error::InvalidHandle)?;
        let mut res = Ok(());
        self.with_conn(now, id, |t, ctx| match t.close(ctx, false) {
            Ok(next) => next,
            Err(e) => {
                res = Err(e);
                Disposition::Stay
            }
        });
        res
    }

    /// Stops reading, atomically with the check that nothing is unread:
    /// `Ok(0)` means every byte acknowledged so far was read and data that
    /// arrives from now on is refused with RST (MAY-1, SHLD-3), never
    /// acknowledged; `Ok(n)` means `n` bytes are still unread and nothing
    /// changed. A proxy that stops uses it to end a direction without
    /// dropping data it has acknowledged: read until `Ok(0)`.
    pub fn stop_reading(&mut self, id: ConnId) -> Result<usize, Error> {
        self.tcb_mut(id)
            .map(|t| t.stop_reading())
            .ok_or(Error::InvalidHandle)
    }

    /// CLOSE and let go of the handle: the stack finishes the orderly close
    /// (FIN, TIME-WAIT) on its own and then frees everything. Unread data
    /// turns it into a reset (SHLD-3). The handle is invalid afterwards.
    pub fn close(&mut self, now: Instant, id: ConnId) -> Result<(), Error> {
        let detached = self.tcb_mut(id).ok_or(Error::InvalidHandle)?.release();
        if detached {
            self.free_if_unlinked(id);
            return Ok(());
        }
        self.with_conn(now, id, |t, ctx| {
            t.close(ctx, true).unwrap_or(Disposition::Stay)
        });
        Ok(())
    }

    /// ABORT (§3.10.5): RST, and the handle is invalid afterwards.
    pub fn abort(&mut self, now: Instant, id: ConnId) -> Result<(), Error> {
        let detached = self.tcb_mut(id).ok_or(Error::InvalidHandle)?.release();
        if detached {
            self.free_if_unlinked(id);
            return Ok(());
        }
        self.with_conn(now, id, |t, ctx| t.abort(ctx));
        Ok(())
    }

    /// The connection's state.
    pub fn state(&self, id: ConnId) -> Result<State, Error> {
        self.tcb(id).map(|t| t.state).ok_or(Error::InvalidHandle)
    }

    /// Why the connection ended, when it did not end in an orderly way.
    pub fn error(&self, id: ConnId) -> Result<Option<Error>, Error> {
        self.tcb(id).map(|t| t.error).ok_or(Error::InvalidHandle)
    }

    /// (local, remote) addresses.
    pub fn tuple(&self, id: ConnId) -> Result<ConnTuple, Error> {
        self.tcb(id).map(|t| t.tuple).ok_or(Error::InvalidHandle)
    }

    /// Bytes that can be read now.
    pub fn readable(&self, id: ConnId) -> Result<usize, Error> {
        self.tcb(id)
            .map(|t| t.recvq.readable())
            .ok_or(Error::InvalidHandle)
    }

    /// Room in the send buffer.
    pub fn send_capacity(&self, id: ConnId) -> Result<usize, Error> {
        self.tcb(id)
            .map(|t| t.sendq.free())
            .ok_or(Error::InvalidHandle)
    }

    /// Bytes queued and not yet acknowledged by the peer.
    pub fn unacked(&self, id: ConnId) -> Result<usize, Error> {
        self.tcb(id)
            .map(|t| t.sendq.len())
            .ok_or(Error::InvalidHandle)
    }

    /// Turns keep-alive probes on or off for one connection (MUST-24; off
    /// by default, MUST-25). Probes start after `Config::keepalive_idle`.
    pub fn set_keepalive(&mut self, now: Instant, id: ConnId, on: bool) -> Result<(), Error> {
        self.user_call(now, id, |t, ctx| {
            t.set_keepalive(ctx, on);
            Ok(())
        })
    }

    /// Sets this connection's R2 as a time (MUST-21): the connection is
    /// aborted once retransmissions have gone unanswered that long.
    /// `Some(Duration::MAX)` never gives up; `None` restores the default
    /// (`Config::max_retries`).
    pub fn set_user_timeout(
        &mut self,
        id: ConnId,
        timeout: Option<core::time::Duration>,
    ) -> Result<(), Error> {
        self.tcb_mut(id)
            .map(|t| t.set_user_timeout(timeout))
            .ok_or(Error::InvalidHandle)
    }

    /// Picks this connection's congestion controller in place of
    /// `Config::congestion_control`. Only before it has sent data (any
    /// state up to ESTABLISHED with nothing but the SYN sent): afterwards
    /// the window has history a new controller would throw away
    /// (`Error::InvalidState`).
    pub fn set_congestion_control(
        &mut self,
        id: ConnId,
        choice: &crate::CongestionControlChoice,
    ) -> Result<(), Error> {
        self.tcb_mut(id)
            .ok_or(Error::InvalidHandle)
            .and_then(|t| t.set_congestion_control(choice))
    }

    /// Turns Nagle's algorithm off (`true`) or on (MUST-17).
    pub fn set_nodelay(&mut self, id: ConnId, nodelay: bool) -> Result<(), Error> {
        self.tcb_mut(id)
            .map(|t| t.set_nodelay(nodelay))
            .ok_or(Error::InvalidHandle)
    }

    /// Runs a user call that returns a value on the connection (which
    /// lives on: [`Stack::with_conn`] re-arms its timer).
    fn user_call<R>(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut Tcb, &mut Ctx<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.tcb(id).ok_or(Error::InvalidHandle)?;
        let mut res = Err(Error::InvalidHandle);
        self.with_conn(now, id, |t, ctx| {
            res = f(t, ctx);
            Disposition::Stay
        });
        res
    }
}
