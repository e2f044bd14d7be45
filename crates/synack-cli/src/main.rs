//! The `synack` command line (see `shared/CONTRACT.md`).

mod bench;
#[cfg(target_os = "linux")]
mod connect;
mod demo;
mod diagram;
#[cfg(target_os = "linux")]
mod echo_server;
mod explain;
mod svg;
#[cfg(target_os = "linux")]
mod tun2socks;
#[cfg(target_os = "linux")]
mod tun_common;
mod window;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// synack: a user-space TCP stack you can watch at work.
#[derive(Parser)]
#[command(name = "synack", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a client and an echo server over a simulated link and draw what
    /// happens, segment by segment and state by state.
    Demo(demo::DemoArgs),
    /// Run the benchmarks (churn, bulk, memory, scaling, tun) for synack and
    /// the stacks it is compared with; a table at the end, or --json (in a
    /// synack built with `--features bench`).
    Bench(bench::BenchArgs),
    /// A TCP echo service on the user-space stack, over a Linux TUN device.
    #[cfg(target_os = "linux")]
    EchoServer(echo_server::EchoServerArgs),
    /// A netcat-like client on the user-space stack, over a Linux TUN device.
    #[cfg(target_os = "linux")]
    Connect(connect::ConnectArgs),
    /// Relays every TCP connection and UDP datagram that arrives on a TUN
    /// device through a SOCKS5 proxy or the host's own sockets.
    #[cfg(target_os = "linux")]
    Tun2socks(tun2socks::Tun2socksArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(2);
            }
            // One clear line, as the contract asks.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        #[cfg(target_os = "linux")]
        Command::EchoServer(args) => echo_server::run(args),
        #[cfg(target_os = "linux")]
        Command::Connect(args) => connect::run(args),
        #[cfg(target_os = "linux")]
        Command::Tun2socks(args) => tun2socks::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
