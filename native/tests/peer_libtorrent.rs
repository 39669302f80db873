//! Interoperability with libtorrent (python3-libtorrent): enjambre downloads from a libtorrent
//! seed, and a libtorrent leech downloads from an enjambre seed. Byte-identical both ways.
//! Skipped when the bindings are not installed.

mod peer_support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use peer_support::lt_session::{first_line, lt_session};
use peer_support::{
    create, data, enjambre, free_port, info_hash, libtorrent, run, wait_listening, Background,
};

fn python(
    mode: &str,
    torrent: impl AsRef<std::ffi::OsStr>,
    save: &Path,
    iface: &str,
    peer: &str,
) -> Child {
    lt_session(mode, torrent, save, iface, peer, "{}")
}

fn fixture(dir: &Path) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    fixture_of(dir, 5_000_000, 65536)
}

fn fixture_of(
    dir: &Path,
    len: usize,
    piece_length: u32,
) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let bytes = data(len, 21);
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    let file = src.join("shared.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(&file, &dir.join("shared.torrent"), &[], piece_length);
    (bytes, file, torrent)
}

#[test]
fn enjambre_downloads_from_a_libtorrent_seed() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path());
    let port = free_port();
    let mut lt_seed = python(
        "seed",
        &torrent,
        file.parent().unwrap(),
        &format!("127.0.0.2:{port}"),
        "-",
    );
    assert!(first_line(&mut lt_seed).starts_with("ready"));
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args([
                "--listen",
                "127.0.0.3",
                "--port",
                &free_port().to_string(),
                "--peer",
                &format!("127.0.0.2:{port}"),
            ]),
        Duration::from_secs(90),
    );
    let _ = lt_seed.kill();
    let _ = lt_seed.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(out.join("shared.bin")).unwrap() == bytes,
        "downloaded bytes differ"
    );
}

#[test]
fn a_libtorrent_leech_downloads_from_enjambre() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path());
    let port = free_port();
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()]),
    );
    wait_listening(port);
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    let mut leech = python(
        "leech",
        &torrent,
        &out,
        &format!("127.0.0.4:{}", free_port()),
        &format!("127.0.0.1:{port}"),
    );
    assert!(first_line(&mut leech).starts_with("ready"));
    let done = first_line(&mut leech);
    let status = leech.wait().unwrap();
    let log = seed.stop();
    assert!(
        status.success() && done.starts_with("done"),
        "libtorrent did not finish; seed log:\n{log}"
    );
    assert!(
        std::fs::read(out.join("shared.bin")).unwrap() == bytes,
        "libtorrent's copy differs"
    );
}

#[test]
fn a_libtorrent_leech_with_only_a_magnet_link_gets_the_metadata_and_the_data_from_enjambre() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 1,221 pieces of 16 KiB: an info dictionary of about 24 KiB, two metadata pieces.
    let (bytes, file, torrent) = fixture_of(dir.path(), 20_000_000, 16384);
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=shared.bin", info_hash(&torrent));
    let port = free_port();
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()]),
    );
    wait_listening(port);
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    let mut leech = python(
        "magnet",
        &magnet,
        &out,
        &format!("127.0.0.4:{}", free_port()),
        &format!("127.0.0.1:{port}"),
    );
    assert!(first_line(&mut leech).starts_with("ready"));
    let done = first_line(&mut leech);
    let status = leech.wait().unwrap();
    let log = seed.stop();
    assert!(
        status.success() && done.starts_with("done"),
        "libtorrent did not finish from the magnet link; seed log:\n{log}"
    );
    assert!(
        std::fs::read(out.join("shared.bin")).unwrap() == bytes,
        "libtorrent's copy differs"
    );
}

/// Write a torrent of directory `src/d` made by libtorrent: hybrid v1+v2 (its default, with
/// BEP 47 pad files in the v1 view) or pure v2.
fn libtorrent_torrent(dir: &Path, name: &str, v2_only: bool) -> std::path::PathBuf {
    let out = dir.join(name);
    let script = "import sys, libtorrent as lt\n\
        src, out, v2 = sys.argv[1:4]\n\
        fs = lt.file_storage(); lt.add_files(fs, src + '/d')\n\
        t = lt.create_torrent(fs, 16384, lt.create_torrent.v2_only if v2 == '1' else 0)\n\
        lt.set_piece_hashes(t, src)\n\
        open(out, 'wb').write(lt.bencode(t.generate()))\n";
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(dir.join("src"))
        .arg(&out)
        .arg(if v2_only { "1" } else { "0" })
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn a_hybrid_torrent_downloads_through_its_v1_side_and_no_pad_file_is_stored() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("src").join("d");
    std::fs::create_dir_all(&d).unwrap();
    // Odd lengths, so libtorrent pads each file to a piece boundary.
    let (a, b) = (data(400_000, 31), data(300_001, 32));
    std::fs::write(d.join("a.bin"), &a).unwrap();
    std::fs::write(d.join("b.bin"), &b).unwrap();
    let torrent = libtorrent_torrent(dir.path(), "hybrid.torrent", false);
    let port = free_port();
    let mut lt_seed = python(
        "seed",
        &torrent,
        &dir.path().join("src"),
        &format!("127.0.0.2:{port}"),
        "-",
    );
    assert!(first_line(&mut lt_seed).starts_with("ready"));
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args(["--listen", "127.0.0.3", "--port", &free_port().to_string()])
            .args(["--peer", &format!("127.0.0.2:{port}")]),
        Duration::from_secs(90),
    );
    let _ = lt_seed.kill();
    let _ = lt_seed.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(out.join("d/a.bin")).unwrap() == a,
        "a.bin differs"
    );
    assert!(
        std::fs::read(out.join("d/b.bin")).unwrap() == b,
        "b.bin differs"
    );
    assert!(!out.join("d/.pad").exists(), "a pad file was stored");

    // And back: a libtorrent leech downloads the hybrid from enjambre seeding those files.
    let seed_port = free_port();
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(out.join("d"))
            .args(["--listen", "127.0.0.1", "--port", &seed_port.to_string()]),
    );
    wait_listening(seed_port);
    let lt_out = dir.path().join("lt");
    std::fs::create_dir(&lt_out).unwrap();
    let mut leech = python(
        "leech",
        &torrent,
        &lt_out,
        &format!("127.0.0.4:{}", free_port()),
        &format!("127.0.0.1:{seed_port}"),
    );
    assert!(first_line(&mut leech).starts_with("ready"));
    let done = first_line(&mut leech);
    let status = leech.wait().unwrap();
    let log = seed.stop();
    assert!(
        status.success() && done.starts_with("done"),
        "seed log:\n{log}"
    );
    assert!(
        std::fs::read(lt_out.join("d/b.bin")).unwrap() == b,
        "libtorrent's b.bin differs"
    );
}

#[test]
fn a_pure_v2_torrent_is_refused_with_a_clear_message() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("src").join("d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("a.bin"), data(50_000, 33)).unwrap();
    let torrent = libtorrent_torrent(dir.path(), "v2.torrent", true);
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(dir.path().join("out")),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pure v2 (BEP 52) torrent, not supported"),
        "{err}"
    );
}
