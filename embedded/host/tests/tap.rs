//! The board seeder on a host TAP device, end to end (`tap-e2e.sh` does the work): inside a
//! network namespace, `enjambre tracker` and this program; aria2 and libtorrent download the
//! embedded file at once through the tracker, byte-identical; the tracker's swarm API shows the
//! board as a complete seed learned by poll; a fifth peer is refused while four hold the slots
//! and served once one leaves; a garbage-sending peer is closed while another is served.
//!
//! Skipped, saying why, unless root with `ip`, `aria2c`, `curl`, python3-libtorrent and an
//! `enjambre` binary (`ENJAMBRE_BIN`, else the root workspace's `target/{release,debug}`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn missing() -> Option<String> {
    // `id -u` prints 0 for root.
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    for tool in ["ip", "aria2c", "curl"] {
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

fn enjambre() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ENJAMBRE_BIN") {
        return Some(p.into());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    ["release", "debug"]
        .iter()
        .map(|p| root.join("target").join(p).join("enjambre"))
        .find(|p| p.exists())
}

#[test]
fn aria2_and_libtorrent_download_from_the_seeder_on_a_tap() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED tap end-to-end test: {why}");
        return;
    }
    let Some(tracker) = enjambre() else {
        eprintln!(
            "SKIPPED tap end-to-end test: no enjambre binary (cargo build --release -p enjambre \
             at the root, or set ENJAMBRE_BIN)"
        );
        return;
    };
    let seed = Path::new(env!("CARGO_BIN_EXE_enjambre-seed-tap"));
    let bin_dir = seed.parent().unwrap();
    let file = std::env::var_os("SEED_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir.join("board-seed.bin"));
    let name = file.file_name().unwrap().to_str().unwrap();
    let torrent = bin_dir.join(format!("{name}.torrent"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tap-e2e.sh");
    let status = Command::new("bash")
        .arg(script)
        .args([seed, &torrent, &file, &tracker])
        .status()
        .expect("bash");
    assert!(status.success(), "tap-e2e.sh failed");
}
