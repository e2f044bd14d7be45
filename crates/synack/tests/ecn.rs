//! ECN (RFC 3168) between two synack stacks in the simulator: which
//! configurations agree to it, and a bulk transfer across a bottleneck that
//! marks CE above a threshold (and drops Not-ECT packets there, as a router
//! would): the ECN flow loses nothing and backs off on the marks; the same
//! flow without ECN loses packets at the same queue.

use std::net::SocketAddr;
use std::time::Duration;

use synack::core::{Config, Ecn, Instant, TraceKind};
use synack::record::Record;
use synack::sim::{ecn_field, Bottleneck, Client, LinkConfig, QueueLimit, Sim, Sink};
use synack::sim::{CLIENT, CLIENT_IP, SERVER, SERVER_IP};
use synack_wire::{parse_packet, ECT0};

fn server() -> SocketAddr {
    SocketAddr::new(SERVER_IP, 9)
}

/// What a run of one upload shows.
struct Run {
    /// Data packets the client put on the wire, and how many were ECT(0).
    data: usize,
    ect: usize,
    /// The sink read every byte, intact, to the FIN.
    intact: bool,
    /// When the last byte was read.
    done: Option<Instant>,
    sim: Sim,
}

fn upload(client: Ecn, server_ecn: Ecn, link: LinkConfig, bytes: u64) -> Run {
    let cfg = |ecn| Config {
        ecn,
        send_buffer: 4 << 20,
        recv_buffer: 4 << 20,
        ..Config::default()
    };
    let mut sim = Sim::new(7, link).record(true).capture(true);
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg(client),
        Box::new(Client::upload(server(), bytes)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        cfg(server_ecn),
        Box::new(Sink::new(server())),
    );
    sim.run(Instant::from_secs(120));
    let (mut data, mut ect) = (0, 0);
    for (_, p) in sim.captured() {
        let Ok(s) = parse_packet(p) else { continue };
        if s.src == CLIENT_IP && !s.payload.is_empty() {
            data += 1;
            ect += usize::from(ecn_field(p) == Some(ECT0));
        }
    }
    let sink = sim.app(SERVER).as_any().downcast_ref::<Sink>().unwrap();
    let got = sink.conns.first().map(|c| c.1).unwrap_or_default();
    Run {
        data,
        ect,
        intact: got.bytes == bytes && !got.mismatch && got.eof,
        done: got.last_at,
        sim,
    }
}

/// RFC 3168 §6.1.1 end to end, every pair of settings: ECN is in use
/// (every data packet of the client ECT(0)) exactly when the client asks
/// (`On`) and the server accepts (not `Off`); otherwise no packet is ECT.
#[test]
fn rfc3168_6_1_1_negotiation_matrix_between_two_stacks() {
    let modes = [Ecn::Off, Ecn::AcceptWhenAsked, Ecn::On];
    for c in modes {
        for s in modes {
            let r = upload(
                c,
                s,
                LinkConfig::with_delay(Duration::from_millis(5)),
                100_000,
            );
            assert!(r.intact, "{c:?} -> {s:?}");
            let agreed = c == Ecn::On && s != Ecn::Off;
            let want = if agreed { r.data } else { 0 };
            assert!(r.data > 50, "{c:?} -> {s:?}");
            assert_eq!(r.ect, want, "{c:?} -> {s:?}: {} of {}", r.ect, r.data);
        }
    }
}

/// 20 Mbit/s, 20 ms round trip, a queue of 100 packets that marks (or, for
/// Not-ECT packets, drops) above 20.
fn marking_link() -> LinkConfig {
    let mut b = Bottleneck::new(20_000_000, QueueLimit::Packets(100));
    b.ce_threshold = Some(QueueLimit::Packets(20));
    LinkConfig {
        bottleneck: Some(b),
        ..LinkConfig::with_delay(Duration::from_millis(10))
    }
}

/// The client's congestion window after each change.
fn windows(sim: &Sim) -> Vec<u32> {
    sim.records()
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::Cwnd { cwnd, .. } => Some(cwnd),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// RFC 3168 §6.1.2 across a marking bottleneck: 8 MiB with ECN crosses
/// with no packet lost and none resent, the marks answered by window
/// reductions (each traced as a `cwnd` event that lowers the window); the
/// same transfer without ECN loses packets at the threshold and resends
/// them. Both deliver every byte.
#[test]
fn rfc3168_an_ecn_flow_backs_off_on_marks_without_loss() {
    let bytes = 8 << 20;
    let ecn = upload(Ecn::On, Ecn::AcceptWhenAsked, marking_link(), bytes);
    let plain = upload(Ecn::Off, Ecn::AcceptWhenAsked, marking_link(), bytes);
    assert!(ecn.intact && plain.intact);
    let (es, ps) = (ecn.sim.link_stats(), plain.sim.link_stats());
    let client = ecn.sim.stack(CLIENT).stats();
    let msg = format!(
        "ECN: {es:?}, {} reductions, {} resent; plain: {ps:?}, {} resent",
        client.ecn_reductions,
        client.retransmissions,
        plain.sim.stack(CLIENT).stats().retransmissions
    );
    assert!(es.ce_marks > 0, "{msg}");
    assert_eq!(es.queue_drops, 0, "no loss with ECN: {msg}");
    assert_eq!(client.retransmissions, 0, "{msg}");
    assert_eq!(client.retransmission_timeouts, 0, "{msg}");
    assert!(client.ecn_reductions >= 2, "{msg}");
    // Once per window: far fewer reductions than marks.
    assert!(client.ecn_reductions * 4 < es.ce_marks, "{msg}");
    let w = windows(&ecn.sim);
    let drops = w.windows(2).filter(|p| p[1] < p[0]).count() as u64;
    assert!(drops >= client.ecn_reductions, "{drops} falls in {w:?}");
    assert_eq!(ecn.ect, ecn.data, "every data packet ECT(0)");
    // Without ECN the threshold drops instead of marking.
    assert!(ps.queue_drops > 0 && ps.ce_marks == 0, "{msg}");
    assert!(plain.sim.stack(CLIENT).stats().retransmissions > 0, "{msg}");
    // Figures for the report (not asserted: the simulator's clock).
    let secs = |r: &Run| r.done.map_or(f64::NAN, |t| t.secs_f64());
    eprintln!(
        "ecn: done at {:.3} s; plain: done at {:.3} s; {msg}",
        secs(&ecn),
        secs(&plain)
    );
}
