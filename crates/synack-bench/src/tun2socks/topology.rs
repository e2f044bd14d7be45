//! The namespaces, servers, proxy and tool of one `tun2socks` case.
//!
//! ```text
//!  namespace app                                 namespace srv
//!  clients (this process, setns)                 servers on FAR (local)
//!   │ default route                                iperf3 -s, exchange, hold (python3)
//!   ▼                                              ▲ (local delivery)
//!  sabt0 (TUN, the tool's) ─ tool ─ sabv0 ══ veth ══ sabv1  SOCKS5 proxy
//! ```
//!
//! The far servers sit on a subnet of their own, so the app namespace
//! reaches them only by its default route: the TUN device for a tool, the
//! veth for the kernel's direct path (no tunnel). The SOCKS5 proxy listens
//! on the veth's srv end, reachable from the app namespace by the veth's
//! connected route (never through the device).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::tun::{in_ns, ip, Netns};

/// The TUN device in the app namespace.
pub const TUN: &str = "sabt0";
/// The host side of the TUN device (the tool's stack takes the next address).
const TUN_HOST: &str = "10.162.0.1/24";
/// The veth's two ends and their addresses.
const VETH_APP: &str = "sabv0";
const VETH_SRV: &str = "sabv1";
const APP_IP: Ipv4Addr = Ipv4Addr::new(10, 161, 0, 1);
/// The srv end of the veth, where the SOCKS5 proxy listens.
pub const PROXY_IP: Ipv4Addr = Ipv4Addr::new(10, 161, 0, 2);
/// The proxy's port.
pub const PROXY_PORT: u16 = 1080;
/// The far servers' address (local to srv, on a device of its own).
pub const FAR: Ipv4Addr = Ipv4Addr::new(10, 163, 0, 2);
/// iperf3's server port.
pub const IPERF_PORT: u16 = 5201;
/// The exchange server: reads [`EXCHANGE`] bytes, writes as many back,
/// closes after the client's FIN.
pub const EXCHANGE_PORT: u16 = 7001;
/// The hold server ([`Topo::start_hold`]): accepts and holds every
/// connection, silent.
pub const HOLD_PORT: u16 = 7002;
/// Bytes each way on an exchange connection.
pub const EXCHANGE: usize = 1024;
/// Threads accepting for the exchange server.
const EXCHANGE_ACCEPTORS: usize = 2;

/// How a tool reaches the far servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Through the SOCKS5 proxy.
    Socks5,
    /// Through the host's own sockets (synack's `--direct`); for the
    /// kernel, the direct path without any tunnel.
    Direct,
}

impl Upstream {
    /// The `upstream` param.
    pub fn name(self) -> &'static str {
        match self {
            Upstream::Socks5 => "socks5",
            Upstream::Direct => "direct",
        }
    }
}

/// What sits between the app namespace and the far servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// No tunnel: the app namespace's default route is the veth.
    Kernel,
    /// `synack tun2socks`, this binary re-executed.
    Synack(PathBuf, Upstream),
    /// `tun2proxy-bin` at this path, through the SOCKS5 proxy.
    Tun2proxy(PathBuf),
}

impl Peer {
    /// The `stack` of its rows.
    pub fn stack(&self) -> &'static str {
        match self {
            Peer::Kernel => "kernel",
            Peer::Synack(..) => "synack",
            Peer::Tun2proxy(_) => "tun2proxy",
        }
    }

    /// The `upstream` of its rows.
    pub fn upstream(&self) -> Upstream {
        match self {
            Peer::Kernel => Upstream::Direct,
            Peer::Synack(_, u) => *u,
            Peer::Tun2proxy(_) => Upstream::Socks5,
        }
    }
}

/// A child process, killed (if still running) on drop.
pub struct Proc {
    child: Child,
    what: &'static str,
    log: Option<PathBuf>,
}

impl Proc {
    /// Its process id (`ip netns exec` execs the program in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with the end of its stderr when it has exited.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!("{} exited ({st}){}", self.what, self.said())),
            Err(e) => Err(format!("{}: {e}", self.what)),
        }
    }

    /// "; it said: ..." with the last lines of its stderr, if any.
    pub fn said(&self) -> String {
        let Some(p) = &self.log else {
            return String::new();
        };
        let log = std::fs::read_to_string(p).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        if tail.is_empty() {
            return String::new();
        }
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("; it said: {}", tail.join(" | "))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One case's topology; everything is removed on drop (processes first,
/// then the server threads, then the namespaces with their devices).
pub struct Topo {
    /// The tool (none for the kernel).
    pub tool: Option<Proc>,
    proxy: Option<Proc>,
    iperf: Option<Proc>,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<Result<(), String>>>,
    /// The applications' namespace.
    pub app: Netns,
    /// The servers' namespace.
    pub srv: Netns,
    dir: PathBuf,
}

impl Drop for Topo {
    fn drop(&mut self) {
        self.tool.take();
        self.proxy.take();
        self.iperf.take();
        self.stop.store(true, Ordering::SeqCst);
        for s in self.servers.drain(..) {
            let _ = s.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `program args` in namespace `ns` (through `ip netns exec`, which
/// execs it in place).
fn in_netns(ns: &Netns, program: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name]).arg(program);
    c.stdin(Stdio::null());
    c
}

fn sysctl(ns: &Netns, kv: &str) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "sysctl", "-q", "-w", kv])
        .output()
        .map_err(|e| format!("cannot run sysctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sysctl {kv}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Polls `f` every 20 ms until it holds or `limit` passes.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() > deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Whether `program` is on the PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Picks the SOCKS5 proxy instead of the default (`danted`, `sockd` or
/// `microsocks`).
pub const PROXY_ENV: &str = "SYNACK_BENCH_SOCKS";

/// The SOCKS5 proxy both tools go through: [`PROXY_ENV`]'s, or dante where
/// it is installed (Debian's `dante-server`: `danted`), microsocks
/// otherwise.
pub fn proxy_program() -> Option<&'static str> {
    let known = ["danted", "sockd", "microsocks"];
    if let Some(want) = std::env::var_os(PROXY_ENV) {
        return known.into_iter().find(|p| want == *p && on_path(p));
    }
    known.into_iter().find(|p| on_path(p))
}

/// Raises this process's open-file limit (inherited by everything it
/// starts): 10,000 idle connections are 20,000 descriptors here (both
/// ends) and as many in the tool and the proxy.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getters/setters on a valid rlimit struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let want = libc::rlimit {
            rlim_cur: 1 << 18,
            rlim_max: lim.rlim_max.max(1 << 18),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Waits up to 100 ms for a connection on `l` (so that a stop is seen).
fn accept_within(l: &TcpListener) -> Option<TcpStream> {
    let mut pfd = libc::pollfd {
        fd: l.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` outlives the call.
    let n = unsafe { libc::poll(&mut pfd, 1, 100) };
    if n <= 0 {
        return None;
    }
    let (s, _) = l.accept().ok()?;
    s.set_nonblocking(false).ok()?;
    Some(s)
}

/// One exchange, the server's side: read [`EXCHANGE`] bytes, write as many,
/// read to the client's FIN.
fn serve_exchange(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.set_nodelay(true).ok();
    let mut buf = [0u8; EXCHANGE];
    if s.read_exact(&mut buf).is_err() || s.write_all(&buf).is_err() {
        return;
    }
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

impl Topo {
    /// Namespaces `<tag>a` and `<tag>s`, the veth (at `mtu`), the far
    /// servers, and for a tool the proxy; the tool itself is started by
    /// [`Topo::start`].
    pub fn new(tag: &str, mtu: usize, proxy: bool) -> Result<Topo, String> {
        let app = Netns::new(&format!("{tag}a"))?;
        let srv = Netns::new(&format!("{tag}s"))?;
        let dir = std::env::temp_dir().join(format!("synack-bench-t2s-{}", app.name));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut t = Topo {
            tool: None,
            proxy: None,
            iperf: None,
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
            app,
            srv,
            dir,
        };
        t.links(mtu)?;
        t.servers()?;
        if proxy {
            t.start_proxy()?;
        }
        Ok(t)
    }

    fn links(&self, mtu: usize) -> Result<(), String> {
        let (a, s) = (&self.app.name, &self.srv.name);
        let mtu = mtu.to_string();
        ip(&[
            "-n", a, "link", "add", VETH_APP, "type", "veth", "peer", "name", VETH_SRV, "netns", s,
        ])?;
        for (ns, dev, addr) in [(a, VETH_APP, APP_IP), (s, VETH_SRV, PROXY_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "mtu", &mtu, "up"])?;
        }
        // The far address on one end of a veth pair inside srv (the
        // kernel may have no dummy devices): local to srv either way.
        ip(&[
            "-n", s, "link", "add", "sabfar0", "type", "veth", "peer", "name", "sabfar1",
        ])?;
        ip(&["-n", s, "link", "set", "sabfar1", "up"])?;
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{FAR}/32"),
            "dev",
            "sabfar0",
        ])?;
        ip(&["-n", s, "link", "set", "sabfar0", "up"])?;
        for ns in [&self.app, &self.srv] {
            // Short connections by the ten thousand a second: every port,
            // and TIME-WAIT ports reused for new connects (the client, and
            // the proxy's upstream side, close first).
            sysctl(ns, "net.ipv4.ip_local_port_range=1024 65535")?;
            sysctl(ns, "net.ipv4.tcp_tw_reuse=1")?;
            sysctl(ns, "net.core.somaxconn=65535")?;
            sysctl(ns, "net.ipv4.tcp_max_syn_backlog=65535")?;
        }
        Ok(())
    }

    /// Routes the app namespace's default route over the veth: the
    /// kernel's direct path, no tunnel.
    pub fn route_direct(&self) -> Result<(), String> {
        ip(&[
            "-n",
            &self.app.name,
            "route",
            "add",
            "default",
            "via",
            &PROXY_IP.to_string(),
            "dev",
            VETH_APP,
        ])
    }

    /// A listener on FAR:`port` in srv.
    fn listen(&self, port: u16) -> Result<TcpListener, String> {
        let to = SocketAddr::from((FAR, port));
        self.srv.run(move || {
            let l = TcpListener::bind(to).map_err(|e| format!("bind {to}: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(l)
        })
    }

    fn servers(&mut self) -> Result<(), String> {
        // A thread per connection: one whose FIN is slow to come through
        // the tool must not hold up the next ones.
        let l = self.listen(EXCHANGE_PORT)?;
        for _ in 0..EXCHANGE_ACCEPTORS {
            let l = l.try_clone().map_err(|e| e.to_string())?;
            let stop = Arc::clone(&self.stop);
            self.servers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some(s) = accept_within(&l) {
                        std::thread::spawn(move || serve_exchange(s));
                    }
                }
                Ok(())
            }));
        }
        let log = self.log_file("iperf3")?;
        let child = in_netns(&self.srv, Path::new("iperf3"))
            .args(["-s", "-B", &FAR.to_string(), "-p", &IPERF_PORT.to_string()])
            .stdout(Stdio::null())
            .stderr(log.0)
            .spawn()
            .map_err(|e| format!("cannot run iperf3: {e}"))?;
        self.iperf = Some(Proc {
            child,
            what: "iperf3 -s",
            log: Some(log.1),
        });
        let srv = self.srv.name.clone();
        wait_for("iperf3 -s", Duration::from_secs(10), || {
            listening(&srv, IPERF_PORT)
        })
    }

    fn log_file(&self, name: &str) -> Result<(std::fs::File, PathBuf), String> {
        let p = self.dir.join(format!("{name}.stderr"));
        let f = std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok((f, p))
    }

    fn start_proxy(&mut self) -> Result<(), String> {
        let program = proxy_program().ok_or("no SOCKS5 server (dante-server or microsocks)")?;
        let log = self.log_file(program)?;
        let mut c = in_netns(&self.srv, Path::new(program));
        if program == "microsocks" {
            c.args(["-i", &PROXY_IP.to_string(), "-p", &PROXY_PORT.to_string()]);
        } else {
            let conf = self.dir.join("danted.conf");
            std::fs::write(&conf, dante_conf()).map_err(|e| e.to_string())?;
            c.arg("-f")
                .arg(&conf)
                .arg("-p")
                .arg(self.dir.join("danted.pid"));
        }
        let child = c
            .stdout(Stdio::null())
            .stderr(log.0)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        self.proxy = Some(Proc {
            child,
            what: program,
            log: Some(log.1),
        });
        let srv = self.srv.name.clone();
        wait_for(program, Duration::from_secs(10), || {
            listening(&srv, PROXY_PORT)
        })
    }

    /// Starts the tool of `peer` at `mtu` and routes the app namespace's
    /// default route into its device; returns once a relayed exchange
    /// works.
    pub fn start(&mut self, peer: &Peer, mtu: usize) -> Result<(), String> {
        let log = self.log_file("tool")?;
        let mtu_s = mtu.to_string();
        let (mut cmd, what) = match peer {
            Peer::Kernel => return self.route_direct(),
            Peer::Synack(exe, upstream) => {
                let mut c = in_netns(&self.app, exe);
                c.args(["tun2socks", "--tun", TUN, "--host", TUN_HOST, "--quiet"])
                    .args(["--mtu", &mtu_s]);
                match upstream {
                    Upstream::Socks5 => c.args(["--socks5", &format!("{PROXY_IP}:{PROXY_PORT}")]),
                    Upstream::Direct => c.args(["--direct", "--interface", VETH_APP]),
                };
                (c, "synack tun2socks")
            }
            Peer::Tun2proxy(bin) => {
                let mut c = in_netns(&self.app, bin);
                c.args(["--tun", TUN, "--proxy"])
                    .arg(format!("socks5://{PROXY_IP}:{PROXY_PORT}"))
                    // Its default (200) would refuse the idle case's
                    // 10,000; MSS: its own advice for a TUN at this MTU
                    // (without it the kernel falls back to 536).
                    .args(["--max-sessions", "100000", "--mtu", &mtu_s])
                    .args(["--tcp-mss", &(mtu - 40).min(65_495).to_string()])
                    // A log line per connection otherwise.
                    .args(["-v", "error"]);
                (c, "tun2proxy")
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log.0)
            .spawn()
            .map_err(|e| format!("cannot run {what}: {e}"))?;
        self.tool = Some(Proc {
            child,
            what,
            log: Some(log.1),
        });
        let app = self.app.name.clone();
        let synack = matches!(peer, Peer::Synack(..));
        let up = wait_for("the TUN device", Duration::from_secs(10), || {
            device_ready(&app, synack)
        });
        if let Err(e) = up {
            let said = self.tool.as_mut().map(|t| t.said()).unwrap_or_default();
            return Err(format!("{e}{said}"));
        }
        let a = &self.app.name;
        // synack's tool set the device's MTU itself (`--mtu`).
        if !synack {
            // tun2proxy without `--setup` (which would also rewrite the
            // host's DNS settings) leaves the device down and bare, as its
            // README's manual setup says: done here.
            ip(&["-n", a, "addr", "add", TUN_HOST, "dev", TUN])?;
            ip(&["-n", a, "link", "set", TUN, "up"])?;
        }
        if let Peer::Synack(_, Upstream::Direct) = peer {
            // The tool's own sockets are bound to the veth; this route is
            // what they find there.
            ip(&[
                "-n",
                a,
                "route",
                "add",
                "default",
                "via",
                &PROXY_IP.to_string(),
                "dev",
                VETH_APP,
                "metric",
                "100",
            ])?;
        }
        ip(&[
            "-n", a, "route", "add", "default", "dev", TUN, "metric", "10",
        ])?;
        let ready = wait_for("a relayed exchange", Duration::from_secs(10), || {
            self.probe().is_ok()
        });
        if let Err(e) = ready {
            let said = self.tool.as_mut().map(|t| t.said()).unwrap_or_default();
            return Err(format!("{e}{said}"));
        }
        Ok(())
    }

    /// Starts the hold server in srv: a process of its own (python3), as
    /// one process may have no more than 20,000 descriptors here and the
    /// clients' 10,000 ends are in this one. Killing it closes them all.
    pub fn start_hold(&self) -> Result<Proc, String> {
        let script = format!(
            "import socket\n\
             l = socket.socket()\n\
             l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             l.bind(('{FAR}', {HOLD_PORT}))\n\
             l.listen(65535)\n\
             held = []\n\
             while True:\n    held.append(l.accept()[0])\n"
        );
        let log = self.log_file("hold")?;
        let child = in_netns(&self.srv, Path::new("python3"))
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(log.0)
            .spawn()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let p = Proc {
            child,
            what: "the hold server (python3)",
            log: Some(log.1),
        };
        let srv = self.srv.name.clone();
        wait_for("the hold server", Duration::from_secs(10), || {
            listening(&srv, HOLD_PORT)
        })?;
        Ok(p)
    }

    /// Connections established to the hold server (accepted or queued:
    /// either way relayed all the way).
    pub fn held(&self) -> usize {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.srv.name,
                "ss",
                "-Htn",
                "state",
                "established",
            ])
            .arg(format!("( sport = :{HOLD_PORT} )"))
            .output();
        match out {
            Ok(o) if o.status.success() => o
                .stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count(),
            _ => 0,
        }
    }

    /// One exchange from the app namespace.
    pub fn probe(&self) -> Result<(), String> {
        self.app.run(|| {
            let to = SocketAddr::from((FAR, EXCHANGE_PORT));
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
                .map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let mut buf = [1u8; EXCHANGE];
            s.write_all(&buf).map_err(|e| e.to_string())?;
            s.read_exact(&mut buf).map_err(|e| e.to_string())
        })
    }

    /// `Err` when the tool (if any) has exited.
    pub fn tool_alive(&mut self) -> Result<(), String> {
        self.tool.as_mut().map_or(Ok(()), Proc::alive)
    }

    /// Runs `f` on a thread in the app namespace.
    pub fn in_app<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> JoinHandle<Result<T, String>> {
        in_ns(&self.app.name, f)
    }
}

/// Whether something listens on TCP `port` in namespace `ns`.
fn listening(ns: &str, port: u16) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-Hltn"])
        .arg(format!("sport = :{port}"))
        .output();
    matches!(out, Ok(o) if o.status.success() && !o.stdout.is_empty())
}

/// Whether the TUN device exists in `ns` (with its address, for synack,
/// which configures it itself).
fn device_ready(ns: &str, with_addr: bool) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "-4", "addr", "show", "dev", TUN])
        .output();
    matches!(out, Ok(o) if o.status.success()
        && (!with_addr || String::from_utf8_lossy(&o.stdout).contains("inet ")))
}

/// dante's configuration: CONNECT for anyone on the veth, no
/// authentication.
fn dante_conf() -> String {
    format!(
        "logoutput: stderr\n\
         internal: {PROXY_IP} port = {PROXY_PORT}\n\
         external: {PROXY_IP}\n\
         clientmethod: none\n\
         socksmethod: none\n\
         user.privileged: root\n\
         user.unprivileged: nobody\n\
         client pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n\
         socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect }}\n"
    )
}
