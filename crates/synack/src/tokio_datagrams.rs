//! Async datagrams (`synack::tokio::Datagrams`): the UDP datagrams and
//! other packets that arrive on a [`Net`]'s device, awaited on any tokio
//! runtime (the driver thread wakes the task; no reactor registration).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;

use crate::datagram::Datagram;
use crate::driver::{Net, Wait};

/// The async side of [`Net::recv_datagram`] and [`Net::recv_packet`].
/// Cloning is cheap; clones share the same queues.
///
/// ```no_run
/// # async fn relay(net: synack::Net) -> std::io::Result<()> {
/// let datagrams = synack::tokio::Datagrams::new(&net);
/// loop {
///     let d = datagrams.recv_datagram().await?;
///     // d.dst is the original destination: answer from it.
///     datagrams.send_datagram(d.dst, d.src, b"an answer")?;
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Datagrams {
    net: Net,
}

impl Datagrams {
    /// Starts delivering datagrams and packets to the application
    /// ([`Net::deliver_datagrams`]`(true)`) and returns the async handle.
    pub fn new(net: &Net) -> Datagrams {
        net.deliver_datagrams(true);
        Datagrams { net: net.clone() }
    }

    /// The next UDP datagram that arrived on the device. `NotConnected`
    /// once the driver has stopped.
    pub async fn recv_datagram(&self) -> io::Result<Datagram> {
        poll_fn(|cx| {
            let mut l = self.net.lock();
            match l.pop_datagram() {
                Some(d) => Poll::Ready(Ok(d)),
                None => l.register_waker(Wait::Datagram, cx.waker()),
            }
        })
        .await
    }

    /// The next other packet (see [`Net::deliver_datagrams`]), whole.
    pub async fn recv_packet(&self) -> io::Result<Vec<u8>> {
        poll_fn(|cx| {
            let mut l = self.net.lock();
            match l.pop_packet() {
                Some(p) => Poll::Ready(Ok(p)),
                None => l.register_waker(Wait::Packet, cx.waker()),
            }
        })
        .await
    }

    /// See [`Net::send_datagram`] (never waits).
    pub fn send_datagram(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        self.net.send_datagram(src, dst, payload)
    }

    /// See [`Net::send_packet`] (never waits).
    pub fn send_packet(&self, packet: &[u8]) -> io::Result<()> {
        self.net.send_packet(packet)
    }

    /// The stack these datagrams come from.
    pub fn net(&self) -> &Net {
        &self.net
    }
}
