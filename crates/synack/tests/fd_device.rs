//! An application's own TUN descriptor as the device ([`FdDevice`]), with
//! the Linux kernel as the peer, in a namespace each test makes. The test
//! opens the descriptor itself (as tun-rs or Android's `VpnService` would)
//! with the flags a tool might choose: plain, with the virtio header
//! (offloads), with the packet-info prefix. Needs root and /dev/net/tun;
//! elsewhere prints `skipped: <why>` and returns.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::{pattern, Netns};
use synack::device::FdDevice;
use synack::net::TcpListener;
use synack::Net;

const T: Duration = Duration::from_secs(20);
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Opens a TUN device as an application would, with `flags`.
fn open_tun(name: &str, flags: libc::c_short) -> OwnedFd {
    #[repr(C)]
    struct IfReq {
        name: [libc::c_char; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let path = c"/dev/net/tun";
    // SAFETY: a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    assert!(
        fd >= 0,
        "open /dev/net/tun: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags,
        _pad: [0; 22],
    };
    for (o, b) in req.name.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    // SAFETY: a live ifreq-sized struct for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    fd
}

/// A Net on the application's descriptor: the stack 10.0.0.2, the host
/// side 10.0.0.1/24, so the kernel routes all of 10.0.0.0/24 into it.
fn start(ns: &Netns, flags: libc::c_short) -> Net {
    ns.enter(|| {
        let dev = FdDevice::new(open_tun("syn0", flags)).expect("an FdDevice on the TUN fd");
        assert_eq!(dev.name(), Some("syn0"));
        assert!(!dev.packet_info(), "IFF_NO_PI is assumed");
        // The kernel cannot say this one: the application does.
        let dev = dev.with_packet_info(flags & IFF_NO_PI == 0);
        Net::builder_with_device(dev)
            .addr("10.0.0.2".parse().unwrap())
            .host("10.0.0.1/24".parse().unwrap())
            .start()
            .expect("start on the FdDevice")
    })
}

/// The kernel sends a query to 10.0.0.53:53 (no such host: the address is
/// only routed into the tunnel); the application answers it from that
/// address, as a DNS relay behind a tunnel does.
fn dns_like_exchange(ns: &Netns, net: &Net) {
    net.deliver_datagrams(true);
    let client = ns.enter(|| {
        let s = UdpSocket::bind("10.0.0.1:0").unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.send_to(b"what is example.test?", "10.0.0.53:53").unwrap();
        s
    });
    let q = net
        .recv_datagram_timeout(T)
        .expect("the query through the tunnel");
    assert_eq!(q.dst, sa("10.0.0.53:53"));
    assert_eq!(q.src, client.local_addr().unwrap());
    assert_eq!(q.payload, b"what is example.test?");
    net.send_datagram(q.dst, q.src, b"192.0.2.1").unwrap();
    let mut buf = [0u8; 100];
    let (n, from) = client
        .recv_from(&mut buf)
        .expect("the reply from the tunnel");
    assert_eq!(&buf[..n], b"192.0.2.1");
    assert_eq!(from, sa("10.0.0.53:53"));
    assert_eq!(net.driver_stats().dropped_bad_udp, 0);
}

/// The kernel connects to the stack and gets 1 MiB echoed back.
fn tcp_echo(ns: &Netns, net: &Net) {
    let l = TcpListener::bind(net, sa("10.0.0.2:7")).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => s.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    let data = pattern(1 << 20, 3);
    let got = ns.enter(|| {
        let mut c = std::net::TcpStream::connect_timeout(&sa("10.0.0.2:7"), T).unwrap();
        c.set_read_timeout(Some(T)).unwrap();
        let mut w = c.try_clone().unwrap();
        let d = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&d).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    });
    assert!(got == data, "echo differs ({} bytes back)", got.len());
    server.join().unwrap();
}

#[test]
fn fd_device_plain_tun_fd() {
    let Some(ns) = Netns::new("fd_device_plain_tun_fd") else {
        return;
    };
    let net = start(&ns, IFF_TUN | IFF_NO_PI);
    assert!(!net.offload());
    assert_eq!(net.capabilities().mtu, 1500);
    dns_like_exchange(&ns, &net);
    tcp_echo(&ns, &net);
}

#[test]
fn fd_device_with_virtio_header_offloads() {
    let Some(ns) = Netns::new("fd_device_with_virtio_header_offloads") else {
        return;
    };
    let net = start(&ns, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
    assert!(
        net.offload(),
        "IFF_VNET_HDR on the descriptor means offload"
    );
    dns_like_exchange(&ns, &net);
    tcp_echo(&ns, &net);
    let s = net.driver_stats();
    assert!(
        s.tx_super_segments > 0,
        "the kernel cut the stack's super-segments: {s:?}"
    );
}

#[test]
fn fd_device_with_packet_info_prefix() {
    let Some(ns) = Netns::new("fd_device_with_packet_info_prefix") else {
        return;
    };
    let net = start(&ns, IFF_TUN);
    dns_like_exchange(&ns, &net);
    tcp_echo(&ns, &net);
}
