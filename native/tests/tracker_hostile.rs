//! Hostile input over HTTP and a flood of announces across many info-hashes: bounded in count
//! and time, the caps hold, nothing crashes, refusals are logged.

mod tracker_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use enjambre_core::tracker::udp::Response;
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::InfoHash;
use tracker_support::*;

fn failure_reason(body: &[u8]) -> String {
    String::from_utf8_lossy(bbytes(&bdecode(body), "failure reason").expect("failure reason"))
        .into_owned()
}

#[test]
fn malformed_announces_get_a_bencoded_failure() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = pct(&[1; 20]);
    let id = pct(&peer_id(1));
    for q in [
        String::new(),
        format!("info_hash={ih}"),
        format!("info_hash=%01%02&peer_id={id}&port=1&uploaded=0&downloaded=0&left=0"),
        format!("info_hash={ih}&peer_id={id}&port=99999&uploaded=0&downloaded=0&left=0"),
        format!("info_hash={ih}&peer_id={id}&port=1&uploaded=-1&downloaded=0&left=0"),
        format!("info_hash={ih}&peer_id={id}&port=1&uploaded=0&downloaded=0&left=0%ZZ"),
        "%%%%&&&&====".to_owned(),
    ] {
        let (status, _, body) = t.get(&format!("/announce?{q}"));
        assert_eq!(status, 200, "{q}");
        assert!(!failure_reason(&body).is_empty(), "{q}");
    }
    // Malformed scrape too.
    let (status, _, body) = t.get("/scrape?info_hash=%01");
    assert_eq!(status, 200);
    assert!(!failure_reason(&body).is_empty());
    assert_eq!(t.json("/stats")["torrents"], 0);
}

#[test]
fn garbage_truncated_and_oversized_requests() {
    let mut t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--max-request-bytes",
        "2048",
        "--http-idle-timeout",
        "2",
    ]);
    // Not HTTP at all.
    let (status, _, _) = raw_http(t.http, b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n");
    assert_eq!(status, 400);
    // A head larger than the limit.
    let big = format!(
        "GET /announce?{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(4096)
    );
    let (status, _, _) = raw_http(t.http, big.as_bytes());
    assert_eq!(status, 431);
    // A body is refused.
    let (status, _, _) = raw_http(
        t.http,
        b"POST /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(status, 400);
    let (status, _, _) = raw_http(
        t.http,
        b"DELETE /stats HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    // Truncated requests: every prefix of a valid one, then close; the idle one is dropped.
    let valid = b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n";
    for k in 0..valid.len() {
        let mut s = TcpStream::connect(t.http).unwrap();
        s.write_all(&valid[..k]).unwrap();
        drop(s);
    }
    let mut idle = TcpStream::connect(t.http).unwrap();
    idle.write_all(b"GET /st").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = idle.read_to_end(&mut sink);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "idle connection not closed"
    );
    // Pipelined keep-alive requests are answered in order.
    let mut s = TcpStream::connect(t.http).unwrap();
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\nGET /swarms HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(t.alive());
    assert!(t.log().contains("refusing"), "refusals are logged");
}

#[test]
fn connection_cap_holds() {
    let mut t = Tracker::start(&["--poll-interval", "0", "--max-connections", "8"]);
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(t.http).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The ninth is closed at once.
    let mut s = TcpStream::connect(t.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"GET /stats HTTP/1.1\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "served above the cap");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.json("/stats")["torrents"], 0);
    assert!(t.alive());
}

#[test]
fn an_announce_flood_over_many_info_hashes_stays_within_the_caps() {
    let mut t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--max-torrents",
        "1000",
        "--max-peers-per-torrent",
        "50",
        "--max-peers",
        "20000",
    ]);
    let c = UdpClient::connect(t.udp);
    c.sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 2048];
    let mut out = [0u8; 256];
    let mut refused = 0;
    let mut answered = 0;
    // 200 peers into one torrent, then 20,000 announces: 5,000 info-hashes x 4 peers.
    for i in 0..200u32 {
        let n = c
            .announce_req(
                InfoHash([0xab; 20]),
                peer_id(i),
                20_000 + i as u16,
                1,
                AnnounceEvent::Started,
                10,
            )
            .encode(&mut out)
            .unwrap();
        c.send_raw(&out[..n]);
        let _ = c.recv(&mut buf);
    }
    let total = 20_000u32;
    let mut sent = 0;
    for i in 0..total {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&(i / 4).to_be_bytes());
        let port = 10_000 + (i % 4) as u16;
        let n = c
            .announce_req(InfoHash(h), peer_id(i), port, 1, AnnounceEvent::Started, 10)
            .encode(&mut out)
            .unwrap();
        c.send_raw(&out[..n]);
        sent += 1;
        // Keep at most 64 in flight.
        if sent - answered - refused >= 64 {
            match c
                .recv(&mut buf)
                .map(|k| Response::decode(&buf[..k]).map(|r| matches!(r, Response::Error { .. })))
            {
                Some(Ok(true)) => refused += 1,
                Some(Ok(false)) => answered += 1,
                _ => break,
            }
        }
    }
    while c.recv(&mut buf).is_some() {}
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "flood took {elapsed:?}");
    assert!(t.alive());
    let stats = t.json("/stats");
    assert!(stats["torrents"].as_u64().unwrap() <= 1000, "{stats}");
    assert!(stats["peers"].as_u64().unwrap() <= 20_000);
    let big = t.json(&format!("/swarm/{}", InfoHash([0xab; 20])));
    assert_eq!(
        big["peers"].as_array().unwrap().len(),
        50,
        "per-torrent cap"
    );
    let (_, _, m) = t.get("/metrics");
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.contains("enjambre_tracker_refused_torrent_cap_total"),
        "{m}"
    );
    let refused_torrents: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("enjambre_tracker_refused_torrent_cap_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        refused_torrents >= 1000,
        "torrent cap never hit: {refused_torrents}"
    );
    assert!(t.log().contains("tracker full"), "refusal not logged");
    // Memory stays bounded: a few MB for 4,000 peers.
    let heap = stats["registry_heap_bytes"].as_u64().unwrap();
    assert!(heap < 16 << 20, "registry heap {heap}");
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", t.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 200 * 1024, "RSS {rss_kb} kB");
}

/// A small deterministic generator for hostile bytes.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

#[test]
fn random_bytes_over_http_and_udp_do_no_harm() {
    let mut t = Tracker::start(&["--poll-interval", "0"]);
    let mut seed = 0x5eed_u64;
    for i in 0..200 {
        let len = 1 + (i * 37) % 3000;
        let mut req = noise(&mut seed, len);
        // Half of them look like HTTP up to the target.
        if i % 2 == 0 {
            let mut head = b"GET /announce?".to_vec();
            head.extend_from_slice(&req);
            head.extend_from_slice(b" HTTP/1.1\r\n\r\n");
            req = head;
        }
        let mut s = TcpStream::connect(t.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let c = UdpClient::connect(t.udp);
    for i in 0..2000 {
        let mut p = noise(&mut seed, 1 + i % 200);
        if i % 3 == 0 && p.len() >= 8 {
            // Carry our valid connection id, so decoding goes further.
            p[..8].copy_from_slice(&c.conn.to_be_bytes());
        }
        c.send_raw(&p);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(t.alive());
    // A datagram may be dropped while the tracker drains the noise: retransmit, as a client
    // would (BEP 15).
    let mut buf = [0u8; 2048];
    let req = c.announce_req(
        InfoHash([1; 20]),
        peer_id(1),
        6001,
        1,
        AnnounceEvent::Started,
        -1,
    );
    let answered = (0..5).any(|_| c.request(&req, &mut buf).is_some());
    assert!(
        answered,
        "the tracker answers a valid announce after the noise"
    );
    assert!(t.json("/stats")["peers"].as_u64().unwrap() >= 1);
}
