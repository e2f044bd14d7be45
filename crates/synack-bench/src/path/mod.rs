//! `path`: synack and the Linux kernel over the same emulated long, lossy
//! path (needs root: it makes its own network namespaces and removes them
//! afterwards; no packet leaves them).
//!
//! The path (`topology.rs`): two namespaces joined only by two TUN devices
//! with a user-space [`emulator`] between them: [`RATE_MBIT`] Mbit/s each
//! way, [`RTT_MS`] ms of round trip, a drop-tail queue of one
//! bandwidth-delay product, and random loss, the same rate each way. On it,
//! in one run, each case on a path of its own:
//!
//! - goodput of one flow for [`crate::Sizes::path_transfer`] at each loss
//!   rate of [`LOSSES`]: the kernel sending to the kernel (CUBIC, with RACK
//!   and TLP as the kernel ships them; plain sockets at their defaults), and
//!   synack on a TUN device of its own sending to the same kernel receiver;
//! - one synack flow and one kernel flow sharing the path at once;
//! - the time to deliver a [`RESPONSE`]-byte response over the path when
//!   its last segment is lost (and, beside it, when nothing is);
//! - the emulator's own ceiling: the kernel through it with no delay, rate
//!   or loss.
//!
//! Beside them, the case the issue starts with: no rate, no delay, only
//! nftables dropping packets at random each way ([`NFT_LOSSES`]): synack
//! over TUN to the kernel of its namespace, the kernel to the kernel over
//! veth, 20 MiB (capped at the transfer time).

pub mod emulator;
pub(crate) mod flows;
pub(crate) mod topology;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::Value;

use self::emulator::{EmulatorStats, Shape};
use self::flows::{
    kernel_client, kernel_sender, serve, set_congestion_control, synack_sender, timed_sink,
    KERNEL_CC,
};
use self::topology::{start_synack, Path, KERNEL_A, KERNEL_B, SYNACK};
use crate::report::{Figure, Progress};
use crate::tun::{join, Netns, VethPair};
use crate::Sizes;

/// The bottleneck's rate, each way.
pub const RATE_MBIT: u64 = 100;
/// The round-trip propagation delay (half each way).
pub const RTT_MS: u64 = 50;
/// The random loss rates of the emulated path, in percent, each way.
pub const LOSSES: [f64; 4] = [0.0, 0.1, 1.0, 3.0];
/// The loss rates of the nftables-only path.
pub const NFT_LOSSES: [f64; 3] = [0.1, 1.0, 3.0];
/// The response of the tail-loss case.
pub const RESPONSE: usize = 100 << 10;
/// The request of the tail-loss case.
const REQUEST: usize = 64;
/// Bytes of the nftables-only transfers (the case).
const NFT_BYTES: u64 = 20 << 20;
/// synack's send buffer: more than the path holds (a BDP in flight and a
/// BDP queued).
const SEND_BUFFER: usize = 4 << 20;
/// Runs of the tail-loss case (the median is reported).
const TAIL_RUNS: usize = 3;

/// The receivers' ports: the kernel flow's, synack's, the tail server's.
const KERNEL_PORT: u16 = 5101;
const SYNACK_PORT: u16 = 5102;
const TAIL_PORT: u16 = 5103;

const BENCH: &str = "path";

/// One bandwidth-delay product, in bytes: the queue's size.
pub fn bdp_bytes() -> usize {
    (RATE_MBIT * 1_000_000 / 8 * RTT_MS / 1000) as usize
}

/// One direction of the emulated path at `loss_pct` percent loss.
fn shape(loss_pct: f64, seed: u64) -> Shape {
    Shape {
        rate_bps: Some(RATE_MBIT * 1_000_000),
        delay: Duration::from_micros(RTT_MS * 500),
        queue_bytes: bdp_bytes(),
        loss: loss_pct / 100.0,
        seed,
        drop_stream_end: None,
    }
}

/// A loss rate as a JSON number: whole numbers without a fraction.
fn pct(loss: f64) -> Value {
    if loss.fract() == 0.0 {
        Value::from(loss as u64)
    } else {
        Value::from(loss)
    }
}

/// Which stack sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stack {
    Kernel,
    Synack,
}

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Stack::Kernel => "kernel",
            Stack::Synack => "synack",
        }
    }
}

/// A figure with what qualifies it.
type Fig = Result<(f64, String), String>;

fn gbit(bytes: u64, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs.max(1e-9) / 1e9
}

/// synack's counters, as a note.
fn synack_note(net: &synack::Net) -> String {
    let st = net.with_stack(|s| s.stats().clone());
    format!(
        "{} retransmitted, {} fast recoveries, {} timeouts",
        st.retransmissions, st.fast_recoveries, st.retransmission_timeouts
    )
}

fn mbit_note(bytes: u64, secs: f64, more: &str, emu: &EmulatorStats) -> String {
    format!(
        "{:.1} Mbit/s over {secs:.1} s; {more}; {}",
        gbit(bytes, secs) * 1e3,
        emu.summary()
    )
}

/// One flow from `stack` to the kernel of b for `secs` over a path at
/// `loss` percent.
fn goodput(stack: Stack, loss: f64, secs: Duration, tag: &str) -> Fig {
    let path = Path::new(tag, shape(loss, 11), shape(loss, 12))?;
    let net = match stack {
        Stack::Synack => Some(path.synack(SEND_BUFFER)?),
        Stack::Kernel => None,
    };
    let to = SocketAddr::from((KERNEL_B, KERNEL_PORT));
    let l = path
        .b
        .run(move || std::net::TcpListener::bind(to).map_err(|e| e.to_string()))?;
    let t0 = Instant::now();
    let deadline = t0 + secs;
    let rx = timed_sink(l, deadline, u64::MAX);
    let more = match &net {
        Some(net) => {
            join(synack_sender(net, to, deadline, u64::MAX), "synack sender")?;
            synack_note(net)
        }
        None => {
            let r = join(kernel_sender(&path.a, to, deadline, u64::MAX), "sender")?;
            if loss == 0.0 {
                format!(
                    "{KERNEL_CC} per socket, {r} retransmitted; namespace sysctls: {}",
                    path.sysctls()
                )
            } else {
                format!("{KERNEL_CC}, {r} retransmitted")
            }
        }
    };
    let got = join(rx, "receiver")?.bytes;
    if let Some(net) = net {
        net.shutdown();
    }
    let emu = path.finish();
    let secs = secs.as_secs_f64();
    Ok((gbit(got, secs), mbit_note(got, secs, &more, &emu)))
}

/// One synack flow and one kernel flow on the same path at once, for
/// `secs`: (kernel, synack).
fn shared(secs: Duration) -> Result<(Fig, Fig), String> {
    let path = Path::new("pshare", shape(0.0, 21), shape(0.0, 22))?;
    let net = path.synack(SEND_BUFFER)?;
    let kto = SocketAddr::from((KERNEL_B, KERNEL_PORT));
    let sto = SocketAddr::from((KERNEL_B, SYNACK_PORT));
    let (kl, sl) = path.b.run(move || {
        let bind = |a| std::net::TcpListener::bind(a).map_err(|e| e.to_string());
        Ok((bind(kto)?, bind(sto)?))
    })?;
    let deadline = Instant::now() + secs;
    let (krx, srx) = (
        timed_sink(kl, deadline, u64::MAX),
        timed_sink(sl, deadline, u64::MAX),
    );
    let ktx = kernel_sender(&path.a, kto, deadline, u64::MAX);
    let stx = synack_sender(&net, sto, deadline, u64::MAX);
    let kr = join(ktx, "kernel sender");
    let sr = join(stx, "synack sender");
    let (kgot, sgot) = (join(krx, "receiver"), join(srx, "receiver"));
    let snote = synack_note(&net);
    net.shutdown();
    let emu = path.finish();
    let s = secs.as_secs_f64();
    let fig = |got: flows::Counted, more: String| -> Fig {
        let g = got?.bytes;
        Ok((gbit(g, s), mbit_note(g, s, &more, &emu)))
    };
    let k = kr.and_then(|r| fig(kgot, format!("{KERNEL_CC}, {r} retransmitted")));
    let sy = sr.and_then(|()| fig(sgot, snote));
    Ok((k, sy))
}

/// The median time, in ms, of [`TAIL_RUNS`] requests answered by a
/// `stack` server in a with a [`RESPONSE`]-byte response, with the
/// response's last segment lost on the way when `drop_last`.
fn tail(stack: Stack, drop_last: bool, tag: &str) -> Fig {
    let mut ab = shape(0.0, 31);
    ab.drop_stream_end = drop_last.then_some(RESPONSE as u32);
    let path = Path::new(tag, ab, shape(0.0, 32))?;
    let (to, server, net) = match stack {
        Stack::Kernel => {
            let to = SocketAddr::from((KERNEL_A, TAIL_PORT));
            let l = path
                .a
                .run(move || std::net::TcpListener::bind(to).map_err(|e| e.to_string()))?;
            let h = std::thread::spawn(move || {
                for _ in 0..TAIL_RUNS {
                    let (s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
                    set_congestion_control(&s, KERNEL_CC)?;
                    s.set_nodelay(true).ok();
                    serve(s, REQUEST, RESPONSE)?;
                }
                Ok(())
            });
            (to, h, None)
        }
        Stack::Synack => {
            let net = path.synack(SEND_BUFFER)?;
            let to = SocketAddr::from((SYNACK, TAIL_PORT));
            let l = synack::net::TcpListener::bind(&net, to).map_err(|e| e.to_string())?;
            let h = std::thread::spawn(move || {
                for _ in 0..TAIL_RUNS {
                    let (s, _) = l
                        .accept_timeout(Duration::from_secs(10))
                        .map_err(|e| format!("synack accept: {e}"))?;
                    s.set_nodelay(true).ok();
                    serve(s, REQUEST, RESPONSE)?;
                }
                Ok(())
            });
            (to, h, Some(net))
        }
    };
    let times = join(
        kernel_client(&path.b, to, TAIL_RUNS, REQUEST, RESPONSE),
        "client",
    );
    let served: Result<(), String> = join(server, "server");
    let more = net
        .as_ref()
        .map_or_else(|| KERNEL_CC.to_string(), synack_note);
    if let Some(net) = net {
        net.shutdown();
    }
    let emu = path.finish();
    let mut times = times?;
    served?;
    times.sort();
    let ms: Vec<String> = times
        .iter()
        .map(|t| format!("{:.0}", t.as_secs_f64() * 1e3))
        .collect();
    let median = times[times.len() / 2].as_secs_f64() * 1e3;
    Ok((
        median,
        format!("runs {} ms; {more}; {}", ms.join("/"), emu.summary()),
    ))
}

/// The emulator's ceiling: the kernel through it with no delay, rate or
/// loss, for `secs`.
fn ceiling(secs: Duration) -> Fig {
    let path = Path::new(
        "pceil",
        Shape::delay(Duration::ZERO),
        Shape::delay(Duration::ZERO),
    )?;
    let to = SocketAddr::from((KERNEL_B, KERNEL_PORT));
    let l = path
        .b
        .run(move || std::net::TcpListener::bind(to).map_err(|e| e.to_string()))?;
    let deadline = Instant::now() + secs;
    let rx = timed_sink(l, deadline, u64::MAX);
    let r = join(kernel_sender(&path.a, to, deadline, u64::MAX), "sender")?;
    let got = join(rx, "receiver")?.bytes;
    let emu = path.finish();
    let s = secs.as_secs_f64();
    Ok((
        gbit(got, s),
        format!(
            "the emulator's ceiling on this machine; {}",
            mbit_note(got, s, &format!("{r} retransmitted"), &emu)
        ),
    ))
}

/// Drops `loss` percent of the packets in and out of `dev` in `ns`, at
/// random (nftables' `numgen random`, in steps of 0.01%).
fn nft_loss(ns: &Netns, dev: &str, loss: f64) -> Result<(), String> {
    let below = (loss * 100.0).round() as u64;
    let rules = [
        "add table inet loss".to_string(),
        "add chain inet loss i { type filter hook input priority 0; }".to_string(),
        "add chain inet loss o { type filter hook output priority 0; }".to_string(),
        format!("add rule inet loss i iifname {dev} numgen random mod 10000 < {below} drop"),
        format!("add rule inet loss o oifname {dev} numgen random mod 10000 < {below} drop"),
    ];
    for r in rules {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &ns.name, "nft"])
            .args(r.split(' '))
            .output()
            .map_err(|e| format!("cannot run nft: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nft {r}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// The case: synack over TUN to the kernel of its own namespace,
/// nftables losing `loss` percent each way, [`NFT_BYTES`] or `cap`.
fn nft_synack(loss: f64, cap: Duration) -> Fig {
    const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
    let ns = Netns::new("pnft")?;
    let net = start_synack(&ns, Ipv4Addr::new(10, 201, 0, 2), KERNEL, SEND_BUFFER)?;
    nft_loss(&ns, "sbtun0", loss)?;
    let to = SocketAddr::from((KERNEL, KERNEL_PORT));
    let l = ns.run(move || std::net::TcpListener::bind(to).map_err(|e| e.to_string()))?;
    let t0 = Instant::now();
    let deadline = t0 + cap;
    let rx = timed_sink(l, deadline, NFT_BYTES);
    let sent = join(
        synack_sender(&net, to, deadline, NFT_BYTES),
        "synack sender",
    );
    let flows::Count {
        bytes: got, last, ..
    } = join(rx, "receiver")?;
    let more = synack_note(&net);
    net.shutdown();
    sent?;
    let secs = last.duration_since(t0).as_secs_f64();
    Ok((
        gbit(got, secs),
        format!(
            "{:.1} Mbit/s, {got} bytes in {secs:.2} s; offloads on (a drop loses a \
             super-segment); {more}",
            gbit(got, secs) * 1e3
        ),
    ))
}

/// The kernel's side of the case: kernel to kernel over veth,
/// nftables on the receiver's end losing `loss` percent each way.
fn nft_kernel(loss: f64, cap: Duration) -> Fig {
    let pair = VethPair::new()?;
    nft_loss(&pair.ns[1], "sbveth1", loss)?;
    let to = SocketAddr::from(([10, 200, 0, 2], KERNEL_PORT));
    let l = pair.ns[1].run(move || std::net::TcpListener::bind(to).map_err(|e| e.to_string()))?;
    let t0 = Instant::now();
    let deadline = t0 + cap;
    let rx = timed_sink(l, deadline, NFT_BYTES);
    let r = join(
        kernel_sender(&pair.ns[0], to, deadline, NFT_BYTES),
        "sender",
    )?;
    let flows::Count {
        bytes: got, last, ..
    } = join(rx, "receiver")?;
    let secs = last.duration_since(t0).as_secs_f64();
    Ok((
        gbit(got, secs),
        format!(
            "{:.1} Mbit/s, {got} bytes in {secs:.2} s; veth with its offloads (a drop \
             loses a super-segment); {KERNEL_CC}, {r} retransmitted",
            gbit(got, secs) * 1e3
        ),
    ))
}

/// The row of one figure.
fn row(stack: Stack, unit: &'static str, fig: Fig) -> Figure {
    match fig {
        Ok((v, note)) => Figure::new(BENCH, stack.name(), v, unit).note(note),
        Err(e) => Figure::skipped(BENCH, stack.name(), unit, &e),
    }
}

/// The params every emulated-path row carries.
fn emulated(f: Figure, loss: f64) -> Figure {
    f.param("loss", pct(loss))
        .param("rtt_ms", RTT_MS)
        .param("rate_mbit", RATE_MBIT)
        .param("path", "emulator")
}

/// How many cases [`run`] runs.
pub const CASES: usize = 2 * LOSSES.len() + 2 * NFT_LOSSES.len() + 1 + 4 + 1;

/// Why this benchmark cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    crate::tun::unavailable().or_else(|| {
        match std::process::Command::new("nft").arg("--version").output() {
            Ok(o) if o.status.success() => None,
            _ => Some("no `nft` command (nftables)".into()),
        }
    })
}

/// Every case, as the [module documentation](self) lists them.
pub fn run(sizes: &Sizes, progress: &mut dyn Progress) -> Vec<Figure> {
    let mut out = Vec::new();
    if let Some(why) = unavailable() {
        progress.say(&format!("path: skipped: {why}"));
        for loss in LOSSES {
            for stack in [Stack::Kernel, Stack::Synack] {
                out.push(emulated(row(stack, "Gbit/s", Err(why.clone())), loss));
            }
        }
        return out;
    }
    let secs = sizes.path_transfer;
    for (i, loss) in LOSSES.into_iter().enumerate() {
        for stack in [Stack::Kernel, Stack::Synack] {
            progress.case(&format!("path {} loss={loss}%", stack.name()));
            let fig = goodput(stack, loss, secs, &format!("p{i}{}", &stack.name()[..1]));
            out.push(emulated(row(stack, "Gbit/s", fig), loss));
        }
    }
    progress.case("path shared");
    let (k, s) = match shared(secs) {
        Ok(pair) => pair,
        Err(e) => (Err(e.clone()), Err(e)),
    };
    for (stack, fig) in [(Stack::Kernel, k), (Stack::Synack, s)] {
        out.push(emulated(row(stack, "Gbit/s", fig), 0.0).param("flows", "synack+kernel"));
    }
    for (stack, drop_last) in [
        (Stack::Kernel, false),
        (Stack::Kernel, true),
        (Stack::Synack, false),
        (Stack::Synack, true),
    ] {
        progress.case(&format!("path tail {} drop={drop_last}", stack.name()));
        let tag = format!("pt{}{}", &stack.name()[..1], u8::from(drop_last));
        let f = emulated(row(stack, "ms", tail(stack, drop_last, &tag)), 0.0);
        out.push(
            f.param("response", RESPONSE)
                .param("drop", if drop_last { "last-segment" } else { "none" }),
        );
    }
    for loss in NFT_LOSSES {
        for stack in [Stack::Kernel, Stack::Synack] {
            progress.case(&format!("path nftables {} loss={loss}%", stack.name()));
            let (fig, path) = match stack {
                Stack::Kernel => (nft_kernel(loss, secs), "veth+nftables"),
                Stack::Synack => (nft_synack(loss, secs), "tun+nftables"),
            };
            out.push(
                row(stack, "Gbit/s", fig)
                    .param("loss", pct(loss))
                    .param("rtt_ms", 0)
                    .param("rate_mbit", "unlimited")
                    .param("path", path)
                    .param("bytes", NFT_BYTES),
            );
        }
    }
    progress.case("path emulator ceiling");
    let c = ceiling(secs.min(Duration::from_secs(5)));
    out.push(
        row(Stack::Kernel, "Gbit/s", c)
            .param("loss", 0)
            .param("rtt_ms", 0)
            .param("rate_mbit", "unlimited")
            .param("path", "emulator"),
    );
    out
}

fn param<'a>(f: &'a Figure, key: &str) -> Option<&'a Value> {
    f.params.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The emulated-path goodput row of `stack` at `loss` (one flow).
fn single<'a>(figures: &'a [Figure], stack: &str, loss: f64) -> Option<&'a Figure> {
    figures.iter().find(|f| {
        f.bench == BENCH
            && f.stack == stack
            && f.unit == "Gbit/s"
            && f.value.is_some()
            && param(f, "path") == Some(&Value::from("emulator"))
            && param(f, "rtt_ms") == Some(&Value::from(RTT_MS))
            && param(f, "flows").is_none()
            && param(f, "loss") == Some(&pct(loss))
    })
}

/// The targets for the path, checked against one run's figures.
pub fn verdicts(figures: &[Figure]) -> Vec<String> {
    let mut out = Vec::new();
    let line = |ok: bool, what: String| format!("{:<4} {what}", if ok { "ok" } else { "MISS" });
    let link = RATE_MBIT as f64 / 1e3;
    for loss in LOSSES {
        let (Some(s), Some(k)) = (
            single(figures, "synack", loss),
            single(figures, "kernel", loss),
        ) else {
            continue;
        };
        let (s, k) = (s.value.unwrap_or(0.0), k.value.unwrap_or(0.0));
        let r = s / k.max(1e-12);
        out.push(line(
            r >= 1.0,
            format!("path loss={loss}%: synack/kernel {r:.2} (target >= 1.0)"),
        ));
        if loss == 0.0 {
            out.push(line(
                s >= 0.95 * link,
                format!(
                    "path loss=0%: synack {:.1}% of the link (target >= 95%)",
                    s / link * 100.0
                ),
            ));
        }
    }
    for f in figures
        .iter()
        .filter(|f| f.bench == BENCH && f.value.is_some() && param(f, "flows").is_some())
    {
        let share = f.value.unwrap_or(0.0) / link * 100.0;
        out.push(line(
            (35.0..=65.0).contains(&share),
            format!(
                "path shared: {} {share:.1}% of the link (target 35-65%)",
                f.stack
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root only: the kernel sends 1 MiB to the kernel through the
    /// emulator at 10 Mbit/s; every byte arrives, and it takes at least
    /// the 0.84 s the rate allows (less 5% for the measuring).
    #[test]
    fn kernel_to_kernel_through_the_emulator_is_shaped() {
        if let Some(why) = unavailable() {
            println!("skipped: {why}");
            return;
        }
        let at_10 = |seed| Shape {
            rate_bps: Some(10_000_000),
            delay: Duration::from_millis(2),
            queue_bytes: 64 << 10,
            loss: 0.0,
            seed,
            drop_stream_end: None,
        };
        let path = Path::new("ptest", at_10(1), at_10(2)).expect("path");
        let to = SocketAddr::from((KERNEL_B, KERNEL_PORT));
        let l = path
            .b
            .run(move || std::net::TcpListener::bind(to).map_err(|e| e.to_string()))
            .expect("bind");
        let n = 1u64 << 20;
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(30);
        let rx = timed_sink(l, deadline, n);
        join(kernel_sender(&path.a, to, deadline, n), "sender").expect("send");
        let c = join(rx, "receiver").expect("receive");
        let (got, took) = (c.bytes, c.last.duration_since(t0));
        let emu = path.finish();
        assert_eq!(got, n, "{}", emu.summary());
        assert!(took >= Duration::from_millis(800), "{took:?}: not shaped");
        assert!(emu.links[0].forwarded >= n / 1500, "{}", emu.summary());
        println!("1 MiB at 10 Mbit/s in {took:?}; {}", emu.summary());
    }
}
