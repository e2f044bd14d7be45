//! `synack tun2socks`: relays every TCP connection and UDP datagram that
//! arrives on a TUN device through a SOCKS5 proxy or the host's sockets.

// Wired into the command once the transparent listener and datagram API
// are merged; until then the pieces are built and tested on their own.
#![allow(dead_code)]

pub mod direct;
pub mod icmp;
pub mod relay;
pub mod socks5;
pub mod status;
pub mod udp;
