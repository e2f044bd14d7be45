//! Replays one simulated echo transfer and prints its last records, to debug
//! a run that a property test (or `synack demo`) reported by seed.
//!
//! ```sh
//! cargo run -p synack --example debugrun -- \
//!     SEED BYTES DELAY_US LOSS DUPLICATE REORDER JITTER_US CORRUPT [LAST]
//! ```
//!
//! A client sends `BYTES` bytes to an echo server over a simulated link with
//! a one-way delay of `DELAY_US` microseconds; `LOSS`, `DUPLICATE`,
//! `REORDER` and `CORRUPT` are the chances (0 to 1) that a packet is lost,
//! delivered twice, held back by up to `JITTER_US` microseconds, or has a
//! bit flipped (see `synack::sim::LinkConfig`). Both stacks run with an MSL
//! of 5 s. The same arguments replay the same run. It prints the last
//! `LAST` records (default 80): each segment sent and received, each drop
//! with its reason, each state change, and what the link did to each
//! packet; then the number of records.
//!
//! Bad arguments end it with one line on stderr and exit status 2.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;
use synack::core::{Config, Instant, TraceKind};
use synack::record::Record;
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT_IP, SERVER_IP};

/// The command line, as the module documentation gives it.
const USAGE: &str =
    "usage: debugrun SEED BYTES DELAY_US LOSS DUPLICATE REORDER JITTER_US CORRUPT [LAST]";

/// What the command line asks for.
struct Args {
    seed: u64,
    bytes: u64,
    link: LinkConfig,
    last: usize,
}

/// Parses the arguments after the program's name.
fn parse_args(a: &[String]) -> Result<Args, String> {
    if !(8..=9).contains(&a.len()) {
        return Err(format!("expected 8 or 9 arguments, got {}", a.len()));
    }
    Ok(Args {
        seed: number(&a[0], "SEED")?,
        bytes: number(&a[1], "BYTES")?,
        link: LinkConfig {
            delay: Duration::from_micros(number(&a[2], "DELAY_US")?),
            loss: chance(&a[3], "LOSS")?,
            duplicate: chance(&a[4], "DUPLICATE")?,
            reorder: chance(&a[5], "REORDER")?,
            reorder_jitter: Duration::from_micros(number(&a[6], "JITTER_US")?),
            corrupt: chance(&a[7], "CORRUPT")?,
            ..LinkConfig::default()
        },
        last: match a.get(8) {
            Some(s) => number(s, "LAST")?,
            None => 80,
        },
    })
}

/// A whole number argument.
fn number<T: FromStr>(s: &str, name: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{name} must be a whole number, not `{s}`"))
}

/// A chance argument: a number from 0 to 1.
fn chance(s: &str, name: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{name} must be a chance from 0 to 1, not `{s}`")),
    }
}

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&a) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("debugrun: {e} ({USAGE})");
            return ExitCode::from(2);
        }
    };
    let Args {
        seed,
        bytes,
        link,
        last,
    } = args;
    let server = SocketAddr::new(SERVER_IP, 7);
    let mut sim = Sim::new(seed, link).record(true);
    let cfg = Config {
        msl: Duration::from_secs(5),
        ..Config::default()
    };
    sim.add_host(
        "client",
        &[CLIENT_IP],
        cfg.clone(),
        Box::new(Client::echo(server, bytes, ClientMode::Echo)),
    );
    sim.add_host(
        "server",
        &[SERVER_IP],
        cfg,
        Box::new(EchoServer::new(server, ServerMode::Echo)),
    );
    sim.run(Instant::from_secs(24 * 3600));
    let recs = sim.records();
    let skip = recs.len().saturating_sub(last);
    for r in &recs[skip..] {
        match r {
            Record::Trace { host, event } => match event.kind {
                TraceKind::Send { seg, rtx } => println!(
                    "{:>10.3} h{} send {:?} seq={} ack={} len={} win={} rtx={}",
                    event.at.secs_f64(),
                    host.0,
                    seg.flags,
                    seg.seq,
                    seg.ack,
                    seg.len,
                    seg.win,
                    rtx
                ),
                TraceKind::Recv { seg } => println!(
                    "{:>10.3} h{}   recv {:?} seq={} ack={} len={} win={}",
                    event.at.secs_f64(),
                    host.0,
                    seg.flags,
                    seg.seq,
                    seg.ack,
                    seg.len,
                    seg.win
                ),
                TraceKind::Drop { reason } => {
                    println!("{:>10.3} h{}   DROP {reason}", event.at.secs_f64(), host.0)
                }
                TraceKind::State { from, to } => println!(
                    "{:>10.3} h{} STATE {from} -> {to}",
                    event.at.secs_f64(),
                    host.0
                ),
                TraceKind::Cwnd { cwnd, ssthresh } => println!(
                    "{:>10.3} h{}   cwnd={cwnd} ssthresh={ssthresh}",
                    event.at.secs_f64(),
                    host.0
                ),
            },
            Record::Link { at, from, fate } => {
                println!("{:>10.3} h{} link {:?}", at.secs_f64(), from.0, fate)
            }
            Record::Note { at, host, text } => {
                println!("{:>10.3} h{} note {text}", at.secs_f64(), host.0)
            }
        }
    }
    println!("records {}", recs.len());
    ExitCode::SUCCESS
}
