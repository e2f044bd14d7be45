//! `synack bench idle --quick`: the kernel opens 2,000 connections to a
//! re-executed `synack echo-server` over TUN; every one echoes a byte at
//! the end, and the server holds them on its two threads. Needs root and
//! /dev/net/tun (the bench then makes its own namespace); elsewhere it
//! prints `skipped: <why>`. No figure is checked but the thread count.
#![cfg(all(target_os = "linux", feature = "bench"))]

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// The `"value"` of a JSON row, as text.
fn value(row: &str) -> &str {
    let at = row.find("\"value\":").expect("a value") + "\"value\":".len();
    let rest = &row[at..];
    &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
}

#[test]
fn echo_server_holds_the_quick_run_on_two_threads() {
    let out = std::process::Command::new(BIN)
        .args(["bench", "idle", "--quick", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    if let Some(row) = rows.iter().find(|r| r.contains("\"skipped\"")) {
        println!("skipped: {row}");
        return;
    }
    for row in &rows {
        assert!(row.contains("\"connections\":2000"), "{row}");
        let v: f64 = value(row).parse().expect(row);
        assert!(v > 0.0, "{row}");
    }
    let threads = rows
        .iter()
        .find(|r| r.contains("\"unit\":\"threads\""))
        .expect("a threads row");
    assert_eq!(value(threads), "2.0", "{threads}");
}
