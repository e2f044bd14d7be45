//! `synack tun2socks`: relays every TCP connection and UDP datagram that
//! arrives on a TUN device to its original destination, through a SOCKS5
//! proxy or through the host's own sockets (`--direct`).
//!
//! The stack runs on its driver thread; everything else runs on one tokio
//! current-thread runtime: the transparent listener's requests
//! ([`tcp`]), the relayed connections ([`relay`]), the UDP flows
//! ([`udp`]), echo requests ([`icmp`]) and the status line ([`status`]).
//! Upstream sockets are pinned so they never loop back into the device
//! ([`direct`]).

pub mod direct;
pub mod icmp;
pub mod relay;
pub mod socks5;
pub mod status;
pub mod tcp;
pub mod udp;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use synack::core::Config;
use synack::ifconfig::HostAddr;
use synack::tokio::TcpListener;
use synack::{Datagram, Handshake, Net};
use tokio::sync::{mpsc, watch};

use direct::Egress;
use icmp::{IcmpHandler, IcmpPolicy};
use relay::Traffic;
use socks5::{Proxy, ProxySpec};
use tcp::{Upstream, CONNECT_TIMEOUT};
use udp::{FlowTable, UdpConfig, UdpUpstream};

/// Flags of `synack tun2socks`.
#[derive(Args, Debug)]
pub struct Tun2socksArgs {
    /// The TUN device to relay from, created when absent (needs
    /// CAP_NET_ADMIN). Route the traffic to relay into it.
    #[arg(long, value_name = "NAME")]
    tun: String,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Give the host side of the device this address and bring it up.
    #[arg(long, value_name = "IP/PREFIX")]
    host: Option<HostAddr>,
    /// The stack's own address on the device (it answers ping; default: the
    /// address after --host's in its prefix, or 198.18.0.1).
    #[arg(long, value_name = "IP")]
    addr: Option<IpAddr>,
    /// Bind every upstream socket to this interface (SO_BINDTODEVICE), so
    /// it leaves the host there whatever the routes say. Default: the
    /// interface of the default route (or, for a proxy, of the route to
    /// it) that is not the TUN device, unless --fwmark is given.
    #[arg(long, value_name = "IFACE")]
    interface: Option<String>,
    /// Mark every upstream socket (SO_MARK) for policy routing: e.g. `ip
    /// rule add fwmark N lookup main` with the tunnel's routes in another
    /// table.
    #[arg(long, value_name = "N", value_parser = parse_mark)]
    fwmark: Option<u32>,
    /// Most relayed connections at once (established and being opened);
    /// further connection requests are refused with an RST.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Write the trace as JSON Lines.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write a pcap capture of every packet in and out of the device.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Checksum and segmentation offloads on the device: with `on` (when
    /// the kernel grants them) packets of up to 64 KiB cross the device;
    /// `off` opens a plain device, every packet a wire-sized segment.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    offload: String,
    /// Set the device's MTU (and the stack's, so its MSS follows) before
    /// starting: 576 to 65535 bytes, 1280 or more for an IPv6 address.
    /// tun2socks tools often run a large one (9000, 65535): fewer, larger
    /// segments cross the device. Without it the device keeps its MTU and
    /// the stack uses 1500.
    #[arg(long, value_name = "BYTES")]
    mtu: Option<usize>,
    /// No status line (it is shown only when stderr is a terminal).
    #[arg(long)]
    quiet: bool,
}

/// Exactly one of the two ways out.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct UpstreamArgs {
    /// Relay through this SOCKS5 proxy: HOST:PORT or USER:PASS@HOST:PORT (CONNECT
    /// for TCP, UDP ASSOCIATE for UDP).
    #[arg(long, value_name = "HOST:PORT")]
    socks5: Option<ProxySpec>,
    /// Relay through the host's own sockets to the original destinations
    /// (ping too, through the host's ICMP socket).
    #[arg(long)]
    direct: bool,
}

/// A mark: decimal or 0x-hexadecimal, not 0 (0 means unmarked).
fn parse_mark(s: &str) -> Result<u32, String> {
    let n = match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("bad mark {s:?}: a 32-bit number"))?;
    if n == 0 {
        return Err("bad mark 0: 0 is no mark".into());
    }
    Ok(n)
}

/// How long the stop waits for relays to finish and for the stack to send
/// what it has queued.
const DRAIN: Duration = Duration::from_secs(5);

/// Datagrams or packets waiting between the driver and the runtime.
const QUEUE: usize = 1024;

/// How often idle UDP flows are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);

/// Runs `synack tun2socks` until SIGINT or SIGTERM.
pub fn run(args: Tun2socksArgs) -> Result<(), String> {
    let (stop_tx, stop) = watch::channel(false);
    on_signal(stop_tx)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let upstream = rt.block_on(upstream(&args))?;
    let net = start_net(&args)?;
    let served = rt.block_on(serve(&args, &net, upstream, stop));
    // Tasks still running (a relay that could not finish in time) end
    // here; each stream dropped closes gracefully.
    drop(rt);
    let until = Instant::now() + DRAIN;
    while Instant::now() < until && net.with_stack(|s| s.connection_count()) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    net.shutdown();
    served
}

/// SIGINT or SIGTERM sets the stop signal.
fn on_signal(stop: watch::Sender<bool>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = stop.send(true);
        }
    });
    Ok(())
}

/// The way out: the proxy resolved and reachable, or the host's sockets,
/// pinned so they stay out of the device.
async fn upstream(args: &Tun2socksArgs) -> Result<Upstream, String> {
    let pinned = Egress {
        interface: args.interface.clone(),
        fwmark: args.fwmark,
    };
    let explicit = pinned.interface.is_some() || pinned.fwmark.is_some();
    match &args.upstream.socks5 {
        Some(spec) => {
            let mut proxy = Proxy::resolve(spec, pinned, CONNECT_TIMEOUT)
                .await
                .map_err(|e| format!("cannot resolve the SOCKS5 proxy {spec}: {e}"))?;
            if !explicit && !proxy.addr.ip().is_loopback() {
                let iface = direct::interface_outside(&args.tun, proxy.addr.ip()).ok_or_else(|| {
                    format!(
                        "no route to the SOCKS5 proxy {} but through {}: give --interface IFACE or --fwmark N",
                        proxy.addr, args.tun
                    )
                })?;
                proxy.egress.interface = Some(iface);
            }
            proxy
                .check()
                .await
                .map_err(|e| format!("cannot use the SOCKS5 proxy {spec}: {e}"))?;
            Ok(Upstream::Socks5(Arc::new(proxy)))
        }
        None => {
            let mut egress = pinned;
            if !explicit {
                let outside =
                    direct::interface_outside(&args.tun, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                        .or_else(|| {
                            direct::interface_outside(&args.tun, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
                        });
                egress.interface = Some(outside.ok_or_else(|| {
                    format!(
                        "--direct: no default route but through {}: give --interface IFACE or --fwmark N",
                        args.tun
                    )
                })?);
            }
            Ok(Upstream::Direct(egress))
        }
    }
}

/// Opens the device and starts the stack on it, taking datagrams.
fn start_net(args: &Tun2socksArgs) -> Result<Net, String> {
    let addr = match (args.addr, args.host) {
        (Some(a), _) => a,
        (None, Some(h)) => neighbour(h).ok_or_else(|| {
            format!("no room for the stack's address in --host {h}: give --addr IP")
        })?,
        (None, None) => IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
    };
    let mut config = Config::default();
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    let mut b = Net::builder(&args.tun)
        .addr(addr)
        .config(config)
        .offload(args.offload == "on");
    if let Some(m) = args.mtu {
        b = b.mtu(crate::tun_common::check_mtu(m, addr.is_ipv6())?);
    }
    if let Some(h) = args.host {
        b = b.host(h);
    }
    if let Some(p) = &args.trace {
        let f = File::create(p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        b = b.trace(Box::new(f));
    }
    if let Some(p) = &args.pcap {
        let f = File::create(p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        b = b.pcap(Box::new(f));
    }
    let net = b.start().map_err(|e| e.to_string())?;
    net.deliver_datagrams(true);
    Ok(net)
}

/// The address after `h`'s in its prefix (or the one before, at the end
/// of the prefix), for the stack; `None` when the prefix has no room.
fn neighbour(h: HostAddr) -> Option<IpAddr> {
    match h.addr {
        IpAddr::V4(a) => {
            let bits = 32 - u32::from(h.prefix.min(32));
            let mask = u32::MAX.checked_shl(bits).unwrap_or(0);
            let (a, net) = (u32::from(a), u32::from(a) & mask);
            let last = net | !mask;
            // Not the network nor the broadcast address (a /31 has neither).
            let usable = |x: u32| x & mask == net && (bits <= 1 || (x != net && x != last));
            [a.wrapping_add(1), a.wrapping_sub(1)]
                .into_iter()
                .find(|&x| usable(x))
                .map(|x| IpAddr::V4(x.into()))
        }
        IpAddr::V6(a) => {
            let bits = 128 - u32::from(h.prefix.min(128));
            let mask = u128::MAX.checked_shl(bits).unwrap_or(0);
            let a = u128::from(a);
            [a.wrapping_add(1), a.wrapping_sub(1)]
                .into_iter()
                .find(|&x| x & mask == a & mask && x & !mask != 0)
                .map(|x| IpAddr::V6(x.into()))
        }
    }
}

/// Everything on the runtime, until the stop signal and the relays' drain.
async fn serve(
    args: &Tun2socksArgs,
    net: &Net,
    upstream: Upstream,
    stop: relay::Stop,
) -> Result<(), String> {
    let listener = TcpListener::bind_transparent(net, Handshake::Defer)
        .map_err(|e| format!("cannot listen on {}: {e}", net.tun_name()))?;
    let traffic = Arc::new(Traffic::default());
    let flows = Arc::new(AtomicU64::new(0));
    let udp_upstream = match &upstream {
        Upstream::Direct(e) => UdpUpstream::Direct(e.clone()),
        Upstream::Socks5(p) => UdpUpstream::Socks5(Arc::clone(p)),
    };
    let icmp_policy = match &upstream {
        Upstream::Direct(e) => IcmpPolicy::Relay(e.clone()),
        Upstream::Socks5(_) => IcmpPolicy::Prohibit(net.with_stack(|s| s.addresses().to_vec())),
    };
    let udp = tokio::spawn(relay_udp(
        net.clone(),
        udp_upstream,
        Arc::clone(&traffic),
        Arc::clone(&flows),
    ));
    let icmp = tokio::spawn(relay_packets(net.clone(), icmp_policy));
    let status =
        status::wanted(args.quiet).then(|| status::spawn(Arc::clone(&traffic), Arc::clone(&flows)));
    let how = match &upstream {
        Upstream::Direct(e) => format!("direct{}", egress_note(e)),
        Upstream::Socks5(p) => format!("SOCKS5 proxy {}{}", p.addr, egress_note(&p.egress)),
    };
    eprintln!("tun2socks: relaying {} through {how}", net.tun_name());
    let served = tcp::serve(listener, upstream, Arc::clone(&traffic), stop).await;
    // Stopping: the relays drain what they hold and close.
    let until = tokio::time::Instant::now() + DRAIN;
    while traffic.open.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    udp.abort();
    icmp.abort();
    if let Some(s) = status {
        s.abort();
        status::clear();
    }
    served.map_err(|e| format!("the transparent listener failed: {e}"))
}

/// ", bound to IFACE, mark N" for the start line.
fn egress_note(e: &Egress) -> String {
    let mut s = String::new();
    if let Some(i) = &e.interface {
        s += &format!(", bound to {i}");
    }
    if let Some(m) = e.fwmark {
        s += &format!(", mark {m}");
    }
    s
}

/// Feeds the device's UDP datagrams to the flow table, replies back into
/// the device.
async fn relay_udp(net: Net, upstream: UdpUpstream, traffic: Arc<Traffic>, flows: Arc<AtomicU64>) {
    let rx = pump(net.clone(), |n: &Net| n.recv_datagram());
    let reply_net = net.clone();
    let reply: udp::ReplySink = Arc::new(move |src: SocketAddr, dst: SocketAddr, p: &[u8]| {
        // Too large for the device or otherwise unsendable: lost, as a
        // datagram on a link would be.
        let _ = reply_net.send_datagram(src, dst, p);
    });
    let mut table = FlowTable::new(UdpConfig::default(), upstream, reply, traffic);
    let mut rx = rx;
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    loop {
        tokio::select! {
            d = rx.recv() => {
                let Some(Datagram { src, dst, payload }) = d else { return };
                table.send(tokio::time::Instant::now(), src, dst, payload);
            }
            _ = expire.tick() => {
                table.expire(tokio::time::Instant::now());
            }
        }
        flows.store(table.len() as u64, Ordering::Relaxed);
    }
}

/// Feeds the device's other packets (ICMP) to the ICMP handler.
async fn relay_packets(net: Net, policy: IcmpPolicy) {
    let mut rx = pump(net.clone(), |n: &Net| n.recv_packet());
    let out_net = net.clone();
    let handler = IcmpHandler::new(
        policy,
        Arc::new(move |p: &[u8]| {
            let _ = out_net.send_packet(p);
        }),
    );
    while let Some(packet) = rx.recv().await {
        handler.handle(&packet);
    }
}

/// A thread that moves what `recv` returns (blocking) into a channel, until
/// the driver stops or the receiver goes.
fn pump<T: Send + 'static>(net: Net, recv: fn(&Net) -> std::io::Result<T>) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::spawn(move || {
        while let Ok(item) = recv(&net) {
            if tx.blocking_send(item).is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> HostAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_stack_takes_the_address_next_to_the_host() {
        assert_eq!(
            neighbour(host("10.0.0.1/24")),
            Some("10.0.0.2".parse().unwrap())
        );
        assert_eq!(
            neighbour(host("10.0.0.254/24")),
            Some("10.0.0.253".parse().unwrap())
        );
        assert_eq!(
            neighbour(host("10.0.0.0/31")),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(neighbour(host("10.0.0.1/32")), None);
        assert_eq!(
            neighbour(host("fd00::1/64")),
            Some("fd00::2".parse().unwrap())
        );
    }

    #[test]
    fn marks_parse() {
        assert_eq!(parse_mark("51820"), Ok(51820));
        assert_eq!(parse_mark("0xca6c"), Ok(0xca6c));
        assert!(parse_mark("0").is_err());
        assert!(parse_mark("-1").is_err());
    }
}
