//! Scenarios where one side is gone: a peer that restarted and forgot the
//! connection (`half-open`), a SYN that nobody answers (`syn-timeout`).

use std::time::Duration;

use synack_core::{Error, Instant, TraceKind};
use synack_wire::TcpFlags;

use super::{
    after_units, client_of, config, expect_states, link, server_addr, sim_with, summary, Options,
    Outcome, CLIENT, LIMIT, SERVER,
};
use crate::record::Record;
use crate::sim::{Client, ClientMode, EchoServer, ServerMode};
use synack_core::State::*;

/// When the server's host crashes and comes back, in time units.
const RESTART_AT: u32 = 2;
/// When the client, unaware, sends its second half, in time units.
const SECOND_ROUND_AT: u32 = 5;
/// The smallest cap RFC 6298 (2.5) allows on the RTO.
const RTO_CAP_FLOOR: Duration = Duration::from_secs(60);

/// RFC 9293 §3.5.2 (figure 10/11): the server restarts and its stack forgets
/// the connection; the client's next data segment reaches a stack with no
/// such connection, which answers with RST (§3.10.7.1), and the client's
/// application gets "connection reset".
pub(super) fn half_open(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(2048).max(2);
    let restart_at = after_units(opts, RESTART_AT);
    let second_round = ClientMode::TwoRounds(after_units(opts, SECOND_ROUND_AT));
    let client = Client::echo(server_addr(), bytes, second_round);
    let server = EchoServer::new(server_addr(), ServerMode::Echo);
    let mut sim = sim_with(opts, link(opts, 0.0), client, server, config(opts));
    sim.restart_at(restart_at, SERVER);
    sim.run(LIMIT);
    let verdict = (|| {
        let c = client_of(&sim);
        if c.received != bytes / 2 || c.mismatch {
            return Err(format!(
                "the first round echoed {} of {} bytes",
                c.received,
                bytes / 2
            ));
        }
        let rst_after_restart = sim.records().iter().any(|r| {
            matches!(r, Record::Trace { host, event } if *host == SERVER
                && event.at > restart_at
                && matches!(event.kind, TraceKind::Send { seg, .. } if seg.flags.rst()))
        });
        if !rst_after_restart {
            return Err("the restarted server never sent an RST".into());
        }
        if c.outcome != Some(Err(Error::Reset)) {
            return Err(format!("expected connection reset, got {:?}", c.outcome));
        }
        expect_states(
            sim.records(),
            CLIENT,
            "the client",
            &[Closed, SynSent, Established, Closed],
        )?;
        Ok(summary(
            &sim,
            "the restarted server answered the old connection's data with RST: connection reset",
        ))
    })();
    Outcome { sim, verdict }
}

/// MUST-23: a SYN that draws no answer is retransmitted with exponential
/// backoff (RFC 6298 §5.5) for at least 3 minutes, then connect fails.
pub(super) fn syn_timeout(opts: &Options) -> Outcome {
    let client = Client::echo(server_addr(), 16, ClientMode::Echo);
    let server = EchoServer::new(server_addr(), ServerMode::Echo);
    let mut sim = sim_with(opts, link(opts, 0.0), client, server, config(opts));
    // Nothing the client sends reaches the server.
    sim.set_drop_rule(Box::new(|from, _| from == CLIENT));
    sim.run(LIMIT);
    let verdict = (|| {
        let c = client_of(&sim);
        if c.outcome != Some(Err(Error::TimedOut)) {
            return Err(format!(
                "expected connection timed out, got {:?}",
                c.outcome
            ));
        }
        expect_states(
            sim.records(),
            CLIENT,
            "the client",
            &[Closed, SynSent, Closed],
        )?;
        let syns = syn_times(sim.records());
        let gave_up = sim.records().iter().rev().find_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::State { to: Closed, .. } => Some(event.at),
                _ => None,
            },
            _ => None,
        });
        let (Some(&first), Some(end)) = (syns.first(), gave_up) else {
            return Err("no SYN was sent or the client never gave up".into());
        };
        let waits: Vec<Duration> = syns
            .windows(2)
            .map(|w| w[1].saturating_since(w[0]))
            .chain([end.saturating_since(*syns.last().unwrap_or(&first))])
            .collect();
        // RFC 6298 §5.5 doubles the RTO; (2.5) allows a cap of 60 s or more.
        if let Some(w) = waits
            .windows(2)
            .find(|w| w[1] < w[0] * 2 && (w[1] < RTO_CAP_FLOOR || w[1] < w[0]))
        {
            return Err(format!(
                "the wait went from {:?} to {:?}: neither doubled nor at a cap of at least 60 s",
                w[0], w[1]
            ));
        }
        let total = end.saturating_since(first);
        if total < Duration::from_secs(180) {
            return Err(format!(
                "gave up after {:.0} s, before MUST-23's 3 minutes",
                total.as_secs_f64()
            ));
        }
        let waits: Vec<String> = waits
            .iter()
            .map(|w| format!("{:.0}", w.as_secs_f64()))
            .collect();
        Ok(summary(
            &sim,
            &format!(
                "{} SYNs, waits of {} s (doubling, then capped), connection timed out {:.0} s after the first",
                syns.len(),
                waits.join("+"),
                total.as_secs_f64()
            ),
        ))
    })();
    Outcome { sim, verdict }
}

/// When the client sent each SYN (first and retransmissions).
fn syn_times(records: &[Record]) -> Vec<Instant> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host, event } if *host == CLIENT => match event.kind {
                TraceKind::Send { seg, .. } if seg.flags == TcpFlags::SYN => Some(event.at),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
