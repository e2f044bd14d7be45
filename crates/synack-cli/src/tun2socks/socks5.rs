//! A SOCKS5 client (RFC 1928): CONNECT and UDP ASSOCIATE, with no
//! authentication or username/password (RFC 1929).
//!
//! Destinations always come from the tunnel as addresses, so requests carry
//! IPv4 or IPv6 addresses, never domain names; the proxy's replies may
//! still name a domain (their bound address is then skipped). A reply code
//! other than success becomes an [`io::Error`] of the kind a direct
//! connection would have failed with, so the caller can refuse the
//! client's connection the same way (RFC 1928 §6).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::direct::{unspecified, Egress};

/// The protocol version byte (RFC 1928 §3).
const VERSION: u8 = 5;
/// Method: no authentication required (RFC 1928 §3).
const METHOD_NONE: u8 = 0x00;
/// Method: username/password (RFC 1929).
const METHOD_USERPASS: u8 = 0x02;
/// Reply to the method offer: none acceptable.
const METHOD_UNACCEPTABLE: u8 = 0xff;
/// Version of the username/password subnegotiation (RFC 1929 §2).
const USERPASS_VERSION: u8 = 1;
/// Command: CONNECT (RFC 1928 §4).
const CMD_CONNECT: u8 = 1;
/// Command: UDP ASSOCIATE (RFC 1928 §4).
const CMD_UDP_ASSOCIATE: u8 = 3;
/// Address types (RFC 1928 §5).
const ATYP_V4: u8 = 1;
/// A domain name, length-prefixed.
const ATYP_DOMAIN: u8 = 3;
/// An IPv6 address.
const ATYP_V6: u8 = 4;

/// Where the proxy is and how to log in to it: `[user:pass@]host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySpec {
    /// Host name or address literal (IPv6 in brackets on the command line).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Username and password (RFC 1929), when given.
    pub auth: Option<(String, String)>,
}

impl fmt::Debug for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of logs.
        write!(f, "{self}")
    }
}

impl fmt::Display for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((user, _)) = &self.auth {
            write!(f, "{user}:***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for ProxySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("bad SOCKS5 proxy {s:?}: {why} (expected [USER:PASS@]HOST:PORT)");
        let (auth, hostport) = match s.rsplit_once('@') {
            Some((cred, rest)) => {
                let (user, pass) = cred.split_once(':').ok_or_else(|| bad("no password"))?;
                if user.is_empty() || user.len() > 255 || pass.len() > 255 {
                    return Err(bad("username and password are 1 to 255 bytes"));
                }
                (Some((user.to_string(), pass.to_string())), rest)
            }
            None => (None, s),
        };
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(|| bad("no port"))?;
            h.parse::<Ipv6Addr>().map_err(|_| bad("bad IPv6 address"))?;
            (h, p)
        } else {
            let (h, p) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
            if h.is_empty() || h.contains(':') {
                return Err(bad("bad host (an IPv6 address goes in brackets)"));
            }
            (h, p)
        };
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(ProxySpec {
            host: host.to_string(),
            port,
            auth,
        })
    }
}

/// A proxy ready to use: its address resolved, how to reach it.
#[derive(Clone, Debug)]
pub struct Proxy {
    /// The proxy's TCP address.
    pub addr: SocketAddr,
    /// Username and password, when the proxy wants them.
    pub auth: Option<(String, String)>,
    /// How connections to the proxy leave the host.
    pub egress: Egress,
    /// Longest wait for the proxy's answers (and the connect through it).
    pub timeout: Duration,
}

impl Proxy {
    /// Resolves `spec` (a name is looked up once, now).
    pub async fn resolve(spec: &ProxySpec, egress: Egress, timeout: Duration) -> io::Result<Proxy> {
        let addr = match spec.host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, spec.port),
            Err(_) => tokio::net::lookup_host((spec.host.as_str(), spec.port))
                .await?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?,
        };
        Ok(Proxy {
            addr,
            auth: spec.auth.clone(),
            egress,
            timeout,
        })
    }

    /// Connects to the proxy and logs in, to tell at start that it is
    /// there and takes us.
    pub async fn check(&self) -> io::Result<()> {
        self.open().await.map(drop)
    }

    /// Opens a TCP connection to `dst` through the proxy (CONNECT).
    pub async fn connect(&self, dst: SocketAddr) -> io::Result<TcpStream> {
        let mut stream = self.open().await?;
        let exchange = async {
            request(&mut stream, CMD_CONNECT, dst).await?;
            read_reply(&mut stream).await
        };
        within(self.timeout, exchange).await?;
        Ok(stream)
    }

    /// Starts a UDP association (UDP ASSOCIATE) for datagrams of `family`.
    pub async fn associate(&self, family: IpAddr) -> io::Result<UdpAssociation> {
        let mut control = self.open().await?;
        let udp = self.egress.udp_socket(family)?;
        // The address we will send from, so the proxy can filter on it;
        // its IP is learnt by routing towards the proxy (RFC 1928 §7: the
        // client sends the address and port it expects to use).
        let probe = self.egress.udp_socket(family)?;
        let from = match probe
            .connect(self.addr)
            .await
            .and_then(|_| probe.local_addr())
        {
            Ok(a) if a.is_ipv4() == family.is_ipv4() => {
                SocketAddr::new(a.ip(), udp.local_addr()?.port())
            }
            _ => SocketAddr::new(unspecified(family), 0),
        };
        let exchange = async {
            request(&mut control, CMD_UDP_ASSOCIATE, from).await?;
            read_reply(&mut control).await
        };
        let mut relay = within(self.timeout, exchange).await?;
        // A relay that names no address means "the proxy's own".
        if relay.ip().is_unspecified() {
            relay.set_ip(self.addr.ip());
        }
        udp.connect(relay).await?;
        Ok(UdpAssociation { control, udp })
    }

    /// Connects to the proxy and negotiates the method.
    async fn open(&self) -> io::Result<TcpStream> {
        let mut stream = self
            .egress
            .connect_tcp(self.addr, self.timeout)
            .await
            .map_err(|e| proxy_error(self.addr, e))?;
        within(self.timeout, negotiate(&mut stream, self.auth.as_ref())).await?;
        Ok(stream)
    }
}

/// `f`, or a timed-out error after `timeout`.
async fn within<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the SOCKS5 proxy did not answer",
        )),
    }
}

/// A failure to reach the proxy itself: named as such, since the client's
/// destination is not at fault.
fn proxy_error(proxy: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("SOCKS5 proxy {proxy}: {e}"))
}

/// Method selection (RFC 1928 §3), then the RFC 1929 login when chosen.
async fn negotiate<S>(s: &mut S, auth: Option<&(String, String)>) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let offer: &[u8] = match auth {
        Some(_) => &[VERSION, 2, METHOD_NONE, METHOD_USERPASS],
        None => &[VERSION, 1, METHOD_NONE],
    };
    s.write_all(offer).await?;
    let mut chosen = [0u8; 2];
    s.read_exact(&mut chosen).await?;
    if chosen[0] != VERSION {
        return Err(protocol("not a SOCKS5 proxy"));
    }
    match (chosen[1], auth) {
        (METHOD_NONE, _) => Ok(()),
        (METHOD_USERPASS, Some((user, pass))) => login(s, user, pass).await,
        (METHOD_UNACCEPTABLE, None) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the SOCKS5 proxy wants a login (USER:PASS@HOST:PORT)",
        )),
        (METHOD_UNACCEPTABLE, Some(_)) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the SOCKS5 proxy accepts none of our methods",
        )),
        _ => Err(protocol("the proxy chose a method we did not offer")),
    }
}

/// Username/password subnegotiation (RFC 1929 §2): status 0 is success.
async fn login<S>(s: &mut S, user: &str, pass: &str) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut msg = vec![USERPASS_VERSION, user.len() as u8];
    msg.extend_from_slice(user.as_bytes());
    msg.push(pass.len() as u8);
    msg.extend_from_slice(pass.as_bytes());
    s.write_all(&msg).await?;
    let mut status = [0u8; 2];
    s.read_exact(&mut status).await?;
    if status[1] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the SOCKS5 proxy rejected the username or password",
        ));
    }
    Ok(())
}

/// Sends a request (RFC 1928 §4): VER CMD RSV ATYP DST.ADDR DST.PORT.
async fn request<S>(s: &mut S, cmd: u8, dst: SocketAddr) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let mut msg = vec![VERSION, cmd, 0];
    put_addr(&mut msg, dst);
    s.write_all(&msg).await
}

/// Appends ATYP, address and port (RFC 1928 §5).
fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(ATYP_V4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(ATYP_V6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Reads a reply (RFC 1928 §6) and returns its bound address; a domain
/// name there reads as the unspecified IPv4 address.
async fn read_reply<S>(s: &mut S) -> io::Result<SocketAddr>
where
    S: AsyncRead + Unpin,
{
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(protocol("bad reply version"));
    }
    if head[1] != 0 {
        return Err(reply_error(head[1]));
    }
    let ip = match head[3] {
        ATYP_V4 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            IpAddr::V4(Ipv4Addr::from(a))
        }
        ATYP_V6 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a).await?;
            IpAddr::V6(Ipv6Addr::from(a))
        }
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            s.read_exact(&mut name).await?;
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
        _ => return Err(protocol("bad address type in reply")),
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port).await?;
    Ok(SocketAddr::new(ip, u16::from_be_bytes(port)))
}

/// The error a reply code stands for (RFC 1928 §6), of the kind the same
/// failure has on a direct connection.
pub fn reply_error(code: u8) -> io::Error {
    use io::ErrorKind as K;
    let (kind, what) = match code {
        0x01 => (K::Other, "general SOCKS server failure"),
        0x02 => (K::PermissionDenied, "connection not allowed by ruleset"),
        0x03 => (K::NetworkUnreachable, "network unreachable"),
        0x04 => (K::HostUnreachable, "host unreachable"),
        0x05 => (K::ConnectionRefused, "connection refused"),
        // The proxy's own connect timed out: a timeout for us too.
        0x06 => (K::TimedOut, "TTL expired"),
        0x07 => (K::Unsupported, "command not supported"),
        0x08 => (K::Unsupported, "address type not supported"),
        _ => (K::Other, "unknown SOCKS5 reply"),
    };
    io::Error::new(kind, format!("SOCKS5 proxy: {what} (reply {code})"))
}

/// A malformed answer from the proxy.
fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("SOCKS5 proxy: {what}"))
}

/// A UDP association: the control connection (the association lasts as
/// long as it, RFC 1928 §7) and a UDP socket connected to the proxy's
/// relay address.
#[derive(Debug)]
pub struct UdpAssociation {
    control: TcpStream,
    udp: UdpSocket,
}

/// Room for the SOCKS5 UDP header before the payload: RSV(2) FRAG(1)
/// ATYP(1) and an IPv6 address and port.
const UDP_HEADER_MAX: usize = 4 + 16 + 2;

impl UdpAssociation {
    /// Sends `payload` to `dst` through the relay (RFC 1928 §7 header,
    /// FRAG 0).
    pub async fn send_to(&self, payload: &[u8], dst: SocketAddr) -> io::Result<()> {
        let mut msg = Vec::with_capacity(UDP_HEADER_MAX + payload.len());
        msg.extend_from_slice(&[0, 0, 0]);
        put_addr(&mut msg, dst);
        msg.extend_from_slice(payload);
        self.udp.send(&msg).await.map(|_| ())
    }

    /// Waits for the next datagram from the relay (see
    /// [`UdpAssociation::try_recv_from`]).
    #[cfg(test)]
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            self.readable().await?;
            match self.try_recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
        }
    }

    /// Resolves when the proxy closes the control connection (the
    /// association is over then); what the proxy sends on it is ignored.
    pub async fn closed(&self) {
        let mut sink = [0u8; 64];
        loop {
            if self.control.readable().await.is_err() {
                return;
            }
            match self.control.try_read(&mut sink) {
                Ok(0) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Waits until a datagram from the relay may be ready.
    pub async fn readable(&self) -> io::Result<()> {
        self.udp.readable().await
    }

    /// Takes a datagram without waiting, as `recv_from`
    /// (`WouldBlock` when none is ready).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let n = self.udp.try_recv(buf)?;
            if let Some((from, at)) = parse_udp_header(&buf[..n]) {
                buf.copy_within(at..n, 0);
                return Ok((n - at, from));
            }
        }
    }
}

/// The source address and payload offset of a SOCKS5 UDP datagram, or
/// `None` for a fragment (FRAG ≠ 0: RFC 1928 §7 lets a client without
/// reassembly drop them), a domain source or a short header.
pub fn parse_udp_header(d: &[u8]) -> Option<(SocketAddr, usize)> {
    if d.len() < 4 || d[2] != 0 {
        return None;
    }
    let (ip, at) = match d[3] {
        ATYP_V4 => (
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(d.get(4..8)?).ok()?)),
            8,
        ),
        ATYP_V6 => (
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(d.get(4..20)?).ok()?)),
            20,
        ),
        _ => return None,
    };
    let port = u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?);
    Some((SocketAddr::new(ip, port), at + 2))
}

#[cfg(test)]
mod tests;
