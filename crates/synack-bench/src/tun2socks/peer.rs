//! tun2proxy, the peer: installed by this benchmark (it is no dependency of
//! any crate, so nobody building `synack` compiles it) with `cargo install
//! --locked` into a cache directory under the target directory, once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The version compared with.
pub const VERSION: &str = "0.8.7";

/// Names a tun2proxy binary to use instead of installing one.
pub const ENV: &str = "SYNACK_BENCH_TUN2PROXY";

/// The target directory: `CARGO_TARGET_DIR`, or the one `exe` was built in
/// (`target/release/synack`), or `./target`.
fn target_dir(exe: Option<&Path>) -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    exe.and_then(Path::parent)
        .and_then(Path::parent)
        .filter(|d| d.file_name().is_some_and(|n| n == "target"))
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
}

/// Where the cached install lives.
pub fn root(exe: Option<&Path>) -> PathBuf {
    target_dir(exe)
        .join("peers")
        .join(format!("tun2proxy-{VERSION}"))
}

/// The tun2proxy binary: [`ENV`], the cached install, or a fresh one
/// (`say` tells the person watching that it takes minutes).
pub fn tun2proxy(exe: Option<&Path>, say: &mut dyn FnMut(&str)) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{ENV}={} does not exist", p.display()))
        };
    }
    let root = root(exe);
    let bin = root.join("bin").join("tun2proxy-bin");
    if bin.is_file() {
        return Ok(bin);
    }
    say(&format!(
        "tun2socks: installing tun2proxy {VERSION} into {} (cargo install, minutes)",
        root.display()
    ));
    let log = root.with_extension("install.log");
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let st = Command::new("cargo")
        .args([
            "install",
            "tun2proxy",
            "--version",
            VERSION,
            "--locked",
            "--root",
        ])
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot run cargo to install tun2proxy: {e}"))?;
    if !st.success() || !bin.is_file() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(3).collect();
        return Err(format!(
            "cargo install tun2proxy {VERSION} failed ({st}): {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    Ok(bin)
}
