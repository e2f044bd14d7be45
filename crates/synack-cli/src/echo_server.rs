//! `synack echo-server`: a TCP echo service on the stack, over a TUN device.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use synack::net::{TcpListener, TcpStream};

use crate::tun_common::TunArgs;

/// Flags of `synack echo-server`.
#[derive(Args, Debug)]
pub struct EchoServerArgs {
    #[command(flatten)]
    tun: TunArgs,
    /// The port to listen on.
    #[arg(long, default_value_t = 7)]
    port: u16,
}

/// Open connections, so that a signal can close them all.
type Open = Arc<Mutex<HashMap<u64, TcpStream>>>;

/// Runs `synack echo-server` until SIGINT or SIGTERM.
pub fn run(args: EchoServerArgs) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let net = args.tun.start()?;
    let local = SocketAddr::new(args.tun.addr, args.port);
    let listener =
        TcpListener::bind(&net, local).map_err(|e| format!("cannot listen on {local}: {e}"))?;
    eprintln!(
        "echo-server: listening on {local} (device {})",
        net.tun_name()
    );
    let open: Open = Arc::default();
    let mut next = 0u64;
    let mut workers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept_timeout(Duration::from_millis(100)) {
            Ok((stream, _)) => {
                next += 1;
                let key = next;
                open.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, stream.clone());
                let open = Arc::clone(&open);
                workers.retain(|w: &std::thread::JoinHandle<()>| !w.is_finished());
                workers.push(std::thread::spawn(move || {
                    echo(stream);
                    open.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
    drop(listener);
    // Close every connection: FIN after what is queued, readers see the end.
    let streams: Vec<TcpStream> = open
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .map(|(_, s)| s)
        .collect();
    for s in &streams {
        let _ = s.shutdown(Shutdown::Both);
    }
    drop(streams);
    for w in workers {
        let _ = w.join();
    }
    // Give the FINs a moment to be sent and acknowledged.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && net.with_stack(|s| s.connection_count()) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    net.shutdown();
    Ok(())
}

/// Echoes one connection until the peer's FIN, then closes it.
fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}
