use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use synack::core::{Config, Instant};
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};

#[test]
fn basic_echo() {
    let c = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let s = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut sim = Sim::new(1, LinkConfig::with_delay(Duration::from_millis(10))).record(true);
    let h0 = sim.add_host(
        "client",
        &[c],
        Config::default(),
        Box::new(Client::echo(SocketAddr::new(s, 7), 1024, ClientMode::Echo)),
    );
    let _h1 = sim.add_host(
        "server",
        &[s],
        Config::default(),
        Box::new(EchoServer::new(SocketAddr::new(s, 7), ServerMode::Echo)),
    );
    let quiet = sim.run(Instant::from_secs(600));
    for r in sim.records() {
        println!("{r:?}");
    }
    assert!(quiet);
    let cl = sim.app(h0).as_any().downcast_ref::<Client>().unwrap();
    assert!(
        cl.succeeded(),
        "sent {} recv {} mismatch {} outcome {:?}",
        cl.sent,
        cl.received,
        cl.mismatch,
        cl.outcome
    );
}
