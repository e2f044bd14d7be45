//! TIME-WAIT in compact form (RFC 9293 §3.10.7.4, "TIME-WAIT STATE"): what
//! is left of a connection while it waits 2×MSL, just enough to re-ACK a
//! retransmitted FIN, as Linux keeps its timewait minisockets.

use synack_wire::{Segment, TcpFlags, TcpOptions, TcpRepr};

use crate::seq::Seq;
use crate::{ConnId, Instant};

/// A connection in TIME-WAIT.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeWaitEntry {
    /// Our SND.NXT (one past our FIN).
    pub snd_nxt: Seq,
    /// Our RCV.NXT (one past the peer's FIN).
    pub rcv_nxt: Seq,
    /// When the 2×MSL wait ends.
    pub expires: Instant,
    /// RFC 7323: (our clock offset, TS.Recent) when timestamps were in use.
    pub ts: Option<(u32, u32)>,
    /// The window field to put in our ACKs.
    pub window: u16,
    /// The application's handle, while it still holds one.
    pub owner: Option<ConnId>,
}

/// What TIME-WAIT does with an arriving segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TwAction {
    /// Re-ACK (a retransmitted FIN also restarts the 2×MSL timer).
    Ack { restart: bool },
    /// A new SYN that may reopen the connection (MAY-2, SHLD-4).
    Reopen,
    /// Discard with this reason.
    Drop(&'static str),
}

impl TimeWaitEntry {
    /// Decides what to do with `seg` (RFC 9293 §3.10.7.4 in TIME-WAIT, RFC 1337).
    pub fn classify(&self, seg: &Segment<'_>) -> TwAction {
        let t = &seg.tcp;
        let seq = Seq(t.seq);
        if t.flags.rst() {
            // RFC 1337 (TIME-WAIT assassination): ignore RSTs.
            return TwAction::Drop("RST in TIME-WAIT (RFC 1337)");
        }
        if t.flags.syn() && !t.flags.ack() {
            // MAY-2: a new incarnation must start above the old sequence
            // space; with timestamps, a newer TSval also proves it (SHLD-4).
            let newer_ts = match (self.ts, t.options.timestamps) {
                (Some((_, recent)), Some((tsval, _))) => (tsval.wrapping_sub(recent) as i32) > 0,
                _ => false,
            };
            if seq.gt(self.rcv_nxt) || newer_ts {
                return TwAction::Reopen;
            }
            return TwAction::Ack { restart: false };
        }
        let seg_end = seq.add(seg.payload.len() as u32 + u32::from(t.flags.fin()));
        if t.flags.fin() && seg_end == self.rcv_nxt {
            // The peer's FIN again: our last ACK was lost. ACK it and
            // restart the 2×MSL timeout.
            return TwAction::Ack { restart: true };
        }
        if seg.payload.is_empty() && !t.flags.fin() {
            return TwAction::Drop("in TIME-WAIT");
        }
        TwAction::Ack { restart: false }
    }

    /// The ACK we send from TIME-WAIT: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    pub fn ack_repr(&self, now: Instant, local_port: u16, remote_port: u16) -> TcpRepr {
        let mut options = TcpOptions::default();
        if let Some((offset, recent)) = self.ts {
            let ms = (now.micros() / 1000) as u32;
            options.timestamps = Some((ms.wrapping_add(offset), recent));
        }
        TcpRepr {
            src_port: local_port,
            dst_port: remote_port,
            seq: self.snd_nxt.0,
            ack: self.rcv_nxt.0,
            flags: TcpFlags::ACK,
            window: self.window,
            urgent: 0,
            options,
        }
    }
}
