//! Idle relayed connections: the tool's resident memory before and after
//! `n` connections to the hold server are open (each one relayed all the
//! way: counted when the hold server has accepted it), divided by `n`; and
//! the tool's CPU time while they sit idle.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::topology::{wait_for, Topo, FAR, HOLD_PORT};
use crate::tun::join;

/// Threads opening the connections.
const OPENERS: usize = 4;

/// What the measurement saw.
#[derive(Clone, Debug)]
pub struct Idle {
    /// RSS growth per connection, bytes.
    pub bytes_per_conn: f64,
    /// The tool's RSS before and with the connections, bytes.
    pub rss: (u64, u64),
    /// The tool's CPU time over the idle period.
    pub cpu: Duration,
    /// How long it sat idle.
    pub idle: Duration,
    /// How long opening them took.
    pub open: Duration,
}

/// VmRSS of process `pid`, bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time of process `pid`, all its threads, from the scheduler's
/// nanosecond counts (`/proc/PID/task/*/schedstat`: /proc/PID/stat counts
/// in clock ticks, too coarse for an idle process).
pub fn cpu_of(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns = 0u64;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(Duration::from_nanos(ns))
}

/// Opens `n` connections to the hold server from the app namespace, waits
/// until the hold server holds them all, measures, closes them.
pub fn measure(t: &mut Topo, n: usize, idle: Duration) -> Result<Idle, String> {
    let pid = t.tool.as_ref().ok_or("no tool process")?.pid();
    let rss = || rss_of(pid).ok_or("cannot read the tool's /proc status");
    // What the readiness probe and earlier cases left settles first.
    std::thread::sleep(Duration::from_millis(500));
    let hold = t.start_hold()?;
    let before = rss()?;
    let t0 = Instant::now();
    let openers: Vec<_> = (0..OPENERS)
        .map(|i| {
            let count = n / OPENERS + usize::from(i < n % OPENERS);
            t.in_app(move || {
                let to = SocketAddr::from((FAR, HOLD_PORT));
                let mut v = Vec::with_capacity(count);
                for k in 0..count {
                    let s = TcpStream::connect_timeout(&to, Duration::from_secs(10))
                        .map_err(|e| format!("connection {k} of {count}: {e}"))?;
                    v.push(s);
                }
                Ok(v)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(n);
    let mut failed = None;
    for o in openers {
        match join(o, "opener") {
            Ok(v) => clients.extend(v),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        return Err(format!("{} of {n} opened; {e}", clients.len()));
    }
    let mut arrived = 0;
    let all = wait_for(
        "every idle connection relayed to the hold server",
        Duration::from_secs(60),
        || {
            std::thread::sleep(Duration::from_millis(200));
            arrived = t.held();
            arrived >= n
        },
    );
    all.map_err(|e| format!("{e}: {arrived} of {n} arrived"))?;
    let open = t0.elapsed();
    // The tool's buffers for the handshakes' packets are back in its
    // allocator by now.
    std::thread::sleep(Duration::from_secs(1));
    let with = rss()?;
    let cpu0 = cpu_of(pid).ok_or("cannot read the tool's /proc stat")?;
    std::thread::sleep(idle);
    let cpu1 = cpu_of(pid).ok_or("cannot read the tool's /proc stat")?;
    t.tool_alive()?;
    drop(clients);
    drop(hold);
    Ok(Idle {
        bytes_per_conn: with.saturating_sub(before) as f64 / n as f64,
        rss: (before, with),
        cpu: cpu1.saturating_sub(cpu0),
        idle,
        open,
    })
}
