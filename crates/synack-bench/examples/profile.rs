//! One benchmark case alone, for a profiler (perf, callgrind):
//!
//! ```sh
//! cargo build --release -p synack-bench --example profile
//! perf record -g target/release/examples/profile bulk synack 1073741824 65536
//! valgrind --tool=callgrind target/release/examples/profile churn synack 20000 1
//! ```
//!
//! Cases: `churn STACK TOTAL CONCURRENT [held|dropped]` (smoltcp's
//! TIME-WAIT; held unless told), `bulk STACK BYTES BUFFER`,
//! `scaling STACK IDLE ROUND_TRIPS`, `memory STACK KIND N`
//! (`KIND`: `established` or `time-wait`).

use std::time::Duration;

use synack_bench::memory::Kind;
use synack_bench::{bulk, churn, memory, scaling, Silent};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let stack = args.get(1).map_or("synack", String::as_str);
    let smol = stack == "smoltcp";
    let cap = Duration::from_secs(3600);
    match args.first().map_or("churn", String::as_str) {
        "churn" => {
            let (total, c) = (arg(2, 100_000), arg(3, 1) as usize);
            let tw = match args.get(4).map(String::as_str) {
                Some("dropped") => churn::TimeWait::Dropped,
                _ => churn::TimeWait::Held,
            };
            let o = if smol {
                churn::smoltcp(c, total, tw, cap, &mut Silent)
            } else {
                churn::synack(c, total, cap, &mut Silent)
            };
            println!("{o:?} -> {:.0} conn/s", o.rate());
        }
        "bulk" => {
            let (bytes, buf) = (arg(2, 1 << 30), arg(3, 64 << 10) as usize);
            let o = if smol {
                bulk::smoltcp(bytes, buf, cap, &mut Silent)
            } else {
                bulk::synack(bytes, buf, cap, &mut Silent)
            };
            println!("{o:?} -> {:.2} Gbit/s", o.gbps());
        }
        "scaling" => {
            let (idle, rt) = (arg(2, 10), arg(3, 50_000));
            let o = if smol {
                scaling::smoltcp(idle, rt, &mut Silent)
            } else {
                scaling::synack(idle, rt, &mut Silent)
            };
            match o {
                Ok(o) => println!("{o:?} -> {:.0} ns/segment", o.ns_per_segment()),
                Err(e) => println!("error: {e}"),
            }
        }
        "memory" => {
            let kind = match args.get(2).map(String::as_str) {
                Some("time-wait") => Kind::TimeWait,
                _ => Kind::Established,
            };
            let n = arg(3, 100_000);
            println!("{:?} bytes/conn", memory::measure(None, stack, kind, n));
        }
        other => eprintln!("unknown case `{other}`"),
    }
}
