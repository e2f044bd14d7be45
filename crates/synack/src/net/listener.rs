//! The blocking [`TcpListener`].

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant as StdInstant};

use synack_core::{Error, ListenerId};

use super::{wait_on, TcpStream};
use crate::driver::{io_error, ListenerWaiters, Net};

/// A listening socket (passive OPEN) on a [`Net`].
#[derive(Debug)]
pub struct TcpListener {
    net: Net,
    id: ListenerId,
    local: SocketAddr,
}

impl TcpListener {
    /// Listens on `addr` (an unspecified IP listens on every address of the
    /// stack). A port already listened on is `AddrInUse`; an address that
    /// is not the stack's is `AddrNotAvailable`.
    pub fn bind(net: &Net, addr: SocketAddr) -> io::Result<TcpListener> {
        let shared = &net.shared;
        let mut g = shared.lock();
        let backlog = g.stack.config().default_backlog;
        let id = g.stack.listen(addr, backlog).map_err(io_error)?;
        g.listeners.insert(id, ListenerWaiters::default());
        Ok(TcpListener {
            net: net.clone(),
            id,
            local: addr,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
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
        let shared = &self.net.shared;
        let mut g = shared.lock();
        loop {
            match g.stack.accept(self.id) {
                Ok(id) => {
                    let stream = TcpStream::adopt(&self.net, &mut g, id)?;
                    let peer = stream.peer_addr()?;
                    return Ok((stream, peer));
                }
                Err(Error::WouldBlock) => {
                    let cond = match g.listeners.get(&self.id) {
                        Some(l) => l.cond.clone(),
                        None => return Err(io::ErrorKind::NotConnected.into()),
                    };
                    g = wait_on(shared, g, &cond, deadline, io::ErrorKind::TimedOut)?;
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
        let mut g = self.net.shared.lock();
        match g.stack.accept(self.id) {
            Ok(id) => {
                let stream = TcpStream::adopt(&self.net, &mut g, id)?;
                let peer = stream.peer_addr()?;
                Poll::Ready(Ok((stream, peer)))
            }
            Err(Error::WouldBlock) => {
                if self.net.shared.stopped() {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                }
                if let Some(l) = g.listeners.get_mut(&self.id) {
                    l.accept = Some(waker.clone());
                }
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let shared = &self.net.shared;
        let mut g = shared.lock();
        let now = shared.now();
        let _ = g.stack.close_listener(now, self.id);
        g.listeners.remove(&self.id);
        shared.settle(&mut g);
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
