//! The Linux TUN device: a file descriptor that reads and writes raw IP
//! packets (`IFF_TUN | IFF_NO_PI`: no link header, no packet-info prefix).
//!
//! [`TunDevice::open`] attaches to the device of that name, creating it when
//! it does not exist (which needs `CAP_NET_ADMIN`); a persistent device made
//! beforehand with `ip tuntap add` is attached to as it is. The descriptor is
//! non-blocking: reads return `WouldBlock` when no packet is waiting, and the
//! driver waits for readiness with `poll`.
//!
//! [`TunDevice::open_offload`] also asks for offloads: `IFF_VNET_HDR`, so
//! that every packet read or written is preceded by a [`VirtioNetHdr`], and
//! `TUNSETOFFLOAD` with checksum offload and TCP segmentation offload for
//! IPv4 and IPv6. The kernel then hands over TCP packets of up to 64 KiB
//! (several segments merged, checksum left partial) and takes such packets
//! to cut up itself: one system call and one trip through the kernel's stack
//! per 64 KiB instead of per segment, while the MTU stays what it is. When
//! the kernel refuses, the device is opened as [`TunDevice::open`] does.
//!
//! [`TunDevice`] is one [`Device`]: as such its frames are whole (the
//! virtio header included when it offloads; [`Device::send`] writes the
//! frame as given).

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use synack_core::RxChecksum;

use crate::device::{Capabilities, Device};
use synack_wire::{complete_checksum, ipv6_upper_layer, IPPROTO_TCP};

/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `TUNSETOFFLOAD` = `_IOW('T', 208, unsigned int)`.
pub(crate) const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// `TUNSETVNETHDRSZ` = `_IOW('T', 216, int)`.
pub(crate) const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
/// `IFF_TUN`: an IP-level device.
pub(crate) const IFF_TUN: libc::c_short = 0x0001;
/// `IFF_NO_PI`: no 4-byte packet-info header before each packet.
pub(crate) const IFF_NO_PI: libc::c_short = 0x1000;
/// `IFF_VNET_HDR`: a `struct virtio_net_hdr` before each packet.
pub(crate) const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `TUN_F_CSUM`: we take packets with partial checksums.
pub(crate) const TUN_F_CSUM: libc::c_uint = 0x01;
/// `TUN_F_TSO4`: we take IPv4 TCP packets of several segments.
pub(crate) const TUN_F_TSO4: libc::c_uint = 0x02;
/// `TUN_F_TSO6`: we take IPv6 TCP packets of several segments.
pub(crate) const TUN_F_TSO6: libc::c_uint = 0x04;

/// Length of `struct virtio_net_hdr`, the header before each packet on a
/// device opened with offloads.
pub const VNET_HDR_LEN: usize = 10;

/// `struct virtio_net_hdr` (the 10-byte legacy layout, in the host's byte
/// order as TUN uses it): what the device did or must do about a packet's
/// checksum and segmentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    /// [`VirtioNetHdr::NEEDS_CSUM`], [`VirtioNetHdr::DATA_VALID`].
    pub flags: u8,
    /// [`VirtioNetHdr::GSO_NONE`], [`VirtioNetHdr::GSO_TCPV4`],
    /// [`VirtioNetHdr::GSO_TCPV6`], possibly with [`VirtioNetHdr::GSO_ECN`].
    pub gso_type: u8,
    /// Length of the headers each segment repeats (a hint).
    pub hdr_len: u16,
    /// Payload bytes per segment when the packet is to be (or was) cut.
    pub gso_size: u16,
    /// Where checksumming starts (the transport header) with `NEEDS_CSUM`.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`, with `NEEDS_CSUM`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// The checksum is partial: sum from `csum_start` to the end, store at
    /// `csum_start + csum_offset`.
    pub const NEEDS_CSUM: u8 = 1;
    /// The checksum was verified.
    pub const DATA_VALID: u8 = 2;
    /// Not a segmentation-offload packet.
    pub const GSO_NONE: u8 = 0;
    /// An IPv4 TCP packet of several segments.
    pub const GSO_TCPV4: u8 = 1;
    /// An IPv6 TCP packet of several segments.
    pub const GSO_TCPV6: u8 = 4;
    /// The segments carry ECN's CWR the TCP way.
    pub const GSO_ECN: u8 = 0x80;

    /// Splits a frame read from an offloading device into its header and
    /// the packet; `None` when it is shorter than the header.
    pub fn parse(frame: &[u8]) -> Option<(VirtioNetHdr, &[u8])> {
        let (h, packet) = frame.split_at_checked(VNET_HDR_LEN)?;
        let u16_at = |i: usize| u16::from_ne_bytes([h[i], h[i + 1]]);
        let hdr = VirtioNetHdr {
            flags: h[0],
            gso_type: h[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        };
        Some((hdr, packet))
    }

    /// Checks an arriving packet's header against the packet and says what
    /// the stack must still do about its TCP checksum. A partial checksum
    /// on anything but TCP is completed here, in software, so that the
    /// rest of the driver sees an ordinary packet. `Err` (with a reason)
    /// for a header that does not fit its packet: an unknown or mismatched
    /// GSO type, a GSO size of 0, a checksum field outside the packet, a
    /// partial TCP checksum that does not start at the TCP header or does
    /// not land on TCP's checksum field. Never panics.
    pub fn check_rx(&self, packet: &mut [u8]) -> Result<RxChecksum, &'static str> {
        let gso = self.gso_type & !Self::GSO_ECN;
        let version = packet.first().map(|b| b >> 4);
        match gso {
            Self::GSO_NONE => {}
            Self::GSO_TCPV4 if version == Some(4) => {}
            Self::GSO_TCPV6 if version == Some(6) => {}
            Self::GSO_TCPV4 | Self::GSO_TCPV6 => return Err("GSO type of another IP version"),
            _ => return Err("unknown GSO type"),
        }
        let tcp = tcp_offset(packet);
        if gso != Self::GSO_NONE && (self.gso_size == 0 || tcp.is_none()) {
            return Err("GSO packet that is not TCP or has no segment size");
        }
        if self.flags & Self::NEEDS_CSUM == 0 {
            return Ok(if self.flags & Self::DATA_VALID != 0 {
                RxChecksum::Verified
            } else {
                RxChecksum::Unverified
            });
        }
        let start = usize::from(self.csum_start);
        let offset = usize::from(self.csum_offset);
        if start + offset + 2 > packet.len() {
            return Err("checksum field past the end of the packet");
        }
        match tcp {
            Some(t) if t == start && offset == 16 => Ok(RxChecksum::Partial),
            Some(_) => Err("partial checksum that is not TCP's"),
            None => {
                complete_checksum(packet, start, offset)
                    .map_err(|_| "checksum field past the end of the packet")?;
                Ok(RxChecksum::Unverified)
            }
        }
    }

    /// The header's bytes, to write before a packet.
    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = self.flags;
        h[1] = self.gso_type;
        h[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        h[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        h[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        h[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        h
    }
}

/// Where the TCP header of an IPv4 or IPv6 packet starts; `None` when it
/// does not carry TCP (or is a fragment, or too short to say).
fn tcp_offset(packet: &[u8]) -> Option<usize> {
    match packet.first()? >> 4 {
        4 => {
            let h = packet.get(..20)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
            (h[9] == IPPROTO_TCP && ihl >= 20 && !fragment && ihl + 20 <= packet.len())
                .then_some(ihl)
        }
        6 => {
            let rest = packet.get(40..)?;
            let (proto, tcp) = ipv6_upper_layer(packet[6], rest).ok()?;
            (proto == IPPROTO_TCP && tcp.len() >= 20).then_some(packet.len() - tcp.len())
        }
        _ => None,
    }
}

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
    offload: bool,
}

impl TunDevice {
    /// Opens `/dev/net/tun` and attaches it to the interface `name`,
    /// creating the interface when it is absent.
    ///
    /// Errors: a name that is empty, too long (15 bytes at most) or holds a
    /// NUL byte is `InvalidInput`; a missing `/dev/net/tun` is `NotFound`;
    /// lacking `CAP_NET_ADMIN` to create the device is `PermissionDenied`.
    pub fn open(name: &str) -> io::Result<TunDevice> {
        Self::attach(name, false)
    }

    /// As [`TunDevice::open`], with checksum and TCP segmentation offload
    /// when the kernel grants them (see the [module documentation](self));
    /// [`TunDevice::offload`] says whether it did. Errors as for `open`.
    pub fn open_offload(name: &str) -> io::Result<TunDevice> {
        match Self::attach(name, true) {
            Ok(dev) => Ok(dev),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput && ifname(name).is_err() => Err(e),
            Err(_) => Self::attach(name, false),
        }
    }

    /// Opens and attaches; with `offload`, asks for the virtio header and
    /// the offloads, and fails (closing the descriptor) when refused.
    fn attach(name: &str, offload: bool) -> io::Result<TunDevice> {
        let req_name = ifname(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReqFlags {
            name: req_name,
            flags: IFF_TUN | IFF_NO_PI | if offload { IFF_VNET_HDR } else { 0 },
            _pad: [0; 22],
        };
        // SAFETY: `req` is a valid, writable ifreq-sized struct for the
        // duration of the call, and the descriptor is open.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        if offload {
            let size: libc::c_int = VNET_HDR_LEN as libc::c_int;
            // SAFETY: the kernel reads an int from a live local.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETVNETHDRSZ as _, &size) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            let features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
            // SAFETY: TUNSETOFFLOAD takes the flags as the argument itself.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD as _, features) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: the kernel writes back a NUL-terminated name.
        let actual = unsafe { CStr::from_ptr(req.name.as_ptr()) };
        Ok(TunDevice {
            file,
            name: actual.to_string_lossy().into_owned(),
            offload,
        })
    }

    /// True when every packet read or written is preceded by a
    /// [`VirtioNetHdr`] and the kernel does checksum and TCP segmentation
    /// offload ([`TunDevice::open_offload`] succeeded in asking).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// The interface's name, as the kernel knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame into `buf`; `WouldBlock` when none is waiting. With
    /// [`TunDevice::offload`] the frame is a [`VirtioNetHdr`] and the packet
    /// ([`VirtioNetHdr::parse`] splits them), else the packet alone.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one complete packet (with an empty [`VirtioNetHdr`] before it
    /// when the device offloads).
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        if self.offload {
            self.send_with(&VirtioNetHdr::default(), packet)
        } else {
            (&self.file).write(packet)
        }
    }

    /// Writes one packet with the header `hdr` before it, in one system
    /// call: for a device that offloads. Returns the packet's length.
    pub fn send_with(&self, hdr: &VirtioNetHdr, packet: &[u8]) -> io::Result<usize> {
        let h = hdr.emit();
        let n = (&self.file).write_vectored(&[IoSlice::new(&h), IoSlice::new(packet)])?;
        Ok(n.saturating_sub(VNET_HDR_LEN))
    }
}

impl Device for TunDevice {
    /// The interface's MTU as the kernel has it now (1500 when it does not
    /// say), and whether the device was opened with offloads.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: crate::ifconfig::mtu(&self.name).unwrap_or(1500),
            offload: self.offload,
        }
    }

    fn recv(&self, frame: &mut [u8]) -> io::Result<usize> {
        TunDevice::recv(self, frame)
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        (&self.file).write(frame).map(|_| ())
    }

    fn send_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        (&self.file).write_vectored(parts).map(|_| ())
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
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
    fn virtio_header_round_trips() {
        let h = VirtioNetHdr {
            flags: VirtioNetHdr::NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV4,
            hdr_len: 52,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut frame = h.emit().to_vec();
        assert_eq!(frame.len(), VNET_HDR_LEN);
        assert_eq!(frame[0], 1);
        assert_eq!(frame[1], 1);
        assert_eq!(u16::from_ne_bytes([frame[4], frame[5]]), 1448);
        assert_eq!(u16::from_ne_bytes([frame[8], frame[9]]), 16);
        frame.extend_from_slice(&[0x45, 0, 0, 20]);
        let (back, packet) = VirtioNetHdr::parse(&frame).unwrap();
        assert_eq!(back, h);
        assert_eq!(packet, &[0x45, 0, 0, 20]);
    }

    #[test]
    fn short_frames_have_no_header() {
        for n in 0..VNET_HDR_LEN {
            assert!(VirtioNetHdr::parse(&vec![0u8; n]).is_none(), "{n}");
        }
        let (h, p) = VirtioNetHdr::parse(&[0u8; VNET_HDR_LEN]).unwrap();
        assert_eq!(h, VirtioNetHdr::default());
        assert!(p.is_empty());
    }

    fn tcp_packet(v6: bool) -> Vec<u8> {
        use std::net::IpAddr;
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
        } else {
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        };
        let repr = synack_wire::TcpRepr {
            src_port: 1,
            dst_port: 2,
            ..Default::default()
        };
        let mut buf = vec![0u8; synack_wire::packet_len(src, &repr, 3000)];
        let n = synack_wire::emit_packet_with(
            &mut buf,
            src,
            dst,
            64,
            0,
            &repr,
            &[&[7u8; 3000]],
            synack_wire::TcpChecksum::Partial,
        )
        .unwrap();
        buf.truncate(n);
        buf
    }

    fn hdr(flags: u8, gso_type: u8, gso_size: u16, start: u16, offset: u16) -> VirtioNetHdr {
        VirtioNetHdr {
            flags,
            gso_type,
            hdr_len: 0,
            gso_size,
            csum_start: start,
            csum_offset: offset,
        }
    }

    #[test]
    fn merged_tcp_with_partial_checksum_is_trusted() {
        const N: u8 = VirtioNetHdr::NEEDS_CSUM;
        let mut p4 = tcp_packet(false);
        let mut p6 = tcp_packet(true);
        let h = hdr(N, VirtioNetHdr::GSO_TCPV4, 1448, 20, 16);
        assert_eq!(h.check_rx(&mut p4), Ok(RxChecksum::Partial));
        let h = hdr(N, VirtioNetHdr::GSO_TCPV6, 1428, 40, 16);
        assert_eq!(h.check_rx(&mut p6), Ok(RxChecksum::Partial));
        let h = hdr(N | VirtioNetHdr::DATA_VALID, 0, 0, 20, 16);
        assert_eq!(h.check_rx(&mut p4), Ok(RxChecksum::Partial));
        assert_eq!(
            hdr(0, 0, 0, 0, 0).check_rx(&mut p4),
            Ok(RxChecksum::Unverified)
        );
        let valid = hdr(VirtioNetHdr::DATA_VALID, 0, 0, 0, 0);
        assert_eq!(valid.check_rx(&mut p6), Ok(RxChecksum::Verified));
        // ECN on the segments changes nothing here.
        let h = hdr(
            N,
            VirtioNetHdr::GSO_TCPV4 | VirtioNetHdr::GSO_ECN,
            1448,
            20,
            16,
        );
        assert_eq!(h.check_rx(&mut p4), Ok(RxChecksum::Partial));
    }

    #[test]
    fn headers_that_do_not_fit_their_packet_are_refused() {
        const N: u8 = VirtioNetHdr::NEEDS_CSUM;
        let mut p4 = tcp_packet(false);
        let mut p6 = tcp_packet(true);
        let len = p4.len() as u16;
        let bad = [
            (hdr(N, VirtioNetHdr::GSO_TCPV6, 1448, 20, 16), false),
            (hdr(N, VirtioNetHdr::GSO_TCPV4, 1448, 40, 16), true),
            (hdr(N, 3, 1448, 20, 16), false), // UDP
            (hdr(N, 5, 1448, 20, 16), false), // UDP_L4
            (hdr(N, 0x7f, 1448, 20, 16), false),
            (hdr(N, VirtioNetHdr::GSO_TCPV4, 0, 20, 16), false),
            (hdr(N, 0, 0, 20, 6), false),
            (hdr(N, 0, 0, 24, 16), false),
            (hdr(N, 0, 0, len - 17, 16), false),
            (hdr(N, 0, 0, len, 0), false),
            (hdr(N, 0, 0, u16::MAX, u16::MAX), false),
        ];
        for (h, v6) in bad {
            let p = if v6 { &mut p6 } else { &mut p4 };
            let before = p.clone();
            assert!(h.check_rx(p).is_err(), "{h:?}");
            assert_eq!(*p, before, "left alone: {h:?}");
        }
        // Not TCP at all with a GSO type.
        let mut udp = p4.clone();
        udp[9] = 17;
        assert!(hdr(N, VirtioNetHdr::GSO_TCPV4, 1448, 20, 6)
            .check_rx(&mut udp)
            .is_err());
    }

    #[test]
    fn a_partial_checksum_on_anything_else_is_completed_here() {
        // An ICMP echo request whose checksum the kernel left partial.
        let mut p = vec![
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0, 0, 1,
            0, 2,
        ];
        let c = synack_wire::internet_checksum(0, &p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let h = hdr(VirtioNetHdr::NEEDS_CSUM, 0, 0, 20, 2);
        assert_eq!(h.check_rx(&mut p), Ok(RxChecksum::Unverified));
        assert_eq!(synack_wire::internet_checksum(0, &p[20..]), 0);
    }

    #[test]
    fn random_headers_and_packets_never_panic() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = tcp_packet(false);
        for _ in 0..20_000 {
            let mut frame = vec![0u8; VNET_HDR_LEN];
            for b in &mut frame {
                *b = next() as u8;
            }
            let cut = (next() as usize) % (base.len() + 1);
            frame.extend_from_slice(&base[..cut]);
            if next() % 2 == 0 && frame.len() > VNET_HDR_LEN {
                let i = VNET_HDR_LEN + (next() as usize) % (frame.len() - VNET_HDR_LEN);
                frame[i] = next() as u8;
            }
            let (h, _) = VirtioNetHdr::parse(&frame).unwrap();
            let _ = h.check_rx(&mut frame[VNET_HDR_LEN..]);
        }
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(ifname("syn0").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("a-name-far-too-long").is_err());
        assert!(ifname("a\0b").is_err());
    }
}
