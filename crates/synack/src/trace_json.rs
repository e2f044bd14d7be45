//! JSON Lines trace output (`--trace FILE`).
//!
//! One JSON object per line, in the shape `shared/CONTRACT.md` ("The trace")
//! fixes: every object has `t` (seconds, a float), `conn`
//! (`"LOCAL_IP:PORT-REMOTE_IP:PORT"`) and `event` (`state`, `send`, `recv`,
//! `drop`, `cwnd`), then the keys of its kind:
//!
//! ```text
//! {"t":0.000000,"conn":"10.0.0.1:49152-10.0.0.2:7","event":"state","from":"CLOSED","to":"SYN-SENT"}
//! {"t":0.000000,"conn":"10.0.0.1:49152-10.0.0.2:7","event":"send","flags":"S","seq":1000,"ack":0,"len":0,"win":65535,"rtx":false}
//! {"t":0.010000,"conn":"10.0.0.2:7-10.0.0.1:49152","event":"recv","flags":"S","seq":1000,"ack":0,"len":0,"win":65535}
//! {"t":0.020000,"conn":"-","event":"drop","reason":"bad checksum"}
//! {"t":0.030000,"conn":"10.0.0.1:49152-10.0.0.2:7","event":"cwnd","cwnd":5792,"ssthresh":4294967295}
//! ```
//!
//! `cwnd` events (an addition to the contract's table) give the sender's
//! congestion window and slow-start threshold in bytes whenever either
//! changed while a segment or a timer was handled; `ssthresh` is
//! 4294967295 until the first loss sets it.
//!
//! Keys come in that fixed order (`t`, then `host` when given, `conn`,
//! `event`, ...), so a line reads the same in every run. `t` is written with
//! exactly six decimals (the core's clock counts microseconds), which is an
//! exact decimal rendering of the instant. Strings are escaped by
//! `serde_json`.
//!
//! Two extensions beyond the contract: a `host` key naming the stack (when
//! several stacks share one file, as in `synack demo`), and, only when
//! enabled with [`TraceWriter::include_link`], `link` events saying what the
//! simulated link did to a packet (`"fate"`: `"lost"`, `"duplicated"` or
//! `"corrupted"`).
//!
//! Output is buffered; it is flushed on a write when a second of wall-clock
//! time has passed since the last flush, on [`TraceWriter::flush`] and when
//! the writer is dropped.

use std::io::{self, BufWriter, Write};
use std::time::Duration;

use synack_core::{ConnTuple, Instant, SegmentInfo, TraceEvent, TraceKind};

use crate::record::{HostId, LinkFate, Record};

/// How long buffered lines may wait, in wall-clock time, before a write flushes them.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Writes trace events as JSON Lines (see the [module documentation](self)).
pub struct TraceWriter<W: Write> {
    out: BufWriter<W>,
    include_link: bool,
    last_flush: std::time::Instant,
    /// The line being built, reused between events.
    line: Vec<u8>,
    /// Per host, the connection of the last segment it sent: a link record
    /// concerns that segment but does not name its connection.
    last_send_conn: Vec<(HostId, Option<ConnTuple>)>,
}

impl<W: Write> TraceWriter<W> {
    /// A writer that writes to `w` (buffered; see the module documentation
    /// for when it flushes). `link` events are off.
    pub fn new(w: W) -> Self {
        TraceWriter {
            out: BufWriter::new(w),
            include_link: false,
            last_flush: std::time::Instant::now(),
            line: Vec::with_capacity(256),
            last_send_conn: Vec::new(),
        }
    }

    /// Turns the `link` extension events on or off (off by default: the
    /// contract lists only `state`, `send`, `recv` and `drop`).
    pub fn include_link(mut self, on: bool) -> Self {
        self.include_link = on;
        self
    }

    /// Writes one trace event as one line. With `host_label`, the line
    /// carries a `"host"` key naming the stack it came from.
    pub fn write_event(&mut self, host_label: Option<&str>, ev: &TraceEvent) -> io::Result<()> {
        self.begin_line(ev.at, host_label, ev.conn.as_ref());
        match ev.kind {
            TraceKind::State { from, to } => {
                self.line.extend_from_slice(b"\"state\",\"from\":");
                push_json_str(&mut self.line, from.name());
                self.line.extend_from_slice(b",\"to\":");
                push_json_str(&mut self.line, to.name());
            }
            TraceKind::Send { seg, rtx } => {
                self.line.extend_from_slice(b"\"send\",");
                push_segment(&mut self.line, &seg);
                self.line.extend_from_slice(if rtx {
                    b",\"rtx\":true"
                } else {
                    b",\"rtx\":false"
                });
            }
            TraceKind::Recv { seg } => {
                self.line.extend_from_slice(b"\"recv\",");
                push_segment(&mut self.line, &seg);
            }
            TraceKind::Drop { reason } => {
                self.line.extend_from_slice(b"\"drop\",\"reason\":");
                push_json_str(&mut self.line, reason);
            }
            TraceKind::Cwnd { cwnd, ssthresh } => {
                // Writing into a Vec cannot fail.
                let _ = write!(
                    self.line,
                    "\"cwnd\",\"cwnd\":{cwnd},\"ssthresh\":{ssthresh}"
                );
            }
        }
        self.end_line()
    }

    /// Writes a `link` extension event (what the link did to a packet sent
    /// at `at` on connection `conn`), or nothing when link events are off.
    pub fn write_link(
        &mut self,
        host_label: Option<&str>,
        at: Instant,
        conn: Option<&ConnTuple>,
        fate: LinkFate,
    ) -> io::Result<()> {
        if !self.include_link {
            return Ok(());
        }
        self.begin_line(at, host_label, conn);
        self.line.extend_from_slice(b"\"link\",\"fate\":");
        push_json_str(&mut self.line, fate_name(fate));
        self.end_line()
    }

    /// Writes one record of a run: a trace record as [`write_event`], a link
    /// record as [`write_link`] (naming the connection of the segment the
    /// same host sent last, as seen through this writer). `host_label`
    /// names the record's host.
    ///
    /// [`write_event`]: TraceWriter::write_event
    /// [`write_link`]: TraceWriter::write_link
    pub fn write_record(&mut self, host_label: Option<&str>, record: &Record) -> io::Result<()> {
        match record {
            Record::Trace { host, event } => {
                if let TraceKind::Send { .. } = event.kind {
                    match self.last_send_conn.iter_mut().find(|(h, _)| h == host) {
                        Some(entry) => entry.1 = event.conn,
                        None => self.last_send_conn.push((*host, event.conn)),
                    }
                }
                self.write_event(host_label, event)
            }
            Record::Link { at, from, fate } => {
                let conn = self
                    .last_send_conn
                    .iter()
                    .find(|(h, _)| h == from)
                    .and_then(|(_, c)| *c);
                self.write_link(host_label, *at, conn.as_ref(), *fate)
            }
            // A scenario's narration is not part of the trace.
            Record::Note { .. } => Ok(()),
        }
    }

    /// Writes out everything buffered and flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = std::time::Instant::now();
        self.out.flush()
    }

    /// Starts a line: `{"t":..,["host":..,]"conn":..,"event":` (the event
    /// name follows).
    fn begin_line(&mut self, at: Instant, host_label: Option<&str>, conn: Option<&ConnTuple>) {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"t\":");
        push_secs(line, at);
        if let Some(host) = host_label {
            line.extend_from_slice(b",\"host\":");
            push_json_str(line, host);
        }
        line.extend_from_slice(b",\"conn\":");
        push_json_str(line, &conn_string(conn));
        line.extend_from_slice(b",\"event\":");
    }

    /// Closes the line, writes it and flushes when the interval has passed.
    fn end_line(&mut self) -> io::Result<()> {
        self.line.extend_from_slice(b"}\n");
        self.out.write_all(&self.line)?;
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; call `flush` to see them.
        let _ = self.out.flush();
    }
}

/// The contract's `conn` string: `"LOCAL_IP:PORT-REMOTE_IP:PORT"` (IPv6
/// addresses in brackets, as `SocketAddr` displays them), or `"-"` when the
/// event concerns no known connection.
pub fn conn_string(conn: Option<&ConnTuple>) -> String {
    match conn {
        Some(c) => format!("{}-{}", c.local, c.remote),
        None => "-".to_owned(),
    }
}

/// The `fate` value of a `link` event.
fn fate_name(fate: LinkFate) -> &'static str {
    match fate {
        LinkFate::Lost => "lost",
        LinkFate::Duplicated => "duplicated",
        LinkFate::Corrupted => "corrupted",
        LinkFate::Delayed(_) => "delayed",
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_str(line: &mut Vec<u8>, s: &str) {
    // Serializing a `str` into a `Vec` cannot fail.
    serde_json::to_writer(&mut *line, s).expect("serializing a str into a Vec");
}

/// Appends the instant as seconds with exactly six decimals (exact: the
/// clock counts microseconds).
fn push_secs(line: &mut Vec<u8>, at: Instant) {
    let us = at.micros();
    // Writing into a Vec cannot fail.
    let _ = write!(line, "{}.{:06}", us / 1_000_000, us % 1_000_000);
}

/// Appends `"flags":..,"seq":..,"ack":..,"len":..,"win":..`.
fn push_segment(line: &mut Vec<u8>, seg: &SegmentInfo) {
    let mut letters = [0u8; 6];
    line.extend_from_slice(b"\"flags\":");
    push_json_str(line, seg.flags.letters(&mut letters));
    // Writing into a Vec cannot fail.
    let _ = write!(
        line,
        ",\"seq\":{},\"ack\":{},\"len\":{},\"win\":{}",
        seg.seq, seg.ack, seg.len, seg.win
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use synack_core::State;
    use synack_wire::TcpFlags;

    fn tuple(local: &str, remote: &str) -> ConnTuple {
        ConnTuple {
            local: local.parse::<SocketAddr>().unwrap(),
            remote: remote.parse::<SocketAddr>().unwrap(),
        }
    }

    fn client() -> Option<ConnTuple> {
        Some(tuple("10.0.0.1:49152", "10.0.0.2:7"))
    }

    fn seg(flags: TcpFlags, seq: u32, ack: u32, len: u32, win: u16) -> SegmentInfo {
        SegmentInfo {
            flags,
            seq,
            ack,
            len,
            win,
        }
    }

    /// Writes the events (with their host labels) and returns the lines.
    fn lines_of(events: &[(Option<&str>, TraceEvent)]) -> Vec<String> {
        let mut out = Vec::new();
        {
            let mut w = TraceWriter::new(&mut out);
            for (host, ev) in events {
                w.write_event(*host, ev).unwrap();
            }
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        text.lines().map(str::to_owned).collect()
    }

    fn one_line(host: Option<&str>, ev: TraceEvent) -> String {
        let mut lines = lines_of(&[(host, ev)]);
        assert_eq!(lines.len(), 1);
        lines.pop().unwrap()
    }

    #[test]
    fn state_event_exact() {
        let ev = TraceEvent {
            at: Instant::from_micros(0),
            conn: client(),
            kind: TraceKind::State {
                from: State::Closed,
                to: State::SynSent,
            },
        };
        assert_eq!(
            one_line(None, ev),
            r#"{"t":0.000000,"conn":"10.0.0.1:49152-10.0.0.2:7","event":"state","from":"CLOSED","to":"SYN-SENT"}"#
        );
    }

    #[test]
    fn cwnd_event_exact() {
        let ev = TraceEvent {
            at: Instant::from_micros(1_500_000),
            conn: client(),
            kind: TraceKind::Cwnd {
                cwnd: 14_480,
                ssthresh: 7240,
            },
        };
        assert_eq!(
            one_line(None, ev),
            r#"{"t":1.500000,"conn":"10.0.0.1:49152-10.0.0.2:7","event":"cwnd","cwnd":14480,"ssthresh":7240}"#
        );
    }

    #[test]
    fn send_event_exact() {
        let ev = TraceEvent {
            at: Instant::from_micros(10_250),
            conn: client(),
            kind: TraceKind::Send {
                seg: seg(TcpFlags::SYN | TcpFlags::ACK, 4_294_967_295, 1235, 0, 65535),
                rtx: true,
            },
        };
        assert_eq!(
            one_line(None, ev),
            r#"{"t":0.010250,"conn":"10.0.0.1:49152-10.0.0.2:7","event":"send","flags":"SA","seq":4294967295,"ack":1235,"len":0,"win":65535,"rtx":true}"#
        );
    }

    #[test]
    fn recv_event_exact_with_host() {
        let ev = TraceEvent {
            at: Instant::from_secs(61) + Duration::from_micros(7),
            conn: Some(tuple("10.0.0.2:7", "10.0.0.1:49152")),
            kind: TraceKind::Recv {
                seg: seg(TcpFlags::PSH | TcpFlags::ACK, 1235, 100, 1024, 512),
            },
        };
        assert_eq!(
            one_line(Some("server"), ev),
            r#"{"t":61.000007,"host":"server","conn":"10.0.0.2:7-10.0.0.1:49152","event":"recv","flags":"PA","seq":1235,"ack":100,"len":1024,"win":512}"#
        );
    }

    #[test]
    fn drop_event_exact_without_conn() {
        let ev = TraceEvent {
            at: Instant::from_millis(20),
            conn: None,
            kind: TraceKind::Drop {
                reason: "bad checksum",
            },
        };
        assert_eq!(
            one_line(None, ev),
            r#"{"t":0.020000,"conn":"-","event":"drop","reason":"bad checksum"}"#
        );
    }

    #[test]
    fn ipv6_conn_in_brackets() {
        let c = tuple("[2001:db8::1]:49152", "[::1]:7");
        assert_eq!(conn_string(Some(&c)), "[2001:db8::1]:49152-[::1]:7");
        assert_eq!(conn_string(None), "-");
        let ev = TraceEvent {
            at: Instant::ZERO,
            conn: Some(c),
            kind: TraceKind::Drop {
                reason: "outside the window",
            },
        };
        let line = one_line(None, ev);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["conn"], "[2001:db8::1]:49152-[::1]:7");
    }

    #[test]
    fn strings_are_escaped() {
        let ev = TraceEvent {
            at: Instant::ZERO,
            conn: None,
            kind: TraceKind::Drop {
                reason: "a \"quoted\"\\ reason\n",
            },
        };
        let line = one_line(Some("host \"x\""), ev);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["reason"], "a \"quoted\"\\ reason\n");
        assert_eq!(v["host"], "host \"x\"");
    }

    #[test]
    fn every_kind_parses_back() {
        let conn = client();
        let events = [
            (
                None,
                TraceEvent {
                    at: Instant::from_micros(1),
                    conn,
                    kind: TraceKind::State {
                        from: State::Listen,
                        to: State::SynReceived,
                    },
                },
            ),
            (
                Some("client"),
                TraceEvent {
                    at: Instant::from_micros(1_500_000),
                    conn,
                    kind: TraceKind::Send {
                        seg: seg(TcpFlags::FIN | TcpFlags::ACK, 7, 8, 0, 100),
                        rtx: false,
                    },
                },
            ),
            (
                None,
                TraceEvent {
                    at: Instant::from_micros(2_000_001),
                    conn,
                    kind: TraceKind::Recv {
                        seg: seg(TcpFlags::RST, 9, 0, 0, 0),
                    },
                },
            ),
            (
                None,
                TraceEvent {
                    at: Instant::from_micros(3),
                    conn: None,
                    kind: TraceKind::Drop {
                        reason: "no such connection",
                    },
                },
            ),
        ];
        let lines = lines_of(&events);
        assert_eq!(lines.len(), 4);
        let parsed: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = parsed
            .iter()
            .map(|v| v["event"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["state", "send", "recv", "drop"]);
        for v in &parsed {
            assert!(v["t"].is_f64(), "{v}");
            assert!(v["conn"].is_string(), "{v}");
        }
        assert_eq!(parsed[0]["t"].as_f64().unwrap(), 0.000001);
        assert_eq!(parsed[0]["to"], "SYN-RECEIVED");
        assert_eq!(parsed[1]["t"].as_f64().unwrap(), 1.5);
        assert_eq!(parsed[1]["host"], "client");
        assert_eq!(parsed[1]["flags"], "FA");
        assert_eq!(parsed[1]["rtx"], false);
        assert_eq!(parsed[2]["flags"], "R");
        assert!(parsed[2].get("rtx").is_none());
        assert!(parsed[2].get("host").is_none());
        assert_eq!(parsed[3]["reason"], "no such connection");
        assert_eq!(parsed[3]["conn"], "-");
    }

    fn run_records(include_link: bool) -> Vec<String> {
        let send = TraceEvent {
            at: Instant::from_millis(5),
            conn: client(),
            kind: TraceKind::Send {
                seg: seg(TcpFlags::SYN, 1, 0, 0, 65535),
                rtx: false,
            },
        };
        let records = [
            Record::Trace {
                host: HostId(0),
                event: send,
            },
            Record::Link {
                at: Instant::from_millis(5),
                from: HostId(0),
                fate: LinkFate::Lost,
            },
        ];
        let mut out = Vec::new();
        {
            let mut w = TraceWriter::new(&mut out).include_link(include_link);
            for r in &records {
                w.write_record(Some("client"), r).unwrap();
            }
            w.flush().unwrap();
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn link_records_only_when_enabled() {
        assert_eq!(run_records(false).len(), 1);
        let lines = run_records(true);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            r#"{"t":0.005000,"host":"client","conn":"10.0.0.1:49152-10.0.0.2:7","event":"link","fate":"lost"}"#
        );
    }

    #[test]
    fn flush_reaches_the_underlying_writer() {
        /// Counts flushes of the underlying writer.
        struct Counting {
            bytes: Vec<u8>,
            flushes: usize,
        }
        impl Write for Counting {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.bytes.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                self.flushes += 1;
                Ok(())
            }
        }
        let mut sink = Counting {
            bytes: Vec::new(),
            flushes: 0,
        };
        {
            let mut w = TraceWriter::new(&mut sink);
            let ev = TraceEvent {
                at: Instant::ZERO,
                conn: None,
                kind: TraceKind::Drop { reason: "x" },
            };
            w.write_event(None, &ev).unwrap();
            // Fresh writer, well under a second: still buffered.
            w.flush().unwrap();
            w.write_event(None, &ev).unwrap();
            // Pretend the last flush was long ago: the next write flushes.
            w.last_flush = w
                .last_flush
                .checked_sub(Duration::from_secs(2))
                .expect("the monotonic clock is past 2 s");
            w.write_event(None, &ev).unwrap();
        }
        assert_eq!(sink.bytes.iter().filter(|&&b| b == b'\n').count(), 3);
        // flush(), the timed flush, and drop.
        assert_eq!(sink.flushes, 3);
    }
}
