//! The tokio flavour against the kernel, on a multi-threaded runtime: 100
//! concurrent echo clients each way. Needs root and /dev/net/tun (else it
//! prints `skipped: <why>`), and the `tokio` feature.
#![cfg(all(target_os = "linux", feature = "tokio"))]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::{pattern, Netns};
use synack::tokio::{TcpListener, TcpStream};
use synack::Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(20);

fn start(ns: &Netns) -> Net {
    ns.enter(|| {
        Net::builder("syn0")
            .addr("10.0.0.2".parse().unwrap())
            .host("10.0.0.1/24".parse().unwrap())
            .start()
            .expect("start the stack on syn0")
    })
}

#[test]
fn tokio_echo_server_serves_100_concurrent_kernel_clients() {
    let Some(ns) = Netns::new("tokio_echo_server_100") else {
        return;
    };
    let net = start(&ns);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = TcpListener::bind(&net, "10.0.0.2:7".parse().unwrap()).unwrap();
    rt.spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    ns.enter(|| {
        let clients: Vec<_> = (0..100u8)
            .map(|i| {
                std::thread::spawn(move || {
                    let addr: SocketAddr = "10.0.0.2:7".parse().unwrap();
                    let mut s = std::net::TcpStream::connect_timeout(&addr, T).unwrap();
                    s.set_read_timeout(Some(T)).unwrap();
                    let data = pattern(10_000, i);
                    s.write_all(&data).unwrap();
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).unwrap();
                    assert!(got == data, "client {i}");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn tokio_clients_100_concurrent_against_kernel_echo() {
    let Some(ns) = Netns::new("tokio_clients_100") else {
        return;
    };
    let net = start(&ns);
    let l = ns.enter(|| std::net::TcpListener::bind("10.0.0.1:7").unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().take(100) {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(T)).unwrap();
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..100u8)
            .map(|i| {
                let net = net.clone();
                tokio::spawn(async move {
                    let addr = "10.0.0.1:7".parse().unwrap();
                    let mut s = TcpStream::connect(&net, addr).await.unwrap();
                    let data = pattern(10_000, i);
                    let (mut r, mut w) = tokio::io::split(&mut s);
                    let send = async {
                        w.write_all(&data).await.unwrap();
                        w.shutdown().await.unwrap();
                    };
                    let mut got = Vec::new();
                    let recv = r.read_to_end(&mut got);
                    let ((), n) = tokio::join!(send, recv);
                    n.unwrap();
                    assert!(got == data, "client {i}");
                })
            })
            .collect();
        tokio::time::timeout(T, async {
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await
        .expect("100 tokio clients in time");
    });
}
