//! `enjambre create`: the torrents it writes are read by libtorrent with the same info-hash,
//! for a single file and for a directory; bad input is refused with a clear message.

mod peer_support;

use std::process::Command;
use std::time::Duration;

use peer_support::{create, data, enjambre, info_hash, libtorrent, run};

/// Ask python3-libtorrent for (info-hash hex, piece count, file paths and sizes).
fn libtorrent_view(torrent: &std::path::Path) -> String {
    let script = "import sys, libtorrent as lt\n\
ti = lt.torrent_info(sys.argv[1])\n\
fs = ti.files()\n\
print(str(ti.info_hash()), ti.num_pieces(), ti.piece_length(), ti.name())\n\
for i in range(fs.num_files()): print(fs.file_path(i), fs.file_size(i))\n\
for t in ti.trackers(): print('tracker', t.tier, t.url)\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(torrent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "libtorrent refused the torrent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn our_hash(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    text.rsplit("info-hash ").next().unwrap().trim().to_string()
}

#[test]
fn libtorrent_reads_a_single_file_torrent_with_the_same_info_hash() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, data(1_000_000, 1)).unwrap();
    let torrent = dir.path().join("p.torrent");
    let o = run(
        enjambre()
            .arg("create")
            .arg(&file)
            .arg("-o")
            .arg(&torrent)
            .args([
                "--tracker",
                "http://127.0.0.1:6969/announce",
                "--tracker",
                "udp://127.0.0.1:6969,http://backup.example/announce",
                "--piece-length",
                "65536",
            ]),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ours = our_hash(&o.stdout);
    let view = libtorrent_view(&torrent);
    let mut lines = view.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("{ours} 16 65536 payload.bin")
    );
    assert_eq!(lines.next().unwrap(), "payload.bin 1000000");
    // libtorrent may shuffle inside a tier (BEP 12): compare as sorted lines.
    let mut trackers: Vec<&str> = lines.collect();
    trackers.sort();
    assert_eq!(
        trackers,
        [
            "tracker 0 http://127.0.0.1:6969/announce",
            "tracker 1 http://backup.example/announce",
            "tracker 1 udp://127.0.0.1:6969",
        ]
    );
}

#[test]
fn libtorrent_reads_a_directory_torrent_with_every_file() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    std::fs::create_dir_all(root.join("disc 2")).unwrap();
    std::fs::write(root.join("a.txt"), data(40_000, 2)).unwrap();
    std::fs::write(root.join("disc 2").join("b.bin"), data(70_001, 3)).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    let torrent = create(
        &root,
        &dir.path().join("album.torrent"),
        &["http://127.0.0.1:1/announce"],
        16384,
    );
    let view = libtorrent_view(&torrent);
    let mut lines = view.lines();
    let head = lines.next().unwrap();
    assert!(head.ends_with(" 7 16384 album"), "{head}");
    let files: Vec<&str> = lines.take(3).collect();
    assert_eq!(
        files,
        [
            "album/a.txt 40000",
            "album/disc 2/b.bin 70001",
            "album/empty 0"
        ]
    );
}

#[test]
fn creating_from_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    let o = run(
        enjambre()
            .arg("create")
            .arg(&empty)
            .arg("-o")
            .arg(dir.path().join("x.torrent")),
        Duration::from_secs(10),
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no files"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(
        enjambre().arg("create").arg(dir.path().join("missing")),
        Duration::from_secs(10),
    );
    assert!(!o.status.success());
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let o = run(
        enjambre()
            .arg("create")
            .arg(&file)
            .args(["--piece-length", "1000"]),
        Duration::from_secs(10),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("power of two"));
}

#[test]
fn an_existing_torrent_is_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, data(20_000, 4)).unwrap();
    let out = dir.path().join("f.torrent");
    std::fs::write(&out, b"precious").unwrap();
    let o = run(
        enjambre().arg("create").arg(&file).arg("-o").arg(&out),
        Duration::from_secs(10),
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let o = run(
        enjambre()
            .arg("create")
            .arg(&file)
            .arg("-o")
            .arg(&out)
            .arg("--force"),
        Duration::from_secs(10),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(info_hash(&out), our_hash(&o.stdout));
}

#[test]
fn a_tracker_that_is_not_a_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    for bad in ["notaurl", "ftp://t.example/announce", "udp://t.example"] {
        let out = dir.path().join("f.torrent");
        let o = run(
            enjambre()
                .arg("create")
                .arg(&file)
                .arg("-o")
                .arg(&out)
                .args(["-t", bad]),
            Duration::from_secs(10),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad} accepted");
        assert!(err.contains(bad), "{bad}: {err}");
        assert!(!out.exists(), "a torrent was written for {bad}");
    }
}

#[test]
fn a_torrent_written_inside_the_shared_directory_is_not_one_of_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.bin"), data(50_000, 5)).unwrap();
    let out = root.join("share.torrent");
    let first = create(&root, &out, &[], 16384);
    let first_hash = info_hash(&first);
    let o = run(
        enjambre()
            .arg("create")
            .arg(&root)
            .arg("-o")
            .arg(&out)
            .args(["--piece-length", "16384", "--force"]),
        Duration::from_secs(10),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let meta = enjambre_core::metainfo::Metainfo::parse(&bytes).unwrap();
    let files: Vec<u64> = meta.files().map(|f| f.length).collect();
    assert_eq!(files, [50_000], "only the data, not the earlier torrent");
    assert_eq!(meta.info_hash.to_string(), first_hash);
}
