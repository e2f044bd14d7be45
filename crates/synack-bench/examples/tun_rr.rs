//! Request/response over TUN alone (kernel over veth, synack and smoltcp
//! over TUN), several rounds alternating the stacks, for the spread:
//!
//! ```sh
//! cargo build --release -p synack-bench --example tun_rr
//! sudo target/release/examples/tun_rr 20000 5
//! ```
//!
//! Arguments: round trips per run (20,000) and rounds (5). Root only.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let round_trips = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rounds = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    for f in synack_bench::tun::rr_rounds(round_trips, rounds) {
        let v = f
            .value
            .map_or("-".to_string(), synack_bench::report::format_value);
        println!(
            "{:8} {:>10} {}  {}",
            f.stack,
            v,
            f.unit,
            f.note.unwrap_or_default()
        );
    }
}
