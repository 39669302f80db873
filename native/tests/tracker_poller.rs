//! The poller against scripted peers: a tokio listener per peer answers the tracker's handshake
//! with a bitfield, HaveAll, Haves, silence or the wrong torrent; an unreachable peer is marked
//! and keeps its last known bitfield; polls to one address are spaced.

mod tracker_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enjambre_core::wire::{Extensions, Handshake, Message, Status, HANDSHAKE_LEN};
use enjambre_core::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracker_support::*;

/// What a scripted peer sends after its handshake, per poll (the last script repeats).
#[derive(Clone)]
enum Script {
    Messages(Vec<Vec<u8>>),
    Silent,
    WrongTorrent,
}

fn msg(m: Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; m.encoded_len()];
    m.encode(&mut out).unwrap();
    out
}

fn bitfield(bytes: &[u8]) -> Vec<u8> {
    let mut v = (1 + bytes.len() as u32).to_be_bytes().to_vec();
    v.push(5);
    v.extend_from_slice(bytes);
    v
}

/// Accepted connections: (when, the tracker's handshake).
type Log = Arc<Mutex<Vec<(Instant, Handshake)>>>;

async fn scripted_peer(ih: InfoHash, scripts: Vec<Script>, log: Log) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let script = scripts[n.min(scripts.len() - 1)].clone();
            n += 1;
            let log = log.clone();
            tokio::spawn(async move {
                let mut hs = [0u8; HANDSHAKE_LEN];
                if s.read_exact(&mut hs).await.is_err() {
                    return;
                }
                let Ok(Status::Complete(theirs)) = Handshake::decode(&hs, &[]) else {
                    return;
                };
                log.lock().unwrap().push((Instant::now(), theirs));
                let ext = Extensions {
                    fast: true,
                    extended: false,
                    dht: false,
                };
                let mine_ih = if matches!(script, Script::WrongTorrent) {
                    InfoHash([0xee; 20])
                } else {
                    ih
                };
                let _ = s
                    .write_all(
                        &Handshake::new(mine_ih, PeerId(*b"-SP0001-scriptedpeer"), ext).encode(),
                    )
                    .await;
                if let Script::Messages(ms) = script {
                    // All at once, as a client sends its bitfield and the Haves behind it.
                    let _ = s.write_all(&ms.concat()).await;
                }
                // Hold the connection until the tracker closes it.
                let mut sink = [0u8; 256];
                while let Ok(k) = s.read(&mut sink).await {
                    if k == 0 {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn peer_by_port(v: &serde_json::Value, port: u16) -> serde_json::Value {
    let addr = format!("127.0.0.1:{port}");
    v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["addr"] == addr.as_str())
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_learn_bitfields_and_follow_a_download() {
    let dir = scratch_dir("poller");
    let (torrent, ih) = write_torrent(&dir, "polled", 12);
    let t = Tracker::start(&[
        "--poll-grace",
        "0",
        "--poll-interval",
        "1",
        "--poll-read-time",
        "2",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    let log: Log = Arc::default();
    // A: a leech whose bitfield grows between polls (pieces 0, 2; then + Have 1; then all 12).
    let a = scripted_peer(
        ih,
        vec![
            Script::Messages(vec![bitfield(&[0b1010_0000, 0])]),
            Script::Messages(vec![bitfield(&[0b1010_0000, 0]), msg(Message::Have(1))]),
            Script::Messages(vec![msg(Message::HaveAll)]),
        ],
        log.clone(),
    )
    .await;
    // B: a seed that says HaveAll; C: a peer with nothing that says nothing.
    let b = scripted_peer(
        ih,
        vec![Script::Messages(vec![msg(Message::HaveAll)])],
        log.clone(),
    )
    .await;
    let c = scripted_peer(ih, vec![Script::Silent], log.clone()).await;
    // D: unreachable (a port nobody listens on); E: answers for another torrent.
    let d = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = scripted_peer(ih, vec![Script::WrongTorrent], log.clone()).await;
    let t = Arc::new(t);
    for (n, port, left) in [
        (1, a, 100),
        (2, b, 0),
        (3, c, 100),
        (4, d, 100),
        (5, e, 100),
    ] {
        let t = t.clone();
        tokio::task::spawn_blocking(move || {
            t.announce(&ih, &peer_id(n), port, left, "&event=started")
        })
        .await
        .unwrap();
    }
    // A's middle state (pieces 0-2) lasts one poll interval: watch for it first.
    let tt = t.clone();
    tokio::task::spawn_blocking(move || {
        tt.wait_swarm(&ih, Duration::from_secs(20), |v| {
            peer_by_port(v, a)["bitfield"] == "4AA"
        })
    })
    .await
    .unwrap();
    let tt = t.clone();
    let v = tokio::task::spawn_blocking(move || {
        tt.wait_swarm(&ih, Duration::from_secs(20), |v| {
            peer_by_port(v, a)["source"] == "poll"
                && peer_by_port(v, b)["have"] == "all"
                && peer_by_port(v, c)["have"] == "none"
                && peer_by_port(v, d)["poll_failures"].as_u64().unwrap_or(0) >= 1
                && peer_by_port(v, e)["poll_failures"].as_u64().unwrap_or(0) >= 1
        })
    })
    .await
    .unwrap();
    assert_eq!(peer_by_port(&v, c)["source"], "poll");
    assert_eq!(peer_by_port(&v, c)["pieces_have"], 0);
    assert_eq!(peer_by_port(&v, d)["reachable"], false);
    assert_eq!(peer_by_port(&v, d)["have"], "unknown");
    assert_eq!(peer_by_port(&v, e)["have"], "unknown");
    // A's bitfield followed the download: 2 pieces, then 3 with the Have (seen above), then all.
    let tt = t.clone();
    tokio::task::spawn_blocking(move || {
        let v = tt.wait_swarm(&ih, Duration::from_secs(20), |v| {
            peer_by_port(v, a)["have"] == "all"
        });
        assert_eq!(peer_by_port(&v, a)["progress"], 1.0);
    })
    .await
    .unwrap();
    // The tracker's handshakes: our torrent, fast and extension protocol bits set.
    let log = log.lock().unwrap().clone();
    assert!(log.len() >= 5);
    for (_, h) in &log {
        assert_eq!(h.info_hash, ih);
        let x = h.extensions();
        assert!(x.fast && x.extended);
        assert_eq!(&h.peer_id.0[..8], b"-EJ0001-");
    }
    // All peers share 127.0.0.1: no two polls started closer than the spacing.
    let mut times: Vec<Instant> = log.iter().map(|(t, _)| *t).collect();
    times.sort();
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(180),
            "polls to one address {:?} apart",
            w[1] - w[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_peer_keeps_its_last_bitfield_and_is_backed_off() {
    let dir = scratch_dir("backoff");
    let (torrent, ih) = write_torrent(&dir, "backoff", 8);
    let t = Arc::new(Tracker::start(&[
        "--poll-grace",
        "0",
        "--poll-interval",
        "1",
        "--poll-read-time",
        "2",
        "--torrent",
        torrent.to_str().unwrap(),
    ]));
    // A port that accepts nobody, and a self-report of pieces 0..3.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tt = t.clone();
    tokio::task::spawn_blocking(move || {
        tt.announce(&ih, &peer_id(1), port, 10, "&bitfield=8A");
        // Failures are backed off from 10 s on, whatever the poll interval.
        let v = tt.wait_swarm(&ih, Duration::from_secs(30), |v| {
            peer_by_port(v, port)["poll_failures"].as_u64().unwrap_or(0) >= 2
        });
        let p = peer_by_port(&v, port);
        assert_eq!(p["reachable"], false);
        assert_eq!(p["bitfield"], "8A", "last known bitfield kept");
        assert_eq!(p["source"], "report");
        // Backed off: over 4 more seconds at most two more attempts (1 s interval doubling).
        let before = p["poll_failures"].as_u64().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        let after = peer_by_port(&tt.json(&format!("/swarm/{ih}")), port)["poll_failures"]
            .as_u64()
            .unwrap();
        assert!(
            after - before <= 2,
            "retried in a tight loop: {before} -> {after}"
        );
    })
    .await
    .unwrap();
}

/// A peer driven by the core's own `Session` (our peer's protocol engine) on a blocking socket:
/// the tracker's poll must read its bitfield like any other client's.
fn session_peer(ih: InfoHash, have: &'static [u32], pieces: u32) -> u16 {
    use enjambre_core::geometry::Geometry;
    use enjambre_core::session::{Config, Output, Resume, Session, MIN_OUTPUT_BUF};
    use enjambre_core::sha1::Sha1Smol;
    use enjambre_core::Instant as CoreInstant;
    use std::io::{Read, Write};

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let hashes = vec![0u8; pieces as usize * 20];
        let geometry = Geometry::new(16384, u64::from(pieces) * 16384).unwrap();
        let mut resume = Resume::<8, 4>::new(ih, pieces).unwrap();
        for &p in have {
            resume.have.set(p, true);
        }
        let started = Instant::now();
        let now = || CoreInstant::from_millis(started.elapsed().as_millis() as u64);
        let config = Config::new(PeerId(*b"-EJ0001-sessionpeer1"), port);
        let mut session: Session<Sha1Smol, &[u8], 4, 8, 4, 32768, 8> =
            Session::new(now(), config, ih, geometry, &hashes[..], Some(&resume)).unwrap();
        let mut out = vec![0u8; MIN_OUTPUT_BUF];
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let Ok(peer) = session.handle_incoming(now(), s.peer_addr().unwrap()) else {
                continue;
            };
            let mut buf = [0u8; 4096];
            loop {
                loop {
                    match session.poll_output(now(), &mut out) {
                        Output::Transmit { peer, bytes } => {
                            let _ = s.write_all(bytes);
                            let n = bytes.len();
                            session.handle_sent(now(), peer, n);
                        }
                        Output::Timeout(_) => break,
                        _ => {}
                    }
                }
                match s.read(&mut buf) {
                    Ok(0) => {
                        session.handle_closed(now(), peer);
                        break;
                    }
                    Ok(n) => {
                        let mut fed = 0;
                        while fed < n {
                            fed += session.handle_input(now(), peer, &buf[fed..n]);
                            loop {
                                match session.poll_output(now(), &mut out) {
                                    Output::Transmit { peer, bytes } => {
                                        let _ = s.write_all(bytes);
                                        let n = bytes.len();
                                        session.handle_sent(now(), peer, n);
                                    }
                                    Output::Timeout(_) => break,
                                    _ => {}
                                }
                            }
                        }
                    }
                    Err(_) => session.handle_timeout(now()),
                }
            }
        }
    });
    port
}

#[test]
fn a_core_session_peer_is_polled_like_any_other() {
    let dir = scratch_dir("sessionpeer");
    let (torrent, ih) = write_torrent(&dir, "session", 8);
    let t = Tracker::start(&[
        "--poll-grace",
        "0",
        "--poll-interval",
        "1",
        "--poll-read-time",
        "2",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    let port = session_peer(ih, &[0, 3, 5], 8);
    t.announce(&ih, &peer_id(1), port, 5 * 16384, "&event=started");
    let v = t.wait_swarm(&ih, Duration::from_secs(20), |v| {
        peer_by_port(v, port)["source"] == "poll"
    });
    let p = peer_by_port(&v, port);
    assert_eq!(p["bitfield"], "lA", "pieces 0, 3 and 5: 0b1001_0100");
    assert_eq!(p["pieces_have"], 3);
    assert_eq!(v["availability"][3], 1);
}
