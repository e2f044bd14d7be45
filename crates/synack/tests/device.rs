//! Bring your own device: a [`Net`] over in-memory queues
//! (`synack::device::channel`), no root and no TUN device needed. The peer
//! is a second synack `Stack` in this process, driven by the test through
//! the channel's `PacketPort`; datagrams and other packets are built and
//! parsed with `synack::wire`.
#![cfg(target_os = "linux")]

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant as StdInstant};

use proptest::prelude::*;
use synack::core::{Config, ConnId, Error, Instant, Stack};
use synack::device::{channel, PacketPort};
use synack::net::TcpListener;
use synack::wire::{emit_udp_packet, parse_udp_packet, udp_packet_len};
use synack::Net;

const T: Duration = Duration::from_secs(20);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn start(mtu: usize, addrs: &[&str]) -> (Net, PacketPort) {
    let (dev, port) = channel(mtu);
    let mut b = Net::builder_with_device(dev);
    for a in addrs {
        b = b.addr(ip(a));
    }
    (b.start().expect("start a Net on a channel"), port)
}

/// A second stack on the far side of the channel, driven by hand.
struct Peer {
    stack: Stack,
    port: PacketPort,
    epoch: StdInstant,
}

impl Peer {
    fn new(port: PacketPort, addr: &str) -> Peer {
        let mut stack = Stack::new(Config::default(), [7; 16]);
        stack.add_address(ip(addr));
        Peer {
            stack,
            port,
            epoch: StdInstant::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Moves packets both ways and runs the peer's timers once, waiting a
    /// little for the far side when nothing moved.
    fn turn(&mut self) {
        let mut moved = false;
        while let Ok(p) = self.port.try_recv() {
            let now = self.now();
            self.stack.handle_packet(now, &p);
            moved = true;
        }
        let now = self.now();
        if self.stack.poll_timeout().is_some_and(|d| d <= now) {
            self.stack.handle_timeout(now);
        }
        while let Some(p) = self.stack.poll_transmit() {
            // A full queue is a loss on the wire: TCP repairs it.
            let _ = self.port.send(&p);
            moved = true;
        }
        while self.stack.poll_event().is_some() {}
        if !moved {
            if let Ok(p) = self.port.recv_timeout(Duration::from_millis(2)) {
                let now = self.now();
                self.stack.handle_packet(now, &p);
            }
        }
    }
}

/// An echo server on `addr` of `net`, one connection.
fn echo_once(net: &Net, addr: SocketAddr) -> std::thread::JoinHandle<u64> {
    let l = TcpListener::bind(net, addr).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    s.write_all(&buf[..n]).unwrap();
                    total += n as u64;
                }
                Err(e) => panic!("echo read: {e}"),
            }
        }
        total
    })
}

fn tcp_through_a_channel(stack_addr: &str, peer_addr: &str, port_no: u16) {
    let (net, port) = start(1500, &[stack_addr]);
    let server = SocketAddr::new(ip(stack_addr), port_no);
    let echo = echo_once(&net, server);
    let mut peer = Peer::new(port, peer_addr);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let now = peer.now();
    let id: ConnId = peer.stack.connect(now, None, server).unwrap();
    let (mut sent, mut got, mut shut) = (0, Vec::new(), false);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = StdInstant::now() + T;
    loop {
        assert!(
            StdInstant::now() < deadline,
            "echo over the channel stalled: sent {sent}, got {}",
            got.len()
        );
        peer.turn();
        let now = peer.now();
        if sent < data.len() {
            match peer.stack.send(now, id, &data[sent..]) {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) | Err(Error::InvalidState) => {}
                Err(e) => panic!("send: {e:?}"),
            }
        } else if !shut {
            peer.stack.shutdown_write(now, id).unwrap();
            shut = true;
        }
        match peer.stack.recv(now, id, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Error::WouldBlock) | Err(Error::InvalidState) => {}
            Err(e) => panic!("recv: {e:?}"),
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
    assert_eq!(echo.join().unwrap(), data.len() as u64);
    let stats = net.driver_stats();
    assert!(stats.rx_packets > 0 && stats.tx_packets > 0, "{stats:?}");
    assert!(!net.offload());
    assert_eq!(net.tun_name(), "");
}

#[test]
fn tcp_over_a_channel_device_ipv4() {
    tcp_through_a_channel("10.0.0.2", "10.0.0.1", 7);
}

#[test]
fn tcp_over_a_channel_device_ipv6() {
    tcp_through_a_channel("fd00::2", "fd00::1", 7);
}

#[test]
fn the_device_mtu_sets_the_mss() {
    // A SYN from the stack on a channel of MTU 1280 offers MSS 1240.
    let (net, port) = start(1280, &["10.0.0.2"]);
    assert_eq!(net.capabilities().mtu, 1280);
    let _pending = std::thread::spawn({
        let net = net.clone();
        move || {
            synack::net::TcpStream::connect_timeout(&net, sa("10.0.0.1:80"), Duration::from_secs(2))
        }
    });
    let syn = port.recv_timeout(T).unwrap();
    let seg = synack::wire::parse_packet(&syn).unwrap();
    assert!(seg.tcp.flags.contains(synack::wire::TcpFlags::SYN));
    assert_eq!(seg.tcp.options.mss, Some(1240));
}

fn udp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (sa(src), sa(dst));
    let mut p = vec![0u8; udp_packet_len(src.ip(), payload.len())];
    emit_udp_packet(&mut p, src, dst, 64, payload).unwrap();
    p
}

/// An ICMP echo request from `src` to `dst` (IPv4).
fn ping(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 32, 0, 1, 0, 0, 64, 1, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g']);
    let c = synack::wire::internet_checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let c = synack::wire::internet_checksum(0, &p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

/// Waits until the driver has read `n` packets in all.
fn wait_rx(net: &Net, n: u64) {
    let deadline = StdInstant::now() + T;
    while net.driver_stats().rx_packets < n {
        assert!(
            StdInstant::now() < deadline,
            "the driver read {:?}",
            net.driver_stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn datagrams_and_packets_reach_the_application_and_go_back() {
    let (net, port) = start(1500, &["10.0.0.2", "fd00::2"]);
    // Off by default: dropped and counted, as before.
    port.send(&udp("10.0.0.1:5000", "192.0.2.53:53", b"q"))
        .unwrap();
    wait_rx(&net, 1);
    assert_eq!(net.driver_stats().dropped_protocol, 1);
    assert_eq!(
        net.try_recv_datagram().unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );

    net.deliver_datagrams(true);
    port.send(&udp("10.0.0.1:5000", "192.0.2.53:53", b"query v4"))
        .unwrap();
    port.send(&udp("[fd00::1]:5001", "[2001:db8::53]:53", b"query v6"))
        .unwrap();
    let d = net.recv_datagram_timeout(T).unwrap();
    assert_eq!((d.src, d.dst), (sa("10.0.0.1:5000"), sa("192.0.2.53:53")));
    assert_eq!(d.payload, b"query v4");
    let d = net.recv_datagram_timeout(T).unwrap();
    assert_eq!(
        (d.src, d.dst),
        (sa("[fd00::1]:5001"), sa("[2001:db8::53]:53"))
    );
    assert_eq!(d.payload, b"query v6");

    // The reply from the original destination's address.
    net.send_datagram(sa("192.0.2.53:53"), sa("10.0.0.1:5000"), b"answer")
        .unwrap();
    let out = port.recv_timeout(T).unwrap();
    let back = parse_udp_packet(&out).unwrap();
    assert_eq!(
        (back.src, back.dst),
        (sa("192.0.2.53:53"), sa("10.0.0.1:5000"))
    );
    assert_eq!(back.payload, b"answer");
    net.send_datagram(sa("[2001:db8::53]:53"), sa("[fd00::1]:5001"), b"v6 answer")
        .unwrap();
    let back = port.recv_timeout(T).unwrap();
    assert_eq!(parse_udp_packet(&back).unwrap().payload, b"v6 answer");
    // Too large for the MTU: EMSGSIZE, nothing written.
    let e = net
        .send_datagram(sa("192.0.2.53:53"), sa("10.0.0.1:5000"), &[0; 1473])
        .unwrap_err();
    assert_eq!(
        e.kind(),
        io::Error::from_raw_os_error(libc::EMSGSIZE).kind()
    );
    let e = net
        .send_datagram(sa("192.0.2.53:53"), sa("[fd00::1]:1"), b"x")
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(net.driver_stats().datagrams_sent, 2);

    // A broken checksum: dropped and counted, not delivered.
    let mut bad = udp("10.0.0.1:5000", "192.0.2.53:53", b"corrupt");
    *bad.last_mut().unwrap() ^= 0x55;
    port.send(&bad).unwrap();
    let mut short = udp("10.0.0.1:5000", "192.0.2.53:53", b"short");
    short[25] = 200; // UDP length past the packet
    let c = 0u16; // leave the checksum: the length is checked first
    short[26..28].copy_from_slice(&c.to_be_bytes());
    port.send(&short).unwrap();

    // Echo requests: to the stack's address answered by the driver, to
    // any other address delivered whole (not faked).
    port.send(&ping([10, 0, 0, 1], [10, 0, 0, 2])).unwrap();
    let reply = port.recv_timeout(T).unwrap();
    assert_eq!(reply[20], 0, "an echo reply");
    assert_eq!(&reply[16..20], &[10, 0, 0, 1]);
    let other = ping([10, 0, 0, 1], [192, 0, 2, 1]);
    port.send(&other).unwrap();
    assert_eq!(net.recv_packet_timeout(T).unwrap(), other);

    // Another protocol (GRE) is delivered whole; a broken IP header is not.
    let mut gre = udp("10.0.0.1:1", "192.0.2.9:2", b"gre?");
    gre[9] = 47;
    gre[10..12].copy_from_slice(&[0, 0]);
    let c = synack::wire::internet_checksum(0, &gre[..20]);
    gre[10..12].copy_from_slice(&c.to_be_bytes());
    port.send(&gre).unwrap();
    assert_eq!(net.recv_packet_timeout(T).unwrap(), gre);
    let mut broken = gre.clone();
    broken[10] ^= 1;
    port.send(&broken).unwrap();

    // TCP to an address the stack does not take stays dropped.
    let mut syn = vec![0u8; 40];
    let repr = synack::wire::TcpRepr {
        src_port: 40000,
        dst_port: 80,
        flags: synack::wire::TcpFlags::SYN,
        ..Default::default()
    };
    let n = synack::wire::emit_packet(
        &mut syn,
        ip("10.0.0.1"),
        ip("192.0.2.80"),
        64,
        0,
        &repr,
        &[],
    )
    .unwrap();
    port.send(&syn[..n]).unwrap();

    // The application sends a raw packet as it is.
    let raw = ping([192, 0, 2, 1], [10, 0, 0, 1]);
    net.send_packet(&raw).unwrap();
    assert_eq!(port.recv_timeout(T).unwrap(), raw);
    assert_eq!(
        net.send_packet(&[0x45, 0, 0]).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );

    wait_rx(&net, 10);
    let s = net.driver_stats();
    assert_eq!(s.datagrams_delivered, 2, "{s:?}");
    assert_eq!(s.dropped_bad_udp, 2, "{s:?}");
    assert_eq!(s.packets_delivered, 2, "{s:?}");
    assert_eq!(s.dropped_malformed, 1, "{s:?}");
    assert_eq!(s.dropped_not_ours, 1, "{s:?}");
    assert_eq!(s.echo_replies, 1, "{s:?}");
    assert_eq!(s.packets_sent, 1, "{s:?}");
    assert_eq!(
        net.try_recv_datagram().unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(
        net.try_recv_packet().unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );

    // Off again: dropped and counted.
    net.deliver_datagrams(false);
    port.send(&udp("10.0.0.1:5000", "192.0.2.53:53", b"q"))
        .unwrap();
    wait_rx(&net, 11);
    assert_eq!(net.driver_stats().dropped_protocol, 2);
}

#[test]
fn a_full_datagram_queue_drops_and_counts() {
    let (net, port) = start(1500, &["10.0.0.2"]);
    net.deliver_datagrams(true);
    let total = synack::datagram::QUEUE_PACKETS + 50;
    let p = udp("10.0.0.1:5000", "192.0.2.53:53", b"x");
    for _ in 0..total {
        while let Err(e) = port.send(&p) {
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    wait_rx(&net, total as u64);
    let s = net.driver_stats();
    assert_eq!(
        s.datagrams_delivered,
        synack::datagram::QUEUE_PACKETS as u64
    );
    assert_eq!(s.dropped_queue_full, 50);
    for _ in 0..synack::datagram::QUEUE_PACKETS {
        net.try_recv_datagram().unwrap();
    }
    assert!(net.try_recv_datagram().is_err());
}

#[test]
fn a_blocked_receiver_is_woken_and_released_at_shutdown() {
    let (net, port) = start(1500, &["10.0.0.2"]);
    net.deliver_datagrams(true);
    let waiter = std::thread::spawn({
        let net = net.clone();
        move || net.recv_datagram()
    });
    std::thread::sleep(Duration::from_millis(20));
    port.send(&udp("10.0.0.1:1", "10.0.0.2:2", b"wake"))
        .unwrap();
    assert_eq!(waiter.join().unwrap().unwrap().payload, b"wake");
    let waiter = std::thread::spawn({
        let net = net.clone();
        move || net.recv_packet()
    });
    std::thread::sleep(Duration::from_millis(20));
    net.shutdown();
    assert_eq!(
        waiter.join().unwrap().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
}

/// Two blocking acceptors with no deadline: one leads the device (it polls
/// it itself), the other sleeps on its listener's condition variable. A
/// shutdown must release both: the leader through its own wake-up, which a
/// condition variable's signal would not reach.
#[test]
fn a_leading_acceptor_and_a_sleeping_one_are_released_at_shutdown() {
    let (net, _port) = start(1500, &["10.0.0.2"]);
    let (tx, rx) = std::sync::mpsc::channel();
    for port_no in [80, 81] {
        let l = TcpListener::bind(&net, sa(&format!("10.0.0.2:{port_no}"))).unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(l.accept().map(|_| ()).map_err(|e| e.kind()));
        });
    }
    std::thread::sleep(Duration::from_millis(50));
    net.shutdown();
    for _ in 0..2 {
        let got = rx.recv_timeout(T).expect("an acceptor was not released");
        assert_eq!(got, Err(io::ErrorKind::NotConnected));
    }
}

/// A few well-formed packets to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let repr = synack::wire::TcpRepr {
        src_port: 40000,
        dst_port: 7,
        flags: synack::wire::TcpFlags::SYN,
        ..Default::default()
    };
    let mut syn = vec![0u8; 60];
    let n = synack::wire::emit_packet(&mut syn, ip("10.0.0.1"), ip("10.0.0.2"), 64, 0, &repr, &[])
        .unwrap();
    syn.truncate(n);
    vec![
        udp("10.0.0.1:5000", "192.0.2.53:53", b"a query"),
        udp("[fd00::1]:5000", "[fd00::2]:53", b"a query"),
        ping([10, 0, 0, 1], [10, 0, 0, 2]),
        ping([10, 0, 0, 1], [192, 0, 2, 1]),
        syn,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random bytes and mutated packets through the device: dropped,
    /// counted or delivered, and the driver still answers afterwards.
    #[test]
    fn malformed_packets_never_stop_the_driver(
        random in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..120), 0..16),
        mutations in proptest::collection::vec((0usize..5, any::<prop::sample::Index>(), any::<u8>(), any::<prop::sample::Index>()), 0..24),
        deliver in any::<bool>(),
    ) {
        let (net, port) = start(1500, &["10.0.0.2", "fd00::2"]);
        let _l = TcpListener::bind(&net, sa("10.0.0.2:7")).unwrap();
        net.deliver_datagrams(deliver);
        let seeds = seeds();
        let mut sent = 0u64;
        for p in &random {
            port.send(p).unwrap();
            sent += 1;
        }
        for (which, at, value, cut) in &mutations {
            let mut p = seeds[*which].clone();
            let i = at.index(p.len());
            p[i] = *value;
            let n = cut.index(p.len()).max(1);
            port.send(&p[..n]).unwrap();
            sent += 1;
        }
        wait_rx(&net, sent);
        // Still alive: an echo request is answered.
        port.send(&ping([10, 0, 0, 1], [10, 0, 0, 2])).unwrap();
        let deadline = StdInstant::now() + T;
        let mut answered = false;
        while !answered && StdInstant::now() < deadline {
            if let Ok(p) = port.recv_timeout(Duration::from_millis(100)) {
                answered = p.len() == 32 && p[9] == 1 && p[20] == 0 && p[16..20] == [10, 0, 0, 1];
            }
        }
        prop_assert!(answered);
        prop_assert_eq!(net.driver_stats().rx_packets, sent + 1);
    }
}

/// A device the application brings has its own MTU: asking the builder
/// for another is refused with a clear error, not silently ignored.
#[test]
fn a_brought_device_keeps_its_own_mtu() {
    let (device, _port) = channel(1500);
    let err = Net::builder_with_device(device)
        .addr(ip("10.0.0.2"))
        .mtu(9000)
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("the device's"), "{err}");
}
