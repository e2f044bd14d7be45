//! The transparent listener against the Linux kernel: a kernel client in a
//! network namespace the test makes connects to addresses that are nobody's
//! (TEST-NET-2, 2001:db8::/32), routed into the namespace's `syn0` TUN
//! device, where a synack stack with a `Handshake::Defer` listener decides
//! each request: accepted (data both ways, `local_addr` the original
//! destination), refused with an RST (`connect` fails `ECONNREFUSED`) or
//! with an ICMP host unreachable (`EHOSTUNREACH`). Root and /dev/net/tun
//! needed; elsewhere the test prints `skipped: <why>` and returns.
#![cfg(target_os = "linux")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::Netns;
use synack::core::Config;
use synack::net::TcpListener;
use synack::{Handshake, Net, Refusal, Unreachable};

const T: Duration = Duration::from_secs(10);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// What the application does with a request, by destination port.
fn decide(listener: &TcpListener) {
    while let Ok(req) = listener.request() {
        let dst = req.local_addr();
        match dst.port() {
            443 => {
                let mut s = req.accept().expect("accept the request");
                assert_eq!(s.local_addr().unwrap(), dst, "the original destination");
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"hello");
                s.write_all(format!("to {dst}").as_bytes()).unwrap();
            }
            444 => req.refuse(Refusal::Reset).unwrap(),
            445 => req.refuse(Refusal::Unreachable(Unreachable::Host)).unwrap(),
            // Port 9: stop.
            _ => return,
        }
    }
}

/// Ends [`decide`] if the client side panics: a request for port 9 makes
/// it return, so the scope reports the failure instead of waiting on a
/// thread blocked in `request` for ever.
struct EndDecide<'a>(&'a Netns);

impl Drop for EndDecide<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.enter(|| kernel_client(addr("198.51.100.7:9")));
        }
    }
}

/// The kernel's connect to `dst`, which synack answers with ICMP host
/// unreachable, tried up to three times: the error, and the attempts.
/// Once in many runs the kernel reported the first attempt's socket hung
/// up with no error set (std: "no error set after POLLHUP"), where the
/// next attempt saw EHOSTUNREACH; each attempt is one more request and
/// one more ICMP message for the counts below.
fn unreachable_client(ns: &Netns, dst: SocketAddr) -> (std::io::Error, u64) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let e = ns.enter(|| kernel_client(dst)).unwrap_err();
        if e.kind() == ErrorKind::HostUnreachable || attempts == 3 {
            return (e, attempts);
        }
        println!("attempt {attempts} to {dst}: {e}; again");
    }
}

/// A kernel client: connect, send "hello", read the reply to the end.
fn kernel_client(dst: SocketAddr) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&dst, T)?;
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"hello")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

#[test]
fn kernel_client_to_any_address_accepted_refused_or_unreachable() {
    let Some(ns) = Netns::new("transparent_interop") else {
        return;
    };
    let net = ns.enter(|| {
        Net::builder("syn0")
            .addr("10.0.0.2".parse().unwrap())
            .host("10.0.0.1/24".parse().unwrap())
            .config(Config {
                min_rto: Duration::from_millis(200),
                ..Config::default()
            })
            .start()
            .expect("start the stack on syn0")
    });
    // Everything in TEST-NET-2 and the documentation prefix goes into the
    // tunnel, as a tun2socks tool routes the internet.
    ns.ip(&["route", "add", "198.51.100.0/24", "dev", "syn0"]);
    let v6 = ns
        .run(
            "ip",
            &["-6", "addr", "add", "fd00::1/64", "dev", "syn0", "nodad"],
        )
        .status
        .success()
        && ns
            .run(
                "ip",
                &["-6", "route", "add", "2001:db8::/32", "dev", "syn0"],
            )
            .status
            .success();
    let listener = TcpListener::bind_transparent(&net, Handshake::Defer).unwrap();
    assert!(matches!(
        listener.accept_timeout(Duration::from_millis(1)),
        Err(e) if e.kind() == ErrorKind::InvalidInput
    ));
    let mut dsts = vec!["198.51.100.7"];
    if v6 {
        dsts.push("[2001:db8::7]");
    } else {
        println!("note: no IPv6 on syn0 here; IPv4 only");
    }
    let mut unreachable_attempts = 0;
    std::thread::scope(|s| {
        s.spawn(|| decide(&listener));
        let _end = EndDecide(&ns);
        for ip in &dsts {
            let ok = addr(&format!("{ip}:443"));
            let reply = ns.enter(|| kernel_client(ok)).expect("accepted");
            assert_eq!(reply, format!("to {ok}"));

            let refused = ns
                .enter(|| kernel_client(addr(&format!("{ip}:444"))))
                .unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");

            let (unreachable, attempts) = unreachable_client(&ns, addr(&format!("{ip}:445")));
            unreachable_attempts += attempts;
            assert_eq!(
                unreachable.kind(),
                ErrorKind::HostUnreachable,
                "{unreachable}"
            );
        }
        // Stops `decide`: the request is dropped, which resets it.
        let e = ns
            .enter(|| kernel_client(addr("198.51.100.7:9")))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    });
    let stats = net.with_stack(|s| s.stats().clone());
    assert_eq!(stats.requests_accepted, dsts.len() as u64);
    let refused_by_reset = dsts.len() as u64 + 1;
    assert_eq!(
        stats.requests_refused,
        refused_by_reset + unreachable_attempts
    );
    assert_eq!(stats.icmp_unreachable_sent, unreachable_attempts);
}

/// The stack on `syn0` with TEST-NET-2 routed into it.
fn start_routed(ns: &Netns) -> Net {
    let net = ns.enter(|| {
        Net::builder("syn0")
            .addr("10.0.0.2".parse().unwrap())
            .host("10.0.0.1/24".parse().unwrap())
            .start()
            .expect("start the stack on syn0")
    });
    ns.ip(&["route", "add", "198.51.100.0/24", "dev", "syn0"]);
    net
}

#[test]
fn complete_mode_accepts_every_destination_at_once() {
    let Some(ns) = Netns::new("transparent_complete") else {
        return;
    };
    let net = start_routed(&ns);
    let listener = TcpListener::bind_transparent(&net, Handshake::Complete).unwrap();
    assert!(matches!(
        listener.request(),
        Err(e) if e.kind() == ErrorKind::InvalidInput
    ));
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..10 {
                let (mut c, peer) = listener.accept_timeout(T).expect("accept");
                assert_eq!(c.peer_addr().unwrap(), peer);
                let mut buf = [0u8; 5];
                c.read_exact(&mut buf).unwrap();
                let local = c.local_addr().unwrap();
                c.write_all(format!("to {local}").as_bytes()).unwrap();
            }
        });
        for i in 1..=10u16 {
            let dst = addr(&format!("198.51.100.{i}:{}", 1000 + i));
            let reply = ns.enter(|| kernel_client(dst)).expect("connect");
            assert_eq!(reply, format!("to {dst}"));
        }
    });
}

/// The tokio flavour: each request is decided by its own task after a
/// pretend upstream attempt, 20 at once; even ports are accepted, odd ones
/// refused.
#[cfg(feature = "tokio")]
#[test]
fn tokio_requests_decided_concurrently() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(ns) = Netns::new("transparent_tokio") else {
        return;
    };
    let net = start_routed(&ns);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = synack::tokio::TcpListener::bind_transparent(&net, Handshake::Defer).unwrap();
    rt.spawn(async move {
        while let Ok(req) = listener.request().await {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let dst = req.local_addr();
                if dst.port() % 2 == 1 {
                    req.refuse(Refusal::Reset).unwrap();
                    return;
                }
                let mut s = req.accept().await.expect("accept");
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(format!("to {}", s.local_addr().unwrap()).as_bytes())
                    .await
                    .unwrap();
            });
        }
    });
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..20u16)
            .map(|i| {
                let ns = &ns;
                s.spawn(move || {
                    let dst = addr(&format!("198.51.100.{}:{}", 1 + i, 2000 + i));
                    (dst, ns.enter(|| kernel_client(dst)))
                })
            })
            .collect();
        for c in clients {
            let (dst, r) = c.join().unwrap();
            if dst.port() % 2 == 1 {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::ConnectionRefused);
            } else {
                assert_eq!(r.expect("accepted"), format!("to {dst}"));
            }
        }
    });
    drop(rt);
}
