//! An echo server on the tokio API (feature `tokio`), over a TUN device.
//!
//! ```text
//! sudo cargo run -p synack --features tokio --example tokio_echo_server -- syn0 10.0.0.2 10.0.0.1/24
//! ```

use synack::tokio::TcpListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tun, addr, host] = args.as_slice() else {
        eprintln!("usage: tokio_echo_server TUN ADDR HOST_IP/PREFIX");
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
    let listener = TcpListener::bind(&net, local)?;
    println!("echoing on {local}");
    loop {
        let (mut stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}
