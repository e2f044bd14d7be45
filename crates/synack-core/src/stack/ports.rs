//! Ephemeral ports (RFC 6056).

use core::net::{IpAddr, SocketAddr};

use super::Stack;
use crate::{ConnTuple, Error};

impl Stack {
    /// Picks a free ephemeral port for (local_ip, remote), RFC 6056 style:
    /// a keyed starting point per destination, then the next free one.
    pub(super) fn ephemeral_port(
        &mut self,
        local_ip: IpAddr,
        remote: SocketAddr,
    ) -> Result<u16, Error> {
        let lo = u32::from(self.cfg.ephemeral_low);
        let hi = u32::from(self.cfg.ephemeral_high.max(self.cfg.ephemeral_low));
        let range = hi - lo + 1;
        let start = self.isn.ephemeral_port_offset(local_ip, remote);
        self.port_counter = self.port_counter.wrapping_add(1);
        for i in 0..range {
            let port = (lo + start.wrapping_add(self.port_counter).wrapping_add(i) % range) as u16;
            let tuple = ConnTuple {
                local: SocketAddr::new(local_ip, port),
                remote,
            };
            if self.find_conn(&tuple).is_none()
                && !self.time_wait.contains_key(&tuple)
                && !self.listen_map.contains_key(&tuple.local)
            {
                self.port_counter = self.port_counter.wrapping_add(i);
                return Ok(port);
            }
        }
        Err(Error::NoPorts)
    }
}
