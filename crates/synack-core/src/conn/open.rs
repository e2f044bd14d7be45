//! OPEN (RFC 9293 §3.10.1) on both sides of the three-way handshake
//! (§3.5): the TCB of an active OPEN and its SYN, and the TCB a listener
//! makes for an arriving SYN, which it answers from SYN-RECEIVED
//! (§3.10.7.2).

use synack_wire::Segment;

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
            wscale_for(cfg.recv_buffer)
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
        self.snd_wnd = u32::from(t.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = Seq(t.seq);
        self.send_syn(ctx, false);
        self.timing.set(self.iss.add(1), ctx.now);
        Disposition::Stay
    }
}

/// Smallest window scale that lets `buffer` bytes be advertised (RFC 7323 §2.3).
fn wscale_for(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (buffer >> shift) > 0xFFFF {
        shift += 1;
    }
    shift
}
