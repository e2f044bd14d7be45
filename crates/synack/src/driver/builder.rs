//! [`NetBuilder`]: what a driver starts with, and starting it.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use synack_core::{Config, Stack};

use super::net::{Net, Owner};
use super::shared::Shared;
use super::waiters::Inner;
use super::{DriverStats, Sink, GSO_MAX_SIZE};
use crate::datagram::Delivery;
use crate::device::Device;
use crate::ifconfig::{self, HostAddr};
use crate::pcap::PcapWriter;
use crate::trace_json::TraceWriter;
use crate::tun::TunDevice;

/// Where the packets come from.
enum Source {
    /// synack's own TUN device of that name, opened at `start`.
    Tun(String),
    /// A device the application brought.
    Device(Box<dyn Device>),
}

/// How to start a driver: see [`Net::builder`] and
/// [`Net::builder_with_device`].
pub struct NetBuilder {
    source: Source,
    addrs: Vec<IpAddr>,
    host: Option<HostAddr>,
    config: Config,
    trace: Option<Sink>,
    pcap: Option<Sink>,
    offload: bool,
    mtu: Option<usize>,
}

impl std::fmt::Debug for NetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Tun(name) => format!("TUN {name}"),
            Source::Device(d) => format!("device {:?}", d.capabilities()),
        };
        f.debug_struct("NetBuilder")
            .field("source", &source)
            .field("addrs", &self.addrs)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl NetBuilder {
    /// A builder for packets from `source`, with the defaults.
    fn new(source: Source) -> NetBuilder {
        NetBuilder {
            source,
            addrs: Vec::new(),
            host: None,
            config: Config::default(),
            trace: None,
            pcap: None,
            offload: true,
            mtu: None,
        }
    }

    /// For synack's own TUN device `tun` ([`Net::builder`]).
    pub(super) fn for_tun(tun: &str) -> NetBuilder {
        Self::new(Source::Tun(tun.to_string()))
    }

    /// For a device the application brings ([`Net::builder_with_device`]).
    pub(super) fn for_device(device: Box<dyn Device>) -> NetBuilder {
        Self::new(Source::Device(device))
    }

    /// For synack's TUN device: asks for checksum and segmentation offload
    /// (the default: on, falling back to a plain device when the kernel
    /// refuses), or, with `false`, opens a plain device: one packet of one
    /// segment per system call. [`Net::offload`] says what was granted. A
    /// device the application brings says itself whether it offloads; this
    /// changes nothing for it.
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = on;
        self
    }

    /// Adds an address of the stack (the address the peers connect to).
    pub fn addr(mut self, addr: IpAddr) -> Self {
        self.addrs.push(addr);
        self
    }

    /// Gives the host side of the device this address and brings it up.
    /// Only for a device that is a named interface of the host (a TUN
    /// device); `start` refuses it for others.
    pub fn host(mut self, host: HostAddr) -> Self {
        self.host = Some(host);
        self
    }

    /// Sets synack's TUN device to this MTU before the driver starts, and
    /// the stack's `Config::mtu` with it (so its MSS follows: 1460 at 1500,
    /// 8960 at 9000). Without it the stack uses `Config::mtu` and leaves
    /// the device as it is. A device the application brings has its own
    /// MTU: `start` refuses this for one.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// The stack's configuration (default: [`Config::default`]). Its
    /// `gso_max_size` and `checksum_offload` are set by the driver to what
    /// the device does (see [`NetBuilder::offload`]); for a device the
    /// application brings, so is its `mtu` (the device's MTU).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Writes the trace (JSON Lines, `shared/CONTRACT.md`) to `out`.
    pub fn trace(mut self, out: Sink) -> Self {
        self.trace = Some(out);
        self
    }

    /// Writes a pcap capture of every packet in and out to `out`.
    pub fn pcap(mut self, out: Sink) -> Self {
        self.pcap = Some(out);
        self
    }

    /// Opens the device (synack's TUN device) or takes the one brought,
    /// configures the host side, starts the driver thread.
    pub fn start(self) -> io::Result<Net> {
        if self.addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the stack needs an address",
            ));
        }
        let mut config = self.config;
        let device: Box<dyn Device> = match self.source {
            Source::Tun(name) => {
                let tun = open_tun(&name, self.offload)?;
                if let Some(mtu) = self.mtu {
                    ifconfig::set_mtu(&name, mtu).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("cannot set the MTU of {name} to {mtu}: {e}"),
                        )
                    })?;
                    config.mtu = mtu;
                }
                Box::new(tun)
            }
            Source::Device(_) if self.mtu.is_some() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the MTU of a device the application brings is the device's",
                ));
            }
            Source::Device(d) => {
                // The device's MTU, not a choice of the application's.
                config.mtu = d.capabilities().mtu;
                d
            }
        };
        let caps = device.capabilities();
        let name = device.name().map(str::to_string);
        if let Some(host) = self.host {
            let Some(name) = name.as_deref() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "cannot give the device the address {host}: it is not a named interface"
                    ),
                ));
            };
            ifconfig::configure(name, host).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot give {name} the address {host}: {e}"),
                )
            })?;
        }
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
        config.trace = self.trace.is_some();
        // What the device does, not a choice of the application's.
        config.gso_max_size = caps.offload.then_some(GSO_MAX_SIZE);
        config.checksum_offload = caps.offload;
        let mut stack = Stack::new(config, secret);
        for a in &self.addrs {
            stack.add_address(*a);
        }
        let trace = self.trace.map(TraceWriter::new);
        let pcap = match self.pcap {
            Some(out) => Some(PcapWriter::new(out)?),
            None => None,
        };
        let leader_wake = eventfd()?;
        let device_set = super::leader::device_set(device.as_fd())?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                stack,
                conns: HashMap::new(),
                listeners: HashMap::new(),
                delivery: Delivery::default(),
                trace,
                pcap,
                stats: DriverStats::default(),
                armed: None,
                leader: None,
                leader_busy: false,
                leader_kick: leader_wake.as_raw_fd(),
            }),
            device,
            caps,
            name,
            wake: eventfd()?,
            device_set,
            leader_wake,
            reading: Mutex::new(Vec::new()),
            gone: AtomicBool::new(false),
            grace_until: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            stop: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("synack-driver".into())
            .spawn(move || super::run::run(&for_thread))?;
        Ok(Net {
            shared: Arc::clone(&shared),
            owner: Arc::new(Owner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

/// Opens synack's own TUN device, with one clear error when it cannot.
fn open_tun(name: &str, offload: bool) -> io::Result<TunDevice> {
    let opened = if offload {
        TunDevice::open_offload(name)
    } else {
        TunDevice::open(name)
    };
    opened.map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::PermissionDenied => "permission denied (needs CAP_NET_ADMIN)".into(),
            io::ErrorKind::NotFound => "/dev/net/tun not found".into(),
            _ => e.to_string(),
        };
        io::Error::new(e.kind(), format!("cannot open TUN device {name}: {why}"))
    })
}

/// The driver's wake-up descriptor.
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before use.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(efd) })
}
