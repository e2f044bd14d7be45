//! `congestion`: a bulk transfer over a bottleneck, so that the demo shows
//! TCP's congestion control at work: slow start doubling the window every
//! round trip until HyStart's ACK train ends it at about one BDP (on a
//! path of 4 ms or more; below that, until the queue overflows), CUBIC
//! probing on until the queue overflows, the loss that follows, its
//! recovery, and the window over time (congestion avoidance's sawtooth).

use std::time::Duration;

use synack_core::{Config, Instant, TraceKind};

use super::{
    client_of, config, names, server_addr, states, Options, Outcome, CLIENT, LIMIT, SERVER,
};
use crate::record::{HostId, Record};
use crate::sim::{Bottleneck, Client, LinkConfig, QueueLimit, Sim, Sink, CLIENT_IP, SERVER_IP};

/// The bottleneck's rate.
pub const RATE_BPS: u64 = 20_000_000;
/// What the scenario sends by default on a short path: enough for a few
/// sawteeth.
const DEFAULT_BYTES: u64 = 8 << 20;
/// What it sends by default from [`LONG_PATH`] on. There CUBIC leaves slow
/// start at about one BDP, on HyStart's ACK train, and its probing takes
/// seconds to fill the queue of one BDP: 8 MiB (3.4 s at 20 Mbit/s) ends
/// before the first loss from a one-way delay of 20 ms.
const LONG_PATH_BYTES: u64 = 32 << 20;
/// The one-way delay from which the default is [`LONG_PATH_BYTES`].
const LONG_PATH: Duration = Duration::from_millis(20);

/// The bytes sent when `--bytes` is not given, for a one-way `delay`.
fn default_bytes(delay: Duration) -> u64 {
    if delay >= LONG_PATH {
        LONG_PATH_BYTES
    } else {
        DEFAULT_BYTES
    }
}
/// The queue never holds fewer than this many full-size packets: with
/// `--delay 0` the BDP is a packet, and a window of a few segments cannot
/// draw the three duplicate ACKs of a fast retransmit, so every loss would
/// wait for the 1 s RTO.
const MIN_QUEUE: usize = 16 * 1500;
/// The share of the link rate the transfer must reach without random loss,
/// from its first data segment to the last byte read: below it something
/// stalled (an RTO per loss, a window that never grew back). Reno with a
/// queue of one BDP keeps the link busy through each halving; slow start,
/// the first loss's recovery and the headers (1448 of 1500 bytes) take the
/// rest (93 % with the defaults).
pub const MIN_GOODPUT_SHARE: f64 = 0.70;

/// The link: [`RATE_BPS`], `--delay` each way, a drop-tail queue of one
/// bandwidth-delay product, and `--loss` random loss on top (none by
/// default).
fn bottleneck_link(opts: &Options) -> LinkConfig {
    let b = Bottleneck::with_bdp_queue(RATE_BPS, opts.delay * 2, MIN_QUEUE);
    LinkConfig {
        delay: opts.delay,
        loss: opts.loss.unwrap_or(0.0) / 100.0,
        bottleneck: Some(b),
        ..LinkConfig::default()
    }
}

/// A window change of the sender, from the trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowSample {
    /// When.
    pub at: Instant,
    /// Congestion window, bytes.
    pub cwnd: u32,
    /// Slow-start threshold, bytes (`u32::MAX` before the first loss).
    pub ssthresh: u32,
}

/// The congestion window of `host`'s connections over the run, from its
/// `cwnd` trace events.
pub fn window_samples(records: &[Record], host: HostId) -> Vec<WindowSample> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host: h, event } if *h == host => match event.kind {
                TraceKind::Cwnd { cwnd, ssthresh } => Some(WindowSample {
                    at: event.at,
                    cwnd,
                    ssthresh,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A loss episode of a sender, found from its segments as RFC 6582 bounds
/// one: it starts with a retransmission and ends when the cumulative ACK
/// passes everything that had been sent when it started (the "recover"
/// point). Found this way, not from the window, so that it holds for any
/// congestion controller (an episode whose response repeats the last
/// threshold exactly is still one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossEpisode {
    /// The first retransmission.
    pub start: Instant,
    /// When the ACK passed the recover point (`None`: it never did).
    pub end: Option<Instant>,
    /// Segments retransmitted in it.
    pub retransmissions: u32,
    /// The window just before it started.
    pub cwnd_before: u32,
    /// The window after the response.
    pub cwnd_after: u32,
}

/// The loss episodes of `host`'s connection (the first one it traced).
pub fn loss_episodes(records: &[Record], host: HostId) -> Vec<LossEpisode> {
    let mut out: Vec<LossEpisode> = Vec::new();
    let (mut sent_end, mut recover, mut cwnd, mut answered) = (None::<u32>, None::<u32>, 0, true);
    let after = |a: u32, b: u32| (a.wrapping_sub(b) as i32) > 0;
    for r in records {
        let Record::Trace { host: h, event } = r else {
            continue;
        };
        if *h != host {
            continue;
        }
        match event.kind {
            TraceKind::Send { seg, rtx } => {
                let end = seg.seq.wrapping_add(seg.len);
                if sent_end.is_none_or(|e| after(end, e)) {
                    sent_end = Some(end);
                }
                if rtx && seg.len > 0 && recover.is_none() {
                    recover = sent_end;
                    answered = false;
                    out.push(LossEpisode {
                        start: event.at,
                        end: None,
                        retransmissions: 0,
                        cwnd_before: cwnd,
                        cwnd_after: cwnd,
                    });
                }
                if let (true, Some(e)) = (rtx && seg.len > 0, out.last_mut()) {
                    e.retransmissions += 1;
                }
            }
            // RFC 6582 §3.2 step 3: an ACK of everything up to "recover".
            TraceKind::Recv { seg }
                if seg.flags.ack() && recover.is_some_and(|p| !after(p, seg.ack)) =>
            {
                recover = None;
                if let Some(e) = out.last_mut() {
                    e.end = Some(event.at);
                }
            }
            TraceKind::Cwnd { cwnd: c, .. } => {
                if let (false, Some(e)) = (answered, out.last_mut()) {
                    e.cwnd_after = c;
                }
                answered = true;
                cwnd = c;
            }
            _ => {}
        }
    }
    out
}

/// When `host` sent its first segment with data.
fn first_data(records: &[Record], host: HostId) -> Option<Instant> {
    records.iter().find_map(|r| match r {
        Record::Trace { host: h, event } if *h == host => match event.kind {
            TraceKind::Send { seg, .. } if seg.len > 0 => Some(event.at),
            _ => None,
        },
        _ => None,
    })
}

/// Runs the scenario: the client uploads to a [`Sink`] on the server.
pub(super) fn congestion(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or_else(|| default_bytes(opts.delay));
    let link = bottleneck_link(opts);
    let roomy = Config {
        send_buffer: 4 << 20,
        recv_buffer: 4 << 20,
        ..config(opts)
    };
    let mut sim = Sim::new(opts.seed, link).record(true).capture(true);
    let client = Client::upload(server_addr(), bytes);
    sim.add_host("client", &[CLIENT_IP], roomy.clone(), Box::new(client));
    sim.add_host(
        "server",
        &[SERVER_IP],
        roomy,
        Box::new(Sink::new(server_addr())),
    );
    sim.run(LIMIT);
    let verdict = verdict(&sim, bytes);
    Outcome { sim, verdict }
}

fn verdict(sim: &Sim, bytes: u64) -> Result<String, String> {
    let c = client_of(sim);
    if c.sent != bytes || c.outcome != Some(Ok(())) {
        return Err(format!(
            "the client sent {} of {bytes} bytes and ended {:?}",
            c.sent, c.outcome
        ));
    }
    let sink = sim
        .app(SERVER)
        .as_any()
        .downcast_ref::<Sink>()
        .ok_or("no sink")?;
    let got = sink.conns.first().map(|c| c.1).unwrap_or_default();
    if got.mismatch || got.bytes != bytes || !got.eof {
        return Err(format!(
            "the server read {} of {bytes} bytes (intact: {})",
            got.bytes, !got.mismatch
        ));
    }
    let cs = states(sim.records(), CLIENT);
    if cs.last() != Some(&synack_core::State::Closed) {
        return Err(format!("the client ended in {}", names(&cs)));
    }
    let samples = window_samples(sim.records(), CLIENT);
    let episodes = loss_episodes(sim.records(), CLIENT);
    // With random loss on top, Reno's rate is bounded by the loss rate
    // (about 1.22·MSS/(RTT·sqrt(p)), Mathis et al.), not by the link: the
    // window may never reach the queue, and the goodput floor is off.
    let lossless = sim.link().loss == 0.0;
    if lossless && sim.link_stats().queue_drops == 0 {
        return Err("the queue never overflowed: no loss to recover from".into());
    }
    let recovered = episodes.iter().filter(|e| e.end.is_some()).count();
    if recovered == 0 {
        return Err("no loss episode was recovered".into());
    }
    let start = first_data(sim.records(), CLIENT).ok_or("no data was sent")?;
    let end = got.last_at.ok_or("nothing was read")?;
    let secs = end.saturating_since(start).as_secs_f64().max(1e-6);
    let goodput = bytes as f64 * 8.0 / secs;
    let share = goodput / RATE_BPS as f64;
    if lossless && share < MIN_GOODPUT_SHARE {
        return Err(format!(
            "goodput {:.2} Mbit/s is {:.0} % of the link, below {:.0} %",
            goodput / 1e6,
            share * 100.0,
            MIN_GOODPUT_SHARE * 100.0
        ));
    }
    let stats = sim.link_stats();
    let peak = samples.iter().map(|s| s.cwnd).max().unwrap_or(0);
    Ok(format!(
        "{bytes} bytes delivered intact at {:.2} Mbit/s ({:.0} % of {} Mbit/s); {} loss episode{} recovered, {} packets dropped by the full queue, {} lost at random, peak window {} bytes; {:.3} s simulated",
        goodput / 1e6,
        share * 100.0,
        RATE_BPS / 1_000_000,
        recovered,
        if recovered == 1 { "" } else { "s" },
        stats.queue_drops,
        stats.random_losses,
        peak,
        sim.now().secs_f64()
    ))
}

/// The one-way delay and the queue of the scenario's link, for the plot.
pub fn path_of(sim: &Sim) -> Option<(Duration, usize)> {
    let link = sim.link();
    let b = link.bottleneck?;
    let queue = match b.queue {
        QueueLimit::Bytes(n) => n,
        QueueLimit::Packets(n) => n * 1500,
    };
    Some((link.delay, queue))
}
