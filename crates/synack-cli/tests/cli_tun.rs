//! `synack echo-server` and `synack connect` driven as processes inside a
//! network namespace made for each test, against the kernel's tools (`nc`,
//! `python3 -m http.server`). Need root and /dev/net/tun; elsewhere they
//! print `skipped: <why>`.
#![cfg(target_os = "linux")]

#[path = "../../synack/tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{have, Netns};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// A child process killed (if still running) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child with a deadline; returns its exit code.
fn wait_exit(p: &mut Proc, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = p.0.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn host_addr_ready(ns: &Netns) -> bool {
    let out = ns.run("ip", &["addr", "show", "dev", "syn0"]);
    String::from_utf8_lossy(&out.stdout).contains("10.0.0.1/24")
}

/// Runs a command in the namespace with `input` on stdin, bounded in time.
fn run_with_input(ns: &Netns, program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = ns
        .command("timeout")
        .arg("20")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn echo_server_answers_nc_and_exits_on_sigterm() {
    let Some(ns) = Netns::new("cli_echo_server_nc") else {
        return;
    };
    if !have("nc", "-h") {
        println!("skipped: cli_echo_server_nc: no nc (netcat-openbsd)");
        return;
    }
    let trace = std::env::temp_dir().join(format!("synack-cli-echo-{}.jsonl", std::process::id()));
    let mut server = Proc(
        ns.command(BIN)
            .args(["echo-server", "--tun", "syn0", "--addr", "10.0.0.2"])
            .args(["--host", "10.0.0.1/24", "--trace"])
            .arg(&trace)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the host address", || host_addr_ready(&ns));
    let out = run_with_input(
        &ns,
        "nc",
        &["-N", "-w", "5", "10.0.0.2", "7"],
        b"hello synack\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello synack\n",
        "{out:?}"
    );
    // SIGTERM: it closes and exits 0.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut server, Duration::from_secs(10)), 0);
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    assert!(text.contains("\"from\":\"LISTEN\",\"to\":\"SYN-RECEIVED\""));
    assert!(text.contains("\"from\":\"LAST-ACK\",\"to\":\"CLOSED\""));
}

/// A client for the host's own TCP: sends stdin to 10.0.0.2:7 while it
/// reads the echo, half-closes at the end, prints what came back.
const ECHO_CLIENT: &str = "
import socket, sys, threading
s = socket.create_connection(('10.0.0.2', 7), timeout=10)
data = sys.stdin.buffer.read()
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=send).start()
out = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
";

/// The TCP payload lengths of the IPv4 packets of a pcap capture
/// (LINKTYPE_RAW), from each packet's own headers.
fn pcap_payloads(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let p = &bytes[at + 16..(at + 16 + incl).min(bytes.len())];
        at += 16 + incl;
        if p.len() < 40 || p[0] >> 4 != 4 || p[9] != 6 {
            continue;
        }
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let doff = usize::from(p[ihl + 12] >> 4) * 4;
        out.push(total.saturating_sub(ihl + doff));
    }
    out
}

#[test]
fn echo_server_offload_off_puts_only_wire_sized_segments_on_the_device() {
    let Some(ns) = Netns::new("cli_offload_off") else {
        return;
    };
    if !have("python3", "--version") {
        println!("skipped: cli_offload_off: no python3");
        return;
    }
    let pcap = std::env::temp_dir().join(format!("synack-cli-offload-{}.pcap", std::process::id()));
    let mut server = Proc(
        ns.command(BIN)
            .args(["echo-server", "--tun", "syn0", "--addr", "10.0.0.2"])
            .args(["--host", "10.0.0.1/24", "--offload", "off", "--pcap"])
            .arg(&pcap)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the host address", || host_addr_ready(&ns));
    // Enough bulk both ways that, with offloads, the kernel would merge
    // segments into super-segments on the device.
    let input = common::pattern(512 * 1024, 7);
    let out = run_with_input(&ns, "python3", &["-c", ECHO_CLIENT], &input);
    assert!(
        out.stdout == input,
        "echo differs: {} bytes back",
        out.stdout.len()
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut server, Duration::from_secs(10)), 0);
    let bytes = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_file(&pcap);
    let payloads = pcap_payloads(&bytes);
    let data: usize = payloads.iter().sum();
    // Every byte echoed went through the device twice (in and out).
    assert!(data >= 2 * input.len(), "{data} bytes of payload captured");
    // The MSS over a 1500-byte MTU: 1500 - 20 (IPv4) - 20 (TCP).
    let largest = payloads.iter().copied().max().unwrap_or(0);
    assert!(
        largest <= 1460,
        "a {largest}-byte segment crossed the device"
    );
}

#[test]
fn connect_fetches_a_page_from_python_http_server() {
    let Some(ns) = Netns::new("cli_connect_http") else {
        return;
    };
    if !have("python3", "--version") {
        println!("skipped: cli_connect_http: no python3");
        return;
    }
    // A persistent device, so that the server can bind before synack runs.
    ns.ip(&["tuntap", "add", "dev", "syn0", "mode", "tun"]);
    ns.ip(&["addr", "add", "10.0.0.1/24", "dev", "syn0"]);
    ns.ip(&["link", "set", "syn0", "up"]);
    let dir = std::env::temp_dir().join(format!("synack-cli-www-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>served by the kernel</p>\n").unwrap();
    let _http = Proc(
        ns.command("python3")
            .args([
                "-m",
                "http.server",
                "8000",
                "--bind",
                "10.0.0.1",
                "--directory",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("http.server listening", || {
        let out = ns.run("ss", &["-ltn"]);
        String::from_utf8_lossy(&out.stdout).contains("10.0.0.1:8000")
    });
    let out = run_with_input(
        &ns,
        BIN,
        &[
            "connect",
            "--tun",
            "syn0",
            "--addr",
            "10.0.0.2",
            "--msl",
            "0.5",
            "10.0.0.1:8000",
        ],
        b"GET / HTTP/1.0\r\nHost: 10.0.0.1\r\n\r\n",
    );
    let _ = std::fs::remove_dir_all(&dir);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    assert!(body.contains("<p>served by the kernel</p>"), "{body}");
}

#[test]
fn connect_refused_prints_one_line_and_fails() {
    let Some(ns) = Netns::new("cli_connect_refused") else {
        return;
    };
    let out = run_with_input(
        &ns,
        BIN,
        &[
            "connect",
            "--tun",
            "syn0",
            "--addr",
            "10.0.0.2",
            "--host",
            "10.0.0.1/24",
            "10.0.0.1:9",
        ],
        b"",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

#[test]
fn bad_device_is_one_clear_line() {
    let Some(ns) = Netns::new("cli_bad_device") else {
        return;
    };
    let out = ns
        .command(BIN)
        .args(["echo-server", "--tun", "a-name-far-too-long-for-linux"])
        .args(["--addr", "10.0.0.2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad interface name"), "{err}");
}
