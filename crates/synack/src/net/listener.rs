//! The blocking [`TcpListener`].

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant as StdInstant};

use synack_core::{Error, Handshake, ListenerId};

use super::{ConnectionRequest, TcpStream};
use crate::driver::{io_error, Net, Wait};

/// A listening socket (passive OPEN) on a [`Net`].
#[derive(Debug)]
pub struct TcpListener {
    net: Net,
    id: ListenerId,
    local: SocketAddr,
    /// `Some` for a transparent listener: how it answers SYNs.
    handshake: Option<Handshake>,
}

impl TcpListener {
    /// Listens on `addr` (an unspecified IP listens on every address of the
    /// stack). A port already listened on is `AddrInUse`; an address that
    /// is not the stack's is `AddrNotAvailable`.
    pub fn bind(net: &Net, addr: SocketAddr) -> io::Result<TcpListener> {
        let mut g = net.lock();
        let backlog = g.stack().config().default_backlog;
        let id = g.stack().listen(addr, backlog).map_err(io_error)?;
        g.add_listener(id);
        Ok(TcpListener {
            net: net.clone(),
            id,
            local: addr,
            handshake: None,
        })
    }

    /// A transparent listener: it takes connections to every destination
    /// address and port that arrives on the device, IPv4 and IPv6 (as
    /// tun2socks tools need); each stream's `local_addr` is the
    /// destination its client asked for. Listeners bound to the stack's
    /// own addresses keep theirs. With [`Handshake::Complete`] streams come
    /// from [`TcpListener::accept`]; with [`Handshake::Defer`] nothing is
    /// answered until the application decides on each
    /// [`TcpListener::request`]. One per stack (`AddrInUse`).
    pub fn bind_transparent(net: &Net, handshake: Handshake) -> io::Result<TcpListener> {
        let mut g = net.lock();
        let backlog = g.stack().config().default_backlog;
        let id = g
            .stack()
            .listen_transparent(backlog, handshake)
            .map_err(io_error)?;
        let local = g.stack().listener_addr(id).map_err(io_error)?;
        g.add_listener(id);
        Ok(TcpListener {
            net: net.clone(),
            id,
            local,
            handshake: Some(handshake),
        })
    }

    /// Waits for the next connection request of a listener bound with
    /// [`Handshake::Defer`] (`InvalidInput` for any other).
    pub fn request(&self) -> io::Result<ConnectionRequest> {
        self.defers()?;
        let mut g = self.net.lock();
        loop {
            if let Some(r) = g.stack().poll_request(self.id) {
                return Ok(ConnectionRequest::new(&self.net, r));
            }
            g = g.wait(Wait::Accept(self.id), None, io::ErrorKind::TimedOut)?;
        }
    }

    /// `Ok` for a listener bound with [`Handshake::Defer`].
    fn defers(&self) -> io::Result<()> {
        if self.handshake == Some(Handshake::Defer) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "connection requests come only from a listener bound with Handshake::Defer",
            ))
        }
    }

    /// `Ok` unless the listener defers (its streams come from requests).
    fn completes(&self) -> io::Result<()> {
        if self.handshake == Some(Handshake::Defer) {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a listener bound with Handshake::Defer gives requests, not streams: use request()",
            ))
        } else {
            Ok(())
        }
    }

    /// The address it listens on (`[::]:0` for a transparent listener,
    /// which has none of its own).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Sets the IPv4 TOS byte or IPv6 Traffic Class that connections
    /// accepted from now on start with, their SYN-ACK included, as
    /// [`TcpStream::set_tos`] takes it (ECN bits ignored). Connections
    /// already made keep theirs.
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        let dscp = super::dscp_of_tos(tos)?;
        let mut g = self.net.lock();
        g.stack().set_listener_dscp(self.id, dscp).map_err(io_error)
    }

    /// The TOS / Traffic Class byte new connections start with.
    pub fn tos(&self) -> io::Result<u32> {
        let mut g = self.net.lock();
        let dscp = g.stack().listener_dscp(self.id).map_err(io_error)?;
        Ok(u32::from(dscp.tos(0)))
    }

    /// Waits for the next established connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(None)
    }

    /// Like [`TcpListener::accept`], but gives up with `TimedOut` after `timeout`.
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(Some(StdInstant::now() + timeout))
    }

    /// An endless iterator over accepted connections, as `std`'s.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    fn accept_until(&self, deadline: Option<StdInstant>) -> io::Result<(TcpStream, SocketAddr)> {
        self.completes()?;
        let mut g = self.net.lock();
        loop {
            match g.stack().accept(self.id) {
                Ok(id) => {
                    let stream = TcpStream::adopt(&self.net, &mut g, id)?;
                    let peer = stream.peer_addr()?;
                    return Ok((stream, peer));
                }
                Err(Error::WouldBlock) => {
                    g = g.wait(Wait::Accept(self.id), deadline, io::ErrorKind::TimedOut)?;
                }
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    /// Registers `waker` to be woken at the next incoming connection and
    /// tries to accept one now (for the async flavour).
    #[cfg(feature = "tokio")]
    pub(crate) fn poll_accept(
        &self,
        waker: &std::task::Waker,
    ) -> std::task::Poll<io::Result<(TcpStream, SocketAddr)>> {
        use std::task::Poll;
        self.completes()?;
        let mut g = self.net.lock();
        match g.stack().accept(self.id) {
            Ok(id) => {
                let stream = TcpStream::adopt(&self.net, &mut g, id)?;
                let peer = stream.peer_addr()?;
                Poll::Ready(Ok((stream, peer)))
            }
            Err(Error::WouldBlock) => g.register_waker(Wait::Accept(self.id), waker),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

impl TcpListener {
    /// Registers `waker` to be woken at the next connection request and
    /// takes one now if there is one (for the async flavour).
    #[cfg(feature = "tokio")]
    pub(crate) fn poll_request(
        &self,
        waker: &std::task::Waker,
    ) -> std::task::Poll<io::Result<ConnectionRequest>> {
        use std::task::Poll;
        self.defers()?;
        let mut g = self.net.lock();
        match g.stack().poll_request(self.id) {
            Some(r) => Poll::Ready(Ok(ConnectionRequest::new(&self.net, r))),
            None => g.register_waker(Wait::Accept(self.id), waker),
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut g = self.net.lock();
        let now = g.now();
        let _ = g.stack().close_listener(now, self.id);
        g.remove_listener(self.id);
        g.drain();
    }
}

/// The iterator of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
