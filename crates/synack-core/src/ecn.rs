//! Whether a stack uses Explicit Congestion Notification (RFC 3168), as
//! Linux's `net.ipv4.tcp_ecn` chooses it.

/// When a connection negotiates ECN (RFC 3168 §6.1.1): the ECN-setup SYN
/// (ECE and CWR set) asks, the ECN-setup SYN-ACK (ECE alone) agrees. Only a
/// connection whose handshake agreed marks its data ECT, echoes CE and
/// answers ECN-Echo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ecn {
    /// Never: SYNs do not ask, ECN-setup SYNs are answered without ECE
    /// (Linux's `tcp_ecn` = 0).
    Off,
    /// Agree when a peer's SYN asks, never ask (Linux's default,
    /// `tcp_ecn` = 2).
    #[default]
    AcceptWhenAsked,
    /// Ask on every active open, and agree when asked (`tcp_ecn` = 1).
    On,
}

impl Ecn {
    /// Whether an active open sends an ECN-setup SYN.
    pub fn asks(self) -> bool {
        self == Ecn::On
    }

    /// Whether an ECN-setup SYN gets an ECN-setup SYN-ACK.
    pub fn accepts(self) -> bool {
        self != Ecn::Off
    }
}
