//! Over TUN, against the Linux kernel: synack and smoltcp on a TUN device,
//! beside the kernel talking to itself over a veth pair, in network
//! namespaces the benchmark makes (needs root).

use crate::report::{Figure, Progress};
use crate::Sizes;

/// The TUN benchmark's cases. Not measured yet: every row says why.
pub fn run(_sizes: &Sizes, progress: &mut dyn Progress) -> Vec<Figure> {
    progress.case("tun");
    let why = "the TUN benchmark is not implemented yet";
    let mut out = Vec::new();
    for stack in ["kernel", "synack", "smoltcp"] {
        for dir in ["to-stack", "from-stack"] {
            out.push(Figure::skipped("tun", stack, "Gbit/s", why).param("direction", dir));
        }
        out.push(
            Figure::skipped("tun", stack, "req/s", why).param("direction", "request-response"),
        );
    }
    out
}
