//! Idle: `synack echo-server` holding many idle connections from the
//! kernel, over TUN (needs root: it makes its own network namespace and
//! removes it afterwards; no packet leaves it).
//!
//! The `synack` binary is re-executed as `synack echo-server` inside a
//! namespace this benchmark makes (it creates the TUN device there and
//! gives the device's host side 10.202.0.1/16); the kernel of that namespace
//! is the client. The client opens [`Sizes::idle_connections`] connections
//! with non-blocking connects, at most [`WINDOW`] in flight, each bound to
//! one of several source addresses (25,000 each: one address has
//! about 64,000 ports, fewer than the 100,000 connections) and an explicit
//! port, and then sends nothing. The kernel's ends are descriptors, so they
//! are spread over client processes of at most [`PER_CLIENT`] each (the
//! bench binary re-executed with [`CLIENT_ENV`] set), under a hard
//! `RLIMIT_NOFILE` that may not be raisable. echo-server needs no
//! descriptor per connection (its connections are the stack's, in its own
//! memory): the run reports how many it has open.
//!
//! Four figures of the echo-server process:
//!
//! - **conn/s**: connections the kernel opened per second (the word go to
//!   every client's last connect done), with the SYNs the kernel had to
//!   send again and the packets dropped at the device meanwhile.
//! - **bytes/conn**: its `VmRSS` once all are open (and a settle of
//!   [`SETTLE`]) minus its `VmRSS` before the first, over the count. No data
//!   has crossed, so no buffer holds any: this is the cost of the
//!   connection itself (the stack's state, the task, the driver's waiters).
//! - **threads**: its `Threads` once all are open.
//! - **ms**: the CPU time (user and system, all its threads) it used over
//!   [`IDLE`] of idleness after that.
//!
//! Afterwards every connection sends one byte and must get it back: the
//! check that each was accepted by the server, not only handshaken by the
//! stack. A run that fails it reports no figures.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::{Figure, Progress};
use crate::tun::{in_ns, ip, join, unavailable, Netns};
use crate::Sizes;

/// The name of the benchmark (and of its rows).
const BENCH: &str = "idle";

/// The TUN device echo-server creates in the namespace.
const TUN: &str = "sbidle0";

/// echo-server's address (the stack's).
const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 2);

/// The host side of the device: the kernel's first address.
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 1);

/// The port echo-server listens on.
const PORT: u16 = 7;

/// Connections per source address, on ports
/// `FIRST_PORT..FIRST_PORT + PER_ADDR`.
const PER_ADDR: usize = 25_000;

/// The first source port of each address.
const FIRST_PORT: u16 = 20_000;

/// Connects in flight at most: under the stack's SYN queue (1,024 by
/// default) and the TUN device's queue (500 packets), so that neither
/// drops a SYN and the rate is the stack's, not a retransmission timer's.
pub const WINDOW: usize = 256;

/// How long the connections are held idle while the CPU time is measured.
pub const IDLE: Duration = Duration::from_secs(10);

/// A pause after the last connect, before the RSS is read: the server
/// accepts (and spawns the task of) the last connections.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Longest a phase may go without progress before the run is given up.
const STALL: Duration = Duration::from_secs(60);

/// What one run measured.
struct Measured {
    rate: f64,
    /// SYNs the kernel sent again while opening (a SYN or its answer lost).
    syns_resent: u64,
    /// Packets the kernel dropped at the TUN device while opening (its
    /// queue full: the stack's driver behind).
    tun_drops: u64,
    bytes_per_conn: f64,
    threads: u64,
    cpu_ms: f64,
    fds: usize,
    rss_before: u64,
    rss_after: u64,
}

/// The rows of the benchmark: one run at `sizes.idle_connections`.
/// `exe` is the `synack` binary to run as echo-server.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress, exe: Option<&Path>) -> Vec<Figure> {
    let n = sizes.idle_connections;
    let why = unavailable().or_else(|| {
        exe.is_none()
            .then(|| "needs the synack binary to run echo-server".to_string())
    });
    progress.case(&format!("idle synack echo-server n={n}"));
    let r = match (why, exe) {
        (None, Some(exe)) => measure(exe, n),
        (Some(why), _) => {
            progress.say(&format!("idle: skipped: {why}"));
            Err(why)
        }
        (None, None) => Err("no synack binary".into()),
    };
    rows(n, r)
}

/// The four rows of one run (or four skipped rows saying why).
fn rows(n: usize, r: Result<Measured, String>) -> Vec<Figure> {
    let units = ["conn/s", "bytes/conn", "threads", "ms"];
    let figs = match r {
        Ok(m) => {
            let rss = format!(
                "VmRSS {} KiB before, {} KiB after; {} descriptors open",
                m.rss_before >> 10,
                m.rss_after >> 10,
                m.fds
            );
            vec![
                Figure::new(BENCH, "synack", m.rate, units[0]).note(format!(
                    "the kernel connecting to echo-server over TUN; {} SYNs resent, \
                     {} packets dropped at the device",
                    m.syns_resent, m.tun_drops
                )),
                Figure::new(BENCH, "synack", m.bytes_per_conn, units[1]).note(rss),
                Figure::new(BENCH, "synack", m.threads as f64, units[2])
                    .note("threads of the echo-server process"),
                Figure::new(BENCH, "synack", m.cpu_ms, units[3]).note(format!(
                    "CPU time of echo-server over {} idle seconds",
                    IDLE.as_secs()
                )),
            ]
        }
        Err(e) => units
            .iter()
            .map(|u| Figure::skipped(BENCH, "synack", u, &e))
            .collect(),
    };
    figs.into_iter()
        .map(|f| f.param("connections", n))
        .collect()
}

/// One run: a namespace, echo-server in it, the kernel's connections.
fn measure(exe: &Path, n: usize) -> Result<Measured, String> {
    let ns = Netns::new("idle")?;
    let mut server = Server::start(&ns.name, exe)?;
    let r = with_server(&ns, exe, server.pid(), n);
    server.stop();
    r
}

/// The measurements, with echo-server running as `pid` in `ns`.
fn with_server(ns: &Netns, exe: &Path, pid: u32, n: usize) -> Result<Measured, String> {
    for i in 0..n.div_ceil(PER_ADDR) {
        let a = source_addr(i * PER_ADDR);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{a}/32"),
            "dev",
            TUN,
        ])?;
    }
    let rss_before = proc_status(pid, "VmRSS:")? * 1024;
    let mut clients = Clients::start(&ns.name, exe, n)?;
    let before = kernel_counters(&ns.name)?;
    let rate = clients.open()?;
    let after = kernel_counters(&ns.name)?;
    std::thread::sleep(SETTLE);
    let rss_after = proc_status(pid, "VmRSS:")? * 1024;
    let threads = proc_status(pid, "Threads:")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let cpu0 = cpu_ns(pid)?;
    std::thread::sleep(IDLE);
    let cpu1 = cpu_ns(pid)?;
    clients.check()?;
    Ok(Measured {
        rate,
        syns_resent: after.0.saturating_sub(before.0),
        tun_drops: after.1.saturating_sub(before.1),
        bytes_per_conn: rss_after.saturating_sub(rss_before) as f64 / n as f64,
        threads,
        cpu_ms: cpu1.saturating_sub(cpu0) as f64 / 1e6,
        fds,
        rss_before,
        rss_after,
    })
}

/// The source address and port of connection `i`.
fn source(i: usize) -> (Ipv4Addr, u16) {
    (source_addr(i), FIRST_PORT + (i % PER_ADDR) as u16)
}

/// The source address of connection `i`: [`PER_ADDR`] connections each.
fn source_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 202, 1, 1 + (i / PER_ADDR) as u8)
}

/// Connections one client process holds at most: each is a descriptor,
/// and a process may not raise its hard `RLIMIT_NOFILE` without
/// `CAP_SYS_RESOURCE` (containers often drop it, with the hard limit at
/// 20,000 or lower), so the kernel's ends are spread over processes.
pub const PER_CLIENT: usize = 16_000;

/// The environment variable that makes a re-executed bench binary one
/// client process of this benchmark: its value is `FIRST:COUNT:WINDOW`
/// (see [`client_from_env`]).
pub const CLIENT_ENV: &str = "SYNACK_BENCH_IDLE_CLIENT";

/// The kernel's side: client processes started in the namespace, driven
/// over their stdin and stdout one line at a time.
struct Clients {
    procs: Vec<(Child, BufReader<std::process::ChildStdout>)>,
    /// Connections over all the processes.
    n: usize,
}

impl Clients {
    /// Starts the processes for `n` connections and waits until each is
    /// ready.
    fn start(ns: &str, exe: &Path, n: usize) -> Result<Clients, String> {
        let k = n.div_ceil(PER_CLIENT);
        let window = WINDOW.div_ceil(k).max(8);
        let mut clients = Clients {
            procs: Vec::new(),
            n,
        };
        for c in 0..k {
            let first = c * PER_CLIENT;
            let count = PER_CLIENT.min(n - first);
            let exe = exe.to_path_buf();
            // Spawned from a thread inside the namespace: the child starts there.
            let mut child = join(
                in_ns(ns, move || {
                    Command::new(&exe)
                        .arg("bench")
                        .env(CLIENT_ENV, format!("{first}:{count}:{window}"))
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::inherit())
                        .spawn()
                        .map_err(|e| format!("cannot run {}: {e}", exe.display()))
                }),
                "spawn",
            )?;
            let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
            clients.procs.push((child, out));
        }
        clients.expect_all("ready")?;
        Ok(clients)
    }

    /// Tells every process `cmd`.
    fn tell_all(&mut self, cmd: &str) -> Result<(), String> {
        for (child, _) in &mut self.procs {
            let stdin = child.stdin.as_mut().ok_or("no stdin")?;
            writeln!(stdin, "{cmd}").map_err(|e| format!("client: {e}"))?;
            stdin.flush().map_err(|e| format!("client: {e}"))?;
        }
        Ok(())
    }

    /// Reads one line from every process; each must be `want` (or it is
    /// the error).
    fn expect_all(&mut self, want: &str) -> Result<(), String> {
        for (_, out) in &mut self.procs {
            let mut line = String::new();
            out.read_line(&mut line)
                .map_err(|e| format!("client: {e}"))?;
            let line = line.trim();
            if line != want {
                return Err(if line.is_empty() {
                    "a client process exited".to_string()
                } else {
                    line.to_string()
                });
            }
        }
        Ok(())
    }

    /// Opens every connection; connections per second, from the word go
    /// to the last process done.
    fn open(&mut self) -> Result<f64, String> {
        let n = self.n;
        let t0 = Instant::now();
        self.tell_all("open")?;
        self.expect_all("opened")?;
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    }

    /// The echo check on every connection.
    fn check(&mut self) -> Result<(), String> {
        self.tell_all("check")?;
        self.expect_all("checked")
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        // Closing stdin ends a process (and closes its connections).
        for (child, _) in &mut self.procs {
            drop(child.stdin.take());
        }
        for (child, _) in &mut self.procs {
            let _ = child.wait();
        }
    }
}

/// In a process started as a client ([`CLIENT_ENV`] set): runs it and
/// returns how it ended. `None` in any other process.
pub fn client_from_env() -> Option<Result<(), String>> {
    let spec = std::env::var(CLIENT_ENV).ok()?;
    Some(client_main(&spec))
}

/// A client process: says `ready`, opens its connections at `open` (then
/// says `opened`), runs the echo check at `check` (then says `checked`),
/// and exits at the end of its stdin. A failure is said as its line.
fn client_main(spec: &str) -> Result<(), String> {
    let nums: Vec<usize> = spec.split(':').filter_map(|v| v.parse().ok()).collect();
    let [first, count, window] = nums[..] else {
        return Err(format!("bad {CLIENT_ENV} `{spec}`"));
    };
    raise_nofile(count as u64 + 64)?;
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say("ready");
    let mut client = None;
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let r = match (line.trim(), client.as_mut()) {
            ("open", None) => Client::open(first, count, window).map(|c| {
                client = Some(c);
                "opened"
            }),
            ("check", Some(c)) => c.echo_check().map(|()| "checked"),
            (other, _) => Err(format!("client: unexpected `{other}`")),
        };
        match r {
            Ok(word) => say(word),
            Err(e) => say(&e),
        }
    }
    Ok(())
}

/// Raises this process's `RLIMIT_NOFILE` to at least `want` (its hard
/// limit too when it is lower, which root may do): the kernel's end of
/// each connection is a descriptor.
fn raise_nofile(want: u64) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= want {
        return Ok(());
    }
    lim.rlim_max = lim.rlim_max.max(want);
    lim.rlim_cur = want;
    // SAFETY: `lim` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(format!(
            "cannot raise RLIMIT_NOFILE to {want}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The kernel's counters in namespace `ns`: SYN retransmissions
/// (`TcpExt: TCPSynRetrans`) and packets dropped on their way out to the
/// TUN device (its `tx_dropped`, the queue the stack reads full).
fn kernel_counters(ns: &str) -> Result<(u64, u64), String> {
    join(
        in_ns(ns, || {
            let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
            // /proc/thread-self: this thread's namespace, not the process's.
            let netstat = read("/proc/thread-self/net/netstat")?;
            let dev = read("/proc/thread-self/net/dev")?;
            Ok((
                netstat_field(&netstat, "TcpExt:", "TCPSynRetrans"),
                tx_dropped(&dev),
            ))
        }),
        "counters",
    )
}

/// A counter of `/proc/net/netstat` (a line of names, then one of values,
/// under the same prefix); 0 when absent.
fn netstat_field(text: &str, prefix: &str, name: &str) -> u64 {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The TUN device's `tx_dropped` in `/proc/net/dev` (the 12th number of
/// its line); 0 when absent.
fn tx_dropped(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{TUN}:")))
        .and_then(|rest| rest.split_whitespace().nth(11))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A field of `/proc/PID/status`, its number (kB for sizes).
fn proc_status(pid: u32, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {field} in {path}"))
}

/// CPU time of every thread of process `pid`, nanoseconds: the sum of the
/// first field of each `/proc/PID/task/TID/schedstat` (nanosecond
/// resolution, where `/proc/PID/stat` counts clock ticks).
fn cpu_ns(pid: u32) -> Result<u64, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut total = 0;
    for t in tasks.flatten() {
        let p = t.path().join("schedstat");
        let s = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        total += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("bad {}", p.display()))?;
    }
    Ok(total)
}

/// `synack echo-server` running in the namespace.
struct Server {
    child: Child,
}

impl Server {
    /// Starts `exe echo-server` in namespace `ns` and waits until it says
    /// it listens.
    fn start(ns: &str, exe: &Path) -> Result<Server, String> {
        let exe = exe.to_path_buf();
        // Spawned from a thread inside the namespace: the child starts there.
        let child = in_ns(ns, move || {
            Command::new(&exe)
                .args(["echo-server", "--tun", TUN])
                .args(["--addr", &STACK_IP.to_string()])
                .args(["--host", &format!("{HOST_IP}/16")])
                .args(["--port", &PORT.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {} echo-server: {e}", exe.display()))
        });
        let mut server = Server {
            child: join(child, "spawn")?,
        };
        let stderr = server.child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads echo-server's stderr to its end (so it never blocks on a
        // full pipe); the first line says it listens, or why not.
        std::thread::spawn(move || {
            let mut first = true;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if first {
                    let _ = tx.send(line);
                    first = false;
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("listening") => Ok(server),
            Ok(line) => {
                server.stop();
                Err(format!("echo-server: {line}"))
            }
            Err(_) => {
                server.stop();
                Err("echo-server did not start".into())
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL when it has not exited within 20 s (it closes
    /// every connection gracefully first).
    fn stop(&mut self) {
        // SAFETY: kill on the pid of our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kernel's connections: one non-blocking socket each.
struct Client {
    socks: Vec<OwnedFd>,
    epoll: OwnedFd,
    window: usize,
}

impl Client {
    /// Opens connections `first..first + n` to echo-server (each from its
    /// [`source`]), at most `window` connects in flight.
    fn open(first: usize, n: usize, window: usize) -> Result<Client, String> {
        let epoll = new_epoll()?;
        let mut socks = Vec::with_capacity(n);
        let mut in_flight = 0usize;
        let mut done = 0usize;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; window];
        let mut progress_at = Instant::now();
        while done < n {
            while in_flight < window && socks.len() < n {
                let i = socks.len();
                socks.push(start_connect(source(first + i), (STACK_IP, PORT))?);
                watch(
                    &epoll,
                    socks[i].as_raw_fd(),
                    libc::EPOLLOUT as u32,
                    i as u64,
                )?;
                in_flight += 1;
            }
            let ready = wait(&epoll, &mut events, 100)?;
            for ev in &events[..ready] {
                let i = ev.u64 as usize;
                let fd = socks[i].as_raw_fd();
                let err = so_error(fd)?;
                if err != 0 {
                    return Err(format!(
                        "connection {i} of {n} failed after {done} opened: {}",
                        std::io::Error::from_raw_os_error(err)
                    ));
                }
                unwatch(&epoll, fd)?;
                in_flight -= 1;
                done += 1;
                progress_at = Instant::now();
            }
            if progress_at.elapsed() > STALL {
                return Err(format!("{done} of {n} connections opened, then a stall"));
            }
        }
        Ok(Client {
            socks,
            epoll,
            window,
        })
    }

    /// Each connection sends one byte and reads it back (a window at a
    /// time): the server accepted every one.
    fn echo_check(&mut self) -> Result<(), String> {
        let n = self.socks.len();
        let window = self.window;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; window];
        let (mut next, mut in_flight, mut done) = (0usize, 0usize, 0usize);
        let mut progress_at = Instant::now();
        while done < n {
            while in_flight < window && next < n {
                let fd = self.socks[next].as_raw_fd();
                // SAFETY: one byte from a live buffer to our socket.
                let w = unsafe { libc::write(fd, [0x5au8].as_ptr().cast(), 1) };
                if w != 1 {
                    return Err(format!(
                        "echo check: write on connection {next}: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                watch(&self.epoll, fd, libc::EPOLLIN as u32, next as u64)?;
                next += 1;
                in_flight += 1;
            }
            let ready = wait(&self.epoll, &mut events, 100)?;
            for ev in &events[..ready] {
                let i = ev.u64 as usize;
                let fd = self.socks[i].as_raw_fd();
                let mut b = [0u8; 1];
                // SAFETY: reads at most one byte into a live buffer.
                let r = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
                if r != 1 || b[0] != 0x5a {
                    return Err(format!(
                        "echo check: connection {i} of {n} did not echo ({} echoed before)",
                        done
                    ));
                }
                unwatch(&self.epoll, fd)?;
                in_flight -= 1;
                done += 1;
                progress_at = Instant::now();
            }
            if progress_at.elapsed() > STALL {
                return Err(format!("echo check: {done} of {n} echoed, then a stall"));
            }
        }
        Ok(())
    }
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn new_epoll() -> Result<OwnedFd, String> {
    // SAFETY: plain syscall; the descriptor is owned from here on.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(os_err("epoll_create1"));
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn watch(epoll: &OwnedFd, fd: RawFd, events: u32, key: u64) -> Result<(), String> {
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: both descriptors are live; `ev` outlives the call.
    let rc = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if rc != 0 {
        return Err(os_err("epoll_ctl add"));
    }
    Ok(())
}

fn unwatch(epoll: &OwnedFd, fd: RawFd) -> Result<(), String> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: both descriptors are live; `ev` outlives the call.
    let rc = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    if rc != 0 {
        return Err(os_err("epoll_ctl del"));
    }
    Ok(())
}

/// Waits up to `ms` for events; how many arrived.
fn wait(epoll: &OwnedFd, events: &mut [libc::epoll_event], ms: i32) -> Result<usize, String> {
    // SAFETY: `events` is a live, writable array of its length.
    let n = unsafe {
        libc::epoll_wait(
            epoll.as_raw_fd(),
            events.as_mut_ptr(),
            events.len() as i32,
            ms,
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(format!("epoll_wait: {e}"));
    }
    Ok(n as usize)
}

/// `sockaddr_in` of an IPv4 address and port.
fn sockaddr((addr, port): (Ipv4Addr, u16)) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A non-blocking TCP socket bound to `src`, connecting to `dst`.
fn start_connect(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Result<OwnedFd, String> {
    // SAFETY: plain syscall; the descriptor is owned from here on.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(os_err("socket"));
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let from = sockaddr(src);
    // SAFETY: `from` is a valid sockaddr_in of length `len`.
    if unsafe { libc::bind(fd, (&from as *const libc::sockaddr_in).cast(), len) } != 0 {
        return Err(os_err(&format!("bind {}:{}", src.0, src.1)));
    }
    let to = sockaddr(dst);
    // SAFETY: `to` is a valid sockaddr_in of length `len`.
    let rc = unsafe { libc::connect(fd, (&to as *const libc::sockaddr_in).cast(), len) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(format!("connect: {e}"));
        }
    }
    Ok(sock)
}

/// The pending error of socket `fd` (0: connected).
fn so_error(fd: RawFd) -> Result<i32, String> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writing, `len` its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(os_err("getsockopt SO_ERROR"));
    }
    Ok(err)
}
