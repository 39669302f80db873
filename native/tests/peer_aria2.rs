//! Interoperability with aria2: enjambre downloads from an aria2 seed (dialled with --peer),
//! and an aria2 leech downloads from an enjambre seed found through opentracker (aria2 cannot
//! be given a peer directly). Skipped when aria2c (or opentracker) is not installed.

mod peer_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use peer_support::{create, data, enjambre, free_port, run, wait_listening, Background};

fn installed(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

const ARIA2_QUIET: [&str; 5] = [
    "--enable-dht=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--summary-interval=0",
    "--console-log-level=warn",
];

#[test]
fn enjambre_downloads_from_an_aria2_seed() {
    if !installed("aria2c") {
        eprintln!("skipped: aria2c not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(4_000_000, 41);
    let seed_dir = dir.path().join("a2");
    std::fs::create_dir(&seed_dir).unwrap();
    let file = seed_dir.join("x.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(&file, &dir.path().join("x.torrent"), &[], 65536);
    let port = free_port();
    let mut aria = Background::spawn(
        Command::new("aria2c")
            .arg("-d")
            .arg(&seed_dir)
            .args(["-V", "--seed-time=5", &format!("--listen-port={port}")])
            .args(ARIA2_QUIET)
            .arg(&torrent),
    );
    wait_listening(port);
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args([
                "--port",
                "0",
                "--listen",
                "127.0.0.3",
                "--peer",
                &format!("127.0.0.1:{port}"),
            ]),
        Duration::from_secs(60),
    );
    aria.stop();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(out.join("x.bin")).unwrap() == bytes,
        "downloaded bytes differ"
    );
}

#[test]
fn an_aria2_leech_downloads_from_enjambre_through_opentracker() {
    if !installed("aria2c") || Command::new("opentracker").arg("-h").output().is_err() {
        eprintln!("skipped: aria2c or opentracker not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = peer_support::free_tcp_udp_port();
    let bytes = data(4_000_000, 43);
    let file = dir.path().join("y.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(
        &file,
        &dir.path().join("y.torrent"),
        &[&format!("http://127.0.0.1:{port}/announce")],
        65536,
    );
    let mut tracker = peer_support::opentracker(dir.path(), port, &[&torrent]);
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.2", "--port", "0"]),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let out = dir.path().join("aria");
    std::fs::create_dir(&out).unwrap();
    let o = run(
        Command::new("aria2c")
            .arg("-d")
            .arg(&out)
            .args(["--seed-time=0", &format!("--listen-port={}", free_port())])
            .args(ARIA2_QUIET)
            .arg(&torrent),
        Duration::from_secs(60),
    );
    seed.stop();
    tracker.stop();
    assert!(
        o.status.success(),
        "aria2 failed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        std::fs::read(out.join("y.bin")).unwrap() == bytes,
        "aria2's copy differs"
    );
}
