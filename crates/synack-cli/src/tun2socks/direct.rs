//! Upstream sockets on the host's own network, kept out of the tunnel.
//!
//! A tun2socks tool routes the applications' traffic into its TUN device;
//! its own upstream connections must not follow the same route, or each
//! one would come back in through the device and be relayed again, for
//! ever. Every upstream socket (TCP to a destination or to the SOCKS5
//! proxy, UDP, ICMP) is therefore created through an [`Egress`], which
//! pins it before it sends anything:
//!
//! - to an interface (`SO_BINDTODEVICE`, socket(7)): the kernel then routes
//!   it only over that interface, whatever the routing table says;
//! - with a firewall mark (`SO_MARK`): `ip rule add fwmark N lookup main`
//!   (or a table of its own) lets the user route marked packets around the
//!   tunnel, as with WireGuard's `FwMark`.
//!
//! With neither flag given, the interface is the one the host would use
//! without the tunnel: the main table's default route (or the most
//! specific route to a given address) whose interface is not the TUN,
//! read from `/proc/net/route` and `/proc/net/ipv6_route`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How upstream sockets leave the host: bound to an interface, marked, or
/// both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Egress {
    /// `SO_BINDTODEVICE` to this interface.
    pub interface: Option<String>,
    /// `SO_MARK` with this mark.
    pub fwmark: Option<u32>,
}

impl Egress {
    /// A socket of `domain` and `ty` pinned as this egress says,
    /// non-blocking, close-on-exec.
    pub fn socket(&self, domain: Domain, ty: Type, proto: Option<Protocol>) -> io::Result<Socket> {
        let socket = Socket::new(domain, ty.nonblocking().cloexec(), proto)?;
        if let Some(name) = &self.interface {
            socket
                .bind_device(Some(name.as_bytes()))
                .map_err(|e| annotate(e, &format!("cannot bind a socket to {name}")))?;
        }
        if let Some(mark) = self.fwmark {
            socket
                .set_mark(mark)
                .map_err(|e| annotate(e, &format!("cannot mark a socket with {mark}")))?;
        }
        Ok(socket)
    }

    /// Opens a TCP connection to `dst`, giving up after `timeout`.
    pub async fn connect_tcp(
        &self,
        dst: SocketAddr,
        timeout: Duration,
    ) -> io::Result<tokio::net::TcpStream> {
        let socket = self.socket(Domain::for_address(dst), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_tcp_nodelay(true)?;
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        match tokio::time::timeout(timeout, socket.connect(dst)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    }

    /// An unconnected UDP socket of `dst`'s family on an ephemeral port.
    pub fn udp_socket(&self, family: IpAddr) -> io::Result<tokio::net::UdpSocket> {
        let domain = domain_of(family);
        let socket = self.socket(domain, Type::DGRAM, Some(Protocol::UDP))?;
        socket.bind(&SockAddr::from(SocketAddr::new(unspecified(family), 0)))?;
        tokio::net::UdpSocket::from_std(socket.into())
    }
}

/// The IP family's socket domain.
fn domain_of(addr: IpAddr) -> Domain {
    match addr {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    }
}

/// The unspecified address of `addr`'s family.
pub fn unspecified(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// `e` with `what` in front of its message, same kind.
fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// One route of the main table, as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub dst: IpAddr,
    /// Prefix length of the destination.
    pub prefix: u8,
    /// The interface it goes out of.
    pub iface: String,
    /// Its metric (lower wins among equal prefixes).
    pub metric: u32,
}

impl Route {
    /// True when `addr` is inside this route's destination.
    fn covers(&self, addr: IpAddr) -> bool {
        match (self.dst, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Route flags of `/proc/net/route` and `/proc/net/ipv6_route`
/// (linux/route.h, linux/ipv6_route.h).
const RTF_UP: u32 = 0x0001;
/// An unreachable route (`ip route add unreachable ...`, and IPv6's
/// placeholder default on `lo`).
const RTF_REJECT: u32 = 0x0200;

/// Parses `/proc/net/route` (IPv4, main table): a header line, then
/// `Iface Destination Gateway Flags RefCnt Use Metric Mask ...`, the
/// addresses as the hex of their in-memory (network order) 32-bit words.
pub fn parse_route_v4(text: &str) -> Vec<Route> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dst, flags, metric, mask) =
                (f.first()?, f.get(1)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let flags = hex(flags)?;
            if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 {
                return None;
            }
            let mask = u32::from_be_bytes(hex(mask)?.to_ne_bytes());
            Some(Route {
                dst: IpAddr::V4(Ipv4Addr::from(hex(dst)?.to_ne_bytes())),
                prefix: mask.count_ones() as u8,
                iface: (*iface).to_string(),
                metric: metric.parse().ok()?,
            })
        })
        .collect()
}

/// Parses `/proc/net/ipv6_route`: `dst plen src splen gateway metric
/// refcnt use flags iface`, all hex but the name.
pub fn parse_route_v6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 || f[9] == "lo" {
                return None;
            }
            Some(Route {
                dst: IpAddr::V6(Ipv6Addr::from(u128::from_str_radix(f[0], 16).ok()?)),
                prefix: u8::from_str_radix(f[1], 16).ok()?,
                iface: f[9].to_string(),
                metric: u32::from_str_radix(f[5], 16).ok()?,
            })
        })
        .collect()
}

/// The interface of the most specific route to `towards` that does not go
/// into `tun` (lowest metric among equals), or `None`.
pub fn route_outside(routes: &[Route], tun: &str, towards: IpAddr) -> Option<String> {
    routes
        .iter()
        .filter(|r| r.iface != tun && r.covers(towards))
        .max_by(|a, b| a.prefix.cmp(&b.prefix).then(b.metric.cmp(&a.metric)))
        .map(|r| r.iface.clone())
}

/// The host's routes of `towards`'s family (empty when the table cannot
/// be read).
pub fn host_routes(towards: IpAddr) -> Vec<Route> {
    let (path, parse): (&str, fn(&str) -> Vec<Route>) = match towards {
        IpAddr::V4(_) => ("/proc/net/route", parse_route_v4),
        IpAddr::V6(_) => ("/proc/net/ipv6_route", parse_route_v6),
    };
    std::fs::read_to_string(path)
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// The interface the host would send to `towards` over if the tunnel were
/// not there (for the default route, pass an unspecified address).
pub fn interface_outside(tun: &str, towards: IpAddr) -> Option<String> {
    route_outside(&host_routes(towards), tun, towards)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE_V4: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
tun0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
veth1\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
bad\t0003A8C0\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    const ROUTE_V6: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 veth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001 tun0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo
";

    #[test]
    fn parses_ipv4_routes_in_network_order() {
        let routes = parse_route_v4(ROUTE_V4);
        assert_eq!(routes.len(), 4, "the reject route is left out");
        assert_eq!(routes[2].dst, "10.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(routes[2].prefix, 24);
        assert_eq!(routes[3].dst, "192.168.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(routes[1].metric, 100);
    }

    #[test]
    fn default_interface_skips_the_tun() {
        let routes = parse_route_v4(ROUTE_V4);
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert_eq!(route_outside(&routes, "tun0", any).as_deref(), Some("eth0"));
        let proxy: IpAddr = "192.168.2.7".parse().unwrap();
        assert_eq!(
            route_outside(&routes, "tun0", proxy).as_deref(),
            Some("veth1")
        );
        let only_tun = parse_route_v4(&ROUTE_V4.lines().take(2).collect::<Vec<_>>().join("\n"));
        assert_eq!(route_outside(&only_tun, "tun0", any), None);
    }

    #[test]
    fn parses_ipv6_routes() {
        let routes = parse_route_v6(ROUTE_V6);
        assert_eq!(routes.len(), 3, "the reject default on lo is left out");
        assert_eq!(routes[0].prefix, 64);
        assert_eq!(routes[0].metric, 0x100);
        let any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert_eq!(route_outside(&routes, "tun0", any).as_deref(), Some("eth0"));
        let near: IpAddr = "fd00::5".parse().unwrap();
        assert_eq!(
            route_outside(&routes, "tun0", near).as_deref(),
            Some("veth1")
        );
    }

    #[test]
    fn the_host_table_parses() {
        // Whatever this machine's routes are, reading them does not fail
        // and every one names an interface.
        for r in host_routes(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) {
            assert!(!r.iface.is_empty());
        }
    }

    #[tokio::test]
    async fn pinned_sockets_connect_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dst = listener.local_addr().unwrap();
        let egress = Egress {
            interface: Some("lo".into()),
            fwmark: Some(7),
        };
        let stream = egress
            .connect_tcp(dst, Duration::from_secs(5))
            .await
            .unwrap();
        let (_accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(stream.local_addr().unwrap(), peer);
        let mark = socket2::SockRef::from(&stream).mark().unwrap();
        assert_eq!(mark, 7);
        let device = socket2::SockRef::from(&stream).device().unwrap();
        assert_eq!(device.as_deref(), Some(&b"lo"[..]));
    }

    #[tokio::test]
    async fn a_socket_bound_elsewhere_does_not_reach_loopback() {
        // Bound to an interface that has no route to 127.0.0.1 (none does
        // but lo), the connection fails instead of taking another route.
        let Some(other) = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n != "lo")
        else {
            eprintln!("skipped: no interface but lo");
            return;
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dst = listener.local_addr().unwrap();
        let egress = Egress {
            interface: Some(other),
            fwmark: None,
        };
        let r = egress.connect_tcp(dst, Duration::from_secs(2)).await;
        assert!(r.is_err(), "{r:?}");
    }
}
