//! Measures the stack against the kernel over a TUN device: a 100 MiB
//! transfer each way, and connections per second opened and closed by the
//! kernel against a synack echo server. Run it inside a network namespace
//! of its own (it creates syn0 there, 10.0.0.2 for the stack and
//! 10.0.0.1/24 for the kernel), in release mode:
//!
//! ```text
//! ip netns add m && ip netns exec m target/release/examples/tun_measure [MIB] [SECS] [THREADS]; ip netns del m
//! ```

#[cfg(target_os = "linux")]
use std::io::{Read, Write};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let threads: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let net = synack::Net::builder("syn0")
        .addr("10.0.0.2".parse().unwrap())
        .host("10.0.0.1/24".parse().unwrap())
        .config(synack::core::Config {
            msl: Duration::from_millis(500),
            send_buffer: 1 << 20,
            recv_buffer: 1 << 20,
            ..Default::default()
        })
        .start()?;
    kernel_to_synack(&net, mib << 20)?;
    synack_to_kernel(&net, mib << 20)?;
    connections_per_second(&net, secs, threads)?;
    let st = net.driver_stats();
    println!(
        "driver: {} packets in, {} out, {} batched reads; stack: {} retransmissions",
        st.rx_packets,
        st.tx_packets,
        st.rx_batches,
        net.with_stack(|s| s.stats().retransmissions)
    );
    Ok(())
}

/// Reads `s` to its end; returns how many bytes came.
#[cfg(target_os = "linux")]
fn drain(mut s: impl Read) -> usize {
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0;
    loop {
        match s.read(&mut buf).unwrap() {
            0 => break n,
            k => n += k,
        }
    }
}

/// Writes `total` bytes to `w` in 256 KiB chunks.
#[cfg(target_os = "linux")]
fn fill(w: &mut impl Write, total: usize) -> std::io::Result<()> {
    let chunk = vec![0x5au8; 256 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len());
        w.write_all(&chunk[..n])?;
        left -= n;
    }
    Ok(())
}

/// Prints a transfer's goodput.
#[cfg(target_os = "linux")]
fn report(what: &str, got: usize, d: Duration) {
    let gbit = got as f64 * 8.0 / d.as_secs_f64() / 1e9;
    println!("{what}: {got} bytes in {d:.2?}: {gbit:.2} Gbit/s");
}

/// A kernel socket sends `total` bytes to a synack listener.
#[cfg(target_os = "linux")]
fn kernel_to_synack(net: &synack::Net, total: usize) -> std::io::Result<()> {
    let sink = synack::net::TcpListener::bind(net, "10.0.0.2:9000".parse().unwrap())?;
    let rx = std::thread::spawn(move || drain(sink.accept().unwrap().0));
    let t0 = Instant::now();
    let mut k = std::net::TcpStream::connect("10.0.0.2:9000")?;
    fill(&mut k, total)?;
    k.shutdown(std::net::Shutdown::Write)?;
    report("kernel -> synack", rx.join().unwrap(), t0.elapsed());
    Ok(())
}

/// A synack socket sends `total` bytes to a kernel listener.
#[cfg(target_os = "linux")]
fn synack_to_kernel(net: &synack::Net, total: usize) -> std::io::Result<()> {
    let l = std::net::TcpListener::bind("10.0.0.1:9001")?;
    let rx = std::thread::spawn(move || drain(l.accept().unwrap().0));
    let t0 = Instant::now();
    let mut s = synack::net::TcpStream::connect(net, "10.0.0.1:9001".parse().unwrap())?;
    fill(&mut s, total)?;
    s.shutdown(std::net::Shutdown::Write)?;
    report("synack -> kernel", rx.join().unwrap(), t0.elapsed());
    Ok(())
}

/// Kernel clients on `threads` threads open a connection to a synack echo
/// server, echo 1 byte and close, for `secs` seconds.
#[cfg(target_os = "linux")]
fn connections_per_second(net: &synack::Net, secs: u64, threads: usize) -> std::io::Result<()> {
    let echo = synack::net::TcpListener::bind(net, "10.0.0.2:7".parse().unwrap())?;
    std::thread::spawn(move || {
        for s in echo.incoming() {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                let mut b = [0u8; 64];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 || s.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let until = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut done = 0u64;
                while Instant::now() < until {
                    let mut c = std::net::TcpStream::connect("10.0.0.2:7").unwrap();
                    c.write_all(b"x").unwrap();
                    let mut b = [0u8; 1];
                    c.read_exact(&mut b).unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let n: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    println!(
        "kernel clients ({threads} threads) vs synack echo server: {n} connections in {secs} s: {:.0} conn/s",
        n as f64 / secs as f64
    );
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the TUN driver needs Linux");
}
