//! Fast retransmit and recovery (RFC 5681 §3.2, RFC 6582, RFC 6675), end
//! to end.

use std::net::SocketAddr;
use std::time::Duration;

use synack::core::{Config, CongestionControlChoice, Instant, TraceKind};
use synack::record::Record;
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT, CLIENT_IP, SERVER, SERVER_IP};

/// Runs a 200 KB echo where the client's data segments numbered in `lose`
/// (counting from 0) are lost once; returns (retransmission times after the
/// loss, succeeded).
fn run(lose: &'static [usize], sack: bool) -> (Vec<(Instant, bool)>, bool, Sim) {
    run_with(lose, sack, false)
}

/// As [`run`]; with `growing`, the server plays a receiver whose window
/// grows on every segment it sends, as Linux's receive autotuning does:
/// from a quarter of its real window, one unit (of its window scale) more
/// each time, never above the real one. Its buffer (1 MiB) keeps the real
/// window far above that for the whole run.
fn run_with(
    lose: &'static [usize],
    sack: bool,
    growing: bool,
) -> (Vec<(Instant, bool)>, bool, Sim) {
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
    let mut server_cfg = cfg.clone();
    if growing {
        server_cfg.recv_buffer = 1 << 20;
        let (mut base, mut grown) = (None, 0u16);
        sim.set_window_rule(Box::new(move |from, seg| {
            if from != SERVER || seg.tcp.flags.syn() {
                return None;
            }
            let start = *base.get_or_insert(seg.tcp.window / 4);
            grown += 1;
            Some(seg.tcp.window.min(start + grown))
        }));
    }
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg.clone(),
        Box::new(Client::echo(server, 200_000, ClientMode::Echo)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        server_cfg,
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

/// Data segments the client sent for the first time in `[from, to]`.
fn new_data_sent(sim: &Sim, from: Instant, to: Instant) -> usize {
    sim.records()
        .iter()
        .filter(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => matches!(
                event.kind,
                TraceKind::Send { seg, rtx: false } if seg.len > 0 && event.at >= from && event.at <= to
            ),
            _ => false,
        })
        .count()
}

/// The windows of the segments the server sent after its SYN-ACK.
fn server_windows(sim: &Sim) -> Vec<u16> {
    sim.records()
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::Recv { seg } if !seg.flags.syn() => Some(seg.win),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// 6675-1: with SACK, one segment lost in a large window, to a receiver
/// whose window grows on every ACK (so no two of its duplicate ACKs carry
/// the same window, and RFC 5681's rule (e) never counts them): the
/// duplicates are counted by RFC 6675 §2's definition, and the loss is
/// repaired by fast retransmit within one round trip (20 ms) of being
/// sent, with no retransmission timeout.
#[test]
fn rfc6675_1_growing_window_dupacks_start_fast_retransmit() {
    let (rtx, ok, sim) = run_with(&[60], true, true);
    assert!(ok);
    let wins = server_windows(&sim);
    assert!(
        wins.windows(2).all(|w| w[1] > w[0]),
        "the window grows on every segment: {wins:?}"
    );
    let st = sim.stack(CLIENT).stats();
    assert_eq!(st.retransmission_timeouts, 0, "{st:?}");
    assert_eq!(st.fast_recoveries, 1, "{st:?}");
    assert_eq!(rtx.len(), 1, "only the lost segment is resent: {rtx:?}");
    let lost_at = loss_time(&sim);
    assert!(
        rtx[0].0 - lost_at <= Duration::from_millis(20),
        "{rtx:?} lost at {lost_at:?}"
    );
    let window = new_data_sent(&sim, lost_at, rtx[0].0);
    assert!(window >= 30, "a large window: {window} segments");
}

/// 5681-7: without SACK the duplicate ACK keeps RFC 5681's definition: a
/// changed window makes an ACK no duplicate, so against the same growing
/// window only the timeout repairs the loss.
#[test]
fn rfc5681_7_without_sack_a_changed_window_is_no_duplicate() {
    let (rtx, ok, sim) = run_with(&[60], false, true);
    assert!(ok);
    let st = sim.stack(CLIENT).stats();
    assert_eq!(st.fast_recoveries, 0, "{st:?}");
    assert_eq!(st.retransmission_timeouts, 1, "{st:?}");
    assert!(
        rtx[0].0 - loss_time(&sim) >= Duration::from_secs(1),
        "{rtx:?}"
    );
}

/// Faults for [`run_faults`], by the index (from 0) of the client's data
/// segment transmissions.
#[derive(Default)]
struct Faults {
    /// Lost.
    lose: Vec<usize>,
    /// Lost on their first transmission: the data segments starting at
    /// these sequence numbers.
    lose_seq: Vec<u32>,
    /// The first transmission of the data segment at this sequence number
    /// delivered this much later than the link's delay.
    hold: Vec<(u32, Duration)>,
    /// A delay spike: what the server sends in `[from, to)` arrives at
    /// `to` plus the link's delay, in the order it was sent (a queue
    /// that stalled).
    spike: Option<(Instant, Instant)>,
    /// The size of the echo (200 KB when 0).
    bytes: usize,
    /// The server's receive buffer, when not the default.
    recv_buffer: Option<usize>,
    /// Run the client with Reno (ssthresh = FlightSize / 2) instead of the
    /// default CUBIC.
    reno: bool,
}

/// The 200 KB echo of [`run`], with SACK, under `f`.
fn run_faults(f: Faults) -> Sim {
    let mut cfg = Config::default();
    if f.reno {
        cfg.congestion_control = CongestionControlChoice::Reno;
    }
    let server = SocketAddr::new(SERVER_IP, 7);
    let mut sim = Sim::new(1, LinkConfig::with_delay(Duration::from_millis(10))).record(true);
    let (lose, mut hold, spike) = (f.lose, f.hold, f.spike);
    let bytes = if f.bytes == 0 { 200_000 } else { f.bytes };
    let mut server_cfg = cfg.clone();
    if let Some(b) = f.recv_buffer {
        server_cfg.recv_buffer = b;
    }
    let mut lose_seq = f.lose_seq;
    let mut n = 0usize;
    sim.set_drop_rule(Box::new(move |from, seg| {
        if from == CLIENT && !seg.payload.is_empty() {
            n += 1;
            if let Some(i) = lose_seq.iter().position(|&s| s == seg.tcp.seq) {
                lose_seq.remove(i);
                return true;
            }
            return lose.contains(&(n - 1));
        }
        false
    }));
    // The server's clock, from its timestamps: its SYN-ACK leaves one
    // link delay (10 ms) after the client's SYN at 0.
    let mut ts_base = None;
    sim.set_hold_rule(Box::new(move |from, seg| {
        if from == CLIENT && !seg.payload.is_empty() {
            let i = hold.iter().position(|&(s, _)| s == seg.tcp.seq)?;
            return Some(hold.remove(i).1);
        }
        let (a, b) = spike?;
        if from != SERVER {
            return None;
        }
        let tsval = u64::from(seg.tcp.options.timestamps?.0);
        let base = *ts_base.get_or_insert(tsval.wrapping_sub(10));
        let now = Instant::from_millis(tsval.wrapping_sub(base));
        (now >= a && now < b).then(|| b - now)
    }));
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg.clone(),
        Box::new(Client::echo(server, bytes as u64, ClientMode::Echo)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        server_cfg,
        Box::new(EchoServer::new(server, ServerMode::Echo)),
    );
    sim.run(Instant::from_secs(600));
    let ok = sim
        .app(CLIENT)
        .as_any()
        .downcast_ref::<Client>()
        .unwrap()
        .succeeded();
    assert!(ok, "the echo completes");
    sim
}

/// The client's trace, in order: (time, the segment, whether it was sent
/// (else received), whether a retransmission).
fn client_trace(sim: &Sim) -> Vec<(Instant, synack::core::SegmentInfo, bool, bool)> {
    sim.records()
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::Send { seg, rtx } => Some((event.at, seg, true, rtx)),
                TraceKind::Recv { seg } => Some((event.at, seg, false, false)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The client's data retransmissions: (time, sequence number).
fn data_rtx(sim: &Sim) -> Vec<(Instant, u32)> {
    client_trace(sim)
        .into_iter()
        .filter(|(_, s, sent, rtx)| *sent && *rtx && s.len > 0)
        .map(|(at, s, _, _)| (at, s.seq))
        .collect()
}

/// The sequence numbers of the data segments the client sent in a run
/// without faults, in order.
fn data_segments(bytes: usize, recv_buffer: Option<usize>) -> Vec<u32> {
    let sim = run_faults(Faults {
        bytes,
        recv_buffer,
        ..Faults::default()
    });
    client_trace(&sim)
        .iter()
        .filter(|(_, s, sent, _)| *sent && s.len > 0)
        .map(|(_, s, _, _)| s.seq)
        .collect()
}

/// RFC 8985 §7: the last data segment lost. Nothing follows it to be
/// SACKed, so only a probe or the timeout can repair it. With one segment
/// in flight the probe goes once that segment's ACK is overdue: a round
/// trip after it left, plus the 200 ms the peer may delay it, plus a 2 ms
/// margin; it left with the segments the last ACK acknowledged, so about
/// 200 ms after that ACK (it was 2·SRTT + 200 ms after it). The probe (the
/// last segment again, there being no new data) repairs the loss. No
/// timeout: the RTO would wait a second.
#[test]
fn rfc8985_tlp_repairs_a_lost_tail_segment() {
    let segs = data_segments(0, None);
    let sim = run_faults(Faults {
        lose_seq: segs[segs.len() - 1..].to_vec(),
        ..Faults::default()
    });
    let st = sim.stack(CLIENT).stats();
    assert_eq!(st.retransmission_timeouts, 0, "{st:?}");
    let rtx = data_rtx(&sim);
    assert_eq!(rtx.len(), 1, "one probe: {rtx:?}");
    let lost_at = loss_time(&sim);
    // The round trip the segment's ACK would take, then the delayed ACK's
    // 200 ms and the margin.
    let waited = rtx[0].0 - lost_at;
    assert!(waited <= Duration::from_millis(20 + 200 + 10), "{waited:?}");
}

/// RFC 8985 §7: the last two full segments lost, while Nagle holds the
/// short tail of the data back. With two in flight the PTO is 2·SRTT; the
/// probe sends the tail (new data goes first, §7.3), its SACK lets RACK
/// find both lost: repaired within a few round trips (20 ms), no RTO.
#[test]
fn rfc8985_tlp_then_rack_repair_a_lost_tail() {
    let segs = data_segments(0, None);
    let sim = run_faults(Faults {
        lose_seq: segs[segs.len() - 3..segs.len() - 1].to_vec(),
        ..Faults::default()
    });
    let st = sim.stack(CLIENT).stats();
    assert_eq!(st.retransmission_timeouts, 0, "{st:?}");
    let rtx = data_rtx(&sim);
    assert_eq!(rtx.len(), 2, "{rtx:?}");
    let lost_at = loss_time(&sim);
    let last = rtx[1].0 - lost_at;
    assert!(
        last <= Duration::from_millis(5 * 20),
        "{rtx:?} lost at {lost_at:?}"
    );
}

/// The sequence numbers of the client's data in the order the server
/// received them.
fn server_arrivals(sim: &Sim) -> Vec<u32> {
    sim.records()
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == SERVER => match event.kind {
                TraceKind::Recv { seg } if seg.len > 0 => Some(seg.seq),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// How many data segments sent after `seq` reached the server before it.
fn overtaken_by(arrivals: &[u32], seq: u32) -> usize {
    let at = arrivals.iter().position(|&s| s == seq).expect("arrived");
    arrivals[..at]
        .iter()
        .filter(|&&s| (s.wrapping_sub(seq) as i32) > 0)
        .count()
}

/// RFC 8985 §6.2: reordering is not loss. Two segments are each held back
/// 3 ms, long enough for three and more later ones to overtake them. The
/// first time, no reordering has been seen and three segments are SACKed
/// above the hole, which RFC 8985 §6.2 step 4 answers with a zero
/// reordering window (the DupThresh rule kept for compatibility): the
/// segment is resent, spuriously, as RFC 8985 permits. The receiver
/// reports the duplicate in a DSACK (RFC 2883), the reordering window
/// grows (to min_RTT/4 times reo_wnd_mult), and the second reordering of
/// the same depth is waited out: no retransmission, no recovery.
#[test]
fn rfc8985_reordering_window_adapts_after_a_dsack() {
    let segs = data_segments(0, None);
    let sim = run_faults(Faults {
        hold: vec![
            (segs[40], Duration::from_millis(3)),
            (segs[100], Duration::from_millis(3)),
        ],
        ..Faults::default()
    });
    let arrivals = server_arrivals(&sim);
    let rtx = data_rtx(&sim);
    // Both were overtaken by at least DupThresh segments.
    for i in [40, 100] {
        assert!(overtaken_by(&arrivals, segs[i]) >= 3, "segment {i}");
    }
    assert_eq!(rtx.len(), 1, "the first, spuriously: {rtx:?}");
    assert!(
        rtx.iter().all(|&(_, s)| s == segs[40]),
        "the second reordering causes no retransmission: {rtx:?}"
    );
    let st = sim.stack(CLIENT).stats();
    assert_eq!(st.retransmission_timeouts, 0, "{st:?}");
}

/// The client's flight (highest sequence number sent less the latest ACK
/// received) after each of its sends: (time, bytes).
fn client_flight(sim: &Sim) -> Vec<(Instant, u32)> {
    let (mut max, mut ack) = (None::<u32>, None::<u32>);
    let mut out = Vec::new();
    for (at, s, sent, _) in client_trace(sim) {
        if sent {
            let end = s.seq.wrapping_add(s.len);
            if max.is_none_or(|m| (end.wrapping_sub(m) as i32) > 0) {
                max = Some(end);
            }
            if let (Some(m), Some(a)) = (max, ack) {
                out.push((at, m.wrapping_sub(a)));
            }
        } else if s.flags.ack() {
            ack = Some(s.ack);
        }
    }
    out
}

/// RFC 3522 (Eifel detection, with timestamps) and RFC 4015's response: a
/// delay spike holds every ACK past the RTO. The timeout fires and resends
/// the first segment; the first ACK after it echoes the timestamp of the
/// original, so the timeout was spurious: the window goes back to what it
/// was (`undo`), and sending resumes from SND.MAX instead of going back.
/// Without undo the window would start again from one segment.
#[test]
fn rfc3522_a_spurious_timeout_is_undone() {
    let sim = run_faults(Faults {
        spike: Some((Instant::from_millis(70), Instant::from_millis(1400))),
        ..Faults::default()
    });
    let st = sim.stack(CLIENT).stats();
    assert_eq!(st.retransmission_timeouts, 1, "{st:?}");
    let rtx = data_rtx(&sim);
    assert_eq!(rtx.len(), 1, "only the timeout's segment: {rtx:?}");
    let flight = client_flight(&sim);
    let before = flight
        .iter()
        .filter(|(at, _)| *at < rtx[0].0)
        .map(|&(_, f)| f)
        .max()
        .unwrap();
    // The released ACKs reach the client at 1.41 s: one round trip after.
    let released = Instant::from_millis(1410);
    let after = flight
        .iter()
        .filter(|(at, _)| *at >= released && *at < released + Duration::from_millis(20))
        .map(|&(_, f)| f)
        .max()
        .unwrap_or(0);
    assert!(
        after >= before / 2,
        "window restored: {after} bytes in flight after, {before} before"
    );
}

/// RFC 6937 (PRR-SSRB): one loss in a large window. Fast recovery resends
/// it at once and repairs it in one round trip; during the recovery new
/// data goes out in proportion to what the ACKs report delivered (about
/// one segment for every two, ssthresh / RecoverFS), from the first ACKs
/// on, never more than two segments for one ACK (no burst), and the
/// recovery ends with ssthresh (half the flight at the loss) in flight.
/// Reno's window inflation sends nothing until half the window has been
/// reported, then one segment per duplicate.
#[test]
fn rfc6937_prr_spreads_the_reduction_over_the_round_trip() {
    let segs = data_segments(1_000_000, Some(4 << 20));
    let sim = run_faults(Faults {
        lose_seq: vec![segs[100]],
        bytes: 1_000_000,
        // The peer's window must not be what limits the recovery.
        recv_buffer: Some(4 << 20),
        // PRR paces down to whatever ssthresh the controller sets; Reno's
        // is the one this test computes.
        reno: true,
        ..Faults::default()
    });
    let st = sim.stack(CLIENT).stats();
    assert_eq!((st.fast_recoveries, st.retransmission_timeouts), (1, 0));
    let trace = client_trace(&sim);
    let rtx_at = trace
        .iter()
        .position(|(_, s, sent, rtx)| *sent && *rtx && s.len > 0)
        .expect("a fast retransmit");
    let lost_at = loss_time(&sim);
    assert!(trace[rtx_at].0 - lost_at <= Duration::from_millis(20));
    let point = trace[..rtx_at]
        .iter()
        .filter(|(_, _, sent, _)| *sent)
        .map(|(_, s, _, _)| s.seq.wrapping_add(s.len))
        .max_by(|a, b| (a.wrapping_sub(*b) as i32).cmp(&0))
        .unwrap();
    // FlightSize when recovery starts: from the hole to the highest
    // sequence number sent.
    let flight_at_loss = point.wrapping_sub(trace[rtx_at].1.seq);
    // New data segments sent after each ACK of the recovery.
    let mut per_ack: Vec<usize> = Vec::new();
    let mut end_flight = None;
    for (_, s, sent, rtx) in &trace[rtx_at + 1..] {
        if !sent {
            if (s.ack.wrapping_sub(point) as i32) >= 0 {
                end_flight = Some(());
                break;
            }
            per_ack.push(0);
        } else if !rtx && s.len > 0 {
            if let Some(n) = per_ack.last_mut() {
                *n += 1;
            }
        }
    }
    assert!(end_flight.is_some(), "the recovery ends");
    let total: usize = per_ack.iter().sum();
    let first_half: usize = per_ack[..per_ack.len() / 2].iter().sum();
    assert!(per_ack.len() >= 20, "a large window: {per_ack:?}");
    assert!(per_ack.iter().all(|&n| n <= 2), "no burst: {per_ack:?}");
    assert!(
        first_half * 3 >= total,
        "spread over the round trip: {per_ack:?}"
    );
    // About half the flight at the loss went out during the recovery:
    // that flight is ssthresh when it ends.
    let mss = 1448;
    let ssthresh = flight_at_loss / 2;
    let sent = total as u32 * mss;
    assert!(
        sent + 2 * mss >= ssthresh && sent <= ssthresh + mss,
        "{sent} bytes sent in recovery, ssthresh {ssthresh}: {per_ack:?}"
    );
}

/// RFC 6582 §3.2 step 1 (kept by RFC 6675 §5.1 and RACK's recovery): a
/// new recovery waits until the cumulative ACK "covers more than recover",
/// the highest sequence number sent when the last one began. One segment
/// is lost, and in its recovery the first new segment, the one starting at
/// the recovery point, is lost too. The full ACK of the first recovery
/// stops just below it, which covers "recover": RACK's loss of it starts a
/// second fast recovery at once, not a loss probe and then the 1 s RTO
/// (what the 3 % loss path showed: a timeout every ten seconds).
#[test]
fn rfc6582_a_loss_at_the_recovery_point_starts_the_next_recovery() {
    let first = data_segments(0, None)[40];
    let lose_first = || Faults {
        lose_seq: vec![first],
        ..Faults::default()
    };
    // Where the first recovery begins: the first new data after the
    // retransmission starts at the recovery point.
    let trace = client_trace(&run_faults(lose_first()));
    let resent = trace
        .iter()
        .position(|(_, s, sent, rtx)| *sent && *rtx && s.seq == first)
        .expect("the first loss is resent");
    let point = trace[resent..]
        .iter()
        .find(|(_, s, sent, rtx)| *sent && !*rtx && s.len > 0)
        .map(|(_, s, _, _)| s.seq)
        .expect("new data in the recovery");
    let sim = run_faults(Faults {
        lose_seq: vec![first, point],
        ..Faults::default()
    });
    let st = sim.stack(CLIENT).stats();
    let rtx = data_rtx(&sim);
    assert_eq!(st.retransmission_timeouts, 0, "{st:?} {rtx:?}");
    assert_eq!(st.fast_recoveries, 2, "{st:?} {rtx:?}");
    assert_eq!(
        rtx.iter().map(|r| r.1).collect::<Vec<_>>(),
        [first, point],
        "each loss resent once"
    );
}
