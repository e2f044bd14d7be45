//! [`FdDevice`]: a packet descriptor the application opened itself.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{Capabilities, Device};
use crate::tun::{IFF_TUN, IFF_VNET_HDR, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6};
use crate::tun::{TUNSETOFFLOAD, TUNSETVNETHDRSZ, VNET_HDR_LEN};

/// `TUNGETIFF` = `_IOR('T', 210, unsigned int)`.
const TUNGETIFF: libc::c_ulong = 0x8004_54d2;
/// `TUNGETVNETHDRSZ` = `_IOR('T', 215, int)`.
const TUNGETVNETHDRSZ: libc::c_ulong = 0x8004_54d7;
/// `IFF_TAP`: an Ethernet-level device (not for an IP stack).
const IFF_TAP: libc::c_short = 0x0002;
/// Length of `struct tun_pi`, the packet-info prefix of a TUN descriptor
/// opened without `IFF_NO_PI`.
const PI_LEN: usize = 4;
/// The MTU assumed when the interface does not say (Ethernet's).
const DEFAULT_MTU: usize = 1500;

/// The `struct ifreq` layout `TUNGETIFF` writes: a name and the flags.
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A packet device on a descriptor the application opened: a Linux TUN
/// descriptor (from tun-rs, Android's `VpnService.establish()`, a helper
/// that holds `CAP_NET_ADMIN`), or, with [`FdDevice::with_capabilities`],
/// any descriptor where one read is one packet.
///
/// [`FdDevice::new`] asks the kernel what the TUN descriptor does
/// (`TUNGETIFF`): with `IFF_VNET_HDR` the frames carry a virtio header and
/// the device offloads (the header length is set to the 10 bytes synack
/// reads, and checksum and TCP segmentation offload are asked for, as
/// [`crate::tun::TunDevice::open_offload`] does; the kernel may refuse
/// the latter, which only means it merges nothing). The MTU is the
/// interface's (`SIOCGIFMTU` on the name `TUNGETIFF` gives). The
/// descriptor is made non-blocking.
///
/// One thing the kernel cannot say: whether the descriptor was opened
/// without `IFF_NO_PI` (frames then start with a 4-byte `struct tun_pi`),
/// because `TUNGETIFF` reports `IFF_NOFILTER`, the same bit, on every TUN
/// descriptor. `IFF_NO_PI` is assumed, as tun-rs, Android's `VpnService`
/// and most tools open it; [`FdDevice::with_packet_info`] says otherwise.
#[derive(Debug)]
pub struct FdDevice {
    file: File,
    name: Option<String>,
    caps: Capabilities,
    packet_info: bool,
}

impl FdDevice {
    /// Wraps a TUN descriptor (see the [type's documentation](FdDevice)).
    ///
    /// Errors: a descriptor that is not a TUN device (`TUNGETIFF` fails)
    /// or is a TAP device is `InvalidInput`; a failing `fcntl` as the
    /// kernel reports it.
    pub fn new(fd: OwnedFd) -> io::Result<FdDevice> {
        let mut req = IfReqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        // SAFETY: `req` is a live, writable ifreq-sized struct for the call.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETIFF as _, &mut req) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a TUN descriptor (TUNGETIFF: {e})"),
            ));
        }
        if req.flags & IFF_TUN == 0 || req.flags & IFF_TAP != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a TAP descriptor (Ethernet frames): synack needs a TUN device (IP packets)",
            ));
        }
        let offload = req.flags & IFF_VNET_HDR != 0;
        if offload {
            ask_offloads(&fd)?;
        }
        // The kernel NUL-terminates the name it writes (IFNAMSIZ - 1 bytes
        // at most); the last byte is forced to 0 in case it did not.
        req.name[libc::IFNAMSIZ - 1] = 0;
        // SAFETY: `req.name` is a NUL-terminated array that outlives `name`.
        let name = unsafe { CStr::from_ptr(req.name.as_ptr()) };
        let name = name.to_string_lossy().into_owned();
        let mtu = crate::ifconfig::mtu(&name).unwrap_or(DEFAULT_MTU);
        let mut dev = Self::with_capabilities(fd, Capabilities { mtu, offload })?;
        dev.name = Some(name);
        Ok(dev)
    }

    /// Wraps any descriptor where one read returns one packet and one write
    /// sends one (a `SOCK_SEQPACKET` or datagram socket, a pipe-like device),
    /// with the capabilities the caller knows it has. Made non-blocking.
    pub fn with_capabilities(fd: OwnedFd, caps: Capabilities) -> io::Result<FdDevice> {
        set_nonblocking(&fd)?;
        Ok(FdDevice {
            file: File::from(fd),
            name: None,
            caps,
            packet_info: false,
        })
    }

    /// The TUN interface's name (`None` for [`FdDevice::with_capabilities`]).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// For a TUN descriptor opened without `IFF_NO_PI` (`true`): frames
    /// carry the 4-byte `struct tun_pi` prefix, which this device takes off
    /// what it reads and puts on what it writes. The kernel does not say
    /// (see the [type's documentation](FdDevice)).
    pub fn with_packet_info(mut self, on: bool) -> Self {
        self.packet_info = on;
        self
    }

    /// True when frames carry the 4-byte `struct tun_pi` prefix
    /// ([`FdDevice::with_packet_info`]).
    pub fn packet_info(&self) -> bool {
        self.packet_info
    }
}

/// On a descriptor with `IFF_VNET_HDR`: the header length synack reads, and
/// the offloads (refusal only means the kernel hands over no super-segments).
fn ask_offloads(fd: &OwnedFd) -> io::Result<()> {
    let mut size: libc::c_int = 0;
    // SAFETY: the kernel writes an int into a live local.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETVNETHDRSZ as _, &mut size) };
    if rc < 0 || size != VNET_HDR_LEN as libc::c_int {
        let want: libc::c_int = VNET_HDR_LEN as libc::c_int;
        // SAFETY: the kernel reads an int from a live local.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETVNETHDRSZ as _, &want) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    // SAFETY: TUNSETOFFLOAD takes the flags as the argument itself.
    let _ = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, features) };
    Ok(())
}

/// Sets `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain fcntl calls on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The packet-info prefix for a packet: no flags, the EtherType of its IP
/// version (the kernel takes the packet's protocol from it).
fn packet_info_for(first: Option<u8>) -> [u8; PI_LEN] {
    let proto: u16 = match first.map(|b| b >> 4) {
        Some(6) => 0x86dd,
        _ => 0x0800,
    };
    let p = proto.to_be_bytes();
    [0, 0, p[0], p[1]]
}

impl Device for FdDevice {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn recv(&self, frame: &mut [u8]) -> io::Result<usize> {
        if !self.packet_info {
            return (&self.file).read(frame);
        }
        let mut pi = [0u8; PI_LEN];
        let n =
            (&self.file).read_vectored(&mut [IoSliceMut::new(&mut pi), IoSliceMut::new(frame)])?;
        Ok(n.saturating_sub(PI_LEN))
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.send_vectored(&[IoSlice::new(frame)])
    }

    fn send_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        let first = parts.iter().find(|p| !p.is_empty()).map(|p| p[0]);
        let n = if self.packet_info {
            // With offload the version nibble is past the virtio header.
            let version = if self.caps.offload {
                nth_byte(parts, VNET_HDR_LEN)
            } else {
                first
            };
            let pi = packet_info_for(version);
            let mut all = Vec::with_capacity(parts.len() + 1);
            all.push(IoSlice::new(&pi));
            all.extend_from_slice(parts);
            (&self.file).write_vectored(&all)?
        } else if let [one] = parts {
            (&self.file).write(one)?
        } else {
            (&self.file).write_vectored(parts)?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(())
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Byte `i` of the concatenation of `parts`.
fn nth_byte(parts: &[IoSlice<'_>], mut i: usize) -> Option<u8> {
    for p in parts {
        if i < p.len() {
            return Some(p[i]);
        }
        i -= p.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a live array of two ints for the call.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: two fresh descriptors nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn a_socket_is_not_a_tun_device() {
        let (a, _b) = seqpacket_pair();
        let e = FdDevice::new(a).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("not a TUN descriptor"), "{e}");
    }

    #[test]
    fn one_read_is_one_packet_and_reads_do_not_block() {
        let (a, b) = seqpacket_pair();
        let caps = Capabilities {
            mtu: 1500,
            offload: false,
        };
        let dev = FdDevice::with_capabilities(a, caps).unwrap();
        let peer = File::from(b);
        let mut buf = [0u8; 2000];
        assert_eq!(
            dev.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        (&peer).write_all(&[0x45, 1, 2]).unwrap();
        (&peer).write_all(&[0x60, 9]).unwrap();
        assert_eq!(dev.recv(&mut buf).unwrap(), 3);
        assert_eq!(dev.recv(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], &[0x60, 9]);
        dev.send_vectored(&[IoSlice::new(&[1, 2]), IoSlice::new(&[3])])
            .unwrap();
        let n = (&peer).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[1, 2, 3]);
        assert_eq!(dev.capabilities(), caps);
        assert_eq!(Device::name(&dev), None);
    }

    #[test]
    fn packet_info_names_the_ip_version() {
        assert_eq!(packet_info_for(Some(0x45)), [0, 0, 0x08, 0x00]);
        assert_eq!(packet_info_for(Some(0x60)), [0, 0, 0x86, 0xdd]);
        let parts = [IoSlice::new(&[1, 2]), IoSlice::new(&[3, 4, 5])];
        assert_eq!(nth_byte(&parts, 0), Some(1));
        assert_eq!(nth_byte(&parts, 3), Some(4));
        assert_eq!(nth_byte(&parts, 5), None);
    }
}
