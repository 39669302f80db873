//! Issue 9, the tracker's wrong answers to careless input: an announce with port 0, a finished
//! leech whose pieces were never updated, a full scrape of many torrents, and the piece count
//! of a torrent the tracker was not given.

mod tracker_support;

use enjambre_core::tracker::udp::Response;
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::InfoHash;
use serde_json::Value;
use tracker_support::*;

fn failure_reason(body: &[u8]) -> String {
    String::from_utf8_lossy(bbytes(&bdecode(body), "failure reason").expect("failure reason"))
        .into_owned()
}

/// The swarm API's entry for the peer listening on `port`.
fn peer_on(swarm: &Value, port: u16) -> Value {
    swarm["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["addr"] == format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("no peer on port {port}: {swarm:#}"))
        .clone()
}

#[test]
fn an_announce_with_port_zero_is_refused_and_never_handed_out() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([8; 20]);

    let body = t.announce(&ih, &peer_id(1), 0, 10, "&event=started");
    assert!(failure_reason(&body).contains("port"), "HTTP: {body:?}");

    let c = UdpClient::connect(t.udp);
    let mut buf = [0u8; 2048];
    let n = c.announce(ih, peer_id(2), 0, 10, AnnounceEvent::Started, 50, &mut buf);
    match Response::decode(&buf[..n]).expect("decode") {
        Response::Error { message, .. } => assert!(
            String::from_utf8_lossy(message).contains("port"),
            "UDP error: {:?}",
            String::from_utf8_lossy(message)
        ),
        other => panic!("UDP announce with port 0 answered {other:?}"),
    }

    // A real peer joining afterwards is given nobody at port 0, and only it is stored.
    let body = t.announce(&ih, &peer_id(3), 6881, 10, "&event=started&compact=1");
    let reply = bdecode(&body);
    assert_eq!(
        compact_ports(bbytes(&reply, "peers").unwrap_or(&[])),
        Vec::<u16>::new()
    );
    let swarm = t.json(&format!("/swarm/{ih}"));
    assert_eq!(swarm["peers"].as_array().unwrap().len(), 1, "{swarm:#}");
}

#[test]
fn a_finished_leech_and_a_seed_show_every_piece() {
    let dir = scratch_dir("finished");
    let (torrent, ih) = write_torrent(&dir, "finished", 20);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    // A leech reports 10 of the 20 pieces (0xff 0xc0 0x00).
    t.announce(&ih, &peer_id(1), 9001, 5000, "&event=started&bitfield=_8AA");
    let leech = peer_on(&t.json(&format!("/swarm/{ih}")), 9001);
    assert_eq!(leech["pieces_have"], 10, "{leech:#}");

    // It finishes: left=0 with `completed`, and no bitfield this time.
    t.announce(&ih, &peer_id(1), 9001, 0, "&event=completed");
    let done = peer_on(&t.json(&format!("/swarm/{ih}")), 9001);
    assert_eq!(done["seed"], true);
    assert_eq!(done["have"], "all", "{done:#}");
    assert_eq!(done["pieces_have"], 20, "{done:#}");
    assert_eq!(done["progress"], 1.0, "{done:#}");
    assert_eq!(done["bitfield"], "___w", "{done:#}");

    // A seed from the start: every piece, counted, since the count is known.
    t.announce(&ih, &peer_id(2), 9002, 0, "&event=started");
    let swarm = t.json(&format!("/swarm/{ih}"));
    let seed = peer_on(&swarm, 9002);
    assert_eq!(
        (seed["have"].as_str(), seed["pieces_have"].as_u64()),
        (Some("all"), Some(20)),
        "{seed:#}"
    );
    assert!(swarm["availability"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a == 2));

    // A seed that announces it has something left again no longer claims every piece.
    t.announce(&ih, &peer_id(2), 9002, 777, "");
    let again = peer_on(&t.json(&format!("/swarm/{ih}")), 9002);
    assert_eq!(again["have"], "unknown", "{again:#}");
    assert_eq!(again["progress"], Value::Null, "{again:#}");
}

#[test]
fn a_full_scrape_of_many_torrents_is_valid_bounded_bencode() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let c = UdpClient::connect(t.udp);
    let mut buf = [0u8; 2048];
    let torrents = 1_200u32;
    for k in 0..torrents {
        let mut ih = [0u8; 20];
        ih[..4].copy_from_slice(&k.to_be_bytes());
        c.announce(
            InfoHash(ih),
            peer_id(k),
            7000,
            1,
            AnnounceEvent::Started,
            0,
            &mut buf,
        );
    }
    // The most populated swarm: two more peers, one a seed.
    let busy = InfoHash([0xee; 20]);
    for (n, left) in [(1, 0), (2, 5), (3, 5)] {
        c.announce(
            busy,
            peer_id(90_000 + n),
            7000 + n as u16,
            left,
            AnnounceEvent::Started,
            0,
            &mut buf,
        );
    }
    assert_eq!(t.json("/stats")["torrents"], torrents + 1);

    let (status, _, body) = t.get("/scrape");
    assert_eq!(status, 200);
    assert!(!body.is_empty(), "full scrape answered an empty body");
    let reply = bdecode(&body);
    let files = reply
        .as_dict()
        .and_then(|d| d.get(b"files"))
        .and_then(|f| f.as_dict())
        .unwrap_or_else(|| panic!("no files: {}", String::from_utf8_lossy(&body)));
    assert_eq!(files.len(), 1000, "bounded at 1,000 torrents");
    let entry = files.get(&busy.0).expect("the busiest swarm is listed");
    assert_eq!(
        (bint(&entry, "complete"), bint(&entry, "incomplete")),
        (1, 2)
    );
}

/// base64url of a bitfield of `bytes` bytes with the first `set` pieces set.
fn bitfield(set: usize, bytes: usize) -> String {
    let mut v = vec![0u8; bytes];
    for i in 0..set {
        v[i / 8] |= 0x80 >> (i % 8);
    }
    let mut out = vec![0u8; enjambre_core::tracker::base64url::encoded_len(v.len())];
    let n = enjambre_core::tracker::base64url::encode_into(&v, &mut out).unwrap();
    String::from_utf8(out[..n].to_vec()).unwrap()
}

#[test]
fn an_unknown_piece_count_is_shown_as_a_range_until_a_seed_tells_it() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([9; 20]);
    // A 306-piece torrent the tracker was not given: 39-byte bitfields.
    let have_all_but_6 = bitfield(300, 39);
    t.announce(
        &ih,
        &peer_id(1),
        9001,
        1,
        &format!("&bitfield={have_all_but_6}"),
    );
    let almost = bitfield(306, 39);
    t.announce(&ih, &peer_id(2), 9002, 1, &format!("&bitfield={almost}"));
    let swarm = t.json(&format!("/swarm/{ih}"));
    assert_eq!(swarm["piece_count"], Value::Null, "{swarm:#}");
    assert_eq!(swarm["piece_count_exact"], false);
    assert_eq!(swarm["piece_count_range"], serde_json::json!([306, 312]));
    assert_eq!(swarm["availability"].as_array().unwrap().len(), 306);
    for (port, have) in [(9001, 300), (9002, 306)] {
        let p = peer_on(&swarm, port);
        assert_eq!(p["pieces_have"], have, "{p:#}");
        assert_eq!(
            p["progress"],
            Value::Null,
            "no fraction of a guessed count: {p:#}"
        );
    }
    assert_eq!(t.json("/swarms")["swarms"][0]["piece_count"], Value::Null);

    // A seed's own bitfield tells the exact count; from then on every figure is exact.
    t.announce(
        &ih,
        &peer_id(3),
        9003,
        0,
        &format!("&event=started&bitfield={almost}"),
    );
    let swarm = t.json(&format!("/swarm/{ih}"));
    assert_eq!(swarm["piece_count"], 306, "{swarm:#}");
    assert_eq!(swarm["piece_count_range"], serde_json::json!([306, 306]));
    assert_eq!(swarm["availability"].as_array().unwrap().len(), 306);
    let leech = peer_on(&swarm, 9001);
    assert_eq!(leech["progress"], 0.9804, "{leech:#}");
    assert_eq!(peer_on(&swarm, 9003)["pieces_have"], 306);
    assert_eq!(t.json("/swarms")["swarms"][0]["piece_count"], 306);
}

#[test]
fn a_registered_piece_count_is_exact_from_the_start() {
    let dir = scratch_dir("registered-count");
    let (torrent, ih) = write_torrent(&dir, "counted", 306);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    t.announce(
        &ih,
        &peer_id(1),
        9001,
        1,
        &format!("&bitfield={}", bitfield(300, 39)),
    );
    let swarm = t.json(&format!("/swarm/{ih}"));
    assert_eq!(swarm["piece_count"], 306);
    assert_eq!(swarm["piece_count_exact"], true);
    assert_eq!(swarm["availability"].as_array().unwrap().len(), 306);
    assert_eq!(peer_on(&swarm, 9001)["progress"], 0.9804);
}
