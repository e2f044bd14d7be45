//! ICMP errors about a connection (RFC 9293 §3.9.2.2, RFC 1122 §4.2.3.9,
//! RFC 5927 for the sequence check).

use synack_wire::{IcmpError, IcmpKind};

use super::{our_mss, Ctx, Disposition, Tcb};
use crate::seq::Seq;
use crate::{Error, Event, State};

/// What an ICMP error means for TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpEffect {
    /// Ignore it (Source Quench, MUST-55).
    Ignore,
    /// A soft error: report it, keep the connection (MUST-56).
    Soft(Error),
    /// A hard error: abort (SHLD-26).
    Hard(Error),
    /// The path MTU is smaller: shrink the segments.
    Mtu(u32),
}

/// Classifies an ICMP error (RFC 1122 §4.2.3.9: v4 unreachable codes 2–4
/// are hard, 0, 1 and 5 soft; time exceeded and parameter problem soft).
pub(crate) fn effect(e: &IcmpError) -> IcmpEffect {
    let v6 = e.from.is_ipv6();
    match e.kind {
        IcmpKind::SourceQuench => IcmpEffect::Ignore,
        IcmpKind::PacketTooBig(mtu) => IcmpEffect::Mtu(mtu),
        IcmpKind::TimeExceeded(_) | IcmpKind::ParameterProblem(_) => {
            IcmpEffect::Soft(Error::HostUnreachable)
        }
        IcmpKind::DestinationUnreachable(code) => match (v6, code) {
            // ICMPv4 protocol or port unreachable; ICMPv6 port unreachable.
            (false, 2 | 3) | (true, 4) => IcmpEffect::Hard(Error::Refused),
            (false, 0) | (true, 0) => IcmpEffect::Soft(Error::NetworkUnreachable),
            _ => IcmpEffect::Soft(Error::HostUnreachable),
        },
    }
}

impl Tcb {
    /// An ICMP error quoting one of this connection's segments.
    pub(crate) fn on_icmp(&mut self, ctx: &mut Ctx<'_>, e: &IcmpError) -> Disposition {
        // MUST-54 with RFC 5927 §4.1: act only when the quoted sequence
        // number is one we sent and is not yet acknowledged.
        let seq = Seq(e.seq);
        if !(seq.ge(self.snd_una) && seq.lt(self.snd_max.max(self.snd_una.add(1)))) {
            ctx.out
                .drop(ctx.now, Some(self.tuple), "ICMP outside the window");
            return Disposition::Stay;
        }
        match effect(e) {
            IcmpEffect::Ignore => {
                ctx.out
                    .drop(ctx.now, Some(self.tuple), "ICMP source quench");
                Disposition::Stay
            }
            IcmpEffect::Hard(err) => {
                // SHLD-26: hard errors abort; before ESTABLISHED a port
                // unreachable is a refusal.
                self.close_with(ctx, Some(err))
            }
            IcmpEffect::Soft(err) => {
                self.soft_error = Some(err);
                if ctx.cfg.report_soft_errors && !self.released {
                    ctx.events.push_back(Event::SoftError {
                        id: ctx.id,
                        error: err,
                    });
                }
                Disposition::Stay
            }
            IcmpEffect::Mtu(mtu) => {
                let v6 = self.tuple.local.is_ipv6();
                let ip = if v6 { 40 } else { 20 };
                // Never below the minimum MTU of the family (RFC 791, RFC 8200).
                let floor = if v6 { 1280 } else { 576 };
                let mtu = (mtu as usize).max(floor);
                let opts = if self.ts.is_some() { 12 } else { 0 };
                let mss = (mtu - ip - 20 - opts) as u32;
                let cap = our_mss(ctx.cfg, v6);
                if mss < self.snd_mss && mss <= cap && self.state.is_synchronized() {
                    self.snd_mss = mss;
                    // Resend what is in flight in the smaller size.
                    self.snd_nxt = self.snd_una;
                    self.output(ctx);
                }
                if self.state == State::SynSent {
                    self.snd_mss = self.snd_mss.min(mss);
                }
                Disposition::Stay
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    fn err(v6: bool, kind: IcmpKind) -> IcmpError {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        IcmpError {
            from: ip,
            to: ip,
            kind,
            quoted_src: SocketAddr::new(ip, 1),
            quoted_dst: SocketAddr::new(ip, 2),
            seq: 0,
        }
    }

    #[test]
    fn must_55_source_quench_is_ignored() {
        assert_eq!(
            effect(&err(false, IcmpKind::SourceQuench)),
            IcmpEffect::Ignore
        );
    }

    #[test]
    fn must_56_soft_errors_do_not_abort() {
        for code in [0, 1, 5] {
            assert!(matches!(
                effect(&err(false, IcmpKind::DestinationUnreachable(code))),
                IcmpEffect::Soft(_)
            ));
        }
        assert!(matches!(
            effect(&err(false, IcmpKind::TimeExceeded(0))),
            IcmpEffect::Soft(_)
        ));
        assert!(matches!(
            effect(&err(true, IcmpKind::ParameterProblem(0))),
            IcmpEffect::Soft(_)
        ));
        assert!(matches!(
            effect(&err(true, IcmpKind::DestinationUnreachable(3))),
            IcmpEffect::Soft(_)
        ));
    }

    #[test]
    fn shld_26_hard_errors_abort() {
        for code in [2, 3] {
            assert_eq!(
                effect(&err(false, IcmpKind::DestinationUnreachable(code))),
                IcmpEffect::Hard(Error::Refused)
            );
        }
        assert_eq!(
            effect(&err(true, IcmpKind::DestinationUnreachable(4))),
            IcmpEffect::Hard(Error::Refused)
        );
    }
}
