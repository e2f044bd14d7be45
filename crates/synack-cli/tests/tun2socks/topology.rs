//! The namespaces, servers and tool process of the `tun2socks` tests.
//!
//! Two namespaces per test, both deleted at the end (even on failure, by
//! `Drop`):
//!
//! - **app**: the tool under test runs here and makes its TUN device
//!   [`TUN`]; the default route is the device, so every connection an
//!   application opens to the "far" range [`FAR`] enters the tunnel. With
//!   `--direct` a second default route (higher metric) goes over the veth,
//!   and the tool binds its upstream sockets to the veth (`--interface`), so
//!   its own traffic never loops back into the device.
//! - **srv**: the other end of the veth ([`PROXY_IP`]), running the SOCKS5
//!   server (dante; microsocks where dante is missing) and the
//!   servers on [`FAR`] (on a veth pair inside srv; [`BLACKHOLE`] on its
//!   /24 is a neighbour that never answers).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{have, Netns};

/// The `synack` binary these tests run.
pub const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// The TUN device's name inside the app namespace.
pub const TUN: &str = "t2s0";
/// The host side of the TUN device.
pub const TUN_HOST: &str = "10.76.0.1/24";
/// The veth ends: app side and srv side.
pub const VETH_APP: &str = "t2sv0";
pub const VETH_SRV: &str = "t2sv1";
pub const APP_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const PROXY_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const PROXY_PORT: u16 = 1080;
/// The servers' address (srv namespace).
pub const FAR: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
/// An address on FAR's subnet that nobody has: packets to it are dropped
/// without an answer.
pub const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 99);

/// Ports of the servers on [`FAR`].
pub const ECHO: u16 = 7;
pub const SINK: u16 = 9;
pub const SPEAK_FIRST: u16 = 10;
pub const SOURCE: u16 = 11;
pub const HOLD: u16 = 12;
pub const HTTP: u16 = 8080;
pub const UDP_ECHO: u16 = 53;
/// A port nothing listens on.
pub const CLOSED_PORT: u16 = 1;

/// How the tool reaches destinations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Through dante (or microsocks where dante is missing: CONNECT only,
    /// and no half-close: it closes both sides at the first EOF).
    Socks5,
    /// Through dante (CONNECT and UDP ASSOCIATE).
    Socks5Udp,
    /// Through the host's own sockets, bound to the veth.
    Direct,
}

/// The tool under test: synack's (`synack tun2socks`) by default; another
/// tun2socks tool when `SYNACK_TUN2SOCKS_PEER` names a tun2proxy binary
/// (to check that the tests see what they claim to see).
#[derive(Clone, Debug)]
pub enum Tool {
    /// `synack tun2socks`.
    Synack,
    /// `tun2proxy-bin` at this path.
    Tun2proxy(PathBuf),
}

impl Tool {
    /// The tool the environment asks for.
    pub fn from_env() -> Tool {
        match std::env::var_os("SYNACK_TUN2SOCKS_PEER") {
            Some(p) if !p.is_empty() => Tool::Tun2proxy(PathBuf::from(p)),
            _ => Tool::Synack,
        }
    }

    fn is_synack(&self) -> bool {
        matches!(self, Tool::Synack)
    }
}

/// What a test needs of the tool beyond relaying TCP through SOCKS5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// `--direct`.
    Direct,
    /// `--trace` with `drop` events.
    Trace,
    /// A SOCKS5 server that relays a half-close (dante does).
    HalfClose,
}

/// A child process killed (if still running) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when `program` is on the PATH (or is a path that exists).
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Raises this process's open-file limit to its hard limit (the tool and
/// the SOCKS server inherit it through `ip netns exec`).
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getters/setters on a valid rlimit struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// The byte at position `i` of every test stream (`seed` tells streams
/// apart).
pub fn byte_at(i: u64, seed: u8) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ seed
}

/// `len` bytes of stream `seed` from position 0.
pub fn stream(len: usize, seed: u8) -> Vec<u8> {
    (0..len as u64).map(|i| byte_at(i, seed)).collect()
}

/// Polls `f` every 50 ms until it holds or `limit` passes.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() > deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// What the sink server saw on one connection.
#[derive(Debug, Clone)]
pub struct Sunk {
    /// The first byte of the stream (its seed).
    pub seed: u8,
    /// Bytes received, all of them checked against the stream.
    pub bytes: u64,
    /// The first position where a byte differed, if any.
    pub corrupt_at: Option<u64>,
    /// How the stream ended: `None` for an orderly EOF (FIN), the error
    /// otherwise.
    pub error: Option<String>,
}

/// One test's namespaces, servers, SOCKS server and tool.
pub struct Topo {
    pub tool: Tool,
    pub mode: Mode,
    // Field order is drop order: the tool first, then the proxy, then the
    // namespaces.
    proc: Option<Proc>,
    socks: Option<Proc>,
    http: Option<Proc>,
    pub app: Netns,
    pub srv: Netns,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
    /// What the sink server saw, one message per connection.
    sunk: Mutex<mpsc::Receiver<Sunk>>,
    /// What the speak-first server received after its own FIN.
    heard: Mutex<mpsc::Receiver<Vec<u8>>>,
}

impl Drop for Topo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.proc.take();
        self.socks.take();
        self.http.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Topo {
    /// Builds the topology for `test` and starts the tool in `mode` with
    /// `extra` flags (synack's only), or says why the test is skipped and
    /// returns `None`.
    pub fn new(test: &str, mode: Mode, needs: &[Needs], extra: &[&str]) -> Option<Topo> {
        let tool = Tool::from_env();
        if let Some(why) = Self::missing(&tool, mode, needs) {
            println!("skipped: {test}: {why}");
            return None;
        }
        let app = Netns::new(test)?;
        let srv = Netns::new(test)?;
        raise_nofile();
        let dir =
            std::env::temp_dir().join(format!("synack-t2s-{}-{}", std::process::id(), app.name));
        std::fs::create_dir_all(&dir).unwrap();
        let (sunk_tx, sunk) = mpsc::channel();
        let (heard_tx, heard) = mpsc::channel();
        let mut t = Topo {
            tool,
            mode,
            proc: None,
            socks: None,
            http: None,
            app,
            srv,
            stop: Arc::new(AtomicBool::new(false)),
            dir,
            sunk: Mutex::new(sunk),
            heard: Mutex::new(heard),
        };
        t.links();
        t.servers(sunk_tx, heard_tx);
        t.start_socks(needs.contains(&Needs::HalfClose));
        t.start_tool(extra);
        Some(t)
    }

    /// Why the test cannot run with `tool` in `mode`, if it cannot.
    fn missing(tool: &Tool, mode: Mode, needs: &[Needs]) -> Option<String> {
        if let Some(why) = crate::common::unavailable() {
            return Some(why);
        }
        match mode {
            Mode::Socks5 if !on_path("microsocks") && !on_path("danted") => {
                return Some("no SOCKS5 server (apt-get install microsocks dante-server)".into())
            }
            Mode::Socks5Udp if !on_path("danted") => {
                return Some(
                    "no dante (apt-get install dante-server): microsocks has no UDP ASSOCIATE"
                        .into(),
                )
            }
            _ => {}
        }
        if mode == Mode::Socks5 && needs.contains(&Needs::HalfClose) && !on_path("danted") {
            return Some("microsocks closes both sides at the first EOF: half-close needs dante (apt-get install dante-server)".into());
        }
        if let Tool::Tun2proxy(p) = tool {
            if !p.exists() {
                return Some(format!(
                    "SYNACK_TUN2SOCKS_PEER={} does not exist",
                    p.display()
                ));
            }
            if mode == Mode::Direct || needs.contains(&Needs::Direct) {
                return Some("tun2proxy has no direct mode".into());
            }
            if needs.contains(&Needs::Trace) {
                return Some("tun2proxy writes no trace".into());
            }
        }
        None
    }

    fn links(&self) {
        let (a, s) = (&self.app, &self.srv);
        let out = Command::new("ip")
            .args(["-n", &a.name, "link", "add", VETH_APP, "type", "veth"])
            .args(["peer", "name", VETH_SRV, "netns", &s.name])
            .output()
            .unwrap();
        assert!(out.status.success(), "veth: {out:?}");
        a.ip(&["addr", "add", &format!("{APP_IP}/24"), "dev", VETH_APP]);
        a.ip(&["link", "set", VETH_APP, "up"]);
        s.ip(&["addr", "add", &format!("{PROXY_IP}/24"), "dev", VETH_SRV]);
        s.ip(&["link", "set", VETH_SRV, "up"]);
        // The far range: a veth pair inside srv, one end with FAR; the
        // BLACKHOLE neighbour is a MAC nobody has, so what is sent to it
        // is dropped by the other end without an answer (no ARP failure,
        // no ICMP).
        s.ip(&[
            "link", "add", "t2sfar0", "type", "veth", "peer", "name", "t2sfar1",
        ]);
        s.ip(&["addr", "add", &format!("{FAR}/24"), "dev", "t2sfar0"]);
        s.ip(&["link", "set", "t2sfar0", "up"]);
        s.ip(&["link", "set", "t2sfar1", "up"]);
        s.ip(&[
            "neigh",
            "add",
            &BLACKHOLE.to_string(),
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "t2sfar0",
            "nud",
            "permanent",
        ]);
        // Replies from the servers to the tool's upstream sockets (direct)
        // go back over the veth; that is the connected route already.
        // Idle relayed connections by the thousand need a deep accept
        // queue on the hold server.
        let _ = s.run("sysctl", &["-q", "-w", "net.core.somaxconn=65535"]);
        if self.mode == Mode::Direct {
            a.ip(&[
                "route",
                "add",
                "default",
                "via",
                &PROXY_IP.to_string(),
                "dev",
                VETH_APP,
                "metric",
                "100",
            ]);
        }
    }

    /// Binds a TCP listener on FAR:port in the srv namespace.
    fn listen(&self, port: u16) -> TcpListener {
        self.srv.enter(|| {
            let l = TcpListener::bind((FAR, port)).unwrap();
            l.set_nonblocking(true).unwrap();
            l
        })
    }

    /// Runs `serve` on every connection accepted on FAR:port (a thread
    /// each), until the topology is dropped.
    fn serve(&self, port: u16, serve: impl Fn(TcpStream) + Send + Sync + 'static) {
        let l = self.listen(port);
        let stop = Arc::clone(&self.stop);
        let serve = Arc::new(serve);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
                        let serve = Arc::clone(&serve);
                        std::thread::spawn(move || serve(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    fn servers(&self, sunk: mpsc::Sender<Sunk>, heard: mpsc::Sender<Vec<u8>>) {
        // Echo: everything back, then FIN after the client's FIN.
        self.serve(ECHO, |mut s| {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = s.shutdown(Shutdown::Write);
        });
        // Sink: reads until EOF, checks every byte against the stream
        // whose seed is the first byte, reports.
        let sunk = Mutex::new(sunk);
        self.serve(SINK, move |mut s| {
            let mut buf = vec![0u8; 1 << 16];
            let mut r = Sunk {
                seed: 0,
                bytes: 0,
                corrupt_at: None,
                error: None,
            };
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if r.bytes == 0 {
                            r.seed = buf[0];
                        }
                        for (i, b) in buf[..n].iter().enumerate() {
                            let at = r.bytes + i as u64;
                            if r.corrupt_at.is_none() && *b != byte_at(at, r.seed) {
                                r.corrupt_at = Some(at);
                            }
                        }
                        r.bytes += n as u64;
                    }
                    Err(e) => {
                        r.error = Some(e.to_string());
                        break;
                    }
                }
            }
            let _ = sunk.lock().unwrap().send(r);
        });
        // Speak first: a greeting, FIN, then read what the client sends
        // after it and report it.
        let heard = Mutex::new(heard);
        self.serve(SPEAK_FIRST, move |mut s| {
            let _ = s.write_all(b"hello from the server\n");
            let _ = s.shutdown(Shutdown::Write);
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            let _ = heard.lock().unwrap().send(got);
        });
        // Source: the stream with seed 0 until the peer goes away.
        self.serve(SOURCE, |mut s| {
            let mut at = 0u64;
            loop {
                let buf: Vec<u8> = (at..at + (1 << 16)).map(|i| byte_at(i, 0)).collect();
                if s.write_all(&buf).is_err() {
                    break;
                }
                at += buf.len() as u64;
            }
        });
        // Hold: accepts, sends one byte, keeps the connection open.
        let l = self.listen(HOLD);
        let stop = Arc::clone(&self.stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let _ = s.write_all(b"!");
                        held.push(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        // UDP echo, DNS-like: the reply is "re:" and the request.
        let u = self.srv.enter(|| UdpSocket::bind((FAR, UDP_ECHO)).unwrap());
        u.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::clone(&self.stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((n, from)) = u.recv_from(&mut buf) {
                    let mut reply = b"re:".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = u.send_to(&reply, from);
                }
            }
        });
    }

    /// Starts the proxy: dante for UDP ASSOCIATE and for half-close (microsocks
    /// closes both directions at the first EOF), microsocks otherwise.
    fn start_socks(&mut self, half_close: bool) {
        let use_dante = self.mode == Mode::Socks5Udp
            || (self.mode == Mode::Socks5 && (half_close || !on_path("microsocks")));
        let child = match self.mode {
            Mode::Direct => return,
            _ if use_dante => {
                let conf = self.dir.join("danted.conf");
                std::fs::write(&conf, dante_conf()).unwrap();
                self.srv
                    .command("danted")
                    .arg("-f")
                    .arg(&conf)
                    .arg("-p")
                    .arg(self.dir.join("danted.pid"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            }
            _ => self
                .srv
                .command("microsocks")
                .args(["-i", &PROXY_IP.to_string(), "-p", &PROXY_PORT.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        };
        self.socks = Some(Proc(child));
        let srv = &self.srv;
        wait_for("the SOCKS server", Duration::from_secs(10), || {
            srv.enter(|| TcpStream::connect((PROXY_IP, PROXY_PORT)).is_ok())
        })
        .unwrap();
    }

    /// The next connection the sink server saw end, waiting up to `limit`.
    pub fn next_sunk(&self, limit: Duration) -> Option<Sunk> {
        self.sunk.lock().unwrap().recv_timeout(limit).ok()
    }

    /// What the speak-first server heard on its next connection.
    pub fn next_heard(&self, limit: Duration) -> Option<Vec<u8>> {
        self.heard.lock().unwrap().recv_timeout(limit).ok()
    }

    /// The tool's stderr so far.
    pub fn tool_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("tool.stderr")).unwrap_or_default();
        // The end is what explains a failure; keep messages readable.
        match log.char_indices().rev().nth(2000) {
            Some((at, _)) => format!("...{}", &log[at..]),
            None => log,
        }
    }

    /// The trace file the tool writes (synack's, when started with it).
    pub fn trace_path(&self) -> PathBuf {
        self.dir.join("trace.jsonl")
    }

    fn start_tool(&mut self, extra: &[&str]) {
        let log = std::fs::File::create(self.dir.join("tool.stderr")).unwrap();
        let mut cmd = match &self.tool {
            Tool::Synack => {
                let mut c = self.app.command(BIN);
                c.args(["tun2socks", "--tun", TUN, "--host", TUN_HOST, "--quiet"]);
                match self.mode {
                    Mode::Direct => c.args(["--direct", "--interface", VETH_APP]),
                    _ => c.args(["--socks5", &format!("{PROXY_IP}:{PROXY_PORT}")]),
                };
                c.args(extra);
                c
            }
            Tool::Tun2proxy(p) => {
                let mut c = self.app.command(p.to_str().unwrap());
                c.args([
                    "--tun",
                    TUN,
                    "--proxy",
                    &format!("socks5://{PROXY_IP}:{PROXY_PORT}"),
                ]);
                c.args([
                    "-v",
                    "error",
                    "--max-sessions",
                    "20000",
                    "--tcp-mss",
                    "1460",
                ]);
                c
            }
        };
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.proc = Some(Proc(child));
        let app = &self.app;
        // synack's tool configures the device (`--host`); tun2proxy
        // without `--setup` (which would also rewrite the host's DNS
        // settings) leaves it down and bare, as its README's manual setup
        // says: that is done here.
        let synack = self.tool.is_synack();
        let up = wait_for(
            "the TUN device up with its address",
            Duration::from_secs(10),
            || {
                let out = app.run("ip", &["-o", "-4", "addr", "show", "dev", TUN]);
                out.status.success()
                    && (!synack || String::from_utf8_lossy(&out.stdout).contains("inet "))
            },
        );
        if let Err(e) = up {
            panic!("{e}; the tool said: {}", self.tool_log());
        }
        if !synack {
            app.ip(&["addr", "add", TUN_HOST, "dev", TUN]);
            app.ip(&["link", "set", TUN, "up"]);
        }
        app.ip(&["route", "add", "default", "dev", TUN, "metric", "10"]);
        let ready = wait_for("a relayed echo", Duration::from_secs(10), || {
            self.connect(FAR, ECHO, Duration::from_secs(2))
                .and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    s.write_all(b"?")?;
                    let mut b = [0u8; 1];
                    s.read_exact(&mut b)
                })
                .is_ok()
        });
        if let Err(e) = ready {
            panic!("{e}; the tool said: {}", self.tool_log());
        }
    }

    /// The tool's process id (`ip netns exec` execs it in place).
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().unwrap().0.id()
    }

    /// Sends `sig` to the tool.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Waits for the tool to exit; its status code (-1 for a signal), or
    /// `None` if it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let p = self.proc.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = p.0.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the tool runs.
    pub fn tool_alive(&mut self) -> bool {
        self.proc.as_mut().unwrap().0.try_wait().unwrap().is_none()
    }

    /// A kernel TCP connection from the app namespace (so through the
    /// tunnel) to `ip:port`.
    pub fn connect(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> io::Result<TcpStream> {
        let to = SocketAddr::from((ip, port));
        self.app.enter(|| TcpStream::connect_timeout(&to, timeout))
    }

    /// A UDP socket in the app namespace, connected to `ip:port`.
    pub fn udp(&self, ip: Ipv4Addr, port: u16) -> UdpSocket {
        self.app.enter(|| {
            let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
            u.connect((ip, port)).unwrap();
            u
        })
    }

    /// The tool's CPU time so far (user + system), from /proc/PID/stat.
    pub fn tool_cpu(&self) -> Duration {
        cpu_of(self.pid())
    }

    /// A program run in the app namespace (curl, nc).
    pub fn app_command(&self, program: &str) -> Command {
        self.app.command(program)
    }

    /// Serves the directory `dir` with python3's http.server on FAR:HTTP.
    pub fn start_http(&mut self, dir: &Path) {
        let child = self
            .srv
            .command("python3")
            .args([
                "-m",
                "http.server",
                &HTTP.to_string(),
                "--bind",
                &FAR.to_string(),
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.http = Some(Proc(child));
        let srv = &self.srv;
        wait_for("python3 http.server", Duration::from_secs(10), || {
            srv.enter(|| TcpStream::connect((FAR, HTTP)).is_ok())
        })
        .unwrap();
    }

    /// A scratch directory removed with the topology.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The interface index of the TUN device in the app namespace.
    pub fn tun_index(&self) -> u32 {
        let out = self
            .app
            .run("cat", &[&format!("/sys/class/net/{TUN}/ifindex")]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Whether `program --version`-like probing finds it.
    pub fn have(program: &str, arg: &str) -> bool {
        have(program, arg)
    }
}

/// User plus system CPU time of process `pid`.
pub fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at
    // field 3; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    // SAFETY: a plain query.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// dante's configuration: CONNECT and UDP ASSOCIATE for anyone on the
/// veth, no authentication.
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
         socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect udpassociate udpreply }}\n"
    )
}
