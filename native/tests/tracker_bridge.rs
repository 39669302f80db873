//! The WebSocket-to-TCP bridge in `enjambre tracker`: a browser peer's bytes reach a peer the
//! swarm lists, and nothing else; caps, idle clients and bad frames end with a readable reason.

mod bridge_support;
mod tracker_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bridge_support::*;
use enjambre_core::InfoHash;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracker_support::*;

/// A TCP echo server on loopback; counts the connections it accepted.
fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// Announce `addr` as a leech of `ih`, so the swarm lists it.
fn list(t: &Tracker, ih: &InfoHash, addr: SocketAddr, n: u32) {
    t.announce(ih, &peer_id(n), addr.port(), 100, "&event=started");
}

async fn open(t: &Tracker, ih: &InfoHash, peer: SocketAddr) -> Ws {
    ws(t, &format!("/bridge/{ih}/{peer}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_a_byte_stream_to_a_listed_peer_both_ways() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([7; 20]);
    let (echo, accepted) = echo_server();
    list(&t, &ih, echo, 1);

    let mut ws = open(&t, &ih, echo).await;
    // Message boundaries mean nothing: three messages come back as one stream.
    for part in [&b"hello "[..], b"bridged ", b"world"] {
        ws.send(Message::Binary(Bytes::copy_from_slice(part)))
            .await
            .unwrap();
    }
    assert_eq!(read_exactly(&mut ws, 19).await, b"hello bridged world");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for chunk in big.chunks(16 * 1024 + 13) {
        ws.send(Message::Binary(Bytes::copy_from_slice(chunk)))
            .await
            .unwrap();
    }
    assert!(read_exactly(&mut ws, big.len()).await == big);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    ws.close(None).await.unwrap();

    let (_, _, body) = t.get("/metrics");
    let m = String::from_utf8(body).unwrap();
    assert!(m.contains("enjambre_bridge_accepted_total 1\n"), "{m}");
    assert!(
        m.contains("enjambre_bridge_bytes_to_peers_total 200019\n"),
        "{m}"
    );
}

/// A peer that sends `data` once connected, in writes of uneven sizes with pauses (so the
/// bridge's reads end anywhere), and closes when told.
fn sending_peer(data: Arc<Vec<u8>>) -> (SocketAddr, std::sync::mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (done, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let sizes = [1usize, 13, 700, 16_397, 70_001, 3, 262_145, 40_000];
        let mut at = 0;
        for (i, size) in sizes.iter().cycle().enumerate() {
            if at == data.len() {
                break;
            }
            let end = (at + size).min(data.len());
            if s.write_all(&data[at..end]).is_err() {
                return;
            }
            at = end;
            if i % 5 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let _ = told.recv();
    });
    (addr, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_every_byte_in_order_and_its_pongs_between_frames() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([15; 20]);
    let data: Vec<u8> = (0..8_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let data = Arc::new(data);
    let (peer, done) = sending_peer(data.clone());
    list(&t, &ih, peer, 1);

    let mut ws = open(&t, &ih, peer).await;
    // Not reading yet: the bridge's socket fills, and its writes end partway through frames.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut got, mut pings, mut pongs) = (Vec::new(), 0u32, Vec::new());
    while got.len() < data.len() || pongs.len() < pings as usize {
        if pings < 20 && got.len() >= pings as usize * 300_000 {
            let ping = Bytes::copy_from_slice(&pings.to_be_bytes());
            ws.send(Message::Ping(ping)).await.unwrap();
            pings += 1;
        }
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => got.extend_from_slice(&b),
            Ok(Some(Ok(Message::Pong(p)))) => {
                pongs.push(u32::from_be_bytes(p[..].try_into().unwrap()))
            }
            other => panic!("expected bytes or a pong, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(got.len(), data.len());
    assert!(got == *data, "every byte, in order");
    assert_eq!(pongs, (0..20).collect::<Vec<_>>(), "a pong for each ping");
    done.send(()).unwrap();
    let (rest, end) = close_frame(&mut ws).await;
    assert!(rest.is_empty());
    let end = end.expect("a close frame with a reason");
    assert_eq!(u16::from(end.code), 1000);
    assert!(end.reason.contains("peer closed"), "{}", end.reason);
}

#[tokio::test]
async fn refuses_an_address_the_swarm_does_not_list() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([8; 20]);
    let (listed, _) = echo_server();
    let (unlisted, dialled) = echo_server();
    list(&t, &ih, listed, 1);

    let mut ws = open(&t, &ih, unlisted).await;
    let (bytes, frame) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame with a reason");
    assert_eq!(u16::from(frame.code), 4403);
    assert!(frame.reason.contains("not listed"), "{}", frame.reason);
    assert!(bytes.is_empty());
    // Listed in another torrent is not listed in this one.
    let mut ws = open(&t, &InfoHash([9; 20]), listed).await;
    assert_eq!(u16::from(close_frame(&mut ws).await.1.unwrap().code), 4403);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(dialled.load(Ordering::SeqCst), 0, "nothing was dialled");

    // Not a WebSocket handshake, or no peer address: plain HTTP refusals.
    let (status, _, body) = t.get(&format!("/bridge/{ih}/{listed}"));
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("WebSocket"));
    assert_eq!(t.get(&format!("/bridge/{ih}/0.0.0.0:80")).0, 400);
}

#[tokio::test]
async fn refuses_connections_over_the_caps() {
    let t = Tracker::start(&["--poll-interval", "0", "--bridge-max-per-ip", "2"]);
    let ih = InfoHash([10; 20]);
    let (echo, _) = echo_server();
    list(&t, &ih, echo, 1);

    let mut first = open(&t, &ih, echo).await;
    let _second = open(&t, &ih, echo).await;
    let mut third = open(&t, &ih, echo).await;
    let frame = close_frame(&mut third).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 4429);
    assert!(
        frame.reason.contains("too many connections"),
        "{}",
        frame.reason
    );
    // A slot comes back when a connection ends.
    first.close(None).await.unwrap();
    let _ = close_frame(&mut first).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = open(&t, &ih, echo).await;
    again
        .send(Message::Binary(Bytes::from_static(b"ok")))
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut again, 2).await, b"ok");
}

#[tokio::test]
async fn closes_a_client_that_sends_an_oversized_message() {
    let t = Tracker::start(&["--poll-interval", "0", "--bridge-max-message", "4096"]);
    let ih = InfoHash([11; 20]);
    let (echo, _) = echo_server();
    list(&t, &ih, echo, 1);

    let mut ws = open(&t, &ih, echo).await;
    ws.send(Message::Binary(vec![1u8; 64 * 1024].into()))
        .await
        .unwrap();
    let frame = close_frame(&mut ws).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 1009);
    assert!(
        frame.reason.contains("too long") || frame.reason.contains("size"),
        "{}",
        frame.reason
    );
}

#[tokio::test]
async fn closes_a_client_that_sends_a_malformed_frame() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([12; 20]);
    let (echo, _) = echo_server();
    list(&t, &ih, echo, 1);

    let mut ws = open(&t, &ih, echo).await;
    // An unmasked frame from a client, with a reserved opcode: both forbidden by RFC 6455.
    tokio::io::AsyncWriteExt::write_all(ws.get_mut(), &[0x83, 0x02, 1, 2])
        .await
        .unwrap();
    let frame = close_frame(&mut ws).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 1002, "{}", frame.reason);
    assert!(frame.reason.contains("malformed"), "{}", frame.reason);
}

#[tokio::test]
async fn closes_an_idle_connection() {
    let t = Tracker::start(&["--poll-interval", "0", "--bridge-idle-timeout", "0.5"]);
    let ih = InfoHash([13; 20]);
    let (echo, _) = echo_server();
    list(&t, &ih, echo, 1);

    let mut ws = open(&t, &ih, echo).await;
    let frame = close_frame(&mut ws).await.1.unwrap();
    assert_eq!(u16::from(frame.code), 4408);
    assert!(frame.reason.starts_with("idle"), "{}", frame.reason);
}

#[tokio::test]
async fn the_bridge_announce_gives_the_swarm_and_does_not_register_the_page() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let ih = InfoHash([14; 20]);
    t.announce(&ih, &peer_id(1), 7001, 0, "&event=started");

    let (status, _, body) = t.get(&format!(
        "/bridge/announce?info_hash={}&peer_id={}&port=7002&uploaded=0&downloaded=0&left=100&compact=1&event=started",
        pct(&ih.0),
        pct(&peer_id(2))
    ));
    assert_eq!(status, 200);
    let v = bdecode(&body);
    assert_eq!(bint(&v, "complete"), 1);
    assert_eq!(compact_ports(bbytes(&v, "peers").unwrap()), vec![7001]);
    let swarm = t.json(&format!("/swarm/{ih}"));
    assert_eq!(swarm["peers"].as_array().unwrap().len(), 1, "{swarm}");
    // An unknown torrent is not created by it.
    let other = InfoHash([15; 20]);
    t.get(&format!(
        "/bridge/announce?info_hash={}&peer_id={}&port=7002&uploaded=0&downloaded=0&left=100",
        pct(&other.0),
        pct(&peer_id(2))
    ));
    assert_eq!(t.get(&format!("/swarm/{other}")).0, 404);
}
