//! Tracker nodes sharing one registry in a three-master Redis Cluster
//! (`--store redis+cluster://H1:P1,H2:P2,H3:P3`): peers announcing to different nodes get each
//! other whatever slot their torrent falls in, scrape / swarm API / `/metrics` / the live feed
//! agree across nodes, a real download goes through three nodes, and the polling is divided.
//! Each test starts its own cluster (Debian's `redis-server` and `redis-cli`) on free loopback
//! ports in a temp dir, and kills it on drop (also on panic); skipped when not installed.

mod peer_support;
mod redis_support;
mod tracker_support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enjambre_core::InfoHash;
use redis_support::{announce_ok, metric, ports_of, wait_metric, FakePeer};
use tracker_support::{bdecode, bint, peer_id, Tracker};

/// Three `redis-server` masters joined into one cluster, killed on drop.
struct Cluster {
    children: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

/// A port free now, with a second one for the cluster bus.
fn two_free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn cli(port: u16, args: &[&str]) -> String {
    let o = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let have = |bin: &str| {
            Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok()
        };
        if !have("redis-server") || !have("redis-cli") {
            eprintln!("skipped: redis-server or redis-cli not installed");
            return None;
        }
        let mut c = Cluster {
            children: Vec::new(),
            ports: Vec::new(),
            _dir: tempfile::tempdir().unwrap(),
        };
        for i in 0..3 {
            let (port, bus) = two_free_ports();
            let d = c._dir.path().join(format!("n{i}"));
            std::fs::create_dir(&d).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            c.children.push(child);
            c.ports.push(port);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for &p in &c.ports {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let o = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            o.status.success(),
            "cluster create: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        for &p in &c.ports {
            while !cli(p, &["cluster", "info"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "cluster never ok");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(c)
    }

    fn url(&self) -> String {
        let list: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", list.join(","))
    }

    /// A tracker node on this cluster, with `extra` arguments.
    fn node(&self, extra: &[&str]) -> Tracker {
        let url = self.url();
        let mut args = vec!["--store", &url];
        args.extend_from_slice(extra);
        Tracker::start(&args)
    }

    /// How many keys each master holds.
    fn keys_per_master(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|&p| cli(p, &["dbsize"]).trim().parse().unwrap_or(0))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn peers_of_torrents_on_every_master_meet_across_three_nodes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let nodes: Vec<Tracker> = (0..3)
        .map(|_| cluster.node(&["--poll-interval", "0"]))
        .collect();
    // Twelve torrents: their slots fall on every master but by a tiny chance.
    let hashes: Vec<InfoHash> = (0..12u8).map(|i| InfoHash([0x40 + i; 20])).collect();
    for (t, ih) in hashes.iter().enumerate() {
        let (a, b, c) = (&nodes[t % 3], &nodes[(t + 1) % 3], &nodes[(t + 2) % 3]);
        assert_eq!(
            ports_of(&announce_ok(a, ih, 1, 7001, 100, "&compact=1")),
            [] as [u16; 0]
        );
        assert_eq!(
            ports_of(&announce_ok(b, ih, 2, 7002, 100, "&compact=1")),
            [7001]
        );
        // A seed completes through the third node, and again through the first: counted once.
        c.announce(ih, &peer_id(3), 7003, 0, "&compact=1&event=completed");
        a.announce(ih, &peer_id(3), 7003, 0, "&compact=1&event=completed");
        assert_eq!(
            ports_of(&a.announce(ih, &peer_id(1), 7001, 100, "&compact=1")),
            [7002, 7003]
        );
    }
    let per_master = cluster.keys_per_master();
    assert!(
        per_master.iter().all(|&n| n > 0),
        "torrents on every master: {per_master:?}"
    );
    // A scrape of every torrent at once (their keys in many slots), from every node.
    let query: String = hashes
        .iter()
        .map(|ih| format!("info_hash={}&", tracker_support::pct(&ih.0)))
        .collect();
    for t in &nodes {
        let (_, _, body) = t.get(&format!("/scrape?{query}"));
        let v = bdecode(&body);
        let files = v.as_dict().unwrap().get(b"files".as_slice()).unwrap();
        for ih in &hashes {
            let e = &files.as_dict().unwrap().get(ih.0.as_slice()).unwrap();
            assert_eq!(
                (
                    bint(e, "complete"),
                    bint(e, "incomplete"),
                    bint(e, "downloaded")
                ),
                (1, 2, 1)
            );
        }
        let list = t.json("/swarms");
        assert_eq!(list["total"].as_u64(), Some(12), "{list:#}");
        assert_eq!(metric(t, "enjambre_tracker_peers"), 36);
        assert_eq!(metric(t, "enjambre_tracker_store_up"), 1);
        let s = t.json(&format!("/swarm/{}", hashes[5]));
        assert_eq!(s["peers"].as_array().unwrap().len(), 3, "{s:#}");
        assert_eq!(s["completed"].as_u64(), Some(1));
    }
    // The live feed of node 0 shows announces to node 2 (pub/sub across the cluster).
    let ih = hashes[7];
    let mut sock = TcpStream::connect(nodes[0].http).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(sock, "GET /swarm/{ih}/events HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut lines = BufReader::new(sock).lines();
    let mut next_data = || loop {
        let l = lines.next().expect("feed open").expect("feed line");
        if let Some(d) = l.strip_prefix("data: ") {
            return serde_json::from_str::<serde_json::Value>(d).unwrap();
        }
    };
    let snap = next_data();
    assert_eq!(snap["peers"].as_array().unwrap().len(), 3, "{snap:#}");
    nodes[2].announce(&ih, &peer_id(4), 7004, 100, "");
    let e = next_data();
    assert_eq!(
        (e["type"].as_str(), e["peer"]["addr"].as_str()),
        (Some("peer"), Some("127.0.0.1:7004"))
    );
    nodes[1].announce(&ih, &peer_id(4), 7004, 100, "&event=stopped");
    let e = next_data();
    assert_eq!(
        (e["type"].as_str(), e["addr"].as_str()),
        (Some("leave"), Some("127.0.0.1:7004"))
    );
}

#[test]
fn an_aria2_leech_downloads_from_a_seed_announced_to_another_node_of_the_cluster() {
    let aria2 = Command::new("aria2c")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    let Some(cluster) = Cluster::start().filter(|_| aria2) else {
        eprintln!("skipped: aria2c, redis-server or redis-cli not installed");
        return;
    };
    let nodes: Vec<Tracker> = (0..3)
        .map(|_| cluster.node(&["--poll-interval", "1", "--poll-grace", "0"]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let bytes = peer_support::data(3_000_000, 21);
    let file = dir.path().join("c.bin");
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
    let (ts, tl) = (torrent(2), torrent(0));
    let hex = peer_support::info_hash(&ts);
    assert_eq!(hex, peer_support::info_hash(&tl));
    let ih = InfoHash::from_hex(&hex).unwrap();
    let mut seed = peer_support::Background::spawn(
        peer_support::enjambre()
            .arg("seed")
            .arg(&ts)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.2", "--port", "0"]),
    );
    nodes[0].wait_swarm(&ih, Duration::from_secs(20), |s| s["seeders"] == 1);
    let out = dir.path().join("aria");
    std::fs::create_dir(&out).unwrap();
    let o = peer_support::run(
        Command::new("aria2c")
            .arg("-d")
            .arg(&out)
            .args([
                "--seed-time=0.05",
                &format!("--listen-port={}", peer_support::free_port()),
            ])
            .args([
                "--enable-dht=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--summary-interval=0",
                "--console-log-level=warn",
            ])
            .arg(&tl),
        Duration::from_secs(60),
    );
    seed.stop();
    assert!(
        o.status.success(),
        "aria2: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        std::fs::read(out.join("c.bin")).unwrap() == bytes,
        "aria2's copy differs"
    );
    let s = nodes[1].json(&format!("/swarm/{ih}"));
    assert_eq!(
        s["completed"].as_u64(),
        Some(1),
        "aria2's completion through node 0, seen on node 1: {s:#}"
    );
}

#[test]
fn three_nodes_over_a_cluster_divide_the_polling() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Two torrents, so that the poller walks more than one slot.
    let (t1, ih1) = tracker_support::write_torrent(dir.path(), "p1", 8);
    let (t2, ih2) = tracker_support::write_torrent(dir.path(), "p2", 8);
    let (p1, p2) = (t1.to_str().unwrap(), t2.to_str().unwrap());
    let args = [
        "--torrent",
        p1,
        "--torrent",
        p2,
        "--poll-interval",
        "2",
        "--poll-grace",
        "0",
        "--poll-spacing",
        "0.2",
        "--node-timeout",
        "3",
    ];
    let nodes: Vec<Tracker> = (0..3).map(|_| cluster.node(&args)).collect();
    for n in &nodes {
        wait_metric(n, "enjambre_tracker_store_nodes", 3);
    }
    let peers: Vec<FakePeer> = (0..24)
        .map(|i| FakePeer::start(format!("127.0.1.{}", 10 + i)))
        .collect();
    for (i, p) in peers.iter().enumerate() {
        let ih = if i % 2 == 0 { &ih1 } else { &ih2 };
        p.announce(&nodes[i % 3], ih, i as u32);
    }
    std::thread::sleep(Duration::from_secs(3));
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(9));
    for (i, p) in peers.iter().enumerate() {
        let t = p.polls_since(from);
        assert!(
            (3..=6).contains(&t.len()),
            "peer {i} polled {} times in 9 s",
            t.len()
        );
        let gap = t.windows(2).map(|w| w[1] - w[0]).min().unwrap();
        assert!(
            gap >= Duration::from_millis(900),
            "peer {i} polled twice within {gap:?}"
        );
    }
    for n in &nodes {
        assert!(
            metric(n, "enjambre_tracker_polls_ok_total") > 0,
            "every node polls its share:\n{}",
            n.log()
        );
    }
    for ih in [ih1, ih2] {
        let s = nodes[0].json(&format!("/swarm/{ih}"));
        let polled = s["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["source"] == "poll" && p["pieces_have"] == 2)
            .count();
        assert_eq!(polled, 12, "{s:#}");
    }
}

/// What a peer saw of its polls in a window: (count, shortest gap, longest gap).
fn gaps(t: &[Instant]) -> (usize, Duration, Duration) {
    let g: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
    (
        t.len(),
        g.iter().copied().min().unwrap_or(Duration::MAX),
        g.iter().copied().max().unwrap_or(Duration::ZERO),
    )
}

/// Every peer polled once per interval, counted at the peers, while a third node joins and
/// then one of the first two leaves (SIGTERM: it leaves the heartbeat set at once).
///
/// What is asserted, with `--poll-interval 2`: next-poll times are whole Unix seconds, so two
/// polls of consecutive intervals can be as close as just over 1 s; two polls of one interval
/// (two nodes both claiming a peer) would be milliseconds apart. So: no two polls of one peer
/// within 0.9 s, and no gap over 5 s (2 s interval + 1 s of clock granularity + 1 s between the
/// poller's scans + a heartbeat's delay in learning who left); over the 14 s window that is
/// 4 to 8 polls per peer.
#[test]
fn polls_stay_once_per_interval_while_a_node_joins_and_another_leaves() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (t1, ih) = tracker_support::write_torrent(dir.path(), "j", 8);
    let p1 = t1.to_str().unwrap();
    let args = [
        "--torrent",
        p1,
        "--poll-interval",
        "2",
        "--poll-grace",
        "0",
        "--poll-spacing",
        "0.05",
        "--node-timeout",
        "3",
    ];
    let mut nodes: Vec<Tracker> = (0..2).map(|_| cluster.node(&args)).collect();
    for n in &nodes {
        wait_metric(n, "enjambre_tracker_store_nodes", 2);
    }
    let peers: Vec<FakePeer> = (0..30)
        .map(|i| FakePeer::start(format!("127.0.2.{}", 10 + i)))
        .collect();
    for (i, p) in peers.iter().enumerate() {
        p.announce(&nodes[i % 2], &ih, i as u32);
    }
    std::thread::sleep(Duration::from_secs(3));
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    nodes.push(cluster.node(&args));
    wait_metric(&nodes[0], "enjambre_tracker_store_nodes", 3);
    let joined = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let left = nodes.remove(1);
    let polls_of_leaver = metric(&left, "enjambre_tracker_polls_ok_total");
    let leaving = Instant::now();
    assert!(left.terminate().success());
    let exited = Instant::now();
    wait_metric(&nodes[0], "enjambre_tracker_store_nodes", 2);
    let seen_gone = Instant::now();
    std::thread::sleep(Duration::from_secs(14) - from.elapsed());
    let window: Vec<Vec<Instant>> = peers
        .iter()
        .map(|p| {
            p.polls_since(from)
                .into_iter()
                .filter(|t| *t < from + Duration::from_secs(14))
                .collect()
        })
        .collect();
    let at = |x: Instant| format!("{:.2}", (x - from).as_secs_f64());
    let story = |t: &[Instant]| {
        format!(
            "polls at {:?} s; joined at {} s, left at {} s (exited at {} s, seen gone at {} s)",
            t.iter().map(|x| at(*x)).collect::<Vec<_>>(),
            at(joined),
            at(leaving),
            at(exited),
            at(seen_gone),
        )
    };
    for (i, t) in window.iter().enumerate() {
        let (n, short, long) = gaps(t);
        assert!(
            short >= Duration::from_millis(900),
            "peer {i} polled twice within {short:?}: {}",
            story(t)
        );
        assert!(
            long <= Duration::from_secs(5),
            "peer {i} unpolled for {long:?}: {}",
            story(t)
        );
        assert!(
            (4..=8).contains(&n),
            "peer {i} polled {n} times in 14 s: {}",
            story(t)
        );
    }
    // The newcomer took a share, and the one that left had one.
    assert!(polls_of_leaver > 0);
    let after_join = peers
        .iter()
        .filter(|p| !p.polls_since(joined).is_empty())
        .count();
    assert_eq!(after_join, peers.len());
    assert!(
        metric(&nodes[1], "enjambre_tracker_polls_ok_total") > 0,
        "{}",
        nodes[1].log()
    );
    let total: usize = window.iter().map(Vec::len).sum();
    eprintln!(
        "{} peers, {total} polls in 14 s (interval 2 s)",
        peers.len()
    );
}

/// A libtorrent leech at a limited rate, announcing to the tracker of its torrent; prints
/// `ready`, then `done` when it has everything, and stays 3 s more (to announce `completed`).
/// Three nodes over the cluster; a seed announced to node 2, an aria2 leech to node 0, a
/// libtorrent leech to node 1; node 2 is killed with SIGKILL mid-download (see
/// `redis_support::kill`).
#[test]
fn a_node_killed_during_a_download_leaves_the_others_answering_and_polling() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    redis_support::kill::node_killed_during_a_download(|args| cluster.node(args));
}
