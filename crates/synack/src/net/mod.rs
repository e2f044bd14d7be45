//! Blocking sockets on a [`Net`](crate::driver::Net), in the shapes of
//! `std::net`: [`TcpListener`] (`bind`, `accept`, `incoming`) and
//! [`TcpStream`] (`connect`, `connect_timeout`, `Read`, `Write`,
//! `shutdown`, timeouts, `set_nodelay`, `set_linger`, and `set_tos` as
//! `IP_TOS` / `IPV6_TCLASS` set it), and for tunnels a transparent
//! listener ([`TcpListener::bind_transparent`]) whose connection requests
//! ([`ConnectionRequest`]) are accepted or refused before the handshake.
//!
//! The difference from `std::net`: the stack is named explicitly, as the
//! first argument of `bind` and `connect`, since a process may run several.
//! Every socket is `Send + Sync`; any number of threads may use any number
//! of sockets at once. Errors carry the `std::io::ErrorKind` a `std::net`
//! user expects (`ConnectionRefused`, `TimedOut`, `ConnectionReset`,
//! `AddrInUse`, `WouldBlock` when a read or write timeout passes, ...).

mod listener;
mod request;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use request::ConnectionRequest;
pub use stream::TcpStream;

use std::io;

use synack_core::Dscp;

/// The codepoint of a TOS / Traffic Class value as `set_tos` takes it: a
/// byte (`InvalidInput` otherwise) whose ECN bits are ignored, as Linux
/// does for TCP sockets (RFC 3168 §6.1: they are the transport's).
fn dscp_of_tos(tos: u32) -> io::Result<Dscp> {
    let byte = u8::try_from(tos)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TOS is one byte"))?;
    Ok(Dscp::from_tos(byte))
}
