//! Echo requests that arrive through the tunnel: relayed, or answered
//! unreachable, never faked (a ping to an address that does not exist must
//! not "succeed").
//!
//! With `--direct` an echo request to a remote goes out through the
//! host's ICMP socket (an unprivileged "ping" socket, `SOCK_DGRAM` with
//! `IPPROTO_ICMP`/`IPPROTO_ICMPV6`, when `net.ipv4.ping_group_range`
//! allows; a raw socket otherwise, which needs CAP_NET_RAW), pinned to the
//! egress like every upstream socket; when the remote's echo reply comes
//! back, the reply is written into the tunnel from the remote's address.
//! No reply, no answer: the client times out as it would.
//!
//! Through a SOCKS5 proxy ICMP cannot go anywhere, so the client is told
//! so: Destination Unreachable, "communication administratively
//! prohibited" (RFC 1812 §5.2.7.1, ICMPv4 code 13; RFC 4443 §3.1, ICMPv6
//! code 1).

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use synack_wire::{
    emit_icmp_error, icmp_error_len, ipv6_upper_layer, IcmpKind, Ipv4Header, Ipv6Header,
    IPPROTO_ICMP, IPPROTO_ICMPV6,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Semaphore;

use super::direct::Egress;

/// ICMPv4 echo request and reply types (RFC 792).
const ECHO_REQUEST_V4: u8 = 8;
/// ICMPv4 echo reply.
const ECHO_REPLY_V4: u8 = 0;
/// ICMPv6 echo request and reply types (RFC 4443 §4).
const ECHO_REQUEST_V6: u8 = 128;
/// ICMPv6 echo reply.
const ECHO_REPLY_V6: u8 = 129;

/// ICMPv4 Destination Unreachable code 13: administratively prohibited.
const PROHIBITED_V4: u8 = 13;
/// ICMPv6 Destination Unreachable code 1: administratively prohibited.
const PROHIBITED_V6: u8 = 1;

/// How long a relayed echo request waits for its reply.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// Most echo requests relayed at once; more are dropped (and counted).
const IN_FLIGHT: usize = 256;

/// TTL (hop limit) of the packets written into the tunnel.
const TTL: u8 = 64;

/// An echo request read from the tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoRequest {
    /// The client that pings.
    pub src: IpAddr,
    /// The address it pings.
    pub dst: IpAddr,
    /// Identifier field.
    pub ident: u16,
    /// Sequence number field.
    pub seq: u16,
    /// The ICMP message (header and data), as it came.
    pub message: Vec<u8>,
}

/// Parses an IPv4 or IPv6 packet holding an ICMP echo request; `None` for
/// anything else (other ICMP, other protocols, fragments, bad headers).
pub fn parse_echo_request(packet: &[u8]) -> Option<EchoRequest> {
    let (src, dst, message, want) = match packet.first()? >> 4 {
        4 => {
            let (h, payload) = Ipv4Header::parse(packet).ok()?;
            if h.protocol != IPPROTO_ICMP || h.is_fragment() {
                return None;
            }
            (
                IpAddr::V4(h.src),
                IpAddr::V4(h.dst),
                payload,
                ECHO_REQUEST_V4,
            )
        }
        6 => {
            let (h, rest) = Ipv6Header::parse(packet).ok()?;
            let (next, payload) = ipv6_upper_layer(h.next_header, rest).ok()?;
            if next != IPPROTO_ICMPV6 {
                return None;
            }
            (
                IpAddr::V6(h.src),
                IpAddr::V6(h.dst),
                payload,
                ECHO_REQUEST_V6,
            )
        }
        _ => return None,
    };
    if message.len() < 8 || message[0] != want || message[1] != 0 {
        return None;
    }
    Some(EchoRequest {
        src,
        dst,
        ident: u16::from_be_bytes([message[4], message[5]]),
        seq: u16::from_be_bytes([message[6], message[7]]),
        message: message.to_vec(),
    })
}

/// The Destination Unreachable (administratively prohibited) answer to
/// `packet` from `from` (RFC 792: the IP header and 8 bytes quoted;
/// RFC 4443 §2.4 (c): as much as fits in 1280 bytes).
pub fn prohibited(packet: &[u8], from: IpAddr, to: IpAddr) -> Option<Vec<u8>> {
    let (code, quote) = match from {
        IpAddr::V4(_) => {
            let ihl = usize::from(packet.first()? & 0x0f) * 4;
            (PROHIBITED_V4, packet.get(..ihl + 8).unwrap_or(packet))
        }
        IpAddr::V6(_) => {
            let room = 1280 - icmp_error_len(from, 0);
            (PROHIBITED_V6, &packet[..packet.len().min(room)])
        }
    };
    let mut out = vec![0u8; icmp_error_len(from, quote.len())];
    let n = emit_icmp_error(
        &mut out,
        from,
        to,
        TTL,
        IcmpKind::DestinationUnreachable(code),
        quote,
    )
    .ok()?;
    out.truncate(n);
    Some(out)
}

/// The echo reply to `req` from its destination, carrying `data` (the
/// reply's data, which echoes the request's).
pub fn echo_reply(req: &EchoRequest, data: &[u8]) -> Option<Vec<u8>> {
    let mut message = Vec::with_capacity(8 + data.len());
    let reply_type = if req.dst.is_ipv4() {
        ECHO_REPLY_V4
    } else {
        ECHO_REPLY_V6
    };
    message.extend_from_slice(&[reply_type, 0, 0, 0]);
    message.extend_from_slice(&req.ident.to_be_bytes());
    message.extend_from_slice(&req.seq.to_be_bytes());
    message.extend_from_slice(data);
    ip_packet(req.dst, req.src, &mut message)
}

/// Wraps an ICMP message in an IP header from `src` to `dst`, filling in
/// the message's checksum (with the pseudo-header for ICMPv6, RFC 4443 §2.3).
fn ip_packet(src: IpAddr, dst: IpAddr, message: &mut [u8]) -> Option<Vec<u8>> {
    message[2..4].copy_from_slice(&[0, 0]);
    let (header_len, initial) = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (synack_wire::IPV4_HEADER_LEN, 0),
        (IpAddr::V6(_), IpAddr::V6(_)) => (
            synack_wire::IPV6_HEADER_LEN,
            v6_pseudo_sum(src, dst, message.len()),
        ),
        _ => return None,
    };
    let sum = synack_wire::internet_checksum(initial, message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut out = vec![0u8; header_len + message.len()];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ipv4Header::unfragmented(s, d, 0, TTL, IPPROTO_ICMP)
            .emit(&mut out, message.len())
            .ok()?,
        (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Header {
            src: s,
            dst: d,
            traffic_class: 0,
            flow_label: 0,
            next_header: IPPROTO_ICMPV6,
            hop_limit: TTL,
        }
        .emit(&mut out, message.len())
        .ok()?,
        _ => return None,
    }
    out[header_len..].copy_from_slice(message);
    Some(out)
}

/// The ICMPv6 pseudo-header sum (RFC 8200 §8.1), unfolded into 32 bits.
fn v6_pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    // The TCP pseudo-header differs from ICMPv6's only in the next-header
    // byte: 6 there, 58 here.
    // One's-complement sums add up in any order: swapping the 6 for 58 is
    // adding 52.
    let mut sum = u64::from(synack_wire::pseudo_header_sum(src, dst, len))
        + u64::from(IPPROTO_ICMPV6 - synack_wire::IPPROTO_TCP);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u32
}

/// Writes a packet into the tunnel.
pub type PacketSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Counters of the ICMP relay.
#[derive(Debug, Default)]
pub struct IcmpStats {
    /// Echo requests relayed upstream.
    pub relayed: AtomicU64,
    /// Echo replies written back into the tunnel.
    pub replies: AtomicU64,
    /// Unreachable answers written into the tunnel.
    pub unreachable: AtomicU64,
    /// Packets dropped: not an echo request, too many in flight, no socket.
    pub dropped: AtomicU64,
}

/// What is done with echo requests.
pub enum IcmpPolicy {
    /// Relayed through the host's ICMP sockets.
    Relay(Egress),
    /// Answered administratively prohibited, from the given address of
    /// each family (or from the pinged address when there is none).
    Prohibit(Vec<IpAddr>),
}

/// Handles the packets of the tunnel that are neither TCP nor UDP.
pub struct IcmpHandler {
    policy: IcmpPolicy,
    out: PacketSink,
    in_flight: Arc<Semaphore>,
    /// The handler's counters.
    pub stats: Arc<IcmpStats>,
}

impl IcmpHandler {
    /// A handler writing its answers with `out`.
    pub fn new(policy: IcmpPolicy, out: PacketSink) -> Self {
        IcmpHandler {
            policy,
            out,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            stats: Arc::default(),
        }
    }

    /// Handles one packet from the tunnel (needs a tokio runtime).
    pub fn handle(&self, packet: &[u8]) {
        let Some(req) = parse_echo_request(packet) else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match &self.policy {
            IcmpPolicy::Prohibit(own) => {
                let from = own
                    .iter()
                    .copied()
                    .find(|a| a.is_ipv4() == req.dst.is_ipv4())
                    .unwrap_or(req.dst);
                if let Some(answer) = prohibited(packet, from, req.src) {
                    (self.out)(&answer);
                    self.stats.unreachable.fetch_add(1, Ordering::Relaxed);
                }
            }
            IcmpPolicy::Relay(egress) => {
                let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let (egress, out, stats) = (
                    egress.clone(),
                    Arc::clone(&self.out),
                    Arc::clone(&self.stats),
                );
                tokio::spawn(async move {
                    let _permit = permit;
                    match ping(&egress, &req).await {
                        Ok(Some(data)) => {
                            if let Some(reply) = echo_reply(&req, &data) {
                                out(&reply);
                                stats.replies.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(None) => {}
                        Err(_) => {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                self.stats.relayed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Sends `req` to its destination from the host and waits for the echo
/// reply: its data, or `None` when none came in time.
pub async fn ping(egress: &Egress, req: &EchoRequest) -> io::Result<Option<Vec<u8>>> {
    let (socket, raw) = icmp_socket(egress, req.dst)?;
    // Connected, the socket hears only from the destination (raw and
    // ping sockets both filter on the connected address).
    socket.connect(&SockAddr::from(SocketAddr::new(req.dst, 0)))?;
    // SAFETY: the `Socket` moves into the `AsyncFd`, which owns it from
    // now on: its descriptor stays open and the same until the `AsyncFd`
    // is dropped (socket2's `as_raw_fd` always returns it).
    let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    let mut message = req.message.clone();
    let ident = if raw {
        fresh_ident(&mut message, req.dst)
    } else {
        req.ident
    };
    socket.get_ref().send(&message)?;
    let wait = async {
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut ready = socket.readable().await?;
            let n = match ready.try_io(|s| (&mut s.get_ref()).read(&mut buf)) {
                Ok(r) => r?,
                Err(_would_block) => continue,
            };
            if let Some(data) = match_reply(&buf[..n], req, raw.then_some(ident)) {
                return Ok::<_, io::Error>(data.to_vec());
            }
        }
    };
    match tokio::time::timeout(REPLY_WAIT, wait).await {
        Ok(r) => r.map(Some),
        Err(_) => Ok(None),
    }
}

/// Gives an echo request sent on a raw socket an identifier of its own
/// (and the ICMPv4 checksum that goes with it; the kernel computes
/// ICMPv6's, RFC 3542 §3.1), so that the reply is not also taken by the
/// pinging application when it runs on this host: its own ping socket
/// would match the original identifier (a ping socket gets a fresh one
/// from the kernel anyway).
fn fresh_ident(message: &mut [u8], dst: IpAddr) -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Spread from this process's id, so two relays on a host differ.
    let ident = (u64::from(std::process::id()).wrapping_mul(0x9e37) + n) as u16;
    message[4..6].copy_from_slice(&ident.to_be_bytes());
    message[2..4].copy_from_slice(&[0, 0]);
    if dst.is_ipv4() {
        let sum = synack_wire::internet_checksum(0, message);
        message[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    ident
}

/// The data of `got` when it is the echo reply to `req`. A raw IPv4
/// socket hands over the IP header too, and sees every ICMP message the
/// host receives, so the identifier (`raw_ident`, the one sent) must match;
/// a ping socket's kernel rewrote the identifier and delivers only its own
/// replies.
fn match_reply<'a>(got: &'a [u8], req: &EchoRequest, raw_ident: Option<u16>) -> Option<&'a [u8]> {
    let message = if raw_ident.is_some() && req.dst.is_ipv4() {
        let ihl = usize::from(got.first()? & 0x0f) * 4;
        got.get(ihl..)?
    } else {
        got
    };
    let want = if req.dst.is_ipv4() {
        ECHO_REPLY_V4
    } else {
        ECHO_REPLY_V6
    };
    if message.len() < 8 || message[0] != want || message[1] != 0 {
        return None;
    }
    let ident = u16::from_be_bytes([message[4], message[5]]);
    let seq = u16::from_be_bytes([message[6], message[7]]);
    if seq != req.seq || raw_ident.is_some_and(|want| ident != want) {
        return None;
    }
    Some(&message[8..])
}

/// An ICMP socket towards `dst`'s family: a ping socket when allowed, else
/// raw; `true` when raw.
fn icmp_socket(egress: &Egress, dst: IpAddr) -> io::Result<(Socket, bool)> {
    let (domain, proto) = match dst {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    match egress.socket(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, false)),
        Err(_) => Ok((egress.socket(domain, Type::RAW, Some(proto))?, true)),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use synack_wire::internet_checksum;

    use super::*;

    fn request(src: IpAddr, dst: IpAddr, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
        let req = EchoRequest {
            src: dst,
            dst: src,
            ident,
            seq,
            message: Vec::new(),
        };
        // An echo "reply" from src to dst, then its type made a request.
        let mut p = echo_reply(&req, data).unwrap();
        let at = if src.is_ipv4() { 20 } else { 40 };
        p[at] = if src.is_ipv4() {
            ECHO_REQUEST_V4
        } else {
            ECHO_REQUEST_V6
        };
        let initial = if src.is_ipv4() {
            0
        } else {
            v6_pseudo_sum(src, dst, p.len() - at)
        };
        p[at + 2..at + 4].copy_from_slice(&[0, 0]);
        let sum = internet_checksum(initial, &p[at..]);
        p[at + 2..at + 4].copy_from_slice(&sum.to_be_bytes());
        p
    }

    fn v4(s: &str) -> IpAddr {
        s.parse::<Ipv4Addr>().unwrap().into()
    }

    fn v6(s: &str) -> IpAddr {
        s.parse::<Ipv6Addr>().unwrap().into()
    }

    #[test]
    fn echo_requests_parse_and_replies_check() {
        for (src, dst) in [
            (v4("10.0.0.2"), v4("192.0.2.9")),
            (v6("fd00::2"), v6("2001:db8::9")),
        ] {
            let p = request(src, dst, 0x1234, 7, b"abcdefgh");
            let req = parse_echo_request(&p).unwrap();
            assert_eq!(
                (req.src, req.dst, req.ident, req.seq),
                (src, dst, 0x1234, 7)
            );
            let reply = echo_reply(&req, b"abcdefgh").unwrap();
            let at = if src.is_ipv4() { 20 } else { 40 };
            let initial = if src.is_ipv4() {
                0
            } else {
                v6_pseudo_sum(dst, src, reply.len() - at)
            };
            assert_eq!(
                internet_checksum(initial, &reply[at..]),
                0,
                "reply checksum"
            );
            if src.is_ipv4() {
                let (h, _) = Ipv4Header::parse(&reply).unwrap();
                assert_eq!((IpAddr::V4(h.src), IpAddr::V4(h.dst)), (dst, src));
            }
        }
        // Not echo requests: a reply, UDP, garbage.
        let mut p = request(v4("10.0.0.2"), v4("192.0.2.9"), 1, 1, b"x");
        p[20] = ECHO_REPLY_V4;
        assert_eq!(parse_echo_request(&p), None);
        assert_eq!(parse_echo_request(&[0x45, 0, 0]), None);
        assert_eq!(parse_echo_request(&[]), None);
    }

    #[test]
    fn prohibited_answers_quote_the_request() {
        let p = request(v4("10.0.0.2"), v4("192.0.2.9"), 1, 1, &[7u8; 100]);
        let ans = prohibited(&p, v4("10.0.0.1"), v4("10.0.0.2")).unwrap();
        let (h, msg) = Ipv4Header::parse(&ans).unwrap();
        assert_eq!(
            (h.src, h.dst),
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        );
        assert_eq!((msg[0], msg[1]), (3, 13));
        assert_eq!(&msg[8..], &p[..28], "IP header and 8 bytes");
        assert_eq!(internet_checksum(0, msg), 0);
        let p6 = request(v6("fd00::2"), v6("2001:db8::9"), 1, 1, &[7u8; 2000]);
        let ans = prohibited(&p6, v6("fd00::1"), v6("fd00::2")).unwrap();
        assert_eq!(ans.len(), 1280, "as much as fits in the minimum MTU");
        assert_eq!((ans[40], ans[41]), (1, 1));
    }

    #[tokio::test]
    async fn prohibit_policy_answers_and_counts() {
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = Arc::clone(&got);
        let h = IcmpHandler::new(
            IcmpPolicy::Prohibit(vec![v4("10.0.0.1")]),
            Arc::new(move |p: &[u8]| g.lock().unwrap().push(p.to_vec())),
        );
        h.handle(&request(v4("10.0.0.2"), v4("192.0.2.9"), 1, 1, b"x"));
        h.handle(&[0x45, 1, 2, 3]);
        assert_eq!(got.lock().unwrap().len(), 1);
        assert_eq!(h.stats.unreachable.load(Ordering::Relaxed), 1);
        assert_eq!(h.stats.dropped.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_relayed_ping_to_loopback_gets_the_real_reply() {
        let egress = Egress::default();
        if icmp_socket(&egress, v4("127.0.0.1")).is_err() {
            eprintln!("skipped: no ICMP socket (needs ping_group_range or CAP_NET_RAW)");
            return;
        }
        let p = request(v4("10.0.0.2"), v4("127.0.0.1"), 0x4242, 3, b"hello ping");
        let req = parse_echo_request(&p).unwrap();
        let data = ping(&egress, &req).await.unwrap();
        assert_eq!(data.as_deref(), Some(&b"hello ping"[..]));
    }

    #[tokio::test]
    async fn a_relayed_ping_over_ipv6_loopback() {
        let egress = Egress::default();
        if std::net::UdpSocket::bind("[::1]:0").is_err() || icmp_socket(&egress, v6("::1")).is_err()
        {
            eprintln!("skipped: no IPv6 loopback or no ICMPv6 socket");
            return;
        }
        let p = request(v6("fd00::2"), v6("::1"), 9, 1, b"six");
        let req = parse_echo_request(&p).unwrap();
        let data = ping(&egress, &req).await.unwrap();
        assert_eq!(data.as_deref(), Some(&b"six"[..]));
    }
}
