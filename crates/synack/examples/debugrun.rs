use std::net::SocketAddr;
use std::time::Duration;
use synack::core::{Config, Instant, TraceKind};
use synack::record::Record;
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT_IP, SERVER_IP};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let seed: u64 = a[1].parse().unwrap();
    let bytes: u64 = a[2].parse().unwrap();
    let link = LinkConfig {
        delay: Duration::from_micros(a[3].parse().unwrap()),
        loss: a[4].parse().unwrap(),
        duplicate: a[5].parse().unwrap(),
        reorder: a[6].parse().unwrap(),
        reorder_jitter: Duration::from_micros(a[7].parse().unwrap()),
        corrupt: a[8].parse().unwrap(),
    };
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
    let skip = recs
        .len()
        .saturating_sub(a.get(9).map(|s| s.parse().unwrap()).unwrap_or(80));
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
}
