//! The host side of a TUN device: gives the interface an address and brings
//! it up, through the kernel's own interface-configuration ioctls
//! (`SIOCSIFADDR`, `SIOCSIFNETMASK`, `SIOCSIFFLAGS`; for IPv6 the
//! `in6_ifreq` form of `SIOCSIFADDR`), the calls `ifconfig` makes. No
//! external program is run.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::str::FromStr;

use crate::tun::ifname;

/// An interface address with its prefix length, as `10.0.0.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostAddr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix: u8,
}

impl FromStr for HostAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("bad host address {s:?}: expected IP/PREFIX"))?;
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("bad host address {s:?}: {ip:?} is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("bad host address {s:?}: bad prefix length"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("bad host address {s:?}: prefix over {max}"));
        }
        Ok(HostAddr { addr, prefix })
    }
}

impl std::fmt::Display for HostAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `struct ifreq` with a `sockaddr` in its union.
#[repr(C)]
struct IfReqAddr {
    name: [libc::c_char; libc::IFNAMSIZ],
    addr: libc::sockaddr_in,
    _pad: [u8; 8],
}

/// `struct ifreq` with flags or an index in its union.
#[repr(C)]
struct IfReqInt {
    name: [libc::c_char; libc::IFNAMSIZ],
    value: libc::c_int,
    _pad: [u8; 20],
}

/// `struct in6_ifreq` of `linux/ipv6.h`.
#[repr(C)]
struct In6IfReq {
    addr: libc::in6_addr,
    prefixlen: u32,
    ifindex: libc::c_int,
}

/// Gives interface `name` the address `host` and brings it up.
pub fn configure(name: &str, host: HostAddr) -> io::Result<()> {
    match host.addr {
        IpAddr::V4(a) => set_ipv4(name, a, host.prefix)?,
        IpAddr::V6(a) => set_ipv6(name, a, host.prefix)?,
    }
    set_up(name)
}

/// Brings interface `name` up (`IFF_UP | IFF_RUNNING`).
pub fn set_up(name: &str) -> io::Result<()> {
    let sock = socket(libc::AF_INET)?;
    let mut req = IfReqInt {
        name: ifname(name)?,
        value: 0,
        _pad: [0; 20],
    };
    ioctl(&sock, libc::SIOCGIFFLAGS, &mut req)?;
    req.value |= libc::IFF_UP | libc::IFF_RUNNING;
    ioctl(&sock, libc::SIOCSIFFLAGS, &mut req)
}

/// The MTU of interface `name` (`SIOCGIFMTU`).
pub fn mtu(name: &str) -> io::Result<usize> {
    let sock = socket(libc::AF_INET)?;
    let mut req = IfReqInt {
        name: ifname(name)?,
        value: 0,
        _pad: [0; 20],
    };
    ioctl(&sock, libc::SIOCGIFMTU, &mut req)?;
    usize::try_from(req.value).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// Sets the MTU of interface `name` (`SIOCSIFMTU`).
pub fn set_mtu(name: &str, mtu: usize) -> io::Result<()> {
    let sock = socket(libc::AF_INET)?;
    let mut req = IfReqInt {
        name: ifname(name)?,
        value: libc::c_int::try_from(mtu)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        _pad: [0; 20],
    };
    ioctl(&sock, libc::SIOCSIFMTU, &mut req)
}

fn set_ipv4(name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let sock = socket(libc::AF_INET)?;
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    let mut req = IfReqAddr {
        name: ifname(name)?,
        addr: sockaddr_v4(addr),
        _pad: [0; 8],
    };
    ioctl(&sock, libc::SIOCSIFADDR, &mut req)?;
    req.addr = sockaddr_v4(Ipv4Addr::from(mask));
    ioctl(&sock, libc::SIOCSIFNETMASK, &mut req)
}

fn set_ipv6(name: &str, addr: Ipv6Addr, prefix: u8) -> io::Result<()> {
    let sock = socket(libc::AF_INET6)?;
    let mut idx = IfReqInt {
        name: ifname(name)?,
        value: 0,
        _pad: [0; 20],
    };
    ioctl(&sock, libc::SIOCGIFINDEX, &mut idx)?;
    let mut req = In6IfReq {
        addr: libc::in6_addr {
            s6_addr: addr.octets(),
        },
        prefixlen: u32::from(prefix),
        ifindex: idx.value,
    };
    ioctl(&sock, libc::SIOCSIFADDR, &mut req)
}

fn sockaddr_v4(addr: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A datagram socket of `family`, only as a handle for the ioctls.
fn socket(family: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl<T>(sock: &OwnedFd, request: libc::c_ulong, arg: &mut T) -> io::Result<()> {
    // SAFETY: every `T` passed here is a `repr(C)` struct of the size and
    // layout the request expects, valid and writable for the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, arg as *mut T) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_addresses_parse() {
        let h: HostAddr = "10.0.0.1/24".parse().unwrap();
        assert_eq!(h.addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(h.prefix, 24);
        assert_eq!(h.to_string(), "10.0.0.1/24");
        let h: HostAddr = "fd00::1/64".parse().unwrap();
        assert_eq!(h.prefix, 64);
        assert!("10.0.0.1".parse::<HostAddr>().is_err());
        assert!("10.0.0.1/33".parse::<HostAddr>().is_err());
        assert!("nope/8".parse::<HostAddr>().is_err());
    }

    #[test]
    fn ifreq_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<IfReqAddr>(), 40);
        assert_eq!(std::mem::size_of::<IfReqInt>(), 40);
        assert_eq!(std::mem::size_of::<In6IfReq>(), 24);
    }
}
