//! The swarm API: JSON documents, CORS, Prometheus metrics and the live feed (SSE).

mod tracker_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use enjambre_core::InfoHash;
use tracker_support::*;

#[test]
fn swarm_swarms_stats_and_metrics_documents() {
    let dir = scratch_dir("api");
    let (torrent, ih) = write_torrent(&dir, "api", 12);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    t.announce(&ih, &peer_id(1), 9001, 0, "&event=started");
    t.announce(&ih, &peer_id(2), 9002, 99, "&event=started&bitfield=gAA");
    let v = t.json(&format!("/swarm/{ih}"));
    assert_eq!(v["info_hash"], ih.to_string());
    assert_eq!(v["piece_count"], 12);
    assert_eq!(v["piece_count_exact"], true);
    assert_eq!(
        (v["seeders"].as_u64(), v["leechers"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["availability"].as_array().unwrap().len(), 12);
    let leech = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["addr"] == "127.0.0.1:9002")
        .unwrap();
    assert_eq!(leech["left"], 99);
    assert_eq!(leech["have"], "some");
    assert_eq!(leech["pieces_have"], 1);
    assert_eq!(leech["event"], "started");
    assert!(leech["bitfield_age"].as_u64().unwrap() < 5);

    let list = t.json("/swarms");
    assert_eq!(list["total"], 1);
    assert_eq!(list["swarms"][0]["name"], "api");
    assert_eq!(list["swarms"][0]["peers"], 2);

    let stats = t.json("/stats");
    assert_eq!(stats["torrents"], 1);
    assert_eq!(stats["peers"], 2);
    assert_eq!(stats["http_announces"], 2);

    let (status, head, body) = t.get("/metrics");
    assert_eq!(status, 200);
    assert!(head.contains("Access-Control-Allow-Origin: *"));
    let m = String::from_utf8(body).unwrap();
    assert!(m.contains("# TYPE enjambre_tracker_http_announces_total counter\nenjambre_tracker_http_announces_total 2\n"), "{m}");
    assert!(m.contains("enjambre_tracker_peers 2\n"));
    // The leech's reported bitfield and the seed's (left=0 means every piece).
    assert!(m.contains("enjambre_tracker_peers_with_bitfield 2\n"));

    // Unknown and malformed swarm paths.
    assert_eq!(t.get(&format!("/swarm/{}", InfoHash([0x55; 20]))).0, 404);
    assert_eq!(t.get("/swarm/xyz").0, 400);
    assert_eq!(t.get("/nothing-here").0, 404);
}

#[test]
fn cors_headers_and_preflight() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    for path in ["/stats", "/swarms", "/metrics", "/announce"] {
        let (_, head, _) = t.get(path);
        assert!(
            head.contains("Access-Control-Allow-Origin: *"),
            "{path}: {head}"
        );
    }
    let (status, head, _) = raw_http(
        t.http,
        b"OPTIONS /swarms HTTP/1.1\r\nHost: t\r\nOrigin: http://example.org\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 204);
    assert!(head.contains("Access-Control-Allow-Origin: *"));
    assert!(head.contains("Access-Control-Allow-Methods: GET, OPTIONS"));
}

#[test]
fn live_feed_sends_a_snapshot_then_changes() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([0x21; 20]);
    t.announce(&ih, &peer_id(1), 9101, 5, "");
    let mut s = TcpStream::connect(t.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET /swarm/{ih}/events HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream"));
    assert!(head.contains("Access-Control-Allow-Origin: *"));
    let mut next_event = || -> (String, serde_json::Value) {
        let mut name = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("event line");
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data: ") {
                return (name, serde_json::from_str(d.trim()).unwrap());
            }
        }
    };
    let (name, snap) = next_event();
    assert_eq!(name, "snapshot");
    assert_eq!(snap["peers"][0]["addr"], "127.0.0.1:9101");
    t.announce(&ih, &peer_id(2), 9102, 5, "&bitfield=gA");
    let (_, ev) = next_event();
    assert_eq!(ev["type"], "peer");
    assert_eq!(ev["peer"]["addr"], "127.0.0.1:9102");
    assert_eq!(ev["peer"]["bitfield"], "gA");
    t.announce(&ih, &peer_id(1), 9101, 5, "&event=stopped");
    let (_, ev) = next_event();
    assert_eq!(ev["type"], "leave");
    assert_eq!(ev["addr"], "127.0.0.1:9101");
    assert_eq!(t.json("/stats")["peers"], 1);
}
