//! End to end with a real client: a python3-libtorrent seed announces to `enjambre tracker` over
//! HTTP and the tracker's poller learns its (full) bitfield from libtorrent itself. Skipped, with
//! a message, where /usr/bin/python3 cannot import libtorrent.

mod tracker_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use enjambre_core::InfoHash;
use tracker_support::*;

const SEED: &str = r#"
import sys, os, time, libtorrent as lt
d, announce = sys.argv[1], sys.argv[2]
payload = os.path.join(d, "payload.bin")
with open(payload, "wb") as f:
    f.write(bytes((i * 7) % 251 for i in range(1 << 20)))
fs = lt.file_storage()
lt.add_files(fs, payload)
t = lt.create_torrent(fs, 16384)
t.add_tracker(announce)
lt.set_piece_hashes(t, d)
data = lt.bencode(t.generate())
with open(os.path.join(d, "payload.torrent"), "wb") as f:
    f.write(data)
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "announce_to_all_trackers": True,
                  "allow_multiple_connections_per_ip": True})
ti = lt.torrent_info(os.path.join(d, "payload.torrent"))
h = ses.add_torrent({"ti": ti, "save_path": d, "flags": lt.torrent_flags.seed_mode})
print("ready", str(ti.info_hashes().v1), flush=True)
while sys.stdin.read(1):
    pass
"#;

fn libtorrent_available() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn a_libtorrent_seed_is_polled_and_shows_a_full_bitfield() {
    if !libtorrent_available() {
        eprintln!("python3-libtorrent not installed: skipped");
        return;
    }
    let dir = scratch_dir("libtorrent");
    let t = Tracker::start(&["--poll-interval", "1", "--poll-read-time", "2"]);
    let script = dir.join("seed.py");
    std::fs::write(&script, SEED).unwrap();
    let announce = format!("http://{}/announce", t.http);
    let mut seed = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&dir)
        .arg(&announce)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(seed.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let hex = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("seed said {line:?}"));
    let ih = InfoHash::from_hex(hex).expect("info-hash");
    let v = t.wait_swarm(&ih, Duration::from_secs(60), |v| {
        v["peers"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["source"] == "poll" && p["have"] == "all")
        })
    });
    let p = &v["peers"][0];
    assert_eq!(p["seed"], true);
    assert_eq!(p["reachable"], true);
    assert_eq!(p["progress"], 1.0);
    assert_eq!(p["client"], "-LT2080-", "libtorrent's own announce");
    let _ = seed.kill();
    let _ = seed.wait();
}
