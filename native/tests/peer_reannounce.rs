//! R6: a seed that joins after the leech started is found through the leech's periodic
//! re-announce to `enjambre tracker`, and used. Skipped while the tracker is not built in.

mod peer_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use peer_support::{create, data, enjambre, Background};

#[test]
fn a_late_seed_is_found_by_reannouncing() {
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
    let mut tracker = enjambre()
        .args([
            "tracker",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "2",
            "--min-interval",
            "1",
            "--poll-interval",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(tracker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let http = line
        .split("http=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut tracker = Background(Some(tracker));

    let bytes = data(2_000_000, 51);
    let file = dir.path().join("late.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(
        &file,
        &dir.path().join("late.torrent"),
        &[&format!("http://{http}/announce")],
        65536,
    );
    let out = dir.path().join("out");
    let mut leech = Background(Some(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args(["--listen", "127.0.0.3", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // The leech has announced and found nobody; now the seed arrives.
    std::thread::sleep(Duration::from_millis(1500));
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.2", "--port", "0"]),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(s) = leech.0.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the leech never found the late seed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    seed.stop();
    tracker.stop();
    assert!(status.success(), "{}", leech.stop());
    assert!(std::fs::read(out.join("late.bin")).unwrap() == bytes);
}
