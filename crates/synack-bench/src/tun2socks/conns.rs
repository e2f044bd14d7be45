//! Short connections: the client (kernel sockets on threads that entered
//! the app namespace with setns) connects to the exchange server, sends
//! [`EXCHANGE`] bytes, reads as many back, closes; the server closes after
//! the client's FIN.
//!
//! Two measurements: connections per second with [`CLIENTS`] clients at
//! once for a fixed time, and the latencies of connections one at a time
//! (connect alone, and connect through the last byte of the reply).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::topology::{Topo, EXCHANGE, EXCHANGE_PORT, FAR};
use crate::tun::join;

/// Clients at once in the rate measurement.
pub const CLIENTS: usize = 4;

/// Longest a connect may take before the connection counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection's times, microseconds: (connect, connect to the reply's
/// last byte).
fn exchange() -> Result<(u64, u64), String> {
    let to = SocketAddr::from((FAR, EXCHANGE_PORT));
    let t0 = Instant::now();
    let mut s =
        TcpStream::connect_timeout(&to, CONNECT_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let t1 = Instant::now();
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = [0x5au8; EXCHANGE];
    s.write_all(&buf).map_err(|e| format!("write: {e}"))?;
    s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
    let t2 = Instant::now();
    Ok((
        t1.duration_since(t0).as_micros() as u64,
        t2.duration_since(t0).as_micros() as u64,
    ))
}

/// What the rate measurement saw.
#[derive(Clone, Debug, Default)]
pub struct Rate {
    /// Connections that completed their exchange.
    pub done: u64,
    /// Connections that failed (connect, write or read).
    pub failed: u64,
    /// The first failure's reason.
    pub first_error: Option<String>,
    /// Wall time of the measurement.
    pub secs: f64,
}

impl Rate {
    /// Completed connections per second.
    pub fn per_sec(&self) -> f64 {
        self.done as f64 / self.secs.max(1e-9)
    }
}

/// [`CLIENTS`] clients, each one connection after another, for `secs`.
pub fn rate(t: &Topo, secs: Duration) -> Result<Rate, String> {
    let t0 = Instant::now();
    let until = t0 + secs;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            t.in_app(move || {
                let mut r = Rate::default();
                while Instant::now() < until {
                    match exchange() {
                        Ok(_) => r.done += 1,
                        Err(e) => {
                            r.failed += 1;
                            r.first_error.get_or_insert(e);
                        }
                    }
                }
                Ok(r)
            })
        })
        .collect();
    let mut total = Rate::default();
    for c in clients {
        let r = join(c, "client")?;
        total.done += r.done;
        total.failed += r.failed;
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total.secs = t0.elapsed().as_secs_f64();
    Ok(total)
}

/// Latency percentiles, microseconds.
#[derive(Clone, Debug)]
pub struct Latency {
    /// Connect: p50, p99.
    pub connect: (u64, u64),
    /// Connect to the reply's last byte: p50, p99.
    pub request: (u64, u64),
    /// Connections that failed.
    pub failed: u64,
}

/// The `p`-th percentile (0 to 100) of sorted `v` (nearest rank).
pub fn percentile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// `n` connections one at a time.
pub fn latency(t: &Topo, n: usize) -> Result<Latency, String> {
    let h = t.in_app(move || {
        let (mut c, mut r, mut failed) = (Vec::with_capacity(n), Vec::with_capacity(n), 0);
        let mut first = None;
        for _ in 0..n {
            match exchange() {
                Ok((a, b)) => {
                    c.push(a);
                    r.push(b);
                }
                Err(e) => {
                    failed += 1;
                    first.get_or_insert(e);
                }
            }
        }
        if c.is_empty() {
            return Err(format!(
                "every connection failed (first: {})",
                first.unwrap_or_default()
            ));
        }
        c.sort_unstable();
        r.sort_unstable();
        Ok(Latency {
            connect: (percentile(&c, 50.0), percentile(&c, 99.0)),
            request: (percentile(&r, 50.0), percentile(&r, 99.0)),
            failed,
        })
    });
    join(h, "latency client")
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
