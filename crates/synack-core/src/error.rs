//! Errors returned to the application.

/// Why a user call failed or a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Nothing to read or no room to write now; try again after an event.
    WouldBlock,
    /// The peer answered the SYN with RST (RFC 9293 §3.10.7.3), or a
    /// simultaneous-open connection was reset (MUST-11).
    Refused,
    /// The peer reset an established connection (MUST-12).
    Reset,
    /// Retransmissions ran out (RFC 9293 §3.8.3, R2), or the user timeout passed.
    TimedOut,
    /// The connection is closing: no more sends (RFC 9293 §3.10.2).
    Closing,
    /// The handle names no connection or listener (closed and released).
    InvalidHandle,
    /// The call does not fit the connection's state (e.g. recv on a listener).
    InvalidState,
    /// The local address and port are taken.
    AddrInUse,
    /// The local address is not one of the stack's addresses.
    AddrNotAvailable,
    /// The remote address cannot be connected to (broadcast, multicast,
    /// unspecified, port 0: MUST-46).
    InvalidAddress,
    /// No free ephemeral port for that destination.
    NoPorts,
    /// The connection was aborted locally.
    Aborted,
    /// An ICMP error said the peer's network cannot be reached (RFC 9293
    /// §3.9.2.2; reported after a timeout when it came as a soft error).
    NetworkUnreachable,
    /// An ICMP error said the peer's host cannot be reached.
    HostUnreachable,
}

impl Error {
    /// A short lower-case description, as the command line prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::WouldBlock => "operation would block",
            Error::Refused => "connection refused",
            Error::Reset => "connection reset",
            Error::TimedOut => "connection timed out",
            Error::Closing => "connection closing",
            Error::InvalidHandle => "no such connection",
            Error::InvalidState => "invalid state for this call",
            Error::AddrInUse => "address in use",
            Error::AddrNotAvailable => "address not available",
            Error::InvalidAddress => "invalid remote address",
            Error::NoPorts => "no free ephemeral port",
            Error::Aborted => "connection aborted",
            Error::NetworkUnreachable => "network unreachable",
            Error::HostUnreachable => "host unreachable",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
