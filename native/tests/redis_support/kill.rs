//! A tracker node killed during a real download, over whichever store the caller's nodes
//! share (one Redis, or a Redis Cluster): the scenario both `tracker_redis.rs` and
//! `tracker_redis_cluster.rs` run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enjambre_core::InfoHash;

use super::{announce_ok, metric, ports_of, wait_metric};
use crate::peer_support;
use crate::tracker_support::Tracker;

const LT_LEECH: &str = r#"
import sys, time, libtorrent as lt
torrent, save, iface = sys.argv[1:4]
s = lt.session({'listen_interfaces': iface, 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True,
                'download_rate_limit': 600000, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
h.set_download_limit(600000)
print('ready', flush=True)
deadline = time.time() + 45
while time.time() < deadline:
    if h.status().is_seeding:
        print('done', flush=True)
        time.sleep(3)
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
"#;

/// Three nodes started by `node`; a seed announced to node 2, an aria2 leech to node 0, a
/// libtorrent leech to node 1 (both rate-limited); node 2 is killed with SIGKILL mid-download.
/// The others keep answering, see it gone within the node timeout and keep polling, and the
/// completed count is exactly the two leeches at the end.
pub fn node_killed_during_a_download(node: impl Fn(&[&str]) -> Tracker) {
    let tools = Command::new("aria2c")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok()
        && peer_support::libtorrent();
    if !tools {
        eprintln!("skipped: aria2c or python3-libtorrent not installed");
        return;
    }
    let args = [
        "--poll-interval",
        "1",
        "--poll-grace",
        "0",
        "--node-timeout",
        "3",
    ];
    let mut nodes: Vec<Tracker> = (0..3).map(|_| node(&args)).collect();
    for n in &nodes {
        wait_metric(n, "enjambre_tracker_store_nodes", 3);
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = peer_support::data(8_000_000, 33);
    let file = dir.path().join("k.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = |i: usize| {
        let url = format!("http://{}/announce", nodes[i].http);
        peer_support::create(
            &file,
            &dir.path().join(format!("{i}.torrent")),
            &[&url],
            65536,
        )
    };
    let (ta, tl, ts) = (torrent(0), torrent(1), torrent(2));
    let ih = InfoHash::from_hex(&peer_support::info_hash(&ts)).unwrap();
    let mut seed = peer_support::Background::spawn(
        peer_support::enjambre()
            .arg("seed")
            .arg(&ts)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.2", "--port", "0"]),
    );
    nodes[0].wait_swarm(&ih, Duration::from_secs(20), |s| s["seeders"] == 1);
    let (aout, lout) = (dir.path().join("aria"), dir.path().join("lt"));
    std::fs::create_dir(&aout).unwrap();
    std::fs::create_dir(&lout).unwrap();
    let aria = Command::new("aria2c")
        .arg("-d")
        .arg(&aout)
        .args([
            "--seed-time=0.05",
            "--max-download-limit=600K",
            &format!("--listen-port={}", peer_support::free_port()),
            "--enable-dht=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--summary-interval=0",
            "--console-log-level=warn",
        ])
        .arg(&ta)
        .stdout(Stdio::piped())
        .spawn()
        .expect("aria2c");
    let aria = KillOnDrop(aria);
    let mut lt = KillOnDrop(
        Command::new("/usr/bin/python3")
            .args(["-c", LT_LEECH])
            .arg(&tl)
            .arg(&lout)
            .arg(format!("127.0.0.4:{}", peer_support::free_port()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let mut lt_out = BufReader::new(lt.0.stdout.take().unwrap()).lines();
    assert_eq!(lt_out.next().unwrap().unwrap(), "ready");
    nodes[0].wait_swarm(&ih, Duration::from_secs(20), |s| {
        s["peers"].as_array().map_or(0, Vec::len) == 3
    });
    std::thread::sleep(Duration::from_secs(1));
    let s = nodes[0].json(&format!("/swarm/{ih}"));
    assert_eq!(
        s["completed"].as_u64(),
        Some(0),
        "killed mid-download: {s:#}"
    );
    // kill -9 node 2, the seed's.
    let _ = nodes[2].child.kill();
    let _ = nodes[2].child.wait();
    let killed_at = Instant::now();
    drop(nodes.pop());
    for n in &nodes {
        wait_metric(n, "enjambre_tracker_store_nodes", 2);
    }
    let seen = killed_at.elapsed();
    assert!(
        seen <= Duration::from_secs(5),
        "dead node seen after {seen:?}"
    );
    // The others keep answering, and polling the whole swarm between them.
    let polls = |ns: &[Tracker]| -> u64 {
        ns.iter()
            .map(|n| metric(n, "enjambre_tracker_polls_ok_total"))
            .sum()
    };
    let before = polls(&nodes);
    // Both leeches (whichever node owned their address) are polled afresh by the survivors.
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let s = nodes[0].json(&format!("/swarm/{ih}"));
        let leeches: Vec<&serde_json::Value> = s["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["seed"] == false)
            .collect();
        let fresh = leeches
            .iter()
            .filter(|p| p["source"] == "poll" && p["bitfield_age"].as_u64() <= Some(1))
            .count();
        if leeches.len() == 2 && fresh == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leeches not polled after the kill: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let other = InfoHash([0x77; 20]);
    assert_eq!(
        ports_of(&announce_ok(&nodes[1], &other, 9, 7009, 100, "&compact=1")),
        [] as [u16; 0]
    );
    assert_eq!(lt_out.next().unwrap().unwrap(), "done", "libtorrent");
    let mut aria = aria;
    let status = aria.0.wait().unwrap();
    assert!(status.success(), "aria2 failed");
    assert!(lt.0.wait().unwrap().success(), "libtorrent failed");
    seed.stop();
    assert!(polls(&nodes) > before, "no polls after the kill");
    assert!(
        std::fs::read(aout.join("k.bin")).unwrap() == bytes,
        "aria2's copy differs"
    );
    assert!(
        std::fs::read(lout.join("k.bin")).unwrap() == bytes,
        "libtorrent's copy differs"
    );
    for n in &nodes {
        let s = n.json(&format!("/swarm/{ih}"));
        assert_eq!(s["completed"].as_u64(), Some(2), "{s:#}");
    }
    eprintln!("dead node seen gone after {seen:?}, leeches polled afresh after it");
}

/// A child process killed on drop (also on a failed assertion).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
