//! What `echo-server` and `connect` share: the TUN flags and starting the
//! stack on the device.

use std::fs::File;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use synack::core::Config;
use synack::ifconfig::HostAddr;
use synack::Net;

/// The device, address and output flags of the TUN commands.
#[derive(Args, Debug)]
pub struct TunArgs {
    /// The TUN device to use, created when absent (needs CAP_NET_ADMIN).
    #[arg(long, value_name = "NAME")]
    pub tun: String,
    /// The stack's own address.
    #[arg(long, value_name = "IP")]
    pub addr: IpAddr,
    /// Give the host side of the device this address and bring it up.
    #[arg(long, value_name = "IP/PREFIX")]
    pub host: Option<HostAddr>,
    /// Maximum segment lifetime in seconds (TIME-WAIT lasts 2×MSL).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub msl: f64,
    /// Write the trace as JSON Lines.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write a pcap capture of every packet in and out.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Checksum and segmentation offloads on the device: with `on` (when
    /// the kernel grants them) a capture shows super-segments of up to
    /// 64 KiB, as tcpdump shows them on a NIC with TSO; `off` opens a plain
    /// device, every packet a wire-sized segment.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub offload: String,
    /// Set the device's MTU (and the stack's, so its MSS follows) before
    /// starting: 576 to 65535 bytes, 1280 or more for an IPv6 address.
    /// Without it the device keeps its MTU and the stack uses 1500.
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<usize>,
}

/// Checks an `--mtu`: IPv4 hosts must take 576-byte datagrams (RFC 791),
/// IPv6 links carry at least 1280 (RFC 8200 §5); 65535 is IPv4's
/// largest datagram.
pub fn check_mtu(mtu: usize, ipv6: bool) -> Result<usize, String> {
    let low = if ipv6 { 1280 } else { 576 };
    if (low..=65535).contains(&mtu) {
        Ok(mtu)
    } else {
        Err(format!("bad --mtu {mtu}: {low} to 65535 bytes"))
    }
}

impl TunArgs {
    /// Opens the outputs, the device, and starts the driver.
    pub fn start(&self) -> Result<Net, String> {
        self.start_with(|_| {})
    }

    /// [`TunArgs::start`], with the command's own settings applied to the
    /// stack's configuration (`tweak`) after the shared flags'.
    pub fn start_with(&self, tweak: impl FnOnce(&mut Config)) -> Result<Net, String> {
        if !(self.msl.is_finite() && self.msl >= 0.0) {
            return Err(format!("bad --msl {}: seconds, 0 or more", self.msl));
        }
        let mut config = Config {
            msl: Duration::from_secs_f64(self.msl),
            ..Config::default()
        };
        tweak(&mut config);
        let mut b = Net::builder(&self.tun)
            .addr(self.addr)
            .config(config)
            .offload(self.offload == "on");
        if let Some(m) = self.mtu {
            b = b.mtu(check_mtu(m, self.addr.is_ipv6())?);
        }
        if let Some(h) = self.host {
            if h.addr.is_ipv4() != self.addr.is_ipv4() {
                return Err("--host and --addr must be of the same IP version".into());
            }
            b = b.host(h);
        }
        if let Some(p) = &self.trace {
            let f = File::create(p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            b = b.trace(Box::new(f));
        }
        if let Some(p) = &self.pcap {
            let f = File::create(p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            b = b.pcap(Box::new(f));
        }
        b.start().map_err(|e| e.to_string())
    }
}
