//! HTTP announce and scrape against the real binary: compact, dictionary and IPv6 peer lists,
//! numwant, the asker's exclusion, counters, self-reported bitfields and piece-aware lists.

mod tracker_support;

use enjambre_core::InfoHash;
use tracker_support::*;

#[test]
fn compact_announce_lists_the_others_and_never_the_asker() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([1; 20]);
    for n in 0..10u16 {
        t.announce(
            &ih,
            &peer_id(n.into()),
            7000 + n,
            100,
            "&compact=1&event=started",
        );
    }
    for n in 0..10u16 {
        let body = t.announce(&ih, &peer_id(n.into()), 7000 + n, 100, "&compact=1");
        let v = bdecode(&body);
        let ports = compact_ports(bbytes(&v, "peers").expect("peers"));
        assert_eq!(ports.len(), 9, "everyone but the asker");
        assert!(
            !ports.contains(&(7000 + n)),
            "asker {n} listed in its own reply"
        );
        assert_eq!(bint(&v, "incomplete"), 10);
        assert_eq!(bint(&v, "complete"), 0);
        assert_eq!(bint(&v, "interval"), 600);
        assert_eq!(bint(&v, "min interval"), 60);
    }
}

#[test]
fn dictionary_form_when_compact_is_zero() {
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--interval",
        "120",
        "--min-interval",
        "30",
    ]);
    let ih = InfoHash([2; 20]);
    t.announce(&ih, &peer_id(1), 7001, 0, "&compact=0");
    let body = t.announce(&ih, &peer_id(2), 7002, 5, "&compact=0");
    let v = bdecode(&body);
    assert_eq!(bint(&v, "interval"), 120);
    assert_eq!(bint(&v, "min interval"), 30);
    let peers: Vec<_> = v
        .as_dict()
        .unwrap()
        .get(b"peers")
        .unwrap()
        .as_list()
        .expect("dictionary peers")
        .iter()
        .collect();
    assert_eq!(peers.len(), 1);
    let p = peers[0].as_dict().unwrap();
    assert_eq!(p.get(b"ip").unwrap().as_bytes().unwrap(), b"127.0.0.1");
    assert_eq!(p.get(b"port").unwrap().as_int(), Some(7001));
    assert_eq!(p.get(b"peer id").unwrap().as_bytes().unwrap(), &peer_id(1));
}

#[test]
fn numwant_is_honoured_and_capped() {
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--numwant-max",
        "5",
        "--numwant-default",
        "3",
    ]);
    let ih = InfoHash([3; 20]);
    for n in 0..20u16 {
        t.announce(&ih, &peer_id(n.into()), 7100 + n, 1, "&compact=1");
    }
    let count = |extra: &str| {
        let body = t.announce(&ih, &peer_id(99), 7999, 1, extra);
        compact_ports(bbytes(&bdecode(&body), "peers").unwrap()).len()
    };
    assert_eq!(count("&compact=1&numwant=2"), 2);
    assert_eq!(
        count("&compact=1&numwant=100"),
        5,
        "capped by --numwant-max"
    );
    assert_eq!(count("&compact=1"), 3, "--numwant-default");
    assert_eq!(count("&compact=1&numwant=0"), 0);
}

#[test]
fn ipv6_peers_come_back_in_peers6() {
    // Only where the machine has IPv6 loopback.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback; skipped");
        return;
    }
    let t = Tracker::start_on("[::1]:0", &["--poll-interval", "0"]);
    let ih = InfoHash([4; 20]);
    t.announce(&ih, &peer_id(1), 7201, 1, "&compact=1");
    let body = t.announce(&ih, &peer_id(2), 7202, 1, "&compact=1");
    let v = bdecode(&body);
    let p6 = bbytes(&v, "peers6").expect("peers6");
    assert_eq!(p6.len(), 18);
    assert_eq!(&p6[..16], &std::net::Ipv6Addr::LOCALHOST.octets());
    assert_eq!(u16::from_be_bytes([p6[16], p6[17]]), 7201);
}

#[test]
fn scrape_counts_seeders_leechers_and_completions() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([5; 20]);
    let other = InfoHash([6; 20]);
    t.announce(&ih, &peer_id(1), 7301, 0, "&event=started");
    t.announce(&ih, &peer_id(2), 7302, 10, "&event=started");
    t.announce(&ih, &peer_id(3), 7303, 10, "&event=started");
    // Peer 2 finishes; its completed event counts once even if repeated.
    t.announce(&ih, &peer_id(2), 7302, 0, "&event=completed");
    t.announce(&ih, &peer_id(2), 7302, 0, "&event=completed");
    // Peer 3 stops.
    t.announce(&ih, &peer_id(3), 7303, 10, "&event=stopped");
    let (status, _, body) = t.get(&format!(
        "/scrape?info_hash={}&info_hash={}",
        pct(&ih.0),
        pct(&other.0)
    ));
    assert_eq!(status, 200);
    let v = bdecode(&body);
    let files = v
        .as_dict()
        .unwrap()
        .get(b"files")
        .unwrap()
        .as_dict()
        .unwrap();
    let f = files.get(&ih.0).unwrap();
    assert_eq!(
        (
            bint(&f, "complete"),
            bint(&f, "incomplete"),
            bint(&f, "downloaded")
        ),
        (2, 0, 1)
    );
    let o = files.get(&other.0).unwrap();
    assert_eq!(
        (
            bint(&o, "complete"),
            bint(&o, "incomplete"),
            bint(&o, "downloaded")
        ),
        (0, 0, 0)
    );
}

#[test]
fn a_stopped_peer_is_no_longer_listed() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([7; 20]);
    t.announce(&ih, &peer_id(1), 7401, 1, "");
    t.announce(&ih, &peer_id(1), 7401, 1, "&event=stopped");
    let body = t.announce(&ih, &peer_id(2), 7402, 1, "&compact=1");
    assert!(compact_ports(bbytes(&bdecode(&body), "peers").unwrap()).is_empty());
}

#[test]
fn self_reported_bitfields_are_stored_and_validated_against_the_torrent() {
    let dir = scratch_dir("selfreport");
    let (torrent, ih) = write_torrent(&dir, "ten", 10);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    // 10 pieces: 2 bytes, pieces 0 and 9 -> 0x80 0x40 -> base64url "gEA".
    let body = t.announce(&ih, &peer_id(1), 7501, 5, "&bitfield=gEA");
    assert!(bbytes(&bdecode(&body), "warning message").is_none());
    let v = t.json(&format!("/swarm/{ih}"));
    assert_eq!(v["name"], "ten");
    assert_eq!(v["piece_count"], 10);
    let p = &v["peers"][0];
    assert_eq!(p["bitfield"], "gEA");
    assert_eq!(p["source"], "report");
    assert_eq!(p["pieces_have"], 2);
    assert_eq!(v["availability"][0], 1);
    assert_eq!(v["availability"][1], 0);
    assert_eq!(v["availability"][9], 1);
    // Wrong length (one byte) is refused with a warning, the old bitfield stays.
    let body = t.announce(&ih, &peer_id(1), 7501, 5, "&bitfield=_w");
    let w = bdecode(&body);
    assert!(
        String::from_utf8_lossy(bbytes(&w, "warning message").expect("warning"))
            .contains("bitfield ignored")
    );
    // Spare bits set (piece 10 and 11 do not exist): refused too.
    let body = t.announce(&ih, &peer_id(1), 7501, 5, "&bitfield=gDA");
    assert!(bbytes(&bdecode(&body), "warning message").is_some());
    // Not base64url: warning, announce still served.
    let body = t.announce(&ih, &peer_id(1), 7501, 5, "&bitfield=%25%25%25");
    assert!(bbytes(&bdecode(&body), "warning message").is_some());
    let v = t.json(&format!("/swarm/{ih}"));
    assert_eq!(v["peers"][0]["bitfield"], "gEA");
    // A full bitfield makes the peer count as having everything.
    t.announce(&ih, &peer_id(2), 7502, 0, "&bitfield=_8A");
    let v = t.json(&format!("/swarm/{ih}"));
    let p2 = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["addr"] == "127.0.0.1:7502")
        .unwrap()
        .clone();
    assert_eq!(p2["have"], "all");
    assert_eq!(p2["bitfield"], "_8A");
    assert_eq!(v["availability"][0], 2);
    assert_eq!(v["availability"][5], 1);
}

#[test]
fn the_asker_gets_holders_of_its_missing_pieces_rarest_first() {
    let dir = scratch_dir("pieceaware");
    let (torrent, ih) = write_torrent(&dir, "sixteen", 16);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    // Ten peers with nothing useful, with unknown bitfields.
    for n in 0..10u16 {
        t.announce(&ih, &peer_id(n.into()), 7600 + n, 5, "");
    }
    // A: pieces 0..8 (common), B: piece 15 only (rare), C: pieces 0..8 too.
    t.announce(&ih, &peer_id(100), 7700, 5, "&bitfield=_wA"); // ff 00
    t.announce(&ih, &peer_id(101), 7701, 5, "&bitfield=AAE"); // 00 01
    t.announce(&ih, &peer_id(102), 7702, 5, "&bitfield=_wA");
    // The asker has pieces 0..8 already: only B helps.
    for _ in 0..5 {
        let body = t.announce(
            &ih,
            &peer_id(200),
            7800,
            5,
            "&compact=1&numwant=1&bitfield=_wA",
        );
        assert_eq!(
            compact_ports(bbytes(&bdecode(&body), "peers").unwrap()),
            vec![7701]
        );
    }
    // An asker with nothing: the holders come first, the rarest piece's holder first.
    let body = t.announce(
        &ih,
        &peer_id(201),
        7801,
        5,
        "&compact=1&numwant=3&bitfield=AAA",
    );
    let ports = compact_ports(bbytes(&bdecode(&body), "peers").unwrap());
    assert_eq!(ports[0], 7701);
    // Then two of the holders of pieces 0..8 (A, C and the earlier asker), never a peer without pieces.
    assert_eq!(ports.len(), 3);
    assert!(
        ports[1..].iter().all(|p| [7700, 7702, 7800].contains(p)),
        "{ports:?}"
    );
}

#[test]
fn a_closed_tracker_serves_only_registered_torrents() {
    let dir = scratch_dir("closed");
    let (torrent, ih) = write_torrent(&dir, "allowed", 4);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--allow-only-registered",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    let ok = bdecode(&t.announce(&ih, &peer_id(1), 7901, 1, ""))
        .as_dict()
        .unwrap()
        .get(b"failure reason")
        .is_none();
    assert!(ok);
    let body = t.announce(&InfoHash([0x77; 20]), &peer_id(1), 7901, 1, "");
    let v = bdecode(&body);
    assert!(
        String::from_utf8_lossy(bbytes(&v, "failure reason").unwrap()).contains("not registered")
    );
    assert_eq!(t.json("/stats")["torrents"], 1);
    assert!(t.log().contains("refusing HTTP announce"));
}

#[test]
fn the_ip_parameter_is_ignored() {
    // Honouring it would let anyone point other peers and the poller at any address.
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([0x78; 20]);
    t.announce(&ih, &peer_id(1), 7902, 1, "&ip=203.0.113.9");
    let v = t.json(&format!("/swarm/{ih}"));
    assert_eq!(v["peers"][0]["addr"], "127.0.0.1:7902");
}
