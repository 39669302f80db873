//! `enjambre demo` runs a whole swarm on loopback and exits cleanly, having checked the
//! download byte for byte. Needs the `tracker` subcommand (skipped while it is not built in).

mod peer_support;

use std::process::Stdio;
use std::time::Duration;

use peer_support::{enjambre, run};

#[test]
fn the_demo_downloads_verifies_and_stops_everything() {
    let has_tracker = enjambre()
        .args(["tracker", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_tracker {
        eprintln!("skipped: this build has no `enjambre tracker`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        enjambre()
            .arg("demo")
            .args(["--size-mib", "8", "--rate", "64M", "--dir"])
            .arg(dir.path()),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("swarm API   http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("byte-identical"), "{stdout}");
    assert!(
        stdout.contains("stopped the tracker and the seeds"),
        "{stdout}"
    );
    // Nothing it started is left listening: the tracker's port is free again.
    let api = stdout
        .lines()
        .find_map(|l| l.split("http://").nth(1))
        .unwrap();
    let addr = api.split('/').next().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the tracker still runs at {addr}"
    );
}
