//! Peer exchange (BEP 11) end to end, with no tracker: a seed S, a leech A given S, and a leech
//! B given only A. B can learn where S is only from A's `ut_pex` message; it must dial S and
//! finish byte-identical. A private torrent (BEP 27) turns PEX off: B then never meets S. And,
//! when python3-libtorrent is installed, a libtorrent leech given only A learns S the same way.

mod peer_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use peer_support::{data, enjambre, free_port, libtorrent, run, wait_listening, Background};

/// A torrent of `bytes` with no tracker, private or not; returns the data file and the torrent.
fn fixture(dir: &Path, bytes: &[u8], private: bool) -> (PathBuf, PathBuf) {
    let file = dir.join("shared.bin");
    std::fs::write(&file, bytes).unwrap();
    let torrent = dir.join("shared.torrent");
    let mut cmd = enjambre();
    cmd.arg("create").arg(&file).arg("-o").arg(&torrent);
    cmd.args(["--piece-length", "32768"]);
    if private {
        cmd.arg("--private");
    }
    let o = run(&mut cmd, Duration::from_secs(60));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (file, torrent)
}

/// The seed S on 127.0.0.1:`port`, uploading at 1 MiB/s at most: slow enough that A is still
/// downloading (so still connected to S, and telling B about it) when B arrives.
fn seed(torrent: &Path, file: &Path, port: u16) -> Background {
    let s = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
            .args(["--max-upload-rate", "1M"]),
    );
    wait_listening(port);
    s
}

/// Leech A on 127.0.0.1:`port`, given only S; it keeps seeding once complete.
fn leech_a(torrent: &Path, out: &Path, port: u16, s_port: u16) -> Background {
    let a = Background::spawn(
        enjambre()
            .arg("get")
            .arg(torrent)
            .arg("-o")
            .arg(out)
            .arg("--seed")
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
            .args(["--peer", &format!("127.0.0.1:{s_port}")]),
    );
    wait_listening(port);
    a
}

/// Leech B given only A, to completion; returns its JSON lines.
fn leech_b(torrent: &Path, out: &Path, a_port: u16) -> Vec<serde_json::Value> {
    let o = run(
        enjambre()
            .arg("get")
            .arg(torrent)
            .arg("-o")
            .arg(out)
            .arg("--json")
            .args(["--listen", "127.0.0.1", "--port", &free_port().to_string()])
            .args(["--peer", &format!("127.0.0.1:{a_port}")]),
        Duration::from_secs(90),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The addresses B dialled or was dialled from, as its `peer_connected` lines say.
fn connected(lines: &[serde_json::Value]) -> Vec<String> {
    (lines.iter())
        .filter(|v| v["type"] == "peer_connected")
        .map(|v| v["addr"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_leech_given_only_another_leech_finds_the_seed_through_its_pex() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(6_000_000, 31);
    let (file, torrent) = fixture(dir.path(), &bytes, false);
    let (s_port, a_port) = (free_port(), free_port());
    let mut s = seed(&torrent, &file, s_port);
    let mut a = leech_a(&torrent, &dir.path().join("a"), a_port, s_port);
    let b_out = dir.path().join("b");
    let lines = leech_b(&torrent, &b_out, a_port);
    let (s_log, a_log) = (s.stop(), a.stop());
    assert!(
        std::fs::read(b_out.join("shared.bin")).unwrap() == bytes,
        "B's bytes differ"
    );
    // B was told only A, and there is no tracker; S, a seed, dials nobody it was not told to
    // (and a connection S opened would show S's ephemeral port, not the one it listens on).
    // So B connected to S's listening address only because A's PEX message named it.
    let peers = connected(&lines);
    assert!(
        peers.contains(&format!("127.0.0.1:{s_port}")),
        "B never dialled S: {peers:?}\nS:\n{s_log}\nA:\n{a_log}"
    );
    assert_eq!(peers[0], format!("127.0.0.1:{a_port}"), "A first");
}

#[test]
fn with_a_private_torrent_the_leech_never_hears_of_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(2_000_000, 32);
    let (file, torrent) = fixture(dir.path(), &bytes, true);
    let (s_port, a_port) = (free_port(), free_port());
    let _s = seed(&torrent, &file, s_port);
    let _a = leech_a(&torrent, &dir.path().join("a"), a_port, s_port);
    let b_out = dir.path().join("b");
    let lines = leech_b(&torrent, &b_out, a_port);
    assert!(std::fs::read(b_out.join("shared.bin")).unwrap() == bytes);
    let peers = connected(&lines);
    let a = format!("127.0.0.1:{a_port}");
    assert!(
        !peers.is_empty() && peers.iter().all(|p| *p == a),
        "{peers:?}"
    );
}

/// A libtorrent leech on IFACE given only PEER; prints `pex HOST:PORT` for each peer it learnt
/// from PEX and connected to, and `done` once complete and one was seen.
const SCRIPT: &str = r#"
import sys, time, libtorrent as lt
torrent, save, iface, peer = sys.argv[1:5]
s = lt.session({'listen_interfaces': iface, 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False,
                'allow_multiple_connections_per_ip': True, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
host, port = peer.rsplit(':', 1)
h.connect_peer((host, int(port)))
print('ready', flush=True)
seen = set()
deadline = time.time() + 60
while time.time() < deadline:
    for p in h.get_peer_info():
        if p.source & lt.peer_info.pex and p.ip not in seen:
            seen.add(p.ip)
            print('pex %s:%d' % p.ip, flush=True)
    if seen and h.status().is_seeding:
        print('done', flush=True)
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
"#;

#[test]
fn a_libtorrent_leech_given_only_an_enjambre_leech_learns_the_seed_from_its_pex() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(6_000_000, 33);
    let (file, torrent) = fixture(dir.path(), &bytes, false);
    let (s_port, a_port) = (free_port(), free_port());
    let mut s = seed(&torrent, &file, s_port);
    let mut a = leech_a(&torrent, &dir.path().join("a"), a_port, s_port);
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    let mut lt = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .arg(&torrent)
        .arg(&out)
        .arg(format!("127.0.0.5:{}", free_port()))
        .arg(format!("127.0.0.1:{a_port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let lines: Vec<String> = BufReader::new(lt.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = lt.wait().unwrap();
    let (s_log, a_log) = (s.stop(), a.stop());
    // libtorrent was given only A: a peer it calls PEX-learnt at S's listening address came
    // from A's message.
    assert!(
        status.success() && lines.contains(&format!("pex 127.0.0.1:{s_port}")),
        "libtorrent: {lines:?}\nS:\n{s_log}\nA:\n{a_log}"
    );
    assert!(std::fs::read(out.join("shared.bin")).unwrap() == bytes);
}
