//! The UDP flow table: datagrams from the tunnel relayed upstream, replies
//! written back into the tunnel.
//!
//! Mapping and filtering are endpoint-independent (RFC 4787 §4.1 REQ-1 and
//! §5 REQ-8, "full cone"): each client endpoint inside the tunnel (address
//! and port) gets one upstream socket, or one SOCKS5 UDP association,
//! whatever destinations it sends to, and a datagram arriving on it from
//! any remote endpoint goes back to that client with the remote as its
//! source. That is what lets STUN, QUIC migration and peer-to-peer
//! protocols work through the tunnel as through a well-behaved NAT.
//!
//! The table is bounded: a new flow beyond [`UdpConfig::max_flows`] evicts
//! the one idle longest. A flow idle (no datagram either way, RFC 4787
//! §4.3 REQ-6: outbound traffic refreshes it, inbound too here) for
//! [`UdpConfig::idle`] is closed; REQ-5 asks for at least two minutes,
//! except for well-known ports such as DNS (REQ-5a), whose flows (every
//! datagram to port 53) close after [`UdpConfig::dns_idle`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::direct::Egress;
use super::relay::Traffic;
use super::socks5::{Proxy, UdpAssociation};

/// Datagrams queued towards one flow's upstream before more are dropped.
const FLOW_QUEUE: usize = 64;

/// Room for the largest UDP payload.
const SCRATCH: usize = 65_536;

thread_local! {
    /// The receive buffer shared by the flows polled on this thread.
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
}

/// Limits of the flow table.
#[derive(Clone, Copy, Debug)]
pub struct UdpConfig {
    /// Most flows at once; one more evicts the longest idle.
    pub max_flows: usize,
    /// A flow idle this long is closed (RFC 4787 REQ-5: 2 minutes at least).
    pub idle: Duration,
    /// The same for a flow that only ever sent to port 53 (REQ-5a).
    pub dns_idle: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_flows: 4096,
            idle: Duration::from_secs(120),
            dns_idle: Duration::from_secs(20),
        }
    }
}

/// Where flows go upstream.
#[derive(Clone, Debug)]
pub enum UdpUpstream {
    /// The host's own UDP sockets.
    Direct(Egress),
    /// A SOCKS5 UDP association per flow.
    Socks5(Arc<Proxy>),
}

/// Writes a reply into the tunnel: `(src, dst, payload)`, the source being
/// the remote it came from and the destination the client.
pub type ReplySink = Arc<dyn Fn(SocketAddr, SocketAddr, &[u8]) + Send + Sync>;

/// Counters of the table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UdpStats {
    /// Flows opened.
    pub opened: u64,
    /// Flows closed because they were idle.
    pub expired: u64,
    /// Flows evicted to make room.
    pub evicted: u64,
    /// Datagrams dropped because their flow's queue was full.
    pub dropped: u64,
}

/// One client endpoint's flow.
struct Flow {
    /// Datagrams towards upstream: destination and payload.
    tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    /// Last datagram either way, in milliseconds since the table's epoch.
    last: Arc<AtomicU64>,
    /// Every datagram so far went to port 53.
    dns_only: bool,
    task: JoinHandle<()>,
}

impl Drop for Flow {
    fn drop(&mut self) {
        // The task owns the upstream socket: ending it closes the socket.
        self.task.abort();
    }
}

/// The flow table (see the module doc). Owned by the task that reads
/// datagrams from the tunnel; each flow's replies are read by a task of
/// its own.
pub struct FlowTable {
    flows: HashMap<SocketAddr, Flow>,
    config: UdpConfig,
    upstream: UdpUpstream,
    reply: ReplySink,
    traffic: Arc<Traffic>,
    epoch: Instant,
    stats: UdpStats,
}

impl FlowTable {
    /// An empty table.
    pub fn new(
        config: UdpConfig,
        upstream: UdpUpstream,
        reply: ReplySink,
        traffic: Arc<Traffic>,
    ) -> Self {
        FlowTable {
            flows: HashMap::new(),
            config,
            upstream,
            reply,
            traffic,
            epoch: Instant::now(),
            stats: UdpStats::default(),
        }
    }

    /// Flows open now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// The table's counters.
    #[cfg(test)]
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// Relays a datagram from the tunnel (`src` the client, `dst` the
    /// remote), opening the client's flow if it has none. Needs a tokio
    /// runtime (the flow's task).
    pub fn send(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) {
        let stamp = self.stamp(now);
        let fresh = match self.flows.get(&src) {
            Some(f) => f.tx.is_closed(),
            None => true,
        };
        if fresh {
            self.flows.remove(&src);
            self.make_room(now);
            let flow = self.open(src);
            self.flows.insert(src, flow);
            self.stats.opened += 1;
        }
        let Some(flow) = self.flows.get_mut(&src) else {
            return;
        };
        flow.last.store(stamp, Ordering::Relaxed);
        flow.dns_only &= dst.port() == 53;
        if flow.tx.try_send((dst, payload)).is_err() {
            self.stats.dropped += 1;
        }
    }

    /// Closes the flows idle for longer than their timeout; returns how
    /// many. Call it now and then (every few seconds).
    pub fn expire(&mut self, now: Instant) -> usize {
        let now = self.stamp(now);
        let (idle, dns_idle) = (millis(self.config.idle), millis(self.config.dns_idle));
        let before = self.flows.len();
        self.flows.retain(|_, f| {
            let limit = if f.dns_only { dns_idle } else { idle };
            now.saturating_sub(f.last.load(Ordering::Relaxed)) < limit && !f.tx.is_closed()
        });
        let gone = before - self.flows.len();
        self.stats.expired += gone as u64;
        gone
    }

    /// Evicts the longest idle flow while the table is full.
    fn make_room(&mut self, now: Instant) {
        if self.flows.len() < self.config.max_flows {
            return;
        }
        if self.expire(now) > 0 && self.flows.len() < self.config.max_flows {
            return;
        }
        let oldest = self
            .flows
            .iter()
            .min_by_key(|(_, f)| f.last.load(Ordering::Relaxed))
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.flows.remove(&k);
            self.stats.evicted += 1;
        }
    }

    /// Starts the flow of `client`: its upstream opens in its own task.
    fn open(&self, client: SocketAddr) -> Flow {
        let (tx, rx) = mpsc::channel(FLOW_QUEUE);
        let last = Arc::new(AtomicU64::new(self.stamp(Instant::now())));
        let task = tokio::spawn(run_flow(
            self.upstream.clone(),
            client,
            rx,
            Arc::clone(&self.reply),
            Arc::clone(&last),
            self.epoch,
            Arc::clone(&self.traffic),
        ));
        Flow {
            tx,
            last,
            dns_only: true,
            task,
        }
    }

    /// `now` as milliseconds since the epoch.
    fn stamp(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.epoch))
    }
}

/// A duration in whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A flow's upstream end.
enum FlowSocket {
    Direct(UdpSocket),
    Socks5(UdpAssociation),
}

impl FlowSocket {
    async fn open(upstream: &UdpUpstream, client: SocketAddr) -> io::Result<FlowSocket> {
        match upstream {
            UdpUpstream::Direct(egress) => Ok(FlowSocket::Direct(egress.udp_socket(client.ip())?)),
            UdpUpstream::Socks5(proxy) => {
                Ok(FlowSocket::Socks5(proxy.associate(client.ip()).await?))
            }
        }
    }

    async fn send_to(&self, payload: &[u8], dst: SocketAddr) -> io::Result<()> {
        match self {
            FlowSocket::Direct(s) => s.send_to(payload, dst).await.map(|_| ()),
            FlowSocket::Socks5(a) => a.send_to(payload, dst).await,
        }
    }

    async fn readable(&self) -> io::Result<()> {
        match self {
            FlowSocket::Direct(s) => s.readable().await,
            FlowSocket::Socks5(a) => a.readable().await,
        }
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            FlowSocket::Direct(s) => s.try_recv_from(buf),
            FlowSocket::Socks5(a) => a.try_recv_from(buf),
        }
    }

    /// Resolves when the flow cannot go on (a SOCKS5 association closed).
    async fn closed(&self) {
        match self {
            FlowSocket::Direct(_) => std::future::pending().await,
            FlowSocket::Socks5(a) => a.closed().await,
        }
    }
}

/// A flow's task: sends what the table queues, writes replies back, until
/// the table drops the flow or the upstream fails.
async fn run_flow(
    upstream: UdpUpstream,
    client: SocketAddr,
    mut rx: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    reply: ReplySink,
    last: Arc<AtomicU64>,
    epoch: Instant,
    traffic: Arc<Traffic>,
) {
    let Ok(socket) = FlowSocket::open(&upstream, client).await else {
        // No upstream (a proxy without UDP ASSOCIATE, no route): the
        // client's datagrams are lost, as on a network that drops them.
        return;
    };
    loop {
        tokio::select! {
            queued = rx.recv() => {
                let Some((dst, payload)) = queued else { return };
                if socket.send_to(&payload, dst).await.is_ok() {
                    traffic.up.fetch_add(payload.len() as u64, Ordering::Relaxed);
                }
            }
            ready = socket.readable() => {
                if ready.is_err() {
                    return;
                }
                deliver_replies(&socket, client, &reply, &last, epoch, &traffic);
            }
            () = socket.closed() => return,
        }
    }
}

/// Writes every reply that is ready into the tunnel.
fn deliver_replies(
    socket: &FlowSocket,
    client: SocketAddr,
    reply: &ReplySink,
    last: &AtomicU64,
    epoch: Instant,
    traffic: &Traffic,
) {
    SCRATCH_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        // An ICMP error reported on the socket (`Err` other than
        // WouldBlock) ends this round too; the next datagram is read later.
        while let Ok((n, from)) = socket.try_recv_from(&mut buf) {
            reply(from, client, &buf[..n]);
            traffic.down.fetch_add(n as u64, Ordering::Relaxed);
            last.store(
                millis(Instant::now().saturating_duration_since(epoch)),
                Ordering::Relaxed,
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    type Replies = Arc<Mutex<Vec<(SocketAddr, SocketAddr, Vec<u8>)>>>;

    fn table(config: UdpConfig) -> (FlowTable, Replies) {
        let got: Replies = Arc::default();
        let g = Arc::clone(&got);
        let sink: ReplySink =
            Arc::new(move |src, dst, p: &[u8]| g.lock().unwrap().push((src, dst, p.to_vec())));
        let t = FlowTable::new(
            config,
            UdpUpstream::Direct(Egress::default()),
            sink,
            Arc::default(),
        );
        (t, got)
    }

    async fn wait_for(replies: &Replies, n: usize) {
        for _ in 0..500 {
            if replies.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no reply");
    }

    #[tokio::test]
    async fn endpoint_independent_mapping_and_filtering() {
        let (mut t, replies) = table(UdpConfig::default());
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let third = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let now = Instant::now();
        t.send(now, client, a.local_addr().unwrap(), b"to a".to_vec());
        t.send(now, client, b.local_addr().unwrap(), b"to b".to_vec());
        let mut buf = [0u8; 64];
        let (n, mapped_a) = a.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"to a");
        let (_, mapped_b) = b.recv_from(&mut buf).await.unwrap();
        // §4.1: one mapping whatever the destination.
        assert_eq!(mapped_a, mapped_b);
        assert_eq!(t.len(), 1);
        // §5: a remote the client never sent to is let through too.
        third.send_to(b"unsolicited", mapped_a).await.unwrap();
        wait_for(&replies, 1).await;
        let (src, dst, p) = replies.lock().unwrap()[0].clone();
        assert_eq!(
            (src, dst, p.as_slice()),
            (third.local_addr().unwrap(), client, &b"unsolicited"[..])
        );
        // Another client endpoint gets another mapping.
        let other: SocketAddr = "10.0.0.2:5001".parse().unwrap();
        t.send(now, other, a.local_addr().unwrap(), b"x".to_vec());
        let (_, mapped_other) = a.recv_from(&mut buf).await.unwrap();
        assert_ne!(mapped_other, mapped_a);
        assert_eq!(t.stats().opened, 2);
    }

    #[tokio::test]
    async fn idle_flows_expire_dns_ones_sooner() {
        let config = UdpConfig::default();
        let (mut t, _) = table(config);
        let remote = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dns: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let now = Instant::now();
        t.send(now, "10.0.0.2:1000".parse().unwrap(), dns, b"q".to_vec());
        t.send(
            now,
            "10.0.0.2:1001".parse().unwrap(),
            remote.local_addr().unwrap(),
            b"d".to_vec(),
        );
        assert_eq!(t.expire(now + Duration::from_secs(5)), 0);
        assert_eq!(t.expire(now + config.dns_idle + Duration::from_secs(1)), 1);
        assert_eq!(t.len(), 1);
        // Outbound traffic refreshes the mapping (REQ-6).
        let later = now + Duration::from_secs(100);
        t.send(
            later,
            "10.0.0.2:1001".parse().unwrap(),
            remote.local_addr().unwrap(),
            b"d".to_vec(),
        );
        assert_eq!(t.expire(now + config.idle + Duration::from_secs(1)), 0);
        assert_eq!(t.expire(later + config.idle + Duration::from_secs(1)), 1);
        assert_eq!(t.len(), 0);
        assert_eq!(t.stats().expired, 2);
    }

    #[tokio::test]
    async fn a_full_table_evicts_the_longest_idle() {
        let (mut t, _) = table(UdpConfig {
            max_flows: 3,
            ..UdpConfig::default()
        });
        let remote = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dst = remote.local_addr().unwrap();
        let t0 = Instant::now();
        for (i, port) in [1000u16, 1001, 1002].into_iter().enumerate() {
            let at = t0 + Duration::from_secs(i as u64);
            t.send(
                at,
                SocketAddr::new("10.0.0.2".parse().unwrap(), port),
                dst,
                b"x".to_vec(),
            );
        }
        // 1000 is refreshed: 1001 is now the longest idle.
        t.send(
            t0 + Duration::from_secs(3),
            "10.0.0.2:1000".parse().unwrap(),
            dst,
            b"x".to_vec(),
        );
        t.send(
            t0 + Duration::from_secs(4),
            "10.0.0.2:1003".parse().unwrap(),
            dst,
            b"x".to_vec(),
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.stats().evicted, 1);
        assert!(!t.flows.contains_key(&"10.0.0.2:1001".parse().unwrap()));
        assert!(t.flows.contains_key(&"10.0.0.2:1000".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_dropped_flow_closes_its_socket() {
        let (mut t, replies) = table(UdpConfig::default());
        let remote = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client: SocketAddr = "10.0.0.2:7".parse().unwrap();
        let now = Instant::now();
        t.send(now, client, remote.local_addr().unwrap(), b"x".to_vec());
        let mut buf = [0u8; 8];
        let (_, mapped) = remote.recv_from(&mut buf).await.unwrap();
        t.expire(now + Duration::from_secs(1000));
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Nothing listens on the mapped port any more: nothing comes back.
        remote.send_to(b"late", mapped).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(replies.lock().unwrap().is_empty());
        assert!(
            UdpSocket::bind(mapped).await.is_ok(),
            "the mapped port is free again"
        );
    }
}
