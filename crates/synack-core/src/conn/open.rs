//! OPEN (RFC 9293 §3.10.1) on both sides of the three-way handshake
//! (§3.5): the TCB of an active OPEN and its SYN, and the TCB a listener
//! makes for an arriving SYN, which it answers from SYN-RECEIVED
//! (§3.10.7.2), or that an ACK bringing back a SYN cookie rebuilds
//! (RFC 4987 §3.6).

use synack_wire::{Segment, TcpOptions};

use super::{Ctx, Disposition, Tcb};
use crate::seq::Seq;
use crate::{Config, ConnTuple, ListenerId, State};

impl Tcb {
    /// The TCB of an active OPEN, still CLOSED: [`Tcb::open_active`] sends
    /// its SYN. `ts_offset` is the connection's RFC 7323 clock offset
    /// (§5.4: a per-connection offset from a keyed hash).
    pub(crate) fn active(cfg: &Config, tuple: ConnTuple, iss: Seq, ts_offset: u32) -> Tcb {
        Tcb::opening(cfg, tuple, iss, ts_offset, State::Closed)
    }

    /// The TCB listener `lid` makes for a SYN from `tuple`'s remote: in
    /// LISTEN until [`Tcb::on_listen_syn`] takes the SYN (MUST-11: it
    /// remembers that it came from a passive OPEN).
    pub(crate) fn passive(
        cfg: &Config,
        tuple: ConnTuple,
        iss: Seq,
        ts_offset: u32,
        lid: ListenerId,
    ) -> Tcb {
        let mut tcb = Tcb::opening(cfg, tuple, iss, ts_offset, State::Listen);
        tcb.passive = true;
        tcb.listener = Some(lid);
        tcb
    }

    /// A fresh TCB with the per-connection settings of its SYN: the
    /// timestamp offset and the window scale it will offer (RFC 7323 §2.3).
    fn opening(cfg: &Config, tuple: ConnTuple, iss: Seq, ts_offset: u32, state: State) -> Tcb {
        let mut tcb = Tcb::new(cfg, tuple, iss, state);
        tcb.ts_offset = ts_offset;
        tcb.rcv_wscale = if cfg.window_scaling {
            offered_wscale(cfg)
        } else {
            0
        };
        tcb
    }

    /// RFC 9293 §3.10.1, OPEN call in CLOSED, active: send
    /// `<SEQ=ISS><CTL=SYN>`, enter SYN-SENT, and time the SYN for the
    /// first RTT sample.
    pub(crate) fn open_active(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        self.set_state(ctx, State::SynSent);
        self.send_syn(ctx, false);
        self.timing.set(self.iss.add(1), ctx.now);
        Disposition::Stay
    }

    /// RFC 9293 §3.10.7.2, SEGMENT ARRIVES in LISTEN, third (a SYN; the
    /// listener has already dropped RSTs and answered ACKs): RCV.NXT =
    /// SEG.SEQ+1, IRS = SEG.SEQ, take the SYN's options and window, send
    /// `<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>` and enter SYN-RECEIVED.
    pub(crate) fn on_listen_syn(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Disposition {
        let t = &seg.tcp;
        ctx.out.recv(ctx.now, self.tuple, t, seg.payload.len());
        self.set_state(ctx, State::SynReceived);
        self.irs = Seq(t.seq);
        self.rcv_nxt = self.irs.add(1);
        self.rcv_adv = self.rcv_nxt;
        self.last_ack_sent = self.rcv_nxt;
        self.negotiate(ctx, &t.options);
        self.ecn_on_syn(ctx.cfg, t.flags);
        self.snd_wnd = u32::from(t.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = Seq(t.seq);
        self.send_syn(ctx, false);
        self.timing.set(self.iss.add(1), ctx.now);
        Disposition::Stay
    }

    /// RFC 4987 §3.6: an ACK to a listener brought back a valid SYN cookie
    /// (this TCB's ISS, from a SYN-ACK sent without a TCB). The TCB is put
    /// in the SYN-RECEIVED state that SYN-ACK would have left: IRS =
    /// SEG.SEQ-1, SND.NXT = ISS+1, the window we advertised, and the SYN's
    /// options as the cookie kept them (`syn`: the MSS, and what the
    /// timestamp carried; `ecn`: the SYN asked for ECN and the cookie
    /// SYN-ACK agreed). The stack then hands the ACK to
    /// [`Tcb::on_segment`], as in SYN-RECEIVED (§3.10.7.4): it completes
    /// the handshake, and data or a FIN on it is taken as on any ACK that
    /// does (Linux does the same; RFC 4987 leaves it open, and the data is
    /// in sequence and acknowledged like any).
    pub(crate) fn resume_from_cookie(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &Segment<'_>,
        syn: &TcpOptions,
        ecn: bool,
    ) -> Disposition {
        self.set_state(ctx, State::SynReceived);
        self.ecn_from_cookie(ecn);
        self.rcv_nxt = Seq(seg.tcp.seq);
        self.irs = self.rcv_nxt.sub(1);
        self.rcv_adv = self.rcv_nxt.add(u32::from(synack_window(ctx.cfg)));
        self.last_ack_sent = self.rcv_nxt;
        self.negotiate(ctx, syn);
        self.snd_nxt = self.iss.add(1);
        self.snd_max = self.snd_nxt;
        self.snd_wl1 = self.irs;
        Disposition::Stay
    }
}

/// The window of a SYN-ACK (never scaled, RFC 7323 §2.2): the receive
/// buffer, at most 65,535. A fresh TCB advertises it; a cookie SYN-ACK,
/// which has no TCB, says the same.
pub(crate) fn synack_window(cfg: &Config) -> u16 {
    cfg.recv_buffer.min(0xFFFF) as u16
}

/// The window shift we offer in a SYN or SYN-ACK, when we scale at all.
pub(crate) fn offered_wscale(cfg: &Config) -> u8 {
    wscale_for(cfg.recv_buffer)
}

/// Smallest window scale that lets `buffer` bytes be advertised (RFC 7323 §2.3).
fn wscale_for(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (buffer >> shift) > 0xFFFF {
        shift += 1;
    }
    shift
}
