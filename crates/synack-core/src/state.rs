//! The eleven connection states of RFC 9293 §3.3.2.

/// A connection state, named as RFC 9293 spells it (see [`State::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a connection request.
    Listen,
    /// SYN sent, waiting for a matching SYN.
    SynSent,
    /// SYN received and sent, waiting for the ACK of our SYN.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is ACKed; waiting for the peer's FIN.
    FinWait2,
    /// The peer sent FIN; waiting for our application to close.
    CloseWait,
    /// Both sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// Peer closed first, we sent FIN; waiting for its ACK.
    LastAck,
    /// Waiting 2×MSL so that the final ACK can be resent.
    TimeWait,
}

impl State {
    /// The RFC's spelling, as the contract fixes it (`"SYN-SENT"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// True once the connection is synchronized (RFC 9293 §3.5: ESTABLISHED and later).
    pub const fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// True once the peer's SYN has been received, so that RCV.NXT is
    /// known and an ACK `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` can be formed
    /// (RFC 9293 §3.10.7.3: SYN-RECEIVED and the synchronized states).
    pub const fn can_acknowledge(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent)
    }

    /// True where SEND is taken (RFC 9293 §3.10.2): queued for later in
    /// SYN-SENT and SYN-RECEIVED, segmentized at once in ESTABLISHED and
    /// CLOSE-WAIT. The closing states answer "connection closing".
    pub const fn accepts_send(self) -> bool {
        matches!(
            self,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        )
    }

    /// True where data and our FIN may be transmitted: synchronized, with
    /// our FIN not yet acknowledged (ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1,
    /// CLOSING, LAST-ACK). RFC 9293 §3.10.4: after CLOSE, what the
    /// preceding SENDs queued is still segmentized and retransmitted, and
    /// the FIN follows it.
    pub const fn can_send_data(self) -> bool {
        // One set test on the output path (the tests pin it to
        // synchronized and not fin_acked).
        matches!(
            self,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    /// True once our FIN has been acknowledged in a synchronized state:
    /// FIN-WAIT-2 (only the peer's FIN is awaited) and TIME-WAIT (only the
    /// 2 MSL timeout, RFC 9293 §3.10.8). In both a timer ends the
    /// connection if nothing else does.
    pub const fn fin_acked(self) -> bool {
        matches!(self, State::FinWait2 | State::TimeWait)
    }

    /// True where segment text is delivered and the urgent pointer is
    /// taken: ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 (RFC 9293 §3.10.7.4,
    /// sixth and seventh steps). In CLOSE-WAIT, CLOSING, LAST-ACK and
    /// TIME-WAIT the peer's FIN came first: "Ignore the segment text".
    pub const fn accepts_segment_text(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }

    /// True while the connection is open or half-closed (RFC 9293 §3.6):
    /// synchronized with data still able to flow at least one way
    /// (ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT). RFC 9293 groups
    /// these states where a reset tells the application "connection
    /// reset" (§3.10.7.4 second step) and where ABORT sends one (§3.10.5).
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait
        )
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::State;
    use State::*;

    const ALL: [State; 11] = [
        Closed,
        Listen,
        SynSent,
        SynReceived,
        Established,
        FinWait1,
        FinWait2,
        CloseWait,
        Closing,
        LastAck,
        TimeWait,
    ];

    /// The states of `ALL` for which `f` holds, in order.
    fn which(f: fn(State) -> bool) -> alloc::vec::Vec<State> {
        ALL.into_iter().filter(|&s| f(s)).collect()
    }

    #[test]
    fn synchronized_is_established_and_later() {
        assert_eq!(
            which(State::is_synchronized),
            [
                Established,
                FinWait1,
                FinWait2,
                CloseWait,
                Closing,
                LastAck,
                TimeWait
            ]
        );
    }

    #[test]
    fn acknowledging_needs_the_peers_syn() {
        assert_eq!(
            which(State::can_acknowledge),
            [
                SynReceived,
                Established,
                FinWait1,
                FinWait2,
                CloseWait,
                Closing,
                LastAck,
                TimeWait
            ]
        );
    }

    #[test]
    fn send_is_taken_until_close() {
        // §3.10.2: queued, segmentized, and else "connection closing".
        assert_eq!(
            which(State::accepts_send),
            [SynSent, SynReceived, Established, CloseWait]
        );
    }

    #[test]
    fn data_goes_out_until_our_fin_is_acked() {
        assert_eq!(
            which(State::can_send_data),
            [Established, FinWait1, CloseWait, Closing, LastAck]
        );
        assert_eq!(which(State::fin_acked), [FinWait2, TimeWait]);
        assert_eq!(
            which(State::can_send_data),
            which(|s| s.is_synchronized() && !s.fin_acked())
        );
    }

    #[test]
    fn text_is_taken_before_the_peers_fin() {
        // §3.10.7.4 sixth and seventh steps.
        assert_eq!(
            which(State::accepts_segment_text),
            [Established, FinWait1, FinWait2]
        );
    }

    #[test]
    fn open_means_data_can_still_flow() {
        // §3.10.5 ABORT and §3.10.7.4 second step group these four.
        assert_eq!(
            which(State::is_open),
            [Established, FinWait1, FinWait2, CloseWait]
        );
    }
}
