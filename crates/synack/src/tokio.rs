//! Async sockets for tokio (the `tokio` feature): [`TcpListener`] (with
//! the transparent listener's [`ConnectionRequest`]s) and [`TcpStream`]
//! implementing tokio's `AsyncRead` and `AsyncWrite`.
//!
//! They are woken by the driver thread (a `Waker` per connection direction,
//! registered under the stack's lock, so no wake-up is lost), so they work
//! on any runtime flavour, multi-threaded included, and need no reactor
//! registration of their own.

use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use synack_core::{Error, Handshake, Refusal};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::driver::{io_error, Net, Wait};
use crate::net;

/// An async listening socket.
#[derive(Debug)]
pub struct TcpListener {
    inner: net::TcpListener,
}

impl TcpListener {
    /// Listens on `addr` (see [`net::TcpListener::bind`]).
    pub fn bind(net: &Net, addr: SocketAddr) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: net::TcpListener::bind(net, addr)?,
        })
    }

    /// A transparent listener: every destination that arrives (see
    /// [`net::TcpListener::bind_transparent`]).
    pub fn bind_transparent(net: &Net, handshake: Handshake) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: net::TcpListener::bind_transparent(net, handshake)?,
        })
    }

    /// Waits for the next connection request of a listener bound with
    /// [`Handshake::Defer`] (see [`net::TcpListener::request`]).
    pub async fn request(&self) -> io::Result<ConnectionRequest> {
        let inner = poll_fn(|cx| self.inner.poll_request(cx.waker())).await?;
        Ok(ConnectionRequest { inner })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// See [`net::TcpListener::set_tos`].
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        self.inner.set_tos(tos)
    }

    /// Waits for the next established connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (inner, peer) = poll_fn(|cx| self.inner.poll_accept(cx.waker())).await?;
        Ok((TcpStream { inner }, peer))
    }
}

/// A connection request of a transparent listener that defers (see
/// [`net::ConnectionRequest`]): dropping it undecided refuses it with an
/// RST.
#[derive(Debug)]
pub struct ConnectionRequest {
    inner: net::ConnectionRequest,
}

impl ConnectionRequest {
    /// The address and port the client asked for: the original destination.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    /// The client's address and port.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer_addr()
    }

    /// Completes the handshake and waits until the connection is
    /// established (see [`net::ConnectionRequest::accept`]).
    pub async fn accept(self) -> io::Result<TcpStream> {
        let inner = self.inner.start_accept()?;
        poll_fn(|cx| {
            let mut g = inner.net().lock();
            match inner.connect_status(&mut g) {
                Some(r) => Poll::Ready(r),
                None => g.register_waker(Wait::Write(inner.id()), cx.waker()),
            }
        })
        .await?;
        Ok(TcpStream { inner })
    }

    /// Refuses the request (see [`net::ConnectionRequest::refuse`]).
    pub fn refuse(self, how: Refusal) -> io::Result<()> {
        self.inner.refuse(how)
    }
}

/// An async TCP connection. Dropping it closes it as the blocking
/// [`net::TcpStream`] does.
#[derive(Debug)]
pub struct TcpStream {
    inner: net::TcpStream,
}

impl TcpStream {
    /// Opens a connection to `addr` and waits until it is established or
    /// has failed (see [`net::TcpStream::connect`]).
    pub async fn connect(net: &Net, addr: SocketAddr) -> io::Result<TcpStream> {
        let inner = net::TcpStream::start_connect(net, None, addr)?;
        poll_fn(|cx| {
            let mut g = inner.net().lock();
            match inner.connect_status(&mut g) {
                Some(r) => Poll::Ready(r),
                None => g.register_waker(Wait::Write(inner.id()), cx.waker()),
            }
        })
        .await?;
        Ok(TcpStream { inner })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Our address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// See [`net::TcpStream::set_tos`].
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        self.inner.set_tos(tos)
    }

    /// See [`net::TcpStream::tos`].
    pub fn tos(&self) -> io::Result<u32> {
        self.inner.tos()
    }

    /// See [`net::TcpStream::set_linger`].
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        self.inner.set_linger(linger)
    }

    /// See [`net::TcpStream::stop_reading`].
    pub fn stop_reading(&self) -> io::Result<usize> {
        self.inner.stop_reading()
    }

    /// The blocking handle on the same connection.
    pub fn as_blocking(&self) -> &net::TcpStream {
        &self.inner
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let s = &self.inner;
        let mut g = s.net().lock();
        match s.try_read(&mut g, buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                g.drain();
                Poll::Ready(Ok(()))
            }
            Err(Error::WouldBlock) => g.register_waker(Wait::Read(s.id()), cx.waker()),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let s = &self.inner;
        let mut g = s.net().lock();
        let r = s.try_write(&mut g, buf);
        g.drain();
        match r {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(Error::WouldBlock) => g.register_waker(Wait::Write(s.id()), cx.waker()),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown(Shutdown::Write))
    }
}

// Devices from tokio objects, and async datagrams: in files of their own.
#[path = "tokio_datagrams.rs"]
mod datagrams;
#[path = "tokio_device.rs"]
pub mod device;
pub use datagrams::Datagrams;
