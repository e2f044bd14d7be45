//! The SOCKS5 client against a fake server in the test (every reply code)
//! and against real servers on loopback (Debian's `microsocks` for CONNECT
//! and login, `dante-server` for UDP ASSOCIATE), skipped when absent.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::*;

fn proxy_at(addr: SocketAddr, auth: Option<(&str, &str)>) -> Proxy {
    Proxy {
        addr,
        auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        egress: Egress::default(),
        timeout: Duration::from_secs(5),
    }
}

#[test]
fn proxy_specs_parse() {
    let p: ProxySpec = "127.0.0.1:1080".parse().unwrap();
    assert_eq!((p.host.as_str(), p.port, p.auth), ("127.0.0.1", 1080, None));
    let p: ProxySpec = "alice:s3cr:et@[fd00::1]:9050".parse().unwrap();
    assert_eq!(p.host, "fd00::1");
    assert_eq!(p.port, 9050);
    assert_eq!(p.auth, Some(("alice".into(), "s3cr:et".into())));
    assert_eq!(p.to_string(), "alice:***@[fd00::1]:9050");
    let p: ProxySpec = "proxy.example:1080".parse().unwrap();
    assert_eq!(p.host, "proxy.example");
    for bad in [
        "",
        "1080",
        "host:",
        "host:0",
        "host:99999",
        "fd00::1:80",
        "[fd00::1]",
        "u@h:1",
        ":1",
    ] {
        assert!(bad.parse::<ProxySpec>().is_err(), "{bad:?} parsed");
    }
}

/// A fake SOCKS5 server for one connection: accepts no-auth (or checks
/// `login`), reads a request and answers with `code`; on success it then
/// echoes what it receives.
async fn fake_server(code: u8, login: Option<(&'static str, &'static str)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        let mut methods = vec![0u8; usize::from(head[1])];
        s.read_exact(&mut methods).await.unwrap();
        match login {
            None => s.write_all(&[5, 0]).await.unwrap(),
            Some((user, pass)) => {
                assert!(methods.contains(&2));
                s.write_all(&[5, 2]).await.unwrap();
                let mut v = [0u8; 2];
                s.read_exact(&mut v).await.unwrap();
                let mut u = vec![0u8; usize::from(v[1])];
                s.read_exact(&mut u).await.unwrap();
                let mut plen = [0u8; 1];
                s.read_exact(&mut plen).await.unwrap();
                let mut p = vec![0u8; usize::from(plen[0])];
                s.read_exact(&mut p).await.unwrap();
                let ok = u == user.as_bytes() && p == pass.as_bytes();
                s.write_all(&[1, if ok { 0 } else { 1 }]).await.unwrap();
                if !ok {
                    return;
                }
            }
        }
        let mut req = [0u8; 4];
        s.read_exact(&mut req).await.unwrap();
        assert_eq!(&req[..3], &[5, 1, 0]);
        let alen = if req[3] == 1 { 4 } else { 16 };
        let mut rest = vec![0u8; alen + 2];
        s.read_exact(&mut rest).await.unwrap();
        // Answer with a domain-name bound address, which the client skips.
        let mut reply = vec![5, code, 0, 3, 4];
        reply.extend_from_slice(b"here");
        reply.extend_from_slice(&[0, 80]);
        s.write_all(&reply).await.unwrap();
        if code == 0 {
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(&buf[..n]).await.unwrap();
        }
    });
    addr
}

#[tokio::test]
async fn reply_codes_become_the_errors_a_direct_connect_gives() {
    use io::ErrorKind as K;
    let cases = [
        (1, K::Other),
        (2, K::PermissionDenied),
        (3, K::NetworkUnreachable),
        (4, K::HostUnreachable),
        (5, K::ConnectionRefused),
        (6, K::TimedOut),
        (7, K::Unsupported),
        (8, K::Unsupported),
        (42, K::Other),
    ];
    let dst: SocketAddr = "[fd00::9]:443".parse().unwrap();
    for (code, kind) in cases {
        let server = fake_server(code, None).await;
        let e = proxy_at(server, None).connect(dst).await.unwrap_err();
        assert_eq!(e.kind(), kind, "reply {code}: {e}");
    }
}

#[tokio::test]
async fn login_and_success_against_the_fake() {
    let dst: SocketAddr = "10.9.8.7:80".parse().unwrap();
    let server = fake_server(0, Some(("alice", "pw"))).await;
    let mut s = proxy_at(server, Some(("alice", "pw")))
        .connect(dst)
        .await
        .unwrap();
    s.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    let server = fake_server(0, Some(("alice", "pw"))).await;
    let e = proxy_at(server, Some(("alice", "nope")))
        .connect(dst)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
}

#[tokio::test]
async fn a_silent_proxy_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut proxy = proxy_at(listener.local_addr().unwrap(), None);
    proxy.timeout = Duration::from_millis(200);
    let e = proxy
        .connect("10.0.0.1:1".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    drop(listener);
}

#[test]
fn udp_headers_parse_and_skip_fragments() {
    let mut d = vec![0, 0, 0, 1, 192, 0, 2, 1, 0, 53];
    d.extend_from_slice(b"answer");
    let (from, at) = parse_udp_header(&d).unwrap();
    assert_eq!(from, "192.0.2.1:53".parse().unwrap());
    assert_eq!(&d[at..], b"answer");
    let mut frag = d.clone();
    frag[2] = 1;
    assert_eq!(parse_udp_header(&frag), None);
    assert_eq!(parse_udp_header(&d[..7]), None);
    let mut v6 = vec![0, 0, 0, 4];
    v6.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&[0x01, 0xbb]);
    assert_eq!(
        parse_udp_header(&v6).unwrap(),
        ("[fd00::1]:443".parse().unwrap(), 22)
    );
}

/// A server process killed (SIGTERM, then reaped) when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling a child this test started and has not reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn installed(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(program).is_file())
}

/// Starts `cmd` and waits until `addr` accepts TCP connections.
async fn start(mut cmd: Command, addr: SocketAddr) -> Server {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{cmd:?} did not start listening on {addr}");
}

async fn microsocks(auth: Option<(&str, &str)>) -> Option<(Server, SocketAddr)> {
    if !installed("microsocks") {
        eprintln!("skipped: microsocks is not installed (apt-get install microsocks)");
        return None;
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new("microsocks");
    cmd.args(["-i", "127.0.0.1", "-p", &addr.port().to_string()]);
    if let Some((u, p)) = auth {
        cmd.args(["-u", u, "-P", p]);
    }
    Some((start(cmd, addr).await, addr))
}

/// An echo server on `addr` for one connection.
async fn echo_once(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    local
}

#[tokio::test]
async fn connect_through_microsocks() {
    let Some((_server, addr)) = microsocks(Some(("alice", "pw"))).await else {
        return;
    };
    let dst = echo_once("127.0.0.1:0").await;
    let mut s = proxy_at(addr, Some(("alice", "pw")))
        .connect(dst)
        .await
        .unwrap();
    s.write_all(b"through the proxy").await.unwrap();
    // No half-close here: microsocks closes both ways at the first EOF.
    let mut back = [0u8; 17];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"through the proxy");
    // Without the login the proxy turns us away.
    let e = proxy_at(addr, None).connect(dst).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
}

#[tokio::test]
async fn connect_through_microsocks_over_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let Some((_server, addr)) = microsocks(None).await else {
        return;
    };
    let dst = echo_once("[::1]:0").await;
    let mut s = proxy_at(addr, None).connect(dst).await.unwrap();
    s.write_all(b"v6").await.unwrap();
    let mut back = [0u8; 2];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"v6");
}

#[tokio::test]
async fn a_refused_destination_is_refused_through_microsocks() {
    let Some((_server, addr)) = microsocks(None).await else {
        return;
    };
    let closed: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let e = proxy_at(addr, None).connect(closed).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
}

async fn dante() -> Option<(Server, SocketAddr, tempdir::Dir)> {
    if !installed("danted") {
        eprintln!("skipped: danted is not installed (apt-get install dante-server)");
        return None;
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = tempdir::Dir::new("danted");
    let conf = dir.path().join("danted.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: stderr\n\
             internal: 127.0.0.1 port = {}\n\
             external: 127.0.0.1\n\
             clientmethod: none\n\
             socksmethod: none\n\
             user.privileged: root\n\
             user.unprivileged: nobody\n\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect udpassociate udpreply }}\n",
            addr.port()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("danted");
    cmd.arg("-f").arg(&conf).args(["-N", "1"]);
    Some((start(cmd, addr).await, addr, dir))
}

#[tokio::test]
async fn udp_associate_through_dante() {
    let Some((_server, addr, _dir)) = dante().await else {
        return;
    };
    // Two remotes: replies from either come back through the association.
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let assoc = proxy_at(addr, None)
        .associate("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    assoc.send_to(b"query", echo_addr).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, relayed_from) = echo.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"query");
    echo.send_to(b"answer", relayed_from).await.unwrap();
    let (n, from) = assoc.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"answer"[..], echo_addr));
    // Dante only relays replies from addresses the client sent to (its
    // `udpreply` rule); send to the second remote first, then hear it.
    let other_addr = other.local_addr().unwrap();
    assoc.send_to(b"hi", other_addr).await.unwrap();
    let (_, relayed_from) = other.recv_from(&mut buf).await.unwrap();
    other.send_to(b"from other", relayed_from).await.unwrap();
    let (n, from) = assoc.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"from other"[..], other_addr));
    // The association lasts while the control connection is open.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), assoc.closed())
            .await
            .is_err()
    );
}

/// A temporary directory removed on drop.
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let p = std::env::temp_dir().join(format!("synack-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
