//! The traffic of the path benchmark: timed bulk flows (a sender writes
//! until a deadline, the receiver counts what arrived by then) and the
//! request/response whose response loses its last segment.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::tun::{in_ns, Netns, STALL};

/// How often a blocked read or write looks at its deadline.
const TICK: Duration = Duration::from_millis(100);

/// What a receiver counted: bytes, and when the last of them arrived; and
/// the connection, kept open until this is dropped (after the sender
/// stopped: a receiver that closed first would reset the sender while it
/// still writes).
pub struct Count {
    /// Bytes read before the deadline.
    pub bytes: u64,
    /// When the last of them was read.
    pub last: Instant,
    _held: TcpStream,
}

/// A receiver's [`Count`], or why it has none.
pub type Counted = Result<Count, String>;

/// Writes to `w` until `deadline` or until `limit` bytes are written.
pub fn timed_source(mut w: impl Write, deadline: Instant, limit: u64) -> Result<u64, String> {
    let chunk = vec![0x5au8; 1 << 16];
    let mut sent = 0u64;
    while sent < limit && Instant::now() < deadline {
        let n = (limit - sent).min(chunk.len() as u64) as usize;
        match w.write(&chunk[..n]) {
            Ok(k) => sent += k as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write after {sent} bytes: {e}")),
        }
    }
    Ok(sent)
}

/// A kernel receiver on listener `l` (bound in its namespace): accepts one
/// connection and counts what it reads before `deadline`, up to `limit`.
pub fn timed_sink(l: TcpListener, deadline: Instant, limit: u64) -> JoinHandle<Counted> {
    std::thread::spawn(move || {
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err("no connection before the deadline".into());
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        s.set_nonblocking(false).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(TICK)).ok();
        count(s, deadline, limit)
    })
}

fn count(s: TcpStream, deadline: Instant, limit: u64) -> Counted {
    let mut buf = vec![0u8; 1 << 18];
    let (mut got, mut last) = (0u64, Instant::now());
    while got < limit {
        match (&s).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                got += n as u64;
                last = now;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(Count {
        bytes: got,
        last,
        _held: s,
    })
}

/// The kernel's retransmission count on `s` (`tcpi_total_retrans`).
fn kernel_retransmissions(s: &TcpStream) -> Option<u32> {
    // SAFETY: an all-zero tcp_info is a valid value of the plain C struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid socket; `info` and `len` outlive the call and `len`
    // says how much the kernel may write.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info.tcpi_total_retrans)
}

/// The congestion controller of every kernel sender: the reference.
pub const KERNEL_CC: &str = "cubic";

/// Sets `s`'s congestion controller to `name` (`TCP_CONGESTION`; root may
/// pick one the host does not allow namespaces to make their default).
pub fn set_congestion_control(s: &TcpStream, name: &str) -> Result<(), String> {
    // SAFETY: a valid socket; the kernel reads `name.len()` bytes of it.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!(
            "TCP_CONGESTION {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut got = [0u8; 16];
    let mut len = got.len() as libc::socklen_t;
    // SAFETY: a valid socket; the kernel writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            got.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let got = &got[..(len as usize).min(16)];
    let got = got.split(|b| *b == 0).next().unwrap_or_default();
    if rc != 0 || got != name.as_bytes() {
        return Err(format!(
            "TCP_CONGESTION is {:?}, not {name}",
            String::from_utf8_lossy(got)
        ));
    }
    Ok(())
}

/// A kernel sender in namespace `ns`: connects to `to`, switches to
/// [`KERNEL_CC`] before it writes, writes until `deadline` (or `limit`
/// bytes). Returns its retransmission count.
pub fn kernel_sender(
    ns: &Netns,
    to: SocketAddr,
    deadline: Instant,
    limit: u64,
) -> JoinHandle<Result<u32, String>> {
    in_ns(&ns.name, move || {
        let s = TcpStream::connect_timeout(&to, Duration::from_secs(10))
            .map_err(|e| format!("kernel connect to {to}: {e}"))?;
        set_congestion_control(&s, KERNEL_CC)?;
        s.set_write_timeout(Some(TICK)).ok();
        timed_source(&s, deadline, limit)?;
        Ok(kernel_retransmissions(&s).unwrap_or(0))
    })
}

/// synack as the sender: connects through `net` to `to`, writes until
/// `deadline` (or `limit` bytes), closes.
pub fn synack_sender(
    net: &synack::Net,
    to: SocketAddr,
    deadline: Instant,
    limit: u64,
) -> JoinHandle<Result<(), String>> {
    let net = net.clone();
    std::thread::spawn(move || {
        let s = synack::net::TcpStream::connect_timeout(&net, to, Duration::from_secs(10))
            .map_err(|e| format!("synack connect to {to}: {e}"))?;
        s.set_write_timeout(Some(TICK)).ok();
        timed_source(&s, deadline, limit)?;
        Ok(())
    })
}

/// A server that answers each request (`request` bytes) on each of its
/// connections with `response` bytes, until the client closes.
pub fn serve<S: Read + Write>(mut s: S, request: usize, response: usize) -> Result<(), String> {
    let mut req = vec![0u8; request];
    let body = vec![0x42u8; response];
    while s.read_exact(&mut req).is_ok() {
        s.write_all(&body)
            .map_err(|e| format!("response write: {e}"))?;
        s.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A kernel client in namespace `ns`: `runs` connections to `to`, each one
/// request of `request` bytes and a `response`-byte response. The time of
/// each, from the request's write to the response's last byte.
pub fn kernel_client(
    ns: &Netns,
    to: SocketAddr,
    runs: usize,
    request: usize,
    response: usize,
) -> JoinHandle<Result<Vec<Duration>, String>> {
    in_ns(&ns.name, move || {
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(10))
                .map_err(|e| format!("client connect to {to}, run {i}: {e}"))?;
            s.set_nodelay(true).ok();
            s.set_read_timeout(Some(STALL)).ok();
            let mut body = vec![0u8; response];
            let t0 = Instant::now();
            s.write_all(&vec![1u8; request])
                .map_err(|e| format!("request write, run {i}: {e}"))?;
            s.read_exact(&mut body)
                .map_err(|e| format!("response read, run {i}: {e}"))?;
            times.push(t0.elapsed());
            // A pause between runs: the server's side settles.
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(times)
    })
}
