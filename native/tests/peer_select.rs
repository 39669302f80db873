//! `get --only/--skip/--files`: a multi-file torrent whose pieces straddle its files, downloaded
//! a few files at a time. Selected files come out byte-identical, skipped ones never appear in
//! the directory (their bytes in straddling pieces wait in the hidden part file), a later run
//! selecting more completes them, and a seed of the partial download serves the straddling
//! pieces from the part file.

mod peer_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use peer_support::{
    create, data, enjambre, free_port, run, wait_listening, wait_verified, Background,
};

/// The files, at sizes that make pieces of 16 KiB straddle them; `b.txt` is empty.
const FILES: &[(&str, usize)] = &[
    ("a.bin", 40_001),
    ("b.txt", 0),
    ("c/d.bin", 25_555),
    ("e.bin", 70_003),
    ("f.bin", 9_999),
];

struct Swarm {
    dir: tempfile::TempDir,
    torrent: PathBuf,
    port: u16,
    _seed: Background,
}

/// The album on disk, its torrent, and a seed of it.
fn swarm() -> Swarm {
    let dir = tempfile::tempdir().unwrap();
    let album = dir.path().join("src").join("album");
    for (i, (name, len)) in FILES.iter().enumerate() {
        let path = album.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data(*len, 40 + i as u64)).unwrap();
    }
    let torrent = create(&album, &dir.path().join("album.torrent"), &[], 16384);
    let port = free_port();
    let seed = seed(&torrent, &album, port);
    Swarm {
        dir,
        torrent,
        port,
        _seed: seed,
    }
}

fn seed(torrent: &Path, data: &Path, port: u16) -> Background {
    let s = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(data)
            .args(["--port", &port.to_string(), "--listen", "127.0.0.1"]),
    );
    wait_listening(port);
    s
}

fn get(torrent: &Path, out: &Path, port: u16, select: &[&str]) -> Command {
    let mut c = enjambre();
    c.arg("get")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--port", "0", "--listen", "127.0.0.1"])
        .args(["--peer", &format!("127.0.0.1:{port}")])
        .args(select);
    c
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `get` with `select` to completion.
fn get_ok(s: &Swarm, out: &Path, select: &[&str]) -> String {
    let o = run(
        &mut get(&s.torrent, out, s.port, select),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{select:?}: {}", stderr(&o));
    stderr(&o)
}

/// Assert exactly `present` of the files are in `out/album`, each byte-identical, and that
/// nothing else is there.
fn assert_files(out: &Path, present: &[&str]) {
    for (i, (name, len)) in FILES.iter().enumerate() {
        let path = out.join("album").join(name);
        if present.contains(name) {
            let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(got == data(*len, 40 + i as u64), "{name} differs");
        } else {
            assert!(!path.exists(), "{name} was skipped but is in the directory");
        }
    }
    let mut listed = Vec::new();
    let mut stack = vec![out.join("album")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                listed.push(e.path());
            }
        }
    }
    assert_eq!(listed.len(), present.len(), "unexpected files: {listed:?}");
}

/// The part file of the download in `out`, if any.
fn part_file(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out.join(".enjambre"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "parts"))
}

#[test]
fn only_one_file_then_more_then_everything() {
    let s = swarm();
    let out = s.dir.path().join("out");
    // d.bin (bytes 40001..65556) shares piece 2 with a.bin and piece 4 with e.bin.
    let err = get_ok(&s, &out, &["--only", "d.bin"]);
    assert!(err.contains("downloading 1 of 5 files"), "{err}");
    assert!(err.contains("complete"), "{err}");
    assert_files(&out, &["c/d.bin"]);
    let parts = part_file(&out).expect("a part file for the straddled bytes");
    let held = std::fs::metadata(&parts).unwrap();
    assert!(
        held.len() > 0,
        "the straddling bytes of a.bin and e.bin are kept"
    );

    // More files, with a glob and a skip: d.bin is kept, a.bin gets its bytes from the part file.
    get_ok(&s, &out, &["--only", "*.bin", "--skip", "f.bin"]);
    assert_files(&out, &["a.bin", "c/d.bin", "e.bin"]);
    // The part file let go of a.bin's and e.bin's bytes (they read as zeros there) and holds
    // f.bin's edge, downloaded with e.bin's last piece.
    let kept = std::fs::read(&parts).unwrap();
    let (a_end, f_start) = (40_001, 40_001 + 25_555 + 70_003);
    assert!(
        kept[32_768.min(kept.len())..a_end.min(kept.len())]
            .iter()
            .all(|&b| b == 0),
        "a.bin's bytes released from the part file"
    );
    assert!(
        kept[a_end.min(kept.len())..f_start.min(kept.len())]
            .iter()
            .all(|&b| b == 0),
        "d.bin's and e.bin's bytes released from the part file"
    );
    assert!(
        kept.len() > f_start && kept[f_start..].iter().any(|&b| b != 0),
        "f.bin's straddled bytes are still kept"
    );

    // Everything, the empty file included: no skipped file is left, nor the part file.
    get_ok(&s, &out, &[]);
    assert_files(&out, &["a.bin", "b.txt", "c/d.bin", "e.bin", "f.bin"]);
    assert!(part_file(&out).is_none(), "the part file is gone");
}

#[test]
fn files_by_index_and_skip_alone() {
    let s = swarm();
    // `info` numbers the files; the torrent lists them sorted, as FILES does.
    let o = run(
        enjambre().arg("info").arg(&s.torrent),
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.contains("     3         70003  album/e.bin\n"),
        "{text}"
    );

    let out = s.dir.path().join("by-index");
    get_ok(&s, &out, &["--files", "0,3-4"]);
    assert_files(&out, &["a.bin", "e.bin", "f.bin"]);

    let out = s.dir.path().join("skipped");
    get_ok(&s, &out, &["--skip", "e.bin", "--skip", "album/c/**"]);
    assert_files(&out, &["a.bin", "b.txt", "f.bin"]);
}

#[test]
fn a_seed_of_a_partial_download_serves_straddling_pieces_from_the_part_file() {
    let mut s = swarm();
    let first = s.dir.path().join("first");
    get_ok(&s, &first, &["--only", "c/d.bin"]);
    // The original seed leaves; the partial download seeds what it has.
    s._seed.stop();
    let port = free_port();
    let _partial = seed(&s.torrent, &first.join("album"), port);
    let second = s.dir.path().join("second");
    let o = run(
        &mut get(&s.torrent, &second, port, &["--only", "d.bin"]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_files(&second, &["c/d.bin"]);
}

#[test]
fn a_glob_matching_nothing_or_an_index_out_of_range_exits_2() {
    let s = swarm();
    let out = s.dir.path().join("out");
    for (args, why) in [
        (&["--only", "*.iso"][..], "matches no file"),
        (&["--skip", "nothing"][..], "matches no file"),
        (&["--files", "5"][..], "out of range"),
        (&["--files", "1"][..], "all empty"),
        (&["--skip", "*"][..], "no file to download"),
    ] {
        let o = run(
            &mut get(&s.torrent, &out, s.port, args),
            Duration::from_secs(20),
        );
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
    }
    assert!(!out.join("album").exists());
}

#[test]
fn a_killed_selective_download_resumes_and_a_wider_selection_adds_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let album = dir.path().join("src").join("album");
    std::fs::create_dir_all(&album).unwrap();
    let (small, big) = (data(30_001, 1), data(3_000_017, 2));
    std::fs::write(album.join("a.bin"), &small).unwrap();
    std::fs::write(album.join("b.bin"), &big).unwrap();
    std::fs::write(album.join("c.bin"), &small[..7777]).unwrap();
    let torrent = create(&album, &dir.path().join("t.torrent"), &[], 16384);
    let port = free_port();
    let _seed = seed(&torrent, &album, port);
    let out = dir.path().join("out");
    let mut leech = get(&torrent, &out, port, &["--only", "b.bin"])
        .args(["--max-download-rate", "1M", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait_verified(&mut leech, 40), 40);
    std::thread::sleep(Duration::from_millis(700));
    leech.kill().unwrap();
    leech.wait().unwrap();
    assert!(!out.join("album").join("a.bin").exists());

    let o = run(
        get(
            &torrent,
            &out,
            port,
            &["--only", "b.bin", "--only", "c.bin"],
        )
        .arg("--json"),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing verified before the kill is fetched again.
    let text = String::from_utf8_lossy(&o.stdout);
    let finished: serde_json::Value = (text.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["type"] == "finished")
        .expect("a finished line");
    let again = finished["run_downloaded"].as_u64().unwrap();
    let wanted_pieces = (30_001 + 3_000_017 + 7777) as u64;
    assert!(
        again <= wanted_pieces - 40 * 16384,
        "fetched {again} bytes again"
    );
    assert!(std::fs::read(out.join("album/b.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read(out.join("album/c.bin")).unwrap(),
        &small[..7777]
    );
    assert!(!out.join("album").join("a.bin").exists());
}
