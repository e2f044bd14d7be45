//! Devices from tokio objects, no root needed: two stacks back to back,
//! one on an `AsyncRead + AsyncWrite` object (one read, one packet), the
//! other on a `Stream` + `Sink` pair, joined by in-memory channels. TCP
//! between them, then datagrams and packets through `synack::tokio::Datagrams`.
#![cfg(target_os = "linux")]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_util::StreamExt;
use synack::tokio::{device, Datagrams, TcpListener, TcpStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

const T: Duration = Duration::from_secs(20);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An object where one read is one packet and one write sends one, over
/// two channels (as a TUN device's async wrapper behaves).
struct PacketPipe {
    rx: UnboundedReceiver<Vec<u8>>,
    tx: UnboundedSender<Vec<u8>>,
}

impl AsyncRead for PacketPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.rx.poll_next_unpin(cx) {
            Poll::Ready(Some(p)) => {
                let n = p.len().min(buf.remaining());
                buf.put_slice(&p[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(None) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for PacketPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = self.tx.unbounded_send(buf.to_vec());
        Poll::Ready(
            r.map(|_| buf.len())
                .map_err(|_| io::ErrorKind::BrokenPipe.into()),
        )
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Stack A (10.0.0.2) on a `PacketPipe`, stack B (10.0.0.1) on a stream
/// and a sink, wired to each other.
fn pair() -> (synack::Net, synack::Net) {
    let (a_to_b, b_in) = unbounded::<Vec<u8>>();
    let (b_out, a_in) = unbounded::<Vec<u8>>();
    let a = device::from_async_io(
        PacketPipe {
            rx: a_in,
            tx: a_to_b,
        },
        1500,
    )
    .unwrap()
    .addr("10.0.0.2".parse().unwrap())
    .start()
    .unwrap();
    let b = device::from_stream_sink(b_in.map(Ok), b_out, 1500)
        .unwrap()
        .addr("10.0.0.1".parse().unwrap())
        .start()
        .unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_between_an_async_io_device_and_a_stream_sink_device() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, sa("10.0.0.2:7")).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.unwrap();
        }
        s.shutdown().await.unwrap();
    });
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let c = tokio::time::timeout(T, TcpStream::connect(&b, sa("10.0.0.2:7")))
        .await
        .unwrap()
        .unwrap();
    let (mut r, mut w) = tokio::io::split(c);
    let d = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&d).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut got = Vec::new();
    tokio::time::timeout(T, r.read_to_end(&mut got))
        .await
        .expect("the echo in time")
        .unwrap();
    let _w = writer.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_and_packets_are_awaited() {
    let (a, b) = pair();
    let on_a = Datagrams::new(&a);
    let on_b = Datagrams::new(&b);
    // B sends a datagram to an address behind A's "tunnel"; A gets it with
    // its original destination and answers from that address.
    let waiting = {
        let on_a = on_a.clone();
        tokio::spawn(async move { on_a.recv_datagram().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    on_b.send_datagram(sa("10.0.0.1:5353"), sa("198.51.100.1:53"), b"query")
        .unwrap();
    let q = tokio::time::timeout(T, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((q.src, q.dst), (sa("10.0.0.1:5353"), sa("198.51.100.1:53")));
    assert_eq!(q.payload, b"query");
    on_a.send_datagram(q.dst, q.src, b"answer").unwrap();
    let r = tokio::time::timeout(T, on_b.recv_datagram())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.src, r.dst), (sa("198.51.100.1:53"), sa("10.0.0.1:5353")));
    assert_eq!(r.payload, b"answer");

    // A raw packet (an echo request to an address that is not A's) is
    // delivered whole, not answered.
    let mut ping = vec![
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 198, 51, 100, 7,
    ];
    ping.extend_from_slice(&[8, 0, 0, 0, 0, 9, 0, 1]);
    let c = synack::wire::internet_checksum(0, &ping[..20]);
    ping[10..12].copy_from_slice(&c.to_be_bytes());
    let c = synack::wire::internet_checksum(0, &ping[20..]);
    ping[22..24].copy_from_slice(&c.to_be_bytes());
    on_b.send_packet(&ping).unwrap();
    let p = tokio::time::timeout(T, on_a.recv_packet())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p, ping);
    assert_eq!(a.driver_stats().echo_replies, 0);

    // A receiver is released when the driver stops.
    let waiting = {
        let on_a = on_a.clone();
        tokio::spawn(async move { on_a.recv_packet().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.shutdown();
    let e = tokio::time::timeout(T, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotConnected);
}

#[test]
fn outside_a_runtime_is_one_clear_error() {
    let (_tx, rx) = unbounded::<Vec<u8>>();
    let (tx2, _rx2) = unbounded::<Vec<u8>>();
    let e = device::from_stream_sink(rx.map(Ok), tx2, 1500).unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}
