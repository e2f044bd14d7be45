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
fn main() -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr};
    use std::time::{Duration, Instant};

    use synack::net::{TcpListener, TcpStream};

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
    let total = mib << 20;
    let chunk = vec![0x5au8; 256 * 1024];
    let gbit = |bytes: usize, d: Duration| bytes as f64 * 8.0 / d.as_secs_f64() / 1e9;

    // kernel -> synack
    let sink = TcpListener::bind(&net, "10.0.0.2:9000".parse().unwrap())?;
    let rx = std::thread::spawn(move || {
        let (mut s, _) = sink.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        loop {
            match s.read(&mut buf).unwrap() {
                0 => break n,
                k => n += k,
            }
        }
    });
    let t0 = Instant::now();
    let mut k = std::net::TcpStream::connect("10.0.0.2:9000")?;
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len());
        k.write_all(&chunk[..n])?;
        left -= n;
    }
    k.shutdown(Shutdown::Write)?;
    let got = rx.join().unwrap();
    let d = t0.elapsed();
    println!(
        "kernel -> synack: {got} bytes in {d:.2?}: {:.2} Gbit/s",
        gbit(got, d)
    );

    // synack -> kernel
    let l = std::net::TcpListener::bind("10.0.0.1:9001")?;
    let rx = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        loop {
            match s.read(&mut buf).unwrap() {
                0 => break n,
                k => n += k,
            }
        }
    });
    let t0 = Instant::now();
    let mut s = TcpStream::connect(&net, "10.0.0.1:9001".parse().unwrap())?;
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n])?;
        left -= n;
    }
    s.shutdown(Shutdown::Write)?;
    let got = rx.join().unwrap();
    let d = t0.elapsed();
    println!(
        "synack -> kernel: {got} bytes in {d:.2?}: {:.2} Gbit/s",
        gbit(got, d)
    );
    drop(s);

    // connections per second: kernel clients open, echo 1 byte, close.
    let echo = TcpListener::bind(&net, "10.0.0.2:7".parse().unwrap())?;
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
                let addr: SocketAddr = "10.0.0.2:7".parse().unwrap();
                let mut done = 0u64;
                while Instant::now() < until {
                    let mut c = std::net::TcpStream::connect(addr).unwrap();
                    c.write_all(b"x").unwrap();
                    let mut b = [0u8; 1];
                    c.read_exact(&mut b).unwrap();
                    drop(c);
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

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the TUN driver needs Linux");
}
