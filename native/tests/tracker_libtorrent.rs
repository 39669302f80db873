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
t = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
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
                .any(|p| p["source"] == "poll" && p["have"] == "all" && p["reachable"] == true)
        })
    });
    let p = &v["peers"][0];
    assert_eq!(p["seed"], true);
    assert_eq!(p["progress"], 1.0);
    assert_eq!(p["client"], "-LT2080-", "libtorrent's own announce");
    let _ = seed.kill();
    let _ = seed.wait();
}

const SWARM: &str = r#"
import sys, os, time, libtorrent as lt
d, announce = sys.argv[1], sys.argv[2]
sd, ld = os.path.join(d, "seed"), os.path.join(d, "leech")
os.makedirs(sd, exist_ok=True); os.makedirs(ld, exist_ok=True)
payload = os.path.join(sd, "payload.bin")
with open(payload, "wb") as f:
    f.write(bytes((i * 13) % 251 for i in range(1 << 20)))
fs = lt.file_storage()
lt.add_files(fs, payload)
t = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
t.add_tracker(announce)
lt.set_piece_hashes(t, sd)
tp = os.path.join(d, "payload.torrent")
with open(tp, "wb") as f:
    f.write(lt.bencode(t.generate()))
common = {"enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
          "allow_multiple_connections_per_ip": True, "announce_to_all_trackers": True}
seed = lt.session(dict(common, listen_interfaces="127.0.0.1:0", upload_rate_limit=96 * 1024))
leech = lt.session(dict(common, listen_interfaces="127.0.0.1:0"))
ti = lt.torrent_info(tp)
sh = seed.add_torrent({"ti": ti, "save_path": sd, "flags": lt.torrent_flags.seed_mode})
sh.set_upload_limit(96 * 1024)  # torrent limits apply to loopback peers too
time.sleep(0.5)
lh = leech.add_torrent({"ti": lt.torrent_info(tp), "save_path": ld})
lh.set_download_limit(96 * 1024)
print("ready", str(ti.info_hashes().v1), seed.listen_port(), leech.listen_port(), flush=True)
while not lh.status().is_seeding:
    time.sleep(0.2)
lh.force_reannounce()
print("done", flush=True)
while sys.stdin.read(1):
    pass
"#;

#[test]
fn a_libtorrent_leech_bitfield_is_followed_by_polling_until_it_seeds() {
    if !libtorrent_available() {
        eprintln!("python3-libtorrent not installed: skipped");
        return;
    }
    let dir = scratch_dir("libtorrent-swarm");
    // No grace period: the download is short and must be seen part-way.
    let t = Tracker::start(&[
        "--poll-grace",
        "0",
        "--poll-interval",
        "1",
        "--poll-read-time",
        "2",
        "--interval",
        "5",
        "--min-interval",
        "1",
    ]);
    let script = dir.join("swarm.py");
    std::fs::write(&script, SWARM).unwrap();
    let mut py = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&dir)
        .arg(format!("http://{}/announce", t.http))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"ready"), "{line:?}");
    let ih = InfoHash::from_hex(f[1]).unwrap();
    let leech_addr = format!("127.0.0.1:{}", f[3]);
    // Sample the leech's polled progress until it has everything.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (status, _, body) = t.get(&format!("/swarm/{ih}"));
        if status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if let Some(p) = v["peers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["addr"] == leech_addr.as_str())
            {
                if p["source"] == "poll" {
                    let have = if p["have"] == "all" {
                        64
                    } else {
                        p["pieces_have"].as_u64().unwrap_or(0)
                    };
                    if seen.last() != Some(&have) {
                        seen.push(have);
                    }
                    if have == 64 {
                        break;
                    }
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "leech never complete; seen {seen:?}\n{}",
            t.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        seen.iter().any(|&h| h > 0 && h < 64),
        "no partial bitfield observed: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {seen:?}"
    );
    // The leech re-announces when done; the scrape counts its completion.
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = t.json(&format!("/swarm/{ih}"));
        if v["completed"] == 1 && v["seeders"] == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "completion not counted: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("leech pieces seen by polling: {seen:?}");
    let _ = py.kill();
    let _ = py.wait();
}
