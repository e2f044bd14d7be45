//! An HTTP/1.1 GET client on the blocking API, over a TUN device.
//!
//! ```text
//! sudo cargo run -p synack --example http_get -- syn0 10.0.0.2 10.0.0.1/24 10.0.0.1:8000 /
//! ```
//!
//! Arguments: TUN device, the stack's address, the host side's IP/PREFIX,
//! the server, the path. Prints the status line and headers on stderr and
//! the body on stdout.

#[cfg(target_os = "linux")]
fn main() -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Duration;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tun, addr, host, server, path] = args.as_slice() else {
        eprintln!("usage: http_get TUN ADDR HOST_IP/PREFIX SERVER_IP:PORT PATH");
        std::process::exit(2);
    };
    let host = host
        .parse()
        .map_err(|e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let net = synack::Net::builder(tun)
        .addr(addr.parse().expect("an IP address"))
        .host(host)
        .start()?;
    let server: std::net::SocketAddr = server.parse().expect("IP:PORT");
    let mut stream =
        synack::net::TcpStream::connect_timeout(&net, server, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\nUser-Agent: synack\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        eprint!("{line}");
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<u64>().ok();
            }
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => reader.take(n).read_to_end(&mut body)?,
        None => reader.read_to_end(&mut body)?,
    };
    std::io::stdout().write_all(&body)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the TUN driver needs Linux");
}
