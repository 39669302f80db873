//! What the end-to-end tests share: why one would be skipped, where the `enjambre` binary is,
//! and running `tap-e2e.sh` around a seeder command.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the tests cannot run here (not root, a tool missing), or `None`. `tools` are extra
/// programs the test needs beyond `ip`, `aria2c`, `curl`, `transmission-daemon`,
/// `transmission-remote`, `opentracker`, `dnsmasq` and python3-libtorrent.
pub fn missing(tools: &[&str]) -> Option<String> {
    // `id -u` prints 0 for root.
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    let common = [
        "ip",
        "aria2c",
        "curl",
        "transmission-daemon",
        "transmission-remote",
        "opentracker",
        "dnsmasq",
    ];
    for tool in common.iter().chain(tools) {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    let lt = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !lt {
        return Some("python3-libtorrent is not installed".into());
    }
    None
}

/// The `enjambre` binary: `ENJAMBRE_BIN`, else the root workspace's `target/{release,debug}`.
pub fn enjambre() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ENJAMBRE_BIN") {
        return Some(p.into());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    ["release", "debug"]
        .iter()
        .map(|p| root.join("target").join(p).join("enjambre"))
        .find(|p| p.exists())
}

/// The file a program built in `bin_dir` seeds (`SEED_FILE`, else the default
/// `board-seed.bin` its build wrote there) and its `.torrent` beside the program.
pub fn seeded(bin_dir: &Path) -> (PathBuf, PathBuf) {
    let file = std::env::var_os("SEED_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir.join("board-seed.bin"));
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    (file, bin_dir.join(format!("{name}.torrent")))
}

/// Run `tap-e2e.sh` in a namespace named `ns_prefix` and the script's pid, with `seed` as the
/// seeder's command and `env` in its environment; panics when it fails.
pub fn run_e2e(
    ns_prefix: &str,
    torrent: &Path,
    file: &Path,
    tracker: &Path,
    seed: &[&Path],
    env: &[(&str, &str)],
) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tap-e2e.sh");
    let status = Command::new("bash")
        .arg(script)
        .args([torrent, file, tracker])
        .args(seed)
        .env("NS_PREFIX", ns_prefix)
        .envs(env.iter().copied())
        .status()
        .expect("bash");
    assert!(status.success(), "tap-e2e.sh failed");
}
