//! Issue 9 item 19: the swarm API shows every peer's address and peer id, so an operator can
//! limit it to given networks (`--api-allow`) or turn it off (`--no-api`), while announce and
//! scrape stay open to everyone; `/swarms` pages with `offset`.

mod tracker_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use enjambre_core::InfoHash;
use socket2::{Domain, Protocol, Socket, Type};
use tracker_support::*;

/// GET `path` from the loopback address `from_ip`; returns the status.
fn status_from(from_ip: &str, to: SocketAddr, path: &str) -> u16 {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    let from: SocketAddr = format!("{from_ip}:0").parse().unwrap();
    s.bind(&from.into()).unwrap();
    s.connect(&to.into()).unwrap();
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    split_response(&buf).0
}

fn api_paths(ih: &InfoHash) -> [String; 5] {
    [
        format!("/swarm/{ih}"),
        format!("/swarm/{ih}/events"),
        "/swarms".into(),
        "/stats".into(),
        "/metrics".into(),
    ]
}

#[test]
fn the_api_answers_only_the_allowed_networks_and_announces_stay_open() {
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--api-allow",
        "127.0.0.2/32",
        "--api-allow",
        "10.0.0.0/8",
    ]);
    let ih = InfoHash([19; 20]);
    // Announce and scrape from a client outside the allowed networks.
    let body = t.announce(&ih, &peer_id(1), 6881, 0, "&event=started");
    assert!(bdecode(&body).as_dict().unwrap().get(b"interval").is_some());
    let (status, _, body) = t.get(&format!("/scrape?info_hash={}", pct(&ih.0)));
    assert_eq!(status, 200);
    assert!(bdecode(&body).as_dict().unwrap().get(b"files").is_some());
    for path in api_paths(&ih) {
        assert_eq!(
            status_from("127.0.0.1", t.http, &path),
            403,
            "{path} from outside"
        );
    }
    for path in api_paths(&ih).iter().filter(|p| !p.ends_with("/events")) {
        assert_eq!(
            status_from("127.0.0.2", t.http, path),
            200,
            "{path} from inside"
        );
    }
}

#[test]
fn the_api_can_be_turned_off() {
    let t = Tracker::start(&["--poll-interval", "0", "--no-api"]);
    let ih = InfoHash([20; 20]);
    let body = t.announce(&ih, &peer_id(1), 6881, 0, "&event=started");
    assert!(bdecode(&body).as_dict().unwrap().get(b"interval").is_some());
    for path in api_paths(&ih) {
        assert_eq!(t.get(&path).0, 404, "{path}");
    }
    assert_eq!(t.get(&format!("/scrape?info_hash={}", pct(&ih.0))).0, 200);
}

#[test]
fn swarms_pages_with_offset() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    // Five swarms of 5, 4, 3, 2 and 1 peers.
    for k in 0..5u8 {
        for p in 0..=k {
            t.announce(
                &InfoHash([k; 20]),
                &peer_id(u32::from(p)),
                7000 + u16::from(p),
                1,
                "",
            );
        }
    }
    let page = |q: &str| -> Vec<u64> {
        let v = t.json(&format!("/swarms?{q}"));
        assert_eq!(v["total"], 5);
        v["swarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["peers"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(page("limit=2"), [5, 4]);
    assert_eq!(page("limit=2&offset=2"), [3, 2]);
    assert_eq!(page("offset=4&limit=2"), [1]);
    assert_eq!(page("offset=9"), Vec::<u64>::new());
}
