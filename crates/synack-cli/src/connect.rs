//! `synack connect`: a netcat-like client on the stack, over a TUN device.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use clap::Args;
use synack::core::State;
use synack::net::TcpStream;
use synack::Net;

use crate::tun_common::TunArgs;

/// Flags of `synack connect`.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    #[command(flatten)]
    tun: TunArgs,
    /// The peer to connect to.
    #[arg(value_name = "REMOTE_IP:PORT")]
    remote: SocketAddr,
}

/// Runs `synack connect`.
pub fn run(args: ConnectArgs) -> Result<(), String> {
    let net = args.tun.start()?;
    let result = session(&net, args.remote);
    net.shutdown();
    result
}

fn session(net: &Net, remote: SocketAddr) -> Result<(), String> {
    on_signal_exit(net.clone())?;
    let stream = TcpStream::connect(net, remote).map_err(message)?;
    let writer = stream.clone();
    std::thread::spawn(move || copy_stdin(writer));
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = &stream;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    // Nobody reads our output any more: stop reading too.
                    break;
                }
            }
            Err(e) => return Err(message(e)),
        }
    }
    // The peer's FIN: send ours (if stdin has not ended yet) and wait for
    // the close to finish, TIME-WAIT included when we closed first.
    stream.shutdown(Shutdown::Write).map_err(message)?;
    loop {
        match stream.state() {
            State::Closed => break,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => Err(message(e)),
        Ok(None) => Ok(()),
    }
}

/// Copies stdin to the connection; at EOF, half-closes it (FIN).
fn copy_stdin(stream: TcpStream) {
    let mut input = io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = &stream;
    loop {
        match input.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// SIGINT or SIGTERM: flush the trace and capture, exit 130.
fn on_signal_exit(net: Net) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            net.shutdown();
            eprintln!("interrupted");
            std::process::exit(130);
        }
    });
    Ok(())
}

/// The one-line text of an error, as the contract spells it.
fn message(e: io::Error) -> String {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::TimedOut => "connection timed out".into(),
        K::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    }
}
