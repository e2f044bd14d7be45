//! Property: whatever the link does (loss, duplication, reordering, delay,
//! corruption), every byte sent arrives once and in order, both ends reach
//! CLOSED, and neither stack keeps anything behind.

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use synack::core::{Config, Instant, State};
use synack::scenarios::{states, CLIENT, CLIENT_IP, SERVER, SERVER_IP};
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, Rng, ServerMode, Sim};

/// One faulty run; returns why it failed, if it did (else how many packets
/// of several segments the two stacks sent).
fn faulty_run(seed: u64, bytes: u64, link: LinkConfig, mode: ClientMode) -> Result<u64, String> {
    let cfg = Config {
        msl: Duration::from_secs(5),
        ..Config::default()
    };
    faulty_run_with(seed, bytes, link, mode, cfg)
}

fn faulty_run_with(
    seed: u64,
    bytes: u64,
    link: LinkConfig,
    mode: ClientMode,
    cfg: Config,
) -> Result<u64, String> {
    let server = SocketAddr::new(SERVER_IP, 7);
    let mut sim = Sim::new(seed, link.clone()).record(true);
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg.clone(),
        Box::new(Client::echo(server, bytes, mode)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        cfg,
        Box::new(EchoServer::new(server, ServerMode::Echo)),
    );
    let quiet = sim.run(Instant::from_secs(4 * 3600));
    let c = sim.app(CLIENT).as_any().downcast_ref::<Client>().unwrap();
    let ctx = format!("seed {seed}, {bytes} bytes, {link:?}");
    if !quiet {
        return Err(format!("never went quiet ({ctx})"));
    }
    if !c.succeeded() {
        return Err(format!(
            "sent {} received {} mismatch {} outcome {:?} ({ctx})",
            c.sent, c.received, c.mismatch, c.outcome
        ));
    }
    for (h, who) in [(CLIENT, "client"), (SERVER, "server")] {
        let s = states(sim.records(), h);
        if s.last() != Some(&State::Closed) {
            return Err(format!("{who} ended in {:?} ({ctx})", s.last()));
        }
        let st = sim.stack(h);
        if st.connection_count() != 0 || st.time_wait_count() != 0 {
            return Err(format!(
                "{who} leaked {} connections and {} TIME-WAIT entries ({ctx})",
                st.connection_count(),
                st.time_wait_count()
            ));
        }
    }
    Ok(sim.stack(CLIENT).stats().super_segments + sim.stack(SERVER).stats().super_segments)
}

fn random_link(rng: &mut Rng) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_micros(100 + rng.below(50_000)),
        loss: rng.unit() * 0.15,
        duplicate: rng.unit() * 0.1,
        reorder: rng.unit() * 0.2,
        reorder_jitter: Duration::from_micros(rng.below(40_000)),
        corrupt: rng.unit() * 0.05,
    }
}

/// Thousands of seeds, each with its own random fault mix and size.
#[test]
fn bytes_arrive_once_in_order_over_thousands_of_seeds() {
    let seeds = std::env::var("SYNACK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000u64);
    let mut failures = Vec::new();
    let mut total = 0u64;
    for seed in 0..seeds {
        let mut rng = Rng::new(seed);
        let link = random_link(&mut rng);
        let bytes = rng.below(40_000);
        let mode = if rng.chance(0.5) {
            ClientMode::Echo
        } else {
            ClientMode::HalfClose
        };
        if let Err(e) = faulty_run(seed, bytes, link, mode) {
            failures.push(e);
        }
        total += bytes;
    }
    println!("{seeds} seeds, {total} bytes echoed");
    assert!(
        failures.is_empty(),
        "{} of {seeds} runs failed; first: {}",
        failures.len(),
        failures[0]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The same property, with proptest choosing (and shrinking) the faults.
    #[test]
    fn echo_survives_any_faults(
        seed in any::<u64>(),
        bytes in 0u64..100_000,
        loss in 0.0f64..0.2,
        duplicate in 0.0f64..0.2,
        reorder in 0.0f64..0.3,
        corrupt in 0.0f64..0.1,
        delay_us in 0u64..100_000,
    ) {
        let link = LinkConfig {
            delay: Duration::from_micros(delay_us),
            loss,
            duplicate,
            reorder,
            reorder_jitter: Duration::from_micros(delay_us * 2 + 1),
            corrupt,
        };
        if let Err(e) = faulty_run(seed, bytes, link, ClientMode::Echo) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The same property with small, odd-sized buffers, so that the rings wrap
/// many times and at odd offsets (the receive path verifies checksums while
/// copying into the ring, in two pieces when it wraps), and windows close.
#[test]
fn bytes_arrive_once_in_order_with_small_odd_buffers() {
    let mut failures = Vec::new();
    for seed in 0..1000u64 {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let link = random_link(&mut rng);
        let bytes = rng.below(30_000);
        let cfg = Config {
            msl: Duration::from_secs(5),
            recv_buffer: 1999 + rng.below(3000) as usize,
            send_buffer: 1001 + rng.below(3000) as usize,
            ..Config::default()
        };
        if let Err(e) = faulty_run_with(seed, bytes, link, ClientMode::Echo, cfg) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs failed; first: {}",
        failures.len(),
        failures[0]
    );
}

/// The same property with segmentation and checksum offload on at both
/// ends (`Config::gso_max_size`, `Config::checksum_offload`): the stacks
/// send packets of many segments with partial checksums, and the
/// simulator's drain (`poll_transmit`) cuts and completes them in
/// software, as the device would; losses, retransmissions, fast recovery
/// and SACK all run on super-segments.
#[test]
fn bytes_arrive_once_in_order_with_segmentation_offload() {
    let mut failures = Vec::new();
    let mut supers = 0;
    for seed in 0..1000u64 {
        let mut rng = Rng::new(seed ^ 0x00ff_10ad);
        let link = random_link(&mut rng);
        let bytes = rng.below(300_000);
        let cfg = Config {
            msl: Duration::from_secs(5),
            gso_max_size: Some(3000 + rng.below(62_536) as usize),
            checksum_offload: true,
            ..Config::default()
        };
        match faulty_run_with(seed, bytes, link, ClientMode::Echo, cfg) {
            Ok(n) => supers += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs failed; first: {}",
        failures.len(),
        failures[0]
    );
    println!("{supers} super-segments");
    assert!(supers > 10_000, "super-segments were sent: {supers}");
}
