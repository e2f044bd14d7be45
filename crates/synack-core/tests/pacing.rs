//! Pacing (`Config::pacing`, off by default): the initial window leaves at
//! once, a larger window is spread over the round trip at twice the window
//! per smoothed RTT in slow start, super-segments carry about a
//! millisecond of that rate, and with pacing off the same window leaves
//! back to back.

mod common;

use common::*;
use synack_core::Config;

/// The path's round trip: the handshake's RTT sample, the SRTT pacing uses.
const PATH_RTT: u64 = 50;

/// Pacing on, over the default configuration.
fn paced() -> Config {
    Config {
        pacing: true,
        ..Config::default()
    }
}

/// An established connection with a 50 ms SRTT and 1 MB queued.
fn loaded(cfg: Config) -> Peer {
    let mut p = Peer::with(Config {
        send_buffer: 1 << 20,
        ..cfg
    })
    .established_after(ms(PATH_RTT));
    p.stack.send(p.now, p.id(), &vec![7u8; 1 << 20]).unwrap();
    p
}

/// Acknowledges everything the stack sent so far, one round trip on.
fn ack_all_after_rtt(p: &mut Peer) {
    p.now += ms(PATH_RTT);
    p.ack();
}

/// The payload of an IPv4 packet.
fn payload_len(packet: &[u8]) -> usize {
    let tcp_header = usize::from(packet[20 + 12] >> 4) * 4;
    packet.len() - 20 - tcp_header
}

/// The initial window is ten segments at once (RFC 6928: pacing holds
/// nothing below it); its ACK grows the window to 18 segments (HyStart++'s
/// L = 8 per ACK), and pacing sends the eight beyond the unpaced flight one
/// at a time from its timer, SRTT / (2 × 18 segments) = 1.39 ms apart.
#[test]
fn slow_start_spreads_the_window_at_twice_its_rate() {
    let mut p = loaded(paced());
    assert_eq!(p.transmitted().len(), 10, "the initial window at once");
    ack_all_after_rtt(&mut p);
    let start = p.now;
    let burst = p.transmitted().len();
    assert_eq!(burst, 10, "the unpaced flight, then held");
    let rest = p.run_until(start + ms(PATH_RTT / 2));
    let at: Vec<u64> = rest
        .iter()
        .filter(|s| !s.payload.is_empty())
        .map(|s| s.at.micros() - start.micros())
        .collect();
    assert_eq!(at.len(), 8, "the window's other eight, at (µs) {at:?}");
    assert!(at[0] >= 12_000, "held for the burst's time: {at:?}");
    for w in at.windows(2) {
        assert!((1_300..=1_500).contains(&(w[1] - w[0])), "gaps: {at:?}");
    }
}

/// The same window unpaced (the default): all eighteen segments at once.
#[test]
fn without_pacing_the_window_leaves_back_to_back() {
    let mut p = loaded(Config::default());
    assert_eq!(p.transmitted().len(), 10);
    ack_all_after_rtt(&mut p);
    assert_eq!(p.transmitted().len(), 18);
}

/// With segmentation offload a paced super-segment carries about 1 ms at
/// the pacing rate, at least two segments: at a 50 ms SRTT and a
/// ten-segment window that is two segments (0.58 MB/s: 579 bytes a
/// millisecond), where unpaced the whole initial window is one packet.
#[test]
fn super_segments_carry_a_millisecond_of_the_rate() {
    let mss = 1460;
    let packets = |pacing| {
        let mut p = loaded(Config {
            gso_max_size: Some(65_535),
            pacing,
            ..paced()
        });
        let mut sizes = Vec::new();
        while let Some(t) = p.stack.poll_transmit_meta() {
            sizes.push(payload_len(&t.packet));
        }
        sizes
    };
    assert_eq!(packets(false), vec![10 * mss], "one super-segment");
    assert_eq!(packets(true), vec![2 * mss; 5], "two segments each");
}
