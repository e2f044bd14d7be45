//! The same stack over IPv6: handshake, echo over a lossy link, close.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use synack::core::{Config, Instant, State};
use synack::record::states;
use synack::sim::{Client, ClientMode, EchoServer, LinkConfig, ServerMode, Sim};
use synack::sim::{CLIENT, SERVER};

#[test]
fn ipv6_echo_over_a_lossy_link() {
    let c = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    let s = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    let server = SocketAddr::new(s, 7);
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        loss: 0.05,
        ..LinkConfig::default()
    };
    for seed in 0..50 {
        let mut sim = Sim::new(seed, link.clone()).record(true);
        let client = Client::echo(server, 50_000, ClientMode::Echo);
        sim.add_host("client", &[c], Config::default(), Box::new(client));
        let echo = EchoServer::new(server, ServerMode::Echo);
        sim.add_host("server", &[s], Config::default(), Box::new(echo));
        assert!(sim.run(Instant::from_secs(3600)));
        let cl = sim.app(CLIENT).as_any().downcast_ref::<Client>().unwrap();
        assert!(cl.succeeded(), "seed {seed}: {:?}", cl.outcome);
        assert_eq!(states(sim.records(), CLIENT).last(), Some(&State::Closed));
        assert_eq!(states(sim.records(), SERVER).last(), Some(&State::Closed));
    }
}

#[test]
fn ipv6_mss_is_mtu_minus_60() {
    // SHLD-5 / MUST-67: MTU 1500 over IPv6 gives MSS 1440, and with
    // timestamps every data segment carries at most 1428 bytes (MUST-16).
    let c = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    let s = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    let server = SocketAddr::new(s, 7);
    let mut sim = Sim::new(1, LinkConfig::with_delay(Duration::from_millis(1))).capture(true);
    sim.add_host(
        "client",
        &[c],
        Config::default(),
        Box::new(Client::echo(server, 20_000, ClientMode::Echo)),
    );
    sim.add_host(
        "server",
        &[s],
        Config::default(),
        Box::new(EchoServer::new(server, ServerMode::Echo)),
    );
    sim.run(Instant::from_secs(3600));
    let mut saw_syn_mss = false;
    let mut biggest = 0;
    for (_, p) in sim.captured() {
        let seg = synack::wire::parse_packet(p).unwrap();
        if seg.tcp.flags.syn() {
            assert_eq!(seg.tcp.options.mss, Some(1440));
            saw_syn_mss = true;
        }
        biggest = biggest.max(seg.payload.len());
    }
    assert!(saw_syn_mss);
    assert_eq!(biggest, 1428);
}
