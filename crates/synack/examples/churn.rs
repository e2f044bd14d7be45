//! Open, echo 16 bytes and close N connections in the simulator, C at a
//! time, and report the wall-clock rate. `cargo run --release -p synack
//! --example churn -- 1000000 1000`
use std::net::SocketAddr;
use std::time::Duration;

use synack::core::{Config, Instant};
use synack::sim::{ChurnClient, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT, CLIENT_IP, SERVER, SERVER_IP};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(100_000);
    let concurrent = args.get(1).copied().unwrap_or(1) as usize;
    let server = SocketAddr::new(SERVER_IP, 7);
    let mut sim = Sim::new(1, LinkConfig::with_delay(Duration::from_micros(50)));
    let cfg = Config {
        send_buffer: 4096,
        recv_buffer: 4096,
        msl: Duration::from_secs(30),
        ..Config::default()
    };
    // 64 client addresses: 64 × 16384 ephemeral ports outlast a 60 s TIME-WAIT.
    let locals: Vec<std::net::IpAddr> = (0..64u8)
        .map(|i| std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, i)))
        .chain([CLIENT_IP])
        .collect();
    let app = ChurnClient::new(server, total, concurrent, 16).with_locals(locals.clone());
    sim.add_host("client", &locals, cfg.clone(), Box::new(app));
    let mut server_app = EchoServer::new(server, ServerMode::Echo);
    server_app.set_backlog(concurrent.max(128));
    sim.add_host("server", &[SERVER_IP], cfg, Box::new(server_app));
    let t0 = std::time::Instant::now();
    sim.run(Instant::from_secs(365 * 24 * 3600));
    let dt = t0.elapsed();
    let c = sim
        .app(CLIENT)
        .as_any()
        .downcast_ref::<ChurnClient>()
        .unwrap();
    println!(
        "{total} connections ({concurrent} at a time): {} completed, {} failed, {:.2} s wall, {:.0} conn/s, {:.1} s simulated; server left {} connections, client {} in TIME-WAIT",
        c.completed,
        c.failed,
        dt.as_secs_f64(),
        c.completed as f64 / dt.as_secs_f64(),
        sim.now().secs_f64(),
        sim.stack(SERVER).connection_count(),
        sim.stack(CLIENT).time_wait_count(),
    );
}
