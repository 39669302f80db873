//! A torrent with more pieces than one output buffer's bitfield holds: 150 000 pieces of 16
//! bytes (a hand-made torrent; `enjambre create` cuts 16 KiB at least, which would take
//! 2.4 GB to show the same). Our `Bitfield` message is 18 755 bytes, and resuming with most
//! pieces present we must send it whole before any request, to a `--peer` and through our
//! own tracker, whose head limit (8 KiB) the self-reported `bitfield=` would not fit.

mod peer_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use enjambre_core::sha1::{digest, Sha1Smol};
use peer_support::{enjambre, free_port, free_tcp_udp_port, run, wait_listening, Background};

const PIECES: usize = 150_000;
const PIECE_LEN: usize = 16;

/// Random bytes, one torrent `many.bin` over them announcing to `tracker` (if any).
fn many_pieces(dir: &Path, tracker: Option<&str>) -> (Vec<u8>, PathBuf) {
    let data = peer_support::data(PIECES * PIECE_LEN - 5, 7);
    let mut info = format!(
        "d6:lengthi{}e4:name8:many.bin12:piece lengthi{PIECE_LEN}e6:pieces{}:",
        data.len(),
        PIECES * 20
    )
    .into_bytes();
    for piece in data.chunks(PIECE_LEN) {
        info.extend_from_slice(&digest::<Sha1Smol>(piece));
    }
    info.push(b'e');
    let mut torrent = Vec::new();
    if let Some(url) = tracker {
        torrent.extend_from_slice(format!("d8:announce{}:{url}", url.len()).as_bytes());
    } else {
        torrent.push(b'd');
    }
    torrent.extend_from_slice(b"4:info");
    torrent.extend_from_slice(&info);
    torrent.push(b'e');
    let path = dir.join("many.torrent");
    std::fs::write(&path, torrent).unwrap();
    std::fs::write(dir.join("seed.bin"), &data).unwrap();
    (data, path)
}

/// A download directory holding the data with every 1000th piece zeroed: a resume after a
/// lost state, whose bitfield is nearly full.
fn partial_copy(dir: &Path, data: &[u8]) -> PathBuf {
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let mut partial = data.to_vec();
    for piece in partial.chunks_mut(PIECE_LEN).step_by(1000) {
        piece.fill(0);
    }
    std::fs::write(out.join("many.bin"), partial).unwrap();
    out
}

fn seed(torrent: &Path, dir: &Path, port: u16) -> Background {
    let bg = Background::spawn(enjambre().arg("seed").arg(torrent).args([
        "--data".as_ref(),
        dir.join("seed.bin").as_os_str(),
        "--port".as_ref(),
        port.to_string().as_ref(),
        "--listen".as_ref(),
        "127.0.0.1".as_ref(),
    ]));
    wait_listening(port);
    bg
}

fn get(torrent: &Path, out: &Path) -> Command {
    let mut cmd = enjambre();
    cmd.arg("get").arg(torrent).arg("-o").arg(out).args([
        "--port",
        &free_port().to_string(),
        "--listen",
        "127.0.0.1",
    ]);
    cmd
}

fn assert_finished(o: &std::process::Output, out: &Path, data: &[u8]) {
    assert!(
        o.status.success(),
        "get failed ({:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read(out.join("many.bin")).unwrap() == data);
}

#[test]
fn a_resume_whose_bitfield_exceeds_one_output_buffer_finishes_from_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = many_pieces(dir.path(), None);
    let port = free_port();
    let _seed = seed(&torrent, dir.path(), port);
    let out = partial_copy(dir.path(), &data);
    let o = run(
        get(&torrent, &out).args(["--peer", &format!("127.0.0.1:{port}")]),
        Duration::from_secs(40),
    );
    assert_finished(&o, &out, &data);
}

#[test]
fn a_bitfield_too_large_to_self_report_still_announces_to_our_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let tport = free_tcp_udp_port();
    let mut tracker = Background::spawn(enjambre().args([
        "tracker",
        "--listen",
        &format!("127.0.0.1:{tport}"),
        "--poll-interval",
        "0",
    ]));
    wait_listening(tport);
    let url = format!("http://127.0.0.1:{tport}/announce");
    let (data, torrent) = many_pieces(dir.path(), Some(&url));
    let _seed = seed(&torrent, dir.path(), free_port());
    let out = partial_copy(dir.path(), &data);
    let o = run(&mut get(&torrent, &out), Duration::from_secs(40));
    let log = tracker.stop();
    assert!(!log.contains("431"), "the tracker refused a head: {log}");
    assert_finished(&o, &out, &data);
}
