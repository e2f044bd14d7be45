//! Over TUN, against the Linux kernel (needs root: it makes its own network
//! namespaces and removes them afterwards; no packet leaves them).
//!
//! Three stacks, three figures each, in one run:
//!
//! - **kernel**: the kernel talking to itself over a veth pair between two
//!   namespaces: the baseline the user-space stacks are held against.
//! - **synack**: the synack TUN driver ([`synack::Net`] with its blocking
//!   sockets) on a TUN device in a namespace of its own, the kernel of that
//!   namespace on the host side of the device. The driver asks for the
//!   device's checksum and segmentation offloads (its default): packets of
//!   up to 64 KiB cross the device both ways, cut into MSS-sized segments
//!   on the kernel's side, as over veth.
//! - **smoltcp**: smoltcp 0.14 on `phy::TunTapInterface` in the same role,
//!   driven by a poll loop on one thread inside its namespace: wait for the
//!   device (or smoltcp's next deadline), take in up to [`BATCH`] packets,
//!   let the application read and write its socket, send what is queued.
//!
//! The figures: 100 MiB from the kernel to the stack (a sink server on the
//! stack, the kernel connects and writes), 100 MiB from the stack to the
//! kernel (the stack connects to a kernel sink and writes), each timed from
//! the connect to the last byte read by the receiver; and round trips per
//! second of [`MESSAGE`]-byte requests from a kernel client to an echo
//! server on the stack, Nagle off on both ends. Over veth "the stack" is the
//! kernel of the second namespace.
//! Each figure is the median of [`RUNS`] runs.
//!
//! The user-space stacks get [`BUFFER`] bytes of send and receive buffer;
//! the kernel keeps its defaults (autotuned). The veth pair and the TUN
//! devices have an MTU of 1500 ([`MTU`]); the TUN devices keep the queue
//! length the kernel gives them.
//!
//! Two more rows per user-space stack move the same 100 MiB each way over a
//! TUN device with an MTU of [`JUMBO_MTU`], both stacks told so: 64 KiB
//! packets, about what the kernel hands itself over veth thanks to its
//! segmentation offloads (GSO/GRO), whatever the wire MTU. They measure how
//! much of the gap to the kernel is the per-packet cost of a TUN device at
//! 1500 (a system call and a trip through the kernel's stack per 1448 bytes,
//! for smoltcp, which has no offloads); the targets are checked against the
//! MTU-1500 rows only.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use smoltcp::iface::{Config as IfaceConfig, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use crate::report::{Figure, Progress};
use crate::smoltcp_side::{endpoint, socket};
use crate::{Sizes, MTU};

/// Bytes of each request and each response in the round-trip test.
pub const MESSAGE: usize = 64;

/// Send and receive buffer of each user-space connection.
pub const BUFFER: usize = 1 << 20;

/// Most packets a user-space stack takes from the device before it lets the
/// application run and sends (synack's driver reads the same number:
/// `synack::driver::BATCH`).
pub const BATCH: usize = synack::driver::BATCH;

/// Each figure is the median of this many runs (the machine is shared and
/// a TUN or veth run takes a fraction of a second).
pub const RUNS: usize = 3;

/// The median of [`RUNS`] runs of `f` (what comes with the value is the
/// median run's); the first failure, if any.
pub(crate) fn median<T>(mut f: impl FnMut() -> Result<T, String>) -> Result<T, String>
where
    T: Valued,
{
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        runs.push(f()?);
    }
    runs.sort_by(|a, b| a.value().total_cmp(&b.value()));
    Ok(runs.swap_remove(RUNS / 2))
}

/// A figure, alone or with a note.
pub(crate) trait Valued {
    fn value(&self) -> f64;
}

impl Valued for f64 {
    fn value(&self) -> f64 {
        *self
    }
}

impl Valued for (f64, String) {
    fn value(&self) -> f64 {
        self.0
    }
}

/// Longest a case may take before it is given up (a stall, not a figure).
pub(crate) const STALL: Duration = Duration::from_secs(60);

/// The kernel's side of a TUN device, and the user-space stack's address.
const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);

/// The TUN device's name inside each namespace.
const TUN: &str = "sbtun0";

/// Ports: the sink (kernel to stack), the kernel's sink (stack to kernel),
/// the echo server.
const SINK_PORT: u16 = 5001;
const KERNEL_SINK_PORT: u16 = 5002;
const ECHO_PORT: u16 = 5003;

/// The three directions, as the `direction` parameter names them.
const DIRS: [&str; 3] = ["kernel-to-stack", "stack-to-kernel", "request-response"];

pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
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

/// A network namespace this benchmark made, removed on drop.
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    /// `synack-bench-<pid>-<tag>`, with its loopback up.
    pub(crate) fn new(tag: &str) -> Result<Self, String> {
        let name = format!("synack-bench-{}-{tag}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `f` on a new thread inside the namespace (threads it spawns
    /// are inside too) and waits for it.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        in_ns(&self.name, f)
            .join()
            .map_err(|_| "a thread in the namespace panicked".to_string())?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Two namespaces joined by a veth pair: a (10.200.0.1), b (10.200.0.2).
pub(crate) struct VethPair {
    pub(crate) ns: [Netns; 2],
}

impl VethPair {
    pub(crate) fn new() -> Result<Self, String> {
        let pair = VethPair {
            ns: [Netns::new("a")?, Netns::new("b")?],
        };
        let (a, b) = (&pair.ns[0].name, &pair.ns[1].name);
        ip(&[
            "link", "add", "sbveth0", "netns", a, "type", "veth", "peer", "name", "sbveth1",
            "netns", b,
        ])?;
        for (ns, dev, addr) in [
            (a, "sbveth0", "10.200.0.1/24"),
            (b, "sbveth1", "10.200.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "mtu", &MTU.to_string(), "up"])?;
        }
        Ok(pair)
    }
}

/// Moves the calling thread into the named network namespace.
fn enter(ns: &str) -> Result<(), String> {
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
pub(crate) fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> std::thread::JoinHandle<Result<T, String>> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
}

pub(crate) fn join<T>(
    h: std::thread::JoinHandle<Result<T, String>>,
    who: &str,
) -> Result<T, String> {
    h.join().map_err(|_| format!("the {who} thread panicked"))?
}

pub(crate) fn gbit(bytes: u64, from: WallInstant, to: WallInstant) -> f64 {
    bytes as f64 * 8.0 / to.duration_since(from).as_secs_f64().max(1e-9) / 1e9
}

/// What a receiver got: the byte count and the time of the last read.
pub(crate) type Received = Result<(u64, WallInstant), String>;

/// Reads from `r` until `bytes` arrived or the stream ends; the count and
/// the time of the last read.
pub(crate) fn sink(mut r: impl Read, bytes: u64) -> Received {
    let mut buf = vec![0u8; 1 << 18];
    let mut got = 0u64;
    let mut last = WallInstant::now();
    while got < bytes {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got += n as u64;
                last = WallInstant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        }
    }
    Ok((got, last))
}

/// Writes `bytes` to `w` in 256 KiB writes.
pub(crate) fn source(mut w: impl Write, bytes: u64) -> Result<(), String> {
    let chunk = vec![0x5au8; 1 << 18];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])
            .map_err(|e| format!("write after {sent} bytes: {e}"))?;
        sent += n as u64;
    }
    Ok(())
}

/// The kernel as the sending end: connects to `to`, writes `bytes`,
/// half-closes. Returns the time just before the connect.
fn kernel_send(to: SocketAddr, bytes: u64) -> Result<WallInstant, String> {
    let t0 = WallInstant::now();
    let s = TcpStream::connect_timeout(&to, Duration::from_secs(10))
        .map_err(|e| format!("kernel connect to {to}: {e}"))?;
    s.set_write_timeout(Some(STALL)).ok();
    source(&s, bytes)?;
    s.shutdown(Shutdown::Write).ok();
    Ok(t0)
}

/// The kernel as the receiving end: a listener on `at`; the thread returned
/// accepts one connection and reads `bytes` from it.
pub(crate) fn kernel_sink(
    at: SocketAddr,
    bytes: u64,
) -> Result<std::thread::JoinHandle<Received>, String> {
    let l = TcpListener::bind(at).map_err(|e| format!("kernel bind {at}: {e}"))?;
    Ok(std::thread::spawn(move || {
        let (s, _) = l.accept().map_err(|e| format!("kernel accept: {e}"))?;
        s.set_read_timeout(Some(STALL)).ok();
        sink(&s, bytes)
    }))
}

/// The kernel as the client of an echo server at `to`: round trips per
/// second over `round_trips` [`MESSAGE`]-byte requests.
fn kernel_rr(to: SocketAddr, round_trips: u64) -> Result<f64, String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(10))
        .map_err(|e| format!("kernel connect to {to}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(STALL)).ok();
    let mut buf = [7u8; MESSAGE];
    let t0 = WallInstant::now();
    for i in 0..round_trips {
        s.write_all(&buf)
            .map_err(|e| format!("write, round trip {i}: {e}"))?;
        s.read_exact(&mut buf)
            .map_err(|e| format!("read, round trip {i}: {e}"))?;
    }
    Ok(round_trips as f64 / t0.elapsed().as_secs_f64())
}

pub(crate) fn checked(got: u64, bytes: u64) -> Result<(), String> {
    if got < bytes {
        return Err(format!("only {got} of {bytes} bytes arrived"));
    }
    Ok(())
}

/// Kernel to kernel over the veth pair: namespace `from` sends `bytes` to
/// the other one.
fn veth_bulk(pair: &VethPair, from: usize, bytes: u64) -> Result<f64, String> {
    let rx_ip = if from == 0 {
        [10, 200, 0, 2]
    } else {
        [10, 200, 0, 1]
    };
    let to = SocketAddr::from((rx_ip, SINK_PORT));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = in_ns(&pair.ns[1 - from].name, move || {
        let h = kernel_sink(to, bytes);
        let _ = ready_tx.send(());
        join(h?, "sink")
    });
    let _ = ready_rx.recv();
    let sender = in_ns(&pair.ns[from].name, move || kernel_send(to, bytes));
    let t0 = join(sender, "sender")?;
    let (got, t1) = join(receiver, "receiver")?;
    checked(got, bytes)?;
    Ok(gbit(bytes, t0, t1))
}

/// Kernel to kernel request/response over the veth pair: a client in a,
/// an echo server in b.
fn veth_rr(pair: &VethPair, round_trips: u64) -> Result<f64, String> {
    let at = SocketAddr::from(([10, 200, 0, 2], ECHO_PORT));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns(&pair.ns[1].name, move || {
        let l = TcpListener::bind(at).map_err(|e| format!("bind: {e}"))?;
        let _ = ready_tx.send(());
        let (mut s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(STALL)).ok();
        let mut buf = [0u8; MESSAGE];
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf).map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    });
    let _ = ready_rx.recv();
    let rate = join(
        in_ns(&pair.ns[0].name, move || kernel_rr(at, round_trips)),
        "client",
    );
    join(server, "server")?;
    rate
}

/// One figure and what qualifies it, or why it is missing.
type Fig = Result<(f64, String), String>;

/// The figures of one stack: the two directions, then (when asked for)
/// request/response.
type Figs = Vec<Fig>;

/// The MTU of the extra TUN rows: 64 KiB packets, what the kernel moves
/// over veth with its segmentation offloads (GSO/GRO) while the wire MTU
/// is 1500. They show what the per-packet costs of a TUN device at 1500
/// take away; the targets are not checked against them.
pub const JUMBO_MTU: usize = 65_535;

/// Sets the MTU of interface `name` (in the calling thread's namespace).
fn set_mtu(name: &str, mtu: usize) -> Result<(), String> {
    #[repr(C)]
    struct IfReqMtu {
        name: [libc::c_char; libc::IFNAMSIZ],
        mtu: libc::c_int,
        _pad: [u8; 20],
    }
    let mut req = IfReqMtu {
        name: [0; libc::IFNAMSIZ],
        mtu: mtu as libc::c_int,
        _pad: [0; 20],
    };
    for (o, b) in req
        .name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *o = b as libc::c_char;
    }
    // SAFETY: plain syscalls; `req` is a valid ifreq-sized struct that
    // outlives the ioctl, and the socket is closed before returning.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let rc = libc::ioctl(fd, libc::SIOCSIFMTU as _, &mut req);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc < 0 {
            return Err(format!("set the MTU of {name} to {mtu}: {err}"));
        }
    }
    Ok(())
}

fn kernel_veth(sizes: &Sizes, progress: &mut dyn Progress) -> Result<Figs, String> {
    let pair = VethPair::new()?;
    let a = median(|| veth_bulk(&pair, 0, sizes.tun_bytes));
    progress.advance(1.0 / 3.0);
    let b = median(|| veth_bulk(&pair, 1, sizes.tun_bytes));
    progress.advance(2.0 / 3.0);
    let c = median(|| veth_rr(&pair, sizes.tun_round_trips));
    let note = |r: Result<f64, String>| r.map(|v| (v, "kernel to kernel over veth".to_string()));
    Ok(vec![note(a), note(b), note(c)])
}

fn stack_addr(port: u16) -> SocketAddr {
    SocketAddr::from((STACK_IP, port))
}

fn kernel_addr(port: u16) -> SocketAddr {
    SocketAddr::from((KERNEL_IP, port))
}

/// Every address of the namespace: the kernel's sink binds there before
/// the TUN device (and its address) exists.
fn any_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}

/// synack on a TUN device, with the kernel of the same namespace on the
/// device's host side. Runs on a thread inside that namespace.
fn synack_tun(bytes: u64, round_trips: Option<u64>, mtu: usize) -> Result<Figs, String> {
    use synack::net::{TcpListener as SListener, TcpStream as SStream};
    let net = synack::Net::builder(TUN)
        .addr(IpAddr::V4(STACK_IP))
        .host(synack::ifconfig::HostAddr {
            addr: IpAddr::V4(KERNEL_IP),
            prefix: 24,
        })
        .config(synack::core::Config {
            msl: Duration::from_millis(500),
            send_buffer: BUFFER,
            recv_buffer: BUFFER,
            mtu,
            ..Default::default()
        })
        .start()
        .map_err(|e| e.to_string())?;
    if mtu != MTU {
        set_mtu(TUN, mtu)?;
    }
    // The driver's and the stack's counters over one case, as a note.
    let counters = || {
        let st = net.driver_stats();
        let rtx = net.with_stack(|s| s.stats().retransmissions);
        (st.rx_packets, st.tx_packets, rtx)
    };
    let note = |before: (u64, u64, u64), r: Result<f64, String>| {
        let after = counters();
        r.map(|v| {
            (
                v,
                format!(
                    "over TUN; a run: {} packets in, {} out, {} retransmitted",
                    (after.0 - before.0) / RUNS as u64,
                    (after.1 - before.1) / RUNS as u64,
                    (after.2 - before.2) / RUNS as u64
                ),
            )
        })
    };

    // Kernel to synack: a sink on synack, the kernel writes.
    let before = counters();
    let down = bulk_case(bytes, || {
        let l = SListener::bind(&net, stack_addr(SINK_PORT)).map_err(|e| e.to_string())?;
        let rx = std::thread::spawn(move || {
            let (s, _) = l
                .accept_timeout(Duration::from_secs(10))
                .map_err(|e| format!("synack accept: {e}"))?;
            s.set_read_timeout(Some(STALL)).ok();
            sink(&s, bytes)
        });
        let t0 = kernel_send(stack_addr(SINK_PORT), bytes);
        let (got, t1) = join(rx, "synack sink")?;
        let t0 = t0?;
        checked(got, bytes)?;
        Ok(gbit(bytes, t0, t1))
    });

    let down = note(before, down);

    // synack to the kernel: a kernel sink, synack connects and writes.
    let before = counters();
    let up = bulk_case(bytes, || {
        let rx = kernel_sink(any_addr(KERNEL_SINK_PORT), bytes)?;
        let t0 = WallInstant::now();
        let sent =
            SStream::connect_timeout(&net, kernel_addr(KERNEL_SINK_PORT), Duration::from_secs(10))
                .map_err(|e| format!("synack connect: {e}"))
                .and_then(|s| {
                    s.set_write_timeout(Some(STALL)).ok();
                    source(&s, bytes)?;
                    s.shutdown(Shutdown::Write).map_err(|e| e.to_string())
                });
        let (got, t1) = join(rx, "kernel sink")?;
        sent?;
        checked(got, bytes)?;
        Ok(gbit(bytes, t0, t1))
    });

    let up = note(before, up);

    let Some(round_trips) = round_trips else {
        net.shutdown();
        return Ok(vec![down, up]);
    };

    // Request/response: an echo server on synack, a kernel client.
    let before = counters();
    let rr = median(|| {
        let l = SListener::bind(&net, stack_addr(ECHO_PORT)).map_err(|e| e.to_string())?;
        let server = std::thread::spawn(move || {
            let (mut s, _) = l
                .accept_timeout(Duration::from_secs(10))
                .map_err(|e| format!("synack accept: {e}"))?;
            s.set_nodelay(true).ok();
            s.set_read_timeout(Some(STALL)).ok();
            let mut buf = [0u8; MESSAGE];
            while s.read_exact(&mut buf).is_ok() {
                s.write_all(&buf).map_err(|e| format!("echo write: {e}"))?;
            }
            Ok(())
        });
        let rate = kernel_rr(stack_addr(ECHO_PORT), round_trips);
        join(server, "synack echo")?;
        rate
    });

    let rr = note(before, rr);
    net.shutdown();
    Ok(vec![down, up, rr])
}

/// Waits until `fd` is readable or `timeout` passes.
fn wait_readable(fd: i32, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `pfd` and `ts` outlive the call.
    unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
}

/// smoltcp on a TUN device: the device, the interface, one socket.
struct SmolTun {
    dev: TunTapInterface,
    iface: Interface,
    sockets: SocketSet<'static>,
    packets_in: u64,
}

impl SmolTun {
    /// Opens the device (creating it), gives its host side the kernel's
    /// address and brings it up.
    ///
    /// At `mtu`: smoltcp reads the device's MTU when it opens it, so for
    /// another MTU than the default the device is opened, given the MTU,
    /// and handed to smoltcp again by descriptor.
    fn new(mtu: usize) -> Result<Self, String> {
        let mut dev =
            TunTapInterface::new(TUN, Medium::Ip).map_err(|e| format!("TUN {TUN}: {e}"))?;
        if mtu != MTU {
            set_mtu(TUN, mtu)?;
            // SAFETY: dup of a descriptor `dev` holds open; the copy is
            // owned (and closed) by the new TunTapInterface.
            let fd = unsafe { libc::dup(dev.as_raw_fd()) };
            if fd < 0 {
                return Err(format!("dup: {}", std::io::Error::last_os_error()));
            }
            dev = TunTapInterface::from_fd(fd, Medium::Ip, mtu)
                .map_err(|e| format!("TUN {TUN}: {e}"))?;
        }
        synack::ifconfig::configure(
            TUN,
            synack::ifconfig::HostAddr {
                addr: IpAddr::V4(KERNEL_IP),
                prefix: 24,
            },
        )
        .map_err(|e| format!("configure {TUN}: {e}"))?;
        let mut cfg = IfaceConfig::new(HardwareAddress::Ip);
        cfg.random_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed_7a11, |d| d.as_nanos() as u64);
        let mut iface = Interface::new(cfg, &mut dev, SmolInstant::now());
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(STACK_IP), 24));
        });
        Ok(SmolTun {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            packets_in: 0,
        })
    }

    /// One turn of the loop: wait for a packet or smoltcp's next deadline
    /// (at most 10 ms, to look at `stop`), take in up to [`BATCH`] packets,
    /// let `app` use the socket, send what is queued. Returns what `app`
    /// returned (whether it is done).
    fn turn(
        &mut self,
        h: SocketHandle,
        app: &mut impl FnMut(&mut tcp::Socket<'static>) -> bool,
    ) -> bool {
        let now = SmolInstant::now();
        let delay = self
            .iface
            .poll_delay(now, &self.sockets)
            .map_or(Duration::from_millis(10), |d| {
                Duration::from_micros(d.total_micros()).min(Duration::from_millis(10))
            });
        if !delay.is_zero() {
            wait_readable(self.dev.as_raw_fd(), delay);
        }
        let now = SmolInstant::now();
        for _ in 0..BATCH {
            match self
                .iface
                .poll_ingress_single(now, &mut self.dev, &mut self.sockets)
            {
                smoltcp::iface::PollIngressSingleResult::None => break,
                _ => self.packets_in += 1,
            }
        }
        let done = app(self.sockets.get_mut::<tcp::Socket>(h));
        while self
            .iface
            .poll_egress(now, &mut self.dev, &mut self.sockets)
            == PollResult::SocketStateChanged
        {}
        done
    }
}

/// What the smoltcp thread does.
#[derive(Clone, Copy)]
enum SmolRole {
    /// Listen on [`SINK_PORT`], read `bytes`.
    Sink(u64),
    /// Connect to the kernel's sink, write `bytes`, close.
    Source(u64),
    /// Listen on [`ECHO_PORT`], echo until the peer closes.
    Echo,
}

/// The smoltcp thread: sets up, says it is ready, runs `role` until it is
/// done, `stop` is set, or [`STALL`] passes. Returns the time the last byte
/// was read (for [`SmolRole::Sink`]).
fn smoltcp_thread(
    role: SmolRole,
    mtu: usize,
    ready: Sender<Result<(), String>>,
    stop: Arc<AtomicBool>,
) -> Result<(Option<(u64, WallInstant)>, u64), String> {
    let mut st = match SmolTun::new(mtu) {
        Ok(st) => st,
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            return Err(e);
        }
    };
    let mut sock = socket(BUFFER);
    match role {
        SmolRole::Sink(_) => sock.listen(SINK_PORT).map_err(|e| e.to_string())?,
        SmolRole::Echo => {
            sock.set_nagle_enabled(false);
            sock.listen(ECHO_PORT).map_err(|e| e.to_string())?
        }
        SmolRole::Source(_) => sock
            .connect(
                st.iface.context(),
                endpoint(kernel_addr(KERNEL_SINK_PORT)),
                49152,
            )
            .map_err(|e| e.to_string())?,
    }
    let h = st.sockets.add(sock);
    let _ = ready.send(Ok(()));
    let until = WallInstant::now() + STALL;
    let mut got = 0u64;
    let mut last = None;
    let mut sent = 0u64;
    let chunk = vec![0x5au8; 1 << 16];
    let mut echo = [0u8; 4096];
    let mut sink_buf = vec![0u8; 1 << 18];
    let mut app = |s: &mut tcp::Socket<'static>| match role {
        SmolRole::Sink(bytes) => {
            // Copied out, as the synack and kernel sinks do.
            while s.can_recv() {
                match s.recv_slice(&mut sink_buf) {
                    Ok(n) if n > 0 => got += n as u64,
                    _ => break,
                }
            }
            if got >= bytes && last.is_none() {
                last = Some((got, WallInstant::now()));
            }
            last.is_some()
        }
        SmolRole::Source(bytes) => {
            while sent < bytes && s.can_send() {
                let n = (bytes - sent).min(chunk.len() as u64) as usize;
                match s.send_slice(&chunk[..n]) {
                    Ok(k) if k > 0 => sent += k as u64,
                    _ => break,
                }
            }
            if sent >= bytes && s.state() == tcp::State::Established {
                s.close();
            }
            false
        }
        SmolRole::Echo => {
            while s.can_recv() && s.send_capacity() - s.send_queue() >= echo.len() {
                match s.recv_slice(&mut echo) {
                    Ok(n) if n > 0 => {
                        let _ = s.send_slice(&echo[..n]);
                    }
                    _ => break,
                }
            }
            if s.state() == tcp::State::CloseWait && s.recv_queue() == 0 {
                s.close();
            }
            false
        }
    };
    while !stop.load(Ordering::SeqCst) {
        if WallInstant::now() > until {
            return Err(format!("smoltcp stalled (gave up after {STALL:?})"));
        }
        if st.turn(h, &mut app) {
            break;
        }
    }
    // A few more turns so that the last ACKs and the FIN go out.
    for _ in 0..4 {
        st.turn(h, &mut |_| false);
    }
    Ok((last, st.packets_in))
}

/// smoltcp on a TUN device in the same roles as synack. Runs on a thread
/// inside the namespace; the smoltcp loop runs on a thread of its own.
fn smoltcp_tun(bytes: u64, round_trips: Option<u64>, mtu: usize) -> Result<Figs, String> {
    let note = |n: u64| format!("over TUN; a run: {n} packets in");
    let start = |role: SmolRole| {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let h = std::thread::spawn(move || smoltcp_thread(role, mtu, tx, stop2));
        match rx.recv() {
            Ok(Ok(())) => Ok((h, stop)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(join(h, "smoltcp")
                .err()
                .unwrap_or_else(|| "smoltcp failed to start".into())),
        }
    };

    // Kernel to smoltcp.
    let down = bulk_case(bytes, || {
        let (h, _stop) = start(SmolRole::Sink(bytes))?;
        let t0 = kernel_send(stack_addr(SINK_PORT), bytes);
        let (last, n) = join(h, "smoltcp")?;
        let t0 = t0?;
        let (got, t1) = last.ok_or("smoltcp read nothing")?;
        checked(got, bytes)?;
        Ok((gbit(bytes, t0, t1), note(n)))
    });

    // smoltcp to the kernel: the kernel sink listens before smoltcp connects.
    let up = bulk_case(bytes, || {
        let rx = kernel_sink(any_addr(KERNEL_SINK_PORT), bytes)?;
        let t0 = WallInstant::now();
        let (h, stop) = start(SmolRole::Source(bytes))?;
        let r = join(rx, "kernel sink");
        stop.store(true, Ordering::SeqCst);
        let (_, n) = join(h, "smoltcp")?;
        let (got, t1) = r?;
        checked(got, bytes)?;
        Ok((gbit(bytes, t0, t1), note(n)))
    });

    let Some(round_trips) = round_trips else {
        return Ok(vec![down, up]);
    };

    // Request/response: echo server on smoltcp, kernel client.
    let rr = median(|| {
        let (h, stop) = start(SmolRole::Echo)?;
        let rate = kernel_rr(stack_addr(ECHO_PORT), round_trips);
        // Let smoltcp see the client's FIN, then stop it.
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::SeqCst);
        let (_, n) = join(h, "smoltcp")?;
        Ok((rate?, note(n)))
    });
    Ok(vec![down, up, rr])
}

/// A bulk case's median, or (for `bytes` 0: request/response only) a
/// figure skipped.
fn bulk_case<T: Valued>(bytes: u64, f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    if bytes == 0 {
        return Err("not measured (request/response only)".into());
    }
    median(f)
}

/// Only the request/response cases (kernel over veth, synack and smoltcp
/// over TUN), `rounds` times each, alternating the stacks: the figures of
/// every round, for the spread (`examples/tun_rr.rs`).
pub fn rr_rounds(round_trips: u64, rounds: usize) -> Vec<Figure> {
    let mut out = Vec::new();
    if let Some(why) = unavailable() {
        out.push(Figure::skipped("tun", "synack", "req/s", &why));
        return out;
    }
    let rr = |stack: &'static str, r: Result<Figs, String>| {
        let f = match r.map(|mut v| v.pop()) {
            Ok(Some(Ok((v, note)))) => Figure::new("tun", stack, v, "req/s").note(note),
            Ok(Some(Err(e))) | Err(e) => Figure::skipped("tun", stack, "req/s", &e),
            Ok(None) => Figure::skipped("tun", stack, "req/s", "no figure"),
        };
        f.param("direction", "request-response")
            .param("round_trips", round_trips)
    };
    for _ in 0..rounds {
        let k = VethPair::new().map(|pair| {
            let c = median(|| veth_rr(&pair, round_trips));
            vec![c.map(|v| (v, "kernel to kernel over veth".to_string()))]
        });
        out.push(rr("kernel", k));
        let s = user_space("synack", move || synack_tun(0, Some(round_trips), MTU));
        out.push(rr("synack", s));
        let m = user_space("smoltcp", move || smoltcp_tun(0, Some(round_trips), MTU));
        out.push(rr("smoltcp", m));
    }
    out
}

/// Runs `f` (a user-space stack's three cases) in a namespace of its own.
fn user_space(
    tag: &str,
    f: impl FnOnce() -> Result<Figs, String> + Send + 'static,
) -> Result<Figs, String> {
    let ns = Netns::new(tag)?;
    ns.run(f)
}

/// The three rows of one stack.
/// The rows of one stack at one MTU: both directions, and
/// request/response when `with_rr`.
fn rows(
    out: &mut Vec<Figure>,
    stack: &'static str,
    r: Result<Figs, String>,
    mtu: usize,
    with_rr: bool,
    sizes: &Sizes,
) {
    let n = if with_rr { 3 } else { 2 };
    let units = ["Gbit/s", "Gbit/s", "req/s"];
    let figs: Figs = match r {
        Ok(figs) => figs,
        Err(e) => vec![Err(e); n],
    };
    for ((dir, unit), v) in DIRS.iter().zip(units).zip(figs).take(n) {
        let f = match v {
            Ok((v, note)) => Figure::new("tun", stack, v, unit).note(note),
            Err(e) => Figure::skipped("tun", stack, unit, &e),
        };
        let f = f.param("direction", *dir).param("mtu", mtu);
        out.push(if unit == "req/s" {
            f.param("round_trips", sizes.tun_round_trips)
        } else {
            f.param("bytes", sizes.tun_bytes)
        });
    }
}

/// Why this benchmark cannot run here, if it cannot.
pub(crate) fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (it makes its own network namespaces)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("no `ip` command (iproute2)".into()),
    }
}

/// Every TUN case: the kernel's over veth, then synack's and smoltcp's
/// over TUN.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress) -> Vec<Figure> {
    let mut out = Vec::new();
    if let Some(why) = unavailable() {
        progress.say(&format!("tun: skipped: {why}"));
        for stack in ["kernel", "synack", "smoltcp"] {
            rows(&mut out, stack, Err(why.clone()), MTU, true, sizes);
        }
        for stack in ["synack", "smoltcp"] {
            rows(&mut out, stack, Err(why.clone()), JUMBO_MTU, false, sizes);
        }
        return out;
    }
    let (bytes, rts) = (sizes.tun_bytes, sizes.tun_round_trips);

    progress.case("tun kernel veth");
    let k = kernel_veth(sizes, progress);
    rows(&mut out, "kernel", k, MTU, true, sizes);

    progress.case("tun synack");
    let s = user_space("synack", move || synack_tun(bytes, Some(rts), MTU));
    rows(&mut out, "synack", s, MTU, true, sizes);

    progress.case("tun smoltcp");
    let m = user_space("smoltcp", move || smoltcp_tun(bytes, Some(rts), MTU));
    rows(&mut out, "smoltcp", m, MTU, true, sizes);

    progress.case("tun synack jumbo");
    let s = user_space("synack-jumbo", move || synack_tun(bytes, None, JUMBO_MTU));
    rows(&mut out, "synack", s, JUMBO_MTU, false, sizes);

    progress.case("tun smoltcp jumbo");
    let m = user_space("smoltcp-jumbo", move || smoltcp_tun(bytes, None, JUMBO_MTU));
    rows(&mut out, "smoltcp", m, JUMBO_MTU, false, sizes);
    out
}
