//! Tracker nodes sharing one registry in Redis (`--store`): peers announcing to different
//! nodes get each other, scrape / swarm API / `/metrics` / the live feed agree across nodes, a
//! real download goes through two nodes, and Redis going away gives a failure reason, never a
//! wrong peer list, until it is back (without restarting the tracker). Each test starts its own
//! `redis-server` (Debian's) on a free loopback port in a temp dir; skipped when not installed.

mod peer_support;
mod redis_support;
mod tracker_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use enjambre_core::tracker::udp::Response;
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::InfoHash;
use redis_support::{metric, ports_of, wait_metric, FakePeer, Redis};
use tracker_support::{bbytes, bdecode, bint, compact_ports, peer_id, Tracker, UdpClient};

/// A `redis-server` of the test's own, killed on drop.

#[test]
fn peers_announcing_to_two_nodes_get_each_other() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let (a, b) = (redis.node(&[]), redis.node(&[]));
    let ih = InfoHash([0x15; 20]);
    assert_eq!(
        ports_of(&a.announce(&ih, &peer_id(1), 7001, 100, "&compact=1")),
        [] as [u16; 0]
    );
    assert_eq!(
        ports_of(&b.announce(&ih, &peer_id(2), 7002, 100, "&compact=1")),
        [7001]
    );
    assert_eq!(
        ports_of(&a.announce(&ih, &peer_id(1), 7001, 100, "&compact=1")),
        [7002]
    );
    // A seed that completed on node A, re-announcing on node B, counts once.
    a.announce(&ih, &peer_id(3), 7003, 0, "&compact=1&event=completed");
    b.announce(&ih, &peer_id(3), 7003, 0, "&compact=1&event=completed");
    // UDP on node B sees the peers HTTP put in through node A.
    let udp = UdpClient::connect(b.udp);
    let mut buf = [0u8; 2048];
    let n = udp.announce(ih, peer_id(4), 7004, 100, AnnounceEvent::None, -1, &mut buf);
    match Response::decode(&buf[..n]).expect("UDP reply") {
        Response::Announce {
            seeders,
            leechers,
            peers,
            ..
        } => {
            assert_eq!((seeders, leechers), (1, 3));
            let mut ports = compact_ports(peers);
            ports.sort_unstable();
            assert_eq!(ports, [7001, 7002, 7003]);
        }
        other => panic!("UDP announce: {other:?}"),
    }
    for t in [&a, &b] {
        let (_, _, body) = t.get(&format!(
            "/scrape?info_hash={}",
            tracker_support::pct(&ih.0)
        ));
        let v = bdecode(&body);
        let files = v.as_dict().unwrap().get(b"files".as_slice()).unwrap();
        let e = &files.as_dict().unwrap().get(ih.0.as_slice()).unwrap();
        assert_eq!((bint(e, "complete"), bint(e, "incomplete")), (1, 3));
        assert_eq!(bint(e, "downloaded"), 1, "one completion, counted once");
        let s = t.json(&format!("/swarm/{ih}"));
        assert_eq!(s["peers"].as_array().unwrap().len(), 4, "{s:#}");
        assert_eq!(
            (s["seeders"].as_u64(), s["completed"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(metric(t, "enjambre_tracker_peers"), 4);
        assert_eq!(metric(t, "enjambre_tracker_store_up"), 1);
        let list = t.json("/swarms");
        assert_eq!(list["swarms"][0]["peers"].as_u64(), Some(4), "{list:#}");
    }
    // A dictionary reply names the peers' ids.
    let body = b.announce(&ih, &peer_id(2), 7002, 100, "&compact=0");
    let v = bdecode(&body);
    let listed = v.as_dict().unwrap().get(b"peers".as_slice()).unwrap();
    let ids: Vec<&[u8]> = listed
        .as_list()
        .expect("dictionary peers")
        .iter()
        .map(|p| {
            p.as_dict()
                .unwrap()
                .get(b"peer id".as_slice())
                .unwrap()
                .as_bytes()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&peer_id(1).as_slice()));
    // A stop through node B removes the peer for node A too.
    b.announce(&ih, &peer_id(1), 7001, 100, "&compact=1&event=stopped");
    assert_eq!(
        ports_of(&a.announce(&ih, &peer_id(2), 7002, 100, "&compact=1")),
        [7003, 7004]
    );
}

#[test]
fn a_reported_bitfield_shows_on_every_node_with_its_availability() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (torrent, ih) = tracker_support::write_torrent(dir.path(), "r", 12);
    let path = torrent.to_str().unwrap();
    let (a, b) = (
        redis.node(&["--torrent", path]),
        redis.node(&["--torrent", path]),
    );
    // 12 pieces: 0b1010_0000 0b0001_0000 is pieces 0, 2, 11.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = a.announce(&ih, &peer_id(1), 7001, 9, "&bitfield=oBA");
        if !String::from_utf8_lossy(&body).contains("failure") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let v = bdecode(&body);
    assert!(
        bbytes(&v, "warning message").is_none(),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let bad = a.announce(&ih, &peer_id(2), 7002, 9, "&bitfield=oA");
    let v = bdecode(&bad);
    assert_eq!(
        bbytes(&v, "warning message"),
        Some(b"bitfield ignored: wrong length for this torrent".as_slice())
    );
    b.announce(&ih, &peer_id(3), 7003, 0, "");
    let s = b.json(&format!("/swarm/{ih}"));
    assert_eq!(s["piece_count"].as_u64(), Some(12));
    assert_eq!(s["registered"].as_bool(), Some(true));
    let p1 = s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["addr"] == "127.0.0.1:7001")
        .expect("peer 1");
    assert_eq!(
        (p1["have"].as_str(), p1["source"].as_str()),
        (Some("some"), Some("report"))
    );
    assert_eq!(p1["pieces_have"].as_u64(), Some(3));
    let avail: Vec<u64> = s["availability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(
        avail,
        [2, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2],
        "the seed has all"
    );
}

#[test]
fn the_live_feed_of_one_node_shows_an_announce_to_another() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let (a, b) = (redis.node(&[]), redis.node(&[]));
    let ih = InfoHash([0x16; 20]);
    b.announce(&ih, &peer_id(1), 7001, 100, "");
    let mut sock = TcpStream::connect(a.http).unwrap();
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
    assert_eq!(snap["peers"].as_array().unwrap().len(), 1, "{snap:#}");
    b.announce(&ih, &peer_id(2), 7002, 100, "");
    let e = next_data();
    assert_eq!(
        (e["type"].as_str(), e["peer"]["addr"].as_str()),
        (Some("peer"), Some("127.0.0.1:7002"))
    );
    b.announce(&ih, &peer_id(2), 7002, 100, "&event=stopped");
    let e = next_data();
    assert_eq!(
        (e["type"].as_str(), e["addr"].as_str()),
        (Some("leave"), Some("127.0.0.1:7002"))
    );
}

#[test]
fn redis_away_means_a_failure_reason_and_its_return_means_service() {
    let Some(mut redis) = Redis::start(true) else {
        return;
    };
    let a = redis.node(&[]);
    let ih = InfoHash([0x17; 20]);
    a.announce(&ih, &peer_id(1), 7001, 100, "&compact=1");
    a.announce(&ih, &peer_id(2), 7002, 100, "&compact=1");
    redis.kill();
    for _ in 0..3 {
        let body = a.announce(&ih, &peer_id(3), 7003, 100, "&compact=1");
        let v = bdecode(&body);
        assert_eq!(
            bbytes(&v, "failure reason"),
            Some(b"tracker storage unavailable, try again later".as_slice()),
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(bbytes(&v, "peers").is_none());
    }
    let udp = UdpClient::connect(a.udp);
    let mut buf = [0u8; 2048];
    let n = udp.announce(ih, peer_id(4), 7004, 100, AnnounceEvent::None, -1, &mut buf);
    match Response::decode(&buf[..n]).expect("UDP reply") {
        Response::Error { message, .. } => {
            assert_eq!(message, b"tracker storage unavailable, try again later")
        }
        other => panic!("UDP announce while Redis is away: {other:?}"),
    }
    let (status, _, _) = a.get(&format!("/swarm/{ih}"));
    assert_eq!(status, 503);
    assert_eq!(metric(&a, "enjambre_tracker_store_up"), 0);
    assert!(metric(&a, "enjambre_tracker_store_errors_total") >= 5);
    // Back, with its append-only file: the acknowledged peers are there, the tracker
    // reconnects by itself.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ports = loop {
        let body = a.announce(&ih, &peer_id(3), 7003, 100, "&compact=1");
        if bbytes(&bdecode(&body), "failure reason").is_none() {
            break ports_of(&body);
        }
        assert!(Instant::now() < deadline, "no recovery:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ports, [7001, 7002]);
    assert!(
        a.log().contains("registry store unavailable"),
        "{}",
        a.log()
    );
}

/// Two torrents of the same file with different trackers have one info-hash.
fn torrent_for(file: &Path, out: &Path, tracker: &Tracker) -> std::path::PathBuf {
    let url = format!("http://{}/announce", tracker.http);
    peer_support::create(file, out, &[&url], 65536)
}

#[test]
fn an_aria2_leech_on_one_node_downloads_from_a_seed_on_another() {
    let aria2 = Command::new("aria2c")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    let Some(redis) = Redis::start(false).filter(|_| aria2) else {
        eprintln!("skipped: aria2c or redis-server not installed");
        return;
    };
    let (a, b) = (redis.node(&[]), redis.node(&[]));
    let dir = tempfile::tempdir().unwrap();
    let bytes = peer_support::data(3_000_000, 15);
    let file = dir.path().join("z.bin");
    std::fs::write(&file, &bytes).unwrap();
    let ta = torrent_for(&file, &dir.path().join("a.torrent"), &a);
    let tb = torrent_for(&file, &dir.path().join("b.torrent"), &b);
    let hex = peer_support::info_hash(&ta);
    assert_eq!(hex, peer_support::info_hash(&tb));
    let mut seed = peer_support::Background::spawn(
        peer_support::enjambre()
            .arg("seed")
            .arg(&ta)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.2", "--port", "0"]),
    );
    let ih = InfoHash::from_hex(&hex).unwrap();
    b.wait_swarm(&ih, Duration::from_secs(20), |s| s["seeders"] == 1);
    let out = dir.path().join("aria");
    std::fs::create_dir(&out).unwrap();
    let o = peer_support::run(
        Command::new("aria2c")
            .arg("-d")
            .arg(&out)
            // Three seconds of seeding: aria2 then announces `completed` (with --seed-time=0 it
            // leaves at once with only `stopped`, which counts no completion).
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
            .arg(&tb),
        Duration::from_secs(90),
    );
    seed.stop();
    assert!(
        o.status.success(),
        "aria2: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        std::fs::read(out.join("z.bin")).unwrap() == bytes,
        "aria2's copy differs"
    );
    let s = a.json(&format!("/swarm/{ih}"));
    assert_eq!(
        s["completed"].as_u64(),
        Some(1),
        "aria2's completion, through node B: {s:#}"
    );
}

#[test]
fn three_nodes_divide_the_polling_and_take_over_a_killed_ones_share() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (torrent, ih) = tracker_support::write_torrent(dir.path(), "p", 8);
    let path = torrent.to_str().unwrap();
    let url = redis.url();
    let args = [
        "--store",
        &url,
        "--torrent",
        path,
        "--poll-interval",
        "2",
        "--poll-grace",
        "0",
        "--poll-spacing",
        "0.5",
        "--node-timeout",
        "3",
    ];
    let mut nodes: Vec<Tracker> = (0..3).map(|_| Tracker::start(&args)).collect();
    for n in &nodes {
        wait_metric(n, "enjambre_tracker_store_nodes", 3);
    }
    // 24 addresses, the last with three peers.
    let peers: Vec<FakePeer> = (0..26)
        .map(|i| FakePeer::start(format!("127.0.0.{}", 10 + i.min(23))))
        .collect();
    for (i, p) in peers.iter().enumerate() {
        p.announce(&nodes[i % 3], &ih, i as u32);
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
    // The peers of one address are polled by one node, which spaces them (--poll-spacing 0.5).
    let mut same: Vec<Instant> = peers[23..]
        .iter()
        .flat_map(|p| p.polls_since(from))
        .collect();
    same.sort();
    let gap = same.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(
        gap >= Duration::from_millis(450),
        "one address polled twice within {gap:?}"
    );
    // Shares go by address: 24 addresses over 3 nodes leave none without a share but by a
    // 1-in-5000 chance of the random node names.
    for n in &nodes {
        assert!(
            metric(n, "enjambre_tracker_polls_ok_total") > 0,
            "every node polls its share"
        );
    }
    // What the polls learned shows on every node.
    let s = nodes[1].json(&format!("/swarm/{ih}"));
    let polled = s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"] == "poll" && p["pieces_have"] == 2)
        .count();
    assert_eq!(polled, 26, "{s:#}");
    assert_eq!(s["availability"][0].as_u64(), Some(26));
    assert_eq!(s["availability"][1].as_u64(), Some(0));
    // kill -9 one node: within the node timeout the others poll its peers too.
    let _ = nodes[2].child.kill();
    let _ = nodes[2].child.wait();
    let killed = nodes.pop().unwrap();
    drop(killed);
    for n in &nodes {
        wait_metric(n, "enjambre_tracker_store_nodes", 2);
    }
    // Measured over 9 s, as before the kill: next polls are kept in whole seconds, so one
    // peer's polls come 1 to 3 s apart (a 6 s window once saw a single poll on a busy machine).
    let from = Instant::now() + Duration::from_secs(3);
    std::thread::sleep(Duration::from_secs(12));
    let counts: Vec<usize> = peers.iter().map(|p| p.polls_since(from).len()).collect();
    assert!(
        counts.iter().all(|c| (3..=6).contains(c)),
        "polls of each peer in 9 s after the kill: {counts:?}"
    );
}

#[test]
fn the_scan_for_due_peers_reads_only_what_is_due_and_a_late_peer_is_polled_at_once() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (torrent, ih) = tracker_support::write_torrent(dir.path(), "due", 8);
    let url = redis.url();
    let node = Tracker::start(&[
        "--store",
        &url,
        "--torrent",
        torrent.to_str().unwrap(),
        "--poll-interval",
        "60",
        "--poll-grace",
        "0",
    ]);
    wait_metric(&node, "enjambre_tracker_store_nodes", 1);
    let early = FakePeer::start("127.0.0.30".into());
    early.announce(&node, &ih, 1);
    wait_metric(&node, "enjambre_tracker_polls_ok_total", 1);
    // Polled: the torrent is next due in a minute, and that is what the index says.
    std::thread::sleep(Duration::from_millis(500));
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let score: f64 = redis
        .query(&["ZSCORE", "enj:{index}:due", &ih.to_string()])
        .parse()
        .unwrap();
    assert!(
        (unix + 55.0..unix + 62.0).contains(&score),
        "next due {score} at {unix}"
    );
    // Three seconds of scans with nothing due read no torrent's peers, bitfields or meta, and
    // claim nothing (before the index, every scan read every torrent).
    redis.query(&["CONFIG", "RESETSTAT"]);
    std::thread::sleep(Duration::from_secs(3));
    for command in ["hgetall", "hmget", "evalsha", "eval"] {
        assert_eq!(redis.calls(command), 0, "{command} while nothing is due");
    }
    assert!(
        redis.calls("zrangebyscore") >= 2,
        "the node scans the index"
    );
    // A peer new to the torrent lowers its score: polled at once, not a minute later.
    let late = FakePeer::start("127.0.0.31".into());
    let from = Instant::now();
    late.announce(&node, &ih, 2);
    wait_metric(&node, "enjambre_tracker_polls_ok_total", 2);
    let polled = late.polls_since(from);
    assert_eq!(polled.len(), 1);
    assert!(
        polled[0] - from < Duration::from_secs(3),
        "{:?}",
        polled[0] - from
    );
    assert!(
        early.polls_since(from).is_empty(),
        "the first peer waits its minute"
    );
}

#[test]
fn a_node_started_before_redis_serves_and_registers_its_torrents_once_redis_is_up() {
    let Some(mut redis) = Redis::start(false) else {
        return;
    };
    redis.kill();
    let dir = tempfile::tempdir().unwrap();
    let (torrent, ih) = tracker_support::write_torrent(dir.path(), "late", 4);
    let path = torrent.to_str().unwrap();
    let a = redis.node(&["--torrent", path, "--allow-only-registered"]);
    let body = a.announce(&ih, &peer_id(1), 7001, 100, "");
    assert_eq!(
        bbytes(&bdecode(&body), "failure reason"),
        Some(b"tracker storage unavailable, try again later".as_slice())
    );
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = a.announce(&ih, &peer_id(1), 7001, 100, "");
        if bbytes(&bdecode(&body), "failure reason").is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "never served:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let other = InfoHash([0x18; 20]);
    let body = a.announce(&other, &peer_id(1), 7001, 100, "");
    assert_eq!(
        bbytes(&bdecode(&body), "failure reason"),
        Some(b"torrent not registered with this tracker".as_slice())
    );
    let s = a.json(&format!("/swarm/{ih}"));
    assert_eq!(
        (s["registered"].as_bool(), s["piece_count"].as_u64()),
        (Some(true), Some(4))
    );
}

#[test]
fn a_node_cut_off_from_redis_stops_polling_says_so_and_resumes_when_it_returns() {
    let Some(mut redis) = Redis::start(true) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (torrent, ih) = tracker_support::write_torrent(dir.path(), "cut", 8);
    let path = torrent.to_str().unwrap();
    let url = redis.url();
    let a = Tracker::start(&[
        "--store",
        &url,
        "--torrent",
        path,
        "--poll-interval",
        "1",
        "--poll-grace",
        "0",
        "--node-timeout",
        "3",
    ]);
    wait_metric(&a, "enjambre_tracker_store_nodes", 1);
    let peer = FakePeer::start("127.0.0.61".into());
    peer.announce(&a, &ih, 1);
    let polled = |from: Instant, secs: u64| {
        std::thread::sleep(Duration::from_secs(secs));
        peer.polls_since(from).len()
    };
    assert!(polled(Instant::now(), 3) >= 1, "never polled:\n{}", a.log());

    // Cut off: it cannot know its share, so it polls nobody, and says so.
    redis.kill();
    wait_metric(&a, "enjambre_tracker_store_up", 0);
    wait_metric(&a, "enjambre_tracker_store_polling", 0);
    // A poll already under way may finish; none starts after that.
    std::thread::sleep(Duration::from_secs(1));
    let cut = Instant::now();
    assert_eq!(polled(cut, 4), 0, "polled while cut off:\n{}", a.log());
    assert!(
        a.log().contains("registry store unavailable"),
        "{}",
        a.log()
    );

    // Back (its append-only file kept the peer): polling resumes by itself.
    redis.restart();
    wait_metric(&a, "enjambre_tracker_store_polling", 1);
    assert!(
        polled(Instant::now(), 4) >= 1,
        "no polls after Redis returned:\n{}",
        a.log()
    );
}

/// The same over one Redis (see `redis_support::kill`).
#[test]
fn a_node_killed_during_a_download_leaves_the_others_answering_and_polling() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let url = redis.url();
    redis_support::kill::node_killed_during_a_download(|args| {
        let mut all = vec!["--store", url.as_str()];
        all.extend_from_slice(args);
        Tracker::start(&all)
    });
}
