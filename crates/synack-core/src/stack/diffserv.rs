//! The application's hold on the Differentiated Services field (RFC 9293
//! §3.9.1.9): the DSCP of a connection's segments and of the connections a
//! listener accepts. What arrives is not reported (MAY-9 not taken) and
//! has no bearing on what is sent (§3.9.1.1: the field "only impacts
//! outgoing packets"; RFC 2873: precedence is not matched).

use synack_wire::Dscp;

use super::Stack;
use crate::{ConnId, Error, ListenerId};

impl Stack {
    /// Sets the Diffserv codepoint of a connection's segments (MUST-48):
    /// every segment it sends from now on carries it in the IPv4 TOS byte
    /// or the IPv6 Traffic Class, retransmissions, ACKs, FIN, RST and the
    /// ACKs of its TIME-WAIT included. It may change at any time during
    /// the connection (SHLD-21), though applications should generally not
    /// change it (SHLD-23, RFC 7657 §5.1). A new connection starts with
    /// `Config::dscp`, or its listener's (`set_listener_dscp`). The ECN
    /// bits below the codepoint are not the application's and stay zero.
    pub fn set_dscp(&mut self, id: ConnId, dscp: Dscp) -> Result<(), Error> {
        self.tcb_mut(id)
            .map(|t| t.set_dscp(dscp))
            .ok_or(Error::InvalidHandle)
    }

    /// The Diffserv codepoint of a connection's segments.
    pub fn dscp(&self, id: ConnId) -> Result<Dscp, Error> {
        self.tcb(id).map(|t| t.dscp()).ok_or(Error::InvalidHandle)
    }

    /// Sets the Diffserv codepoint the connections of listener `lid` start
    /// with, from their SYN-ACK on (each can then be changed with
    /// [`Stack::set_dscp`]). Connections already made keep theirs. A
    /// listener starts with `Config::dscp`.
    pub fn set_listener_dscp(&mut self, lid: ListenerId, dscp: Dscp) -> Result<(), Error> {
        let l = self
            .listeners
            .get_mut(lid.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::InvalidHandle)?;
        l.dscp = dscp;
        Ok(())
    }

    /// The Diffserv codepoint a listener's new connections start with.
    pub fn listener_dscp(&self, lid: ListenerId) -> Result<Dscp, Error> {
        self.listener(lid).map(|l| l.dscp)
    }
}
