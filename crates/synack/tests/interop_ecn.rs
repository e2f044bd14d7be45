//! ECN (RFC 3168) against the Linux kernel over TUN, in a namespace of
//! each test's own with `net.ipv4.tcp_ecn` set there: the handshake agrees
//! to ECN both ways (the kernel asking and synack asking), data is ECT(0)
//! both ways, and CE marks that nftables puts on the path are echoed and
//! answered by each side (ECE, then CWR). nftables counts what crosses
//! `syn0` (nft calls ECE `ecn` among the TCP flags). Needs root, /dev/net/tun and nft; elsewhere `skipped`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use common::{have, pattern, Netns};
use synack::core::{Config, Ecn};
use synack::net::{TcpListener, TcpStream};
use synack::Net;

const T: Duration = Duration::from_secs(20);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The namespace with the kernel's `tcp_ecn` set to `mode` (1: ask and
/// accept, 2: accept only) and the counters: chain `rx` for what synack
/// sends the kernel, `tx` for what the kernel sends synack. `None`: skipped.
fn namespace(test: &str, kernel_ecn: u8) -> Option<Netns> {
    let ns = Netns::new(test)?;
    if !have("nft", "--version") {
        println!("skipped: {test}: no nft (nftables)");
        return None;
    }
    let out = ns.run("sysctl", &["-w", &format!("net.ipv4.tcp_ecn={kernel_ecn}")]);
    assert!(out.status.success(), "sysctl: {out:?}");
    let setup = "tcp flags & (syn | ack | ecn | cwr)";
    nft(
        &ns,
        &[
            "add table inet synecn",
            "add chain inet synecn rx { type filter hook input priority 0; }",
            "add chain inet synecn tx { type filter hook postrouting priority 0; }",
            &format!("add rule inet synecn rx iifname syn0 {setup} == syn | ecn | cwr counter"),
            &format!("add rule inet synecn rx iifname syn0 {setup} == syn | ack | ecn counter"),
            "add rule inet synecn rx iifname syn0 ip ecn ect0 counter",
            "add rule inet synecn rx iifname syn0 ip ecn ce counter",
            "add rule inet synecn rx iifname syn0 tcp flags & cwr == cwr counter",
            "add rule inet synecn rx iifname syn0 tcp flags & (syn | ecn) == ecn counter",
            &format!("add rule inet synecn tx oifname syn0 {setup} == syn | ecn | cwr counter"),
            &format!("add rule inet synecn tx oifname syn0 {setup} == syn | ack | ecn counter"),
            "add rule inet synecn tx oifname syn0 ip ecn ect0 counter",
            "add rule inet synecn tx oifname syn0 tcp flags & cwr == cwr counter",
            "add rule inet synecn tx oifname syn0 tcp flags & (syn | ecn) == ecn counter",
        ],
    );
    Some(ns)
}

fn nft(ns: &Netns, commands: &[&str]) {
    for c in commands {
        let args: Vec<&str> = c.split(' ').collect();
        let out = ns.run("nft", &args);
        assert!(out.status.success(), "nft {c}: {out:?}");
    }
}

/// Packets counted by the rules of chain `chain` whose text (as `nft list`
/// prints it: `tcp flags syn,ecn,cwr / syn,ack,ecn,cwr`) contains `rule`.
fn counted(ns: &Netns, chain: &str, rule: &str) -> u64 {
    let out = ns.run("nft", &["list", "chain", "inet", "synecn", chain]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.contains(rule))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "packets")?;
            words.get(at + 1)?.parse::<u64>().ok()
        })
        .sum()
}

fn start(ns: &Netns, ecn: Ecn) -> Net {
    let cfg = Config {
        ecn,
        min_rto: Duration::from_millis(200),
        msl: Duration::from_millis(500),
        ..Config::default()
    };
    ns.enter(|| {
        Net::builder("syn0")
            .addr("10.0.0.2".parse().unwrap())
            .host("10.0.0.1/24".parse().unwrap())
            .config(cfg)
            .start()
            .expect("start the stack on syn0")
    })
}

/// A synack echo server on port 7 for one connection.
fn echo_once(net: &Net) -> std::thread::JoinHandle<()> {
    let l = TcpListener::bind(net, addr("10.0.0.2:7")).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept_timeout(T).expect("accept");
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            if s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    })
}

/// The kernel's client: sends `data` to synack's echo server while reading
/// the echo; returns it.
fn kernel_echo(ns: &Netns, data: Vec<u8>) -> Vec<u8> {
    ns.enter(move || {
        let mut s = std::net::TcpStream::connect_timeout(&addr("10.0.0.2:7"), T).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).expect("kernel read");
            got
        });
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        reader.join().unwrap()
    })
}

/// The counters of one run, for the assertions' messages.
fn summary(ns: &Netns) -> String {
    let mut out = String::new();
    for chain in ["rx", "tx"] {
        let o = ns.run("nft", &["list", "chain", "inet", "synecn", chain]);
        out.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    out
}

/// RFC 3168 §6.1.1 with the kernel asking (`tcp_ecn` = 1) and synack
/// accepting (its default): the kernel's ECN-setup SYN gets synack's
/// ECN-setup SYN-ACK, and then both mark their data ECT(0) (the kernel only
/// does once the handshake agreed). With synack's ECN off, the SYN-ACK
/// declines and the kernel's data stays Not-ECT.
#[test]
fn rfc3168_kernel_client_negotiates_ecn_with_synack() {
    for ecn in [Ecn::AcceptWhenAsked, Ecn::Off] {
        let Some(ns) = namespace("ecn_kernel_client", 1) else {
            return;
        };
        let net = start(&ns, ecn);
        let srv = echo_once(&net);
        let data = pattern(1 << 20, 3);
        assert!(kernel_echo(&ns, data.clone()) == data);
        srv.join().unwrap();
        let s = summary(&ns);
        assert!(counted(&ns, "tx", "flags syn,ecn,cwr /") >= 1, "{s}");
        let agreed = ecn != Ecn::Off;
        let synack_ece = counted(&ns, "rx", "flags syn,ack,ecn /");
        assert_eq!(synack_ece >= 1, agreed, "{ecn:?}: {s}");
        let kernel_ect = counted(&ns, "tx", "ip ecn ect0");
        let synack_ect = counted(&ns, "rx", "ip ecn ect0");
        if agreed {
            assert!(kernel_ect > 5 && synack_ect > 5, "{s}");
        } else {
            assert_eq!((kernel_ect, synack_ect), (0, 0), "{s}");
        }
        drop(net);
    }
}

/// RFC 3168 §6.1.1 with synack asking (`Ecn::On`) and the kernel at its
/// default (`tcp_ecn` = 2, accept when asked): synack's ECN-setup SYN gets
/// the kernel's ECN-setup SYN-ACK, and data is ECT(0) both ways.
#[test]
fn rfc3168_synack_client_negotiates_ecn_with_kernel() {
    let Some(ns) = namespace("ecn_synack_client", 2) else {
        return;
    };
    let net = start(&ns, Ecn::On);
    let l = ns.enter(|| std::net::TcpListener::bind("10.0.0.1:8080").unwrap());
    let srv = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let mut s = TcpStream::connect_timeout(&net, addr("10.0.0.1:8080"), T).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let data = pattern(1 << 20, 9);
    let mut r = s.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        got
    });
    s.write_all(&data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(reader.join().unwrap() == data);
    srv.join().unwrap();
    let sum = summary(&ns);
    assert!(counted(&ns, "rx", "flags syn,ecn,cwr /") >= 1, "{sum}");
    assert!(counted(&ns, "tx", "flags syn,ack,ecn /") >= 1, "{sum}");
    assert!(counted(&ns, "rx", "ip ecn ect0") > 5, "{sum}");
    assert!(counted(&ns, "tx", "ip ecn ect0") > 5, "{sum}");
}

/// RFC 3168 §6.1.2-§6.1.3 both ways with the kernel: nftables marks one in
/// twenty ECT packets CE, in each direction. synack echoes the kernel's
/// marks with ECE and the kernel answers with CWR; the kernel echoes
/// synack's marks and synack reduces its window (counted) and answers with
/// CWR. Nothing is lost, and the data is intact.
#[test]
fn rfc3168_ce_marks_are_echoed_and_answered_both_ways() {
    let Some(ns) = namespace("ecn_ce_both_ways", 1) else {
        return;
    };
    nft(
        &ns,
        &[
            "add chain inet synecn mark_in { type filter hook prerouting priority -300; }",
            "add rule inet synecn mark_in iifname syn0 ip ecn ect0 numgen random mod 20 < 1 ip ecn set ce",
            "add chain inet synecn mark_out { type filter hook postrouting priority -300; }",
            "add rule inet synecn mark_out oifname syn0 ip ecn ect0 numgen random mod 20 < 1 ip ecn set ce",
        ],
    );
    let net = start(&ns, Ecn::AcceptWhenAsked);
    let srv = echo_once(&net);
    let data = pattern(8 << 20, 4);
    assert!(kernel_echo(&ns, data.clone()) == data);
    srv.join().unwrap();
    let s = summary(&ns);
    let stats = net.with_stack(|st| st.stats().clone());
    // The kernel's marks: synack's ECE, the kernel's CWR.
    assert!(counted(&ns, "rx", "flags ecn / syn,ecn") > 0, "{s}");
    assert!(counted(&ns, "tx", "cwr == cwr") > 0, "{s}");
    // synack's marks (seen CE by the kernel's input): the kernel's ECE,
    // synack's reductions and CWR.
    assert!(counted(&ns, "rx", "ip ecn ce") > 0, "{s}");
    assert!(counted(&ns, "tx", "flags ecn / syn,ecn") > 0, "{s}");
    assert!(stats.ecn_reductions > 0, "{stats:?}");
    assert!(counted(&ns, "rx", "cwr == cwr") > 0, "{s}");
    println!(
        "ECN with the kernel: {} window reductions on ECE, {} retransmissions",
        stats.ecn_reductions, stats.retransmissions
    );
}
