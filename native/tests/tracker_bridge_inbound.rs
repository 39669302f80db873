//! The bridge's inbound side in `enjambre tracker`: a page holds a TCP port through a control
//! WebSocket, connections to that port reach the page over accept WebSockets, and an announce
//! with the port's token lists the page in its swarm at the bridge's address.

mod bridge_support;
mod tracker_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use bridge_support::*;
use enjambre_core::InfoHash;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracker_support::*;

/// `n` consecutive ports free on loopback now, as `FIRST-LAST`.
fn free_ports(n: u16) -> (u16, String) {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let first = l.local_addr().unwrap().port();
        if first > u16::MAX - n {
            continue;
        }
        let rest: Vec<_> = (1..n)
            .map(|i| TcpListener::bind(("127.0.0.1", first + i)))
            .collect();
        if rest.iter().all(Result::is_ok) {
            return (first, format!("{first}-{}", first + n - 1));
        }
    }
}

/// The next text message, as JSON (pings are answered by the read itself).
async fn json(ws: &mut Ws) -> serde_json::Value {
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a message in time")
}

/// A blocking TCP client of the page's port, read on a thread so the runtime keeps going.
fn dial(addr: SocketAddr) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).expect("the page's port accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Whether the peer closed `s` (EOF or reset) within its read timeout.
async fn closed(mut s: std::net::TcpStream) -> bool {
    tokio::task::spawn_blocking(move || {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        match s.read(&mut [0u8; 16]) {
            Ok(0) => true,
            Err(e) => !matches!(e.kind(), WouldBlock | TimedOut),
            Ok(_) => false,
        }
    })
    .await
    .unwrap()
}

fn metric(t: &Tracker, name: &str) -> u64 {
    let (_, _, body) = t.get("/metrics");
    let m = String::from_utf8(body).unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("enjambre_bridge_{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {m}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_gets_a_port_and_inbound_connections_reach_it_both_ways() {
    let (first, range) = free_ports(2);
    let t = Tracker::start(&["--poll-interval", "0", "--bridge-ports", &range]);
    let ih = InfoHash([21; 20]);

    let mut control = ws(&t, &format!("/bridge/listen/{ih}")).await;
    let hello = json(&mut control).await;
    let port = hello["port"].as_u64().unwrap() as u16;
    assert!((first..first + 2).contains(&port), "{hello}");
    let addr: SocketAddr = hello["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], port)), "{hello}");
    assert_eq!(hello["token"].as_str().unwrap().len(), 32, "{hello}");
    assert_eq!(metric(&t, "ports_open"), 1);

    // A TCP peer dials the page's port: the page hears of it, claims it, and bytes flow.
    let mut tcp = dial(addr);
    let offer = json(&mut control).await;
    assert_eq!(
        offer["from"].as_str().unwrap(),
        tcp.local_addr().unwrap().to_string(),
        "{offer}"
    );
    let id = offer["accept"].as_str().unwrap();
    let mut accepted = ws(&t, &format!("/bridge/accept/{id}")).await;
    tcp.write_all(b"hello from a TCP peer").unwrap();
    assert_eq!(
        read_exactly(&mut accepted, 21).await,
        b"hello from a TCP peer"
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    for chunk in big.chunks(32 * 1024 + 7) {
        accepted
            .send(Message::Binary(Bytes::copy_from_slice(chunk)))
            .await
            .unwrap();
    }
    let mut got = vec![0u8; big.len()];
    let mut reader = tcp.try_clone().unwrap();
    let got = tokio::task::spawn_blocking(move || {
        reader.read_exact(&mut got).unwrap();
        got
    })
    .await
    .unwrap();
    assert!(got == big, "the page's bytes reach the TCP peer in order");
    // The id is spent.
    let mut again = ws(&t, &format!("/bridge/accept/{id}")).await;
    assert_eq!(
        u16::from(close_frame(&mut again).await.1.unwrap().code),
        4404
    );

    // Closing the control socket closes the port and its connections.
    control.close(None).await.unwrap();
    let frame = close_frame(&mut accepted).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 1001);
    assert!(frame.reason.contains("closed its port"), "{}", frame.reason);
    assert!(closed(tcp).await, "the TCP peer's connection ends");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(std::net::TcpStream::connect(addr).is_err(), "port freed");
    assert_eq!(metric(&t, "ports_open"), 0);
    assert_eq!(metric(&t, "inbound_accepted_total"), 1);
    assert_eq!(metric(&t, "inbound_claimed_total"), 1);
    // And the port is there for the next page.
    let mut next = ws(&t, &format!("/bridge/listen/{ih}")).await;
    assert!(json(&mut next).await["port"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_inbound_connection_is_closed() {
    let (_, range) = free_ports(1);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--bridge-ports",
        &range,
        "--bridge-accept-timeout",
        "0.5",
    ]);
    let ih = InfoHash([22; 20]);
    let mut control = ws(&t, &format!("/bridge/listen/{ih}")).await;
    let addr: SocketAddr = json(&mut control).await["addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tcp = dial(addr);
    let id = json(&mut control).await["accept"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    assert!(closed(tcp).await, "closed when nobody claims it");
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut late = ws(&t, &format!("/bridge/accept/{id}")).await;
    let frame = close_frame(&mut late).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 4404);
    assert!(
        frame.reason.contains("not claimed in time"),
        "{}",
        frame.reason
    );
    assert_eq!(metric(&t, "inbound_unclaimed_total"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_and_inbound_connections_over_the_caps_are_refused() {
    // No range: no ports at all.
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([23; 20]);
    let mut c = ws(&t, &format!("/bridge/listen/{ih}")).await;
    let frame = close_frame(&mut c).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 4503);
    assert!(frame.reason.contains("--bridge-ports"), "{}", frame.reason);
    drop(t);

    let (_, range) = free_ports(2);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--bridge-ports",
        &range,
        "--bridge-max-ports-per-ip",
        "1",
        "--bridge-max-inbound-per-port",
        "1",
    ]);
    let mut first = ws(&t, &format!("/bridge/listen/{ih}")).await;
    let addr: SocketAddr = json(&mut first).await["addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut second = ws(&t, &format!("/bridge/listen/{ih}")).await;
    let frame = close_frame(&mut second).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 4429);
    assert!(
        frame.reason.contains("from this address"),
        "{}",
        frame.reason
    );
    assert_eq!(metric(&t, "ports_refused_total"), 1);

    // One inbound connection per port: the second is closed at once, never offered.
    let _one = dial(addr);
    let id = json(&mut first).await["accept"]
        .as_str()
        .unwrap()
        .to_owned();
    let two = dial(addr);
    assert!(closed(two).await, "the second connection is closed");
    assert_eq!(metric(&t, "inbound_refused_total"), 1);
    let mut claimed = ws(&t, &format!("/bridge/accept/{id}")).await;
    claimed
        .send(Message::Binary(Bytes::from_static(b"x")))
        .await
        .unwrap();
    drop(t);

    // A range of one port: the second page (under its per-address cap) finds none free.
    let (_, range) = free_ports(1);
    let t = Tracker::start(&["--poll-interval", "0", "--bridge-ports", &range]);
    let mut a = ws(&t, &format!("/bridge/listen/{ih}")).await;
    json(&mut a).await;
    let mut b = ws(&t, &format!("/bridge/listen/{ih}")).await;
    let frame = close_frame(&mut b).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 4429);
    assert!(
        frame.reason.contains("no bridge port free"),
        "{}",
        frame.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_takes_no_messages_and_idles_out_when_the_page_is_gone() {
    let (_, range) = free_ports(1);
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--bridge-ports",
        &range,
        "--bridge-idle-timeout",
        "1",
    ]);
    let ih = InfoHash([24; 20]);
    let mut c = ws(&t, &format!("/bridge/listen/{ih}")).await;
    json(&mut c).await;
    c.send(Message::Binary(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    assert_eq!(u16::from(close_frame(&mut c).await.1.unwrap().code), 1003);

    // A page that answers the pings stays; one that stops reading is closed as idle.
    let mut c = ws(&t, &format!("/bridge/listen/{ih}")).await;
    json(&mut c).await;
    let alive = async {
        loop {
            match c.next().await {
                Some(Ok(Message::Ping(_))) => {}
                other => return other,
            }
        }
    };
    let r = tokio::time::timeout(Duration::from_millis(2500), alive).await;
    assert!(r.is_err(), "still open after 2.5 idle timeouts: {r:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let frame = close_frame(&mut c).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 4408, "{}", frame.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announce_with_the_token_lists_the_page_at_its_bridge_address() {
    let (_, range) = free_ports(1);
    let t = Tracker::start(&["--poll-interval", "0", "--bridge-ports", &range]);
    let ih = InfoHash([25; 20]);
    t.announce(&ih, &peer_id(1), 7001, 0, "&event=started");
    let mut control = ws(&t, &format!("/bridge/listen/{ih}")).await;
    let hello = json(&mut control).await;
    let port = hello["port"].as_u64().unwrap() as u16;
    let token = hello["token"].as_str().unwrap().to_owned();
    let bridge_announce = |token: &str, ih: &InfoHash| {
        t.get(&format!(
            "/bridge/announce?info_hash={}&peer_id={}&port=6881&uploaded=0&downloaded=0&left=100&compact=1&event=started&bridge_token={token}",
            pct(&ih.0),
            pct(&peer_id(2))
        ))
    };

    // A wrong token, or the token for another torrent: answered, not stored.
    let (status, _, _) = bridge_announce(&"0".repeat(32), &ih);
    assert_eq!(status, 200);
    bridge_announce(&token, &InfoHash([26; 20]));
    assert_eq!(
        t.json(&format!("/swarm/{ih}"))["peers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (status, _, body) = bridge_announce(&token, &ih);
    assert_eq!(status, 200);
    let v = bdecode(&body);
    assert_eq!(compact_ports(bbytes(&v, "peers").unwrap()), vec![7001]);
    let swarm = t.json(&format!("/swarm/{ih}"));
    let peers = swarm["peers"].as_array().unwrap();
    let page = format!("127.0.0.1:{port}");
    assert!(
        peers.iter().any(|p| p.to_string().contains(&page)),
        "the page is listed at {page}: {swarm}"
    );
    // Other peers are handed the page's bridge address.
    let body = t.announce(&ih, &peer_id(3), 7003, 100, "&event=started");
    let v = bdecode(&body);
    assert!(compact_ports(bbytes(&v, "peers").unwrap()).contains(&port));

    // Its port closed, the page leaves the swarm.
    control.close(None).await.unwrap();
    let _ = close_frame(&mut control).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let swarm = t.json(&format!("/swarm/{ih}"));
    assert!(!swarm.to_string().contains(&page), "{swarm}");
}
