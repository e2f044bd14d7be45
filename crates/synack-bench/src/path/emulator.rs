//! A path emulator in user space: what netem would do, for a kernel
//! without netem.
//!
//! It sits between two TUN devices, each in its own network namespace,
//! and forwards the IP packets it reads from one to the other. Each
//! direction is a [`Link`]: random loss (seeded) as a packet arrives, then
//! a bottleneck of a set rate with a drop-tail queue of a set size in
//! bytes, then a fixed propagation delay. The scheduling is a pure struct
//! on a clock passed in (time since the emulator started), so that the
//! tests drive it with a fake clock; [`Emulator`] is the thread that runs
//! two links over two devices with the real one.
//!
//! The devices are opened plainly (no offloads): every packet is one wire
//! packet of at most the devices' MTU, as on a real path.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use synack::sim::Rng;
use synack::tun::TunDevice;

/// What one direction of the path does to a packet.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The bottleneck's rate in bits per second; `None`: no bottleneck
    /// (and no queue).
    pub rate_bps: Option<u64>,
    /// The one-way propagation delay, added after the bottleneck.
    pub delay: Duration,
    /// The bottleneck queue, in bytes of IP packets waiting (including
    /// the one being serialized): a packet that would overflow it is
    /// dropped (drop-tail).
    pub queue_bytes: usize,
    /// The probability (0 to 1) that a packet is lost at random before it
    /// reaches the bottleneck.
    pub loss: f64,
    /// The loss generator's seed.
    pub seed: u64,
    /// Drop, once per connection, the first TCP segment whose payload ends
    /// this many bytes into its stream (counted from the sequence number of
    /// the last SYN seen this way, + 1): the last segment of a response of
    /// that size. One connection at a time.
    pub drop_stream_end: Option<u32>,
}

impl Shape {
    /// A direction that only delays, by `delay`.
    pub fn delay(delay: Duration) -> Self {
        Shape {
            rate_bps: None,
            delay,
            queue_bytes: 0,
            loss: 0.0,
            seed: 1,
            drop_stream_end: None,
        }
    }
}

/// What became of a packet offered to a [`Link`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Queued: it leaves the link at its release time.
    Queued,
    /// Lost at random.
    Lost,
    /// The bottleneck queue was full (drop-tail).
    Overflow,
    /// The segment [`Shape::drop_stream_end`] names.
    Targeted,
}

/// Counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets forwarded (released).
    pub forwarded: u64,
    /// Packets lost at random.
    pub lost: u64,
    /// Packets dropped by the full queue.
    pub overflow: u64,
    /// Packets dropped as [`Shape::drop_stream_end`] asked.
    pub targeted: u64,
    /// The largest queue seen, in bytes.
    pub max_queue: u64,
}

/// One direction of the path: loss, bottleneck with its queue, delay.
///
/// Release times never decrease (the bottleneck is first in, first out
/// and the delay is constant), so the packets in flight are a FIFO
/// ordered by release time.
#[derive(Debug)]
pub struct Link {
    shape: Shape,
    /// A random number below this loses the packet.
    loss_below: u64,
    rng: Rng,
    /// When the bottleneck finishes serializing what it holds, in ns of
    /// the emulator's clock.
    busy_until: u64,
    /// Packets in flight: release time (ns) and the packet.
    in_flight: VecDeque<(u64, Vec<u8>)>,
    /// The sequence number of the SYN seen in this direction (for
    /// [`Shape::drop_stream_end`]), and whether the drop happened.
    isn: Option<u32>,
    targeted: bool,
    stats: LinkStats,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Link {
    /// A link shaped by `shape`, empty, its clock at 0.
    pub fn new(shape: Shape) -> Self {
        let loss = shape.loss.clamp(0.0, 1.0);
        Link {
            loss_below: (loss * u64::MAX as f64) as u64,
            rng: Rng::new(shape.seed),
            shape,
            busy_until: 0,
            in_flight: VecDeque::new(),
            isn: None,
            targeted: false,
            stats: LinkStats::default(),
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Bytes waiting at the bottleneck at `now` (a fluid count: what the
    /// bottleneck still has to serialize).
    pub fn backlog(&self, now: Duration) -> u64 {
        match self.shape.rate_bps {
            Some(rate) if rate > 0 => {
                let left = self.busy_until.saturating_sub(ns(now));
                (left as u128 * rate as u128 / 8_000_000_000) as u64
            }
            _ => 0,
        }
    }

    /// A packet arrives at `now`: lost, dropped, or queued for release.
    pub fn offer(&mut self, now: Duration, packet: Vec<u8>) -> Fate {
        if self.is_target(&packet) {
            self.stats.targeted += 1;
            return Fate::Targeted;
        }
        if self.loss_below > 0 && self.rng.next_u64() < self.loss_below {
            self.stats.lost += 1;
            return Fate::Lost;
        }
        let now = ns(now);
        let leaves = match self.shape.rate_bps {
            Some(rate) if rate > 0 => {
                let backlog = self.backlog(Duration::from_nanos(now));
                let len = packet.len() as u64;
                if backlog + len > self.shape.queue_bytes as u64 {
                    self.stats.overflow += 1;
                    return Fate::Overflow;
                }
                self.stats.max_queue = self.stats.max_queue.max(backlog + len);
                let serialize = (len as u128 * 8_000_000_000 / rate as u128) as u64;
                self.busy_until = self.busy_until.max(now) + serialize;
                self.busy_until
            }
            _ => now,
        };
        let release = leaves + ns(self.shape.delay);
        self.in_flight.push_back((release, packet));
        Fate::Queued
    }

    /// When the next packet leaves, if one is in flight.
    pub fn next_release(&self) -> Option<Duration> {
        self.in_flight
            .front()
            .map(|(t, _)| Duration::from_nanos(*t))
    }

    /// The next packet whose release time has come at `now`, with that
    /// release time.
    pub fn pop_due(&mut self, now: Duration) -> Option<(Duration, Vec<u8>)> {
        match self.in_flight.front() {
            Some((t, _)) if *t <= ns(now) => {
                let (t, p) = self.in_flight.pop_front()?;
                self.stats.forwarded += 1;
                Some((Duration::from_nanos(t), p))
            }
            _ => None,
        }
    }

    /// Whether `packet` is the one segment [`Shape::drop_stream_end`]
    /// names (noting the ISN when it is a SYN).
    fn is_target(&mut self, packet: &[u8]) -> bool {
        let Some(end) = self.shape.drop_stream_end else {
            return false;
        };
        let Some(seg) = TcpView::parse(packet) else {
            return false;
        };
        if seg.syn {
            // A new connection: its response loses its last segment too.
            self.isn = Some(seg.seq);
            self.targeted = false;
            return false;
        }
        let (Some(isn), false) = (self.isn, self.targeted) else {
            return false;
        };
        let stream_end = seg
            .seq
            .wrapping_add(seg.len)
            .wrapping_sub(isn.wrapping_add(1));
        if seg.len > 0 && stream_end == end {
            self.targeted = true;
            return true;
        }
        false
    }
}

/// The fields of an IPv4 TCP segment the emulator looks at.
struct TcpView {
    seq: u32,
    len: u32,
    syn: bool,
}

impl TcpView {
    /// `None` for anything but a well-formed IPv4 TCP segment.
    fn parse(p: &[u8]) -> Option<TcpView> {
        if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
            return None;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
        let tcp = p.get(ihl..total)?;
        if tcp.len() < 20 {
            return None;
        }
        let off = usize::from(tcp[12] >> 4) * 4;
        let len = tcp.len().checked_sub(off)? as u32;
        Some(TcpView {
            seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            len,
            syn: tcp[13] & 0x02 != 0,
        })
    }
}

/// What the emulator thread counted, per direction, and how late it was.
#[derive(Clone, Debug, Default)]
pub struct EmulatorStats {
    /// A to B (index 0) and B to A (index 1).
    pub links: [LinkStats; 2],
    /// The latest a packet left after its release time.
    pub max_late: Duration,
    /// Packets that left more than a millisecond late.
    pub late_over_1ms: u64,
    /// Writes to a device that failed.
    pub write_errors: u64,
}

impl EmulatorStats {
    /// One line: the counts of both directions and the lateness.
    pub fn summary(&self) -> String {
        let [a, b] = self.links;
        format!(
            "emulator: a->b {} fwd {} lost {} overflow {} targeted (queue peak {} B), \
             b->a {} fwd {} lost {} overflow; {} packets >1 ms late, latest {:.1} ms",
            a.forwarded,
            a.lost,
            a.overflow,
            a.targeted,
            a.max_queue,
            b.forwarded,
            b.lost,
            b.overflow,
            self.late_over_1ms,
            self.max_late.as_secs_f64() * 1e3
        )
    }
}

/// The emulator thread: forwards between two TUN devices through two
/// [`Link`]s until stopped.
pub struct Emulator {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<EmulatorStats>>,
}

impl Emulator {
    /// Starts forwarding: what `a` reads goes through `a_to_b` to `b`, and
    /// back through `b_to_a`.
    pub fn start(a: TunDevice, b: TunDevice, a_to_b: Shape, b_to_a: Shape) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            realtime();
            forward(&[a, b], [Link::new(a_to_b), Link::new(b_to_a)], &flag)
        });
        Emulator {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread and returns its counts.
    pub fn stop(mut self) -> EmulatorStats {
        self.halt()
    }

    fn halt(&mut self) -> EmulatorStats {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Asks for a precise timer (1 µs of slack, not 50) and, when allowed,
/// real-time scheduling, so that the path keeps its shape on a busy
/// machine. Best effort: without them the emulator only gets less exact.
fn realtime() {
    // SAFETY: prctl and sched_setscheduler on the calling thread, with a
    // valid, live sched_param.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
        let p = libc::sched_param { sched_priority: 10 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &p);
    }
}

/// Most packets read from one device per wakeup before the other is
/// served.
const READ_BATCH: usize = 64;

/// The loop: release what is due, wait for a device or the next release
/// (at most 10 ms, to look at `stop`), take in what arrived.
fn forward(devs: &[TunDevice; 2], mut links: [Link; 2], stop: &AtomicBool) -> EmulatorStats {
    let epoch = Instant::now();
    let mut st = EmulatorStats::default();
    let mut buf = vec![0u8; 65_536];
    let mut pool: Vec<Vec<u8>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = epoch.elapsed();
        for (i, link) in links.iter_mut().enumerate() {
            while let Some((due, p)) = link.pop_due(now) {
                let late = now.saturating_sub(due);
                st.max_late = st.max_late.max(late);
                st.late_over_1ms += u64::from(late > Duration::from_millis(1));
                if devs[1 - i].send(&p).is_err() {
                    st.write_errors += 1;
                }
                pool.push(p);
            }
        }
        let next = links.iter().filter_map(Link::next_release).min();
        let wait = next.map_or(Duration::from_millis(10), |t| {
            t.saturating_sub(epoch.elapsed())
                .min(Duration::from_millis(10))
        });
        let ready = poll2(devs, wait);
        for (i, link) in links.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            for _ in 0..READ_BATCH {
                let Ok(n) = devs[i].recv(&mut buf) else {
                    break;
                };
                let mut p = pool.pop().unwrap_or_default();
                p.clear();
                p.extend_from_slice(&buf[..n]);
                // A dropped packet's buffer is not reused: an
                // allocation per drop, no more.
                link.offer(epoch.elapsed(), p);
            }
        }
    }
    st.links = [links[0].stats(), links[1].stats()];
    st
}

/// Waits up to `wait` for either device to be readable; which are.
fn poll2(devs: &[TunDevice; 2], wait: Duration) -> [bool; 2] {
    let mut fds = devs.each_ref().map(|d| libc::pollfd {
        fd: d.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let ts = libc::timespec {
        tv_sec: wait.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(wait.subsec_nanos() as i32),
    };
    // SAFETY: `fds` and `ts` outlive the call; the length matches.
    let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
    if rc <= 0 {
        return [false; 2];
    }
    fds.map(|f| f.revents & libc::POLLIN != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn shape(rate_mbit: u64, delay_ms: u64, queue: usize, loss: f64) -> Shape {
        Shape {
            rate_bps: Some(rate_mbit * 1_000_000),
            delay: ms(delay_ms),
            queue_bytes: queue,
            loss,
            seed: 7,
            drop_stream_end: None,
        }
    }

    /// A 1250-byte packet takes 1 ms at 10 Mbit/s.
    #[test]
    fn delay_and_rate_set_release_times() {
        let mut l = Link::new(shape(10, 25, 100_000, 0.0));
        for _ in 0..3 {
            assert_eq!(l.offer(ms(0), vec![0; 1250]), Fate::Queued);
        }
        assert_eq!(l.next_release(), Some(ms(26)));
        assert!(l.pop_due(ms(25)).is_none());
        assert_eq!(l.pop_due(ms(26)).map(|(t, _)| t), Some(ms(26)));
        assert_eq!(l.pop_due(ms(40)).map(|(t, _)| t), Some(ms(27)));
        assert_eq!(l.pop_due(ms(40)).map(|(t, _)| t), Some(ms(28)));
        assert!(l.pop_due(ms(40)).is_none());
        // An idle bottleneck starts afresh at the arrival time.
        l.offer(ms(100), vec![0; 1250]);
        assert_eq!(l.next_release(), Some(ms(126)));
        assert_eq!(l.stats().forwarded, 3);
    }

    #[test]
    fn full_queue_drops_the_tail_and_drains_at_the_rate() {
        // Room for four 1250-byte packets.
        let mut l = Link::new(shape(10, 0, 5_000, 0.0));
        let fates: Vec<Fate> = (0..6).map(|_| l.offer(ms(0), vec![0; 1250])).collect();
        assert_eq!(&fates[..4], &[Fate::Queued; 4]);
        assert_eq!(&fates[4..], &[Fate::Overflow; 2]);
        assert_eq!(l.backlog(ms(0)), 5_000);
        assert_eq!(l.backlog(ms(2)), 2_500);
        // Two packets' time later there is room for two again.
        assert_eq!(l.offer(ms(2), vec![0; 1250]), Fate::Queued);
        assert_eq!(l.offer(ms(2), vec![0; 1250]), Fate::Queued);
        assert_eq!(l.offer(ms(2), vec![0; 1250]), Fate::Overflow);
        assert_eq!(l.stats().overflow, 3);
        assert_eq!(l.stats().max_queue, 5_000);
    }

    #[test]
    fn loss_rate_follows_the_seeded_probability() {
        for p in [0.001, 0.01, 0.03] {
            let mut l = Link::new(Shape {
                loss: p,
                ..Shape::delay(ms(0))
            });
            let n = 200_000u64;
            for _ in 0..n {
                l.offer(ms(0), vec![0; 40]);
            }
            let lost = l.stats().lost as f64 / n as f64;
            assert!((lost - p).abs() < p * 0.15 + 0.0002, "p {p}: lost {lost}");
            // The same seed loses the same packets.
            let mut again = Link::new(Shape {
                loss: p,
                ..Shape::delay(ms(0))
            });
            for _ in 0..n {
                again.offer(ms(0), vec![0; 40]);
            }
            assert_eq!(again.stats().lost, l.stats().lost);
        }
        let mut none = Link::new(Shape::delay(ms(0)));
        for _ in 0..10_000 {
            assert_eq!(none.offer(ms(0), vec![0; 40]), Fate::Queued);
        }
    }

    /// An IPv4 TCP segment: `seq`, `len` bytes of payload, SYN or not.
    fn segment(seq: u32, len: usize, syn: bool) -> Vec<u8> {
        let total = 40 + len;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[9] = 6;
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = if syn { 0x02 } else { 0x10 };
        p
    }

    #[test]
    fn the_segment_ending_the_response_is_dropped_once() {
        let mut l = Link::new(Shape {
            drop_stream_end: Some(3000),
            ..Shape::delay(ms(0))
        });
        let isn = u32::MAX - 1000; // the stream wraps around 2^32
        assert_eq!(l.offer(ms(0), segment(isn, 0, true)), Fate::Queued);
        let s = isn.wrapping_add(1);
        assert_eq!(l.offer(ms(0), segment(s, 1448, false)), Fate::Queued);
        let last = segment(s.wrapping_add(1448), 1552, false);
        assert_eq!(l.offer(ms(0), last.clone()), Fate::Targeted);
        // Its retransmission goes through.
        assert_eq!(l.offer(ms(0), last), Fate::Queued);
        assert_eq!(l.stats().targeted, 1);
        assert_eq!(l.offer(ms(0), vec![0x60; 60]), Fate::Queued);
        // The next connection loses its last segment too.
        assert_eq!(l.offer(ms(0), segment(5, 0, true)), Fate::Queued);
        assert_eq!(l.offer(ms(0), segment(6, 3000, false)), Fate::Targeted);
        assert_eq!(l.stats().targeted, 2);
    }
}
