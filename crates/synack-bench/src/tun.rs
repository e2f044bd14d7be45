//! Over TUN, against the Linux kernel (needs root: it makes its own network
//! namespaces and removes them afterwards).
//!
//! Measured here: the kernel talking to itself over a veth pair between two
//! namespaces: 100 MiB each way and request/response round trips (64 bytes
//! each way), the baseline the user-space stacks are held against. The
//! synack-over-TUN and smoltcp-over-TUN rows are reported as skipped, with
//! the reason, until they are measured.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Instant as WallInstant;

use crate::report::{Figure, Progress};
use crate::Sizes;

/// Bytes of each request and each response in the round-trip test.
pub const MESSAGE: usize = 64;

/// Why the user-space rows are not measured yet.
const USER_SPACE_PENDING: &str =
    "not measured yet: the TUN side of this benchmark is still to be written";

/// Two network namespaces joined by a veth pair, removed on drop.
struct VethPair {
    ns: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl VethPair {
    /// Namespaces `synack-bench-<pid>-a` (10.200.0.1) and `-b` (10.200.0.2).
    fn new() -> Result<Self, String> {
        let pid = std::process::id();
        let pair = VethPair {
            ns: [
                format!("synack-bench-{pid}-a"),
                format!("synack-bench-{pid}-b"),
            ],
        };
        let [a, b] = &pair.ns;
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&[
            "link", "add", "sbveth0", "netns", a, "type", "veth", "peer", "name", "sbveth1",
            "netns", b,
        ])?;
        for (ns, dev, addr) in [
            (a, "sbveth0", "10.200.0.1/24"),
            (b, "sbveth1", "10.200.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "mtu", "1500", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Moves the calling thread into the named network namespace.
fn enter(ns: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/var/run/netns/{ns}"))
        .map_err(|e| format!("open netns {ns}: {e}"))?;
    // SAFETY: setns on a valid namespace descriptor affects only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> std::thread::JoinHandle<Result<T, String>> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
}

/// Kernel to kernel over the veth pair: `bytes` from namespace a to b;
/// Gbit/s from the connect to the last byte read.
fn kernel_bulk(pair: &VethPair, from: usize, bytes: u64) -> Result<f64, String> {
    let (tx_ns, rx_ns) = (&pair.ns[from], &pair.ns[1 - from]);
    let rx_addr: SocketAddr = if from == 0 {
        "10.200.0.2:5001".parse().unwrap_or_else(|_| unreachable!())
    } else {
        "10.200.0.1:5001".parse().unwrap_or_else(|_| unreachable!())
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns(rx_ns, move || {
        let l = TcpListener::bind(rx_addr).map_err(|e| format!("bind: {e}"))?;
        let _ = ready_tx.send(());
        let (mut s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        while got < bytes {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n as u64,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(got)
    });
    ready_rx
        .recv()
        .map_err(|_| "the receiver failed to start")?;
    let client = in_ns(tx_ns, move || {
        let t0 = WallInstant::now();
        let mut s = TcpStream::connect(rx_addr).map_err(|e| format!("connect: {e}"))?;
        let chunk = vec![0x5au8; 1 << 16];
        let mut sent = 0u64;
        while sent < bytes {
            let n = (bytes - sent).min(chunk.len() as u64) as usize;
            s.write_all(&chunk[..n])
                .map_err(|e| format!("write: {e}"))?;
            sent += n as u64;
        }
        Ok(t0)
    });
    let t0 = client.join().map_err(|_| "client thread panicked")??;
    let got = server.join().map_err(|_| "server thread panicked")??;
    let secs = t0.elapsed().as_secs_f64();
    if got < bytes {
        return Err(format!("only {got} of {bytes} bytes arrived"));
    }
    Ok(bytes as f64 * 8.0 / secs / 1e9)
}

/// Kernel to kernel request/response: round trips per second.
fn kernel_rr(pair: &VethPair, round_trips: u64) -> Result<f64, String> {
    let addr: SocketAddr = "10.200.0.2:5002".parse().unwrap_or_else(|_| unreachable!());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns(&pair.ns[1], move || {
        let l = TcpListener::bind(addr).map_err(|e| format!("bind: {e}"))?;
        let _ = ready_tx.send(());
        let (mut s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_nodelay(true).ok();
        let mut buf = [0u8; MESSAGE];
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf).map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    });
    ready_rx.recv().map_err(|_| "the server failed to start")?;
    let client = in_ns(&pair.ns[0], move || {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).ok();
        let mut buf = [7u8; MESSAGE];
        let t0 = WallInstant::now();
        for _ in 0..round_trips {
            s.write_all(&buf).map_err(|e| format!("write: {e}"))?;
            s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
        }
        Ok(round_trips as f64 / t0.elapsed().as_secs_f64())
    });
    let rate = client.join().map_err(|_| "client thread panicked")??;
    server.join().map_err(|_| "server thread panicked")??;
    Ok(rate)
}

/// Every TUN case: the kernel's, then synack's and smoltcp's.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress) -> Vec<Figure> {
    progress.case("tun kernel veth");
    let mut out = Vec::new();
    let dirs = ["kernel-to-stack", "stack-to-kernel"];
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let kernel = if root {
        VethPair::new()
    } else {
        Err("needs root (it makes its own network namespaces)".to_string())
    };
    match &kernel {
        Ok(pair) => {
            for (i, dir) in dirs.iter().enumerate() {
                let f = match kernel_bulk(pair, i, sizes.tun_bytes) {
                    Ok(v) => Figure::new("tun", "kernel", v, "Gbit/s"),
                    Err(e) => Figure::skipped("tun", "kernel", "Gbit/s", &e),
                };
                out.push(
                    f.param("direction", *dir)
                        .param("bytes", sizes.tun_bytes)
                        .note("kernel to kernel over veth"),
                );
                progress.advance((i + 1) as f64 / 3.0);
            }
            let f = match kernel_rr(pair, sizes.tun_round_trips) {
                Ok(v) => Figure::new("tun", "kernel", v, "req/s"),
                Err(e) => Figure::skipped("tun", "kernel", "req/s", &e),
            };
            out.push(
                f.param("direction", "request-response")
                    .param("round_trips", sizes.tun_round_trips)
                    .note("kernel to kernel over veth"),
            );
        }
        Err(e) => {
            for dir in dirs {
                out.push(Figure::skipped("tun", "kernel", "Gbit/s", e).param("direction", dir));
            }
            out.push(
                Figure::skipped("tun", "kernel", "req/s", e).param("direction", "request-response"),
            );
        }
    }
    drop(kernel);
    for stack in ["synack", "smoltcp"] {
        for dir in dirs {
            out.push(
                Figure::skipped("tun", stack, "Gbit/s", USER_SPACE_PENDING).param("direction", dir),
            );
        }
        out.push(
            Figure::skipped("tun", stack, "req/s", USER_SPACE_PENDING)
                .param("direction", "request-response"),
        );
    }
    out
}
