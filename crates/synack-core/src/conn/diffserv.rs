//! The connection's Differentiated Services field (RFC 9293 §3.9.1.9): the
//! DSCP the application chose, kept where every segment takes it from, the
//! prebuilt header ([`Tcb::hdr`]). Every segment of the connection is
//! built from that header (data, retransmissions, ACKs, SYN, FIN, RST),
//! so the DSCP reaches IP unchanged (SHLD-22) and costs nothing per packet;
//! TIME-WAIT keeps the byte in its entry.

use synack_wire::{Dscp, ECN_MASK};

use super::Tcb;

impl Tcb {
    /// The TOS (IPv4) or Traffic Class (IPv6) byte of this connection's
    /// segments. 0 for a tuple of mixed families, which has no template
    /// and can send nothing.
    pub(crate) fn tos(&self) -> u8 {
        self.hdr.as_ref().map_or(0, |h| h.tos())
    }

    /// The codepoint of this connection's segments.
    pub(crate) fn dscp(&self) -> Dscp {
        Dscp::from_tos(self.tos())
    }

    /// MUST-48, SHLD-21: the next segments carry `dscp`. The header
    /// template is rebuilt once, here; the ECN bits are left as TCP set
    /// them (RFC 3168 §6.1: they are the transport's, not the application's).
    pub(crate) fn set_dscp(&mut self, dscp: Dscp) {
        if let Some(h) = self.hdr.as_mut() {
            let tos = dscp.tos(h.tos() & ECN_MASK);
            if tos != h.tos() {
                h.set_tos(tos);
            }
        }
    }
}
