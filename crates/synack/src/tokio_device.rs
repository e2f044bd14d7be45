//! Devices from tokio objects (`synack::tokio::device`): a stack on an
//! `AsyncRead + AsyncWrite` object where one read is one packet (the shape
//! ipstack and netstack-smoltcp take), or on a `Stream` of packets and a
//! `Sink` for them.
//!
//! Each function makes a [`channel`] device and
//! spawns, on the current tokio runtime, two pump tasks between the object
//! and the channel's [`PacketPort`]: packets read from the object go into
//! the stack, packets the stack sends are written to the object (flushed
//! when no more are waiting). The driver itself stays on its own thread.
//! The pumps end when the object ends (end of file, an error) or the
//! [`Net`] is gone.
//!
//! ```no_run
//! # async fn demo(tun: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static)
//! # -> std::io::Result<()> {
//! use synack::tokio::{device, TcpListener};
//!
//! // `tun`: e.g. a tun-rs `AsyncDevice`, or any object where one read is
//! // one IP packet and one write sends one.
//! let net = device::from_async_io(tun, 1500)?
//!     .addr("10.0.0.2".parse().unwrap())
//!     .start()?;
//! let listener = TcpListener::bind(&net, "10.0.0.2:80".parse().unwrap())?;
//! let (stream, peer) = listener.accept().await?;
//! # Ok(()) }
//! ```
//!
//! With a stream and a sink (a WireGuard tunnel's decrypted packets, a
//! `futures::channel::mpsc` pair):
//!
//! ```no_run
//! # async fn demo(
//! #     packets_in: impl futures_core::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static,
//! #     packets_out: impl futures_sink::Sink<Vec<u8>> + Send + 'static,
//! # ) -> std::io::Result<()> {
//! let net = synack::tokio::device::from_stream_sink(packets_in, packets_out, 1420)?
//!     .addr("10.0.0.2".parse().unwrap())
//!     .start()?;
//! # Ok(()) }
//! ```

use std::future::poll_fn;
use std::io;
use std::pin::Pin;

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Handle;

use crate::device::{channel, PacketPort};
use crate::driver::{Net, NetBuilder};

/// A [`NetBuilder`] for a stack on `io`, an object where one read returns
/// one IP packet and one write sends one, of MTU `mtu`. Spawns the pump
/// tasks on the current runtime; `Err` when called outside one.
pub fn from_async_io<T>(io: T, mtu: usize) -> io::Result<NetBuilder>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let rt = runtime()?;
    let (device, port) = channel(mtu);
    let (reader, writer) = tokio::io::split(io);
    let inbound = rt.spawn(read_into(reader, port.clone()));
    rt.spawn(async move {
        let _ = write_from(writer, &port).await;
        inbound.abort();
    });
    Ok(Net::builder_with_device(device))
}

/// A [`NetBuilder`] for a stack fed by `stream` (one item, one IP packet;
/// an error item ends it) and sending into `sink`, of MTU `mtu`. Spawns the
/// pump tasks on the current runtime; `Err` when called outside one.
pub fn from_stream_sink<St, Si>(stream: St, sink: Si, mtu: usize) -> io::Result<NetBuilder>
where
    St: Stream<Item = io::Result<Vec<u8>>> + Send + 'static,
    Si: Sink<Vec<u8>> + Send + 'static,
{
    let rt = runtime()?;
    let (device, port) = channel(mtu);
    let inbound = rt.spawn(stream_into(stream, port.clone()));
    rt.spawn(async move {
        sink_from(sink, &port).await;
        inbound.abort();
    });
    Ok(Net::builder_with_device(device))
}

fn runtime() -> io::Result<Handle> {
    Handle::try_current().map_err(|_| {
        io::Error::other("a tokio device needs a tokio runtime (call it from inside one)")
    })
}

/// Hands one packet to the stack; `false` once the stack is gone. A
/// packet the device cannot take (its queue full, larger than the MTU) is
/// dropped, as a link drops it.
fn deliver(port: &PacketPort, packet: &[u8]) -> bool {
    !matches!(port.send(packet), Err(e) if e.kind() == io::ErrorKind::BrokenPipe)
}

/// Object → stack, one read per packet, until end of file or an error.
async fn read_into<R: AsyncRead + Unpin>(mut reader: R, port: PacketPort) {
    // Room for a packet a little larger than the MTU: a larger one is
    // refused by the port rather than cut short.
    let mut buf = vec![0u8; port.mtu() + 1];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if !deliver(&port, &buf[..n]) {
                    return;
                }
            }
        }
    }
}

/// Stack → object, one write per packet, flushed when none is waiting.
async fn write_from<W: AsyncWrite + Unpin>(mut writer: W, port: &PacketPort) -> io::Result<()> {
    loop {
        let packet = poll_fn(|cx| port.poll_recv(cx)).await?;
        writer.write_all(&packet).await?;
        while let Ok(p) = port.try_recv() {
            writer.write_all(&p).await?;
        }
        writer.flush().await?;
    }
}

/// Stream → stack, until the stream ends or yields an error.
async fn stream_into<St: Stream<Item = io::Result<Vec<u8>>>>(stream: St, port: PacketPort) {
    let mut stream = Box::pin(stream);
    while let Some(Ok(packet)) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        if !deliver(&port, &packet) {
            return;
        }
    }
}

/// Stack → sink, flushed when no packet is waiting, until either ends.
async fn sink_from<Si: Sink<Vec<u8>>>(sink: Si, port: &PacketPort) {
    let mut sink = Box::pin(sink);
    while let Ok(packet) = poll_fn(|cx| port.poll_recv(cx)).await {
        if feed(sink.as_mut(), packet).await.is_err() {
            return;
        }
        while let Ok(p) = port.try_recv() {
            if feed(sink.as_mut(), p).await.is_err() {
                return;
            }
        }
        if poll_fn(|cx| sink.as_mut().poll_flush(cx)).await.is_err() {
            return;
        }
    }
}

/// Waits for room in the sink and puts one packet in (not yet flushed).
async fn feed<Si: Sink<Vec<u8>>>(mut sink: Pin<&mut Si>, packet: Vec<u8>) -> Result<(), Si::Error> {
    poll_fn(|cx| sink.as_mut().poll_ready(cx)).await?;
    sink.as_mut().start_send(packet)
}
