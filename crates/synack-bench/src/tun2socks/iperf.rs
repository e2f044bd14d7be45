//! Throughput: iperf3 in the app namespace against `iperf3 -s` on the far
//! address, its JSON report read for what the receiving end counted.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::topology::{FAR, IPERF_PORT};
use crate::tun::Netns;

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The app sends (iperf3's default).
    Upload,
    /// The app receives (`iperf3 -R`).
    Download,
}

impl Direction {
    /// The `direction` param.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// What one iperf3 run measured.
#[derive(Clone, Debug)]
pub struct Run {
    /// Gbit/s, as the receiver counted it.
    pub gbit: f64,
    /// Retransmissions the senders counted (`None` where iperf3 does not say).
    pub retransmits: Option<u64>,
}

/// Runs `iperf3 -c FAR -P streams -t secs` (with `-R` for a download) in
/// namespace `app`; gives up (killing it) `secs + 30` s in.
pub fn run(app: &Netns, streams: usize, dir: Direction, secs: u64) -> Result<Run, String> {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &app.name, "iperf3", "-J", "-c"])
        .arg(FAR.to_string())
        .args(["-p", &IPERF_PORT.to_string()])
        .args(["-t", &secs.to_string(), "-P", &streams.to_string()])
        .args(["--connect-timeout", "5000"]);
    if dir == Direction::Download {
        c.arg("-R");
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run iperf3: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(secs + 30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("iperf3 still running {}s in (a stall)", secs + 30));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("iperf3: {e}")),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    parse(&String::from_utf8_lossy(&out.stdout)).map_err(|e| {
        format!(
            "iperf3: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// Reads iperf3's JSON report (`-J`).
pub fn parse(json: &str) -> Result<Run, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("no JSON report ({e})"))?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(e.to_string());
    }
    let end = v.get("end").ok_or("no `end` in the report")?;
    let bps = end
        .pointer("/sum_received/bits_per_second")
        .and_then(Value::as_f64)
        .ok_or("no end.sum_received.bits_per_second")?;
    let retransmits = end.pointer("/sum_sent/retransmits").and_then(Value::as_u64);
    Ok(Run {
        gbit: bps / 1e9,
        retransmits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receivers_count_is_read() {
        let json = r#"{"start":{},"end":{"sum_sent":{"bits_per_second":2.5e9,"retransmits":3},
            "sum_received":{"bits_per_second":2.4e9}}}"#;
        let r = parse(json).unwrap();
        assert!((r.gbit - 2.4).abs() < 1e-9, "{r:?}");
        assert_eq!(r.retransmits, Some(3));
    }

    #[test]
    fn an_error_report_is_an_error() {
        let json = r#"{"start":{},"end":{},"error":"unable to connect to server"}"#;
        assert_eq!(
            parse(json).unwrap_err(),
            "unable to connect to server".to_string()
        );
        assert!(parse("").is_err());
    }
}
