//! `tun2socks`: synack's `synack tun2socks` beside tun2proxy (ipstack
//! inside), with the kernel's direct path as the ceiling (needs root: it
//! makes its own network namespaces and removes them afterwards; no packet
//! leaves them).
//!
//! The topology (`topology.rs`): an app namespace whose default route is
//! the TUN device the tool owns, a server namespace behind a veth holding
//! the far servers and the SOCKS5 proxy (dante; microsocks where dante is
//! missing). Each case builds it afresh for one peer at one MTU:
//!
//! - **kernel**: no tunnel; the app namespace's default route is the veth.
//! - **synack** `upstream=socks5`: `synack tun2socks --socks5` (this
//!   binary, re-executed) through the proxy; `upstream=direct`:
//!   `synack tun2socks --direct`, its sockets bound to the veth.
//! - **tun2proxy** 0.8.7 `--proxy socks5://` through the same proxy
//!   (installed by [`peer`] when absent).
//!
//! The figures, each peer at MTU 1500 and [`JUMBO`] (veth and TUN device
//! both): iperf3 throughput of one stream and of eight, each way
//! (`iperf.rs`); short connections per second and connect latencies
//! (`conns.rs`); memory and CPU per idle relayed connection (`idle.rs`).

pub(crate) mod conns;
pub(crate) mod idle;
pub(crate) mod iperf;
pub mod peer;
pub(crate) mod topology;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use self::iperf::Direction;
use self::topology::{Peer, Topo, Upstream};
use crate::report::{Figure, Progress};
use crate::{Sizes, MTU};

/// The benchmark's name.
pub const BENCH: &str = "tun2socks";

/// The large MTU of the second set of cases (both tools accept it).
pub const JUMBO: usize = 9000;

/// The MTUs measured.
pub const MTUS: [usize; 2] = [MTU, JUMBO];

/// Peers per MTU: kernel, synack (SOCKS5), tun2proxy, synack (direct).
const PEERS: usize = 4;

/// How many cases [`run`] runs.
pub const CASES: usize = PEERS * MTUS.len();

/// One row of a peer's case.
#[derive(Clone, Copy, Debug)]
enum Row {
    /// iperf3: streams, direction.
    Throughput(usize, Direction),
    /// Short connections per second.
    Rate,
    /// Latency: what (`connect`, `request`), percentile (`p50`, `p99`).
    Latency(&'static str, &'static str),
    /// RSS per idle relayed connection.
    Memory,
    /// CPU over the idle period.
    IdleCpu,
}

impl Row {
    fn unit(self) -> &'static str {
        match self {
            Row::Throughput(..) => "Gbit/s",
            Row::Rate => "conn/s",
            Row::Latency(..) => "us",
            Row::Memory => "bytes/conn",
            Row::IdleCpu => "ms",
        }
    }
}

/// The rows of `peer`'s case, in order (the kernel has no tool process to
/// weigh).
fn rows_of(peer: &Peer) -> Vec<Row> {
    let mut v = Vec::new();
    // First, on the tool as it starts: the traffic of the other rows would
    // leave freed memory in its allocator for the idle connections to
    // reuse, hiding what they cost.
    if *peer != Peer::Kernel {
        v.extend([Row::Memory, Row::IdleCpu]);
    }
    for streams in [1, 8] {
        for d in [Direction::Upload, Direction::Download] {
            v.push(Row::Throughput(streams, d));
        }
    }
    v.push(Row::Rate);
    for what in ["connect", "request"] {
        for p in ["p50", "p99"] {
            v.push(Row::Latency(what, p));
        }
    }
    v
}

/// One figure and what qualifies it, or why it is missing.
type Fig = Result<(f64, Option<String>), String>;

/// The figure of `row` for `peer` at `mtu`.
fn figure(peer: &Peer, mtu: usize, row: Row, fig: Fig, sizes: &Sizes) -> Figure {
    let f = match fig {
        Ok((v, note)) => {
            let f = Figure::new(BENCH, peer.stack(), v, row.unit());
            match note {
                Some(n) => f.note(n),
                None => f,
            }
        }
        Err(e) => Figure::skipped(BENCH, peer.stack(), row.unit(), &e),
    };
    let mut f = f.param("upstream", peer.upstream().name());
    if peer.upstream() == Upstream::Socks5 {
        // Which proxy both tools went through.
        f = f.param("proxy", topology::proxy_program().unwrap_or("none"));
    }
    let f = f.param("mtu", mtu);
    match row {
        Row::Throughput(streams, d) => f
            .param("streams", streams)
            .param("direction", d.name())
            .param("secs", sizes.tun2socks_secs),
        Row::Rate => f
            .param("clients", conns::CLIENTS)
            .param("bytes", topology::EXCHANGE),
        Row::Latency(what, p) => f
            .param("latency", what)
            .param("percentile", p)
            .param("connections", sizes.tun2socks_latency_conns),
        Row::Memory => f.param("connections", sizes.tun2socks_idle),
        Row::IdleCpu => f
            .param("connections", sizes.tun2socks_idle)
            .param("idle_s", sizes.tun2socks_idle_secs),
    }
}

/// Every figure of one case: the topology for `peer` at `mtu`, then each
/// row in turn (a row that fails says why; the others still run).
fn case(peer: &Peer, mtu: usize, sizes: &Sizes, tag: &str) -> Result<Vec<Fig>, String> {
    let rows = rows_of(peer);
    let proxied = *peer != Peer::Kernel && peer.upstream() == Upstream::Socks5;
    let mut t = Topo::new(tag, mtu, proxied)?;
    t.start(peer, mtu)?;
    let mut out: Vec<Fig> = Vec::with_capacity(rows.len());
    let mut i = 0;
    while i < rows.len() {
        if let Err(e) = t.tool_alive() {
            out.extend(std::iter::repeat_n(Err(e), rows.len() - i));
            break;
        }
        match rows[i] {
            Row::Throughput(streams, d) => {
                let r = iperf::run(&t.app, streams, d, sizes.tun2socks_secs);
                out.push(r.map(|r| (r.gbit, throughput_note(r.retransmits))));
                i += 1;
            }
            Row::Rate => {
                let secs = Duration::from_secs(sizes.tun2socks_secs);
                out.push(conns::rate(&t, secs).and_then(|r| {
                    if r.done == 0 {
                        return Err(format!(
                            "no connection completed (first failure: {})",
                            r.first_error.unwrap_or_default()
                        ));
                    }
                    let note = (r.failed > 0).then(|| {
                        format!(
                            "{} of {} failed (first: {})",
                            r.failed,
                            r.failed + r.done,
                            r.first_error.clone().unwrap_or_default()
                        )
                    });
                    Ok((r.per_sec(), note))
                }));
                i += 1;
            }
            Row::Latency(..) => {
                // The four latency rows come from one run.
                let l = conns::latency(&t, sizes.tun2socks_latency_conns);
                let note = |what: &str, l: &conns::Latency| {
                    let mut n = Vec::new();
                    if l.failed > 0 {
                        n.push(format!("{} failed", l.failed));
                    }
                    if what == "connect" {
                        match peer {
                            Peer::Synack(..) => n.push("SYN-ACK after the upstream connect".into()),
                            Peer::Tun2proxy(_) => {
                                n.push("SYN-ACK before the upstream connect".into())
                            }
                            Peer::Kernel => {}
                        }
                    }
                    (!n.is_empty()).then(|| n.join("; "))
                };
                for row in &rows[i..i + 4] {
                    let Row::Latency(what, p) = *row else {
                        unreachable!("the four latency rows are together");
                    };
                    out.push(l.as_ref().map_err(Clone::clone).map(|l| {
                        let (p50, p99) = if what == "connect" {
                            l.connect
                        } else {
                            l.request
                        };
                        (if p == "p50" { p50 } else { p99 } as f64, note(what, l))
                    }));
                }
                i += 4;
            }
            Row::Memory => {
                let secs = Duration::from_secs(sizes.tun2socks_idle_secs);
                let m = idle::measure(&mut t, sizes.tun2socks_idle, secs);
                out.push(m.as_ref().map_err(Clone::clone).map(|m| {
                    let mib = |b: u64| b as f64 / (1 << 20) as f64;
                    (
                        m.bytes_per_conn,
                        Some(format!(
                            "RSS {:.1} -> {:.1} MiB; opened in {:.1} s",
                            mib(m.rss.0),
                            mib(m.rss.1),
                            m.open.as_secs_f64()
                        )),
                    )
                }));
                out.push(m.map(|m| {
                    (
                        m.cpu.as_secs_f64() * 1e3,
                        Some(format!("CPU over {} s idle", m.idle.as_secs())),
                    )
                }));
                i += 2;
            }
            Row::IdleCpu => unreachable!("measured with the memory row"),
        }
    }
    Ok(out)
}

/// What qualifies a throughput row.
fn throughput_note(retransmits: Option<u64>) -> Option<String> {
    retransmits
        .filter(|&r| r > 0)
        .map(|r| format!("{r} retransmitted"))
}

/// Why this benchmark cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    crate::tun::unavailable()
        .or_else(|| (!topology::on_path("iperf3")).then(|| "no iperf3".into()))
        .or_else(|| (!topology::on_path("ss")).then(|| "no `ss` (iproute2)".into()))
        .or_else(|| {
            topology::proxy_program()
                .is_none()
                .then(|| "no SOCKS5 server (dante-server or microsocks)".into())
        })
}

/// The peers, in the order each MTU's cases run them: synack's binary is
/// `exe` (none: its rows say so), tun2proxy's is `tun2proxy`.
fn peers(
    exe: Option<&Path>,
    tun2proxy: &Result<std::path::PathBuf, String>,
) -> Vec<Result<Peer, String>> {
    let synack = |u| {
        exe.map(|e| Peer::Synack(e.to_path_buf(), u))
            .ok_or_else(|| "no synack binary to run (run it from `synack bench`)".to_string())
    };
    vec![
        Ok(Peer::Kernel),
        synack(Upstream::Socks5),
        tun2proxy.clone().map(Peer::Tun2proxy),
        synack(Upstream::Direct),
    ]
}

/// A stand-in for a peer that cannot run, for its skipped rows.
fn placeholder(i: usize) -> Peer {
    match i {
        0 => Peer::Kernel,
        1 => Peer::Synack(Default::default(), Upstream::Socks5),
        2 => Peer::Tun2proxy(Default::default()),
        _ => Peer::Synack(Default::default(), Upstream::Direct),
    }
}

/// Every case, as the [module documentation](self) lists them. `exe` is
/// the `synack` binary, re-executed as `synack tun2socks`.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress, exe: Option<&Path>) -> Vec<Figure> {
    let mut out = Vec::new();
    let skip_all = |why: &str, out: &mut Vec<Figure>| {
        for mtu in MTUS {
            for i in 0..PEERS {
                let p = placeholder(i);
                for row in rows_of(&p) {
                    out.push(figure(&p, mtu, row, Err(why.to_string()), sizes));
                }
            }
        }
    };
    if let Some(why) = unavailable() {
        progress.say(&format!("tun2socks: skipped: {why}"));
        skip_all(&why, &mut out);
        return out;
    }
    topology::raise_nofile();
    let tun2proxy = peer::tun2proxy(exe, &mut |l| progress.say(l));
    if let Err(e) = &tun2proxy {
        progress.say(&format!("tun2socks: tun2proxy rows skipped: {e}"));
    }
    for (m, mtu) in MTUS.into_iter().enumerate() {
        for (i, p) in peers(exe, &tun2proxy).into_iter().enumerate() {
            let label = placeholder(i);
            progress.case(&format!(
                "tun2socks {} {} mtu={mtu}",
                label.stack(),
                label.upstream().name()
            ));
            let (peer, figs) = match p {
                Ok(peer) => {
                    let tag = format!("t{m}{i}");
                    let figs = case(&peer, mtu, sizes, &tag);
                    (peer, figs)
                }
                Err(e) => (label, Err(e)),
            };
            let rows = rows_of(&peer);
            let figs = figs.unwrap_or_else(|e| vec![Err(e); rows.len()]);
            for (row, fig) in rows.into_iter().zip(figs) {
                out.push(figure(&peer, mtu, row, fig, sizes));
            }
        }
    }
    out
}

fn param<'a>(f: &'a Figure, key: &str) -> Option<&'a Value> {
    f.params.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The measured row of `stack` with `upstream` and the same params as
/// `like` otherwise.
fn twin<'a>(
    figures: &'a [Figure],
    like: &Figure,
    stack: &str,
    upstream: &str,
) -> Option<&'a Figure> {
    figures.iter().find(|f| {
        f.bench == BENCH
            && f.stack == stack
            && f.unit == like.unit
            && f.value.is_some()
            && param(f, "upstream") == Some(&Value::from(upstream))
            && like
                .params
                .iter()
                .filter(|(k, _)| *k != "upstream" && *k != "proxy")
                .all(|(k, v)| param(f, k) == Some(v))
    })
}

/// The targets, checked against one run's figures: synack at least
/// 2x tun2proxy's throughput and connections per second (both through the
/// same proxy), at least 0.8x the kernel's direct path, less memory per
/// idle connection than tun2proxy.
pub fn verdicts(figures: &[Figure]) -> Vec<String> {
    let mut out = Vec::new();
    let line = |ok: bool, what: String| format!("{:<4} {what}", if ok { "ok" } else { "MISS" });
    let mine = figures
        .iter()
        .filter(|f| f.bench == BENCH && f.stack == "synack" && f.value.is_some());
    for f in mine {
        let v = f.value.unwrap_or(0.0);
        let up = param(f, "upstream").and_then(Value::as_str).unwrap_or("");
        let what = f.params_text();
        let ratio = |o: &Figure| v / o.value.unwrap_or(0.0).max(1e-12);
        if matches!(f.unit, "Gbit/s" | "conn/s") && up == "socks5" {
            if let Some(p) = twin(figures, f, "tun2proxy", "socks5") {
                let r = ratio(p);
                out.push(line(
                    r >= 2.0,
                    format!("tun2socks {what}: synack/tun2proxy {r:.2} (target >= 2)"),
                ));
            }
        }
        if f.unit == "Gbit/s" {
            if let Some(k) = twin(figures, f, "kernel", "direct") {
                let r = ratio(k);
                out.push(line(
                    r >= 0.8,
                    format!("tun2socks {what}: synack/kernel direct path {r:.2} (target >= 0.8)"),
                ));
            }
        }
        if f.unit == "bytes/conn" && up == "socks5" {
            if let Some(p) = twin(figures, f, "tun2proxy", "socks5") {
                let pv = p.value.unwrap_or(0.0);
                out.push(line(
                    v < pv,
                    format!(
                        "tun2socks {what}: synack {v:.0} vs tun2proxy {pv:.0} bytes/conn (target: less)"
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stack: &'static str, up: &str, v: f64) -> Figure {
        Figure::new(BENCH, stack, v, "Gbit/s")
            .param("upstream", up)
            .param("mtu", 1500)
            .param("streams", 1)
            .param("direction", "upload")
    }

    #[test]
    fn targets_compare_like_with_like() {
        let figures = [
            row("kernel", "direct", 10.0),
            row("synack", "socks5", 5.0).param("proxy", "danted"),
            row("tun2proxy", "socks5", 2.0).param("proxy", "danted"),
            row("synack", "direct", 9.0),
            Figure::new(BENCH, "synack", 300.0, "bytes/conn")
                .param("upstream", "socks5")
                .param("mtu", 1500),
            Figure::new(BENCH, "tun2proxy", 200.0, "bytes/conn")
                .param("upstream", "socks5")
                .param("mtu", 1500),
        ];
        let v = verdicts(&figures);
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(
            v[0].starts_with("ok   ") && v[0].contains("synack/tun2proxy 2.50"),
            "{v:?}"
        );
        assert!(
            v[1].starts_with("MISS ") && v[1].contains("synack/kernel direct path 0.50"),
            "{v:?}"
        );
        assert!(
            v[2].starts_with("ok   ") && v[2].contains("upstream=direct") && v[2].contains("0.90"),
            "{v:?}"
        );
        assert!(
            v[3].starts_with("MISS ") && v[3].contains("synack 300 vs tun2proxy 200"),
            "{v:?}"
        );
    }

    #[test]
    fn every_peer_has_its_rows() {
        assert_eq!(rows_of(&Peer::Kernel).len(), 9);
        assert_eq!(rows_of(&placeholder(2)).len(), 11);
    }
}
