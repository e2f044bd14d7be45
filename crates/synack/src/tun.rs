//! The Linux TUN device: a file descriptor that reads and writes raw IP
//! packets (`IFF_TUN | IFF_NO_PI`: no link header, no packet-info prefix).
//!
//! [`TunDevice::open`] attaches to the device of that name, creating it when
//! it does not exist (which needs `CAP_NET_ADMIN`); a persistent device made
//! beforehand with `ip tuntap add` is attached to as it is. The descriptor is
//! non-blocking: reads return `WouldBlock` when no packet is waiting, and the
//! driver waits for readiness with `poll`.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `IFF_TUN`: an IP-level device.
const IFF_TUN: libc::c_short = 0x0001;
/// `IFF_NO_PI`: no 4-byte packet-info header before each packet.
const IFF_NO_PI: libc::c_short = 0x1000;

/// The `struct ifreq` layout `TUNSETIFF` reads: a name and the flags.
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TUN device (see the [module documentation](self)).
#[derive(Debug)]
pub struct TunDevice {
    file: File,
    name: String,
}

impl TunDevice {
    /// Opens `/dev/net/tun` and attaches it to the interface `name`,
    /// creating the interface when it is absent.
    ///
    /// Errors: a name that is empty, too long (15 bytes at most) or holds a
    /// NUL byte is `InvalidInput`; a missing `/dev/net/tun` is `NotFound`;
    /// lacking `CAP_NET_ADMIN` to create the device is `PermissionDenied`.
    pub fn open(name: &str) -> io::Result<TunDevice> {
        let req_name = ifname(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReqFlags {
            name: req_name,
            flags: IFF_TUN | IFF_NO_PI,
            _pad: [0; 22],
        };
        // SAFETY: `req` is a valid, writable ifreq-sized struct for the
        // duration of the call, and the descriptor is open.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel writes back a NUL-terminated name.
        let actual = unsafe { CStr::from_ptr(req.name.as_ptr()) };
        Ok(TunDevice {
            file,
            name: actual.to_string_lossy().into_owned(),
        })
    }

    /// The interface's name, as the kernel knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one packet into `buf`; `WouldBlock` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one packet.
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        (&self.file).write(packet)
    }
}

impl AsFd for TunDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// An interface name as the kernel's `ifreq` wants it.
pub(crate) fn ifname(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b as libc::c_char;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked() {
        assert!(ifname("syn0").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("a-name-far-too-long").is_err());
        assert!(ifname("a\0b").is_err());
    }
}
