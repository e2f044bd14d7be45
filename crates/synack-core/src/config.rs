//! Tunables of a [`crate::Stack`], with defaults that follow RFC 9293 and,
//! where the RFC leaves a choice, Linux.

use core::time::Duration;

use synack_wire::Dscp;

use crate::cc::CongestionControlChoice;
use crate::Ecn;

/// Stack-wide configuration. Every field has a default ([`Config::default`]).
#[derive(Clone, Debug)]
pub struct Config {
    /// Link MTU: our advertised MSS is derived from it (MUST-67, SHLD-5).
    pub mtu: usize,
    /// Send buffer size per connection, bytes.
    pub send_buffer: usize,
    /// Receive buffer size per connection, bytes. It also decides the
    /// window scale we offer (RFC 7323).
    pub recv_buffer: usize,
    /// Maximum Segment Lifetime; TIME-WAIT lasts 2×MSL (RFC 9293 §3.4.2).
    pub msl: Duration,
    /// SYN retransmissions before an active open fails (MUST-23: the span
    /// must reach 3 minutes; 7 retries with backoff from 1 s, capped by
    /// `max_rto` = 120 s, give up 1+2+4+…+64+120 = 247 s after the first SYN).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before a half-open connection is dropped.
    pub synack_retries: u32,
    /// Data retransmissions before the connection is aborted (R2, MUST-20).
    pub max_retries: u32,
    /// Retransmissions after which the application is told of delivery
    /// trouble (R1, SHLD-9, SHLD-10: at least 3).
    pub r1_retries: u32,
    /// How long FIN-WAIT-2 waits for the peer's FIN once the application has
    /// closed (Linux tcp_fin_timeout).
    pub fin_timeout: Duration,
    /// RTO before any RTT sample (RFC 6298 §2.1).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (RFC 6298 §2.4: 1 s).
    pub min_rto: Duration,
    /// Upper bound of the RTO (RFC 6298 §2.5: at least 60 s).
    pub max_rto: Duration,
    /// Delayed-ACK timeout (MUST-40: under 0.5 s).
    pub delayed_ack: Duration,
    /// Offer and accept window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer and accept timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer and accept selective acknowledgments (RFC 2018).
    pub sack: bool,
    /// Challenge ACKs allowed per connection per second (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// Default listen backlog: the bound of a listener's accept queue
    /// (ESTABLISHED children waiting for `accept`), as on Linux.
    pub default_backlog: usize,
    /// Maximum number of connections (all states but TIME-WAIT).
    pub max_connections: usize,
    /// Maximum number of TIME-WAIT entries. A connection entering TIME-WAIT
    /// with the table full recycles the oldest entry (the first to expire):
    /// that TIME-WAIT ends early, traced TIME-WAIT → CLOSED, and an
    /// application still holding that connection is told (`Event::Closed`).
    /// 0 keeps no TIME-WAIT at all.
    pub max_time_wait: usize,
    /// First ephemeral port.
    pub ephemeral_low: u16,
    /// Last ephemeral port.
    pub ephemeral_high: u16,
    /// TTL / hop limit of packets we send (MUST-49).
    pub ttl: u8,
    /// The Diffserv codepoint of new connections and listeners (MUST-48),
    /// and of the RSTs that answer segments no connection owns. Each
    /// connection's or listener's own can be changed
    /// ([`crate::Stack::set_dscp`], [`crate::Stack::set_listener_dscp`]).
    /// The ECN bits below it stay TCP's (see `ecn`).
    pub dscp: Dscp,
    /// Record trace events for `poll_trace`.
    pub trace: bool,
    /// Idle time before the first keep-alive probe, for connections that
    /// turn keep-alives on (MUST-27; MUST-28: at least two hours).
    pub keepalive_idle: Duration,
    /// Time between unanswered keep-alive probes.
    pub keepalive_interval: Duration,
    /// Unanswered probes after which the connection is dead (MUST-29).
    pub keepalive_probes: u32,
    /// Report ICMP soft errors to the application (SHLD-20).
    pub report_soft_errors: bool,
    /// Segmentation offload (TSO/GSO): the device cuts TCP packets longer
    /// than one segment into segments itself. `Some(n)`: a packet from
    /// [`crate::Stack::poll_transmit_meta`] may be up to `n` bytes long
    /// (IP and TCP headers included; at most 65,535 are used) and carry as
    /// many whole segments of the send MSS as the windows allow; the
    /// [`crate::Transmit`] says the segment size. The MSS, the windows and
    /// every rule about what may be sent stay as they are; only the number
    /// of packets changes. `None` (the default): one segment per packet.
    pub gso_max_size: Option<usize>,
    /// Checksum offload: leave the TCP checksum of packets from
    /// [`crate::Stack::poll_transmit_meta`] partial (the pseudo-header sum
    /// only), for the device to complete; saves a pass over the payload.
    /// Packets with several segments always leave it partial. Off by default.
    pub checksum_offload: bool,
    /// Pace data segments: spread each window over the round trip at twice
    /// the window per smoothed RTT in slow start and 1.2 times it after,
    /// rather than sending whatever an ACK opens back to back, and size
    /// super-segments to about a millisecond of that rate. Off by default,
    /// as Linux's CUBIC does not pace unless its qdisc does: on the emulated
    /// 100 Mbit/s, 50 ms path of `synack bench path` it changed neither
    /// goodput nor the tail-loss time for the better (docs/BENCHMARKS.md).
    pub pacing: bool,
    /// Bound of each listener's SYN queue: children in SYN-RECEIVED (a
    /// TCB each, reaped after `synack_retries`). Past it a SYN gets a SYN
    /// cookie, or is dropped without them.
    pub max_syn_backlog: usize,
    /// Answer SYNs with SYN cookies (RFC 4987 §3.6) when the SYN queue is
    /// full, the connection limit or the memory budget is reached.
    pub syn_cookies: bool,
    /// Memory the connections may commit, bytes: each connection is
    /// charged its TCB slot, and once past SYN-RECEIVED also the send and
    /// receive buffers it may grow to (`send_buffer + recv_buffer`). A
    /// passive open that would pass it is refused (its SYN gets a cookie,
    /// whose ACK is then refused too while the budget is spent);
    /// established connections are never disturbed. Unbounded by default:
    /// a host sets it from the memory it can give.
    pub memory_budget: usize,
    /// How long a connection request of a [`crate::Handshake::Defer`]
    /// listener waits for the application's decision. Past it the request
    /// is dropped without an answer (counted in `Stats::requests_expired`):
    /// the client sees what an unanswered SYN looks like.
    pub request_timeout: Duration,
    /// The congestion controller of every connection unless
    /// [`crate::Stack::set_congestion_control`] picks another: CUBIC
    /// (RFC 9438, with HyStart++) by default, as Linux; Reno (RFC 5681)
    /// selectable; or the application's own.
    pub congestion_control: CongestionControlChoice,
    /// Explicit Congestion Notification (RFC 3168): agree when a peer's
    /// SYN asks (the default, as Linux's `tcp_ecn` = 2), ask on active
    /// opens too ([`Ecn::On`]), or never ([`Ecn::Off`]).
    pub ecn: Ecn,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mtu: 1500,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            msl: Duration::from_secs(30),
            syn_retries: 7,
            synack_retries: 5,
            max_retries: 15,
            r1_retries: 3,
            fin_timeout: Duration::from_secs(60),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(120),
            delayed_ack: Duration::from_millis(200),
            window_scaling: true,
            timestamps: true,
            sack: true,
            challenge_ack_limit: 10,
            default_backlog: 128,
            max_connections: 1 << 22,
            max_time_wait: 1 << 22,
            ephemeral_low: 49152,
            ephemeral_high: 65535,
            ttl: 64,
            dscp: Dscp::DEFAULT,
            trace: false,
            keepalive_idle: Duration::from_secs(7200),
            keepalive_interval: Duration::from_secs(75),
            keepalive_probes: 9,
            report_soft_errors: true,
            gso_max_size: None,
            checksum_offload: false,
            pacing: false,
            max_syn_backlog: 1024,
            syn_cookies: true,
            memory_budget: usize::MAX,
            request_timeout: Duration::from_secs(30),
            congestion_control: CongestionControlChoice::Cubic,
            ecn: Ecn::AcceptWhenAsked,
        }
    }
}
