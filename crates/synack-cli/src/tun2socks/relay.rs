//! Relays one TCP connection both ways, half-close included.
//!
//! Each direction is copied on its own: the end of one side's data (its
//! FIN, read as EOF) becomes a `shutdown(Write)` of the other side (our
//! FIN), and the other direction goes on until its own EOF (RFC 9293
//! §3.6: a half-closed connection still carries data the other way). The
//! relay ends when both directions have ended, or at the first error.
//!
//! On a stop (SIGINT/SIGTERM) nothing accepted is lost: each direction
//! stops waiting for new data, reads what is already buffered (the bytes
//! the peer was told we received), writes it to the other side, and then
//! shuts that side down as at EOF. The end of the reading is one step
//! under the stack's lock ([`Settle`]): a segment acknowledged between the
//! last read and the close would otherwise be lost (and reset) with it.
//!
//! Reads go into one scratch buffer per thread; only what the other side
//! does not take at once is copied out and kept for the connection, so an
//! idle relayed connection holds no buffer.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// Size of the scratch buffer reads go into.
const SCRATCH: usize = 64 * 1024;

/// Reads a relay may do in one poll before it lets other tasks run.
const BUDGET: usize = 16;

thread_local! {
    /// The read buffer shared by all relays polled on this thread: a relay
    /// copies out of it before it returns, so none sees another's bytes.
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
}

/// Counters of everything relayed, read by the status line.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Relayed connections open now.
    pub open: AtomicU64,
    /// Bytes written upstream (from the clients in the tunnel).
    pub up: AtomicU64,
    /// Bytes written back into the tunnel (from upstream).
    pub down: AtomicU64,
}

/// A stop signal for every relay: `true` once the process is stopping.
pub type Stop = watch::Receiver<bool>;

/// A reader that, at the end of a drain, says whether it still holds
/// bytes it acknowledged to its peer.
pub trait Settle {
    /// `Ok(true)` when nothing acknowledged is left unread and no more will
    /// be accepted; `Ok(false)` when there is more to read first.
    fn settle(&mut self) -> io::Result<bool> {
        Ok(true)
    }
}

/// The client side on synack: stops reading only when nothing is unread,
/// after which data that still arrives is refused with RST, not
/// acknowledged.
impl Settle for synack::tokio::TcpStream {
    fn settle(&mut self) -> io::Result<bool> {
        Ok(self.stop_reading()? == 0)
    }
}

/// The upstream side: what the host's kernel acknowledged and we did not
/// read is the kernel's to reset; the upstream server's data has no
/// promise to keep towards the client.
impl Settle for tokio::net::TcpStream {}

/// One direction: reads one side, writes the other.
#[derive(Default)]
struct Direction {
    /// Bytes read but not yet taken by the writer.
    unsent: Vec<u8>,
    /// How much of `unsent` was written.
    at: usize,
    /// The reader is done (EOF, or nothing buffered after a stop).
    eof: bool,
    /// The writer was shut down: this direction is over.
    done: bool,
}

/// Relays between `client` (the connection from the tunnel) and
/// `upstream` until both directions end, counting bytes in `traffic`;
/// on `stop`, drains what is buffered and closes (see the module doc).
pub async fn relay<A, B>(
    client: &mut A,
    upstream: &mut B,
    traffic: &Traffic,
    stop: &mut Stop,
) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Settle + Unpin,
    B: AsyncRead + AsyncWrite + Settle + Unpin,
{
    let stopping = AtomicBool::new(*stop.borrow());
    let mut up = Direction::default();
    let mut down = Direction::default();
    let mut both = std::pin::pin!(poll_fn(|cx| {
        let draining = stopping.load(Ordering::Relaxed);
        let a = poll_direction(
            cx,
            &mut *client,
            &mut *upstream,
            &mut up,
            &traffic.up,
            draining,
        )?;
        let b = poll_direction(
            cx,
            &mut *upstream,
            &mut *client,
            &mut down,
            &traffic.down,
            draining,
        )?;
        if a.is_ready() && b.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }));
    if !stopping.load(Ordering::Relaxed) {
        // A stop signal whose sender is gone never fires.
        let stopped = tokio::select! {
            r = &mut both => return r,
            s = stop.wait_for(|s| *s) => s.is_ok(),
        };
        stopping.store(stopped, Ordering::Relaxed);
    }
    both.await
}

/// Advances one direction as far as it goes without waiting; `Ready` when
/// it is over (the writer shut down).
fn poll_direction<R, W>(
    cx: &mut Context<'_>,
    reader: &mut R,
    writer: &mut W,
    dir: &mut Direction,
    counter: &AtomicU64,
    draining: bool,
) -> Poll<io::Result<()>>
where
    R: AsyncRead + Settle + Unpin,
    W: AsyncWrite + Unpin,
{
    if dir.done {
        return Poll::Ready(Ok(()));
    }
    for _ in 0..BUDGET {
        if flush_unsent(cx, writer, dir, counter)?.is_pending() {
            return Poll::Pending;
        }
        if dir.eof {
            // The peer's FIN (or the stop) passed on as ours.
            std::task::ready!(Pin::new(&mut *writer).poll_shutdown(cx))?;
            dir.done = true;
            return Poll::Ready(Ok(()));
        }
        let turn = SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            read_and_write(cx, reader, writer, dir, counter, &mut scratch)
        })?;
        match turn {
            // Nothing more buffered: after a stop, that is the end, once
            // the reader agrees that nothing arrived since.
            Poll::Pending if draining => dir.eof = reader.settle()?,
            Poll::Pending => return Poll::Pending,
            Poll::Ready(()) => {}
        }
    }
    // Let other relays run; come back at once.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Writes what is left of `dir.unsent`; `Ready` once it is all written.
fn flush_unsent<W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    writer: &mut W,
    dir: &mut Direction,
    counter: &AtomicU64,
) -> Poll<io::Result<()>> {
    while dir.at < dir.unsent.len() {
        let n = std::task::ready!(Pin::new(&mut *writer).poll_write(cx, &dir.unsent[dir.at..]))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        dir.at += n;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    // Idle directions hold no buffer.
    dir.unsent = Vec::new();
    dir.at = 0;
    Poll::Ready(Ok(()))
}

/// Reads once into `scratch` and writes it on; what the writer does not
/// take is kept in `dir.unsent`. `Pending` when the reader has nothing.
fn read_and_write<R, W>(
    cx: &mut Context<'_>,
    reader: &mut R,
    writer: &mut W,
    dir: &mut Direction,
    counter: &AtomicU64,
    scratch: &mut [u8],
) -> io::Result<Poll<()>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = ReadBuf::new(scratch);
    match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
        Poll::Pending => return Ok(Poll::Pending),
        Poll::Ready(r) => r?,
    }
    let data = buf.filled();
    if data.is_empty() {
        dir.eof = true;
        return Ok(Poll::Ready(()));
    }
    let sent = match Pin::new(&mut *writer).poll_write(cx, data) {
        Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
        Poll::Ready(r) => r?,
        Poll::Pending => 0,
    };
    counter.fetch_add(sent as u64, Ordering::Relaxed);
    if sent < data.len() {
        dir.unsent = data[sent..].to_vec();
        dir.at = 0;
    }
    Ok(Poll::Ready(()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;

    impl Settle for DuplexStream {}

    /// An app and a server joined through a relay, with small pipes so
    /// that writes are partial and back-pressure is exercised.
    struct Setup {
        app: DuplexStream,
        server: DuplexStream,
        traffic: Arc<Traffic>,
        stop: watch::Sender<bool>,
        relay: tokio::task::JoinHandle<io::Result<()>>,
    }

    fn setup(pipe: usize) -> Setup {
        let (app, mut client) = duplex(pipe);
        let (mut upstream, server) = duplex(pipe);
        let traffic = Arc::new(Traffic::default());
        let (stop, mut stop_rx) = watch::channel(false);
        let t = Arc::clone(&traffic);
        let relay =
            tokio::spawn(async move { relay(&mut client, &mut upstream, &t, &mut stop_rx).await });
        Setup {
            app,
            server,
            traffic,
            stop,
            relay,
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[tokio::test]
    async fn both_directions_at_once_with_back_pressure() {
        let Setup {
            app,
            server,
            traffic,
            relay,
            ..
        } = setup(100);
        let (up_data, down_data) = (pattern(1 << 20, 1), pattern(700_000, 2));
        let talk = |mut s: DuplexStream, out: Vec<u8>| async move {
            let (mut r, mut w) = tokio::io::split(&mut s);
            let send = async {
                w.write_all(&out).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let recv = r.read_to_end(&mut got);
            let (_, n) = tokio::join!(send, recv);
            n.unwrap();
            got
        };
        let (at_server, at_app) =
            tokio::join!(talk(server, down_data.clone()), talk(app, up_data.clone()));
        assert!(at_server == up_data, "upstream got other bytes");
        assert!(at_app == down_data, "the app got other bytes");
        relay.await.unwrap().unwrap();
        assert_eq!(traffic.up.load(Ordering::Relaxed), up_data.len() as u64);
        assert_eq!(traffic.down.load(Ordering::Relaxed), down_data.len() as u64);
    }

    #[tokio::test]
    async fn half_close_is_relayed_each_way() {
        let Setup {
            mut app,
            mut server,
            relay,
            ..
        } = setup(4096);
        // The app writes and half-closes at once (ipstack #89's case).
        app.write_all(b"request").await.unwrap();
        app.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request", "the FIN came after the data");
        // The other direction is still open: a long answer after the FIN.
        let answer = pattern(300_000, 9);
        let a = answer.clone();
        let writer = tokio::spawn(async move {
            server.write_all(&a).await.unwrap();
            server.shutdown().await.unwrap();
            server
        });
        let mut back = Vec::new();
        app.read_to_end(&mut back).await.unwrap();
        assert!(back == answer);
        writer.await.unwrap();
        relay.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_stop_delivers_what_was_buffered_then_closes() {
        let Setup {
            mut app,
            mut server,
            stop,
            relay,
            traffic,
        } = setup(1 << 16);
        app.write_all(b"accepted before the stop").await.unwrap();
        server.write_all(b"answer in flight").await.unwrap();
        // Let the relay move both, then stop while both sides stay open.
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .expect("the relay ends after a stop")
            .unwrap()
            .unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"accepted before the stop");
        let mut back = Vec::new();
        app.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer in flight");
        assert_eq!(traffic.up.load(Ordering::Relaxed), 24);
    }

    #[tokio::test]
    async fn a_stop_flushes_data_the_writer_had_not_taken() {
        // A pipe of 16 bytes: most of the app's write waits in the relay
        // (or in the pipe) when the stop comes; the server reads it all.
        let Setup {
            mut app,
            mut server,
            stop,
            relay,
            ..
        } = setup(16);
        let data = pattern(10_000, 5);
        let d = data.clone();
        let writer = tokio::spawn(async move {
            // Ends with a broken pipe once the relay has closed.
            let _ = app.write_all(&d).await;
            app
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.send(true).unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        let _app = writer.await.unwrap();
        relay.await.unwrap().unwrap();
        // Everything the app's writes handed over before or during the
        // drain got through, in order: the stop cut nothing short.
        assert!(!got.is_empty() && data.starts_with(&got));
    }

    #[tokio::test]
    async fn a_reset_ends_the_relay_with_the_error() {
        struct Broken;
        impl AsyncRead for Broken {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
            }
        }
        impl Settle for Broken {}
        impl AsyncWrite for Broken {
            fn poll_write(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                b: &[u8],
            ) -> Poll<io::Result<usize>> {
                Poll::Ready(Ok(b.len()))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let (_app, mut client) = duplex(64);
        let (_, mut stop) = watch::channel(false);
        let e = relay(&mut client, &mut Broken, &Traffic::default(), &mut stop)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }
}
