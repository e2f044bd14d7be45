//! The blocking [`TcpStream`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use synack_core::{ConnId, Error, State};

use crate::driver::{io_error, Locked, Net, Wait};

/// A TCP connection on a [`Net`]. Dropping the last handle (see
/// [`TcpStream::try_clone`]) closes it gracefully (FIN; the stack finishes
/// the close on its own), or with RST after `set_linger(Some(0))`.
#[derive(Debug, Clone)]
pub struct TcpStream {
    inner: Arc<StreamInner>,
}

#[derive(Debug)]
struct StreamInner {
    net: Net,
    id: ConnId,
    local: SocketAddr,
    peer: SocketAddr,
    opts: Mutex<Opts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Opts {
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    linger: Option<Duration>,
    nodelay: bool,
    read_shut: bool,
}

impl TcpStream {
    /// Opens a connection to `addr` from the stack's address of the same
    /// family and an ephemeral port, and waits until it is established or
    /// has failed (`ConnectionRefused`, `TimedOut` once the SYN
    /// retransmissions run out, ...).
    pub fn connect(net: &Net, addr: SocketAddr) -> io::Result<TcpStream> {
        Self::connect_inner(net, None, addr, None)
    }

    /// Like [`TcpStream::connect`], giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(
        net: &Net,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        Self::connect_inner(net, None, addr, Some(StdInstant::now() + timeout))
    }

    /// Like [`TcpStream::connect`], from a given local address (port 0: an
    /// ephemeral port).
    pub fn connect_from(net: &Net, local: SocketAddr, addr: SocketAddr) -> io::Result<TcpStream> {
        Self::connect_inner(net, Some(local), addr, None)
    }

    fn connect_inner(
        net: &Net,
        local: Option<SocketAddr>,
        addr: SocketAddr,
        deadline: Option<StdInstant>,
    ) -> io::Result<TcpStream> {
        let stream = Self::start_connect(net, local, addr)?;
        let id = stream.inner.id;
        let mut g = net.lock();
        loop {
            match stream.connect_status(&mut g) {
                Some(Ok(())) => break,
                Some(Err(e)) => return Err(e),
                None => {}
            }
            g = match g.wait(Wait::Write(id), deadline, io::ErrorKind::TimedOut) {
                Ok(g) => g,
                Err(e) => {
                    // Drop aborts the half-open connection.
                    stream.set_linger(Some(Duration::ZERO))?;
                    return Err(e);
                }
            };
        }
        drop(g);
        Ok(stream)
    }

    /// Sends the SYN and returns the stream in SYN-SENT.
    pub(crate) fn start_connect(
        net: &Net,
        local: Option<SocketAddr>,
        addr: SocketAddr,
    ) -> io::Result<TcpStream> {
        let mut g = net.lock();
        let now = g.now();
        let id = g.stack().connect(now, local, addr).map_err(io_error)?;
        let stream = TcpStream::adopt(net, &mut g, id)?;
        g.drain();
        Ok(stream)
    }

    /// `Some(Ok)` once established, `Some(Err)` once failed, `None` while
    /// the handshake goes on.
    pub(crate) fn connect_status(&self, g: &mut Locked<'_>) -> Option<io::Result<()>> {
        let id = self.inner.id;
        match g.stack().state(id) {
            Ok(State::SynSent) | Ok(State::SynReceived) => None,
            Ok(State::Closed) => {
                let err = g.stack().error(id).ok().flatten().unwrap_or(Error::Refused);
                Some(Err(io_error(err)))
            }
            Ok(_) => Some(Ok(())),
            Err(e) => Some(Err(io_error(e))),
        }
    }

    /// Wraps a connection the stack already has (accepted or connecting).
    pub(crate) fn adopt(net: &Net, g: &mut Locked<'_>, id: ConnId) -> io::Result<TcpStream> {
        let tuple = g.stack().tuple(id).map_err(io_error)?;
        g.add_conn(id);
        Ok(TcpStream {
            inner: Arc::new(StreamInner {
                net: net.clone(),
                id,
                local: tuple.local,
                peer: tuple.remote,
                opts: Mutex::new(Opts::default()),
            }),
        })
    }

    fn opts(&self) -> MutexGuard<'_, Opts> {
        self.inner.opts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer)
    }

    /// Our address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local)
    }

    /// The connection's state now (RFC 9293 names).
    pub fn state(&self) -> State {
        let mut g = self.inner.net.lock();
        g.stack().state(self.inner.id).unwrap_or(State::Closed)
    }

    /// Why the connection ended, when it ended in a way other than an
    /// orderly close (a reset, a timeout), as `std`'s `take_error` (the
    /// error stays readable: the connection cannot fail twice).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let mut g = self.inner.net.lock();
        let e = g.stack().error(self.inner.id).map_err(io_error)?;
        Ok(e.map(io_error))
    }

    /// Another handle on the same connection (never fails; the connection
    /// closes when the last handle is dropped).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(self.clone())
    }

    /// Half-close and friends: `Write` sends FIN after the queued data and
    /// keeps reading; `Read` makes further reads return end of stream;
    /// `Both` does both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.opts().read_shut = true;
            // A reader blocked now returns end of stream.
            self.inner.net.lock().wake_conn(self.inner.id);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let mut g = self.inner.net.lock();
            let now = g.now();
            let r = g.stack().shutdown_write(now, self.inner.id);
            g.drain();
            match r {
                Ok(()) | Err(Error::Closing) => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    /// Stops reading if nothing is unread, as one step under the stack's
    /// lock ([`synack_core::Stack::stop_reading`]): `Ok(0)` when every byte
    /// the peer was told we received has been read; from then on reads
    /// return end of stream and data that still arrives is answered with
    /// RST, not acknowledged. `Ok(n)`: `n` bytes are still unread; read
    /// them and ask again. What a relay calls to stop without losing a
    /// byte it acknowledged.
    pub fn stop_reading(&self) -> io::Result<usize> {
        let mut g = self.inner.net.lock();
        let unread = g.stack().stop_reading(self.inner.id).map_err(io_error)?;
        if unread == 0 {
            self.opts().read_shut = true;
        }
        Ok(unread)
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let mut g = self.inner.net.lock();
        g.stack()
            .set_nodelay(self.inner.id, nodelay)
            .map_err(io_error)?;
        self.opts().nodelay = nodelay;
        Ok(())
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.opts().nodelay)
    }

    /// Sets the IPv4 TOS byte or IPv6 Traffic Class of the connection's
    /// segments from now on (RFC 9293 §3.9.1.9, MUST-48, SHLD-21), as
    /// `IP_TOS` / `IPV6_TCLASS` do: the Diffserv codepoint is its top six
    /// bits; the two ECN bits are TCP's and ignored. Applications should
    /// generally set it once, before data flows (SHLD-23). A value above
    /// 255 is `InvalidInput`.
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        let dscp = super::dscp_of_tos(tos)?;
        let mut g = self.inner.net.lock();
        g.stack().set_dscp(self.inner.id, dscp).map_err(io_error)
    }

    /// The TOS / Traffic Class byte the connection's segments carry (the
    /// codepoint in the top six bits; ECN bits zero).
    pub fn tos(&self) -> io::Result<u32> {
        let mut g = self.inner.net.lock();
        let dscp = g.stack().dscp(self.inner.id).map_err(io_error)?;
        Ok(u32::from(dscp.tos(0)))
    }

    /// `Some(Duration::ZERO)`: dropping the stream aborts it with RST.
    /// Any other value: dropping closes gracefully, without blocking.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.opts().linger = linger;
        Ok(())
    }

    /// The value set by [`TcpStream::set_linger`].
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().linger)
    }

    /// How long a read waits before failing with `WouldBlock` (`None`: forever).
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        check_timeout(dur)?;
        self.opts().read_timeout = dur;
        Ok(())
    }

    /// How long a write waits for room before failing with `WouldBlock`.
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        check_timeout(dur)?;
        self.opts().write_timeout = dur;
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().read_timeout)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().write_timeout)
    }

    /// One read attempt: `Err(WouldBlock)` when nothing is there yet.
    pub(crate) fn try_read(&self, g: &mut Locked<'_>, buf: &mut [u8]) -> Result<usize, Error> {
        if self.opts().read_shut {
            return Ok(0);
        }
        let now = g.now();
        g.stack().recv(now, self.inner.id, buf)
    }

    /// One write attempt: `Err(WouldBlock)` when the send buffer is full.
    pub(crate) fn try_write(&self, g: &mut Locked<'_>, buf: &[u8]) -> Result<usize, Error> {
        let now = g.now();
        g.stack().send(now, self.inner.id, buf)
    }

    /// The connection's id in the stack.
    pub(crate) fn id(&self) -> ConnId {
        self.inner.id
    }

    /// The network it lives on.
    pub(crate) fn net(&self) -> &Net {
        &self.inner.net
    }

    fn read_blocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.opts().read_timeout.map(|d| StdInstant::now() + d);
        let mut g = self.inner.net.lock();
        loop {
            match self.try_read(&mut g, buf) {
                Ok(n) => {
                    g.drain();
                    return Ok(n);
                }
                Err(Error::WouldBlock) => {
                    let on = Wait::Read(self.inner.id);
                    g = g.wait(on, deadline, io::ErrorKind::WouldBlock)?;
                }
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    fn write_blocking(&self, buf: &[u8]) -> io::Result<usize> {
        let deadline = self.opts().write_timeout.map(|d| StdInstant::now() + d);
        let mut g = self.inner.net.lock();
        loop {
            match self.try_write(&mut g, buf) {
                Ok(n) => {
                    g.drain();
                    return Ok(n);
                }
                Err(Error::WouldBlock) => {
                    g.drain();
                    let on = Wait::Write(self.inner.id);
                    g = g.wait(on, deadline, io::ErrorKind::WouldBlock)?;
                }
                Err(e) => return Err(io_error(e)),
            }
        }
    }
}

fn check_timeout(dur: Option<Duration>) -> io::Result<()> {
    if dur == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_blocking(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_blocking(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_blocking(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_blocking(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let linger = self.opts.lock().map(|o| o.linger).unwrap_or(None);
        let mut g = self.net.lock();
        let now = g.now();
        if linger == Some(Duration::ZERO) {
            let _ = g.stack().abort(now, self.id);
        } else {
            let _ = g.stack().close(now, self.id);
        }
        g.remove_conn(self.id);
        g.drain();
    }
}
