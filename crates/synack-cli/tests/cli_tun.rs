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
