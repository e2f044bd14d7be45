//! The scenarios of `synack demo`: each sets up a client and a server in the
//! simulator, runs them, and checks that what was supposed to happen did.
//! The integration tests run the same scenarios.
//!
//! This is the demo's content, not part of the library's interface: it is
//! public only so that the `synack` binary and the scenario tests can run
//! it, and hidden from the documentation. The addresses and queries that
//! tests share live in [`crate::sim`] and [`crate::record`].
#![doc(hidden)]

mod congestion;
mod failures;
mod incarnations;

pub use congestion::{loss_episodes, path_of, window_samples, LossEpisode, WindowSample, RATE_BPS};

use std::net::SocketAddr;
use std::time::Duration;

use synack_core::{Config, Error, Instant, State, TraceKind};
use synack_wire::TcpFlags;

pub use crate::record::states;
use crate::record::{HostId, LinkFate, Record};
use crate::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};
pub use crate::sim::{CLIENT, CLIENT_IP, SERVER, SERVER_IP};

/// The echo port.
pub const ECHO_PORT: u16 = 7;

/// Knobs a user can turn from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seed of the link's random faults.
    pub seed: u64,
    /// Loss in percent (0 to 100); `None` for the scenario's default.
    pub loss: Option<f64>,
    /// One-way delay.
    pub delay: Duration,
    /// Bytes the client sends; `None` for the scenario's default.
    pub bytes: Option<u64>,
    /// MSL (TIME-WAIT lasts twice as long).
    pub msl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            loss: None,
            delay: Duration::from_millis(10),
            bytes: None,
            msl: Duration::from_secs(30),
        }
    }
}

/// A named scenario.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// One line on what it shows.
    pub about: &'static str,
    /// How `demo` shows its run.
    pub view: View,
    run: fn(&Options) -> Outcome,
}

/// How `demo` shows a scenario's run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The sequence diagram of every segment and state change.
    Diagram,
    /// A bulk transfer of thousands of segments: the diagram of its first
    /// segments and its state changes, its loss episodes, and the sender's
    /// congestion window over time as a plot.
    Window,
}

/// The result of a scenario run.
pub struct Outcome {
    /// The simulation after the run (records, captures, stacks).
    pub sim: Sim,
    /// `Ok(summary)` when it ended as it should, `Err(reason)` otherwise.
    pub verdict: Result<String, String>,
}

/// Every scenario, in the order `demo --list` shows them.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "basic",
        about: "three-way handshake, echo, four-way close, TIME-WAIT",
        view: View::Diagram,
        run: basic,
    },
    Scenario {
        name: "syn-lost",
        about: "the first SYN is lost and retransmitted after the 1 s RTO",
        view: View::Diagram,
        run: syn_lost,
    },
    Scenario {
        name: "synack-lost",
        about: "the SYN-ACK is lost; the retransmitted SYN brings it again",
        view: View::Diagram,
        run: synack_lost,
    },
    Scenario {
        name: "final-ack-lost",
        about: "the last ACK is lost; TIME-WAIT answers the retransmitted FIN",
        view: View::Diagram,
        run: final_ack_lost,
    },
    Scenario {
        name: "simultaneous-open",
        about: "both ends send SYN at once: SYN-SENT -> SYN-RECEIVED -> ESTABLISHED",
        view: View::Diagram,
        run: simultaneous_open,
    },
    Scenario {
        name: "simultaneous-close",
        about: "both ends close at once: FIN-WAIT-1 -> CLOSING -> TIME-WAIT",
        view: View::Diagram,
        run: simultaneous_close,
    },
    Scenario {
        name: "half-close",
        about: "the client shuts down writing and still reads the whole echo",
        view: View::Diagram,
        run: half_close,
    },
    Scenario {
        name: "close-wait",
        about: "the server never closes: CLOSE-WAIT on one side, FIN-WAIT-2 on the other",
        view: View::Diagram,
        run: close_wait,
    },
    Scenario {
        name: "refused",
        about: "SYN to a port nobody listens on is answered with RST",
        view: View::Diagram,
        run: refused,
    },
    Scenario {
        name: "lossy-transfer",
        about: "bulk echo over a link that loses, duplicates, reorders and corrupts",
        view: View::Diagram,
        run: lossy_transfer,
    },
    Scenario {
        name: "zero-window",
        about: "the server stops reading: zero window, persist probes, then recovery",
        view: View::Diagram,
        run: zero_window,
    },
    Scenario {
        name: "old-duplicate-syn",
        about: "RFC 9293 figure 8: a stale SYN reaches the server first; the client's RST tears it down",
        view: View::Diagram,
        run: incarnations::old_duplicate_syn,
    },
    Scenario {
        name: "old-duplicate-data",
        about: "a stale segment of an earlier connection on the same 4-tuple is kept out (try --msl 0)",
        view: View::Diagram,
        run: incarnations::old_duplicate_data,
    },
    Scenario {
        name: "half-open",
        about: "RFC 9293 figure 10: the server restarts; the client's next segment draws an RST",
        view: View::Diagram,
        run: failures::half_open,
    },
    Scenario {
        name: "syn-timeout",
        about: "a SYN nobody answers, retried with doubling waits until connect times out",
        view: View::Diagram,
        run: failures::syn_timeout,
    },
    Scenario {
        name: "congestion",
        about: "bulk data over a 20 Mbit/s bottleneck: slow start, CUBIC probing to a queue overflow, recovery, the window over time",
        view: View::Window,
        run: congestion::congestion,
    },
];

/// Finds a scenario by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.name == name)
}

impl Scenario {
    /// Runs the scenario and checks its outcome.
    pub fn run(&self, opts: &Options) -> Outcome {
        (self.run)(opts)
    }
}

/// The simulated run time after which a scenario is stopped.
const LIMIT: Instant = Instant::from_secs(3600);

/// The time step of the scenarios that script events by the clock: a
/// second, or ten one-way delays on a slow link, so that each step has
/// room for a few round trips.
fn time_unit(opts: &Options) -> Duration {
    (opts.delay * 10).max(Duration::from_secs(1))
}

/// `n` time units after the start.
fn after_units(opts: &Options, n: u32) -> Instant {
    Instant::ZERO + time_unit(opts) * n
}

fn server_addr() -> SocketAddr {
    SocketAddr::new(SERVER_IP, ECHO_PORT)
}

fn config(opts: &Options) -> Config {
    Config {
        msl: opts.msl,
        ..Config::default()
    }
}

fn link(opts: &Options, default_loss: f64) -> LinkConfig {
    LinkConfig {
        delay: opts.delay,
        loss: opts.loss.unwrap_or(default_loss) / 100.0,
        ..LinkConfig::default()
    }
}

fn sim_with(
    opts: &Options,
    link: LinkConfig,
    client: Client,
    server: EchoServer,
    server_cfg: Config,
) -> Sim {
    let mut sim = Sim::new(opts.seed, link).record(true).capture(true);
    sim.add_host("client", &[CLIENT_IP], config(opts), Box::new(client));
    sim.add_host("server", &[SERVER_IP], server_cfg, Box::new(server));
    sim
}

fn names(states: &[State]) -> String {
    states
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn expect_states(
    records: &[Record],
    host: HostId,
    who: &str,
    want: &[State],
) -> Result<(), String> {
    let got = states(records, host);
    if got != want {
        return Err(format!(
            "{who} went {}, expected {}",
            names(&got),
            names(want)
        ));
    }
    Ok(())
}

/// Segments sent, lost and retransmitted over the whole run.
fn counts(records: &[Record]) -> (usize, usize, usize) {
    let mut sent = 0;
    let mut lost = 0;
    let mut rtx = 0;
    for r in records {
        match r {
            Record::Trace { event, .. } => {
                if let TraceKind::Send { rtx: r, .. } = event.kind {
                    sent += 1;
                    rtx += usize::from(r);
                }
            }
            Record::Link {
                fate: LinkFate::Lost,
                ..
            } => lost += 1,
            Record::Link { .. } | Record::Note { .. } => {}
        }
    }
    (sent, lost, rtx)
}

fn client_of(sim: &Sim) -> &Client {
    sim.app(CLIENT)
        .as_any()
        .downcast_ref::<Client>()
        .expect("the client host runs a Client")
}

fn check_echo(sim: &Sim, bytes: u64) -> Result<(), String> {
    check_client(client_of(sim), bytes)
}

fn check_client(c: &Client, bytes: u64) -> Result<(), String> {
    if c.mismatch {
        return Err("the echo came back corrupted".into());
    }
    if c.sent != bytes || c.received != bytes {
        return Err(format!(
            "sent {} and got back {} of {bytes} bytes",
            c.sent, c.received
        ));
    }
    match c.outcome {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("the client's connection ended: {e}")),
        None => Err("the client's connection never finished".into()),
    }
}

fn summary(sim: &Sim, what: &str) -> String {
    let (sent, lost, rtx) = counts(sim.records());
    format!(
        "{what}; {sent} segments sent, {lost} lost, {rtx} retransmitted; {:.3} s simulated",
        sim.now().secs_f64()
    )
}

use State::*;

const CLIENT_FULL: &[State] = &[
    Closed,
    SynSent,
    Established,
    FinWait1,
    FinWait2,
    TimeWait,
    Closed,
];
const SERVER_FULL: &[State] = &[Listen, SynReceived, Established, CloseWait, LastAck, Closed];

fn echo_run(
    opts: &Options,
    default_bytes: u64,
    link: LinkConfig,
    rule: Option<crate::sim::DropRule>,
) -> (Sim, u64) {
    let bytes = opts.bytes.unwrap_or(default_bytes);
    let client = Client::echo(server_addr(), bytes, ClientMode::Echo);
    // The server's application takes a moment to close after the client's
    // FIN, so the close shows its four segments apart (FIN, ACK, FIN, ACK).
    let server =
        EchoServer::new(server_addr(), ServerMode::Echo).with_close_delay(Duration::from_millis(5));
    let mut sim = sim_with(opts, link, client, server, config(opts));
    if let Some(rule) = rule {
        sim.set_drop_rule(rule);
    }
    sim.run(LIMIT);
    (sim, bytes)
}

fn verdict_full_close(sim: &Sim, bytes: u64, what: &str) -> Result<String, String> {
    check_echo(sim, bytes)?;
    expect_states(sim.records(), CLIENT, "the client", CLIENT_FULL)?;
    expect_states(sim.records(), SERVER, "the server", SERVER_FULL)?;
    Ok(summary(
        sim,
        &format!("{bytes} bytes echoed intact, {what}"),
    ))
}

fn basic(opts: &Options) -> Outcome {
    let (sim, bytes) = echo_run(opts, 1024, link(opts, 0.0), None);
    let verdict = verdict_full_close(&sim, bytes, "both ends CLOSED");
    Outcome { sim, verdict }
}

/// A drop rule that loses the first segment from `host` with exactly `flags`.
fn lose_first(host: HostId, flags: TcpFlags) -> crate::sim::DropRule {
    let mut done = false;
    Box::new(move |from, seg| {
        if !done && from == host && seg.tcp.flags == flags {
            done = true;
            return true;
        }
        false
    })
}

fn rtx_count(sim: &Sim, host: HostId, flags: TcpFlags) -> usize {
    sim.records()
        .iter()
        .filter(|r| {
            matches!(r, Record::Trace { host: h, event } if *h == host
            && matches!(event.kind, TraceKind::Send { seg, rtx: true } if seg.flags == flags))
        })
        .count()
}

fn syn_lost(opts: &Options) -> Outcome {
    let rule = lose_first(CLIENT, TcpFlags::SYN);
    let (sim, bytes) = echo_run(opts, 1024, link(opts, 0.0), Some(rule));
    let verdict =
        verdict_full_close(&sim, bytes, "after one SYN retransmission").and_then(
            |s| match rtx_count(&sim, CLIENT, TcpFlags::SYN) {
                0 => Err("the SYN was never retransmitted".into()),
                _ => Ok(s),
            },
        );
    Outcome { sim, verdict }
}

fn synack_lost(opts: &Options) -> Outcome {
    let rule = lose_first(SERVER, TcpFlags::SYN | TcpFlags::ACK);
    let (sim, bytes) = echo_run(opts, 1024, link(opts, 0.0), Some(rule));
    let verdict =
        verdict_full_close(&sim, bytes, "after the SYN-ACK was sent again").and_then(|s| {
            match rtx_count(&sim, SERVER, TcpFlags::SYN | TcpFlags::ACK) {
                0 => Err("the SYN-ACK was never retransmitted".into()),
                _ => Ok(s),
            }
        });
    Outcome { sim, verdict }
}

fn final_ack_lost(opts: &Options) -> Outcome {
    // Lose the client's ACK of the server's FIN, once.
    let mut server_fin: Option<u32> = None;
    let mut done = false;
    let rule: crate::sim::DropRule = Box::new(move |from, seg| {
        let t = &seg.tcp;
        if from == SERVER && t.flags.fin() {
            server_fin = Some(t.seq.wrapping_add(seg.payload.len() as u32));
        }
        if !done
            && from == CLIENT
            && t.flags == TcpFlags::ACK
            && server_fin.is_some_and(|f| t.ack == f.wrapping_add(1))
        {
            done = true;
            return true;
        }
        false
    });
    let (sim, bytes) = echo_run(opts, 1024, link(opts, 0.0), Some(rule));
    let verdict = verdict_full_close(&sim, bytes, "TIME-WAIT re-ACKed the retransmitted FIN")
        .and_then(|s| {
            if rtx_count(&sim, SERVER, TcpFlags::FIN | TcpFlags::ACK) == 0 {
                return Err("the server never retransmitted its FIN".into());
            }
            Ok(s)
        });
    Outcome { sim, verdict }
}

fn simultaneous_open(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(1024);
    let a = SocketAddr::new(CLIENT_IP, 5000);
    let b = SocketAddr::new(SERVER_IP, 6000);
    let close_at = Instant::from_secs(2);
    let mut sim = Sim::new(opts.seed, link(opts, 0.0))
        .record(true)
        .capture(true);
    let mode = ClientMode::CloseAt(close_at);
    for (name, ip, me, peer, salt) in [
        ("client", CLIENT_IP, a, b, 1),
        ("server", SERVER_IP, b, a, 2),
    ] {
        let app = Client::peer(me, peer, bytes, salt, 3 - salt, mode);
        sim.add_host(name, &[ip], config(opts), Box::new(app));
    }
    sim.run(LIMIT);
    let both = [
        Closed,
        SynSent,
        SynReceived,
        Established,
        FinWait1,
        Closing,
        TimeWait,
        Closed,
    ];
    let verdict = (|| {
        for (h, who) in [(CLIENT, "the client"), (SERVER, "the server")] {
            let c = sim
                .app(h)
                .as_any()
                .downcast_ref::<Client>()
                .ok_or("no client")?;
            if !c.succeeded() {
                return Err(format!(
                    "{who} sent {} and received {} of {bytes} bytes ({:?})",
                    c.sent, c.received, c.outcome
                ));
            }
            expect_states(sim.records(), h, who, &both)?;
        }
        Ok(summary(
            &sim,
            &format!("crossed SYNs opened one connection; {bytes} bytes each way"),
        ))
    })();
    Outcome { sim, verdict }
}

fn simultaneous_close(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(1024);
    let close_at = Instant::from_secs(2);
    let client = Client::echo(server_addr(), bytes, ClientMode::CloseAt(close_at));
    let server = EchoServer::new(server_addr(), ServerMode::CloseAt(close_at));
    let mut sim = sim_with(opts, link(opts, 0.0), client, server, config(opts));
    sim.run(LIMIT);
    let verdict = (|| {
        check_echo(&sim, bytes)?;
        expect_states(
            sim.records(),
            CLIENT,
            "the client",
            &[
                Closed,
                SynSent,
                Established,
                FinWait1,
                Closing,
                TimeWait,
                Closed,
            ],
        )?;
        expect_states(
            sim.records(),
            SERVER,
            "the server",
            &[
                Listen,
                SynReceived,
                Established,
                FinWait1,
                Closing,
                TimeWait,
                Closed,
            ],
        )?;
        Ok(summary(
            &sim,
            "FINs crossed: both ends went through CLOSING and TIME-WAIT",
        ))
    })();
    Outcome { sim, verdict }
}

fn half_close(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(4096);
    let client = Client::echo(server_addr(), bytes, ClientMode::HalfClose);
    let server = EchoServer::new(server_addr(), ServerMode::Echo);
    let mut sim = sim_with(opts, link(opts, 0.0), client, server, config(opts));
    sim.run(LIMIT);
    let verdict = (|| {
        check_echo(&sim, bytes)?;
        expect_states(sim.records(), CLIENT, "the client", CLIENT_FULL)?;
        expect_states(sim.records(), SERVER, "the server", SERVER_FULL)?;
        // The echo must have arrived after the client's FIN went out.
        let fin_at =
            first_send(sim.records(), CLIENT, |f| f.fin()).ok_or("the client sent no FIN")?;
        let data_after = sim.records().iter().any(|r| {
            matches!(r, Record::Trace { host, event }
            if *host == CLIENT && event.at > fin_at
            && matches!(event.kind, TraceKind::Recv { seg } if seg.len > 0))
        });
        if !data_after {
            return Err("no data reached the client after its FIN".into());
        }
        Ok(summary(
            &sim,
            &format!("the client half-closed and still read all {bytes} bytes"),
        ))
    })();
    Outcome { sim, verdict }
}

fn first_send(
    records: &[Record],
    host: HostId,
    pred: impl Fn(TcpFlags) -> bool,
) -> Option<Instant> {
    records.iter().find_map(|r| match r {
        Record::Trace { host: h, event } if *h == host => match event.kind {
            TraceKind::Send { seg, .. } if pred(seg.flags) => Some(event.at),
            _ => None,
        },
        _ => None,
    })
}

fn close_wait(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(1024);
    let client = Client::echo(server_addr(), bytes, ClientMode::Echo);
    let server = EchoServer::new(server_addr(), ServerMode::NeverClose);
    let mut sim = sim_with(opts, link(opts, 0.0), client, server, config(opts));
    // Stop before the client's FIN-WAIT-2 timeout (60 s) ends the picture.
    sim.run(Instant::from_secs(30));
    let verdict = (|| {
        check_echo(&sim, bytes)?;
        expect_states(
            sim.records(),
            CLIENT,
            "the client",
            &[Closed, SynSent, Established, FinWait1, FinWait2],
        )?;
        expect_states(
            sim.records(),
            SERVER,
            "the server",
            &[Listen, SynReceived, Established, CloseWait],
        )?;
        Ok(summary(&sim, "the server's application never closed: it waits in CLOSE-WAIT, the client in FIN-WAIT-2"))
    })();
    Outcome { sim, verdict }
}

fn refused(opts: &Options) -> Outcome {
    let client = Client::echo(SocketAddr::new(SERVER_IP, 9), 16, ClientMode::Echo);
    let server = EchoServer::new(server_addr(), ServerMode::Echo);
    let mut sim = sim_with(opts, link(opts, 0.0), client, server, config(opts));
    sim.run(LIMIT);
    let verdict = (|| {
        let c = client_of(&sim);
        if c.outcome != Some(Err(Error::Refused)) {
            return Err(format!("expected connection refused, got {:?}", c.outcome));
        }
        expect_states(
            sim.records(),
            CLIENT,
            "the client",
            &[Closed, SynSent, Closed],
        )?;
        Ok(summary(
            &sim,
            "port 9 answered the SYN with RST: connection refused",
        ))
    })();
    Outcome { sim, verdict }
}

fn lossy_transfer(opts: &Options) -> Outcome {
    let link = LinkConfig {
        delay: opts.delay,
        loss: opts.loss.unwrap_or(5.0) / 100.0,
        duplicate: 0.02,
        reorder: 0.05,
        reorder_jitter: opts.delay.max(Duration::from_millis(1)) * 2,
        corrupt: 0.01,
        ..LinkConfig::default()
    };
    let (sim, bytes) = echo_run(opts, 65536, link, None);
    let verdict = (|| {
        check_echo(&sim, bytes)?;
        let cs = states(sim.records(), CLIENT);
        if cs.last() != Some(&Closed) {
            return Err(format!("the client ended in {}", names(&cs)));
        }
        Ok(summary(
            &sim,
            &format!("{bytes} bytes echoed intact over a faulty link"),
        ))
    })();
    Outcome { sim, verdict }
}

fn zero_window(opts: &Options) -> Outcome {
    let bytes = opts.bytes.unwrap_or(16384);
    let client = Client::echo(server_addr(), bytes, ClientMode::Echo);
    let server = EchoServer::new(
        server_addr(),
        ServerMode::PauseReading(Instant::from_secs(5)),
    );
    let server_cfg = Config {
        recv_buffer: 4096,
        ..config(opts)
    };
    let mut sim = sim_with(opts, link(opts, 0.0), client, server, server_cfg);
    sim.run(LIMIT);
    let verdict = (|| {
        check_echo(&sim, bytes)?;
        let zero = sim.records().iter().any(|r| matches!(r, Record::Trace { host, event }
            if *host == SERVER && matches!(event.kind, TraceKind::Send { seg, .. } if seg.win == 0 && seg.flags.ack())));
        if !zero {
            return Err("the server never advertised a zero window".into());
        }
        expect_states(sim.records(), CLIENT, "the client", CLIENT_FULL)?;
        Ok(summary(
            &sim,
            &format!("the window closed, probes kept it alive, {bytes} bytes echoed intact"),
        ))
    })();
    Outcome { sim, verdict }
}
