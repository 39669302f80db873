//! `enjambre get` and `enjambre seed` end to end on loopback: byte-identical transfers of single
//! and multi-file torrents, resuming after `kill -9`, and the exit codes for a bad torrent, an
//! unreachable tracker, data that does not match and a full disk.

mod peer_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peer_support::{
    create, data, enjambre, free_port, run, wait_listening, wait_verified, Background,
};

/// `enjambre seed TORRENT --data DATA`, listening on 127.0.0.1:`port` when one is given.
fn seed_cmd(torrent: &Path, data: &Path, port: Option<u16>) -> Command {
    let mut cmd = enjambre();
    cmd.arg("seed").arg(torrent).arg("--data").arg(data);
    if let Some(port) = port {
        cmd.args(["--port", &port.to_string(), "--listen", "127.0.0.1"]);
    }
    cmd
}

/// A seed in the background, once it accepts connections.
fn seed(torrent: &Path, data: &Path, port: u16) -> Background {
    let bg = Background::spawn(&mut seed_cmd(torrent, data, Some(port)));
    wait_listening(port);
    bg
}

fn get(torrent: &Path, out: &Path, seed_port: u16) -> Command {
    let mut cmd = enjambre();
    cmd.arg("get").arg(torrent).arg("-o").arg(out).args([
        "--port",
        &free_port().to_string(),
        "--peer",
        &format!("127.0.0.1:{seed_port}"),
    ]);
    cmd
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_single_file_arrives_byte_identical_with_json_progress() {
    let dir = tempfile::tempdir().unwrap();
    let original = data(3_000_000, 7);
    let file = dir.path().join("movie.bin");
    std::fs::write(&file, &original).unwrap();
    let torrent = create(&file, &dir.path().join("movie.torrent"), &[], 32768);
    let port = free_port();
    let mut s = seed(&torrent, &file, port);
    let out = dir.path().join("out");
    let o = run(
        get(&torrent, &out, port).arg("--json"),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(out.join("movie.bin")).unwrap() == original,
        "downloaded bytes differ"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|v| v["type"] == "completed"),
        "no completed event"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "finished");
    assert_eq!(last["left"], 0);
    assert_eq!(
        lines
            .iter()
            .filter(|v| v["type"] == "piece_verified")
            .count(),
        92
    );

    // A second run on the same directory finds everything in place and downloads nothing.
    let started = Instant::now();
    let o = run(&mut get(&torrent, &out, port), Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already complete"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(5));
    s.stop();

    // Without its resume state, the data already there is checked and kept, not fetched again.
    std::fs::remove_dir_all(out.join(".enjambre")).unwrap();
    let o = run(
        &mut get(&torrent, &out, free_port()),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("checking the data"), "{}", stderr(&o));
    assert!(stderr(&o).contains("already complete"), "{}", stderr(&o));
}

#[test]
fn a_multi_file_torrent_lands_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("set");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let files = [
        ("a", data(50_000, 1)),
        ("sub/b", data(123_457, 2)),
        ("sub/empty", Vec::new()),
        ("z", data(16384, 3)),
    ];
    for (name, bytes) in &files {
        std::fs::write(root.join(name), bytes).unwrap();
    }
    let torrent = create(&root, &dir.path().join("set.torrent"), &[], 16384);
    let port = free_port();
    let mut s = seed(&torrent, &root, port);
    let out = dir.path().join("out");
    let o = run(&mut get(&torrent, &out, port), Duration::from_secs(60));
    assert!(o.status.success(), "{}", stderr(&o));
    for (name, bytes) in &files {
        assert!(
            std::fs::read(out.join("set").join(name)).unwrap() == *bytes,
            "{name} differs"
        );
    }
    s.stop();
}

/// Kill the leech with SIGKILL half-way, restart it: it completes, and the seed sent far less
/// than twice what was already written (the restart asks only for what is missing).
#[test]
fn a_killed_download_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let size = 8 << 20;
    let original = data(size, 11);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &original).unwrap();
    let torrent = create(&file, &dir.path().join("big.torrent"), &[], 65536);
    let port = free_port();
    let seed_out = std::fs::File::create(dir.path().join("seed.json")).unwrap();
    let mut s = Background(Some(
        seed_cmd(&torrent, &file, Some(port))
            .arg("--json")
            .stdout(seed_out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    wait_listening(port);
    let out = dir.path().join("out");
    let mut leech = get(&torrent, &out, port)
        .args(["--max-download-rate", "4M", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for about half of the pieces, then kill -9.
    assert_eq!(wait_verified(&mut leech, 64), 64);
    std::thread::sleep(Duration::from_millis(1200));
    leech.kill().unwrap();
    leech.wait().unwrap();
    let resume_dir = out.join(".enjambre");
    let mut names: Vec<String> = std::fs::read_dir(&resume_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let kinds: Vec<&str> = names.iter().filter_map(|n| n.rsplit('.').next()).collect();
    assert_eq!(
        kinds,
        ["journal", "lock", "resume"],
        "a resume file, its journal and the directory's lock"
    );

    let o = run(
        get(&torrent, &out, port).arg("--json"),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(out.join("big.bin")).unwrap() == original,
        "resumed download differs"
    );
    let first_progress = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "progress" || v["type"] == "finished")
        .unwrap();
    assert!(
        first_progress["pieces_have"].as_u64().unwrap_or(128) >= 64,
        "restart began from the resume state: {first_progress}"
    );

    s.stop();
    let seed_lines = std::fs::read_to_string(dir.path().join("seed.json")).unwrap();
    let finished: serde_json::Value = serde_json::from_str(
        seed_lines
            .lines()
            .last()
            .expect("seed printed a final line"),
    )
    .unwrap();
    let uploaded = finished["uploaded"].as_u64().unwrap();
    eprintln!("seed uploaded {uploaded} bytes for a {size}-byte torrent");
    assert!(
        uploaded >= size as u64,
        "the seed sent everything at least once: {uploaded}"
    );
    assert!(
        uploaded < size as u64 * 3 / 2,
        "the restart re-downloaded too much: {uploaded} of {size}"
    );
}

#[test]
fn a_bad_torrent_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.torrent");
    std::fs::write(&bad, b"d4:infod6:lengthi-1eee").unwrap();
    let o = run(
        enjambre().arg("get").arg(&bad).arg("-o").arg(dir.path()),
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a valid torrent"), "{}", stderr(&o));
    let o = run(
        enjambre()
            .arg("get")
            .arg(dir.path().join("missing.torrent")),
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_second_download_into_the_same_directory_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.bin");
    std::fs::write(&file, data(1 << 20, 3)).unwrap();
    let torrent = create(&file, &dir.path().join("one.torrent"), &[], 65536);
    // A peer that accepts and never answers: the first download waits on it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let out = dir.path().join("out");
    let _first = Background(Some(
        get(&torrent, &out, port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.join("one.bin").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        out.join("one.bin").exists(),
        "the first download never started"
    );
    let o = run(&mut get(&torrent, &out, port), Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("is in use"), "{}", stderr(&o));
}

#[test]
fn an_unreachable_tracker_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, data(100_000, 5)).unwrap();
    let dead = format!("http://127.0.0.1:{}/announce", free_port());
    let torrent = create(&file, &dir.path().join("f.torrent"), &[&dead], 16384);
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(dir.path().join("out"))
            .args(["--port", &free_port().to_string()]),
        Duration::from_secs(90),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("tracker unreachable"), "{}", stderr(&o));
}

#[test]
fn seeding_data_that_does_not_match_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    let bytes = data(200_000, 9);
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(&file, &dir.path().join("f.torrent"), &[], 16384);
    // Not one piece verifies (some pieces verifying make a partial seed instead).
    std::fs::write(&file, &bytes[..1000]).unwrap();
    let o = run(
        &mut seed_cmd(&torrent, &file, None),
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("13 of 13 pieces differ"),
        "{}",
        stderr(&o)
    );
}

/// Needs root to mount a 1 MiB tmpfs; skipped otherwise.
#[test]
fn a_full_disk_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _u = Unmount(&small);
    let file = dir.path().join("f");
    std::fs::write(&file, data(3 << 20, 4)).unwrap();
    let torrent = create(&file, &dir.path().join("f.torrent"), &[], 65536);
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&small)
            .args(["--peer", "127.0.0.1:9"]),
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("no space left"), "{}", stderr(&o));
}

#[test]
fn rate_limits_hold_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let original = data(3 << 20, 13);
    let file = dir.path().join("r.bin");
    std::fs::write(&file, &original).unwrap();
    let torrent = create(&file, &dir.path().join("r.torrent"), &[], 65536);
    let port = free_port();
    let mut s =
        Background::spawn(seed_cmd(&torrent, &file, Some(port)).args(["--max-upload-rate", "4M"]));
    wait_listening(port);
    // 3 MiB at 2 MiB/s (download limit) after a quarter second of burst: at least a second.
    let started = Instant::now();
    let o = run(
        get(&torrent, &dir.path().join("a"), port).args(["--max-download-rate", "2M"]),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "download limit ignored: {took:?}"
    );
    // Unlimited leech, 4 MiB/s upload limit: at least half a second.
    let started = Instant::now();
    let o = run(
        &mut get(&torrent, &dir.path().join("b"), port),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "upload limit ignored: {took:?}"
    );
    assert!(std::fs::read(dir.path().join("b").join("r.bin")).unwrap() == original);
    s.stop();
}
