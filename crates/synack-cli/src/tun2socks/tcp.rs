//! The TCP path: every connection request that arrives on the device is
//! tried upstream before the handshake is answered (the transparent
//! listener in `Handshake::Defer` mode), so the client sees what it would
//! see without the tunnel: an upstream that accepts completes the
//! handshake and is relayed; one that refuses is refused with an RST; one
//! that cannot be reached gets ICMP unreachable; one that never answers
//! is never answered either, and the client times out.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use synack::tokio::{ConnectionRequest, TcpListener};
use synack::{Refusal, Unreachable};
use tokio::net::TcpStream;

use super::direct::Egress;
use super::relay::{relay, Stop, Traffic};
use super::socks5::Proxy;

/// Longest wait for an upstream connection: below the stack's own limit
/// for undecided requests (`Config::request_timeout`, 30 s), so the
/// decision is always ours.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where connections go.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// To their destination, from the host's own sockets.
    Direct(Egress),
    /// Through a SOCKS5 proxy (CONNECT).
    Socks5(Arc<Proxy>),
}

impl Upstream {
    /// Opens the upstream connection to `dst`.
    pub async fn connect(&self, dst: SocketAddr) -> io::Result<TcpStream> {
        match self {
            Upstream::Direct(egress) => egress.connect_tcp(dst, CONNECT_TIMEOUT).await,
            Upstream::Socks5(proxy) => proxy.connect(dst).await,
        }
    }
}

/// How a client is refused when its upstream connection failed with `e`:
/// the answer the client would have had from the destination itself.
pub fn refusal_for(e: &io::Error) -> Refusal {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused | K::ConnectionReset => Refusal::Reset,
        K::HostUnreachable => Refusal::Unreachable(Unreachable::Host),
        K::NetworkUnreachable => Refusal::Unreachable(Unreachable::Network),
        // A proxy's ruleset said no (RFC 1928 reply 2).
        K::PermissionDenied => Refusal::Unreachable(Unreachable::AdminProhibited),
        // Nobody answered: neither do we, so the client's SYN retries
        // run out as they would have.
        K::TimedOut => Refusal::Silent,
        // The proxy failed in some other way, or is unreachable itself.
        _ => Refusal::Reset,
    }
}

/// Takes connection requests until `stop`, each handled in a task of its
/// own.
pub async fn serve(
    listener: TcpListener,
    upstream: Upstream,
    traffic: Arc<Traffic>,
    mut stop: Stop,
) -> io::Result<()> {
    loop {
        let request = tokio::select! {
            r = listener.request() => r?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let (upstream, traffic, stop) = (upstream.clone(), Arc::clone(&traffic), stop.clone());
        tokio::spawn(handle(request, upstream, traffic, stop));
    }
}

/// One request: upstream first, then the client's handshake, then the
/// relay.
async fn handle(
    request: ConnectionRequest,
    upstream: Upstream,
    traffic: Arc<Traffic>,
    mut stop: Stop,
) {
    let dst = request.local_addr();
    let connected = tokio::select! {
        c = upstream.connect(dst) => c,
        // Stopping: the request is dropped undecided, which resets it.
        _ = stop.wait_for(|s| *s) => return,
    };
    let mut up = match connected {
        Ok(up) => up,
        Err(e) => {
            let _ = request.refuse(refusal_for(&e));
            return;
        }
    };
    let Ok(mut client) = request.accept().await else {
        // The client gave up during the handshake; `up` closes.
        return;
    };
    traffic.open.fetch_add(1, Ordering::Relaxed);
    let _ = relay(&mut client, &mut up, &traffic, &mut stop).await;
    traffic.open.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_what_the_client_would_see() {
        use io::ErrorKind as K;
        let r = |k: K| refusal_for(&io::Error::from(k));
        assert_eq!(r(K::ConnectionRefused), Refusal::Reset);
        assert_eq!(
            r(K::HostUnreachable),
            Refusal::Unreachable(Unreachable::Host)
        );
        assert_eq!(
            r(K::NetworkUnreachable),
            Refusal::Unreachable(Unreachable::Network)
        );
        assert_eq!(r(K::TimedOut), Refusal::Silent);
        assert_eq!(
            r(K::PermissionDenied),
            Refusal::Unreachable(Unreachable::AdminProhibited)
        );
        assert_eq!(r(K::Other), Refusal::Reset);
        // A SOCKS5 reply code goes the same way as the direct error.
        let socks = super::super::socks5::reply_error(4);
        assert_eq!(refusal_for(&socks), Refusal::Unreachable(Unreachable::Host));
    }
}
