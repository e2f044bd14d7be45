//! `synack bench`: the benchmarks of `synack-bench` behind a progress bar
//! (stderr), with a table (or JSON Lines, `--json`) on stdout at the end.
//!
//! Only in a binary built with the `bench` feature (`cargo run --release
//! --features bench -- bench`): the benchmarks build smoltcp, which a user
//! of the command line should not have to compile. Without the feature the
//! command says, in one line, how to get it.

#[cfg(feature = "bench")]
use std::io::IsTerminal;

use clap::Args;
#[cfg(feature = "bench")]
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
#[cfg(feature = "bench")]
use synack_bench::{Figure, Progress, Sizes, BENCHES};

/// Flags of `synack bench`.
#[derive(Args, Debug)]
// Without the feature the flags are parsed (so that `--help` shows them)
// but not read.
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub struct BenchArgs {
    /// Benchmarks to run: churn, bulk, memory, scaling, tun, path, idle,
    /// tun2socks (all when none is named).
    names: Vec<String>,
    /// Small sizes: the whole suite in seconds (a smoke run, not figures to
    /// quote).
    #[arg(long)]
    quick: bool,
    /// One JSON object per figure and line on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `synack bench` in a binary built without the benchmarks: says how
/// to run them.
#[cfg(not(feature = "bench"))]
pub fn run(_args: BenchArgs) -> Result<(), String> {
    Err(
        "this synack is built without the benchmarks (they compile smoltcp): \
         run them with `cargo run --release --features bench -- bench`"
            .to_string(),
    )
}

/// The progress bar: one bar for the whole run, a message per case.
#[cfg(feature = "bench")]
struct Bar {
    bar: ProgressBar,
    started: bool,
    done: u64,
}

#[cfg(feature = "bench")]
impl Progress for Bar {
    fn case(&mut self, label: &str) {
        if self.started {
            self.done += 1;
        }
        self.started = true;
        self.bar.set_position(self.done * 1000);
        self.bar.set_message(label.to_string());
    }

    fn advance(&mut self, fraction: f64) {
        let f = (fraction.clamp(0.0, 1.0) * 1000.0) as u64;
        self.bar.set_position(self.done * 1000 + f.min(999));
    }

    fn say(&mut self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }
}

/// Runs `synack bench`.
#[cfg(feature = "bench")]
pub fn run(args: BenchArgs) -> Result<(), String> {
    // Re-executed by the memory benchmark for one measurement.
    if let Some(v) = synack_bench::memory::child_from_env() {
        println!("{}", v?);
        return Ok(());
    }
    // Re-executed by the idle benchmark as one of its kernel clients.
    if let Some(r) = synack_bench::idle::client_from_env() {
        return r;
    }
    for n in &args.names {
        if !BENCHES.contains(&n.as_str()) {
            return Err(format!(
                "unknown benchmark `{n}` (known: {})",
                BENCHES.join(", ")
            ));
        }
    }
    let names: Vec<&str> = if args.names.is_empty() {
        BENCHES.to_vec()
    } else {
        BENCHES
            .iter()
            .copied()
            .filter(|b| args.names.iter().any(|n| n == b))
            .collect()
    };
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let cases: usize = names
        .iter()
        .map(|n| synack_bench::case_count(n, &sizes))
        .sum();
    let bar = ProgressBar::with_draw_target(
        Some(cases as u64 * 1000),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:32}] {percent:>3}%  {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let mut progress = Bar {
        bar,
        started: false,
        done: 0,
    };
    let mut figures: Vec<Figure> = Vec::new();
    for name in &names {
        figures.extend(synack_bench::run_bench(
            name,
            &sizes,
            &mut progress,
            Some(&exe),
        ));
    }
    progress.bar.finish_and_clear();
    if args.json {
        for f in &figures {
            println!("{}", f.to_json());
        }
    } else {
        print!("{}", synack_bench::report::table(&figures));
        let verdicts = synack_bench::report::verdicts(&figures);
        if !verdicts.is_empty() {
            println!();
            for v in verdicts {
                println!("{v}");
            }
        }
    }
    Ok(())
}
