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

use std::io;
use std::sync::MutexGuard;
use std::time::Instant as StdInstant;

use synack_core::ConnId;

use crate::driver::{Inner, Shared};

/// Waits (with the lock) until the connection's condition variable is
/// signalled or `deadline` passes. `Err(kind)` when the deadline has passed
/// or the driver stopped.
pub(crate) fn wait_conn<'a>(
    shared: &Shared,
    g: MutexGuard<'a, Inner>,
    id: ConnId,
    deadline: Option<StdInstant>,
    on_timeout: io::ErrorKind,
) -> io::Result<MutexGuard<'a, Inner>> {
    let cond = match g.conns.get(&id) {
        Some(c) => c.cond.clone(),
        None => return Err(io::ErrorKind::NotConnected.into()),
    };
    wait_on(shared, g, &cond, deadline, on_timeout)
}

/// Waits on `cond` with the lock, up to `deadline`.
pub(crate) fn wait_on<'a>(
    shared: &Shared,
    g: MutexGuard<'a, Inner>,
    cond: &std::sync::Condvar,
    deadline: Option<StdInstant>,
    on_timeout: io::ErrorKind,
) -> io::Result<MutexGuard<'a, Inner>> {
    if shared.stopped() {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "the stack's driver has stopped",
        ));
    }
    match deadline {
        None => Ok(cond.wait(g).unwrap_or_else(|p| p.into_inner())),
        Some(d) => {
            let left = d.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return Err(io::Error::new(on_timeout, "timed out"));
            }
            let (g, _) = cond
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner());
            Ok(g)
        }
    }
}
