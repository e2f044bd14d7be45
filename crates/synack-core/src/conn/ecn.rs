//! Explicit Congestion Notification on a connection (RFC 3168 §6.1): the
//! ECN-setup handshake, ECT(0) on new data, the receiver's echo of CE
//! marks with ECE until the sender's CWR, and the sender's window reduction
//! on ECE, once per window of data.

use synack_wire::{Segment, TcpFlags, CE, ECN_MASK, ECT0};

use super::{Ctx, Tcb};
use crate::cc::CongestionControl;
use crate::seq::Seq;
use crate::Config;

/// A connection's ECN state, one byte of bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EcnFlags(u8);

impl EcnFlags {
    /// Both ends agreed to ECN in the handshake.
    const OK: u8 = 1;
    /// Active open: our SYN was an ECN-setup SYN.
    const ASKED: u8 = 2;
    /// Receiver: a CE mark arrived; echo ECE until a CWR (§6.1.3).
    const ECE: u8 = 4;
    /// Sender: the window was reduced; CWR goes on the next new data.
    const CWR: u8 = 8;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

/// An ECN-setup SYN carries ECE and CWR (RFC 3168 §6.1.1).
fn is_ecn_setup_syn(flags: TcpFlags) -> bool {
    flags.contains(TcpFlags::ECE | TcpFlags::CWR)
}

/// An ECN-setup SYN-ACK carries ECE and not CWR (RFC 3168 §6.1.1: one with
/// both set is not one, so that a reflector of flags is not taken for an
/// ECN-capable peer).
fn is_ecn_setup_syn_ack(flags: TcpFlags) -> bool {
    flags.contains(TcpFlags::ECE) && !flags.contains(TcpFlags::CWR)
}

impl Tcb {
    /// Whether the handshake agreed to ECN.
    pub(crate) fn ecn_ok(&self) -> bool {
        self.ecn.has(EcnFlags::OK)
    }

    /// The ECN flags of our SYN or SYN-ACK (RFC 3168 §6.1.1). An active
    /// open asks with ECE and CWR when configured to; a retransmitted SYN
    /// no longer asks (§6.1.1.1: a middlebox may drop ECN-setup SYNs; as
    /// Linux falls back), and the connection then runs without ECN. A
    /// SYN-ACK carries ECE when we agreed to the peer's request.
    pub(crate) fn ecn_syn_flags(&mut self, cfg: &Config, synack: bool, rtx: bool) -> TcpFlags {
        if synack {
            return if self.ecn_ok() {
                TcpFlags::ECE
            } else {
                TcpFlags::empty()
            };
        }
        let ask = cfg.ecn.asks() && !(rtx || self.syn_retransmitted);
        self.ecn.set(EcnFlags::ASKED, ask);
        if ask {
            TcpFlags::ECE | TcpFlags::CWR
        } else {
            TcpFlags::empty()
        }
    }

    /// Passive open: the peer's SYN asked for ECN with `flags`; we agree
    /// when configured to (RFC 3168 §6.1.1), and the SYN-ACK says so.
    pub(crate) fn ecn_on_syn(&mut self, cfg: &Config, flags: TcpFlags) {
        let ok = cfg.ecn.accepts() && is_ecn_setup_syn(flags);
        self.ecn = EcnFlags::default();
        self.ecn.set(EcnFlags::OK, ok);
    }

    /// Active open: the SYN-ACK's `flags` complete the negotiation. ECN is
    /// in use only when our SYN asked and the SYN-ACK is an ECN-setup one.
    pub(crate) fn ecn_on_syn_ack(&mut self, flags: TcpFlags) {
        let ok = self.ecn.has(EcnFlags::ASKED) && is_ecn_setup_syn_ack(flags);
        self.ecn = EcnFlags::default();
        self.ecn.set(EcnFlags::OK, ok);
    }

    /// A connection rebuilt from a SYN cookie: `ok` when the cookie kept
    /// that the SYN asked for ECN and the cookie SYN-ACK agreed.
    pub(crate) fn ecn_from_cookie(&mut self, ok: bool) {
        self.ecn = EcnFlags::default();
        self.ecn.set(EcnFlags::OK, ok);
    }

    /// RFC 3168 §6.1.3, the receiver, for an acceptable segment: a CWR
    /// ends the echo; a CE mark (on this segment too, if it carried the
    /// CWR) starts it, and is told at once rather than after the delayed
    /// ACK (as Linux's quick-ACK on CE).
    pub(crate) fn ecn_on_arrival(&mut self, seg: &Segment<'_>) {
        if !self.ecn_ok() {
            return;
        }
        if seg.tcp.flags.contains(TcpFlags::CWR) {
            self.ecn.set(EcnFlags::ECE, false);
        }
        if seg.tos & ECN_MASK == CE {
            if !self.ecn.has(EcnFlags::ECE) {
                self.ack_now = true;
            }
            self.ecn.set(EcnFlags::ECE, true);
        }
    }

    /// The ECE flag every ACK carries while a CE mark waits for its CWR
    /// (RFC 3168 §6.1.3: "in every subsequent ACK packet").
    pub(crate) fn ecn_ack_flags(&self) -> TcpFlags {
        if self.ecn.has(EcnFlags::ECE) {
            TcpFlags::ECE
        } else {
            TcpFlags::empty()
        }
    }

    /// RFC 3168 §6.1.2, the sender, on an ACK with `flags` (after loss
    /// detection ran on it): ECE halves the window as a loss would (the
    /// controller's [`CongestionControl::on_ecn_echo`]), but at most once
    /// per window of data: not during a recovery, and not before SND.UNA
    /// passes the data outstanding at the last reduction of any kind. The
    /// reduction is announced by CWR on the next new data.
    pub(crate) fn ecn_on_ack(&mut self, ctx: &mut Ctx<'_>, flags: TcpFlags) {
        if !self.ecn_ok() || !flags.contains(TcpFlags::ECE) || flags.syn() {
            return;
        }
        if self.recover.is_some() || self.ecn_window_reduced() {
            return;
        }
        let flight = self.snd_max.since(self.snd_una);
        // A mark is never spurious: no DSACK or Eifel undo may reverse it.
        self.forget_undo();
        self.cc.on_ecn_echo(flight, self.snd_mss);
        ctx.out.stats.ecn_reductions += 1;
        self.ecn_note_reduction();
    }

    /// Whether the window was reduced (for a loss, a timeout or an ECE)
    /// within the window of data now outstanding.
    pub(crate) fn ecn_window_reduced(&self) -> bool {
        self.ecn_floor.is_some_and(|f| !self.snd_una.gt(f))
    }

    /// The window was just reduced (ECE, fast recovery, loss probe or
    /// timeout): the next new data segment carries CWR (RFC 3168 §6.1.2:
    /// "for any reason"), and ECE is ignored until the data outstanding
    /// now is acknowledged.
    pub(crate) fn ecn_note_reduction(&mut self) {
        if !self.ecn_ok() {
            return;
        }
        self.ecn.set(EcnFlags::CWR, true);
        self.ecn_floor = Some(self.snd_max);
    }

    /// The ECN field and extra flags of a data segment of `len` bytes at
    /// `seq`: new data of an ECN connection is ECT(0) (RFC 3168 §6.1.2),
    /// and the first after a reduction carries CWR. Retransmissions (§6.1.5)
    /// and window probes (§6.1.6) are Not-ECT and carry no CWR; so are
    /// SYNs and pure ACKs, which never come here (§6.1.1, §6.1.4).
    pub(crate) fn ecn_for_data(&mut self, seq: Seq, len: u32) -> (Option<u8>, TcpFlags) {
        let new_data = len > 0 && !seq.lt(self.snd_max) && self.snd_wnd > 0;
        if !self.ecn_ok() || !new_data {
            return (None, TcpFlags::empty());
        }
        let mut flags = TcpFlags::empty();
        if self.ecn.has(EcnFlags::CWR) {
            self.ecn.set(EcnFlags::CWR, false);
            flags |= TcpFlags::CWR;
        }
        (Some(ECT0), flags)
    }
}
