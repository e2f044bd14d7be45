//! An echo server on the blocking API, over a TUN device.
//!
//! ```text
//! sudo cargo run -p synack --example echo_server -- syn0 10.0.0.2 10.0.0.1/24
//! nc 10.0.0.2 7
//! ```
//!
//! Arguments: TUN device, the stack's address, the host side's IP/PREFIX.

#[cfg(target_os = "linux")]
fn main() -> std::io::Result<()> {
    use std::io::{Read, Write};

    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tun, addr, host] = args.as_slice() else {
        eprintln!("usage: echo_server TUN ADDR HOST_IP/PREFIX");
        std::process::exit(2);
    };
    let host = host
        .parse()
        .map_err(|e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let net = synack::Net::builder(tun)
        .addr(addr.parse().expect("an IP address"))
        .host(host)
        .start()?;
    let local = std::net::SocketAddr::new(addr.parse().expect("an IP address"), 7);
    let listener = synack::net::TcpListener::bind(&net, local)?;
    println!("echoing on {local}");
    for stream in listener.incoming() {
        let mut stream = stream?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
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
        });
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the TUN driver needs Linux");
}
