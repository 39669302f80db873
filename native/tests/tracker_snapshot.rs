//! Persistence: the registry survives a restart (SIGTERM writes the snapshot); a corrupt
//! snapshot is set aside and the tracker starts empty.

mod tracker_support;

use enjambre_core::InfoHash;
use tracker_support::*;

#[test]
fn the_registry_survives_a_restart() {
    let dir = scratch_dir("snap");
    let state = dir.join("state");
    let args = ["--poll-interval", "0", "--state", state.to_str().unwrap()];
    let t = Tracker::start(&args);
    let ih = InfoHash([0x31; 20]);
    t.announce(&ih, &peer_id(1), 9201, 10, "&event=started&bitfield=oA");
    t.announce(&ih, &peer_id(2), 9202, 10, "&event=started");
    t.announce(&ih, &peer_id(2), 9202, 0, "&event=completed");
    assert!(t.terminate().success());
    assert!(state.join("registry.snapshot").exists());
    assert!(!state.join("registry.snapshot.tmp").exists());

    let t = Tracker::start(&args);
    let v = t.json(&format!("/swarm/{ih}"));
    assert_eq!(v["completed"], 1);
    assert_eq!(
        (v["seeders"].as_u64(), v["leechers"].as_u64()),
        (Some(1), Some(1))
    );
    let p1 = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["addr"] == "127.0.0.1:9201")
        .unwrap();
    assert_eq!(p1["bitfield"], "oA");
    assert_eq!(p1["source"], "report");
    // The restored peers are served.
    let body = t.announce(&ih, &peer_id(3), 9203, 10, "&compact=1");
    let mut ports = compact_ports(bbytes(&bdecode(&body), "peers").unwrap());
    ports.sort();
    assert_eq!(ports, vec![9201, 9202]);
}

#[test]
fn a_corrupt_snapshot_is_set_aside_not_fatal() {
    let dir = scratch_dir("corrupt");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    // A snapshot with the right magic and a flipped byte, then plain garbage.
    for garbage in [
        b"ENJTRK01\x00\x01\x02\x03\x04\x05".to_vec(),
        b"garbage".to_vec(),
    ] {
        std::fs::write(state.join("registry.snapshot"), &garbage).unwrap();
        let t = Tracker::start(&["--poll-interval", "0", "--state", state.to_str().unwrap()]);
        assert_eq!(t.json("/stats")["torrents"], 0);
        let aside: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("registry.snapshot.corrupt-")
            })
            .collect();
        assert!(!aside.is_empty(), "not set aside");
        assert!(
            t.log().contains("corrupt registry snapshot set aside"),
            "{}",
            t.log()
        );
        for e in aside {
            std::fs::remove_file(e.path()).unwrap();
        }
        assert!(t.terminate().success());
    }
}

#[test]
fn snapshots_are_also_written_periodically() {
    let dir = scratch_dir("periodic");
    let state = dir.join("state");
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--state",
        state.to_str().unwrap(),
        "--snapshot-interval",
        "1",
    ]);
    let ih = InfoHash([0x41; 20]);
    t.announce(&ih, &peer_id(1), 9301, 0, "&event=completed");
    let snap = state.join("registry.snapshot");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !snap.exists() {
        assert!(std::time::Instant::now() < deadline, "no periodic snapshot");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Killed without a chance to save: the periodic snapshot is what survives.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(t);
    let t = Tracker::start(&["--poll-interval", "0", "--state", state.to_str().unwrap()]);
    assert_eq!(t.json(&format!("/swarm/{ih}"))["completed"], 1);
}
