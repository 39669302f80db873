//! Long runs without a terminal: a seed's log stays short, `--quiet` is silent, seeding stops at
//! `--seed-time`, and `get --wait` keeps asking a tracker that is down.

mod peer_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use peer_support::{create, data, enjambre, free_port, run, Background};

fn shared(dir: &Path, trackers: &[&str]) -> (PathBuf, PathBuf) {
    let file = dir.join("f.bin");
    std::fs::write(&file, data(100_000, 21)).unwrap();
    let torrent = create(&file, &dir.join("f.torrent"), trackers, 16384);
    (file, torrent)
}

fn seed_for(torrent: &Path, file: &Path, extra: &[&str]) -> std::process::Output {
    run(
        enjambre()
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(file)
            .args(["--port", "0", "--listen", "127.0.0.1"])
            .args(extra),
        Duration::from_secs(30),
    )
}

#[test]
fn an_idle_seed_logs_no_line_per_second_and_stops_at_its_seed_time() {
    let dir = tempfile::tempdir().unwrap();
    let (file, torrent) = shared(dir.path(), &[]);
    let started = Instant::now();
    let o = seed_for(&torrent, &file, &["--seed-time", "7s"]);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(took >= Duration::from_secs(7), "{took:?}");
    let progress = err.lines().filter(|l| l.contains('↓')).count();
    assert!(progress <= 1, "{progress} progress lines in 7 s:\n{err}");
    assert!(err.contains("seeded for 7 s"), "{err}");
}

#[test]
fn a_quiet_seed_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (file, torrent) = shared(dir.path(), &[]);
    let o = seed_for(&torrent, &file, &["--quiet", "--seed-time", "2"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    assert!(o.stdout.is_empty());
}

#[test]
fn get_with_wait_keeps_asking_a_tracker_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}/announce", free_port());
    let (_, torrent) = shared(dir.path(), &[&dead]);
    let mut get = Background(Some(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(dir.path().join("out"))
            .args(["--port", "0", "--wait"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Without --wait it gives up after its third attempt, about 15 s in (exit 3).
    std::thread::sleep(Duration::from_secs(19));
    let running = get.0.as_mut().unwrap().try_wait().unwrap().is_none();
    let err = get.stop();
    assert!(running, "gave up:\n{err}");
    assert!(!err.contains("tracker unreachable"), "{err}");
    assert!(err.contains("announce failed, retrying"), "{err}");
}

#[test]
fn a_download_with_a_seed_ratio_seeds_until_it_has_uploaded_that_much_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (file, torrent) = shared(dir.path(), &[]);
    let first = free_port();
    let _seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--port", &first.to_string(), "--listen", "127.0.0.1"]),
    );
    peer_support::wait_listening(first);
    // B downloads from the seed, then seeds until it has uploaded the torrent's size once.
    let b_port = free_port();
    let mut b = enjambre()
        .arg("get")
        .arg(&torrent)
        .arg("-o")
        .arg(dir.path().join("b"))
        .args(["--port", &b_port.to_string(), "--listen", "127.0.0.1"])
        .args(["--peer", &format!("127.0.0.1:{first}"), "--seed-ratio", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    peer_support::wait_listening(b_port);
    // C knows only B, so every byte C gets is B's upload.
    let c = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(dir.path().join("c"))
            .args(["--port", "0", "--peer", &format!("127.0.0.1:{b_port}")]),
        Duration::from_secs(60),
    );
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = b.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = b.kill();
            panic!("B is still seeding after C has all of it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut b.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("seed ratio 1 reached"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("c").join("f.bin")).unwrap(),
        std::fs::read(&file).unwrap()
    );
}
