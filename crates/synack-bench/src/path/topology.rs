//! The emulated path's namespaces and devices.
//!
//! ```text
//!  namespace a                                     namespace b
//!  kernel 10.90.0.1 ─┐                          ┌─ kernel 10.90.1.1
//!  synack 10.90.2.2 ─┤ (forwarded by a's kernel)│  (the receivers)
//!    on its own TUN ─┘                          │
//!          spa0 (TUN) ──── emulator thread ──── spb0 (TUN)
//! ```
//!
//! Namespace a holds the senders: its kernel, and synack on a TUN device of
//! its own whose host side is a's kernel, which forwards synack's packets
//! onto the path. Namespace b holds the receivers. The only way from a to b
//! is the pair of TUN devices the emulator holds open, so every packet
//! either way crosses it.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use synack::tun::TunDevice;

use super::emulator::{Emulator, EmulatorStats, Shape};
use crate::tun::{ip, Netns};

/// The sending kernel's address (namespace a).
pub const KERNEL_A: Ipv4Addr = Ipv4Addr::new(10, 90, 0, 1);
/// The receiving kernel's address (namespace b).
pub const KERNEL_B: Ipv4Addr = Ipv4Addr::new(10, 90, 1, 1);
/// synack's address, on its TUN device in namespace a.
pub const SYNACK: Ipv4Addr = Ipv4Addr::new(10, 90, 2, 2);
/// The host side of synack's TUN device (a's kernel).
const SYNACK_HOST: Ipv4Addr = Ipv4Addr::new(10, 90, 2, 1);
/// synack's TUN device in namespace a.
const SYNACK_TUN: &str = "sbtun0";

/// The sysctls set in both namespaces, as `key=value`: no per-destination
/// metrics cache, so that one run's ssthresh does not carry into the next.
/// (CUBIC is chosen per socket: a namespace other than the host's may not
/// make a controller its default unless the host allows it.)
const SYSCTLS: [&str; 1] = ["net.ipv4.tcp_no_metrics_save=1"];

/// The sysctls recorded beside the kernel's figures.
const RECORDED: [&str; 11] = [
    "net.ipv4.tcp_no_metrics_save",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.tcp_recovery",
    "net.ipv4.tcp_early_retrans",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_dsack",
    "net.ipv4.tcp_frto",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_ecn",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Two namespaces and the emulator between them; all removed on drop
/// (the emulator stops first, then the namespaces go with their devices).
pub struct Path {
    /// Namespace a, the senders'.
    pub a: Netns,
    /// Namespace b, the receivers'.
    pub b: Netns,
    emulator: Option<Emulator>,
}

fn sysctl(ns: &Netns, args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "sysctl"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run sysctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sysctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Path {
    /// Builds the path: namespaces `synack-bench-<pid>-<tag>a` and `...b`,
    /// a TUN device in each, addresses and routes, forwarding in a, and
    /// the emulator shaping a to b with `ab` and b to a with `ba`.
    pub fn new(tag: &str, ab: Shape, ba: Shape) -> Result<Path, String> {
        let a = Netns::new(&format!("{tag}a"))?;
        let b = Netns::new(&format!("{tag}b"))?;
        let dev_a = a.run(|| TunDevice::open("spa0").map_err(|e| format!("TUN spa0: {e}")))?;
        let dev_b = b.run(|| TunDevice::open("spb0").map_err(|e| format!("TUN spb0: {e}")))?;
        for (ns, dev, addr, routes) in [
            (&a, "spa0", KERNEL_A, &["10.90.1.0/24"][..]),
            (&b, "spb0", KERNEL_B, &["10.90.0.0/24", "10.90.2.0/24"][..]),
        ] {
            ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                dev,
            ])?;
            ip(&["-n", &ns.name, "link", "set", dev, "mtu", "1500", "up"])?;
            for r in routes {
                ip(&["-n", &ns.name, "route", "add", r, "dev", dev])?;
            }
            for s in SYSCTLS {
                sysctl(ns, &["-w", s])?;
            }
        }
        sysctl(&a, &["-w", "net.ipv4.ip_forward=1"])?;
        let emulator = Some(Emulator::start(dev_a, dev_b, ab, ba));
        Ok(Path { a, b, emulator })
    }

    /// The sysctls in effect in namespace a (the sending kernel's), as
    /// `key = value` lines joined by `; `.
    pub fn sysctls(&self) -> String {
        RECORDED
            .iter()
            .map(|k| sysctl(&self.a, &[k]).unwrap_or_else(|e| e))
            .map(|l| l.replace('\t', " "))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Starts synack on a TUN device in namespace a (its packets forwarded
    /// by a's kernel onto the path), with `send_buffer` bytes to send from.
    pub fn synack(&self, send_buffer: usize) -> Result<synack::Net, String> {
        start_synack(&self.a, SYNACK, SYNACK_HOST, send_buffer)
    }

    /// Stops the emulator and returns its counts.
    pub fn finish(mut self) -> EmulatorStats {
        self.emulator.take().map(Emulator::stop).unwrap_or_default()
    }
}

/// Starts synack in `ns` on TUN device `sbtun0`: synack at `addr`, `ns`'s
/// kernel at `host` (/24) on the device's other side, `send_buffer` bytes
/// of send (and receive) buffer, the driver's defaults otherwise.
pub fn start_synack(
    ns: &Netns,
    addr: Ipv4Addr,
    host: Ipv4Addr,
    send_buffer: usize,
) -> Result<synack::Net, String> {
    ns.run(move || {
        synack::Net::builder(SYNACK_TUN)
            .addr(IpAddr::V4(addr))
            .host(synack::ifconfig::HostAddr {
                addr: IpAddr::V4(host),
                prefix: 24,
            })
            .config(synack::core::Config {
                msl: Duration::from_millis(500),
                send_buffer,
                recv_buffer: send_buffer,
                ..Default::default()
            })
            .start()
            .map_err(|e| format!("synack on {SYNACK_TUN}: {e}"))
    })
}

impl Drop for Path {
    fn drop(&mut self) {
        // The emulator holds the devices; it stops before the namespaces
        // (fields drop in order after this).
        self.emulator.take();
    }
}
