//! `synack echo-server`: a TCP echo service on the stack, over a TUN device.
//!
//! Every connection is served from one thread: each is a task on tokio's
//! current-thread runtime, woken by the stack's driver thread when it can
//! read or write ([`synack::tokio`]). The process runs two threads however
//! many connections it holds (this one and the driver's), and an idle
//! connection costs its task and the stack's connection, no buffer: data
//! is read into one scratch buffer shared by all tasks, and only what the
//! send buffer cannot take at once is kept for the connection.

use std::cell::RefCell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clap::Args;
use synack::tokio::{TcpListener, TcpStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tun_common::TunArgs;

/// Flags of `synack echo-server`.
#[derive(Args, Debug)]
pub struct EchoServerArgs {
    #[command(flatten)]
    tun: TunArgs,
    /// The port to listen on.
    #[arg(long, default_value_t = 7)]
    port: u16,
    /// Bound of the accept queue: connections the stack has established
    /// and the server not yet accepted. Past it a SYN is dropped (the
    /// client sends it again a second later), so a burst of connects
    /// wants room while the one thread that accepts is busy.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG)]
    backlog: usize,
}

/// The default of `--backlog`. The stack's own default (128, as a Linux
/// `listen` of old) dropped about one SYN in ten of 2,000 connects from the
/// kernel at once; Linux's cap of 4,096 (`somaxconn`) still dropped 190 to
/// 440 SYNs of 100,000 connects on a loaded 2-CPU machine (each waited a
/// second; the rate fell from about 38,000 to 28,000 conn/s), 65,536 none
/// but those the device dropped. A queued connection costs its queue entry
/// (a connection id) beyond the connection itself, which the stack holds
/// either way; the stack's connection limit and memory budget bound those.
const DEFAULT_BACKLOG: usize = 65_536;

/// How often the accept loop looks at the signal flag.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Size of the scratch buffer reads go into.
const SCRATCH: usize = 64 * 1024;

/// Reads a task may do in one poll before it yields to the others.
const BUDGET: usize = 16;

thread_local! {
    /// The one read buffer of the runtime's thread: a task copies out of it
    /// before it yields, so tasks never see each other's bytes.
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
}

/// Runs `synack echo-server` until SIGINT or SIGTERM.
pub fn run(args: EchoServerArgs) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    if args.backlog == 0 {
        return Err("bad --backlog 0: 1 or more".into());
    }
    let net = args.tun.start_with(|c| c.default_backlog = args.backlog)?;
    let local = SocketAddr::new(args.tun.addr, args.port);
    let listener =
        TcpListener::bind(&net, local).map_err(|e| format!("cannot listen on {local}: {e}"))?;
    eprintln!(
        "echo-server: listening on {local} (device {})",
        net.tun_name()
    );
    let served = rt.block_on(accept_until_stopped(listener, &stop));
    // Dropping the runtime drops every task and so every connection: each
    // closes gracefully (FIN after what is queued).
    drop(rt);
    served?;
    // Give the FINs a moment to be sent and acknowledged.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && net.with_stack(|s| s.connection_count()) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    net.shutdown();
    Ok(())
}

/// Accepts connections, each into a task of its own, until `stop` is set.
async fn accept_until_stopped(listener: TcpListener, stop: &AtomicBool) -> Result<(), String> {
    while !stop.load(Ordering::SeqCst) {
        match tokio::time::timeout(SIGNAL_POLL, listener.accept()).await {
            Ok(Ok((stream, _))) => {
                tokio::spawn(echo(stream));
            }
            Ok(Err(e)) => return Err(format!("accept: {e}")),
            Err(_elapsed) => {}
        }
    }
    Ok(())
}

/// Echoes one connection until the peer's FIN (or an error), then closes
/// it (dropping the stream sends FIN after what is queued).
async fn echo(mut stream: TcpStream) {
    let mut unsent = Unsent::default();
    poll_fn(|cx| echo_some(cx, &mut stream, &mut unsent)).await;
}

/// Bytes read but not yet taken by the send buffer.
#[derive(Default)]
struct Unsent {
    bytes: Vec<u8>,
    at: usize,
}

/// One turn of a connection: sends what is left over, then reads and
/// sends back until it would wait. `Ready` when the connection is done.
fn echo_some(cx: &mut Context<'_>, stream: &mut TcpStream, unsent: &mut Unsent) -> Poll<()> {
    for _ in 0..BUDGET {
        while unsent.at < unsent.bytes.len() {
            match Pin::new(&mut *stream).poll_write(cx, &unsent.bytes[unsent.at..]) {
                Poll::Ready(Ok(n)) if n > 0 => unsent.at += n,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        // Idle connections hold no buffer.
        *unsent = Unsent::default();
        let turn = SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            read_and_send(cx, stream, &mut scratch, unsent)
        });
        if let Some(done) = turn {
            return done;
        }
    }
    // Others get their turn; this one comes back at once.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Reads once into `scratch` and sends it back; what the send buffer does
/// not take goes into `unsent`. `None` to go on, `Some` to return.
fn read_and_send(
    cx: &mut Context<'_>,
    stream: &mut TcpStream,
    scratch: &mut [u8],
    unsent: &mut Unsent,
) -> Option<Poll<()>> {
    let mut buf = ReadBuf::new(scratch);
    match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
        Poll::Pending => return Some(Poll::Pending),
        // The peer's FIN, a reset, or the driver gone: done.
        Poll::Ready(Err(_)) => return Some(Poll::Ready(())),
        Poll::Ready(Ok(())) if buf.filled().is_empty() => return Some(Poll::Ready(())),
        Poll::Ready(Ok(())) => {}
    }
    let data = buf.filled();
    let sent = match Pin::new(&mut *stream).poll_write(cx, data) {
        Poll::Ready(Ok(n)) if n > 0 => n,
        Poll::Ready(_) => return Some(Poll::Ready(())),
        Poll::Pending => 0,
    };
    if sent < data.len() {
        unsent.bytes = data[sent..].to_vec();
        unsent.at = 0;
    }
    None
}
