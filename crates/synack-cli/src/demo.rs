//! `synack demo`: runs a scenario in the simulator and shows it.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use synack::pcap::PcapWriter;
use synack::record::Record;
use synack::scenarios::{self, Options, View};
use synack::sim::{Sim, CLIENT, SERVER};
use synack::trace_json::TraceWriter;
use synack_core::TraceKind;

use crate::diagram::{self, DiagramOptions};
use crate::svg;
use crate::window;

/// Flags of `synack demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The scenario to run (see --list).
    #[arg(default_value = "basic")]
    scenario: String,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Seed of the link's random faults: the same seed prints the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Packet loss in percent (0 to 100), both directions.
    #[arg(long, value_name = "PCT")]
    loss: Option<f64>,
    /// One-way delay in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10.0)]
    delay: f64,
    /// Bytes the client sends (default depends on the scenario).
    #[arg(long, value_name = "N")]
    bytes: Option<u64>,
    /// Maximum segment lifetime in seconds (TIME-WAIT lasts 2×MSL).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    msl: f64,
    /// Write a pcap capture of every packet sent.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Write the trace as JSON Lines.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write the sequence diagram as an SVG picture.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Add a short line under each segment and state change saying why it
    /// happens.
    #[arg(long)]
    explain: bool,
    /// For a bulk transfer (`congestion`): draw every segment, not only the
    /// first ones.
    #[arg(long)]
    verbose: bool,
    /// Colour the diagram: auto (when stdout is a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
}

/// Runs `synack demo`.
pub fn run(args: DemoArgs) -> Result<(), String> {
    if args.list {
        let width = scenarios::ALL
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        for s in scenarios::ALL {
            println!("{:width$}  {}", s.name, s.about);
        }
        return Ok(());
    }
    let scenario = scenarios::find(&args.scenario).ok_or_else(|| {
        format!(
            "unknown scenario '{}' (try: synack demo --list)",
            args.scenario
        )
    })?;
    if let Some(l) = args.loss {
        if !(0.0..=100.0).contains(&l) || l.is_nan() {
            return Err(format!("--loss must be between 0 and 100, not {l}"));
        }
    }
    if !(args.delay >= 0.0 && args.delay <= 60_000.0) {
        return Err(format!(
            "--delay must be between 0 and 60000 ms, not {}",
            args.delay
        ));
    }
    if !(args.msl >= 0.0 && args.msl <= 3600.0) {
        return Err(format!(
            "--msl must be between 0 and 3600 s, not {}",
            args.msl
        ));
    }
    if args.bytes.is_some_and(|b| b > 1 << 30) {
        return Err("--bytes must be at most 1 GiB".into());
    }
    let opts = Options {
        seed: args.seed,
        loss: args.loss,
        delay: Duration::from_secs_f64(args.delay / 1000.0),
        bytes: args.bytes,
        msl: Duration::from_secs_f64(args.msl),
    };
    let outcome = scenario.run(&opts);
    let sim = &outcome.sim;
    let records = sim.records();

    let color = match args.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal(),
    };
    let (client_label, server_label) = labels(records);
    let dopts = DiagramOptions {
        color,
        left_label: client_label,
        right_label: server_label,
        left_host: CLIENT,
        right_host: SERVER,
        explain: args.explain,
    };
    let mut out = std::io::stdout().lock();
    let text = match scenario.view {
        View::Diagram => diagram::render(records, &dopts),
        View::Window => window_text(sim, &dopts, args.verbose),
    };
    let verdict_line = match &outcome.verdict {
        Ok(s) => format!("{}: ok: {s}", scenario.name),
        Err(e) => format!("{}: FAILED: {e}", scenario.name),
    };
    let _ = write!(out, "{text}");
    let _ = writeln!(out, "\n{verdict_line}");
    let _ = out.flush();

    if let Some(path) = &args.svg {
        let mut o = dopts.clone();
        o.color = false;
        let picture = match scenario.view {
            View::Diagram => svg::render_svg(records, &o),
            View::Window => window::svg_plot(
                &scenarios::window_samples(records, CLIENT),
                &scenarios::loss_episodes(records, CLIENT),
                &path_facts(sim),
                &format!(
                    "{}: the congestion window of the sender, {}",
                    scenario.name, o.left_label
                ),
            ),
        };
        std::fs::write(path, picture)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.trace {
        write_trace(path, records).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.pcap {
        write_pcap(path, sim.captured())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    match outcome.verdict {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("scenario {} failed: {e}", scenario.name)),
    }
}

/// The terminal view of a bulk transfer: the diagram (of the first
/// segments, or of all with `verbose`), the loss episodes and the window
/// plot.
fn window_text(sim: &Sim, dopts: &DiagramOptions, verbose: bool) -> String {
    let records = sim.records();
    let mut text = if verbose {
        diagram::render(records, dopts)
    } else {
        diagram::render(&window::head(records, CLIENT), dopts)
    };
    let samples = scenarios::window_samples(records, CLIENT);
    let episodes = scenarios::loss_episodes(records, CLIENT);
    text.push_str("\nloss episodes of the sender:\n");
    text.push_str(&window::loss_lines(&episodes, 1500));
    text.push('\n');
    text.push_str(&window::text_plot(&samples, &episodes, &path_facts(sim)));
    text
}

/// The path's capacity and round trip, for the plots.
fn path_facts(sim: &Sim) -> window::Path {
    let (delay, queue) = scenarios::path_of(sim).unwrap_or_default();
    let rtt = delay * 2;
    let bdp = u128::from(scenarios::RATE_BPS) * rtt.as_nanos() / 8 / 1_000_000_000;
    window::Path {
        capacity: bdp as u64 + queue as u64,
        queue: queue as u64,
        rtt_ms: rtt.as_secs_f64() * 1000.0,
    }
}

/// "client 10.0.0.1:49152" and "server 10.0.0.2:7", from the first
/// connection the client traced.
fn labels(records: &[Record]) -> (String, String) {
    for r in records {
        if let Record::Trace { host, event } = r {
            if *host == CLIENT {
                if let (Some(c), TraceKind::State { .. }) = (event.conn, event.kind) {
                    return (
                        format!("client {}", c.local),
                        format!("server {}", c.remote),
                    );
                }
            }
        }
    }
    ("client".into(), "server".into())
}

fn write_trace(path: &PathBuf, records: &[Record]) -> std::io::Result<()> {
    let mut w = TraceWriter::new(BufWriter::new(File::create(path)?));
    for r in records {
        let label = match r {
            Record::Trace { host, .. } if *host == CLIENT => Some("client"),
            Record::Trace { .. } => Some("server"),
            Record::Link { .. } | Record::Note { .. } => None,
        };
        w.write_record(label, r)?;
    }
    w.flush()
}

fn write_pcap(path: &PathBuf, packets: &[(synack_core::Instant, Vec<u8>)]) -> std::io::Result<()> {
    let mut w = PcapWriter::new(BufWriter::new(File::create(path)?))?;
    for (at, p) in packets {
        w.write_packet(*at, p)?;
    }
    w.flush()
}
