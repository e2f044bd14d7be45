//! The blocking [`ConnectionRequest`]: a SYN a transparent listener bound
//! with [`Handshake::Defer`](synack_core::Handshake::Defer) holds
//! unanswered until the application accepts or refuses it.

use std::io;
use std::net::SocketAddr;
use std::time::Instant as StdInstant;

use synack_core::{Refusal, RequestId};

use super::TcpStream;
use crate::driver::{io_error, Net, Wait};

/// A connection request: the client and the destination it asked for are
/// known, its SYN arrived, nothing has been answered. Decide with
/// [`ConnectionRequest::accept`] or [`ConnectionRequest::refuse`];
/// dropping it undecided refuses it with an RST, as a closed port would.
/// Undecided, it expires after `Config::request_timeout` (then accepting
/// it fails with `NotConnected`).
#[derive(Debug)]
pub struct ConnectionRequest {
    net: Net,
    id: RequestId,
    local: SocketAddr,
    peer: SocketAddr,
    decided: bool,
}

impl ConnectionRequest {
    pub(crate) fn new(net: &Net, r: synack_core::ConnectionRequest) -> ConnectionRequest {
        ConnectionRequest {
            net: net.clone(),
            id: r.id,
            local: r.local,
            peer: r.remote,
            decided: false,
        }
    }

    /// The address and port the client asked for: the original destination.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The client's address and port.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The stack's handle of the request.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Completes the handshake (the SYN-ACK leaves now) and waits until the
    /// connection is established; its `local_addr` is the original
    /// destination. Fails as a connect would when the client goes away
    /// meanwhile (`ConnectionRefused` for its RST, `TimedOut` when the
    /// SYN-ACK's retransmissions run out).
    pub fn accept(self) -> io::Result<TcpStream> {
        let stream = self.start_accept()?;
        let id = stream.id();
        let mut g = stream.net().lock();
        loop {
            match stream.connect_status(&mut g) {
                Some(Ok(())) => break,
                Some(Err(e)) => return Err(e),
                None => {}
            }
            g = g.wait(Wait::Write(id), None::<StdInstant>, io::ErrorKind::TimedOut)?;
        }
        drop(g);
        Ok(stream)
    }

    /// Sends the SYN-ACK and returns the stream in SYN-RECEIVED.
    pub(crate) fn start_accept(mut self) -> io::Result<TcpStream> {
        self.decided = true;
        let mut g = self.net.lock();
        let now = g.now();
        let id = g.stack().accept_request(now, self.id).map_err(io_error)?;
        let stream = TcpStream::adopt(&self.net, &mut g, id)?;
        g.drain();
        Ok(stream)
    }

    /// Refuses the request: an RST (the client sees "connection refused"),
    /// an ICMP destination unreachable (the error its code names), or
    /// nothing (the client times out). See [`Refusal`].
    pub fn refuse(mut self, how: Refusal) -> io::Result<()> {
        self.decided = true;
        self.refuse_now(how)
    }

    fn refuse_now(&self, how: Refusal) -> io::Result<()> {
        let mut g = self.net.lock();
        let now = g.now();
        let r = g.stack().refuse_request(now, self.id, how);
        g.drain();
        r.map_err(io_error)
    }
}

impl Drop for ConnectionRequest {
    fn drop(&mut self) {
        if !self.decided {
            // Expired or withdrawn already: nothing to answer.
            let _ = self.refuse_now(Refusal::Reset);
        }
    }
}
