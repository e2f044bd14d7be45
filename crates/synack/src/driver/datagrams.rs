//! The application's calls for what is not TCP: UDP datagrams and raw
//! packets, in and out of the device (see [`crate::datagram`]).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant as StdInstant};

use super::net::Net;
use super::shared::{Locked, Wait};
use crate::datagram::{check_packet, udp_packet, Datagram};

impl Net {
    /// Starts (`true`) or stops delivering UDP datagrams and other packets
    /// that arrive on the device to the application
    /// ([`Net::recv_datagram`], [`Net::recv_packet`]). Off by default:
    /// then they are dropped and counted in [`super::DriverStats`], as the
    /// driver always did. Turning it off drops what is queued.
    ///
    /// What is delivered: every UDP datagram (any destination address and
    /// port; header, length and checksum checked, bad ones dropped and
    /// counted), and as raw IP packets ICMP and ICMPv6 not for the stack
    /// (echo requests to other addresses, errors about datagrams), IP
    /// fragments (not reassembled) and other protocols. TCP to a
    /// destination the stack does not take stays dropped, and echo
    /// requests to the stack's own addresses stay answered by the driver.
    pub fn deliver_datagrams(&self, on: bool) {
        let mut g = self.shared.lock();
        g.delivery.on = on;
        if !on {
            g.delivery.datagrams.clear();
            g.delivery.packets.clear();
        }
    }

    /// Waits for the next UDP datagram that arrived on the device (bounded
    /// queue; overflow dropped and counted). `NotConnected` once the driver
    /// has stopped.
    pub fn recv_datagram(&self) -> io::Result<Datagram> {
        self.wait_for(Wait::Datagram, None, |l: &mut Locked<'_>| l.pop_datagram())
    }

    /// As [`Net::recv_datagram`], waiting at most `timeout` (then
    /// `WouldBlock`, as a socket's read timeout).
    pub fn recv_datagram_timeout(&self, timeout: Duration) -> io::Result<Datagram> {
        self.wait_for(
            Wait::Datagram,
            Some(StdInstant::now() + timeout),
            |l: &mut Locked<'_>| l.pop_datagram(),
        )
    }

    /// The next UDP datagram that arrived, or `WouldBlock` when none waits.
    pub fn try_recv_datagram(&self) -> io::Result<Datagram> {
        self.lock()
            .pop_datagram()
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    /// Writes a UDP datagram into the device from any source address and
    /// port (a tunnel answers for the addresses behind it: a DNS reply
    /// comes from the server's address). `InvalidInput` for addresses of
    /// two families; `EMSGSIZE` (the error `UdpSocket::send_to` gives) for
    /// a packet larger than the device's MTU.
    pub fn send_datagram(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut l = self.lock();
        let ttl = l.stack().config().ttl;
        let mtu = l.stack().config().mtu;
        let packet = udp_packet(src, dst, ttl, payload, mtu)?;
        l.send_raw(&packet);
        l.g.stats.datagrams_sent += 1;
        Ok(())
    }

    /// Waits for the next packet that is neither TCP for the stack nor UDP
    /// (see [`Net::deliver_datagrams`]): a whole IP packet.
    pub fn recv_packet(&self) -> io::Result<Vec<u8>> {
        self.wait_for(Wait::Packet, None, |l: &mut Locked<'_>| l.pop_packet())
    }

    /// As [`Net::recv_packet`], waiting at most `timeout` (then
    /// `WouldBlock`).
    pub fn recv_packet_timeout(&self, timeout: Duration) -> io::Result<Vec<u8>> {
        self.wait_for(
            Wait::Packet,
            Some(StdInstant::now() + timeout),
            |l: &mut Locked<'_>| l.pop_packet(),
        )
    }

    /// The next such packet, or `WouldBlock` when none waits.
    pub fn try_recv_packet(&self) -> io::Result<Vec<u8>> {
        self.lock()
            .pop_packet()
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    /// Writes a whole IP packet into the device as it is (an ICMP reply,
    /// another protocol). `InvalidInput` when it does not start with a
    /// well-formed IPv4 or IPv6 header; `EMSGSIZE` when larger than the
    /// device's MTU.
    pub fn send_packet(&self, packet: &[u8]) -> io::Result<()> {
        let mut l = self.lock();
        check_packet(packet, l.stack().config().mtu)?;
        l.send_raw(packet);
        l.g.stats.packets_sent += 1;
        Ok(())
    }

    /// Takes from a queue with `pop`, waiting on `on` until something comes
    /// or `deadline` passes.
    fn wait_for<T>(
        &self,
        on: Wait,
        deadline: Option<StdInstant>,
        pop: impl Fn(&mut Locked<'_>) -> Option<T>,
    ) -> io::Result<T> {
        let mut l = self.lock();
        loop {
            if let Some(item) = pop(&mut l) {
                return Ok(item);
            }
            l = l.wait(on, deadline, io::ErrorKind::WouldBlock)?;
        }
    }
}

impl Locked<'_> {
    /// The next datagram queued for the application.
    pub(crate) fn pop_datagram(&mut self) -> Option<Datagram> {
        self.g.delivery.datagrams.pop()
    }

    /// The next raw packet queued for the application.
    pub(crate) fn pop_packet(&mut self) -> Option<Vec<u8>> {
        self.g.delivery.packets.pop()
    }

    /// Writes a packet the application made into the device.
    fn send_raw(&mut self, packet: &[u8]) {
        let now = self.shared.now();
        self.shared.send_packet(&mut self.g, now, packet);
    }
}
