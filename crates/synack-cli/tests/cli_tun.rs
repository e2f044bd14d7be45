//! `synack echo-server` and `synack connect` driven as processes inside a
//! network namespace made for each test, against the kernel's tools (`nc`,
//! `python3 -m http.server`). Need root and /dev/net/tun; elsewhere they
//! print `skipped: <why>`.
#![cfg(target_os = "linux")]

#[path = "../../synack/tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{have, Netns};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// A child process killed (if still running) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child with a deadline; returns its exit code.
fn wait_exit(p: &mut Proc, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = p.0.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn host_addr_ready(ns: &Netns) -> bool {
    let out = ns.run("ip", &["addr", "show", "dev", "syn0"]);
    String::from_utf8_lossy(&out.stdout).contains("10.0.0.1/24")
}

/// Runs a command in the namespace with `input` on stdin, bounded in time.
fn run_with_input(ns: &Netns, program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = ns
        .command("timeout")
        .arg("20")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn echo_server_answers_nc_and_exits_on_sigterm() {
    let Some(ns) = Netns::new("cli_echo_server_nc") else {
        return;
    };
    if !have("nc", "-h") {
        println!("skipped: cli_echo_server_nc: no nc (netcat-openbsd)");
        return;
    }
    let trace = std::env::temp_dir().join(format!("synack-cli-echo-{}.jsonl", std::process::id()));
    let mut server = Proc(
        ns.command(BIN)
            .args(["echo-server", "--tun", "syn0", "--addr", "10.0.0.2"])
            .args(["--host", "10.0.0.1/24", "--trace"])
            .arg(&trace)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the host address", || host_addr_ready(&ns));
    let out = run_with_input(
        &ns,
        "nc",
        &["-N", "-w", "5", "10.0.0.2", "7"],
        b"hello synack\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello synack\n",
        "{out:?}"
    );
    // SIGTERM: it closes and exits 0.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut server, Duration::from_secs(10)), 0);
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    assert!(text.contains("\"from\":\"LISTEN\",\"to\":\"SYN-RECEIVED\""));
    assert!(text.contains("\"from\":\"LAST-ACK\",\"to\":\"CLOSED\""));
}

/// A client for the host's own TCP: sends stdin to 10.0.0.2:7 while it
/// reads the echo, half-closes at the end, prints what came back.
const ECHO_CLIENT: &str = "
import socket, sys, threading
s = socket.create_connection(('10.0.0.2', 7), timeout=10)
data = sys.stdin.buffer.read()
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=send).start()
out = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
";

/// The TCP payload lengths of the IPv4 packets of a pcap capture
/// (LINKTYPE_RAW), from each packet's own headers.
fn pcap_payloads(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let p = &bytes[at + 16..(at + 16 + incl).min(bytes.len())];
        at += 16 + incl;
        if p.len() < 40 || p[0] >> 4 != 4 || p[9] != 6 {
            continue;
        }
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let doff = usize::from(p[ihl + 12] >> 4) * 4;
        out.push(total.saturating_sub(ihl + doff));
    }
    out
}

/// Runs `echo-server` with offloads off and `extra` flags, calls `running`
/// once it is up, echoes 512 KiB from the kernel through it (checked),
/// stops it (exit 0 checked) and returns the TCP payload sizes of its
/// capture.
fn echo_bulk_payloads(ns: &Netns, tag: &str, extra: &[&str], running: impl FnOnce()) -> Vec<usize> {
    let pcap = std::env::temp_dir().join(format!("synack-cli-{tag}-{}.pcap", std::process::id()));
    let mut server = Proc(
        ns.command(BIN)
            .args(["echo-server", "--tun", "syn0", "--addr", "10.0.0.2"])
            .args(["--host", "10.0.0.1/24", "--offload", "off"])
            .args(extra)
            .arg("--pcap")
            .arg(&pcap)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the host address", || host_addr_ready(ns));
    running();
    let input = common::pattern(512 * 1024, tag.len() as u8);
    let out = run_with_input(ns, "python3", &["-c", ECHO_CLIENT], &input);
    assert!(
        out.stdout == input,
        "echo differs: {} bytes back",
        out.stdout.len()
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut server, Duration::from_secs(10)), 0);
    let bytes = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_file(&pcap);
    let payloads = pcap_payloads(&bytes);
    let data: usize = payloads.iter().sum();
    // Every byte echoed went through the device twice (in and out).
    assert!(data >= 2 * input.len(), "{data} bytes of payload captured");
    payloads
}

#[test]
fn echo_server_offload_off_puts_only_wire_sized_segments_on_the_device() {
    let Some(ns) = Netns::new("cli_offload_off") else {
        return;
    };
    if !have("python3", "--version") {
        println!("skipped: cli_offload_off: no python3");
        return;
    }
    // Enough bulk both ways that, with offloads, the kernel would merge
    // segments into super-segments on the device.
    let payloads = echo_bulk_payloads(&ns, "offload", &[], || {});
    // The MSS over a 1500-byte MTU: 1500 - 20 (IPv4) - 20 (TCP).
    let largest = payloads.iter().copied().max().unwrap_or(0);
    assert!(
        largest <= 1460,
        "a {largest}-byte segment crossed the device"
    );
}

/// `--mtu 9000`: the device gets that MTU before the stack starts, and the
/// stack's MSS follows it, so segments larger than a 1500-byte link's
/// cross the device (offloads off: each packet is one wire segment).
#[test]
fn echo_server_mtu_sets_the_device_and_the_mss() {
    let Some(ns) = Netns::new("cli_mtu_9000") else {
        return;
    };
    if !have("python3", "--version") {
        println!("skipped: cli_mtu_9000: no python3");
        return;
    }
    let payloads = echo_bulk_payloads(&ns, "mtu", &["--mtu", "9000"], || {
        let out = ns
            .command("ip")
            .args(["link", "show", "syn0"])
            .output()
            .unwrap();
        let link = String::from_utf8_lossy(&out.stdout);
        assert!(link.contains("mtu 9000"), "{link}");
    });
    let largest = payloads.into_iter().max().unwrap_or(0);
    // 9000 - 20 (IPv4) - 20 (TCP) is the MSS both ends announce.
    assert!(
        (1461..=8960).contains(&largest),
        "largest segment {largest} bytes"
    );
}

/// A bad `--mtu` is one clear line and a failure, before any device is
/// touched (so no root is needed).
#[test]
fn bad_mtu_is_one_clear_line() {
    let out = std::process::Command::new(BIN)
        .args([
            "echo-server",
            "--tun",
            "syn-nope0",
            "--addr",
            "10.0.0.2",
            "--mtu",
            "100",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad --mtu 100: 576 to 65535 bytes"), "{err}");
}

#[test]
fn connect_fetches_a_page_from_python_http_server() {
    let Some(ns) = Netns::new("cli_connect_http") else {
        return;
    };
    if !have("python3", "--version") {
        println!("skipped: cli_connect_http: no python3");
        return;
    }
    // A persistent device, so that the server can bind before synack runs.
    ns.ip(&["tuntap", "add", "dev", "syn0", "mode", "tun"]);
    ns.ip(&["addr", "add", "10.0.0.1/24", "dev", "syn0"]);
    ns.ip(&["link", "set", "syn0", "up"]);
    let dir = std::env::temp_dir().join(format!("synack-cli-www-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>served by the kernel</p>\n").unwrap();
    let _http = Proc(
        ns.command("python3")
            .args([
                "-m",
                "http.server",
                "8000",
                "--bind",
                "10.0.0.1",
                "--directory",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("http.server listening", || {
        let out = ns.run("ss", &["-ltn"]);
        String::from_utf8_lossy(&out.stdout).contains("10.0.0.1:8000")
    });
    let out = run_with_input(
        &ns,
        BIN,
        &[
            "connect",
            "--tun",
            "syn0",
            "--addr",
            "10.0.0.2",
            "--msl",
            "0.5",
            "10.0.0.1:8000",
        ],
        b"GET / HTTP/1.0\r\nHost: 10.0.0.1\r\n\r\n",
    );
    let _ = std::fs::remove_dir_all(&dir);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    assert!(body.contains("<p>served by the kernel</p>"), "{body}");
}

#[test]
fn connect_refused_prints_one_line_and_fails() {
    let Some(ns) = Netns::new("cli_connect_refused") else {
        return;
    };
    let out = run_with_input(
        &ns,
        BIN,
        &[
            "connect",
            "--tun",
            "syn0",
            "--addr",
            "10.0.0.2",
            "--host",
            "10.0.0.1/24",
            "10.0.0.1:9",
        ],
        b"",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

#[test]
fn bad_device_is_one_clear_line() {
    let Some(ns) = Netns::new("cli_bad_device") else {
        return;
    };
    let out = ns
        .command(BIN)
        .args(["echo-server", "--tun", "a-name-far-too-long-for-linux"])
        .args(["--addr", "10.0.0.2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad interface name"), "{err}");
}

/// A SYN flooder inside the namespace: `N` SYNs to 10.0.0.2:7 over `SECS`
/// seconds, written through a raw socket (IP_HDRINCL) from sources in the
/// TUN's subnet that nothing answers (10.0.0.100-250: the kernel owns none
/// of them and does not forward, so the SYN-ACKs die there). Each SYN looks
/// like a Linux client's: MSS, window scale, SACK-Permitted, timestamps.
const SYN_FLOOD: &str = "
import random, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
n, secs = int(sys.argv[1]), float(sys.argv[2])
r = random.Random(12)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton('10.0.0.2')
t0 = time.time()
for i in range(n):
    src = socket.inet_aton('10.0.0.%d' % r.randint(100, 250))
    opts = struct.pack('!BBH', 2, 4, 1460) + bytes([1, 3, 3, 7, 4, 2, 8, 10])
    opts += struct.pack('!II', r.getrandbits(32), 0)
    tcp = struct.pack('!HHIIBBHHH', r.randint(1024, 65535), 7, r.getrandbits(32), 0,
                      10 << 4, 0x02, 64240, 0, 0) + opts
    c = csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i & 0xffff, 0, 64, 6, 0, src, dst)
    raw.sendto(ip + tcp, ('10.0.0.2', 0))
    wait = t0 + secs * (i + 1) / n - time.time()
    if wait > 0:
        time.sleep(wait)
";

/// A kernel client that must connect within a second (no SYN
/// retransmission allowed) and have 4 KiB echoed; prints the connect time.
const QUICK_ECHO: &str = "
import socket, time
t = time.time()
s = socket.create_connection(('10.0.0.2', 7), timeout=1.0)
took = time.time() - t
s.settimeout(5)
data = bytes(range(256)) * 16
s.sendall(data)
out = bytearray()
while len(out) < len(data):
    b = s.recv(65536)
    if not b:
        break
    out += b
assert out == data, len(out)
print('%.4f' % took)
";

/// VmRSS of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 12 (RFC 4987): 5,000 spoofed SYNs at `synack echo-server` over a
/// TUN device. A kernel client connects within a second and is echoed
/// during the flood and right after it (the SYN queue is full of strangers;
/// SYN cookies answer the rest), and the server's RSS grows by less than
/// 64 MiB.
#[test]
fn echo_server_serves_through_a_syn_flood() {
    let Some(ns) = Netns::new("cli_syn_flood") else {
        return;
    };
    if !have("python3", "--version") {
        println!("skipped: cli_syn_flood: no python3");
        return;
    }
    let server = Proc(
        ns.command(BIN)
            .args(["echo-server", "--tun", "syn0", "--addr", "10.0.0.2"])
            .args(["--host", "10.0.0.1/24"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the host address", || host_addr_ready(&ns));
    let quick_echo = || {
        let out = ns.run("python3", &["-c", QUICK_ECHO]);
        assert!(out.status.success(), "kernel client failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before_echo = quick_echo();
    let pid = server.0.id();
    let rss_before = rss_kib(pid);
    let mut flood = Proc(
        ns.command("python3")
            .args(["-c", SYN_FLOOD, "5000", "2.0"])
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(700));
    let during = quick_echo();
    assert_eq!(wait_exit(&mut flood, Duration::from_secs(30)), 0, "flooder");
    let after = quick_echo();
    let rss_after = rss_kib(pid);
    println!(
        "cli_syn_flood: connect {before_echo} s before, {during} s during, {after} s after; \
         RSS {rss_before} KiB -> {rss_after} KiB"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// `Threads` and `VmRSS` (KiB) of a process, from /proc/PID/status.
fn threads_and_rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("Threads:"), field("VmRSS:"))
}

/// Raises this process's open-file limit to at least `n` descriptors.
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain queries and settings of our own limits.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.max(n);
        lim.rlim_max = lim.rlim_cur;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// Connections per kernel source address: well inside Linux's default
/// ephemeral range (32768-60999).
const PER_SOURCE: usize = 25_000;

/// The kernel opens `SYNACK_IDLE_CONNS` (default 2,000) connections to
/// echo-server, one after the other, and holds them idle: the server's
/// thread count stays what it was with none (prints conn/s and RSS per
/// connection; only the thread count is asserted). Above 25,000 the
/// client adds source addresses to the host side of the device; the one
/// client process needs an open-file limit above N (runs of 100,000 were
/// made with several client processes, see the report of issue 15).
#[test]
fn echo_server_holds_idle_connections_on_a_fixed_number_of_threads() {
    let Some(ns) = Netns::new("cli_idle_conns") else {
        return;
    };
    let n: usize = std::env::var("SYNACK_IDLE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let mut server = Proc(
        ns.command(BIN)
            .args(["echo-server", "--tun", "syn0", "--addr", "10.0.0.2"])
            .args(["--host", "10.0.0.1/24"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the host address", || host_addr_ready(&ns));
    let sources: Vec<std::net::Ipv4Addr> = (0..n.div_ceil(PER_SOURCE))
        .map(|k| std::net::Ipv4Addr::new(10, 0, 0, if k == 0 { 1 } else { 10 + k as u8 }))
        .collect();
    for a in &sources[1..] {
        ns.ip(&["addr", "add", &format!("{a}/24"), "dev", "syn0"]);
    }
    raise_nofile(n as u64 + 1_000);
    // One echo first, so that the server is warm and its figures settled.
    let before = ns.enter(|| {
        let mut s = std::net::TcpStream::connect("10.0.0.2:7").unwrap();
        s.write_all(b"warm").unwrap();
        let mut back = [0u8; 4];
        std::io::Read::read_exact(&mut s, &mut back).unwrap();
        assert_eq!(&back, b"warm");
        threads_and_rss(server.0.id())
    });
    let started = Instant::now();
    let held = ns.enter(|| {
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            let src = sources[i / PER_SOURCE];
            held.push(socket_from(src));
            if (i + 1) % 10_000 == 0 {
                println!("{} connections after {:?}", i + 1, started.elapsed());
            }
        }
        held
    });
    let secs = started.elapsed().as_secs_f64();
    // The last handshakes' final ACKs may still be on their way.
    std::thread::sleep(Duration::from_millis(300));
    let after = threads_and_rss(server.0.id());
    println!(
        "echo-server: {n} idle kernel connections: {:.0} conn/s, threads {} -> {}, \
         RSS {} KiB -> {} KiB ({:.0} bytes per connection)",
        n as f64 / secs,
        before.0,
        after.0,
        before.1,
        after.1,
        (after.1.saturating_sub(before.1) * 1024) as f64 / n as f64
    );
    assert_eq!(after.0, before.0, "threads grew with the connections");
    // They still echo.
    let mut last = held.into_iter().last().unwrap();
    last.write_all(b"still here").unwrap();
    let mut back = [0u8; 10];
    std::io::Read::read_exact(&mut last, &mut back).unwrap();
    assert_eq!(&back, b"still here");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut server, Duration::from_secs(30)), 0);
}

/// A kernel connection to 10.0.0.2:7 from `src` (an ephemeral port).
fn socket_from(src: std::net::Ipv4Addr) -> std::net::TcpStream {
    // SAFETY: a plain syscall; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor we own from here on.
    let stream = unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let local = sin(src, 0);
    let remote = sin(std::net::Ipv4Addr::new(10, 0, 0, 2), 7);
    let one: libc::c_int = 1;
    // SAFETY: valid sockaddr_in values of the length given, on our socket.
    unsafe {
        // The port is chosen at connect, by the whole 4-tuple: bind's own
        // search for a free port slows down as the range fills.
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let rc = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "bind {src}: {}", std::io::Error::last_os_error());
        let rc = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
    }
    stream
}
