//! Connection churn in the simulator: many connections opened, used and
//! closed, some at once; nothing may fail and nothing may be left behind.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use synack::core::{Config, Instant};
use synack::sim::{ChurnClient, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT, SERVER, SERVER_IP};

fn churn(total: u64, concurrent: usize) {
    let server = SocketAddr::new(SERVER_IP, 7);
    let locals: Vec<IpAddr> = (0..4u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)))
        .collect();
    let mut sim = Sim::new(7, LinkConfig::with_delay(Duration::from_micros(200)));
    let cfg = Config {
        send_buffer: 4096,
        recv_buffer: 4096,
        ..Config::default()
    };
    let app = ChurnClient::new(server, total, concurrent, 16).with_locals(locals.clone());
    sim.add_host("client", &locals, cfg.clone(), Box::new(app));
    let mut echo = EchoServer::new(server, ServerMode::Echo);
    echo.set_backlog(concurrent.max(16));
    sim.add_host("server", &[SERVER_IP], cfg, Box::new(echo));
    assert!(
        sim.run(Instant::from_secs(3600)),
        "the run never went quiet"
    );
    let c = sim
        .app(CLIENT)
        .as_any()
        .downcast_ref::<ChurnClient>()
        .unwrap();
    assert_eq!((c.completed, c.failed), (total, 0));
    for h in [CLIENT, SERVER] {
        assert_eq!(sim.stack(h).connection_count(), 0, "leaked connections");
        assert_eq!(
            sim.stack(h).time_wait_count(),
            0,
            "leaked TIME-WAIT entries"
        );
    }
}

#[test]
fn churn_one_at_a_time() {
    churn(2000, 1);
}

#[test]
fn churn_hundreds_at_once() {
    churn(5000, 500);
}
