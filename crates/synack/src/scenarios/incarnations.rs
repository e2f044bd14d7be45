//! Scenarios about two incarnations of one 4-tuple: a segment of the earlier
//! one, held up in the network, reaches the later one. `old-duplicate-syn`
//! (RFC 9293 §3.5, figure 8) is why the handshake has three messages;
//! `old-duplicate-data` (§3.4.2, §3.6) is what TIME-WAIT is for.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use synack_core::{Error, Instant, State, TraceKind};
use synack_wire::TcpFlags;

use super::{
    after_units, check_client, config, expect_states, link, names, server_addr, summary, time_unit,
    Options, Outcome, CLIENT, CLIENT_IP, LIMIT, SERVER,
};
use crate::record::{states, Record};
use crate::sim::{Client, ClientMode, EchoServer, Incarnations, ServerMode, Sim};
use synack_core::State::*;

/// The client's fixed address and port: both incarnations use it.
fn client_addr(port: u16) -> SocketAddr {
    SocketAddr::new(CLIENT_IP, port)
}

fn two_incarnations_sim(opts: &Options, first: Client, second: Client) -> Sim {
    let mut sim = Sim::new(opts.seed, link(opts, 0.0))
        .record(true)
        .capture(true);
    let client = Incarnations {
        clients: vec![first, second],
    };
    let server = EchoServer::new(server_addr(), ServerMode::Echo);
    sim.add_host("client", &[CLIENT_IP], config(opts), Box::new(client));
    sim.add_host(
        "server",
        &[super::SERVER_IP],
        config(opts),
        Box::new(server),
    );
    sim
}

fn incarnation(sim: &Sim, i: usize) -> &Client {
    let app = sim
        .app(CLIENT)
        .as_any()
        .downcast_ref::<Incarnations>()
        .expect("the client host runs Incarnations");
    &app.clients[i]
}

/// When the earlier attempt gives up (before its first retransmission).
const GIVE_UP_AT: Instant = Instant::from_millis(500);
/// When the client tries again, from the same port.
const RETRY_AT: Instant = Instant::from_secs(3);
/// How long the network holds the first SYN: it arrives just after the
/// second attempt's SYN left.
const OLD_SYN_HOLD: Duration = Duration::from_millis(3005);
/// How long the network holds the second SYN, so that it reaches the
/// server after the RST has (the "..." of figure 8's line 2): the old SYN
/// arrives 5 ms after the new one left, and its SYN-ACK and the RST take a
/// one-way delay each.
fn new_syn_hold(delay: Duration) -> Duration {
    Duration::from_millis(10) + delay * 3
}

/// Figure 8: an old SYN reaches the server before the new one; the server
/// answers it; the client, which never sent that SYN in this incarnation,
/// answers the SYN-ACK with RST; the server drops the half-open connection
/// (back to LISTEN, §3.10.7.4) and the new SYN opens the real connection.
pub(super) fn old_duplicate_syn(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(1024);
    let local = client_addr(5000);
    let first = Client::echo(server_addr(), 0, ClientMode::AbortAt(GIVE_UP_AT)).from_local(local);
    let second = Client::echo(server_addr(), bytes, ClientMode::Echo)
        .from_local(local)
        .starting_at(RETRY_AT);
    let mut sim = two_incarnations_sim(opts, first, second);
    let mut syns = 0;
    let new_hold = new_syn_hold(opts.delay);
    sim.set_hold_rule(Box::new(move |from, seg| {
        if from != CLIENT || seg.tcp.flags != TcpFlags::SYN {
            return None;
        }
        syns += 1;
        match syns {
            1 => Some(OLD_SYN_HOLD),
            2 => Some(new_hold),
            _ => None,
        }
    }));
    sim.run(LIMIT);
    let verdict = check_old_syn(&sim, bytes);
    if let Some(i) = first_send(sim.records(), SERVER, |f| {
        f == TcpFlags::SYN | TcpFlags::ACK
    }) {
        sim.add_note(
            i,
            SERVER,
            "with two messages it would now be ESTABLISHED with nobody",
        );
    }
    Outcome { sim, verdict }
}

fn check_old_syn(sim: &Sim, bytes: u64) -> Result<String, String> {
    let old = incarnation(sim, 0);
    if old.outcome != Some(Err(Error::Aborted)) {
        return Err(format!("the first attempt ended {:?}", old.outcome));
    }
    let synack = first_send(sim.records(), SERVER, |f| {
        f == TcpFlags::SYN | TcpFlags::ACK
    })
    .ok_or("the server never answered a SYN")?;
    let Record::Trace { event, .. } = &sim.records()[synack] else {
        return Err("no SYN-ACK record".into());
    };
    let TraceKind::Send {
        seg: old_synack, ..
    } = event.kind
    else {
        return Err("no SYN-ACK record".into());
    };
    let rst = sim.records().iter().any(|r| {
        matches!(r, Record::Trace { host, event } if *host == CLIENT
            && matches!(event.kind, TraceKind::Send { seg, .. }
                if seg.flags == TcpFlags::RST && seg.seq == old_synack.ack))
    });
    if !rst {
        return Err("the client did not answer the old SYN's SYN-ACK with RST".into());
    }
    check_client(incarnation(sim, 1), bytes)?;
    expect_states(
        sim.records(),
        SERVER,
        "the server",
        &[
            Listen,
            SynReceived,
            Closed,
            SynReceived,
            Established,
            CloseWait,
            LastAck,
            Closed,
        ],
    )?;
    Ok(summary(
        sim,
        &format!("the old SYN's connection was reset, the new one echoed {bytes} bytes intact"),
    ))
}

/// The index of the first segment `host` sent with flags `pred` accepts.
fn first_send(
    records: &[Record],
    host: crate::record::HostId,
    pred: impl Fn(TcpFlags) -> bool,
) -> Option<usize> {
    records.iter().position(|r| {
        matches!(r, Record::Trace { host: h, event } if *h == host
            && matches!(event.kind, TraceKind::Send { seg, .. } if pred(seg.flags)))
    })
}

/// When the client opens its second connection on the same 4-tuple, in
/// time units.
const REOPEN_AT: u32 = 2;
/// When the second connection sends its second half, in time units: it is
/// open and idle when the old segment surfaces.
const SECOND_ROUND_AT: u32 = 4;
/// How long the network holds the server's first data segment, in time
/// units.
const OLD_DATA_HOLD: u32 = 3;

/// A data segment of the first connection is held in the network, then
/// retransmitted; the first connection ends, and the client opens a second
/// one from the same port. With TIME-WAIT (2×MSL) the 4-tuple is still taken
/// when the old segment surfaces, so it lands on the TIME-WAIT and the new
/// connection must wait. With `--msl 0` it reaches the new connection, where
/// what keeps it out is the ISN (RFC 6528: the new incarnation's numbers
/// start where the clock has moved) and the timestamps (PAWS, RFC 7323).
pub(super) fn old_duplicate_data(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(1024);
    let local = client_addr(5001);
    let first = Client::echo(server_addr(), bytes, ClientMode::Echo).from_local(local);
    let second_round = ClientMode::TwoRounds(after_units(opts, SECOND_ROUND_AT));
    let second = Client::echo(server_addr(), bytes, second_round)
        .from_local(local)
        .starting_at(after_units(opts, REOPEN_AT))
        .retrying_while_busy();
    let hold = time_unit(opts) * OLD_DATA_HOLD;
    let mut sim = two_incarnations_sim(opts, first, second);
    let held: Rc<Cell<Option<u32>>> = Rc::default();
    let held_in = held.clone();
    sim.set_hold_rule(Box::new(move |from, seg| {
        if from != SERVER || seg.payload.is_empty() || held_in.get().is_some() {
            return None;
        }
        held_in.set(Some(seg.tcp.seq));
        Some(hold)
    }));
    sim.run(LIMIT);
    let verdict = held
        .get()
        .ok_or_else(|| "the server sent no data".to_string())
        .and_then(|seq| check_old_data(&sim, bytes, seq, hold, opts.msl.is_zero()));
    Outcome { sim, verdict }
}

fn check_old_data(
    sim: &Sim,
    bytes: u64,
    seq: u32,
    hold: Duration,
    no_time_wait: bool,
) -> Result<String, String> {
    check_client(incarnation(sim, 0), bytes)?;
    check_client(incarnation(sim, 1), bytes)?;
    let arrived = sim
        .records()
        .iter()
        .position(|r| {
            matches!(r, Record::Trace { host, event } if *host == CLIENT
                && event.at.micros() >= hold.as_micros() as u64
                && matches!(event.kind, TraceKind::Recv { seg } if seg.seq == seq && seg.len > 0))
        })
        .ok_or("the held segment never reached the client")?;
    let at = sim.records()[arrived].at();
    let state = state_at(sim.records(), at);
    let fate = sim.records()[arrived + 1..]
        .iter()
        .find_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT && event.at == at => {
                match event.kind {
                    TraceKind::Drop { reason } => Some(reason),
                    _ => None,
                }
            }
            _ => None,
        })
        .unwrap_or("answered with an ACK");
    match (no_time_wait, state) {
        (false, Some(TimeWait)) => Ok(summary(
            sim,
            &format!(
                "the old segment landed on TIME-WAIT ({fate}); the new connection waited for 2×MSL and echoed {bytes} bytes intact"
            ),
        )),
        (true, Some(Established)) => Ok(summary(
            sim,
            &format!(
                "without TIME-WAIT the old segment reached the new connection on the same 4-tuple \
                 and was dropped ({fate}); {}",
                distance(sim.records(), arrived, seq)
            ),
        )),
        (false, _) if hold >= sim.stack(CLIENT).config().msl => Err(format!(
            "the segment was held {:.0} s, longer than the MSL TIME-WAIT counts on: it outlived TIME-WAIT (use a larger --msl)",
            hold.as_secs_f64()
        )),
        (_, s) => Err(format!(
            "the old segment arrived with the client in {}, not where expected (states {})",
            s.map_or("no state", State::name),
            names(&states(sim.records(), CLIENT))
        )),
    }
}

/// Where the old segment's sequence number lay from the new connection's
/// point of view: its RCV.NXT is the `ack` of what the client sent next.
fn distance(records: &[Record], arrived: usize, seq: u32) -> String {
    let rcv_nxt = records[arrived..].iter().find_map(|r| match r {
        Record::Trace { host, event } if *host == CLIENT => match event.kind {
            TraceKind::Send { seg, .. } if seg.flags.ack() => Some(seg.ack),
            _ => None,
        },
        _ => None,
    });
    match rcv_nxt {
        Some(nxt) => format!(
            "its sequence number is {} bytes behind the new RCV.NXT, outside the window: \
             the new ISN is where the 4 µs ISN clock had moved",
            nxt.wrapping_sub(seq)
        ),
        None => "the new connection sent nothing after it".to_owned(),
    }
}

/// The client's state at `at` (the last state it entered at or before it).
fn state_at(records: &[Record], at: Instant) -> Option<State> {
    records
        .iter()
        .rev()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT && event.at <= at => {
                match event.kind {
                    TraceKind::State { to, .. } => Some(to),
                    _ => None,
                }
            }
            _ => None,
        })
        .next()
}
