//! The packet-device seam: what the driver ([`crate::Net`]) runs over.
//!
//! A [`Device`] is a source and sink of IP packets, one frame per call,
//! with a file descriptor that is readable when a packet waits (the driver
//! sleeps in `ppoll` on it). It says what it can do ([`Capabilities`]: its
//! MTU, and whether its frames carry a virtio header for checksum and
//! segmentation offload); that is not the application's configuration.
//!
//! Three come with synack:
//!
//! - [`crate::tun::TunDevice`], the TUN device synack opens itself
//!   ([`crate::Net::builder`]), with offloads when the kernel grants them;
//! - [`FdDevice`], a TUN descriptor the application opened (tun-rs, an
//!   Android `VpnService` descriptor, a device from a privileged helper):
//!   it asks the kernel what the descriptor does;
//! - [`channel`], in-memory queues for any other source of packets (a
//!   WireGuard tunnel, a test, a tokio object: `crate::tokio::device`),
//!   with a [`PacketPort`] for the application's end.
//!
//! Any other implementation works too: [`crate::Net::builder_with_device`].
//!
//! ```no_run
//! use std::os::fd::OwnedFd;
//! use synack::device::FdDevice;
//!
//! # fn tun_fd_from_somewhere() -> OwnedFd { unimplemented!() }
//! let fd: OwnedFd = tun_fd_from_somewhere();
//! let net = synack::Net::builder_with_device(FdDevice::new(fd)?)
//!     .addr("10.0.0.2".parse().unwrap())
//!     .start()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod channel;
mod fd;

pub use channel::{channel, ChannelDevice, PacketPort, CHANNEL_QUEUE};
pub use fd::FdDevice;

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

/// What a device does (it says so; not user configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The largest IP packet the device carries in one frame (without a
    /// virtio header); the stack's MSS is derived from it.
    pub mtu: usize,
    /// Frames carry a `virtio_net_hdr` ([`crate::tun::VirtioNetHdr`])
    /// before the packet: arriving TCP packets may hold several segments
    /// merged, checksums may be left partial both ways, and the device cuts
    /// up the stack's super-segments (checksum and segmentation offload).
    pub offload: bool,
}

/// A source and sink of IP packets (one frame per call).
///
/// Calls come from the driver thread and from application threads at
/// once (a socket's `write` sends on its caller's thread), hence `&self`
/// and `Sync`.
pub trait Device: Send + Sync + 'static {
    /// What the device does; asked once, when the driver starts.
    fn capabilities(&self) -> Capabilities;

    /// Reads one frame into `frame` and returns its length. Non-blocking:
    /// `Err(WouldBlock)` when no packet is ready.
    fn recv(&self, frame: &mut [u8]) -> io::Result<usize>;

    /// Writes one frame. A packet the device cannot take now may be
    /// dropped (an error is counted by the driver, as a loss on a wire).
    fn send(&self, frame: &[u8]) -> io::Result<()>;

    /// Writes one frame given in parts (a virtio header and the packet), so
    /// that a device with a vectored write needs no copy. The default joins
    /// the parts and calls [`Device::send`].
    fn send_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            frame.extend_from_slice(p);
        }
        self.send(&frame)
    }

    /// A descriptor that is readable when [`Device::recv`] has a packet
    /// (the driver polls it; it never reads it).
    fn as_fd(&self) -> BorrowedFd<'_>;

    /// The interface's name when the device is a network interface of the
    /// host (a TUN device): [`crate::NetBuilder::host`] configures it.
    fn name(&self) -> Option<&str> {
        None
    }
}

impl<D: Device + ?Sized> Device for Arc<D> {
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn recv(&self, frame: &mut [u8]) -> io::Result<usize> {
        (**self).recv(frame)
    }
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }
    fn send_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        (**self).send_vectored(parts)
    }
    fn as_fd(&self) -> BorrowedFd<'_> {
        (**self).as_fd()
    }
    fn name(&self) -> Option<&str> {
        (**self).name()
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn recv(&self, frame: &mut [u8]) -> io::Result<usize> {
        (**self).recv(frame)
    }
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }
    fn send_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        (**self).send_vectored(parts)
    }
    fn as_fd(&self) -> BorrowedFd<'_> {
        (**self).as_fd()
    }
    fn name(&self) -> Option<&str> {
        (**self).name()
    }
}
