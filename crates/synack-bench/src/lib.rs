//! Benchmarks of synack against smoltcp (and, over TUN, the Linux kernel).
//!
//! Every benchmark runs both user-space stacks in the same harness: two hosts
//! in one process joined by one in-memory [`pipe::Link`] on a virtual clock
//! (MTU 1500, checksums computed and verified by each stack), driven by the
//! same loop shape ([`synack_side::Pair`] and [`smoltcp_side::Pair`]). Only
//! real time (or CPU time) is measured; virtual time only drives the stacks'
//! timers, so a 10 s TIME-WAIT costs nothing to wait out.
//!
//! The benchmarks (`synack bench` runs them when the `synack` binary is
//! built with its `bench` feature: `cargo run --release --features bench --
//! bench`; `cargo bench -p synack-bench` has criterion targets for the same
//! workloads at small sizes):
//! [`churn`], [`bulk`], [`memory`], [`scaling`], [`tun`], [`path`],
//! [`idle`], [`tun2socks`].

pub mod bulk;
pub mod churn;
pub mod idle;
pub mod memory;
pub mod path;
pub mod pipe;
pub mod report;
pub mod scaling;
pub mod smoltcp_side;
pub mod synack_side;
pub mod tun;
pub mod tun2socks;

pub use report::{Figure, Progress, Silent};

/// The wire MTU of every benchmark, Ethernet's: the in-memory link's (both
/// stacks are configured with it), the veth pair's and the TUN devices'
/// (all but the extra rows at [`tun::JUMBO_MTU`]). The targets are checked
/// against the figures at this MTU.
pub const MTU: usize = 1500;

/// How big a run is: the sizes by default ([`Sizes::full`]), or small
/// ones for a smoke run ([`Sizes::quick`], [`Sizes::tiny`]).
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Churn: (connections open at once, connections in total for synack,
    /// connections in total for smoltcp).
    pub churn: Vec<(usize, u64, u64)>,
    /// Bulk: bytes moved one way.
    pub bulk_bytes: u64,
    /// Bulk: the buffer sizes (send and receive, both ends).
    pub bulk_buffers: Vec<usize>,
    /// Memory: connections of each kind for synack.
    pub memory_synack: usize,
    /// Memory: connections of each kind for smoltcp.
    pub memory_smoltcp: usize,
    /// Scaling: idle connections for synack.
    pub scaling_synack: Vec<usize>,
    /// Scaling: idle connections for smoltcp.
    pub scaling_smoltcp: Vec<usize>,
    /// Scaling: request/response round trips timed on the one busy connection.
    pub scaling_round_trips: u64,
    /// TUN: bytes moved each way.
    pub tun_bytes: u64,
    /// TUN: request/response round trips.
    pub tun_round_trips: u64,
    /// Real-time cap on one case: a case still running then stops and
    /// reports what it completed so far (marked `capped`).
    pub cap: std::time::Duration,
    /// Path: how long each timed flow over the emulated path sends.
    pub path_transfer: std::time::Duration,
    /// Idle: connections the kernel opens to `synack echo-server` and holds.
    pub idle_connections: usize,
    /// tun2socks: seconds of each iperf3 run and of the connection-rate run.
    pub tun2socks_secs: u64,
    /// tun2socks: connections timed one at a time for the latencies.
    pub tun2socks_latency_conns: usize,
    /// tun2socks: idle relayed connections weighed.
    pub tun2socks_idle: usize,
    /// tun2socks: seconds they sit idle while the tool's CPU time is taken.
    pub tun2socks_idle_secs: u64,
}

impl Sizes {
    /// The sizes (smoltcp's where its cost grows with the square of
    /// the connection count are smaller, and say so in their params).
    pub fn full() -> Self {
        Sizes {
            churn: vec![
                (1, 200_000, 20_000),
                (1_000, 1_000_000, 20_000),
                (100_000, 1_000_000, 200_000),
            ],
            bulk_bytes: 1 << 30,
            bulk_buffers: vec![64 << 10, 4 << 20],
            memory_synack: 1_000_000,
            memory_smoltcp: 10_000,
            scaling_synack: vec![10, 10_000, 1_000_000],
            scaling_smoltcp: vec![10, 10_000],
            scaling_round_trips: 50_000,
            tun_bytes: 100 << 20,
            tun_round_trips: 20_000,
            cap: std::time::Duration::from_secs(30),
            path_transfer: std::time::Duration::from_secs(30),
            idle_connections: 100_000,
            tun2socks_secs: 5,
            tun2socks_latency_conns: 2_000,
            tun2socks_idle: 10_000,
            tun2socks_idle_secs: 5,
        }
    }

    /// Small sizes: the whole suite in seconds.
    pub fn quick() -> Self {
        Sizes {
            churn: vec![
                (1, 5_000, 2_000),
                (1_000, 20_000, 4_000),
                (10_000, 40_000, 20_000),
            ],
            bulk_bytes: 64 << 20,
            bulk_buffers: vec![64 << 10, 4 << 20],
            memory_synack: 20_000,
            memory_smoltcp: 2_000,
            scaling_synack: vec![10, 1_000, 20_000],
            scaling_smoltcp: vec![10, 1_000],
            scaling_round_trips: 2_000,
            tun_bytes: 8 << 20,
            tun_round_trips: 1_000,
            cap: std::time::Duration::from_secs(5),
            path_transfer: std::time::Duration::from_secs(5),
            idle_connections: 2_000,
            tun2socks_secs: 1,
            tun2socks_latency_conns: 200,
            tun2socks_idle: 1_000,
            tun2socks_idle_secs: 1,
        }
    }

    /// Tiny sizes for the smoke test: every code path, no meaningful figure.
    pub fn tiny() -> Self {
        Sizes {
            churn: vec![(1, 20, 20), (10, 50, 50)],
            bulk_bytes: 1 << 20,
            bulk_buffers: vec![64 << 10],
            memory_synack: 200,
            memory_smoltcp: 50,
            scaling_synack: vec![10, 100],
            scaling_smoltcp: vec![10],
            scaling_round_trips: 50,
            tun_bytes: 1 << 20,
            tun_round_trips: 50,
            cap: std::time::Duration::from_secs(30),
            path_transfer: std::time::Duration::from_secs(2),
            idle_connections: 200,
            tun2socks_secs: 1,
            tun2socks_latency_conns: 50,
            tun2socks_idle: 100,
            tun2socks_idle_secs: 1,
        }
    }
}

/// Names of the benchmarks, in the order `synack bench` runs them.
pub const BENCHES: [&str; 8] = [
    "churn",
    "bulk",
    "memory",
    "scaling",
    "tun",
    "path",
    "idle",
    "tun2socks",
];

/// CPU time this process has used so far, in nanoseconds.
pub fn cpu_time_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The byte at position `i` of the stream every benchmark sends.
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// How many cases `bench` runs with `sizes` (for a progress bar).
pub fn case_count(bench: &str, sizes: &Sizes) -> usize {
    match bench {
        "churn" => churn::ROWS_PER_CASE * sizes.churn.len(),
        "bulk" => 2 * bulk::RUNS * sizes.bulk_buffers.len(),
        "memory" => 4,
        "scaling" => sizes.scaling_synack.len() + sizes.scaling_smoltcp.len(),
        "tun" => 5,
        "path" => path::CASES,
        "idle" => 1,
        "tun2socks" => tun2socks::CASES,
        _ => 0,
    }
}

/// Runs one benchmark by name. `exe` is the `synack` binary (built with the
/// `bench` feature), re-executed for each memory measurement (`None`:
/// measure in this process) and as `synack tun2socks` (`None`: its rows
/// are skipped).
pub fn run_bench(
    bench: &str,
    sizes: &Sizes,
    progress: &mut dyn Progress,
    exe: Option<&std::path::Path>,
) -> Vec<Figure> {
    match bench {
        "churn" => churn::run(sizes, progress),
        "bulk" => bulk::run(sizes, progress),
        "memory" => memory::run(sizes, progress, exe),
        "scaling" => scaling::run(sizes, progress),
        "tun" => tun::run(sizes, progress),
        "path" => path::run(sizes, progress),
        "idle" => idle::run(sizes, progress, exe),
        "tun2socks" => tun2socks::run(sizes, progress, exe),
        _ => Vec::new(),
    }
}
