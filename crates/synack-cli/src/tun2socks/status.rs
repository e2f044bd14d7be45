//! The status line: on a terminal, one line on stderr rewritten every
//! second with the connections open and the bytes per second relayed each
//! way. Off with `--quiet` or when stderr is not a terminal (a log file
//! gets no carriage returns).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::relay::Traffic;

/// How often the line is rewritten.
const PERIOD: Duration = Duration::from_secs(1);

/// True when a status line should be shown.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Starts rewriting the status line from `traffic` (on the runtime);
/// [`clear`] it before printing anything else.
pub fn spawn(
    traffic: Arc<Traffic>,
    udp_flows: Arc<std::sync::atomic::AtomicU64>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PERIOD);
        let mut then = (Instant::now(), 0u64, 0u64);
        loop {
            ticker.tick().await;
            let now = Instant::now();
            let (up, down) = (
                traffic.up.load(Ordering::Relaxed),
                traffic.down.load(Ordering::Relaxed),
            );
            let secs = now.duration_since(then.0).as_secs_f64().max(1e-3);
            let line = format_line(
                traffic.open.load(Ordering::Relaxed),
                udp_flows.load(Ordering::Relaxed),
                (up - then.1) as f64 / secs,
                (down - then.2) as f64 / secs,
            );
            then = (now, up, down);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    })
}

/// Erases the status line (before other output, and at exit).
pub fn clear() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}

/// The line's text.
pub fn format_line(open: u64, flows: u64, up_per_s: f64, down_per_s: f64) -> String {
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    format!(
        "{}, {}, up {}/s, down {}/s",
        plural(open, "connection", "connections"),
        plural(flows, "UDP flow", "UDP flows"),
        human_bytes(up_per_s),
        human_bytes(down_per_s)
    )
}

/// Bytes in SI units, three significant digits.
fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b.max(0.0);
    let mut unit = 0;
    while v >= 999.5 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else if v < 9.995 {
        format!("{v:.2} {}", UNITS[unit])
    } else if v < 99.95 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_reads_well() {
        assert_eq!(
            format_line(1, 0, 0.0, 1_234_567.0),
            "1 connection, 0 UDP flows, up 0 B/s, down 1.23 MB/s"
        );
        assert_eq!(
            format_line(12, 1, 999.0, 1.25e9),
            "12 connections, 1 UDP flow, up 999 B/s, down 1.25 GB/s"
        );
        assert_eq!(human_bytes(45_600.0), "45.6 kB");
        assert_eq!(human_bytes(456_000.0), "456 kB");
        assert_eq!(human_bytes(999_700.0), "1.00 MB");
    }
}
