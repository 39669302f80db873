//! The bridge's announce relay: a page hands the tracker a `.torrent` naming other trackers, and
//! its announces through `/bridge/announce` reach them. A forged info dictionary is refused; a
//! swarm living only on opentracker is found and dialled through the bridge (loopback, so with
//! `--bridge-forward-private`); without that flag nothing is sent to a loopback tracker and a
//! loopback peer is not listed; two quick announces make one relayed round.

mod peer_support;
mod tracker_support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use enjambre_core::metainfo::Metainfo;
use enjambre_core::tracker::compact_peers;
use enjambre_core::InfoHash;
use futures_util::{SinkExt, StreamExt};
use peer_support::{create, data, enjambre, free_port, Background};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracker_support::{bbytes, bdecode, pct, peer_id, raw_http, Tracker};

/// `POST /bridge/torrent/<ih>` with `body`: (status, body text).
fn post_torrent(t: &Tracker, ih: &InfoHash, body: &[u8]) -> (u16, String) {
    let mut req = format!(
        "POST /bridge/torrent/{ih} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-bittorrent\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let (status, _, body) = raw_http(t.http, &req);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The page's announce through the bridge: the peers of the answer.
fn bridge_announce(t: &Tracker, ih: &InfoHash, event: &str) -> Vec<SocketAddr> {
    let (status, _, body) = t.get(&format!(
        "/bridge/announce?info_hash={}&peer_id={}&port=6881&uploaded=0&downloaded=0&left=1000&compact=1{event}",
        pct(&ih.0),
        pct(&peer_id(900))
    ));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v = bdecode(&body);
    let peers = bbytes(&v, "peers").unwrap_or_default();
    compact_peers(peers, false).collect()
}

fn metric(t: &Tracker, name: &str) -> u64 {
    let (_, _, body) = t.get("/metrics");
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

fn info_hash(torrent: &Path) -> InfoHash {
    Metainfo::parse(&std::fs::read(torrent).unwrap())
        .unwrap()
        .info_hash
}

/// Open `/bridge/<ih>/<peer>` and swap BitTorrent handshakes; `Err` carries the close reason.
async fn handshake_through_bridge(
    t: &Tracker,
    ih: &InfoHash,
    peer: SocketAddr,
) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(t.http).await.unwrap();
    let url = format!("ws://{}/bridge/{ih}/{peer}", t.http);
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&ih.0);
    hs.extend_from_slice(&peer_id(901));
    ws.send(Message::Binary(Bytes::from(hs))).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 68 {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => got.extend_from_slice(&b),
            Ok(Some(Ok(Message::Close(f)))) => {
                return Err(f
                    .map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default())
            }
            other => return Err(format!("{other:?}")),
        }
    }
    assert_eq!(&got[1..20], b"BitTorrent protocol");
    assert_eq!(&got[28..48], &ih.0, "the seed answers for the same torrent");
    Ok(())
}

fn have_opentracker() -> bool {
    let ok = Command::new("opentracker")
        .arg("-h")
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("skipped: opentracker not installed");
    }
    ok
}

#[test]
fn a_forged_or_malformed_torrent_is_refused_with_a_reason() {
    let t = Tracker::start(&["--bridge-forward-max-torrent", "4096"]);
    let (bytes, ih) = tracker_support::make_torrent("forged", 4);
    let (status, why) = post_torrent(&t, &InfoHash([3; 20]), &bytes);
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("forged info dictionary"), "{why}");
    let (status, why) = post_torrent(&t, &ih, b"d4:infod4:name1:xee");
    assert_eq!(status, 400, "{why}");
    assert!(why.contains("not a valid .torrent"), "{why}");
    // Refused on its head alone: the body is never read.
    let head =
        format!("POST /bridge/torrent/{ih} HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    let (status, _, why) = raw_http(t.http, head.as_bytes());
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&why));
    let (status, why) = post_torrent(&t, &ih, &bytes);
    assert_eq!(status, 200, "{why}");
    assert!(why.contains("1 trackers"), "{why}");
    assert_eq!(
        metric(&t, "enjambre_bridge_forward_torrents_refused_total"),
        3
    );
    assert_eq!(
        metric(&t, "enjambre_bridge_forward_torrents_accepted_total"),
        1
    );
}

#[test]
fn a_torrent_body_in_pieces_is_read_and_the_connection_kept() {
    use std::io::Write;
    let t = Tracker::start(&[]);
    let (bytes, ih) = tracker_support::make_torrent("pieces", 4);
    let mut s = std::net::TcpStream::connect(t.http).unwrap();
    let head = format!(
        "POST /bridge/torrent/{ih} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    let (first, second) = bytes.split_at(bytes.len() / 2);
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(second).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    assert!(got.contains("relaying announces for"), "{got}");
    assert!(
        got.contains("enjambre_bridge_forward_torrents_accepted_total 1\n"),
        "{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_on_opentracker_is_found_and_dialled_through_the_relay() {
    if !have_opentracker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ot = peer_support::free_tcp_udp_port();
    let file = dir.path().join("relay.bin");
    std::fs::write(&file, data(300_000, 5)).unwrap();
    let http = create(
        &file,
        &dir.path().join("http.torrent"),
        &[&format!("http://127.0.0.1:{ot}/announce")],
        32768,
    );
    let udp = create(
        &file,
        &dir.path().join("udp.torrent"),
        &[&format!("udp://127.0.0.1:{ot}")],
        65536,
    );
    let _opentracker = peer_support::opentracker(dir.path(), ot, &[&http, &udp]);
    let t = Tracker::start(&["--bridge-forward-private"]);
    let strict = Tracker::start(&[]);

    for (n, (name, torrent)) in [("http", &http), ("udp", &udp)].into_iter().enumerate() {
        let ih = info_hash(torrent);
        let seed_port = free_port();
        let seed_addr: SocketAddr = format!("127.0.0.2:{seed_port}").parse().unwrap();
        let mut seed = Background::spawn(
            enjambre()
                .arg("seed")
                .arg(torrent)
                .arg("--data")
                .arg(&file)
                .args(["--listen", "127.0.0.2", "--port", &seed_port.to_string()]),
        );
        wait_for_seed(ot, &ih);
        let bytes = std::fs::read(torrent).unwrap();
        let (status, why) = post_torrent(&t, &ih, &bytes);
        assert_eq!(status, 200, "{name}: {why}");

        // Our tracker knows nothing of this swarm; the relayed tracker does.
        let peers = bridge_announce(&t, &ih, "&event=started");
        assert!(peers.contains(&seed_addr), "{name}: {peers:?}\n{}", t.log());
        handshake_through_bridge(&t, &ih, seed_addr)
            .await
            .unwrap_or_else(|why| panic!("{name}: bridge refused: {why}\n{}", t.log()));

        // A second announce at once is answered from the cache: still one relayed round.
        let again = bridge_announce(&t, &ih, "&event=started");
        assert!(again.contains(&seed_addr), "{name}: {again:?}");
        // opentracker lists the page too, at the port it announced: left out.
        assert!(again.iter().all(|p| p.port() != 6881), "{name}: {again:?}");
        let rounds = n as u64 + 1;
        assert_eq!(
            metric(&t, "enjambre_bridge_forward_announces_total"),
            rounds
        );
        assert_eq!(metric(&t, "enjambre_bridge_forward_answered_total"), rounds);
        assert_eq!(metric(&t, "enjambre_bridge_forward_cached_total"), rounds);

        // Without --bridge-forward-private: the loopback tracker is not asked, the loopback
        // seed is not listed.
        assert_eq!(post_torrent(&strict, &ih, &bytes).0, 200);
        assert!(bridge_announce(&strict, &ih, "&event=started").is_empty());
        let why = handshake_through_bridge(&strict, &ih, seed_addr)
            .await
            .expect_err("a loopback peer is not listed without the flag");
        assert!(why.starts_with("4403"), "{why}");
        seed.stop();
    }
    assert_eq!(metric(&strict, "enjambre_bridge_forward_answered_total"), 0);
    assert!(metric(&strict, "enjambre_bridge_forward_refused_addresses_total") >= 2);
}

#[test]
fn nothing_is_sent_to_a_private_address_without_the_flag() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let (tp, up) = (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("private.bin");
    std::fs::write(&file, data(50_000, 9)).unwrap();
    let torrent = create(
        &file,
        &dir.path().join("private.torrent"),
        &[
            &format!("http://127.0.0.1:{tp}/announce"),
            &format!("udp://127.0.0.1:{up}"),
            &format!("http://localhost:{tp}/announce"),
            &format!("http://10.255.255.1:{tp}/announce"),
        ],
        16384,
    );
    let ih = info_hash(&torrent);
    let t = Tracker::start(&[]);
    assert_eq!(
        post_torrent(&t, &ih, &std::fs::read(&torrent).unwrap()).0,
        200
    );
    assert!(bridge_announce(&t, &ih, "&event=started").is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        tcp.accept().is_err(),
        "a connection reached the private tracker"
    );
    let mut buf = [0u8; 64];
    assert!(
        udp.recv(&mut buf).is_err(),
        "a datagram reached the private tracker"
    );
    assert_eq!(metric(&t, "enjambre_bridge_forward_announces_total"), 1);
    assert_eq!(metric(&t, "enjambre_bridge_forward_failed_total"), 1);
    assert!(metric(&t, "enjambre_bridge_forward_refused_addresses_total") >= 4);
}

/// Wait until opentracker's scrape counts one seed for `ih`.
fn wait_for_seed(port: u16, ih: &InfoHash) {
    use std::io::Write;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the seed never announced"
        );
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let req = format!("GET /scrape?info_hash={} HTTP/1.0\r\n\r\n", pct(&ih.0));
            let mut body = Vec::new();
            let answered = s.write_all(req.as_bytes()).is_ok() && s.read_to_end(&mut body).is_ok();
            if answered && body.windows(11).any(|w| w == b"completei1e") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
