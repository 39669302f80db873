//! `enjambre info`: what a torrent holds, as text and as JSON; a bad file exits with code 2.

mod peer_support;

use std::time::Duration;

use peer_support::{create, data, enjambre, info_hash, run};

#[test]
fn info_shows_a_directory_torrent_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("my album");
    std::fs::create_dir_all(root.join("cd2")).unwrap();
    std::fs::write(root.join("a.txt"), data(40_000, 2)).unwrap();
    std::fs::write(root.join("cd2").join("b.bin"), data(70_001, 3)).unwrap();
    let torrent = create(
        &root,
        &dir.path().join("album.torrent"),
        &["http://127.0.0.1:1/announce", "udp://127.0.0.1:2"],
        16384,
    );
    let hex = info_hash(&torrent);

    let o = run(
        enjambre().arg("info").arg(&torrent),
        Duration::from_secs(10),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    for want in [
        "name:       my album\n".to_string(),
        format!("info-hash:  {hex}\n"),
        "size:       107.4 KiB (110001 bytes) in 2 files\n".into(),
        "pieces:     7 of 16.0 KiB (16384 bytes)\n".into(),
        "  tier 0: http://127.0.0.1:1/announce\n".into(),
        "  tier 1: udp://127.0.0.1:2\n".into(),
        "     0         40000  my album/a.txt\n".into(),
        "     1         70001  my album/cd2/b.bin\n".into(),
        format!(
            "magnet:     magnet:?xt=urn:btih:{hex}&dn=my%20album\
             &tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce&tr=udp%3A%2F%2F127.0.0.1%3A2\n"
        ),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }

    let o = run(
        enjambre().arg("info").arg("--json").arg(&torrent),
        Duration::from_secs(10),
    );
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["info_hash"], hex.as_str());
    assert_eq!(v["name"], "my album");
    assert_eq!(v["total_length"], 110_001);
    assert_eq!(v["piece_count"], 7);
    assert_eq!(v["files"][1]["path"], serde_json::json!(["cd2", "b.bin"]));
    assert_eq!(v["files"][1]["index"], 1);
    assert_eq!(v["trackers"][1]["url"], "udp://127.0.0.1:2");
}

#[test]
fn info_on_something_that_is_not_a_torrent_exits_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.torrent");
    std::fs::write(&junk, b"d4:junk").unwrap();
    let o = run(enjambre().arg("info").arg(&junk), Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("not a valid torrent"),
        "{err}"
    );
}
