//! Memory: bytes per idle ESTABLISHED connection (no data ever sent, so no
//! data buffer exists) and per TIME-WAIT connection, as the growth of the
//! process's peak RSS (`VmHWM`) over its RSS before the connections existed,
//! divided by their count. Each measurement runs in a fresh process (the
//! bench binary re-executed with [`CHILD_ENV`] set), so that peaks do not
//! mix.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use synack_core::{Event, Instant, Stack};

use crate::report::{Figure, Progress};
use crate::synack_side::{self, client_endpoint, client_ips, SERVER_IP, SERVER_PORT};
use crate::{smoltcp_side, Sizes};

/// Connections opened per batch (the link never holds more than a batch's
/// packets, so in-flight packets do not inflate the peak).
pub const BATCH: u64 = 1_000;

/// Which connections are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Idle ESTABLISHED connections, both ends of each counted.
    Established,
    /// TIME-WAIT connections (the client's end; the server's is gone).
    TimeWait,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Established => "established",
            Kind::TimeWait => "time-wait",
        }
    }
}

/// (VmRSS, VmHWM) of this process, bytes.
pub fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

struct SynackCounter {
    kind: Kind,
    connected: u64,
}

impl synack_side::App for SynackCounter {
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) {
        match event {
            Event::Connected(id) => {
                self.connected += 1;
                if self.kind == Kind::TimeWait {
                    let _ = stack.close(now, id);
                }
            }
            Event::Incoming(lid) => while stack.accept(lid).is_ok() {},
            Event::Readable(id) => {
                let mut buf = [0u8; 64];
                if stack.recv(now, id, &mut buf) == Ok(0) {
                    let _ = stack.close(now, id);
                }
            }
            _ => {}
        }
    }
}

/// Bytes per connection of `kind` on synack, with `n` of them, in this process.
pub fn synack(kind: Kind, n: u64) -> Result<f64, String> {
    // TIME-WAIT must not run out during the run.
    let cfg = synack_side::config(4096, Duration::from_secs(3600));
    let mut pair = synack_side::Pair::new(&cfg, &client_ips(n));
    let server = SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT);
    pair.b
        .listen(server, BATCH as usize + 64)
        .map_err(|e| format!("listen: {e:?}"))?;
    let mut client = SynackCounter { kind, connected: 0 };
    let mut srv = SynackCounter { kind, connected: 0 };
    let (base, _) = rss().ok_or("cannot read /proc/self/status")?;
    let mut opened = 0u64;
    while opened < n {
        let batch = BATCH.min(n - opened);
        let now = pair.instant();
        for _ in 0..batch {
            pair.a
                .connect(now, Some(client_endpoint(opened)), server)
                .map_err(|e| format!("connect: {e:?}"))?;
            opened += 1;
        }
        let settled = |p: &synack_side::Pair, c: &SynackCounter| match kind {
            Kind::Established => c.connected == opened && p.b.connection_count() as u64 == opened,
            Kind::TimeWait => p.a.time_wait_count() as u64 == opened && p.b.connection_count() == 0,
        };
        while !settled(&pair, &client) {
            if !pair.step(&mut client, &mut srv) || pair.now > 3_600_000_000 {
                return Err(format!(
                    "{} of {opened} connections settled",
                    client.connected
                ));
            }
        }
    }
    let (_, peak) = rss().ok_or("cannot read /proc/self/status")?;
    let count = match kind {
        Kind::Established => 2 * n,
        Kind::TimeWait => n,
    };
    Ok(peak.saturating_sub(base) as f64 / count as f64)
}

/// Bytes per connection of `kind` on smoltcp, with `n` of them, in this
/// process. Sockets get empty data buffers (nothing is ever sent), so no
/// data buffer is counted.
pub fn smoltcp(kind: Kind, n: u64) -> Result<f64, String> {
    let mut pair = smoltcp_side::Pair::new(n);
    let server = smoltcp_side::endpoint(SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT));
    let (base, _) = rss().ok_or("cannot read /proc/self/status")?;
    let listeners = match kind {
        Kind::Established => n as usize,
        Kind::TimeWait => BATCH as usize + 64,
    };
    let mut srv = SmoltcpMemServer::new(&mut pair.b, listeners, kind);
    let mut client = smoltcp_side::NoApp;
    let mut handles = Vec::with_capacity(n as usize);
    let mut opened = 0u64;
    while opened < n {
        let batch = BATCH.min(n - opened);
        for _ in 0..batch {
            let mut s = smoltcp_side::socket(0);
            s.connect(
                pair.a.iface.context(),
                server,
                smoltcp_side::endpoint(client_endpoint(opened)),
            )
            .map_err(|e| format!("connect: {e:?}"))?;
            handles.push(pair.a.sockets.add(s));
            opened += 1;
        }
        loop {
            let now = pair.instant();
            let mut settled = true;
            for &h in &handles[handles.len() - batch as usize..] {
                let s = pair.a.sockets.get_mut::<tcp::Socket>(h);
                match (kind, s.state()) {
                    (_, tcp::State::SynSent) => settled = false,
                    (Kind::Established, tcp::State::Established) => {}
                    (Kind::TimeWait, tcp::State::Established) => {
                        s.close();
                        settled = false;
                    }
                    (Kind::TimeWait, tcp::State::TimeWait) => {}
                    (_, other) => {
                        if matches!(other, tcp::State::Closed) {
                            return Err("a connection was refused".into());
                        }
                        settled = false;
                    }
                }
            }
            if kind == Kind::TimeWait {
                settled &= srv.idle(&mut pair.b);
            }
            if settled {
                break;
            }
            let _ = now;
            if !pair.step(&mut client, &mut srv) || pair.now > 5_000_000 {
                return Err("connections did not settle".into());
            }
        }
    }
    let (_, peak) = rss().ok_or("cannot read /proc/self/status")?;
    let count = match kind {
        Kind::Established => 2 * n,
        Kind::TimeWait => n,
    };
    Ok(peak.saturating_sub(base) as f64 / count as f64)
}

/// The smoltcp server of the memory benchmark: its listeners accept; for
/// TIME-WAIT it closes at the peer's FIN and listens again.
struct SmoltcpMemServer {
    pool: Vec<smoltcp::iface::SocketHandle>,
    kind: Kind,
}

impl SmoltcpMemServer {
    fn new(host: &mut smoltcp_side::Host, n: usize, kind: Kind) -> Self {
        let pool = (0..n)
            .map(|_| {
                let mut s = smoltcp_side::socket(0);
                s.listen(SERVER_PORT).expect("listen");
                host.sockets.add(s)
            })
            .collect();
        SmoltcpMemServer { pool, kind }
    }

    /// Every listener is listening again.
    fn idle(&self, host: &mut smoltcp_side::Host) -> bool {
        self.pool
            .iter()
            .all(|&h| host.sockets.get::<tcp::Socket>(h).state() == tcp::State::Listen)
    }
}

impl smoltcp_side::App for SmoltcpMemServer {
    fn after_poll(&mut self, _: SmolInstant, host: &mut smoltcp_side::Host, _: bool) {
        if self.kind != Kind::TimeWait {
            return;
        }
        for &h in &self.pool {
            let s = host.sockets.get_mut::<tcp::Socket>(h);
            match s.state() {
                tcp::State::CloseWait => s.close(),
                tcp::State::Closed => {
                    let _ = s.listen(SERVER_PORT);
                }
                _ => {}
            }
        }
    }
}

/// The environment variable that makes a re-executed bench binary one
/// memory measurement: its value is the measurement's spec (see [`child`]).
/// An environment variable rather than a flag, so that no command line
/// carries an option that is not for its users.
pub const CHILD_ENV: &str = "SYNACK_BENCH_MEMORY_CHILD";

/// In a process started by [`measure`] ([`CHILD_ENV`] set): runs the one
/// measurement it was started for. `None` in any other process.
pub fn child_from_env() -> Option<Result<f64, String>> {
    let spec = std::env::var_os(CHILD_ENV)?;
    Some(match spec.to_str() {
        Some(spec) => child(spec),
        None => Err(format!("{CHILD_ENV} is not UTF-8")),
    })
}

/// One measurement in this process, by spec `STACK:KIND:N`, for example
/// `synack:time-wait:1000000`. Returns bytes per connection.
pub fn child(spec: &str) -> Result<f64, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [stack, kind, n] = parts[..] else {
        return Err(format!("bad memory spec `{spec}`"));
    };
    let kind = match kind {
        "established" => Kind::Established,
        "time-wait" => Kind::TimeWait,
        _ => return Err(format!("bad kind `{kind}`")),
    };
    let n: u64 = n.parse().map_err(|_| format!("bad count `{n}`"))?;
    match stack {
        "synack" => synack(kind, n),
        "smoltcp" => smoltcp(kind, n),
        _ => Err(format!("bad stack `{stack}`")),
    }
}

/// Runs one measurement in a fresh process: `exe bench` with [`CHILD_ENV`]
/// set to the spec, which prints bytes per connection on stdout (see
/// [`child_from_env`]); or in this process when `exe` is `None`.
pub fn measure(exe: Option<&Path>, stack: &str, kind: Kind, n: u64) -> Result<f64, String> {
    let spec = format!("{stack}:{}:{n}", kind.name());
    let Some(exe) = exe else {
        return child(&spec);
    };
    let out = Command::new(exe)
        .arg("bench")
        .env(CHILD_ENV, &spec)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "the child printed no figure".to_string())
}

/// Every memory case: synack and smoltcp, ESTABLISHED and TIME-WAIT. `exe`
/// is the `synack` binary (built with the `bench` feature) to re-execute
/// (`None`: measure in this process).
pub fn run(sizes: &Sizes, progress: &mut dyn Progress, exe: Option<&Path>) -> Vec<Figure> {
    let mut out = Vec::new();
    for (stack, n) in [
        ("synack", sizes.memory_synack),
        ("smoltcp", sizes.memory_smoltcp),
    ] {
        for kind in [Kind::Established, Kind::TimeWait] {
            progress.case(&format!("memory {stack} {} n={n}", kind.name()));
            let stack_name: &'static str = if stack == "synack" {
                "synack"
            } else {
                "smoltcp"
            };
            let f = match measure(exe, stack, kind, n as u64) {
                Ok(v) => Figure::new("memory", stack_name, v, "bytes/conn"),
                Err(e) => Figure::skipped("memory", stack_name, "bytes/conn", &e),
            };
            let f = f.param("state", kind.name()).param("connections", n);
            // smoltcp has no TIME-WAIT apart from a whole socket: what its
            // users who free sockets as they enter TIME-WAIT save (the
            // churn's `time_wait=dropped`) is this row, and the TIME-WAIT.
            out.push(match (stack_name, kind) {
                ("smoltcp", Kind::TimeWait) if f.value.is_some() => {
                    f.note("a whole socket held through TIME-WAIT; freed at TIME-WAIT, none")
                }
                _ => f,
            });
        }
    }
    out
}
