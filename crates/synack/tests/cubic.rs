//! CUBIC (RFC 9438) beside Reno (RFC 5681) on a long fat path: the same
//! transfer, the same single loss, and how fast each regains its window.

use std::net::SocketAddr;
use std::time::Duration;

use synack::core::{Config, CongestionControlChoice, Instant, TraceKind};
use synack::record::Record;
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT, CLIENT_IP, SERVER_IP};

/// One-way delay: a 100 ms round trip.
const DELAY: Duration = Duration::from_millis(50);
/// The client's data segment (counting from 0) the path drops, once: by
/// then slow start has opened the window to several hundred segments.
const LOST: usize = 1500;

/// New data segments the client sent in each 100 ms (one round trip) from
/// the loss on, for `rounds` round trips: the congestion window, in
/// segments, round by round. Also the window just before the loss.
fn windows_after_loss(cc: CongestionControlChoice, rounds: usize) -> (usize, Vec<usize>) {
    let cfg = Config {
        congestion_control: cc,
        send_buffer: 8 << 20,
        recv_buffer: 8 << 20,
        ..Config::default()
    };
    let server = SocketAddr::new(SERVER_IP, 7);
    let mut sim = Sim::new(1, LinkConfig::with_delay(DELAY)).record(true);
    let mut n = 0usize;
    sim.set_drop_rule(Box::new(move |from, seg| {
        if from == CLIENT && !seg.payload.is_empty() {
            n += 1;
            return n - 1 == LOST;
        }
        false
    }));
    let bytes = 60 << 20;
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg.clone(),
        Box::new(Client::echo(server, bytes, ClientMode::Echo)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        cfg,
        Box::new(EchoServer::new(server, ServerMode::Echo)),
    );
    sim.run(Instant::from_secs(30));
    let lost_at = sim
        .records()
        .iter()
        .find_map(|r| match r {
            Record::Link { at, from, .. } if *from == CLIENT => Some(*at),
            _ => None,
        })
        .expect("the loss");
    let sent: Vec<u64> = sim
        .records()
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::Send { seg, rtx: false } if seg.len > 0 => Some(event.at.micros()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let rtt = 2 * DELAY.as_micros() as u64;
    let in_round = |from: u64| {
        sent.iter()
            .filter(|&&t| t >= from && t < from + rtt)
            .count()
    };
    let lost_at = lost_at.micros();
    let before = in_round(lost_at - rtt);
    let after = (0..rounds as u64)
        .map(|i| in_round(lost_at + rtt * i))
        .collect();
    (before, after)
}

/// RFC 9438 §4.6 and §4.2 against RFC 5681: after one loss CUBIC keeps
/// 70% of its window where Reno keeps half, and climbs back toward the
/// window it had (W_max) along the concave side of the cubic while Reno
/// adds one segment per round trip: three seconds after the loss CUBIC
/// has gained many times what Reno has.
#[test]
fn cubic_regains_its_window_faster_than_reno_after_a_loss() {
    let rounds = 31;
    let (cubic_before, cubic) = windows_after_loss(CongestionControlChoice::Cubic, rounds);
    let (reno_before, reno) = windows_after_loss(CongestionControlChoice::Reno, rounds);
    let msg = format!("cubic: {cubic_before} then {cubic:?}\nreno: {reno_before} then {reno:?}");
    // The same path and loss: both were in slow start, at the same window.
    assert_eq!(cubic_before, reno_before, "{msg}");
    assert_eq!(cubic[0], reno[0], "{msg}");
    // Round 1 is the recovery, where PRR (RFC 6937) spreads the reduction
    // over the round trip. The round after it: β_cubic = 0.7 against
    // Reno's 0.5.
    let ratio = cubic[2] as f64 / reno[2] as f64;
    assert!((1.3..1.5).contains(&ratio), "{ratio}: {msg}");
    // Reno: one segment per round trip (5681-4).
    let reno_gain = reno[30] - reno[2];
    assert!((25..=35).contains(&reno_gain), "{msg}");
    // CUBIC: concave, fast first, slowing as W_max nears (§4.4).
    let cubic_gain = cubic[30] - cubic[2];
    assert!(cubic_gain > 5 * reno_gain, "{msg}");
    assert!(cubic[10] - cubic[2] > cubic[30] - cubic[22], "{msg}");
    assert!(cubic.windows(2).skip(2).all(|w| w[1] >= w[0]), "{msg}");
}

/// An application's own controller (`CongestionControlChoice::Custom`)
/// runs the connection: its fixed window is the window on the wire, before
/// the loss and after it.
#[test]
fn a_custom_controller_drives_the_connection() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use synack::core::{AckInfo, CongestionControl};

    static ACKS: AtomicU32 = AtomicU32::new(0);
    /// A fixed window of 20 segments.
    struct Fixed(u32);
    impl CongestionControl for Fixed {
        fn init(&mut self, mss: u32, _: bool) {
            self.0 = 20 * mss;
        }
        fn cwnd(&self) -> u32 {
            self.0
        }
        fn ssthresh(&self) -> u32 {
            u32::MAX
        }
        fn on_ack(&mut self, _: u32, _: u32, _: AckInfo) {
            ACKS.fetch_add(1, Ordering::Relaxed);
        }
        fn on_rto(&mut self, _: u32, _: u32) {}
        fn on_enter_recovery(&mut self, _: u32, _: u32) {}
        fn on_exit_recovery(&mut self, _: u32, _: u32) {}
        fn undo(&mut self) {}
    }
    let fixed = CongestionControlChoice::Custom(Arc::new(|| Box::new(Fixed(0))));
    let (before, after) = windows_after_loss(fixed, 5);
    assert!(ACKS.load(Ordering::Relaxed) > 0);
    // Twenty segments a round trip, before the loss and after the
    // recovery (a segment may fall on either side of a round's edge).
    assert_eq!(before, 20, "{after:?}");
    assert!(
        after[2..].iter().all(|&w| (19..=21).contains(&w)),
        "{after:?}"
    );
}
