//! Blocking sockets on a [`Net`](crate::driver::Net), in the shapes of
//! `std::net`: [`TcpListener`] (`bind`, `accept`, `incoming`) and
//! [`TcpStream`] (`connect`, `connect_timeout`, `Read`, `Write`,
//! `shutdown`, timeouts, `set_nodelay`, `set_linger`).
//!
//! The difference from `std::net`: the stack is named explicitly, as the
//! first argument of `bind` and `connect`, since a process may run several.
//! Every socket is `Send + Sync`; any number of threads may use any number
//! of sockets at once. Errors carry the `std::io::ErrorKind` a `std::net`
//! user expects (`ConnectionRefused`, `TimedOut`, `ConnectionReset`,
//! `AddrInUse`, `WouldBlock` when a read or write timeout passes, ...).

mod listener;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use stream::TcpStream;
