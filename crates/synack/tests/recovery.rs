//! Fast retransmit and recovery (RFC 5681 §3.2, RFC 6582), end to end.

use std::net::SocketAddr;
use std::time::Duration;

use synack::core::{Config, Instant, TraceKind};
use synack::record::Record;
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT, CLIENT_IP, SERVER_IP};

/// Runs a 200 KB echo where the client's data segments numbered in `lose`
/// (counting from 0) are lost once; returns (retransmission times after the
/// loss, succeeded).
fn run(lose: &'static [usize], sack: bool) -> (Vec<(Instant, bool)>, bool, Sim) {
    let cfg = Config {
        sack,
        ..Config::default()
    };
    let server = SocketAddr::new(SERVER_IP, 7);
    let mut sim = Sim::new(1, LinkConfig::with_delay(Duration::from_millis(10))).record(true);
    let mut n = 0usize;
    sim.set_drop_rule(Box::new(move |from, seg| {
        if from == CLIENT && !seg.payload.is_empty() {
            n += 1;
            return lose.contains(&(n - 1));
        }
        false
    }));
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg.clone(),
        Box::new(Client::echo(server, 200_000, ClientMode::Echo)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        cfg,
        Box::new(EchoServer::new(server, ServerMode::Echo)),
    );
    sim.run(Instant::from_secs(600));
    let ok = sim
        .app(CLIENT)
        .as_any()
        .downcast_ref::<Client>()
        .unwrap()
        .succeeded();
    let rtx = sim
        .records()
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::Send { seg, rtx: true } if seg.len > 0 => Some((event.at, true)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    (rtx, ok, sim)
}

fn loss_time(sim: &Sim) -> Instant {
    sim.records()
        .iter()
        .find_map(|r| match r {
            Record::Link { at, from, .. } if *from == CLIENT => Some(*at),
            _ => None,
        })
        .expect("a loss")
}

/// 5681-7: one lost segment in a window is resent after the third duplicate
/// ACK, long before the 1 s RTO, and only it is resent.
#[test]
fn rfc5681_7_fast_retransmit_without_timeout() {
    let (rtx, ok, sim) = run(&[8], false);
    assert!(ok);
    assert_eq!(rtx.len(), 1, "exactly one retransmission: {rtx:?}");
    let lost_at = loss_time(&sim);
    assert!(
        rtx[0].0 - lost_at < Duration::from_millis(200),
        "{rtx:?} lost at {lost_at:?}"
    );
}

/// RFC 6582 (no SACK): two losses in one window are both repaired in one
/// recovery (the partial ACK resends the second hole), without a timeout.
#[test]
fn rfc6582_partial_ack_resends_the_next_hole() {
    let (rtx, ok, sim) = run(&[8, 10], false);
    assert!(ok);
    assert_eq!(rtx.len(), 2, "{rtx:?}");
    let lost_at = loss_time(&sim);
    assert!(
        rtx.iter()
            .all(|(t, _)| *t - lost_at < Duration::from_millis(300)),
        "{rtx:?}"
    );
}

/// RFC 2018 / RFC 6675: with SACK, three holes in one window are all
/// resent within one round trip of the loss being noticed (NewReno needs a
/// round trip per hole), each exactly once.
#[test]
fn rfc2018_sack_repairs_three_holes_in_one_round_trip() {
    let (rtx, ok, _) = run(&[8, 10, 12], true);
    assert!(ok);
    assert_eq!(rtx.len(), 3, "{rtx:?}");
    let spread = rtx[2].0 - rtx[0].0;
    assert!(
        spread < Duration::from_millis(20),
        "all within one RTT (20 ms): {rtx:?}"
    );
    let (plain, ok, _) = run(&[8, 10, 12], false);
    assert!(ok);
    assert!(
        plain[2].0 - plain[0].0 >= Duration::from_millis(40),
        "NewReno: {plain:?}"
    );
}
