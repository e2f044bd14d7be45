//! Choosing the congestion controller: per stack (`Config`), per
//! connection before data flows, and the initial window (RFC 6928).

mod common;

use common::*;
use synack_core::{Config, CongestionControlChoice, Error};

#[test]
fn rfc6928_the_first_flight_is_ten_segments() {
    for cc in [
        CongestionControlChoice::Cubic,
        CongestionControlChoice::Reno,
    ] {
        let cfg = Config {
            congestion_control: cc.clone(),
            ..Config::default()
        };
        let mut p = Peer::with(cfg).listening().established();
        p.stack.send(p.now, p.id(), &vec![1u8; 100_000]).unwrap();
        assert_eq!(p.transmitted().len(), 10, "{cc:?}");
    }
}

/// One ACK for the whole first flight: Reno's slow start counts it as one
/// segment (RFC 5681 §3.1), CUBIC's HyStart++ as up to eight (RFC 9406
/// §4.3, L = 8), so the next flight tells which controller runs.
fn second_flight(p: &mut Peer) -> usize {
    p.stack.send(p.now, p.id(), &vec![1u8; 100_000]).unwrap();
    let first = p.transmitted();
    assert_eq!(first.len(), 10);
    let last = first.last().unwrap();
    p.send(
        ACK,
        p.snd_nxt,
        last.tcp.seq.wrapping_add(last.payload.len() as u32),
        &[],
    );
    p.transmitted().len()
}

#[test]
fn the_controller_is_chosen_per_connection_before_data_flows() {
    let mut p = Peer::new().listening().established();
    assert_eq!(second_flight(&mut p), 18, "CUBIC by default");
    let mut p = Peer::new().listening().established();
    let id = p.id();
    p.stack
        .set_congestion_control(id, &CongestionControlChoice::Reno)
        .unwrap();
    assert_eq!(second_flight(&mut p), 11, "Reno");
    assert_eq!(
        p.stack
            .set_congestion_control(id, &CongestionControlChoice::Cubic),
        Err(Error::InvalidState),
        "not once data is out"
    );
}
