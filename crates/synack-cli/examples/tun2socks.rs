//! A tun2socks in one screen: every TCP connection and UDP datagram routed
//! into the TUN device goes out through the host's own sockets, bound to
//! an interface so it cannot loop back into the device.
//!
//! `cargo run -p synack-cli --example tun2socks -- tun0 eth0`, then route
//! into the device: `ip route add 192.0.2.0/24 dev tun0`. (`synack
//! tun2socks` is the full tool: SOCKS5, limits, idle timeouts, ping.)

use std::collections::{hash_map::Entry, HashMap};
use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use synack::tokio::{ConnectionRequest, TcpListener};
use synack::{Handshake, Net, Refusal, Unreachable};
use tokio::net::{TcpSocket, UdpSocket};

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let Ok([_, tun, out]) = <[String; 3]>::try_from(std::env::args().collect::<Vec<_>>()) else {
        eprintln!("usage: tun2socks TUN OUT_IFACE");
        std::process::exit(2);
    };
    let out = Arc::new(out);
    let host = "198.18.0.2/15".parse().map_err(io::Error::other)?;
    let net = Net::builder(&tun)
        .addr([198, 18, 0, 1].into())
        .host(host)
        .start()?;
    net.deliver_datagrams(true); // UDP comes to us instead of being dropped
    tokio::spawn(udp(net.clone(), Arc::clone(&out)));
    // Defer: nothing is answered until we know what the real destination says.
    let listener = TcpListener::bind_transparent(&net, Handshake::Defer)?;
    loop {
        let request = listener.request().await?;
        tokio::spawn(tcp(request, Arc::clone(&out)));
    }
}

async fn tcp(request: ConnectionRequest, out: Arc<String>) -> io::Result<()> {
    let dst = request.local_addr(); // the original destination
    let socket = if dst.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind_device(Some(out.as_bytes()))?;
    let connect = tokio::time::timeout(Duration::from_secs(20), socket.connect(dst));
    let mut upstream = match connect.await.unwrap_or(Err(io::ErrorKind::TimedOut.into())) {
        Ok(s) => s,
        Err(e) => {
            let how = match e.kind() {
                io::ErrorKind::ConnectionRefused => Refusal::Reset,
                io::ErrorKind::TimedOut => Refusal::Silent,
                _ => Refusal::Unreachable(Unreachable::Host),
            };
            return request.refuse(how); // the client sees what it would have seen
        }
    };
    let mut client = request.accept().await?; // SYN-ACK only now
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// One host socket per client endpoint (endpoint-independent mapping).
async fn udp(net: Net, out: Arc<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let n = net.clone();
    std::thread::spawn(move || {
        while let Ok(d) = n.recv_datagram() {
            let _ = tx.blocking_send(d);
        }
    });
    let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    while let Some(d) = rx.recv().await {
        if let Entry::Vacant(slot) = flows.entry(d.src) {
            let Ok(s) = udp_socket(d.src, &out).await else {
                continue;
            };
            let (s2, net, client) = (Arc::clone(&s), net.clone(), d.src);
            tokio::spawn(async move {
                let mut buf = vec![0; 65536];
                while let Ok((len, from)) = s2.recv_from(&mut buf).await {
                    let _ = net.send_datagram(from, client, &buf[..len]); // from the remote
                }
            });
            slot.insert(s);
        }
        let _ = flows[&d.src].send_to(&d.payload, d.dst).await;
    }
}

async fn udp_socket(client: SocketAddr, out: &str) -> io::Result<Arc<UdpSocket>> {
    let s = UdpSocket::bind(if client.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .await?;
    s.bind_device(Some(out.as_bytes()))?;
    Ok(Arc::new(s))
}
